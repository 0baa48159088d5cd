/**
 * fast-check arbitraries of structured mutations over the message model (model.ts).
 *
 * - `anyMutation`: changes any field, including length and count fields that then lie about what
 *   follows, suite ids, frame lengths, sequence numbers, the final-frame marker, EDK lists, the
 *   context and the footer. Applied to a message whose tags are left as they were.
 * - `sealedInvalidMutation`: changes that make a message invalid by the format specification (or
 *   unsupported here), applied before the message is re-authenticated with `seal`, so that only
 *   the reader's structure checks can reject it.
 *
 * Indices are drawn as naturals and reduced modulo the current list length when applied, so a
 * mutation stays meaningful after an earlier one removed elements.
 */
import fc from 'fast-check';
import { FINAL_MARKER, type FrameModel, type MessageModel, type PairModel } from './model.js';

export interface Mutation {
  readonly name: string;
  apply(m: MessageModel): void;
}

function mutation(name: string, apply: (m: MessageModel) => void): Mutation {
  return { name, apply, [fc.toStringMethod]: () => name } as Mutation;
}

// --- Interesting numbers ------------------------------------------------------------------------

type NumSpec = { abs: number } | { rel: number };

function numSpec(max: number, constants: number[]): fc.Arbitrary<NumSpec> {
  return fc.oneof(
    { arbitrary: fc.constantFrom(...constants).map((abs) => ({ abs })), weight: 3 },
    { arbitrary: fc.integer({ min: -4, max: 4 }).map((rel) => ({ rel })), weight: 3 },
    { arbitrary: fc.nat(max).map((abs) => ({ abs })), weight: 1 },
  );
}

const len16 = numSpec(0xffff, [0, 1, 2, 0x7fff, 0xfffe, 0xffff]);
const num32 = numSpec(0xffffffff, [0, 1, 0x7fffffff, 0xfffffff0, 0xfffffffe, 0xffffffff, 1 << 24, (1 << 24) + 1, 2 ** 32 - 16]);

function resolve(spec: NumSpec, actual: number, max: number): number {
  if ('abs' in spec) return spec.abs;
  const v = actual + spec.rel;
  return v < 0 ? max + 1 + v : v > max ? v - max - 1 : v;
}
const show = (s: NumSpec): string => ('abs' in s ? `=${s.abs}` : `${s.rel >= 0 ? '+' : ''}${s.rel}`);

const u64Spec = fc.oneof(
  fc.constantFrom(0n, 1n, 2n ** 36n - 32n, 2n ** 36n - 31n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n, 64n * 1024n * 1024n + 1n),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
);

const byte = fc.oneof(fc.constantFrom(0, 1, 2, 3, 0x41, 0x7f, 0x80, 0xff), fc.nat(255));
const smallBytes = (max: number) => fc.uint8Array({ minLength: 0, maxLength: max }).map((a) => Buffer.from(a));

/** Byte strings that are bad or edge-case encryption context keys/values. */
const contextText = fc.oneof(
  fc.constantFrom(
    Buffer.alloc(0),
    Buffer.from([0xff]), // never valid UTF-8
    Buffer.from([0xc0, 0x80]), // overlong NUL
    Buffer.from([0xed, 0xa0, 0x80]), // UTF-16 surrogate
    Buffer.from([0xe2, 0x82]), // truncated sequence
    Buffer.from('x'),
    Buffer.from('aws-crypto-public-key'),
    Buffer.from('__proto__'),
  ),
  smallBytes(12),
);

const suiteIds = fc.oneof(
  fc.constantFrom(0x0014, 0x0046, 0x0078, 0x0114, 0x0146, 0x0178, 0x0214, 0x0346, 0x0378, 0x0478, 0x0578),
  fc.constantFrom(0x0000, 0xffff, 0x0479, 0x0477, 0x0678, 0x0778, 0x0400, 0x0500, 0x7804),
  fc.nat(0xffff),
);

// --- Helpers ----------------------------------------------------------------------------------

/** The frame list, or undefined when the body is not framed or has no frames left. */
function frames(m: MessageModel): FrameModel[] | undefined {
  return m.body.kind === 'framed' && m.body.frames.length > 0 ? m.body.frames : undefined;
}

