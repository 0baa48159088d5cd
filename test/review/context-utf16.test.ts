/**
 * Review finding (issue 10, hole 2): an encryption context with ill-formed UTF-16 (an unpaired
 * surrogate, e.g. keys '\uD800' and '\uDC00', or a value ending in half an emoji) was silently
 * rewritten to U+FFFD when the header was serialized as UTF-8. Two keys became one (duplicate keys
 * in the header: a message nobody can parse), or the stored context no longer matched the
 * caller's (a message the caller's own required context rejects). Encrypt must refuse such a
 * context with a TypeError naming the option and the key (never the value), before any keyring
 * call and before any output exists, on every path: buffer, stream, file, CLI, S3. Decrypt's
 * required context likewise.
 *
 * Specification: structures.md, "Encryption Context" (keys and values are UTF-8 strings);
 * data-format/message-header.md, "Encryption Context" (UTF-8 bytes, no duplicate keys).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Envelope, KmsKeyring, RawAesKeyring, RawRsaKeyring, type Keyring } from '../../src/index.js';
import { run, type Io } from '../../src/cli/run.js';
import { LocalKms } from '../../src/local-kms/index.js';
import { downloadDecrypted, downloadDecryptedBuffer, uploadEncrypted } from '../../src/s3/index.js';
import { countingKeyring } from '../support/keyrings.js';

const dir = mkdtempSync(join(tmpdir(), 'kms-envelope-utf16-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Ill-formed contexts, and the key the error must name (as JSON.stringify writes it). */
const ILL_FORMED: { what: string; context: Record<string, string>; key: string }[] = [
  { what: 'a lone high surrogate key', context: { '\uD800': 'value-one' }, key: '"\\ud800"' },
  { what: 'a lone low surrogate key', context: { '\uDC00': 'value-two' }, key: '"\\udc00"' },
  // Both become U+FFFD in UTF-8: the header would carry the same key twice.
  { what: 'keys that collide as U+FFFD', context: { '\uD800': 'value-one', '\uDC00': 'value-two' }, key: '"\\ud800"' },
  { what: 'a value ending in half an emoji', context: { tenant: 'secret-value \uD83D' }, key: '"tenant"' },
  { what: 'a key with a reversed surrogate pair', context: { ['x\uDE00\uD83D']: 'value-three' }, key: '"x\\ude00\\ud83d"' },
];

/** The refusal: a TypeError naming `option` and the key, never the value. */
function expectRefusal(err: unknown, option: string, key: string, context: Record<string, string>): void {
  expect(err).toBeInstanceOf(TypeError);
  const message = (err as Error).message;
  expect(message).toContain(option);
  expect(message).toContain(key);
  expect(message).toMatch(/UTF-16|surrogate/);
  for (const v of Object.values(context)) expect(message).not.toContain(v);
}

async function refusal(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a refusal, but the call succeeded');
}

describe('encrypt refuses an ill-formed UTF-16 context with a TypeError naming the key', () => {
  for (const { what, context, key } of ILL_FORMED) {
    it(`${what}: encrypt (cached and uncached), encryptStream, encryptFile; no keyring call, no file`, async () => {
      for (const cache of [undefined, false] as const) {
        const keyring = countingKeyring();
        const envelope = new Envelope({ keyring, ...(cache === false ? { cache } : {}) });
        expectRefusal(await refusal(() => envelope.encrypt('x', { context })), 'options.context', key, context);
        expectRefusal(await refusal(() => envelope.encryptStream({ context })), 'options.context', key, context);
        const src = join(dir, 'plain.txt');
        writeFileSync(src, 'plain');
        const dst = join(dir, `out-${cache}.enc`);
        expectRefusal(await refusal(() => envelope.encryptFile(src, dst, { context })), 'options.context', key, context);
        expect(existsSync(dst)).toBe(false);
        expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
        expect(keyring.calls).toBe(0);
      }
    });
  }

  it('well-formed non-ASCII contexts (emoji, CJK, astral keys) still round-trip', async () => {
    const envelope = new Envelope({ keyring: countingKeyring() });
    const context = { '🔑': 'v😀', 日本: '語', ['a\uD83D\uDE00']: '\uD83D\uDE00z' };
    const m = await envelope.encrypt('x', { context });
    const out = await envelope.decrypt(m, { context });
    expect(out.context).toEqual(context);
  });

  it('a long ill-formed key is named truncated', async () => {
    const k = 'k'.repeat(500) + '\uD800';
    const envelope = new Envelope({ keyring: countingKeyring() });
    const err = await refusal(() => envelope.encrypt('x', { context: { [k]: 'v' } }));
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toContain('options.context');
    expect((err as Error).message).not.toContain('k'.repeat(100));
    expect((err as Error).message.length).toBeLessThan(300);
  });
});

