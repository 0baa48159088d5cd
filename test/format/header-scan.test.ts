/**
 * Incremental header parsing resumes where it stopped inside the encrypted data key list, so a
 * header trickled in tiny pieces costs work linear in its size (not quadratic), with results
 * identical to parsing it whole.
 */
import { expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { Envelope, MultiKeyring, RawAesKeyring } from '../../src/index.js';
import { tryParseHeader, type HeaderScan } from '../../src/format/header.js';
import { MessageDecryptor } from '../../src/format/decryptor.js';

async function manyEdkMessage(count: number): Promise<Buffer> {
  const keyrings = Array.from({ length: count }, (_, i) => new RawAesKeyring({ keyNamespace: 'n', keyName: `k${i}`, key: randomBytes(32) }));
  const envelope = new Envelope({
    keyring: new MultiKeyring({ generator: keyrings[0], children: keyrings.slice(1) }),
    maxEncryptedDataKeys: count,
  });
  return envelope.encrypt('hello', { context: { a: 'b' } });
}

it('a resumed scan gives the same needs and header as parsing every prefix from scratch', async () => {
  const message = await manyEdkMessage(40);
  const limits = { maxEncryptedDataKeys: 40 };
  const scan: HeaderScan = {};
  let fields: number[] | undefined;
  let len = 1;
  for (;;) {
    const fresh = tryParseHeader(message.subarray(0, len), limits);
    const resumed = tryParseHeader(message.subarray(0, len), limits, scan);
    if (typeof fresh !== 'number') {
      expect(typeof resumed).not.toBe('number');
      expect((resumed as typeof fresh).bytes.equals(fresh.bytes)).toBe(true);
      expect((resumed as typeof fresh).encryptedDataKeys).toEqual(fresh.encryptedDataKeys);
      break;
    }
    expect(resumed).toBe(fresh);
    // Once the walk has started it keeps extending the same list rather than starting over.
    if (fields !== undefined) expect(scan.fields).toBe(fields);
    fields ??= scan.fields;
    len = fresh;
  }
  expect(fields).toBeDefined();
});

it('a header with many EDKs fed two bytes at a time decrypts', async () => {
  const count = 2000;
  const message = await manyEdkMessage(count);
  const decryptor = new MessageDecryptor({ maxEncryptedDataKeys: count });
  let at = 0;
  while (decryptor.header === undefined) {
    decryptor.push(message.subarray(at, at + 2));
    at += 2;
  }
  expect(decryptor.header.encryptedDataKeys).toHaveLength(count);
  expect(decryptor.header.length).toBeLessThanOrEqual(at);
});
