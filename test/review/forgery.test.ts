/**
 * Review finding (issue 10, hole 1): forgery through an unsigned suite.
 *
 * Whoever can unwrap a signed message's data key (any reader of it) can keep its encrypted data
 * keys and its encryption context, `aws-crypto-public-key` included, and write a fresh header and
 * body under an unsigned suite with the same data key. The keyring unwraps the same EDKs (the
 * context it authenticates is unchanged), the header and frame tags verify, and without a check the
 * message decrypts as if the signer had written it. framework/default-cmm.md, "Decrypt Materials":
 * a request with an unsigned suite whose context holds the public key MUST fail, and so MUST a
 * signed suite without it, both without returning any decryption materials, i.e. before the
 * keyring (or KMS, or the data-key cache) is asked for a key.
 *
 * The messages here are built the way an attacker builds them: from a real message's EDKs and
 * context, with the independent reference writer (test/format/reference-writer.ts) under the data
 * key the attacker unwrapped on their own.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Envelope, RawAesKeyring, type Keyring } from '../../src/index.js';
import { parseHeader, type MessageHeader } from '../../src/format/header.js';
import { SUITES } from '../../src/format/suites.js';
import { PUBLIC_KEY_CONTEXT_KEY } from '../../src/format/context.js';
import { generateSigningKey } from '../../src/crypto/ecdsa.js';
import type { EncryptionContext } from '../../src/types.js';
import { writeMessage } from '../format/reference-writer.js';
import { streamThrough } from './helpers.js';

const PLAINTEXT = Buffer.from('pay 1,000,000 to mallory');
const FORGED_PLAINTEXT = Buffer.from('pay 9,000,000 to mallory');
const LEGACY = 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' as const;
const hex = (id: number) => '0x' + id.toString(16).padStart(4, '0');

/** A raw AES keyring that counts decrypt calls; the attacker's own unwrap goes to `inner`. */
function spyKeyring(): Keyring & { decryptCalls: number; inner: RawAesKeyring } {
  const inner = new RawAesKeyring({ keyNamespace: 'forgery', keyName: 'k', key: randomBytes(32) });
  const k = {
    inner,
    decryptCalls: 0,
    onEncrypt: (i: Parameters<Keyring['onEncrypt']>[0]) => inner.onEncrypt(i),
    onDecrypt: (i: Parameters<Keyring['onDecrypt']>[0]) => (k.decryptCalls++, inner.onDecrypt(i)),
  };
  return k;
}

const header = (m: Buffer): MessageHeader => parseHeader(m, { maxEncryptedDataKeys: 10 })!;

/** A genuine message of `suiteId` written by the key owner (signed suites: with their public key). */
async function genuine(ring: ReturnType<typeof spyKeyring>, suiteId: number, context: EncryptionContext): Promise<Buffer> {
  const suite = SUITES.get(suiteId)!;
  let full = context;
  let signingKey;
  if (suite.signatureCurve !== undefined) {
    const pair = generateSigningKey(suite);
    signingKey = pair.privateKey;
    full = { ...context, [PUBLIC_KEY_CONTEXT_KEY]: pair.publicKey };
  }
  const out = await ring.inner.onEncrypt({ suiteId, context: full });
  return writeMessage({
    suite,
    dataKey: Buffer.from(out.dataKey),
    context: full,
    edks: out.encryptedDataKeys,
    plaintext: PLAINTEXT,
    frameLength: 4096,
    signingKey,
  });
}

/**
 * The attacker's rewrite of `original` under `suiteId`: same EDKs and context, the data key they
 * unwrapped themselves, their own plaintext. A signed target suite gets a signature by a key of the
 * attacker's (there is no public key in the context to check it against).
 */