describe("decrypt refuses an ill-formed UTF-16 required context with a TypeError naming the key", () => {
  for (const { what, context, key } of ILL_FORMED) {
    it(`${what}: decrypt, decryptStream, decryptFile; no keyring call, no file`, async () => {
      const keyring = countingKeyring();
      const envelope = new Envelope({ keyring });
      const message = await envelope.encrypt('x', { context: { tenant: 'a' } });
      const calls = keyring.calls;
      expectRefusal(await refusal(() => envelope.decrypt(message, { context })), 'options.context', key, context);
      expectRefusal(await refusal(() => envelope.decryptStream({ context })), 'options.context', key, context);
      const src = join(dir, 'message.enc');
      writeFileSync(src, message);
      const dst = join(dir, 'back.txt');
      expectRefusal(await refusal(() => envelope.decryptFile(src, dst, { context })), 'options.context', key, context);
      expect(existsSync(dst)).toBe(false);
      expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
      expect(keyring.calls).toBe(calls);
    });
  }
});

describe('CLI: an ill-formed --context is a usage error (exit 2), no output file', () => {
  // From a shell on Linux, Node turns bytes that are not UTF-8 into U+FFFD before the CLI sees
  // them; argv reaches run() with lone surrogates on Windows (UTF-16 command lines) and in-process.
  let kmsDir: string;
  let arn: string;
  let message: string;
  beforeAll(async () => {
    kmsDir = join(dir, 'cli-kms');
    const kms = new LocalKms({ dataDir: kmsDir });
    arn = (await kms.createKey({})).arn;
    kms.close();
    writeFileSync(join(dir, 'cli-plain.txt'), 'secret');
    message = join(dir, 'cli-message.enc');
    expect(await run(['encrypt', '--local', kmsDir, '--key', arn, '-c', 'tenant=a', '-i', join(dir, 'cli-plain.txt'), '-o', message], io())).toBe(0);
  });

  const pairs: [string, string][] = [
    ['\uD800=a', '"\\ud800"'],
    ['tenant=secret-value \uD83D', '"tenant"'],
  ];
  for (const [pair, key] of pairs) {
    it(`encrypt -c ${JSON.stringify(pair)}`, async () => {
      const out = join(dir, 'cli-out.enc');
      const r = io();
      const code = await run(['encrypt', '--local', kmsDir, '--key', arn, '-c', 'ok=1', '-c', pair, '-i', join(dir, 'cli-plain.txt'), '-o', out], r);
      expect(r.err()).toMatch(/ERR_USAGE/);
      expect(code).toBe(2);
      expect(r.err()).toContain('--context');
      expect(r.err()).toContain(key);
      expect(r.err()).not.toContain('secret-value');
      expect(existsSync(out)).toBe(false);
      // stdout too: nothing written
      const r2 = io('secret');
      expect(await run(['encrypt', '--local', kmsDir, '--key', arn, '-c', pair, '-o', '-'], r2)).toBe(2);
      expect(r2.out().length).toBe(0);
    });

    it(`decrypt -c ${JSON.stringify(pair)}`, async () => {
      const out = join(dir, 'cli-back.txt');
      const r = io();
      const code = await run(['decrypt', '--local', kmsDir, '-c', pair, '-i', message, '-o', out], r);
      expect(r.err()).toMatch(/ERR_USAGE/);
      expect(code).toBe(2);
      expect(r.err()).toContain('--context');
      expect(r.err()).toContain(key);
      expect(r.err()).not.toContain('secret-value');
      expect(existsSync(out)).toBe(false);
      const r2 = io(readFileSync(message));
      expect(await run(['decrypt', '--local', kmsDir, '-c', pair, '-o', '-'], r2)).toBe(2);
      expect(r2.out().length).toBe(0);
    });
  }
});