function resize(b: Buffer, n: number): Buffer {
  if (n <= b.length) return Buffer.from(b.subarray(0, n));
  return Buffer.concat([b, Buffer.alloc(n - b.length, 0xa5)]);
}

function flipByte(b: Buffer, at: number, mask: number): Buffer {
  if (b.length === 0) return b;
  const c = Buffer.from(b);
  c[at % c.length]! ^= mask || 1;
  return c;
}

// --- Any mutation (tags left as they are) -----------------------------------------------------

const headerMutations: fc.Arbitrary<Mutation>[] = [
  byte.map((v) => mutation(`version=${v}`, (m) => void (m.version = v))),
  byte.map((v) => mutation(`v1Type=${v}`, (m) => void (m.v1Type = v))),
  suiteIds.map((v) => mutation(`suiteId=0x${v.toString(16)}`, (m) => void (m.suiteId = v))),
  fc.constantFrom(0, 15, 16, 31, 33, 64).map((n) => mutation(`messageId length ${n}`, (m) => void (m.messageId = resize(m.messageId, n)))),
  fc.tuple(fc.nat(), fc.nat(255)).map(([at, mask]) => mutation(`messageId flip ${at}`, (m) => void (m.messageId = flipByte(m.messageId, at, mask)))),
  len16.map((s) => mutation(`aadLength${show(s)}`, (m) => void (m.context.aadLength = resolve(s, serializedAadLength(m), 0xffff)))),
  len16.map((s) => mutation(`contextCount${show(s)}`, (m) => void (m.context.count = resolve(s, m.context.pairs.length, 0xffff)))),
  fc.tuple(fc.nat(), fc.boolean(), len16).map(([i, key, s]) =>
    mutation(`pair[${i}].${key ? 'key' : 'value'}Length${show(s)}`, (m) => {
      const p = m.context.pairs[i % Math.max(1, m.context.pairs.length)];
      if (!p) return;
      if (key) p.keyLength = resolve(s, p.key.length, 0xffff);
      else p.valueLength = resolve(s, p.value.length, 0xffff);
    }),
  ),
  fc.tuple(fc.nat(), contextText, contextText, fc.boolean()).map(([i, key, value, dupKey]) =>
    mutation(`add pair ${dupKey ? '(duplicate key)' : key.toString('hex')}=${value.toString('hex')} at ${i}`, (m) => {
      const ps = m.context.pairs;
      const k = dupKey && ps.length > 0 ? Buffer.from(ps[i % ps.length]!.key) : key;
      ps.splice(i % (ps.length + 1), 0, { key: k, value });
    }),
  ),
  fc.nat().map((i) => mutation(`remove pair ${i}`, (m) => void m.context.pairs.splice(i % Math.max(1, m.context.pairs.length), 1))),
  fc.constant(mutation('remove all pairs', (m) => void (m.context.pairs = []))),
  fc.constant(mutation('context count 0 with a 2-byte AAD', (m) => {
    m.context.pairs = [];
    m.context.count = 0;
  })),
  fc.constant(mutation('reverse pair order', (m) => void m.context.pairs.reverse())),
  smallBytes(8).map((b) => mutation(`context extra ${b.toString('hex')}`, (m) => void (m.context.extra = b))),
  len16.map((s) => mutation(`edkCount${show(s)}`, (m) => void (m.edkCount = resolve(s, m.edks.length, 0xffff)))),
  fc.constant(mutation('remove all EDKs', (m) => void (m.edks = []))),
  fc.integer({ min: 0, max: 14 }).map((n) =>
    mutation(`EDK list of ${n} copies`, (m) => {
      const first = m.edks[0];
      if (first) m.edks = Array.from({ length: n }, () => ({ ...first }));
    }),
  ),
  fc.tuple(fc.nat(), fc.nat(2), len16).map(([i, f, s]) =>
    mutation(`edk[${i}].lengths[${f}]${show(s)}`, (m) => {
      const e = m.edks[i % Math.max(1, m.edks.length)];
      if (!e) return;
      const actual = [e.providerId, e.providerInfo, e.ciphertext][f]!.length;
      const lengths = e.lengths ?? [undefined, undefined, undefined];
      lengths[f] = resolve(s, actual, 0xffff);
      e.lengths = lengths;
    }),
  ),
  fc.tuple(fc.nat(), fc.nat(2), fc.oneof(contextText, smallBytes(80))).map(([i, f, b]) =>
    mutation(`edk[${i}] field ${f} := ${b.toString('hex')}`, (m) => {
      const e = m.edks[i % Math.max(1, m.edks.length)];
      if (!e) return;
      if (f === 0) e.providerId = b;
      else if (f === 1) e.providerInfo = b;
      else e.ciphertext = b;
    }),
  ),
  fc.tuple(fc.nat(), fc.constantFrom('region', 'account', 'partition', 'alias', 'key id', 'extra part', 'no id', 'non-ASCII', 'other service')).map(
    ([i, how]) =>
      mutation(`edk[${i}] provider info: ARN with ${how}`, (m) => {
        const e = m.edks[i % Math.max(1, m.edks.length)];
        if (!e) return;
        const parts = e.providerInfo.toString('latin1').split(':');
        if (parts.length !== 6) parts.splice(0, parts.length, 'arn', 'aws', 'kms', 'us-east-1', '111122223333', 'key/1234abcd-12ab-34cd-56ef-1234567890ab');
        const edits: Record<string, () => void> = {
          region: () => (parts[3] = 'xx-nowhere-9'),
          account: () => (parts[4] = '999999999999'),
          partition: () => (parts[1] = 'aws-cn'),
          alias: () => (parts[5] = parts[5]!.replace(/^key\//, 'alias/')),
          'key id': () => (parts[5] = 'key/00000000-0000-0000-0000-000000000000'),
          'extra part': () => parts.push('x'),
          'no id': () => (parts[5] = 'key/'),
          'non-ASCII': () => (parts[5] += '\u00e9\u{1f511}'),
          'other service': () => (parts[2] = 'kmz'),
        };
        edits[how]!();
        e.providerId = Buffer.from('aws-kms');
        e.providerInfo = Buffer.from(parts.join(':'), 'utf8');
      }),
  ),
  smallBytes(60).map((info) =>
    mutation(`add aws-kms EDK with info ${info.toString('hex')}`, (m) =>
      void m.edks.unshift({ providerId: Buffer.from('aws-kms'), providerInfo: info, ciphertext: Buffer.alloc(40, 1) }),
    ),
  ),
  fc.constantFrom(0, 1, 2, 3, 0x80, 0xff).map((v) => mutation(`contentType=${v}`, (m) => void (m.contentType = v))),
  num32.map((s) => mutation(`frameLength${show(s)}`, (m) => void (m.frameLength = resolve(s, m.frameLength, 0xffffffff)))),
  num32.map((s) => mutation(`v1Reserved${show(s)}`, (m) => void (m.v1Reserved = resolve(s, m.v1Reserved, 0xffffffff)))),
  byte.map((v) => mutation(`v1IvLength=${v}`, (m) => void (m.v1IvLength = v))),
  fc.constantFrom(0, 16, 31, 33).map((n) => mutation(`suiteData length ${n}`, (m) => void (m.suiteData = resize(m.suiteData, n)))),
  fc.tuple(fc.nat(), fc.nat(255)).map(([at, mask]) => mutation(`suiteData flip ${at}`, (m) => void (m.suiteData = flipByte(m.suiteData, at, mask)))),
  fc.tuple(fc.nat(), fc.nat(255)).map(([at, mask]) => mutation(`headerIv flip ${at}`, (m) => void (m.headerIv = flipByte(m.headerIv, at, mask)))),
  fc.oneof(fc.constantFrom(0, 15, 17).map((n) => ({ n })), fc.tuple(fc.nat(), fc.nat(255)).map(([at, mask]) => ({ at, mask }))).map((p) =>
    mutation(`headerTag ${JSON.stringify(p)}`, (m) => {
      m.headerTag = 'n' in p ? resize(m.headerTag, p.n) : flipByte(m.headerTag, p.at, p.mask);
    }),
  ),
];

const bodyMutations: fc.Arbitrary<Mutation>[] = [
  fc.tuple(fc.nat(), fc.nat()).map(([i, j]) =>
    mutation(`swap frames ${i},${j}`, (m) => {
      const fs = frames(m);
      if (!fs || fs.length < 2) return;
      const a = i % fs.length;
      const b = j % fs.length;
      [fs[a], fs[b]] = [fs[b]!, fs[a]!];
    }),
  ),
  fc.nat().map((i) =>
    mutation(`duplicate frame ${i}`, (m) => {
      const fs = frames(m);
      if (!fs) return;
      const k = i % fs.length;
      fs.splice(k, 0, { ...fs[k]! });
    }),
  ),
  fc.nat().map((i) =>
    mutation(`drop frame ${i}`, (m) => {
      const fs = frames(m);
      fs?.splice(i % fs.length, 1);
    }),
  ),
  fc.tuple(fc.nat(), num32).map(([i, s]) =>
    mutation(`frame[${i}].sequenceNumber${show(s)}`, (m) => {
      const fs = frames(m);
      if (!fs) return;
      const f = fs[i % fs.length]!;
      f.sequenceNumber = resolve(s, f.sequenceNumber, 0xffffffff);
    }),
  ),
  fc.nat().map((i) =>
    mutation(`toggle final marker of frame ${i}`, (m) => {
      const fs = frames(m);
      if (!fs) return;
      const f = fs[i % fs.length]!;
      f.final = !f.final;
    }),
  ),
  fc.tuple(fc.nat(), num32).map(([i, s]) =>
    mutation(`frame[${i}].declaredLength${show(s)}`, (m) => {
      const fs = frames(m);
      if (!fs) return;
      const f = fs[i % fs.length]!;
      f.final = true;
      f.declaredLength = resolve(s, f.content.length, 0xffffffff);
    }),
  ),
  fc.tuple(fc.nat(), fc.integer({ min: -20, max: 20 })).map(([i, d]) =>
    mutation(`frame[${i}].content length ${d >= 0 ? '+' : ''}${d}`, (m) => {
      const fs = frames(m);
      if (!fs) return;
      const f = fs[i % fs.length]!;
      f.content = resize(f.content, Math.max(0, f.content.length + d));
    }),
  ),
  fc.tuple(fc.nat(), fc.constantFrom('iv', 'tag', 'content'), fc.nat(), fc.nat(255)).map(([i, field, at, mask]) =>
    mutation(`frame[${i}].${field} flip ${at}`, (m) => {
      const fs = frames(m);
      if (!fs) return;
      const f = fs[i % fs.length]!;
      f[field] = flipByte(f[field], at, mask);
    }),
  ),
  smallBytes(200).map((b) => mutation(`body := ${b.length} random bytes`, (m) => void (m.body = { kind: 'raw', bytes: b }))),
  fc.constant(
    mutation('framed body -> non-framed', (m) => {
      const fs = frames(m);
      if (!fs) return;
      m.body = { kind: 'nonFramed', part: { iv: fs[0]!.iv, content: Buffer.concat(fs.map((f) => f.content)), tag: fs[fs.length - 1]!.tag } };
    }),
  ),
  fc.constant(
    mutation('non-framed body -> framed', (m) => {
      if (m.body.kind !== 'nonFramed') return;
      const p = m.body.part;
      m.body = { kind: 'framed', frames: [{ final: true, sequenceNumber: 1, iv: p.iv, content: p.content, tag: p.tag }] };
    }),
  ),
  u64Spec.map((v) =>
    mutation(`non-framed declaredLength=${v}`, (m) => {
      if (m.body.kind === 'nonFramed') m.body.part.declaredLength = v;
    }),
  ),
  fc.constant(mutation('remove footer', (m) => void delete m.footer)),
  smallBytes(110).map((sig) => mutation(`footer := ${sig.length} bytes`, (m) => void (m.footer = { signature: sig }))),
  len16.map((s) =>
    mutation(`footer declaredLength${show(s)}`, (m) => {
      if (m.footer) m.footer.declaredLength = resolve(s, m.footer.signature.length, 0xffff);
    }),
  ),
  fc.tuple(fc.nat(), fc.nat(255)).map(([at, mask]) =>
    mutation(`signature flip ${at}`, (m) => {
      if (m.footer) m.footer.signature = flipByte(m.footer.signature, at, mask);
    }),
  ),
  smallBytes(40).map((b) => mutation(`trailing ${b.length} bytes`, (m) => void (m.trailing = Buffer.concat([m.trailing, b])))),
];

/** One mutation of any field. */
export const anyMutation: fc.Arbitrary<Mutation> = fc.oneof(
  { arbitrary: fc.oneof(...headerMutations), weight: 3 },
  { arbitrary: fc.oneof(...bodyMutations), weight: 2 },
);

/** Cuts applied to the serialized bytes after the model mutations: a truncation or a byte flip. */
export type PostMutation = { truncateAt: number } | { flipAt: number; mask: number } | undefined;
export const postMutation: fc.Arbitrary<PostMutation> = fc.option(
  fc.oneof(
    fc.nat().map((truncateAt) => ({ truncateAt })),
    fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })).map(([flipAt, mask]) => ({ flipAt, mask })),
  ),
  { freq: 4, nil: undefined },
);

