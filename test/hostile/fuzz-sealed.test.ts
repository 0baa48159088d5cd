/**
 * Properties:
 * - A message made invalid by the format specification (sequence numbers out of order,
 *   duplicated or skipped; final-frame marker misplaced, missing or doubled; a final frame longer
 *   than the frame length; frame length 0; content type / frame length mismatch; no EDKs or more
 *   than the limit; malformed context: duplicate, empty or non-UTF-8 keys, wrong counts, stray
 *   bytes; bad or missing public key; missing footer; suite relabelled; trailing bytes) and then
 *   re-authenticated under the right data key (valid commitment, header tag, frame tags and
 *   signature) is still rejected with an EnvelopeError by both decrypt paths: the structure checks,
 *   not a failing tag, reject it. Header-level problems are rejected before any keyring call.
 * - Random bytes, and random bytes after a valid header, are rejected with an EnvelopeError and
 *   release nothing.
 *
 * Budget: FUZZ_RUNS (npm run fuzz) or 24,000 cases shared by all fuzz properties; see harness.ts.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fuzzBudget, fuzzSeed } from './harness.js';
import { sealedInvalidMutation } from './mutations.js';
import { assertProperty, cutsArb, makeFixture, runCase, type Fixture } from './fuzz-support.js';
import { cloneModel, layout, seal, serializeModel } from './model.js';

const TOTAL = fuzzBudget(24_000);
const SEALED_RUNS = Math.round(TOTAL * 0.225);
const RANDOM_RUNS = Math.round(TOTAL * 0.25);

let f: Fixture;
beforeAll(async () => {
  f = await makeFixture();
});
afterAll(() => f.close());

describe('fuzz: invalid structure with valid tags and signature', () => {
  it(`${SEALED_RUNS} cases: rejected by structure checks, header problems before any keyring call`, async () => {
    const sealable = f.seeds.filter((s) => s.opened !== undefined);
    expect(sealable).toHaveLength(4);
    const seed = fuzzSeed();
    const arb = fc
      .nat(sealable.length - 1)
      .chain((i) => fc.record({ seed: fc.constant(i), mutation: sealedInvalidMutation(sealable[i]!.opened!), cuts: cutsArb }));
    const before = f.stats.cases;
    const names = new Map<string, number>();
    await assertProperty(
      'sealed invalid structure',
      arb,
      async ({ seed: si, mutation, cuts }) => {
        const s = sealable[si]!;
        const m = cloneModel(s.opened!);
        mutation.apply(m);
        const keys = mutation.keepPublicKey ? { dataKey: s.sealKeys!.dataKey, ...(s.sealKeys!.signingKey ? { signingKey: s.sealKeys!.signingKey } : {}) } : s.sealKeys!;
        const bytes = serializeModel(seal(m, keys));
        const kind = mutation.name.replace(/[-+]?\d+|"[^"]*"|[0-9a-f]{2,}/g, '#');
        names.set(kind, (names.get(kind) ?? 0) + 1);
        await runCase(f, { label: `${s.name}: sealed ${mutation.name}`, bytes, env: s.envs[0]!, cuts, truth: s.plaintext, headerStage: mutation.headerStage });
      },
      SEALED_RUNS,
      seed,
    );
    expect(f.stats.cases - before).toBe(SEALED_RUNS);
    console.log(`sealed: ${SEALED_RUNS} cases (seed ${seed}), ${names.size} kinds of mutation, codes ${JSON.stringify(Object.fromEntries(f.stats.codes))}`);
  });
});

describe('fuzz: random bytes', () => {
  it(`${RANDOM_RUNS} cases: random bytes, alone, behind a plausible prefix or after a valid header`, async () => {
    const seed = fuzzSeed();
    const prefixes: Buffer[] = [
      Buffer.alloc(0),
      Buffer.from([0x02, 0x04, 0x78]),
      Buffer.from([0x02, 0x05, 0x78]),
      Buffer.from([0x01, 0x80, 0x01, 0x78]),
      Buffer.from([0x01, 0x80, 0x03, 0x78]),
      ...f.seeds.map((s) => s.bytes.subarray(0, layout(s.model).headerLength)),
    ];
    const before = f.stats.cases;
    await assertProperty(
      'random bytes',
      fc.record({
        prefix: fc.nat(prefixes.length - 1),
        body: fc.uint8Array({ maxLength: 700 }),
        env: fc.nat(),
        cuts: cutsArb,
      }),
      async ({ prefix, body, env: ei, cuts }) => {
        const p = prefixes[prefix]!;
        const bytes = Buffer.concat([p, body]);
        // Pick an envelope that holds the key for the prefix's seed, so random bodies reach the frame parser.
        const seedIndex = prefix - 5;
        const envs = seedIndex >= 0 ? f.seeds[seedIndex]!.envs : f.seeds.flatMap((x) => x.envs);
        await runCase(f, { label: `random ${body.length} bytes after prefix #${prefix}`, bytes, env: envs[ei % envs.length]!, cuts, truth: Buffer.alloc(0) });
      },
      RANDOM_RUNS,
      seed,
    );
    expect(f.stats.cases - before).toBe(RANDOM_RUNS);
  });
});