async function forge(ring: ReturnType<typeof spyKeyring>, original: Buffer, suiteId: number): Promise<Buffer> {
  const h = header(original);
  const dataKey = await ring.inner.onDecrypt({ suiteId: h.suite.id, context: h.context, encryptedDataKeys: h.encryptedDataKeys });
  const suite = SUITES.get(suiteId)!;
  return writeMessage({
    suite,
    dataKey: Buffer.from(dataKey!),
    context: { ...h.context },
    edks: [...h.encryptedDataKeys],
    plaintext: FORGED_PLAINTEXT,
    frameLength: 4096,
    signingKey: suite.signatureCurve === undefined ? undefined : generateSigningKey(suite).privateKey,
  });
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kms-envelope-forgery-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/**
 * Every decrypt entry of the library on one message: buffer decrypt, decryptStream (whole message
 * and 1-byte chunks), decryptFile. Each must fail with ERR_MALFORMED_MESSAGE, release nothing, and
 * leave the keyring uncalled.
 */
async function expectRefusedEverywhere(forged: Buffer, ring: ReturnType<typeof spyKeyring>, legacy: boolean): Promise<void> {
  const options = { keyring: ring, ...(legacy ? { commitmentPolicy: LEGACY } : {}) };
  for (const cache of [undefined, false] as const) {
    const envelope = new Envelope({ ...options, ...(cache === false ? { cache } : {}) });
    const before = ring.decryptCalls;
    await expect(envelope.decrypt(forged)).rejects.toMatchObject({ code: 'ERR_MALFORMED_MESSAGE' });
    for (const chunk of [forged.length, 1]) {
      const r = await streamThrough(envelope, forged, chunk);
      expect(r.error).toMatchObject({ code: 'ERR_MALFORMED_MESSAGE' });
      expect(r.out.length).toBe(0);
    }
    const sub = mkdtempSync(join(dir, 'file-'));
    writeFileSync(join(sub, 'forged.enc'), forged);
    await expect(envelope.decryptFile(join(sub, 'forged.enc'), join(sub, 'forged.out'))).rejects.toMatchObject({
      code: 'ERR_MALFORMED_MESSAGE',
    });
    // Neither the destination nor a temporary file (`.<dst>.<random>.tmp`) is left behind.
    expect(readdirSync(sub)).toEqual(['forged.enc']);
    expect(ring.decryptCalls - before).toBe(0);
    expect(envelope.stats().keyringCalls).toBe(0);
  }
}

// Signed suite -> unsigned suite with the same data key length (what the attacker can write).
const SIGNED_TO_UNSIGNED: ReadonlyArray<[number, number]> = [
  [0x0578, 0x0478],
  [0x0214, 0x0114],
  [0x0214, 0x0014],
  [0x0346, 0x0146],
  [0x0346, 0x0046],
  [0x0378, 0x0178],
  [0x0378, 0x0078],
];

describe('framework/default-cmm.md "Decrypt Materials": the public verification key and the suite agree, checked before any keyring call', () => {
  it.each(SIGNED_TO_UNSIGNED.map(([s, u]) => [hex(u), hex(s), s, u] as const))(
    'an unsigned suite (%s) whose context holds aws-crypto-public-key (forged from a signed %s message) fails with ERR_MALFORMED_MESSAGE before any keyring call, through decrypt, decryptStream and decryptFile',
    async (_u, _s, signedId, unsignedId) => {
      const ring = spyKeyring();
      const legacy = !SUITES.get(signedId)!.committing;
      const original = await genuine(ring, signedId, { purpose: 'payments' });
      // The genuine message decrypts (so the EDKs and context the attacker kept are the real ones).
      const ok = await new Envelope({ keyring: ring, ...(legacy ? { commitmentPolicy: LEGACY } : {}) }).decrypt(original);
      expect(ok.plaintext.equals(PLAINTEXT)).toBe(true);
      const forged = await forge(ring, original, unsignedId);
      expect(header(forged).suite.id).toBe(unsignedId);
      expect(header(forged).context[PUBLIC_KEY_CONTEXT_KEY]).toBe(header(original).context[PUBLIC_KEY_CONTEXT_KEY]);
      await expectRefusedEverywhere(forged, ring, legacy);
    },
  );

  it.each(SIGNED_TO_UNSIGNED.map(([s, u]) => [hex(s), hex(u), s, u] as const))(
    'a signed suite (%s) without aws-crypto-public-key in its context (written over an unsigned %s message) fails with ERR_MALFORMED_MESSAGE before any keyring call, through decrypt, decryptStream and decryptFile',
    async (_s, _u, signedId, unsignedId) => {
      const ring = spyKeyring();
      const legacy = !SUITES.get(signedId)!.committing;
      const original = await genuine(ring, unsignedId, { purpose: 'payments' });
      const forged = await forge(ring, original, signedId);
      expect(header(forged).suite.id).toBe(signedId);
      expect(header(forged).context[PUBLIC_KEY_CONTEXT_KEY]).toBeUndefined();
      await expectRefusedEverywhere(forged, ring, legacy);
    },
  );

  it('a data key cached from the genuine signed message does not let the forged unsigned one through: no cache lookup, no keyring call', async () => {
    const ring = spyKeyring();
    const envelope = new Envelope({ keyring: ring, suite: 0x0578 });
    const original = await envelope.encrypt(PLAINTEXT, { context: { purpose: 'payments' } });
    expect((await envelope.decrypt(original)).plaintext.equals(PLAINTEXT)).toBe(true);
    expect((await envelope.decrypt(original)).plaintext.equals(PLAINTEXT)).toBe(true);
    const warm = envelope.stats();
    expect(warm.decryptHits).toBe(1);
    expect(ring.decryptCalls).toBe(1);
    const forged = await forge(ring, original, 0x0478);
    await expect(envelope.decrypt(forged)).rejects.toMatchObject({ code: 'ERR_MALFORMED_MESSAGE' });
    const r = await streamThrough(envelope, forged, 7);
    expect(r.error).toMatchObject({ code: 'ERR_MALFORMED_MESSAGE' });
    expect(r.out.length).toBe(0);
    const after = envelope.stats();
    expect(after.decryptHits).toBe(warm.decryptHits);
    expect(after.decryptMisses).toBe(warm.decryptMisses);
    expect(after.keyringCalls).toBe(warm.keyringCalls);
    expect(ring.decryptCalls).toBe(1);
  });

  it('the error names the rule, not the key: no public key bytes in the message', async () => {
    const ring = spyKeyring();
    const original = await genuine(ring, 0x0578, {});
    const forged = await forge(ring, original, 0x0478);
    const err = (await new Envelope({ keyring: ring }).decrypt(forged).catch((e: unknown) => e)) as Error;
    expect(err).toMatchObject({ code: 'ERR_MALFORMED_MESSAGE', name: 'MalformedMessageError' });
    expect(err.message).toContain(PUBLIC_KEY_CONTEXT_KEY);
    expect(err.message).not.toContain(header(original).context[PUBLIC_KEY_CONTEXT_KEY]!);
  });
});
