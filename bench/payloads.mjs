// Buffer encrypt/decrypt across payload sizes and both v2 suites: ours (raw AES keyring, warm
// cache, default frame length) against @aws-crypto/client-node (caching CMM, raw AES keyring) at
// its default 4 KiB frames and at our frame length, and against the limits: the crypto floor of one
// 1 KiB message, and one-shot AES-256-GCM over the same 8 MiB / 64 MiB buffer.
import { randomBytes } from 'node:crypto';
import { decryptFloor, encryptFloor, framedGcm, oneShotGcm } from './floor.mjs';
import {
  collectGarbage,
  compareFastest,
  compareRates,
  formatPercent,
  formatRate,
  formatRatio,
  formatSize,
  KiB,
  markdownTable,
  mbps,
  MiB,
  progress,
  QUICK,
  verdictAtLeast,
} from './lib.mjs';
import { checkRoundTrip, esdkSide, ESDK_FRAME_LENGTH, ours } from './sides.mjs';

const SUITES = [0x0478, 0x0578];
const SIZES = QUICK ? [KiB, 64 * KiB, MiB, 8 * MiB] : [KiB, 64 * KiB, MiB, 8 * MiB, 64 * MiB];
/** Up to this size sides are compared by median batch rate, above it by fastest single run. */
const RATE_LIMIT = MiB;
const OURS = 'kms-envelope';
const ESDK = `ESDK (${ESDK_FRAME_LENGTH / KiB} KiB frames)`;
// Named after our frame length, known once the package is loaded (payloadBench sets them).
let ourFrameLength;
let ESDK_OUR_FRAMES;
let FRAMED_GCM;
const FLOOR = 'crypto floor (pooled id)';
const NAIVE_FLOOR = 'naive floor (randomBytes id)';
const DECRYPT_FLOOR = 'crypto floor (decrypt)';
const SIGNED_FLOOR = 'crypto floor + ECDSA P-384 sign';
const SIGNED_DECRYPT_FLOOR = 'crypto floor + ECDSA P-384 verify';
const GCM = 'one-shot AES-256-GCM';

const hex = (suite) => `0x${suite.toString(16).padStart(4, '0')}`;

/** Measures every (suite, size, operation) and returns { esdkTable, limitTable, notes, checks }. */
export async function payloadBench(lib) {
  ourFrameLength = ours(lib, { suite: 0x0478 }).envelope.frameLength;
  ESDK_OUR_FRAMES = `ESDK (${formatSize(ourFrameLength)} frames)`;
  FRAMED_GCM = `framed AES-256-GCM (${formatSize(ourFrameLength)} frames, bare node:crypto)`;
  const results = [];
  for (const suite of SUITES) {
    const libs = {
      [OURS]: ours(lib, { suite }),
      [ESDK]: esdkSide({ suite }),
      [ESDK_OUR_FRAMES]: esdkSide({ suite, frameLength: ourFrameLength }),
    };
    for (const [name, side] of Object.entries(libs)) await checkRoundTrip(side, name);
    await warmUp(libs);
    for (const size of SIZES) {
      const plaintext = randomBytes(size);
      for (const op of ['encrypt', 'decrypt']) {
        progress(`${op} ${formatSize(size)} suite ${hex(suite)}`);
        const sides = await librarySides(libs, op, plaintext);
        sides.push(...limitSides(suite, op, plaintext));
        results.push({ suite, size, op, ...(await measure(sides, size)) });
      }
    }
  }
  return report(results);
}

/**
 * The ESDK's JavaScript takes seconds of steady traffic before the JIT has optimized it (its 1 KiB
 * rate keeps climbing for a while); compare steady states, not a cold ESDK.
 */
async function warmUp(libs) {
  const plaintext = randomBytes(KiB);
  const deadline = performance.now() + (QUICK ? 500 : 2000);
  const messages = {};
  for (const [name, side] of Object.entries(libs)) messages[name] = await side.encrypt(plaintext);
  while (performance.now() < deadline) {
    for (const [name, side] of Object.entries(libs)) {
      for (let i = 0; i < 20; i++) {
        await side.encrypt(plaintext);
        await side.decrypt(messages[name]);
      }
    }
  }
}

/**
 * One timed side per library; decrypt sides get a message made (and checked) beforehand. The
 * ESDK sides are marked `reference`: for big buffers they are timed apart from ours and the
 * one-shot limit, so that the garbage of their thousands of small frames is not collected on the
 * clock of the comparison against the limit.
 */