export function applyPost(b: Buffer, p: PostMutation): Buffer {
  if (p === undefined || b.length === 0) return b;
  if ('truncateAt' in p) return b.subarray(0, p.truncateAt % b.length);
  const c = Buffer.from(b);
  c[p.flipAt % c.length]! ^= p.mask;
  return c;
}

function serializedAadLength(m: MessageModel): number {
  if (m.context.pairs.length === 0 && m.context.count === undefined && !m.context.extra) return 0;
  let n = 2 + (m.context.extra?.length ?? 0);
  for (const p of m.context.pairs) n += 4 + p.key.length + p.value.length;
  return n;
}

// --- Sealed mutations: invalid by the specification, re-authenticated afterwards ---------------

export interface SealedMutation extends Mutation {
  /** Rejected while parsing the header: no keyring call may happen. */
  readonly headerStage: boolean;
  /** Keep the context's public key as the mutation left it (seal must not replace it). */
  readonly keepPublicKey: boolean;
}

function sealed(name: string, headerStage: boolean, apply: (m: MessageModel) => void, keepPublicKey = false): SealedMutation {
  return { name, apply, headerStage, keepPublicKey, [fc.toStringMethod]: () => name } as SealedMutation;
}

/** Applies to framed models with at least 3 frames (the sealed seeds have 4 regular frames and a final one). */
function framedOnly(m: MessageModel): FrameModel[] {
  if (m.body.kind !== 'framed') throw new Error('sealed frame mutation on a non-framed model');
  return m.body.frames;
}

