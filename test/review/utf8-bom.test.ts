/**
 * Review finding 2: message fields were decoded with `new TextDecoder('utf-8', { fatal: true })`,
 * which strips a leading U+FEFF (byte order mark) unless `ignoreBOM: true` is set (WHATWG
 * Encoding, "decode"). A context key or value, or a key namespace (provider id), that starts with
 * U+FEFF was written as its exact UTF-8 bytes but read back without its first character: the
 * decrypted context differed from the encrypted one, a required-context check failed, two keys
 * could collapse into one (duplicate keys: a malformed message), and a raw keyring no longer
 * recognized its own encrypted data keys. structures.md, "Encryption Context": keys and values
 * are UTF-8 strings; U+FEFF is an ordinary character there.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Envelope, RawAesKeyring, RawRsaKeyring, type Keyring } from '../../src/index.js';
import { parseContext, serializeContext } from '../../src/format/context.js';
import { parseHeader } from '../../src/format/header.js';
import { decodeUtf8 } from '../../src/keyrings/common.js';

const BOM = '\uFEFF';

const aes = (keyNamespace = 'ns', keyName = 'k', key = randomBytes(32)): RawAesKeyring =>
  new RawAesKeyring({ keyNamespace, keyName, key });

async function streamDecrypt(e: Envelope, message: Buffer, context?: Record<string, string>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const d = e.decryptStream(context === undefined ? undefined : { context });
  Readable.from([message]).pipe(d);
  for await (const c of d) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const CONTEXTS: { what: string; context: Record<string, string> }[] = [
  { what: 'a key and a value starting with U+FEFF', context: { [`${BOM}tenant`]: `${BOM}acme`, plain: 'x' } },
  { what: 'a key that is U+FEFF alone next to the empty key', context: { [BOM]: 'bom', '': 'empty' } },
  { what: 'keys that differ only by a leading U+FEFF', context: { [`${BOM}id`]: 'one', id: 'two' } },
  { what: 'a value that is U+FEFF twice', context: { v: `${BOM}${BOM}` } },
];

describe('context keys and values starting with U+FEFF round-trip exactly', () => {
  for (const { what, context } of CONTEXTS) {
    it(`${what}: serialize/parse, encrypt/decrypt (buffer and stream, cached and not), required context`, async () => {
      expect({ ...parseContext(serializeContext(context)) }).toEqual(context);
      for (const suite of [0x0478, 0x0578]) {
        for (const cache of [undefined, false] as const) {
          const e = new Envelope({ keyring: aes(), suite, cache });
          const { message, context: written } = await e.encryptDetailed('payload', { context });
          for (const [k, v] of Object.entries(context)) expect(written[k]).toBe(v);
          const header = parseHeader(message, { maxEncryptedDataKeys: 10, maxHeaderBytes: 1 << 20 })!;
          for (const [k, v] of Object.entries(context)) expect(header.context[k]).toBe(v);
          const out = await e.decrypt(message, { context });
          expect(out.plaintext.toString()).toBe('payload');
          const { 'aws-crypto-public-key': _pk, ...rest } = out.context;
          expect(rest).toEqual(context);
          expect((await streamDecrypt(e, message, context)).toString()).toBe('payload');
        }
      }
    });
  }

  it('a required pair with U+FEFF is not satisfied by the same pair without it (and vice versa)', async () => {
    const e = new Envelope({ keyring: aes() });
    const withBom = await e.encrypt('p', { context: { [`${BOM}k`]: 'v' } });
    await expect(e.decrypt(withBom, { context: { k: 'v' } })).rejects.toMatchObject({ code: 'ERR_CONTEXT_MISMATCH' });
    const withoutBom = await e.encrypt('p', { context: { k: `v` } });
    await expect(e.decrypt(withoutBom, { context: { k: `${BOM}v` } })).rejects.toMatchObject({ code: 'ERR_CONTEXT_MISMATCH' });
  });
});

describe('raw keyring names and namespaces starting with U+FEFF find their own encrypted data keys', () => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyrings: { what: string; make: () => Keyring }[] = [
    { what: 'RawAesKeyring namespace', make: () => aes(`${BOM}ns`, 'k') },
    { what: 'RawAesKeyring key name', make: () => aes('ns', `${BOM}k`) },
    {
      what: 'RawRsaKeyring namespace and key name',
      make: () => new RawRsaKeyring({ keyNamespace: `${BOM}ns`, keyName: `${BOM}rsa`, publicKey, privateKey, padding: 'OAEP_SHA256' }),
    },
  ];
  for (const { what, make } of keyrings) {
    it(what, async () => {
      const keyring = make();
      const e = new Envelope({ keyring, cache: false });
      const message = await e.encrypt('payload', { context: { a: 'b' } });
      const header = parseHeader(message, { maxEncryptedDataKeys: 10, maxHeaderBytes: 1 << 20 })!;
      expect(header.encryptedDataKeys[0]!.providerId).toBe((keyring as RawAesKeyring).keyNamespace);
      expect((await e.decrypt(message)).plaintext.toString()).toBe('payload');
      expect((await streamDecrypt(e, message)).toString()).toBe('payload');
    });
  }

  it('a namespace with U+FEFF does not claim the EDKs of the same namespace without it', async () => {
    const key = randomBytes(32);
    const message = await new Envelope({ keyring: aes('ns', 'k', key), cache: false }).encrypt('payload');
    await expect(new Envelope({ keyring: aes(`${BOM}ns`, 'k', key), cache: false }).decrypt(message)).rejects.toMatchObject({
      code: 'ERR_NO_DECRYPTABLE_KEY',
    });
  });
});

it('provider info decoding (KMS keyring) keeps a leading U+FEFF', () => {
  expect(decodeUtf8(Buffer.from(`${BOM}arn:aws:kms:x`, 'utf8'))).toBe(`${BOM}arn:aws:kms:x`);
  expect(decodeUtf8(Buffer.from([0xff]))).toBeUndefined();
});