async function librarySides(libs, op, plaintext) {
  const sides = [];
  for (const [name, side] of Object.entries(libs)) {
    const reference = name !== OURS;
    if (op === 'encrypt') {
      sides.push({ name, op: () => side.encrypt(plaintext), reference });
      continue;
    }
    const message = await side.encrypt(plaintext);
    const back = await side.decrypt(message);
    if (!Buffer.from(back).equals(plaintext)) throw new Error(`${name}: decrypt does not return the plaintext`);
    sides.push({ name, op: () => side.decryptOp(message), reference });
  }
  return sides;
}

/** The limit sides that apply to this case. */
function limitSides(suite, op, plaintext) {
  const sides = [];
  if (plaintext.length === KiB && suite === 0x0478) {
    if (op === 'encrypt') {
      sides.push({ name: FLOOR, op: encryptFloor(plaintext, { pooled: true }) });
      sides.push({ name: NAIVE_FLOOR, op: encryptFloor(plaintext, { pooled: false }) });
    } else {
      sides.push({ name: DECRYPT_FLOOR, op: decryptFloor(plaintext) });
    }
  }
  if (plaintext.length === KiB && suite === 0x0578) {
    if (op === 'encrypt') sides.push({ name: SIGNED_FLOOR, op: encryptFloor(plaintext, { pooled: true, signed: true }) });
    else sides.push({ name: SIGNED_DECRYPT_FLOOR, op: decryptFloor(plaintext, { signed: true }) });
  }
  if (plaintext.length >= 8 * MiB) {
    const gcm = oneShotGcm(plaintext);
    sides.push({ name: GCM, op: op === 'encrypt' ? gcm.encrypt : gcm.decrypt });
    if (suite === 0x0478) {
      const framed = framedGcm(plaintext, ourFrameLength);
      sides.push({ name: FRAMED_GCM, op: op === 'encrypt' ? framed.encrypt : framed.decrypt });
    }
  }
  return sides;
}

/**
 * Two comparisons per case, each { rates: name -> ops/s (1 KiB) or MB/s (larger), ratio(a, b) }:
 * - vsLimits: ours against the limits only. Run apart from the ESDK, whose batches leave the heap
 *   with garbage and half-done incremental marking that the next side to allocate pays for (ours
 *   more than a floor, since it allocates more): measured here, interleaving the ESDK lowers
 *   ours/floor by 10-30 points.
 * - vsEsdk: ours against the ESDK sides (and, at 1 KiB, the first floor, for the ceiling note), in
 *   the same rounds. Ours pays the ESDK's garbage there, so this ratio errs in the ESDK's favour.
 * For rates a ratio is the median of per-round ratios (see compareRates); for big buffers it is
 * fastest over fastest, and the ESDK (about 1 s per 64 MiB) gets fewer runs of its own.
 */
async function measure(sides, size) {
  const perSecond = size === KiB ? 1 : size / 1e6;
  const ours = sides.find((s) => s.name === OURS);
  const refs = sides.filter((s) => s.reference);
  const limits = sides.filter((s) => s !== ours && !s.reference);
  if (size <= RATE_LIMIT) {
    const scaled = ({ rates, ratio }) => ({ rates: new Map([...rates].map(([n, r]) => [n, r * perSecond])), ratio });
    const vsLimits = limits.length > 0 ? scaled(await compareRates([ours, ...limits])) : undefined;
    const vsEsdk = scaled(await compareRates([ours, ...refs, ...limits.slice(0, 1)]));
    return { vsEsdk, vsLimits };
  }
  const best = await compareFastest([ours, ...limits]);
  collectGarbage();
  const huge = size > 8 * MiB;
  const refBest = await compareFastest(refs, { runs: huge ? 2 : 3, warmup: huge ? 0 : 1 });
  collectGarbage();
  const rates = new Map([...best, ...refBest].map(([name, ms]) => [name, mbps(size, ms)]));
  const both = { rates, ratio: (a, b) => rates.get(a) / rates.get(b) };
  return { vsEsdk: both, vsLimits: both };
}