const badUtf8 = fc.constantFrom(Buffer.from([0xff]), Buffer.from([0xc0, 0x80]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0x61, 0xe2, 0x82]));

const sealedFramed: fc.Arbitrary<SealedMutation>[] = [
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 4 })).map(([i, d]) =>
    sealed(`swap sequence numbers of frames ${i} and +${d}`, false, (m) => {
      const fs = framedOnly(m);
      const a = i % fs.length;
      const b = (a + d) % fs.length;
      if (a === b) throw new Error('unreachable');
      [fs[a]!.sequenceNumber, fs[b]!.sequenceNumber] = [fs[b]!.sequenceNumber, fs[a]!.sequenceNumber];
    }),
  ),
  fc.tuple(fc.nat(), fc.oneof(fc.constantFrom(-1, 1, 2, 0x10000), fc.integer({ min: 1, max: 0x7ffffff }))).map(([i, d]) =>
    sealed(`frame ${i} sequence number ${d >= 0 ? '+' : ''}${d}`, false, (m) => {
      const f = framedOnly(m)[i % framedOnly(m).length]!;
      f.sequenceNumber = (f.sequenceNumber + d) >>> 0;
    }),
  ),
  fc.nat().map((i) => sealed(`duplicate frame ${i}`, false, (m) => void framedOnly(m).splice(i % framedOnly(m).length, 0, { ...framedOnly(m)[i % framedOnly(m).length]! }))),
  fc.nat().map((i) => sealed(`drop frame ${i}`, false, (m) => void framedOnly(m).splice(i % framedOnly(m).length, 1))),
  fc.nat().map((i) =>
    sealed(`final-frame marker on regular frame ${i}`, false, (m) => {
      const fs = framedOnly(m);
      fs[i % (fs.length - 1)]!.final = true;
    }),
  ),
  fc.constant(sealed('final frame written as a regular frame', false, (m) => void (framedOnly(m).at(-1)!.final = false))),
  fc.constant(
    sealed('two final frames', false, (m) => {
      const fs = framedOnly(m);
      const last = fs.at(-1)!;
      fs.push({ ...last, sequenceNumber: last.sequenceNumber + 1 });
    }),
  ),
  fc.integer({ min: 1, max: 40 }).map((k) =>
    sealed(`final frame longer than the frame length by ${k}`, false, (m) => {
      const last = framedOnly(m).at(-1)!;
      last.plaintext = resize(last.plaintext ?? Buffer.alloc(0), m.frameLength + k);
    }),
  ),
  fc.tuple(fc.nat(), fc.integer({ min: -30, max: 30 }).filter((d) => d !== 0)).map(([i, d]) =>
    sealed(`regular frame ${i} plaintext length ${d >= 0 ? '+' : ''}${d}`, false, (m) => {
      const fs = framedOnly(m);
      const f = fs[i % (fs.length - 1)]!;
      f.plaintext = resize(f.plaintext!, f.plaintext!.length + d);
    }),
  ),
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 30 })).map(([i, d]) =>
    sealed(`final frame declares ${d} bytes more than it holds`, false, (m) => {
      const last = framedOnly(m).at(-1)!;
      last.declaredLength = (last.plaintext?.length ?? 0) + d + (i % 2) * 0;
    }),
  ),
  fc.constant(sealed('frame length 0', true, (m) => void (m.frameLength = 0))),
  fc.constant(sealed('framed body under content type 1 (non-framed)', true, (m) => void (m.contentType = 1))),
  fc.constant(sealed('frame length larger than the 16 MiB stream limit', false, (m) => void (m.frameLength = 0xffffffff))),
];

