/**
 * Stream interop with @aws-crypto/client-node 5.0.2: its encryptStream output decrypts with our
 * decryptStream, and our encryptStream output decrypts with its decryptStream (signed) and
 * decryptUnsignedMessageStream (unsigned), at 20 MiB and several frame lengths, suites 0x0478 and
 * 0x0578. Both sides use the same raw AES wrapping key (ESDK: RawAesKeyringNode, utf8Sorting).
 */
import { describe, expect, it } from 'vitest';
import { Readable, Writable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  AlgorithmSuiteIdentifier,
  buildClient,
  CommitmentPolicy,
  RawAesKeyringNode,
  RawAesWrappingSuiteIdentifier,
} from '@aws-crypto/client-node';
import { chunked, decryptStream, encryptStream, KEY_NAME, KEY_NAMESPACE, prng, sha256, WRAPPING_KEY } from './helpers.js';

const esdk = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
const esdkKeyring = new RawAesKeyringNode({
  keyNamespace: KEY_NAMESPACE,
  keyName: KEY_NAME,
  unencryptedMasterKey: new Uint8Array(WRAPPING_KEY),
  wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
  utf8Sorting: true,
});

const SIZE = 20 << 20;
const DATA = prng(SIZE, 2024);
const DIGEST = sha256(DATA);
const CONTEXT = { tenant: 'acme', 'ключ': 'значение', Zeta: 'last?' };

/** Streams `data` in 256 KiB chunks through `transform` and collects the output. */
async function through(data: Buffer, transform: Duplex): Promise<Buffer> {
  const parts: Buffer[] = [];
  let bytes = 0;
  await pipeline(
    Readable.from(chunked(data, [256 * 1024])),
    transform,
    new Writable({
      write(c: Buffer, _e, cb) {
        parts.push(c);
        bytes += c.length;
        cb();
      },
    }),
  );
  const out = Buffer.concat(parts);
  expect(out.length).toBe(bytes);
  return out;
}

const SUITES = [
  { id: 0x0478, name: '0x0478', esdkId: AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY },
  { id: 0x0578, name: '0x0578', esdkId: AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY_ECDSA_P384 },
];

describe.each(SUITES)('suite $name', ({ id, esdkId }) => {
  for (const frameLength of [4096, 65_536, 1 << 20]) {
    it(`ESDK encryptStream -> our decryptStream, frame ${frameLength}`, async () => {
      const message = await through(
        DATA,
        esdk.encryptStream(esdkKeyring, { suiteId: esdkId, frameLength, encryptionContext: CONTEXT }),
      );
      const dec = decryptStream();
      let headerContext: Record<string, string> | undefined;
      dec.on('header', (h: { context: Record<string, string> }) => (headerContext = h.context));
      const plaintext = await through(message, dec);
      expect(plaintext.length).toBe(SIZE);
      expect(sha256(plaintext)).toBe(DIGEST);
      expect(headerContext).toMatchObject(CONTEXT);
    });

    it(`our encryptStream -> ESDK ${id === 0x0578 ? 'decryptStream' : 'decryptUnsignedMessageStream'}, frame ${frameLength}`, async () => {
      const message = await through(DATA, encryptStream({ suiteId: id, frameLength, context: CONTEXT }));
      const esdkDecrypt =
        id === 0x0578 ? esdk.decryptStream(esdkKeyring) : esdk.decryptUnsignedMessageStream(esdkKeyring);
      let esdkHeader: { encryptionContext: Record<string, string>; frameLength: number } | undefined;
      esdkDecrypt.on('MessageHeader', (h) => (esdkHeader = h));
      const plaintext = await through(message, esdkDecrypt);
      expect(plaintext.length).toBe(SIZE);
      expect(sha256(plaintext)).toBe(DIGEST);
      expect(esdkHeader?.frameLength).toBe(frameLength);
      expect(esdkHeader?.encryptionContext).toMatchObject(CONTEXT);
    });
  }
});
