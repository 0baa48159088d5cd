/**
 * Where this library deliberately chose a different default than the specification requires (see
 * test/spec/compliance/README.md, status `deviation`, and the README's security notes). Each test
 * pins what the library does instead, so a change to one of these defaults is a visible decision.
 * None of them affects what the ESDKs can read: every ESDK reads any suite, frame length and
 * number of messages per data key.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BranchKeyStore, DirectoryBranchKeyStorage, Envelope } from '../../src/index.js';
import { LocalKms } from '../../src/local-kms/index.js';
import { parseHeader } from '../../src/format/header.js';
import { countingKeyring } from '../support/keyrings.js';

describe('deliberate deviations from the specification, pinned', () => {
  it('default suite is 0x0478 (committing, unsigned), not 0x0578; 0x0578 is one option away', async () => {
    // commitment-policy.md / default-cmm.md make 0x0578 the default. The signature proves the writer
    // to readers who can also decrypt; most users of a KMS envelope have one trust domain where every
    // reader may also write, and an ECDSA P-384 signature and verification per message costs more
    // than the rest of a 1 KiB message together (README benchmark table). DESIGN.md fixes 0x0478.
    const keyring = countingKeyring();
    const message = await new Envelope({ keyring }).encrypt('x');
    expect(message.readUInt16BE(1)).toBe(0x0478);
    const signed = await new Envelope({ keyring, suite: 0x0578 }).encrypt('x');
    expect(signed.readUInt16BE(1)).toBe(0x0578);
  });

  it('default frame length is 262,144 bytes, not 4096', async () => {
    // encrypt.md makes 4096 the default. Measured here (EnvelopeOptions.frameLength), 4 KiB frames run
    // at a fraction of AES-GCM's speed; 256 KiB frames reach ~86-88% of one-shot AES-256-GCM while a
    // stream decrypt still holds only one frame.
    const keyring = countingKeyring();
    const envelope = new Envelope({ keyring });
    expect(envelope.frameLength).toBe(262_144);
    const message = await envelope.encrypt(randomBytes(10));
    expect(parseHeader(message, { maxEncryptedDataKeys: 1 })!.frameLength).toBe(262_144);
  });

  it('default cache limit is 10,000 messages per data key, not 2^32', async () => {
    // caching-cmm.md makes 2^32 the default "limit messages". A cached data key that leaks decrypts
    // every message it encrypted; 10,000 bounds that while still making one KMS call per 10,000
    // messages. 2^32 is the largest value the option accepts (README "Cache limits and why").
    const keyring = countingKeyring();
    const envelope = new Envelope({ keyring });
    const payload = Buffer.alloc(16);
    for (let i = 0; i < 10_000; i++) await envelope.encrypt(payload);
    expect(keyring.calls).toBe(1);
    await envelope.encrypt(payload);
    expect(keyring.calls).toBe(2);
    expect(() => new Envelope({ keyring, cache: { maxMessagesPerKey: 2 ** 32 } })).not.toThrow();
  });

  it('versionKey returns the branch key id and the new active version, not nothing', async () => {
    // branch-key-store.md VersionKey returns an empty response. The version is returned so the
    // caller can log which version became active; the items written are the specification's.
    const dir = mkdtempSync(join(tmpdir(), 'kms-envelope-dev-'));
    const kms = new LocalKms();
    try {
      const store = new BranchKeyStore({
        storage: new DirectoryBranchKeyStorage({ dir }),
        logicalKeyStoreName: 'dev',
        kmsConfiguration: { kmsKeyArn: (await kms.createKey()).arn },
        kmsClient: kms.client(),
      });
      const { branchKeyId, branchKeyVersion: first } = await store.createKey();
      const out = await store.versionKey(branchKeyId);
      expect(Object.keys(out).sort()).toEqual(['branchKeyId', 'branchKeyVersion']);
      expect(out.branchKeyId).toBe(branchKeyId);
      expect(out.branchKeyVersion).not.toBe(first);
      expect((await store.getActiveBranchKey(branchKeyId)).branchKeyVersion).toBe(out.branchKeyVersion);
    } finally {
      kms.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
