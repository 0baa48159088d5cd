// The limits our numbers are held against, built from bare node:crypto calls.
//
// Crypto floor of one v2 message (suite 0x0478): 32-byte message id, HKDF-SHA512 extract + two
// single-block expands (three HMAC-SHA512), the header tag (AES-256-GCM over the header bytes as
// AAD, empty plaintext) and one AES-256-GCM frame. No parsing, no serialization, no checks: no
// real implementation can do less per message. For the signed suite 0x0578 the floor adds one
// ECDSA P-384 signature (encrypt) or verification (decrypt) over header + body, per message.
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  generateKeyPairSync,
  randomBytes,
  randomFillSync,
  sign,
  timingSafeEqual,
  verify,
} from 'node:crypto';
import { CONTEXT, KEY_NAME, KEY_NAMESPACE } from './sides.mjs';

const ZERO_IV = Buffer.alloc(12);
const SUITE_ID = Buffer.from([0x04, 0x78]);
const KEY_INFO = Buffer.concat([SUITE_ID, Buffer.from('DERIVEKEY'), Buffer.from([1])]);
const COMMIT_INFO = Buffer.concat([Buffer.from('COMMITKEY'), Buffer.from([1])]);
const FINAL_LABEL = Buffer.from('AWSKMSEncryptionClient Final Frame');

/** Length of a v2 header body for the bench context and one raw AES EDK (what the header tag covers). */
function headerBodyLength() {
  const str = (s) => 2 + Buffer.byteLength(s);
  const context = 2 + Object.entries(CONTEXT).reduce((n, [k, v]) => n + str(k) + str(v), 0);
  const providerInfo = Buffer.byteLength(KEY_NAME) + 4 + 4 + 12;
  const edk = str(KEY_NAMESPACE) + 2 + providerInfo + 2 + (32 + 16);
  // version, suite, message id | AAD length, context | EDK count, EDK | content type, frame length, commitment
  return 1 + 2 + 32 + 2 + context + 2 + edk + 1 + 4 + 32;
}

/** Final-frame body AAD: message id || label || sequence number 1 || u64 content length. */
export function finalFrameAad(messageId, contentLength) {
  const aad = Buffer.alloc(32 + FINAL_LABEL.length + 12);
  messageId.copy(aad, 0);
  FINAL_LABEL.copy(aad, 32);
  aad.writeUInt32BE(1, 32 + FINAL_LABEL.length);
  aad.writeUInt32BE(contentLength, aad.length - 4);
  return aad;
}

export function frameIv(sequenceNumber) {
  const iv = Buffer.alloc(12);
  iv.writeUInt32BE(sequenceNumber, 8);
  return iv;
}

/**
 * A pool of random bytes handed out 32 at a time, refilled with one randomFillSync per `size`
 * bytes (4 KiB for message ids; the hierarchy floor draws data keys from a 256-byte pool, as the
 * library's key pool).
 */
export function pooledIds(size = 4096) {
  const pool = Buffer.allocUnsafe(size);
  let offset = pool.length;
  return () => {
    if (offset + 32 > pool.length) {
      randomFillSync(pool);
      offset = 0;
    }
    return pool.subarray(offset, (offset += 32));
  };
}

/** ECDSA P-384 over SHA-384, as suite 0x0578 signs header + body; `undefined` for unsigned floors. */
function signer(signed, bytes) {
  if (!signed) return undefined;
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  const signature = sign('sha384', bytes, { key: privateKey, dsaEncoding: 'der' });
  return {
    sign: () => sign('sha384', bytes, { key: privateKey, dsaEncoding: 'der' }),
    verify: () => {
      if (!verify('sha384', bytes, { key: publicKey, dsaEncoding: 'der' }, signature)) throw new Error('bad signature');
    },
  };
}

export function deriveKeys(dataKey, messageId) {
  const prk = createHmac('sha512', messageId).update(dataKey).digest();
  const key = createHmac('sha512', prk).update(KEY_INFO).digest().subarray(0, 32);
  const commitment = createHmac('sha512', prk).update(COMMIT_INFO).digest().subarray(0, 32);
  return { key, commitment };
}

/**
 * The encrypt floor for `plaintext`: returns a synchronous op. `pooled` draws message ids from a
 * pooled random buffer (what a tuned implementation does); otherwise randomBytes(32) per message.
 * `signed` adds the ECDSA P-384 signature of suite 0x0578.
 */
