/**
 * No key bytes and no plaintext in errors or logs, whichever layer fails: raw AES and multi
 * keyrings, the KMS keyring over the local KMS (wrong key, wrong context, disabled key, tampered
 * wrapped key, a failing Encrypt after GenerateDataKey), and the KMS error mapping fed an
 * SDK-style exception that carries the request (with the plaintext data key) on it.
 *
 * Every error is scanned with SecretScanner (message, stack, cause chains, AggregateError members,
 * every own property; raw, hex, base64) for the wrapping keys, every data key any keyring or KMS
 * handed out, and the plaintext canary. Authentication failures across the bit-flip suites are
 * checked for one message in bitflip.ts.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Envelope, EnvelopeError, KmsKeyring, MultiKeyring, RawAesKeyring, type Keyring } from '../../src/index.js';
import { DecryptionError } from '../../src/errors.js';
import { LocalKms } from '../../src/local-kms/index.js';
import type { KmsClient } from '../../src/types.js';
import { canaryPlaintext, CANARY } from './bitflip.js';
import { CountingKeyring, decryptStreamed, SecretScanner } from './harness.js';
import { parseModel, serializeModel } from './model.js';

const plaintext = canaryPlaintext(2000);
const wrappingA = randomBytes(32);
const wrappingB = randomBytes(32);
const scanner = new SecretScanner(
  [
    { what: 'wrapping key A', bytes: wrappingA },
    { what: 'wrapping key B', bytes: wrappingB },
  ],
  [CANARY],
);

/** Every console method and process.emitWarning, watched for the whole file. */
const logged: unknown[][] = [];
const spies: { mockRestore(): void }[] = [];
beforeAll(() => {
  for (const m of ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const) {
    spies.push(vi.spyOn(console, m).mockImplementation((...a: unknown[]) => void logged.push(a)));
  }
  spies.push(vi.spyOn(process, 'emitWarning').mockImplementation(((...a: unknown[]) => void logged.push(a)) as never));
});
afterAll(() => {
  for (const s of spies) s.mockRestore();
});

const kmsKeys: Buffer[] = [];

/** Records every data key a KMS client hands out (GenerateDataKey and Decrypt answers). */
function recording(client: KmsClient): KmsClient {
  return {
    generateDataKey: async (i) => {
      const out = await client.generateDataKey(i);
      kmsKeys.push(Buffer.from(out.plaintext));
      scanner.addSecret('KMS data key', Buffer.from(out.plaintext));
      return out;
    },
    encrypt: (i) => client.encrypt(i),
    decrypt: async (i) => {
      const out = await client.decrypt(i);
      scanner.addSecret('KMS data key', Buffer.from(out.plaintext));
      return out;
    },
  };
}

/** The message with one byte of its first EDK's ciphertext flipped (header tag left stale). */
function withEdkByteFlipped(message: Buffer, at: number): Buffer {
  const m = parseModel(message);
  m.edks[0]!.ciphertext[at]! ^= 0x20;
  return serializeModel(m);
}

function remember(keyring: CountingKeyring): void {
  for (const k of keyring.dataKeys) scanner.addSecret('data key', k);
}

/** Rejections of both decrypt paths, scanned; returns the buffer path's error. */
async function rejectBoth(envelope: Envelope, message: Buffer, label: string): Promise<EnvelopeError> {
  const e = await envelope.decrypt(message).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e, label).toBeInstanceOf(EnvelopeError);
  expect(scanner.scan(e), `${label} (buffer)`).toBeUndefined();
  const s = await decryptStreamed(envelope, [message]);
  expect(s.error, label).toBeInstanceOf(EnvelopeError);
  expect(s.out.length, label).toBe(0);
  expect(scanner.scan(s.error), `${label} (stream)`).toBeUndefined();
  return e as EnvelopeError;
}

describe('raw AES and multi keyrings', () => {
  it('wrong wrapping key, wrong context, tampered wrapped key, failing children: no secret in any error', async () => {
    const a = new CountingKeyring(new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key: wrappingA }));
    const b = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key: wrappingB });
    const writer = new Envelope({ keyring: a });
    const message = await writer.encrypt(plaintext, { context: { tenant: 'acme' } });
    remember(a);
    expect((await new Envelope({ keyring: a }).decrypt(message)).plaintext.equals(plaintext)).toBe(true);

    // Same namespace and name, other key bytes: the wrapped key does not authenticate.
    await rejectBoth(new Envelope({ keyring: b }), message, 'other wrapping key');
    // The context value in the message changed: the EDK's AAD (and the header tag) no longer match.
    const at = message.indexOf(Buffer.from('acme'));
    const forged = Buffer.from(message);
    forged.write('acmf', at);
    await rejectBoth(new Envelope({ keyring: a }), forged, 'forged context');
    // The wrapped data key itself tampered with (last byte of its tag).
    await rejectBoth(new Envelope({ keyring: a }), withEdkByteFlipped(message, 47), 'tampered wrapped key');

    // A multi keyring whose children all fail (one throws, one does not match): the aggregate error
    // and its causes carry nothing secret.
    const throwing: Keyring = {
      onEncrypt: async () => {
        throw new Error('unused');
      },
      onDecrypt: async () => {
        throw new EnvelopeError('ERR_KEYRING', 'child keyring failed');
      },
    };
    const multi = new MultiKeyring({ children: [b, throwing] });
    const e = await rejectBoth(new Envelope({ keyring: multi }), message, 'multi keyring');
    expect(e.code).toBe('ERR_NO_DECRYPTABLE_KEY');
  });
});

