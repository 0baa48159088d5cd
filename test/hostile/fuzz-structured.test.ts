/**
 * Property: any structured mutation of a valid message (lengths, counts, suite ids, frame lengths,
 * sequence numbers, final-frame marker, EDK lists, context, footer; plus an optional truncation or
 * byte flip of the result) is rejected with an EnvelopeError by Envelope.decrypt and by
 * Envelope.decryptStream, unless the bytes are unchanged; never a TypeError/RangeError, never a
 * hang, never an allocation sized by a hostile length, never a keyring call for a header with too
 * many EDKs, never a secret in an error. Also: the model's own sealing is sound (valid changes
 * re-sealed decrypt to the same plaintext), so the sealed-invalid property in
 * fuzz-sealed.test.ts means something.
 *
 * Budget: FUZZ_RUNS (npm run fuzz) or 24,000 cases shared by all fuzz properties; see harness.ts.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fuzzBudget, fuzzSeed } from './harness.js';
import { applyPost, anyMutation, postMutation, sealedValidMutation } from './mutations.js';
import { assertProperty, cutsArb, makeFixture, runCase, withinLimits, type Fixture } from './fuzz-support.js';
import { cloneModel, seal, serializeModel } from './model.js';

const TOTAL = fuzzBudget(24_000);
const STRUCTURED_RUNS = Math.round(TOTAL * 0.5);
const SEALED_VALID_RUNS = Math.max(50, Math.round(TOTAL * 0.025));

let f: Fixture;
beforeAll(async () => {
  f = await makeFixture();
});
afterAll(() => f.close());

describe('model sanity', () => {
  it('every seed parses and re-serializes to the same bytes, and decrypts in every envelope', async () => {
    expect(f.seeds.length).toBe(10);
    for (const s of f.seeds) {
      expect(serializeModel(s.model).equals(s.bytes), s.name).toBe(true);
      for (const env of s.envs) {
        // The tight envelope legitimately refuses the bigger headers (ERR_LIMIT_EXCEEDED).
        const ok = withinLimits(s, env);
        await runCase(f, { label: `seed ${s.name}`, bytes: s.bytes, env, cuts: [7, 100], truth: s.plaintext, ...(ok ? { expect: { plaintext: s.plaintext } } : {}) });
      }
    }
  });
});

describe('fuzz: structured mutations, tags left as they were', () => {
  it(`${STRUCTURED_RUNS} cases: only EnvelopeErrors, only verified prefixes, bounded work`, async () => {
    const seed = fuzzSeed();
    const arb = fc.record({
      seed: fc.nat(f.seeds.length - 1),
      env: fc.nat(1),
      mutations: fc.array(anyMutation, { minLength: 1, maxLength: 3 }),
      post: postMutation,
      cuts: cutsArb,
      // Sometimes the caller requires a context pair, as a service would.
      required: fc.constantFrom<Record<string, string> | undefined>(undefined, { purpose: 'fuzz' }, { tenant: 't1', purpose: 'fuzz' }),
    });
    const before = f.stats.cases;
    await assertProperty(
      'structured mutations',
      arb,
      async ({ seed: si, env: ei, mutations, post, cuts, required: wanted }) => {
        const s = f.seeds[si]!;
        // Require only pairs the seed has, so an unchanged seed still decrypts.
        const required = wanted && s.model.context.pairs.some((p) => p.key.toString() === 'purpose') ? wanted : undefined;
        const m = cloneModel(s.model);
        for (const mu of mutations) mu.apply(m);
        const bytes = applyPost(serializeModel(m), post);
        const env = s.envs[ei % s.envs.length]!;
        const unchanged = bytes.equals(s.bytes) && withinLimits(s, env);
        await runCase(f, {
          label: `${s.name}: ${mutations.map((x) => x.name).join('; ')}${post ? ` + ${JSON.stringify(post)}` : ''}`,
          bytes,
          env,
          cuts,
          truth: s.plaintext,
          ...(required ? { required } : {}),
          ...(unchanged ? { expect: { plaintext: s.plaintext } } : {}),
        });
      },
      STRUCTURED_RUNS,
      seed,
    );
    expect(f.stats.cases - before).toBe(STRUCTURED_RUNS);
    const calls = new Map(f.seeds.flatMap((s) => s.envs).map((e) => [e.name, e.keyring.decryptCalls]));
    console.log(
      `structured: ${STRUCTURED_RUNS} cases (seed ${seed}), ${f.stats.accepted} accepted, codes ${JSON.stringify(Object.fromEntries(f.stats.codes))}, ` +
        `keyring decrypt calls ${JSON.stringify(Object.fromEntries(calls))}`,
    );
  }, 180_000); // completion bound: 12,000 cases, slow under load
});

describe('fuzz: valid changes re-sealed by the model decrypt to the same plaintext', () => {
  it(`${SEALED_VALID_RUNS} cases`, async () => {
    const sealable = f.seeds.filter((s) => s.opened !== undefined);
    expect(sealable).toHaveLength(4);
    const seed = fuzzSeed();
    const accepted0 = f.stats.accepted;
    await assertProperty(
      'sealed valid changes',
      fc.record({ seed: fc.nat(sealable.length - 1), mutation: sealedValidMutation, cuts: cutsArb }),
      async ({ seed: si, mutation, cuts }) => {
        const s = sealable[si]!;
        const m = cloneModel(s.opened!);
        mutation.apply(m);
        const sealed = seal(m, s.sealKeys!);
        const context = Object.fromEntries(sealed.context.pairs.map((p) => [p.key.toString(), p.value.toString()]));
        await runCase(f, {
          label: `${s.name}: sealed ${mutation.name}`,
          bytes: serializeModel(sealed),
          env: s.envs[0]!,
          cuts,
          truth: s.plaintext,
          expect: { plaintext: s.plaintext, context: Object.fromEntries(Object.entries(context).sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)))) },
        });
      },
      SEALED_VALID_RUNS,
      seed,
    );
    expect(f.stats.accepted - accepted0).toBe(SEALED_VALID_RUNS);
  });
});
