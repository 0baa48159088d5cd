/**
 * @aws-sdk/client-kms must load only when a request actually needs it: raw keyrings and a
 * KmsKeyring over an in-process KmsClient never import it (cold starts, local-only use).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';

const loads = vi.hoisted(() => ({ count: 0 }));
vi.mock('@aws-sdk/client-kms', async (importOriginal) => {
  loads.count++;
  return await importOriginal();
});

describe('lazy @aws-sdk/client-kms', () => {
  it('is not imported by local-only use, and is imported by the first SDK request', async () => {
    const { KmsKeyring, RawAesKeyring, createDefaultKmsClient } = await import('../../src/keyrings/index.js');
    const { FakeKms } = await import('./fake-kms.js');
    const kms = new FakeKms();
    const arn = kms.createKey();
    const ring = new KmsKeyring({ keyId: arn, client: kms });
    const out = await ring.onEncrypt({ suiteId: 0x0478, context: {} });
    await ring.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: out.encryptedDataKeys });
    const aes = new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', key: randomBytes(32) });
    await aes.onEncrypt({ suiteId: 0x0478, context: {} });
    const lazy = createDefaultKmsClient({ region: 'us-east-1', endpoint: 'http://127.0.0.1:9' });
    expect(loads.count).toBe(0);

    // Credentials from the environment, so the SDK never tries instance metadata (non-loopback).
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIDLOCAL');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'local-secret');
    vi.stubEnv('AWS_EC2_METADATA_DISABLED', 'true');
    // Port 9 (discard) on loopback: nothing listens, so the request fails fast, after loading the SDK.
    const err = await lazy.generateDataKey({ keyId: 'alias/x', numberOfBytes: 32 }).catch((e) => e);
    expect(loads.count).toBe(1);
    expect(err.code).toBe('ERR_KMS');
    expect(lazy.kmsCalls).toBe(1);
    vi.unstubAllEnvs();
  });
});