const sealedNonFramed: fc.Arbitrary<SealedMutation>[] = [
  fc.constantFrom(1, 64, 0xffffffff).map((n) => sealed(`non-framed with frame length ${n}`, true, (m) => void (m.frameLength = n))),
  fc.constant(sealed('non-framed body under content type 2', false, (m) => void (m.contentType = 2))),
  fc.integer({ min: -20, max: 20 }).filter((d) => d !== 0).map((d) =>
    sealed(`non-framed declared length ${d >= 0 ? '+' : ''}${d}`, false, (m) => {
      if (m.body.kind !== 'nonFramed') throw new Error('unreachable');
      const p = m.body.part;
      p.declaredLength = BigInt(Math.max(0, p.plaintext!.length + d));
    }),
  ),
];

const sealedHeader: fc.Arbitrary<SealedMutation>[] = [
  fc.constantFrom(0, 3, 0xff).map((v) => sealed(`content type ${v}`, true, (m) => void (m.contentType = v))),
  fc.constant(sealed('no encrypted data keys', true, (m) => void (m.edks = []))),
  fc.integer({ min: 11, max: 14 }).map((n) => sealed(`${n} encrypted data keys (limit 10)`, true, (m) => void (m.edks = Array.from({ length: n }, () => ({ ...m.edks[0]! }))))),
  fc.constantFrom(11, 0x7fff, 0xffff).map((n) => sealed(`EDK count ${n} with one EDK`, true, (m) => void (m.edkCount = n))),
  fc.nat().map((i) =>
    sealed(`duplicate context key ${i}`, true, (m) => {
      const ps = m.context.pairs;
      const p = ps[i % ps.length]!;
      ps.push({ key: Buffer.from(p.key), value: Buffer.from('other') });
    }),
  ),
  fc.tuple(badUtf8, fc.boolean()).map(([b, inKey]) =>
    sealed(`invalid UTF-8 context ${inKey ? 'key' : 'value'} ${b.toString('hex')}`, true, (m) => {
      m.context.pairs.push(inKey ? { key: b, value: Buffer.from('v') } : { key: Buffer.from('bad-value'), value: b });
    }),
  ),
  fc.constant(
    sealed('context pair count 0 with pairs present', true, (m) => void (m.context.count = 0)),
  ),
  fc.integer({ min: 1, max: 3 }).map((d) => sealed(`context count +${d}`, true, (m) => void (m.context.count = m.context.pairs.length + d))),
  fc.constant(sealed('context count -1', true, (m) => void (m.context.count = m.context.pairs.length - 1))),
  smallBytes(6).filter((b) => b.length > 0).map((b) => sealed(`bytes after the context pairs ${b.toString('hex')}`, true, (m) => void (m.context.extra = b))),
  fc.constantFrom(0x0014, 0x0078, 0x0178, 0x0378).map((s) => sealed(`v1 suite 0x${s.toString(16)} in a v2 header`, true, (m) => void (m.suiteId = s))),
  fc.constant(sealed('version 1 with a v2 layout', true, (m) => void (m.version = 1))),
  smallBytes(20).filter((b) => b.length > 0).map((b) => sealed(`trailing ${b.toString('hex')}`, false, (m) => void (m.trailing = b))),
];

