/**
 * Review finding 5: a plaintext given as a JavaScript string with ill-formed UTF-16 (a lone
 * surrogate, half an emoji) was silently rewritten by Buffer.from(s, 'utf8'): each unpaired
 * surrogate became U+FFFD (EF BF BD), so decrypting gave back something else than what was
 * encrypted, with no error anywhere. Wherever a string plaintext is accepted (encrypt,
 * encryptDetailed, string writes to encryptStream, uploadEncrypted's string body or a Readable body
 * of strings) it is refused with a TypeError naming the plaintext argument; the string's content
 * is never quoted. Well-formed strings and bytes are unaffected.
 */
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { S3Client } from '@aws-sdk/client-s3';
import { Envelope, RawAesKeyring } from '../../src/index.js';
import { uploadEncrypted } from '../../src/s3/index.js';
import { countingKeyring } from '../support/keyrings.js';

const SECRET = 'card 4111-1111';
const ILL_FORMED: { what: string; text: string }[] = [
  { what: 'a lone high surrogate at the end (half an emoji)', text: `${SECRET} \uD83D` },
  { what: 'a lone low surrogate at the start', text: `\uDE00${SECRET}` },
  { what: 'a reversed pair', text: `${SECRET}\uDE00\uD83D` },
  { what: 'only a lone surrogate', text: '\uD800' },
];

function expectRefusal(err: unknown, argument: string): void {
  expect(err).toBeInstanceOf(TypeError);
  expect((err as Error).message).toContain(argument);
  expect((err as Error).message).toMatch(/UTF-16|surrogate/);
  expect((err as Error).message).not.toContain(SECRET);
}

async function caught(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a refusal, but the call succeeded');
}

const collect = (): { sink: Writable; bytes: () => Buffer } => {
  const chunks: Buffer[] = [];
  return { sink: new Writable({ write: (c, _e, cb) => (chunks.push(c as Buffer), cb()) }), bytes: () => Buffer.concat(chunks) };
};

describe('ill-formed UTF-16 string plaintext is refused', () => {
  for (const { what, text } of ILL_FORMED) {
    it(`${what}: encrypt and encryptDetailed (cached and uncached), before any keyring call`, async () => {
      for (const cache of [undefined, false] as const) {
        const keyring = countingKeyring();
        const e = new Envelope({ keyring, cache });
        expectRefusal(await caught(() => e.encrypt(text)), 'plaintext');
        expectRefusal(await caught(() => e.encryptDetailed(text, { context: { a: 'b' } })), 'plaintext');
        expect(keyring.calls).toBe(0);
        // Warm cache: the hit path refuses as well.
        await e.encrypt('warm');
        expectRefusal(await caught(() => e.encrypt(text)), 'plaintext');
      }
    });

    it(`${what}: encryptStream, written directly and piped from a Readable of strings`, async () => {
      const e = new Envelope({ keyring: countingKeyring() });
      const { sink } = collect();
      expectRefusal(await caught(() => pipeline(Readable.from(['fine ', text]), e.encryptStream(), sink)), 'plaintext');
      const s = e.encryptStream();
      s.resume();
      const failed = new Promise((resolve) => s.on('error', resolve));
      s.write('fine');
      s.write(text);
      expectRefusal(await failed, 'plaintext');
    });

    it(`${what}: uploadEncrypted, string body and Readable body of strings, no S3 request`, async () => {
      // A real S3Client (lib-storage reads its config) whose sends are counted; port 9 (discard)
      // is never reached because nothing may be sent.
      const client = new S3Client({
        endpoint: 'http://127.0.0.1:9',
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
      }) as S3Client & { sends: number };
      client.sends = 0;
      const send = client.send.bind(client);
      client.send = ((...args: Parameters<typeof send>) => (client.sends++, send(...args))) as typeof send;
      const envelope = new Envelope({ keyring: countingKeyring() });
      expectRefusal(await caught(() => uploadEncrypted({ client: client as never, bucket: 'b', key: 'k', envelope, body: text })), 'options.body');
      expectRefusal(
        await caught(() => uploadEncrypted({ client: client as never, bucket: 'b', key: 'k', envelope, body: Readable.from(['fine', text]) })),
        'plaintext',
      );
      expect(client.sends).toBe(0);
    });
  }
});

describe('well-formed strings and bytes are unaffected', () => {
  it('strings with surrogate pairs, U+FFFD itself and U+FEFF round-trip exactly; bytes that are not UTF-8 too', async () => {
    const e = new Envelope({ keyring: new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', key: randomBytes(32) }) });
    for (const text of ['emoji \uD83D\uDE00 ok', '\uFFFD', '\uFEFFbom', '']) {
      expect((await e.decrypt(await e.encrypt(text))).plaintext.toString('utf8')).toBe(text);
      expect((await e.decrypt((await e.encryptDetailed(text)).message)).plaintext.toString('utf8')).toBe(text);
      const { sink, bytes } = collect();
      await pipeline(Readable.from(['a', text, 'b']), e.encryptStream(), sink);
      expect((await e.decrypt(bytes())).plaintext.toString('utf8')).toBe(`a${text}b`);
    }
    const raw = Buffer.from([0xed, 0xa0, 0x80, 0xff]); // encoded lone surrogate + invalid byte: bytes are bytes
    expect((await e.decrypt(await e.encrypt(raw))).plaintext).toEqual(raw);
  });

  it('a string written to encryptStream with another encoding is decoded with it', async () => {
    const e = new Envelope({ keyring: new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', key: randomBytes(32) }) });
    const { sink, bytes } = collect();
    const s = e.encryptStream();
    const done = pipeline(s, sink);
    s.write('00ff10', 'hex');
    s.write('aGk=', 'base64');
    s.end();
    await done;
    expect((await e.decrypt(bytes())).plaintext).toEqual(Buffer.from([0x00, 0xff, 0x10, 0x68, 0x69]));
  });
});
