/**
 * Review 10b: reproductions of what is still broken. Each test fails today (they document the
 * expected behaviour; they are not fixes).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Envelope, MultiKeyring, RawAesKeyring, type Keyring } from '../../src/index.js';
import { parseHeader } from '../../src/format/header.js';
import { LocalKms } from '../../src/local-kms/index.js';

const dir = mkdtempSync(join(tmpdir(), 'kms-envelope-review10b-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const rawAes = () => new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', key: randomBytes(32) });
const settle = (p: Promise<unknown>): Promise<unknown> => p.then(() => 'decrypted', (e: unknown) => e);

describe('F1: per-call options are not validated; a misnamed `context` silently disables the context check', () => {
  // README "Failures are typed ... bad options throw a TypeError/RangeError naming the option";
  // the ESDK (and its users) call this option `encryptionContext`.
  it('decrypt / decryptFile / decryptStream / encrypt refuse an unknown option', async () => {
    const e = new Envelope({ keyring: rawAes() });
    const message = await e.encrypt('x', { context: { tenant: 'acme' } });
    const wrong = { encryptionContext: { tenant: 'other-tenant' } } as never;
    // Observed: decrypts the acme message although the caller "required" another tenant.
    await expect(settle(e.decrypt(message, wrong))).resolves.toBeInstanceOf(TypeError);
    const src = join(dir, 'm.enc');
    writeFileSync(src, message);
    await expect(settle(e.decryptFile(src, join(dir, 'm.out'), wrong))).resolves.toBeInstanceOf(TypeError);
    expect(() => e.decryptStream(wrong)).toThrow(TypeError);
    // Observed: encrypts under the empty context instead of refusing.
    await expect(settle(e.encrypt('x', wrong))).resolves.toBeInstanceOf(TypeError);
  });
});

describe('F2: MultiKeyring copies its children\'s error text (secrets) into its own message', () => {
  // src/keyring-call.ts: "The original's message is not copied into ours: a custom keyring's text
  // may carry secrets"; README: errors carry no secrets. MultiKeyring quotes 300 chars of each.
  it('decrypt error message does not contain a failing child keyring\'s message', async () => {
    const inner = rawAes();
    const message = await new Envelope({ keyring: inner }).encrypt('x');
    const SECRET = 'postgres://app:hunter2@db';
    const child: Keyring = {
      onEncrypt: (i) => inner.onEncrypt(i),
      onDecrypt: async () => {
        throw new Error(`cannot reach ${SECRET}`);
      },
    };
    const err = (await settle(new Envelope({ keyring: new MultiKeyring({ children: [child] }) }).decrypt(message))) as Error;
    expect(err).toMatchObject({ code: 'ERR_NO_DECRYPTABLE_KEY' });
    expect(err.message).not.toContain(SECRET); // observed: "... [1] Error: cannot reach postgres://app:hunter2@db"
  });
});

describe('F3: more KMS keys than maxEncryptedDataKeys: accepted at construction, every encrypt calls KMS then fails', () => {
  // README/EnvelopeOptions: maxEncryptedDataKeys ... "encrypt refuses to write more"; RULES/DESIGN:
  // options validated once at construction; limits checked before any KMS call.
  it('construction refuses it (or encrypt fails before any KMS request)', async () => {
    const kms = new LocalKms();
    const arns: string[] = [];
    for (let i = 0; i < 3; i++) arns.push((await kms.createKey({})).arn);
    let e: Envelope;
    try {
      e = new Envelope({ kms: { keyIds: arns, client: kms.client() }, maxEncryptedDataKeys: 2, cache: false });
    } catch (err) {
      expect(err).toBeInstanceOf(RangeError);
      return;
    }
    await expect(settle(e.encrypt('x'))).resolves.toMatchObject({ code: 'ERR_LIMIT_EXCEEDED' });
    // Observed: 3 (GenerateDataKey + 2 Encrypt) per encrypt, a data key generated and thrown away each time.
    expect(e.stats().kmsCalls).toBe(0);
  });
});

describe('F4: signed messages are malleable: a rewritten footer (s -> n - s) decrypts', () => {
  // README "Security notes": "Every changed bit or byte is rejected with an EnvelopeError."
  it('a message whose signature bytes changed is rejected', async () => {
    const e = new Envelope({ keyring: rawAes(), suite: 0x0578 });
    const m = await e.encrypt('hello');
    const h = parseHeader(m, { maxEncryptedDataKeys: 10 })!;
    const bodyEnd = h.length + 4 + 4 + 12 + 4 + 5 + 16; // one final frame of 5 bytes
    const sig = m.subarray(bodyEnd + 2, bodyEnd + 2 + m.readUInt16BE(bodyEnd));
    expect(bodyEnd + 2 + sig.length).toBe(m.length);
    let o = sig[1]! & 0x80 ? 3 : 2;
    const r = sig.subarray(o + 2, o + 2 + sig[o + 1]!);
    o += 2 + r.length;
    const s = sig.subarray(o + 2, o + 2 + sig[o + 1]!);
    const n = BigInt('0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973');
    let hex = (n - BigInt('0x' + s.toString('hex'))).toString(16);
    if (hex.length % 2) hex = '0' + hex;
    let s2 = Buffer.from(hex, 'hex');
    if (s2[0]! & 0x80) s2 = Buffer.concat([Buffer.from([0]), s2]);
    const ints = Buffer.concat([Buffer.from([2, r.length]), r, Buffer.from([2, s2.length]), s2]);
    const der = Buffer.concat([ints.length >= 128 ? Buffer.from([0x30, 0x81, ints.length]) : Buffer.from([0x30, ints.length]), ints]);
    const len = Buffer.alloc(2);
    len.writeUInt16BE(der.length);
    const changed = Buffer.concat([m.subarray(0, bodyEnd), len, der]);
    expect(changed.equals(m)).toBe(false);
    // Observed: decrypts to 'hello' (OpenSSL accepts both s and n - s; nothing enforces low-S).
    await expect(settle(e.decrypt(changed))).resolves.toMatchObject({ code: 'ERR_DECRYPTION_FAILED' });
  });
});

it('temp dir holds no leftovers', () => {
  expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
});