/** Signed-suite specific: public key and footer. */
const sealedSigned: fc.Arbitrary<SealedMutation>[] = [
  fc.constant(sealed('public key removed from the context', false, (m) => void (m.context.pairs = m.context.pairs.filter((p) => p.key.toString() !== 'aws-crypto-public-key')), true)),
  fc
    .oneof(
      fc.constantFrom('', 'AAAA', 'A'.repeat(64), 'A'.repeat(66) + '==', 'Ag' + 'A'.repeat(62), '!!!!'),
      fc.uint8Array({ minLength: 49, maxLength: 49 }).map((a) => Buffer.from(a).toString('base64')),
      fc.string({ maxLength: 70 }),
    )
    .map((v) =>
      sealed(
        `public key := ${JSON.stringify(v)}`,
        false,
        (m) => {
          const p = m.context.pairs.find((x) => x.key.toString() === 'aws-crypto-public-key');
          if (p) p.value = Buffer.from(v);
        },
        true,
      ),
    ),
  fc.constant(sealed('footer removed', false, (m) => void delete m.footer)),
  fc.constant(sealed('signed suite relabelled 0x0478 (footer left as trailing bytes)', false, (m) => void (m.suiteId = 0x0478))),
];

/** Unsigned-suite specific. */
const sealedUnsigned: fc.Arbitrary<SealedMutation>[] = [
  fc.constant(sealed('unsigned suite relabelled 0x0578 without a public key', false, (m) => {
    m.suiteId = 0x0578;
    m.footer = { signature: Buffer.alloc(0) };
  })),
];

