/**
 * Exhaustive tampering of one 1 KiB message (shared by bitflip-0478.test.ts and
 * bitflip-0578.test.ts, which vitest runs in parallel): every single-bit flip of header, body and
 * footer, every truncation, and bytes after the end, through Envelope.decrypt and
 * Envelope.decryptStream. Failures are collected and asserted at the end of each test (one
 * `expect` per case would dominate the run time).
 */
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { Envelope, EnvelopeError } from '../../src/index.js';
import { DecryptionError } from '../../src/errors.js';
import {
  CountingKeyring,
  cut,
  decryptBuffer,
  decryptStreamed,
  isPrefix,
  rawKeyring,
  REJECTION_CODES,
  SecretScanner,
  WRAPPING_KEY,
} from './harness.js';
import { layout, parseModel } from './model.js';

export const CANARY = 'plaintext-canary-7f3a';
const FRAME = 100;

/** 1 KiB of recognizable plaintext: numbered canary tokens. */
export function canaryPlaintext(length = 1024): Buffer {
  let s = '';
  for (let i = 0; s.length < length; i++) s += `${CANARY}:${String(i).padStart(4, '0')};`;
  return Buffer.from(s.slice(0, length));
}

/** Collects failures, error codes and messages over many cases. */
class Findings {
  readonly failures: string[] = [];
  readonly codes = new Map<string, number>();
  readonly messagesByCode = new Map<string, Set<string>>();
  cases = 0;

  fail(s: string): void {
    if (this.failures.length < 20) this.failures.push(s);
    else if (this.failures.length === 20) this.failures.push('... (more)');
  }

  /** Checks that `error` is a typed rejection without secrets; records its code and message. */
  rejection(error: unknown, label: string, scanner: SecretScanner): void {
    if (!(error instanceof EnvelopeError)) {
      this.fail(`${label}: not an EnvelopeError: ${String(error)}`);
      return;
    }
    if (!REJECTION_CODES.includes(error.code)) this.fail(`${label}: unexpected code ${error.code}`);
    this.codes.set(error.code, (this.codes.get(error.code) ?? 0) + 1);
    let set = this.messagesByCode.get(error.code);
    if (!set) this.messagesByCode.set(error.code, (set = new Set()));
    set.add(error.message);
    if (error.code === 'ERR_DECRYPTION_FAILED' && error.cause !== undefined) this.fail(`${label}: decryption failure carries a cause`);
    const leak = scanner.scan(error);
    if (leak) this.fail(`${label}: ${leak}`);
  }
}

