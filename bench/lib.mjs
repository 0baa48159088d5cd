// Timing, comparison and reporting helpers shared by the benchmark groups.
//
// These machines are noisy (shared cores, fresh multi-MiB buffers page-fault on some runs and not
// others), so every comparison ALTERNATES the sides run by run, and reports:
//   - rates (small payloads): the MEDIAN of several timed batches per side;
//   - big buffers: the FASTEST single run per side (the run least disturbed by the machine).
import { cpus, loadavg } from 'node:os';
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export const QUICK = process.env.BENCH_QUICK === '1';

export const KiB = 1024;
export const MiB = 1024 * 1024;

// A full GC can be forced between big-buffer runs (compareFastest's `gc` option). It is off by
// default: after a full GC the allocator hands freed pages back to the OS, and the next run then
// page-faults on every fresh output buffer, which measures the kernel, not the code.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');
export function collectGarbage() {
  gc();
}

/**
 * One scavenge (minor GC) now: empties the young generation without touching the old one, so no
 * side has to regrow its heap afterwards (unlike collectGarbage).
 */
export function collectYoungGarbage() {
  gc({ type: 'minor', execution: 'sync' });
}

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Runs `op` back to back for about `ms` milliseconds and returns operations per second.
 * A synchronous op runs in a plain loop (no promise per call); an async op is awaited each time,
 * one at a time, as a caller encrypting message after message would.
 */
export async function batchRate(op, ms, { ownGarbage = false } = {}) {
  const first = op();
  const isAsync = first !== undefined && typeof first.then === 'function';
  if (isAsync) await first;
  let n = 0;
  const start = performance.now();
  const deadline = start + ms;
  let t = start;
  if (isAsync) {
    while (t < deadline) {
      for (let i = 0; i < 16; i++) await op();
      n += 16;
      t = performance.now();
    }
  } else {
    while (t < deadline) {
      for (let i = 0; i < 16; i++) op();
      n += 16;
      t = performance.now();
    }
  }
  if (ownGarbage) {
    // The batch pays for collecting what it allocated (compareRates explains why).
    collectYoungGarbage();
    t = performance.now();
  }
  return (n * 1000) / (t - start);
}

/**
 * Lets the work a side left behind (stream callbacks, timers) run before the next side's clock
 * starts. No GC is forced here: a full GC before every short batch slows the ESDK's rate by about
 * half (it has to regrow its heap each time) and would flatter our ratios.
 */
function settle() {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Compares the rates of several sides ({ name, op }). Each round runs one short batch of every
 * side, in an order that alternates round by round, each batch starting on a settled event loop
 * after an untimed lead-in of a third of its length.
 * Returns { rates: name -> median ops/s, ratio(a, b) }, where ratio is the median over rounds of
 * a's rate / b's rate in the same round: pairing batches that ran a few milliseconds apart cancels
 * most of the slow drift a busy machine adds, which a ratio of two medians does not.
 */
export async function compareRates(sides, { rounds = QUICK ? 7 : 21, ms = QUICK ? 30 : 60, warmupMs = QUICK ? 50 : 150 } = {}) {
  // Start from a clean heap, not from what the previous comparison left; the warm-up regrows it.
  await settle();
  collectGarbage();
  for (const s of sides) await batchRate(s.op, warmupMs);
  const samples = new Map(sides.map((s) => [s.name, []]));
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? sides : [...sides].reverse();
    for (const s of order) {
      await settle();
      // An untimed lead-in: switching sides has a transient cost (seen here as the first tens of
      // milliseconds of a side running at half speed right after another side); each side is
      // timed in its steady state, as in a service that does this all day.
      await batchRate(s.op, ms / 3);
      // Each timed batch starts with an empty young generation (untimed scavenge) and ends with a
      // timed one, so it pays for collecting exactly its own garbage. Without this a batch shorter
      // than a GC cycle leaves its garbage to whichever side runs next: node:crypto objects are
      // cheap to make but costly to collect (their native contexts are freed in the scavenge), so
      // a side that allocates little JS (a bare node:crypto floor) ran 40-60% faster alternated
      // than alone, and the side after it correspondingly slower (--trace-gc-nvp: the floor's
      // scavenges cost ~7 µs per 1 KiB decrypt, ours ~5 µs). A minor GC leaves the old
      // generation alone, so no side regrows its heap (the reason no full GC is forced here).
      collectYoungGarbage();
      samples.get(s.name).push(await batchRate(s.op, ms, { ownGarbage: true }));
    }
  }
  if (process.env.BENCH_DEBUG) for (const [n, v] of samples) progress(`${n}: ${v.map((x) => x.toFixed(0)).join(' ')}`);
  const rates = new Map([...samples].map(([name, v]) => [name, median(v)]));
  const ratio = (a, b) => median(samples.get(a).map((x, i) => x / samples.get(b)[i]));
  return { rates, ratio };
}