export function sealedInvalidMutation(m: MessageModel): fc.Arbitrary<SealedMutation> {
  const signed = m.footer !== undefined;
  const list = [
    ...sealedHeader,
    ...(m.body.kind === 'framed' ? sealedFramed : sealedNonFramed),
    ...(signed ? sealedSigned : sealedUnsigned),
  ];
  return fc.oneof(...list);
}

/** Harmless changes for sealed messages: the result must decrypt to the same plaintext. */
export const sealedValidMutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.constant(mutation('none', () => undefined)),
  fc.uint8Array({ minLength: 12, maxLength: 12 }).map((iv) =>
    mutation(`random frame IVs (${Buffer.from(iv).toString('hex')})`, (m) => {
      if (m.body.kind === 'framed') m.body.frames.forEach((f, i) => (f.iv = Buffer.from(iv).fill(i, 0, 1)));
      else if (m.body.kind === 'nonFramed') m.body.part.iv = Buffer.from(iv);
    }),
  ),
  fc.string({ minLength: 0, maxLength: 20 }).map((v) =>
    mutation(`context tenant := ${JSON.stringify(v)}`, (m) => {
      const p = m.context.pairs.find((x) => x.key.toString() === 'tenant');
      if (p) p.value = Buffer.from(v);
    }),
  ),
  fc.uint8Array({ maxLength: 30 }).map((info) =>
    mutation('extra foreign EDK', (m) => void m.edks.push({ providerId: Buffer.from('someone-else'), providerInfo: Buffer.from(info), ciphertext: Buffer.alloc(48, 7) })),
  ),
);

export { FINAL_MARKER };
