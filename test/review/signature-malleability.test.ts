/**
 * Review 10b, finding 4: a signed (0x0578) message's footer can be rewritten by anyone, replacing
 * the ECDSA signature (r, s) with (r, n - s), which verifies as well; the message bytes change and
 * it still decrypts. This is kept on purpose: the message format (data-format/message-footer.md)
 * does not fix which of the two a writer uses, other ESDKs may write either (those that make
 * fixed-length signatures do so by negating s), and refusing high-s signatures would break
 * interop. What the README promises instead, and what this pins: every change to the header or
 * body is refused; the signature has exactly this one other valid encoding (anything else done to
 * its bytes is refused); so a message is identified by its message id or a hash of header + body,
 * never by a hash of all its bytes.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Envelope, RawAesKeyring } from '../../src/index.js';
import { parseHeader } from '../../src/format/header.js';

/** Order of the P-384 group (SEC 2, secp384r1). */
const N = BigInt('0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973');

/** A positive DER INTEGER's minimal content bytes for `v`. */
function derInt(v: bigint): Buffer {
  let hex = v.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  const b = Buffer.from(hex, 'hex');
  return b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b;
}

function derSig(r: Buffer, s: Buffer): Buffer {
  const ints = Buffer.concat([Buffer.from([2, r.length]), r, Buffer.from([2, s.length]), s]);
  const head = ints.length >= 128 ? Buffer.from([0x30, 0x81, ints.length]) : Buffer.from([0x30, ints.length]);
  return Buffer.concat([head, ints]);
}

/** Splits a signed message into header + body and the DER signature's r and s contents. */
function split(m: Buffer) {
  const h = parseHeader(m, { maxEncryptedDataKeys: 10 })!;
  // One final frame of 5 bytes: marker, sequence number, IV, content length, content, tag.
  const bodyEnd = h.length + 4 + 4 + 12 + 4 + 5 + 16;
  const sig = m.subarray(bodyEnd + 2, bodyEnd + 2 + m.readUInt16BE(bodyEnd));
  expect(bodyEnd + 2 + sig.length).toBe(m.length);
  let o = sig[1]! & 0x80 ? 3 : 2;
  const r = Buffer.from(sig.subarray(o + 2, o + 2 + sig[o + 1]!));
  o += 2 + r.length;
  const s = Buffer.from(sig.subarray(o + 2, o + 2 + sig[o + 1]!));
  return { headerAndBody: m.subarray(0, bodyEnd), sig, r, s, messageId: h.messageId };
}

function withFooter(headerAndBody: Buffer, sig: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(sig.length);
  return Buffer.concat([headerAndBody, len, sig]);
}

const settle = (p: Promise<unknown>): Promise<unknown> => p.then(() => 'decrypted', (e: unknown) => e);

describe('signed messages: the signature\'s second encoding (s -> n - s) is accepted, nothing else', () => {
  const envelope = new Envelope({ keyring: new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', key: randomBytes(32) }), suite: 0x0578 });

  it('the (r, n - s) twin decrypts to the same plaintext and context, with the same message id and header + body', async () => {
    const m = await envelope.encrypt('hello', { context: { tenant: 'acme' } });
    const { headerAndBody, r, s, messageId } = split(m);
    const twin = withFooter(headerAndBody, derSig(r, derInt(N - BigInt('0x' + s.toString('hex')))));
    expect(twin.equals(m)).toBe(false);
    const a = await envelope.decrypt(m, { context: { tenant: 'acme' } });
    const b = await envelope.decrypt(twin, { context: { tenant: 'acme' } });
    expect(b.plaintext.toString()).toBe('hello');
    expect(b.plaintext.equals(a.plaintext)).toBe(true);
    expect(b.context).toEqual(a.context);
    // What identifies the message is unchanged: its id and its header + body bytes.
    const t = split(twin);
    expect(Buffer.from(t.messageId).equals(Buffer.from(messageId))).toBe(true);
    expect(t.headerAndBody.equals(headerAndBody)).toBe(true);
    // The stream reads it the same way.
    const out: Buffer[] = [];
    for await (const chunk of Readable.from([twin]).pipe(envelope.decryptStream())) out.push(chunk as Buffer);
    expect(Buffer.concat(out).toString()).toBe('hello');
    // And the twin's twin is the original.
    expect(withFooter(headerAndBody, derSig(t.r, derInt(N - BigInt('0x' + t.s.toString('hex'))))).equals(m)).toBe(true);
  });

  it('every other change to the signature bytes is refused with ERR_DECRYPTION_FAILED', async () => {
    const m = await envelope.encrypt('hello');
    const { headerAndBody, sig, r, s } = split(m);
    const changed: Buffer[] = [];
    // Every single-bit flip of the signature.
    for (let i = 0; i < sig.length * 8; i++) {
      const bad = Buffer.from(sig);
      bad[i >> 3]! ^= 0x80 >> (i & 7);
      changed.push(bad);
    }
    const sn = BigInt('0x' + s.toString('hex'));
    const rn = BigInt('0x' + r.toString('hex'));
    changed.push(
      derSig(derInt(N - rn), s), // negating r instead
      derSig(derInt(N - rn), derInt(N - sn)),
      derSig(r, derInt(sn + N)), // s + n: same value mod n, out of range
      derSig(r, Buffer.concat([Buffer.from([0]), s])), // a non-minimal DER integer
      derSig(Buffer.concat([Buffer.from([0]), r]), s),
      derSig(s, r), // swapped
      Buffer.concat([sig, Buffer.from([0])]), // a byte after the DER signature, inside the footer
      sig.subarray(0, sig.length - 1),
    );
    for (const bad of changed) {
      const err = await settle(envelope.decrypt(withFooter(headerAndBody, bad)));
      expect(err, bad.toString('hex')).toMatchObject({ code: 'ERR_DECRYPTION_FAILED' });
    }
  });
});