describe('S3: an ill-formed context is a TypeError before any S3 request', () => {
  const bad = { '\uD800': 'value-one', '\uDC00': 'value-two' };
  function client() {
    const c = { sends: 0, send: async () => { c.sends++; throw new Error('no request may be sent'); } };
    return c;
  }

  it('uploadEncrypted (bytes and a Readable body): no keyring call, body not read', async () => {
    const keyring = countingKeyring();
    const envelope = new Envelope({ keyring });
    const c = client();
    let reads = 0;
    const body = new Readable({ read() { reads++; this.push(Buffer.alloc(16)); this.push(null); } });
    expectRefusal(await refusal(() => uploadEncrypted({ client: c, bucket: 'b', key: 'k', body: 'bytes', envelope, context: bad })), 'options.context', '"\\ud800"', bad);
    expectRefusal(await refusal(() => uploadEncrypted({ client: c, bucket: 'b', key: 'k', body, envelope, context: bad })), 'options.context', '"\\ud800"', bad);
    await new Promise((r) => setTimeout(r, 20));
    expect(c.sends).toBe(0);
    expect(keyring.calls).toBe(0);
    expect(reads).toBe(0);
  });

  it('downloadDecrypted and downloadDecryptedBuffer: no GetObject sent', async () => {
    const envelope = new Envelope({ keyring: countingKeyring() });
    const c = client();
    expectRefusal(await refusal(() => downloadDecrypted({ client: c, bucket: 'b', key: 'k', envelope, context: bad })), 'options.context', '"\\ud800"', bad);
    expectRefusal(await refusal(() => downloadDecryptedBuffer({ client: c, bucket: 'b', key: 'k', envelope, context: bad })), 'options.context', '"\\ud800"', bad);
    expect(c.sends).toBe(0);
  });
});

describe('strings keyrings and KMS put in the header are well-formed UTF-16', () => {
  it('RawAesKeyring and RawRsaKeyring refuse an ill-formed keyNamespace or keyName (it would be written as U+FFFD)', async () => {
    const key = Buffer.alloc(32, 1);
    expect(() => new RawAesKeyring({ keyNamespace: 'ns\uD800', keyName: 'k', key })).toThrow(TypeError);
    expect(() => new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k\uDC00', key })).toThrow(/options\.keyName/);
    const { generateKeyPairSync } = await import('node:crypto');
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    expect(() => new RawRsaKeyring({ keyNamespace: '\uD83D', keyName: 'k', publicKey, privateKey, padding: 'OAEP_SHA256' })).toThrow(/options\.keyNamespace/);
  });

  it('an EDK whose providerId is ill-formed is a KeyringError (ERR_KEYRING), not an unreadable message', async () => {
    const inner = countingKeyring();
    const keyring: Keyring = {
      async onEncrypt(i) {
        const out = await inner.onEncrypt(i);
        return { ...out, encryptedDataKeys: out.encryptedDataKeys.map((e) => ({ ...e, providerId: 'n\uD800' })) };
      },
      onDecrypt: (i) => inner.onDecrypt(i),
    };
    const envelope = new Envelope({ keyring, cache: false });
    await expect(envelope.encrypt('x')).rejects.toMatchObject({ code: 'ERR_KEYRING' });
  });

  it('a KMS answer whose KeyId is ill-formed is refused (ERR_KMS, MalformedResponse)', async () => {
    const arn = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab\uD800';
    const client = {
      async generateDataKey() {
        return { keyId: arn, plaintext: Buffer.alloc(32, 7), ciphertextBlob: Buffer.alloc(8) };
      },
      async encrypt() {
        return { keyId: arn, ciphertextBlob: Buffer.alloc(8) };
      },
      async decrypt() {
        return { keyId: arn, plaintext: Buffer.alloc(32, 7) };
      },
    };
    const envelope = new Envelope({ keyring: new KmsKeyring({ keyId: 'alias/app', client }), cache: false });
    await expect(envelope.encrypt('x')).rejects.toMatchObject({ code: 'ERR_KMS', kmsErrorName: 'MalformedResponse' });
  });
});

function io(input: string | Buffer = ''): Io & { out(): Buffer; err(): string } {
  const stdin = new PassThrough();
  stdin.end(input);
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  let err = '';
  stdout.on('data', (d: Buffer) => out.push(d));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  return { stdin, stdout, stderr, env: {}, out: () => Buffer.concat(out), err: () => err };
}