/**
 * Compares single runs of big operations ({ name, op, runs? }), alternating the sides run by run
 * (optionally with a full GC before each run). A side with its own smaller `runs` takes part in the first rounds
 * only (slow reference sides need fewer samples). Returns name -> fastest run in milliseconds.
 */
export async function compareFastest(sides, { runs = QUICK ? 3 : 7, warmup = 1, gc = false } = {}) {
  await settle();
  collectGarbage();
  for (const s of sides) for (let i = 0; i < warmup; i++) await s.op();
  const best = new Map(sides.map((s) => [s.name, Infinity]));
  for (let r = 0; r < runs; r++) {
    const active = sides.filter((s) => r < (s.runs ?? runs));
    const order = r % 2 === 0 ? active : active.reverse();
    for (const s of order) {
      if (gc) collectGarbage();
      await new Promise((resolve) => setImmediate(resolve));
      const t0 = performance.now();
      await s.op();
      const dt = performance.now() - t0;
      if (dt < best.get(s.name)) best.set(s.name, dt);
    }
  }
  return best;
}

/** MB/s (10^6 bytes per second, as `dd` and most tools report) for `bytes` processed in `ms`. */
export function mbps(bytes, ms) {
  return bytes / 1e6 / (ms / 1000);
}

export function formatRate(value, unit) {
  if (!Number.isFinite(value)) return 'n/a';
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })} ${unit}`;
}

export function formatSize(bytes) {
  if (bytes >= MiB && bytes % MiB === 0) return `${bytes / MiB} MiB`;
  if (bytes >= KiB && bytes % KiB === 0) return `${bytes / KiB} KiB`;
  return `${bytes} B`;
}

export function formatRatio(r) {
  if (!Number.isFinite(r)) return 'n/a';
  return r >= 10 ? `${r.toFixed(1)}x` : `${r.toFixed(2)}x`;
}

export function formatPercent(r) {
  return Number.isFinite(r) ? `${(r * 100).toFixed(0)}%` : 'n/a';
}

/** "PASS (>= 15x)" / "FAIL (>= 15x)" for a value against a lower bound. */
export function verdictAtLeast(value, min, label) {
  return `${value >= min ? 'PASS' : 'FAIL'} (≥ ${label})`;
}

/** Same for an upper bound. */
export function verdictAtMost(value, max, label) {
  return `${value <= max ? 'PASS' : 'FAIL'} (≤ ${label})`;
}

/** A markdown table from a header row and rows of cells. */
/**
 * The report's "### Targets" section for the checks of the groups run, or undefined when they
 * have none (e.g. `node bench/run.mjs policy`: "0 of 0 pass" says nothing).
 */
export function targetsSection(checks) {
  if (checks.length === 0) return undefined;
  const failed = checks.filter((c) => !c.pass);
  return (
    `### Targets\n\n${checks.length - failed.length} of ${checks.length} pass` +
    (failed.length > 0 ? `; failing: ${failed.map((c) => c.name).join('; ')}.` : '.')
  );
}

export function markdownTable(header, rows) {
  const line = (cells) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

export function machine() {
  let cpu = cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpu = m[1].trim();
  } catch {
    // not Linux: keep os.cpus()'s model
  }
  return { date: new Date().toISOString().slice(0, 10), node: process.version, cpu, cores: cpus().length, load: loadavg()[0] };
}

/** Prints a progress line to stderr so stdout stays the report. */
export function progress(msg) {
  process.stderr.write(`  … ${msg}\n`);
}