describe('KMS keyring over the local KMS', () => {
  const local = new LocalKms();
  let keyA: string;
  let keyB: string;
  let disabled: string;
  beforeAll(async () => {
    keyA = (await local.createKey({ Description: 'secrets A' })).arn;
    keyB = (await local.createKey({ Description: 'secrets B' })).arn;
    disabled = (await local.createKey({ Description: 'secrets disabled' })).arn;
  });
  afterAll(() => local.close());

  it('wrong key, wrong context, disabled key, tampered ciphertext blob, failed Encrypt: errors without key bytes or plaintext', async () => {
    const client = recording(local.client());
    const writer = new Envelope({ keyring: new KmsKeyring({ keyId: keyA, client }), cache: false });
    const message = await writer.encrypt(plaintext, { context: { tenant: 'acme' } });
    const toDisabled = await new Envelope({ keyring: new KmsKeyring({ keyId: disabled, client }), cache: false }).encrypt(plaintext);
    await local.client().call('DisableKey', { KeyId: disabled });
    const reader = (keyId: string) => new Envelope({ keyring: new KmsKeyring({ keyId, client }), cache: false });

    expect((await reader(keyA).decrypt(message)).plaintext.equals(plaintext)).toBe(true);
    expect(kmsKeys.length).toBe(2); // the scanner knows both generated data keys
    await rejectBoth(reader(keyB), message, 'KMS key the reader does not use');
    await rejectBoth(reader(disabled), toDisabled, 'disabled KMS key');

    const forged = Buffer.from(message);
    forged.write('acmf', message.indexOf(Buffer.from('acme')));
    const e = await rejectBoth(reader(keyA), forged, 'context changed (KMS refuses the EDK)');
    expect(e.code).toBe('ERR_NO_DECRYPTABLE_KEY');

    // Flip a byte inside the KMS ciphertext blob.
    await rejectBoth(reader(keyA), withEdkByteFlipped(message, 40), 'tampered KMS ciphertext blob');

    // GenerateDataKey succeeds, then Encrypt under a second key fails: the generated data key must
    // not appear in the error (it is recorded by the client wrapper above).
    const two = new Envelope({ keyring: new KmsKeyring({ keyIds: [keyA, disabled], client }), cache: false });
    const err = await two.encrypt(plaintext).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(err).toBeInstanceOf(EnvelopeError);
    expect((err as EnvelopeError).code).toBe('ERR_KMS');
    expect(scanner.scan(err)).toBeUndefined();
  });

  it('an SDK-style exception carrying the request (with the plaintext data key) is mapped without it', async () => {
    const dataKey = randomBytes(32);
    scanner.addSecret('SDK data key', dataKey);
    const arn = 'arn:aws:kms:us-east-1:111122223333:key/11111111-2222-3333-4444-555555555555';
    const arn2 = 'arn:aws:kms:us-east-1:111122223333:key/66666666-7777-8888-9999-000000000000';
    // Looks like an @aws-sdk/client-kms KMSClient: `send(command)`.
    const sdkLike = {
      async send(command: { input: Record<string, unknown>; constructor: { name: string } }) {
        if (command.constructor.name === 'GenerateDataKeyCommand') {
          return { KeyId: arn, Plaintext: new Uint8Array(dataKey), CiphertextBlob: new Uint8Array(64) };
        }
        const e = new Error(`KMS is having a bad day (request ${JSON.stringify({ KeyId: command.input['KeyId'] })})`) as Error & Record<string, unknown>;
        e.name = 'KMSInternalException';
        e['$fault'] = 'server';
        e['$metadata'] = { httpStatusCode: 500 };
        e['input'] = command.input; // holds Plaintext: the data key
        e['$response'] = { body: Buffer.from(dataKey) };
        throw e;
      },
    };
    const envelope = new Envelope({ keyring: new KmsKeyring({ keyIds: [arn, arn2], client: sdkLike as never }), cache: false });
    const err = await envelope.encrypt(plaintext).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(err).toBeInstanceOf(EnvelopeError);
    expect((err as EnvelopeError).code).toBe('ERR_KMS');
    expect((err as Error).message).toMatch(/KMSInternalException/);
    expect(scanner.scan(err)).toBeUndefined();
    // The scanner would have seen it: the raw exception does carry the key.
    const raw = await sdkLike.send({ input: { Plaintext: dataKey }, constructor: { name: 'EncryptCommand' } }).catch((x: unknown) => x);
    expect(scanner.scan(raw)).toMatch(/SDK data key/);
  });
});

describe('scanner and logs', () => {
  it('the scanner finds keys and plaintext in every encoding it claims to', () => {
    const key = randomBytes(32);
    const s = new SecretScanner([{ what: 'k', bytes: key }], [CANARY]);
    expect(s.scan(new Error(`key ${key.toString('hex')}`))).toMatch(/hex/);
    expect(s.scan(new Error(`key ${key.toString('hex').toUpperCase()}`))).toMatch(/hex/);
    expect(s.scan(new Error(`key ${key.subarray(5).toString('base64')}`))).toMatch(/base64/);
    expect(s.scan(new Error(`key ${key.toString('base64url')}`))).toMatch(/base64/);
    expect(s.scan(new Error('x', { cause: { deep: [{ buf: key.subarray(3, 20) }] } }))).toMatch(/bytes/);
    expect(s.scan(new AggregateError([new Error(`...${CANARY}:0001...`)], 'agg'))).toMatch(/canary/);
    expect(s.scan(Object.assign(new Error('x'), { detail: key.toString('latin1') }))).toMatch(/raw/);
    expect(s.scan(new DecryptionError())).toBeUndefined();
  });

  it('nothing was logged while all of the above failed', () => {
    expect(logged).toEqual([]);
  });
});