export function encryptFloor(plaintext, { pooled, signed = false }) {
  const dataKey = randomBytes(32);
  const header = randomBytes(headerBodyLength());
  const aad = finalFrameAad(Buffer.alloc(32), plaintext.length);
  const iv = frameIv(1);
  const nextId = pooled ? pooledIds() : () => randomBytes(32);
  const ecdsa = signer(signed, Buffer.concat([header, plaintext, randomBytes(60)]));
  return () => {
    const messageId = nextId();
    const { key } = deriveKeys(dataKey, messageId);
    const h = createCipheriv('aes-256-gcm', key, ZERO_IV);
    h.setAAD(header);
    h.final();
    h.getAuthTag();
    const f = createCipheriv('aes-256-gcm', key, iv);
    f.setAAD(aad);
    f.update(plaintext);
    f.final();
    const tag = f.getAuthTag();
    return ecdsa === undefined ? tag : ecdsa.sign();
  };
}

/**
 * The decrypt floor for a message of `plaintext`: derive, check the commitment, verify the header
 * tag, decrypt and verify one frame (and, `signed`, the ECDSA P-384 signature). Returns a
 * synchronous op that throws if anything fails.
 */
export function decryptFloor(plaintext, { signed = false } = {}) {
  const dataKey = randomBytes(32);
  const messageId = randomBytes(32);
  const header = randomBytes(headerBodyLength());
  const aad = finalFrameAad(messageId, plaintext.length);
  const iv = frameIv(1);
  const { key, commitment } = deriveKeys(dataKey, messageId);
  const h = createCipheriv('aes-256-gcm', key, ZERO_IV).setAAD(header);
  h.final();
  const headerTag = h.getAuthTag();
  const f = createCipheriv('aes-256-gcm', key, iv).setAAD(aad);
  const ciphertext = f.update(plaintext);
  f.final();
  const frameTag = f.getAuthTag();
  const ecdsa = signer(signed, Buffer.concat([header, ciphertext, randomBytes(60)]));
  return () => {
    const k = deriveKeys(dataKey, messageId);
    if (!timingSafeEqual(k.commitment, commitment)) throw new Error('commitment mismatch');
    const hd = createDecipheriv('aes-256-gcm', k.key, ZERO_IV);
    hd.setAAD(header);
    hd.setAuthTag(headerTag);
    hd.final();
    const fd = createDecipheriv('aes-256-gcm', k.key, iv);
    fd.setAAD(aad);
    fd.setAuthTag(frameTag);
    const out = fd.update(ciphertext);
    fd.final();
    ecdsa?.verify();
    return out;
  };
}

/** One-shot AES-256-GCM over a whole buffer: { encrypt(), decrypt() } over preallocated input. */
export function oneShotGcm(plaintext) {
  const key = randomBytes(32);
  const iv = randomBytes(12);
  const seal = () => {
    const c = createCipheriv('aes-256-gcm', key, iv);
    const out = c.update(plaintext);
    c.final();
    return { out, tag: c.getAuthTag() };
  };
  const sealed = seal();
  return {
    encrypt: () => seal().out,
    decrypt: () => {
      const d = createDecipheriv('aes-256-gcm', key, iv);
      d.setAuthTag(sealed.tag);
      const out = d.update(sealed.out);
      d.final();
      return out;
    },
  };
}

/**
 * Framed AES-256-GCM with bare node:crypto, the least a framed format can do for a whole buffer:
 * per frame one cipher, one AAD, one update, one tag, and one copy of the update's output into a
 * message-sized buffer allocated once (node:crypto cannot encrypt into a caller's buffer).
 * Returns { encrypt(), decrypt() } over preallocated input.
 */
export function framedGcm(plaintext, frameLength) {
  const key = randomBytes(32);
  const aad = randomBytes(32 + 28 + 12);
  const frames = Math.ceil(plaintext.length / frameLength);
  const ivs = Array.from({ length: frames }, (_, i) => frameIv(i + 1));
  const seal = () => {
    const out = Buffer.allocUnsafe(plaintext.length + frames * 16);
    let w = 0;
    for (let i = 0; i < frames; i++) {
      const c = createCipheriv('aes-256-gcm', key, ivs[i]);
      c.setAAD(aad);
      const ct = c.update(plaintext.subarray(i * frameLength, (i + 1) * frameLength));
      out.set(ct, w);
      w += ct.length;
      c.final();
      out.set(c.getAuthTag(), w);
      w += 16;
    }
    return out;
  };
  const sealed = seal();
  return {
    encrypt: seal,
    decrypt: () => {
      const out = Buffer.allocUnsafe(plaintext.length);
      let r = 0;
      let w = 0;
      for (let i = 0; i < frames; i++) {
        const n = Math.min(frameLength, plaintext.length - w);
        const d = createDecipheriv('aes-256-gcm', key, ivs[i]);
        d.setAAD(aad);
        d.setAuthTag(sealed.subarray(r + n, r + n + 16));
        out.set(d.update(sealed.subarray(r, r + n)), w);
        d.final();
        r += n + 16;
        w += n;
      }
      return out;
    },
  };
}
