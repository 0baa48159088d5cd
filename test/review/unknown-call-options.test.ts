/**
 * Review 10b, finding 1: per-call options were not checked against the names each call knows, so
 * `decrypt(msg, { encryptionContext: { tenant: 'other' } })` (the ESDK's name for our `context`)
 * silently skipped the required-context check, and `encrypt(..., { encryptionContext })` wrote an
 * empty context. Every per-call options object now refuses unknown own keys with a TypeError naming
 * the option, before any keyring (KMS) call, S3 request or file access.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { Envelope } from '../../src/index.js';
import { downloadDecrypted, downloadDecryptedBuffer, uploadEncrypted } from '../../src/s3/index.js';
import { countingKeyring } from '../support/keyrings.js';

const dir = mkdtempSync(join(tmpdir(), 'kms-envelope-call-options-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The ESDK's name for `context`: the likeliest mistake, and the one that disabled a check. */
const esdkNamed = { encryptionContext: { tenant: 'other-tenant' } } as never;
const misnamed = /encryptionContext.*`context`/;

async function setup() {
  const keyring = countingKeyring();
  const envelope = new Envelope({ keyring });
  const message = await envelope.encrypt('x', { context: { tenant: 'acme' } });
  const src = join(dir, `m-${keyring.calls}-${Math.random()}.enc`);
  writeFileSync(src, message);
  keyring.calls = 0;
  return { keyring, envelope, message, src };
}

describe('Envelope per-call options refuse unknown names', () => {
  it('decrypt: `encryptionContext` is a TypeError naming it (was: decrypted, required context unchecked)', async () => {
    const { keyring, envelope, message } = await setup();
    await expect(envelope.decrypt(message, esdkNamed)).rejects.toThrow(TypeError);
    await expect(envelope.decrypt(message, esdkNamed)).rejects.toThrow(misnamed);
    await expect(envelope.decrypt(message, { context: { tenant: 'acme' }, bogus: 1 } as never)).rejects.toThrow(
      /"bogus"/,
    );
    expect(keyring.calls).toBe(0);
    // The known names still work.
    await expect(
      envelope.decrypt(message, { context: { tenant: 'acme' }, signaturePolicy: 'ALLOW_ENCRYPT_ALLOW_DECRYPT' }),
    ).resolves.toMatchObject({ context: { tenant: 'acme' } });
  });

  it('decryptStream: TypeError when called, before any keyring call', async () => {
    const { keyring, envelope } = await setup();
    expect(() => envelope.decryptStream(esdkNamed)).toThrow(TypeError);
    expect(() => envelope.decryptStream(esdkNamed)).toThrow(misnamed);
    expect(() => envelope.decryptStream({ signal: new AbortController().signal } as never)).toThrow(/"signal"/);
    expect(keyring.calls).toBe(0);
  });

  it('decryptFile: TypeError before the file is read or dst written', async () => {
    const { keyring, envelope, src } = await setup();
    const dst = join(dir, 'decrypted.out');
    await expect(envelope.decryptFile(src, dst, esdkNamed)).rejects.toThrow(misnamed);
    await expect(envelope.decryptFile(src, dst, { plaintextLength: 1 } as never)).rejects.toThrow(/"plaintextLength"/);
    expect(existsSync(dst)).toBe(false);
    expect(keyring.calls).toBe(0);
    // `signal` is a decryptFile option.
    await envelope.decryptFile(src, dst, { context: { tenant: 'acme' }, signal: new AbortController().signal });
    expect(existsSync(dst)).toBe(true);
  });

  it('encrypt / encryptDetailed: TypeError (was: encrypted under the empty context)', async () => {
    const { keyring, envelope } = await setup();
    await expect(envelope.encrypt('x', esdkNamed)).rejects.toThrow(TypeError);
    await expect(envelope.encrypt('x', esdkNamed)).rejects.toThrow(misnamed);
    await expect(envelope.encryptDetailed('x', esdkNamed)).rejects.toThrow(misnamed);
    await expect(envelope.encrypt('x', { context: {}, plaintextLength: 1 } as never)).rejects.toThrow(/"plaintextLength"/);
    expect(keyring.calls).toBe(0);
    // A warm cache does not skip the check either (the hit path is the one that must stay cheap).
    await envelope.encrypt('x', { context: { a: 'b' } });
    const calls = keyring.calls;
    await expect(envelope.encrypt('x', { context: { a: 'b' }, encryptionContext: { a: 'b' } } as never)).rejects.toThrow(
      misnamed,
    );
    expect(keyring.calls).toBe(calls);
  });

  it('options that are not an object are refused', async () => {
    const { envelope, message } = await setup();
    await expect(envelope.encrypt('x', 'context' as never)).rejects.toThrow(TypeError);
    await expect(envelope.encrypt('x', null as never)).rejects.toThrow(TypeError);
    await expect(envelope.decrypt(message, null as never)).rejects.toThrow(TypeError);
    expect(() => envelope.encryptStream(null as never)).toThrow(TypeError);
  });

  it('encryptStream: TypeError when called; `plaintextLength` is known', async () => {
    const { keyring, envelope } = await setup();
    expect(() => envelope.encryptStream(esdkNamed)).toThrow(misnamed);
    expect(() => envelope.encryptStream({ signal: new AbortController().signal } as never)).toThrow(/"signal"/);
    expect(() => envelope.encryptStream({ context: { a: 'b' }, plaintextLength: 3 }).destroy()).not.toThrow();
    expect(keyring.calls).toBe(0);
  });

  it('encryptFile: TypeError before dst is written', async () => {
    const { keyring, envelope } = await setup();
    const src = join(dir, 'plain.txt');
    writeFileSync(src, 'hello');
    const dst = join(dir, 'encrypted.out');
    await expect(envelope.encryptFile(src, dst, esdkNamed)).rejects.toThrow(misnamed);
    await expect(envelope.encryptFile(src, dst, { plaintextLength: 5 } as never)).rejects.toThrow(/"plaintextLength"/);
    expect(existsSync(dst)).toBe(false);
    expect(keyring.calls).toBe(0);
  });

  it('own keys only: an inherited property is not an option', async () => {
    const { envelope, message } = await setup();
    const options = Object.create({ encryptionContext: { tenant: 'acme' } }) as { context?: Record<string, string> };
    options.context = { tenant: 'acme' };
    await expect(envelope.decrypt(message, options)).resolves.toMatchObject({ context: { tenant: 'acme' } });
  });
});

