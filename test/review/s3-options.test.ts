/**
 * Review finding: uploadEncrypted validated options.metadata only after it had started encrypting
 * (a KMS call, the body read and left hanging). A bad option must fail before anything happens.
 */
import { describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { Envelope } from '../../src/index.js';
import { uploadEncrypted } from '../../src/s3/index.js';
import { countingKeyring } from '../support/keyrings.js';

describe('uploadEncrypted with bad metadata', () => {
  const client = { send: async () => { throw new Error('no request may be sent'); } };
  const bad: Record<string, string>[] = [{ a: 1 as never }, { 'kms-envelope': 'x' }];
  for (const metadata of bad) {
    it(`${JSON.stringify(metadata)}: TypeError before the body is read or the keyring is called`, async () => {
      const keyring = countingKeyring();
      const envelope = new Envelope({ keyring });
      let reads = 0;
      const body = new Readable({ read() { reads++; this.push(Buffer.alloc(1024)); this.push(null); } });
      await expect(uploadEncrypted({ client, bucket: 'b', key: 'k', body, envelope, metadata })).rejects.toThrow(TypeError);
      await expect(uploadEncrypted({ client, bucket: 'b', key: 'k', body: 'bytes', envelope, metadata })).rejects.toThrow(TypeError);
      await new Promise((r) => setTimeout(r, 20));
      expect(keyring.calls).toBe(0);
      expect(reads).toBe(0);
      expect(body.destroyed).toBe(false);
    });
  }
});

describe('downloadDecrypted with a bad required context', () => {
  it('is a TypeError before GetObject is sent (no response body left open)', async () => {
    let sends = 0;
    const body = new Readable({ read() { this.push(null); } });
    const client = { send: async () => { sends++; return { Body: body, Metadata: {} }; } };
    const envelope = new Envelope({ keyring: countingKeyring() });
    const { downloadDecrypted } = await import('../../src/s3/index.js');
    const context = { a: 1 } as never;
    await expect(downloadDecrypted({ client, bucket: 'b', key: 'k', envelope, context })).rejects.toThrow(TypeError);
    expect(sends).toBe(0);
  });
});