function report(results) {
  const checks = [];
  const esdkRows = [];
  const limitRows = [];
  for (const { suite, size, op, vsEsdk, vsLimits } of results) {
    const unit = size === KiB ? 'ops/s' : 'MB/s';
    const { rates, ratio } = vsEsdk;
    const vs = ratio(OURS, ESDK);
    const target = esdkTarget(suite, size);
    let verdict = '';
    if (target !== undefined) {
      verdict = verdictAtLeast(vs, target, `${target}x`);
      checks.push({ name: `${formatSize(size)} ${op} ${hex(suite)} vs ESDK`, pass: vs >= target });
      // At 1 KiB the floor ran in the same rounds: say when the target is beyond the floor itself.
      if (size === KiB) {
        const ceiling = ratio(limitsOf(suite, size, op)[0][0], ESDK);
        if (ceiling < target) verdict += `; the floor itself: ${formatRatio(ceiling)}`;
      }
    }
    esdkRows.push([
      formatSize(size),
      op,
      hex(suite),
      formatRate(rates.get(OURS), unit),
      formatRate(rates.get(ESDK), unit),
      formatRatio(vs),
      formatRate(rates.get(ESDK_OUR_FRAMES), unit),
      formatRatio(ratio(OURS, ESDK_OUR_FRAMES)),
      verdict,
    ]);
    for (const [limit, min] of limitsOf(suite, size, op)) {
      const share = vsLimits.ratio(OURS, limit);
      let v = '';
      if (min !== undefined) {
        v = verdictAtLeast(share, min, formatPercent(min));
        checks.push({ name: `${formatSize(size)} ${op} ${hex(suite)} vs ${limit}`, pass: share >= min });
      }
      limitRows.push([
        `${formatSize(size)} ${op} ${hex(suite)}`,
        formatRate(vsLimits.rates.get(OURS), unit),
        limit,
        formatRate(vsLimits.rates.get(limit), unit),
        formatPercent(share),
        v,
      ]);
    }
  }
  const esdkTable = markdownTable(
    ['Payload', 'Op', 'Suite', 'kms-envelope', ESDK, 'ours / ESDK', ESDK_OUR_FRAMES, 'ours / ESDK', 'target'],
    esdkRows,
  );
  const limitTable = markdownTable(['Case', 'kms-envelope', 'limit', 'limit rate', 'ours / limit', 'target'], limitRows);
  return { esdkTable, limitTable, notes: ceilingNotes(results), checks, frameLength: ourFrameLength };
}

/**
 * What the ESDK ratio targets mean on this machine: the ratio an implementation would reach at the
 * crypto floor itself (floor rate / ESDK rate), for the 1 KiB cases.
 */
function ceilingNotes(results) {
  const notes = [];
  for (const { suite, size, op, vsEsdk } of results) {
    if (size !== KiB) continue;
    const { ratio } = vsEsdk;
    const [floor] = limitsOf(suite, size, op)[0];
    const ceiling = ratio(floor, ESDK);
    const target = esdkTarget(suite, size);
    notes.push(
      `1 KiB ${op} ${hex(suite)}: the floor itself is ${formatRatio(ceiling)} the ESDK` +
        (target !== undefined && ceiling < target ? ` (below the ${target}x target: no implementation can reach it here)` : ''),
    );
  }
  return `Ceiling of the ESDK ratio at 1 KiB (${FLOOR} or its signed/decrypt variant ÷ ESDK, same rounds): ${notes.join('; ')}.`;
}

/** Target: 1 KiB 0x0478 at least 15x the ESDK; suite 0x0578 at least 2x. */
function esdkTarget(suite, size) {
  if (suite === 0x0578) return 2;
  if (size === KiB) return 15;
  return undefined;
}

/** [limit side, minimum share or undefined] for this case. */
function limitsOf(suite, size, op) {
  if (size === KiB && suite === 0x0478) {
    return op === 'encrypt' ? [[FLOOR, 0.6], [NAIVE_FLOOR, undefined]] : [[DECRYPT_FLOOR, 0.6]];
  }
  if (size === KiB) return [[op === 'encrypt' ? SIGNED_FLOOR : SIGNED_DECRYPT_FLOOR, undefined]];
  // The 75% target is the default suite's; the signed suite also hashes everything for ECDSA.
  if (size >= 8 * MiB && suite === 0x0478) return [[GCM, 0.75], [FRAMED_GCM, undefined]];
  if (size >= 8 * MiB) return [[GCM, undefined]];
  return [];
}