describe('S3 helpers refuse unknown option names before any request', () => {
  const noRequest = () => {
    let sends = 0;
    const client = {
      send: async () => {
        sends++;
        throw new Error('no request may be sent');
      },
    };
    return { client, sends: () => sends };
  };

  it('uploadEncrypted: `encryptionContext` is a TypeError; no keyring call, body not read', async () => {
    const { keyring, envelope } = await setup();
    const { client, sends } = noRequest();
    let reads = 0;
    const body = new Readable({
      read() {
        reads++;
        this.push(null);
      },
    });
    const base = { client, bucket: 'b', key: 'k', envelope };
    await expect(uploadEncrypted({ ...base, body, ...(esdkNamed as object) } as never)).rejects.toThrow(misnamed);
    await expect(uploadEncrypted({ ...base, body: 'x', versionId: 'v' } as never)).rejects.toThrow(/"versionId"/);
    expect(sends()).toBe(0);
    expect(reads).toBe(0);
    expect(keyring.calls).toBe(0);
  });

  it('downloadDecrypted / downloadDecryptedBuffer: `encryptionContext` is a TypeError before GetObject', async () => {
    const { keyring, envelope } = await setup();
    const { client, sends } = noRequest();
    const base = { client, bucket: 'b', key: 'k', envelope };
    await expect(downloadDecrypted({ ...base, ...(esdkNamed as object) } as never)).rejects.toThrow(misnamed);
    await expect(downloadDecrypted({ ...base, maxBytes: 10 } as never)).rejects.toThrow(/"maxBytes"/);
    await expect(downloadDecryptedBuffer({ ...base, ...(esdkNamed as object) } as never)).rejects.toThrow(misnamed);
    await expect(downloadDecryptedBuffer({ ...base, partSize: 10 } as never)).rejects.toThrow(/"partSize"/);
    expect(sends()).toBe(0);
    expect(keyring.calls).toBe(0);
  });

  it('downloadDecryptedBuffer: `maxBytes` is known (the request is sent)', async () => {
    const { envelope } = await setup();
    const { client, sends } = noRequest();
    await expect(downloadDecryptedBuffer({ client, bucket: 'b', key: 'k', envelope, maxBytes: 10 })).rejects.toThrow(
      'no request may be sent',
    );
    expect(sends()).toBe(1);
  });
});

it('temp dir holds no leftovers', () => {
  expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
});