export function bitFlipSuite(suiteId: number): void {
  const name = `0x${suiteId.toString(16).padStart(4, '0')}`;
  describe(`suite ${name}: every bit, every truncation, trailing bytes (buffer and stream)`, () => {
    const plaintext = canaryPlaintext();
    const keyring = new CountingKeyring(rawKeyring());
    const envelope = new Envelope({ keyring, suite: suiteId, frameLength: FRAME });
    const findings = new Findings();
    let scanner: SecretScanner;
    let message: Buffer;
    let headerLength: number;
    let frameStarts: number[];
    let bodyEnd: number;

    beforeAll(async () => {
      message = await envelope.encrypt(plaintext, { context: { purpose: 'bitflip' } });
      const m = parseModel(message);
      ({ headerLength, frameStarts, bodyEnd } = layout(m));
      scanner = new SecretScanner(
        [
          { what: 'wrapping key', bytes: WRAPPING_KEY },
          ...keyring.dataKeys.map((bytes) => ({ what: 'data key', bytes })),
        ],
        [CANARY],
      );
    });

    it('the message has a header, 10 full frames, a 24-byte final frame and (signed) a footer', async () => {
      expect(frameStarts).toHaveLength(11);
      expect(bodyEnd - frameStarts[10]!).toBe(4 + 4 + 12 + 4 + 24 + 16);
      expect(message.length > bodyEnd).toBe(suiteId === 0x0578);
      expect(keyring.dataKeys).toHaveLength(1);
      const ok = await decryptBuffer(envelope, message);
      expect(ok.ok && ok.plaintext.equals(plaintext)).toBe(true);
      const s = await decryptStreamed(envelope, cut(message, [headerLength, 700]));
      expect(s.error).toBeUndefined();
      expect(s.out.equals(plaintext)).toBe(true);
    });

    /** Plaintext bytes a stream may release when byte `at` is bad: only frames wholly before it (never the final frame). */
    const allowedBefore = (at: number): number => {
      if (at < headerLength) return 0;
      let k = 0;
      while (k + 1 < frameStarts.length && frameStarts[k + 1]! <= at) k++;
      if (at >= bodyEnd) k = frameStarts.length - 1; // footer: the final frame is withheld until the signature verifies
      return Math.min(k * FRAME, 10 * FRAME);
    };

    it('every single-bit flip is rejected with an EnvelopeError, never plaintext', async () => {
      const bits = message.length * 8;
      for (let bit = 0; bit < bits; bit++) {
        const at = bit >> 3;
        const bad = Buffer.from(message);
        bad[at]! ^= 1 << (bit & 7);
        findings.cases++;
        const label = `bit ${bit} (byte ${at} of ${message.length})`;

        const b = await decryptBuffer(envelope, bad);
        if (b.ok) findings.fail(`${label}: buffer decrypt returned plaintext`);
        else findings.rejection(b.error, `${label} buffer`, scanner);

        // Two or three chunks, cut at a point that moves with the bit, so chunk edges land everywhere.
        const s = await decryptStreamed(envelope, cut(bad, [(bit * 7919) % bad.length, headerLength]));
        if (s.ended || s.error === undefined) findings.fail(`${label}: stream ended without an error`);
        else findings.rejection(s.error, `${label} stream`, scanner);
        if (!isPrefix(s.out, plaintext)) findings.fail(`${label}: stream emitted bytes that are not a prefix of the plaintext`);
        if (s.out.length > allowedBefore(at)) {
          findings.fail(`${label}: stream emitted ${s.out.length} bytes, at most ${allowedBefore(at)} allowed`);
        }
      }
      expect(findings.failures).toEqual([]);
      expect(findings.cases).toBe(bits);
    });

    it('every truncation is rejected (buffer and stream), the stream releasing only whole verified frames', async () => {
      for (let n = 0; n < message.length; n++) {
        const short = message.subarray(0, n);
        const label = `truncated to ${n}`;
        const b = await decryptBuffer(envelope, short);
        if (b.ok) findings.fail(`${label}: buffer decrypt returned plaintext`);
        else findings.rejection(b.error, `${label} buffer`, scanner);
        const s = await decryptStreamed(envelope, cut(short, [(n * 31) % Math.max(1, n)]));
        if (s.ended || s.error === undefined) findings.fail(`${label}: stream ended without an error`);
        else findings.rejection(s.error, `${label} stream`, scanner);
        if (!isPrefix(s.out, plaintext) || s.out.length > allowedBefore(n)) {
          findings.fail(`${label}: stream emitted ${s.out.length} bytes (allowed ${allowedBefore(n)})`);
        }
      }
      expect(findings.failures).toEqual([]);
    });

    it('bytes after the end of a complete message are rejected (buffer and stream, same or later write)', async () => {
      const other = await envelope.encrypt(plaintext, { context: { purpose: 'bitflip' } });
      for (const k of keyring.dataKeys) scanner.addSecret("data key", k);
      const extras = [Buffer.from([0]), randomBytes(1), randomBytes(100), message, other, message.subarray(frameStarts[10]!)];
      for (const [i, extra] of extras.entries()) {
        const bad = Buffer.concat([message, extra]);
        const label = `trailing #${i} (${extra.length} bytes)`;
        const b = await decryptBuffer(envelope, bad);
        if (b.ok) findings.fail(`${label}: buffer decrypt returned plaintext`);
        else if ((b.error as EnvelopeError).code !== 'ERR_MALFORMED_MESSAGE') findings.fail(`${label}: buffer code ${String(b.error)}`);
        for (const chunks of [[bad], [message, extra], cut(bad, [message.length - 1, message.length + 1])]) {
          const s = await decryptStreamed(envelope, chunks);
          if (s.ended || s.error === undefined) findings.fail(`${label}: stream ended without an error`);
          else findings.rejection(s.error, `${label} stream`, scanner);
          if (!isPrefix(s.out, plaintext)) findings.fail(`${label}: stream output is not a prefix`);
          // Signed suites withhold the final frame until the input ends cleanly.
          if (suiteId === 0x0578 && s.out.length > 10 * FRAME) findings.fail(`${label}: final frame released`);
        }
      }
      expect(findings.failures).toEqual([]);
    });

    it('all authentication failures share one message and code; no error carries key bytes or plaintext', () => {
      const auth = findings.messagesByCode.get('ERR_DECRYPTION_FAILED');
      expect(auth, 'some flips must fail authentication').toBeDefined();
      expect([...auth!]).toEqual([DecryptionError.MESSAGE]);
      // Tag, header tag and signature failures are all ERR_DECRYPTION_FAILED; the commitment check
      // (a flip in the message id or commitment) is the only other crypto failure and has its own code.
      const commitment = findings.messagesByCode.get('ERR_COMMITMENT_MISMATCH');
      expect(commitment === undefined || commitment.size === 1).toBe(true);
      console.log(
        `${name}: ${findings.cases} bit flips, ${message.length} truncations; codes ${JSON.stringify(Object.fromEntries(findings.codes))}; ` +
          `keyring decrypt calls ${keyring.decryptCalls}`,
      );
      expect(findings.failures).toEqual([]);
    });
  });
}
