/**
 * Review 10b, finding 3: `kms: { keyIds: [3 ARNs] }` with `maxEncryptedDataKeys: 2` was accepted,
 * and then every encrypt made 3 KMS calls (GenerateDataKey + 2 Encrypt) before failing with
 * ERR_LIMIT_EXCEEDED. A KMS keyring writes one EDK per configured key, so the count is known at
 * construction: it is refused there, with a RangeError naming both options. Keyrings whose count
 * is unknown keep the check after the keyring call, and the data key it made is zeroed.
 */
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { Envelope, KmsKeyring, MultiKeyring, RawAesKeyring, type Keyring } from '../../src/index.js';
import { LocalKms } from '../../src/local-kms/index.js';

let kms: LocalKms; // in-process: nothing to stop
const arns: string[] = [];
beforeAll(async () => {
  kms = new LocalKms();
  for (let i = 0; i < 3; i++) arns.push((await kms.createKey({})).arn);
});

describe('KMS keyring with more keys than maxEncryptedDataKeys', () => {
  it('kms shorthand: RangeError at construction naming kms.keyIds and maxEncryptedDataKeys (no KMS call ever)', () => {
    const client = kms.client();
    const make = () => new Envelope({ kms: { keyIds: arns, client }, maxEncryptedDataKeys: 2, cache: false });
    expect(make).toThrow(RangeError);
    expect(make).toThrow(/kms\.keyIds.*3.*maxEncryptedDataKeys.*2/);
  });

  it('a KmsKeyring passed as keyring: the same RangeError, naming keyring.keyIds', () => {
    const keyring = new KmsKeyring({ keyIds: arns, client: kms.client() });
    const make = () => new Envelope({ keyring, maxEncryptedDataKeys: 2 });
    expect(make).toThrow(RangeError);
    expect(make).toThrow(/keyring\.keyIds.*maxEncryptedDataKeys/);
    expect(keyring.kmsCalls).toBe(0);
  });

  it('as many keys as the limit: accepted, one EDK per key', async () => {
    const e = new Envelope({ kms: { keyIds: arns, client: kms.client() }, maxEncryptedDataKeys: 3, cache: false });
    const { header } = await e.encryptDetailed('x');
    expect(header.encryptedDataKeys).toHaveLength(3);
    expect(e.stats().kmsCalls).toBe(3);
  });
});

describe('keyrings whose EDK count is unknown until they run', () => {
  /** Wraps `inner`, keeping every data key it hands to the Envelope. */
  function keeping(inner: Keyring): Keyring & { keys: Uint8Array[] } {
    const keys: Uint8Array[] = [];
    return {
      keys,
      async onEncrypt(i) {
        const out = await inner.onEncrypt(i);
        keys.push(out.dataKey);
        return out;
      },
      onDecrypt: (i) => inner.onDecrypt(i),
    };
  }
  const aes = (name: string) => new RawAesKeyring({ keyNamespace: 'n', keyName: name, key: randomBytes(32) });

  for (const cache of [false, undefined] as const) {
    it(`over the limit after the call: ERR_LIMIT_EXCEEDED and the data key is zeroed (cache ${cache === false ? 'off' : 'on'})`, async () => {
      const keyring = keeping(new MultiKeyring({ generator: aes('a'), children: [aes('b'), aes('c')] }));
      const e = new Envelope({ keyring, maxEncryptedDataKeys: 2, ...(cache === false ? { cache } : {}) });
      await expect(e.encrypt('x')).rejects.toMatchObject({ code: 'ERR_LIMIT_EXCEEDED' });
      await expect(e.encrypt('x')).rejects.toMatchObject({ code: 'ERR_LIMIT_EXCEEDED' });
      expect(keyring.keys).toHaveLength(2); // nothing cached: each encrypt asked again
      for (const k of keyring.keys) {
        expect(k).toHaveLength(32);
        expect(k.every((b) => b === 0)).toBe(true);
      }
      // Streams go through the same materials path.
      const stream = e.encryptStream();
      const failed = new Promise((resolve) => stream.on('error', resolve));
      stream.end('x');
      expect(await failed).toMatchObject({ code: 'ERR_LIMIT_EXCEEDED' });
      expect(keyring.keys).toHaveLength(3);
      expect(keyring.keys[2]!.every((b) => b === 0)).toBe(true);
    });
  }
});
