// Worst-case key policy evaluation: Encrypt requests whose encryption context value is
// checked by many-wildcard StringLike patterns, through the in-process local KMS of the built
// package, next to the same Encrypt under the default key policy (no conditions).
//
// Every evaluation has a work budget (src/local-kms/work-meter.ts): a request whose evaluation
// would exceed it is denied (AccessDeniedException) when the budget runs out, so the "Answer"
// column says whether the Encrypt was allowed (every condition evaluated in full) or denied by the
// budget; either way the time is how long the server's only thread was held.
//
// "Before" is the matcher the policy engine used before its linear-time matcher: each pattern compiled to an
// anchored RegExp (`*` -> `.*`, `?` -> `.`), timed here on a single `test` call (one run, as it
// is slow) for the value lengths where it still finishes; it grows with a power of the value length
// equal to the number of `*`s. "After" is the whole Encrypt (policy evaluation, AES-GCM, response).
import { markdownTable, median, progress, QUICK } from './lib.mjs';

const ROOT = 'arn:aws:iam::111122223333:root';

/** The pattern compiler the policy engine used before its linear-time matcher (reproduced for the "before" rows). */
function regexOf(pattern) {
  const body = pattern
    .split('')
    .map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.+^${}()|[\]\\/-]/g, '\\$&')))
    .join('');
  return new RegExp(`^${body}$`, 's');
}

function policyDenying(condition) {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Sid: 'Root', Effect: 'Allow', Principal: { AWS: ROOT }, Action: 'kms:*', Resource: '*' },
      { Sid: 'Deny', Effect: 'Deny', Principal: '*', Action: 'kms:Encrypt', Resource: '*', Condition: condition },
    ],
  });
}

function fmtMs(ms) {
  if (ms === undefined) return '—';
  return ms >= 100 ? `${ms.toFixed(0)} ms` : ms >= 1 ? `${ms.toFixed(1)} ms` : `${(ms * 1000).toFixed(0)} µs`;
}

/** Median milliseconds of `runs` sequential calls (after one warm-up call). */
async function timeOf(op, runs) {
  await op();
  const samples = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await op();
    samples.push(performance.now() - t);
  }
  return median(samples);
}

/** What an Encrypt answered: `allowed`, `denied (budget)` when the work budget ran out, or the error. */
async function answerOf(promise) {
  try {
    await promise;
    return 'allowed';
  } catch (e) {
    if (e.type === 'AccessDeniedException' && /character steps/.test(e.message)) return 'denied (budget)';
    return e.type ?? e.name ?? 'error';
  }
}

export async function policyBench(localKms) {
  const kms = new localKms.LocalKms();
  const client = kms.client();
  const plaintext = Buffer.from('x');
  const runs = QUICK ? 3 : 7;
  const sizes = QUICK ? [400, 100_000] : [400, 100_000, 1_000_000];
  const baselineKey = (await kms.createKey({})).keyId;
  // Each op records its answer in `last`, so a row can say what the timed calls answered.
  let last = '';
  const encryptUnder = (keyId, encryptionContext) => async () => {
    last = await answerOf(client.encrypt({ keyId, plaintext, encryptionContext }));
  };
  /** [time under the policy, its answer, time under the default policy]. */
  const measure = async (keyId, context, n = runs) => {
    const ms = await timeOf(encryptUnder(keyId, context), n);
    const answer = last;
    return [fmtMs(ms), answer, fmtMs(await timeOf(encryptUnder(baselineKey, context), n))];
  };

  const cases = [
    { pattern: '*a*a*a*a*b', before: QUICK ? [25, 50] : [25, 50, 100] },
    { pattern: '*a*a*a*a*a*a*a*a*b', before: QUICK ? [20] : [20, 30] },
    { pattern: '*a?a?a?a*a*a*a?b*', before: [] },
    { pattern: `*${'a?'.repeat(600)}b*`, before: [] },
  ];
  const rows = [];
  for (const { pattern, before } of cases) {
    progress(`policy: ${pattern.slice(0, 24)}`);
    const keyId = (await kms.createKey({ Policy: policyDenying({ StringLike: { 'kms:EncryptionContext:blob': pattern } }) })).keyId;
    const label = pattern.length > 24 ? `\`${pattern.slice(0, 12)}…\` (${pattern.length} chars)` : `\`${pattern}\``;
    for (const n of before) {
      const re = regexOf(pattern);
      const value = 'a'.repeat(n);
      const t = performance.now();
      re.test(value);
      rows.push([label, n.toLocaleString('en-US'), fmtMs(performance.now() - t), ...(await measure(keyId, { blob: value }))]);
    }
    for (const n of sizes) rows.push([label, n.toLocaleString('en-US'), '—', ...(await measure(keyId, { blob: 'a'.repeat(n) }))]);
  }

  // A policy at the 32 KiB limit made of short wildcard patterns, all tried against one long value.
  progress('policy: 32 KiB of patterns');
  const patterns = [];
  for (let i = 0, size = 0; size < 30_000; i++) {
    const p = `*${'?'.repeat(i % 7)}a*${String.fromCharCode(98 + (i % 20))}*a*`;
    patterns.push(p);
    size += p.length + 3;
  }
  const bigKey = (await kms.createKey({ Policy: policyDenying({ StringLike: { 'kms:EncryptionContext:blob': patterns } }) })).keyId;
  for (const n of QUICK ? [100_000] : [100_000, 1_000_000]) {
    rows.push([`${patterns.length.toLocaleString('en-US')} patterns (32 KiB policy)`, n.toLocaleString('en-US'), '—', ...(await measure(bigKey, { blob: 'a'.repeat(n) }))]);
  }

  // Many context keys against many patterns: every (key, pattern) pair is tried once.
  progress('policy: many keys x many patterns');
  const keyPatterns = Array.from({ length: 1000 }, (_, i) => `*${i.toString(36)}?z*`);
  const manyKey = (await kms.createKey({ Policy: policyDenying({ 'ForAnyValue:StringLike': { 'kms:EncryptionContextKeys': keyPatterns } }) })).keyId;
  const context = Object.fromEntries(Array.from({ length: 2_000 }, (_, i) => [`key-${i.toString(16).padStart(8, '0')}-aaaaaaaa`, 'v']));
  rows.push(['1,000 patterns x 2,000 context keys (ForAnyValue)', '2,000 keys of 21', '—', ...(await measure(manyKey, context, 3))]);

  // The review's stall (review11, finding 7): a policy near the 32 KiB limit made of `?` patterns
  // (each one a Shift-And scan of the whole value), one Encrypt with a 900,000-character context
  // value. It held the server for 13 s before the work budget (median of 1 here, as it was slow).
  progress('policy: review stall case');
  const stallPatterns = [];
  for (let i = 0; JSON.stringify(stallPatterns).length < 30_000; i++) stallPatterns.push(`*a?${i.toString(36)}!*`);
  const stallKey = (await kms.createKey({ Policy: policyDenying({ StringLike: { 'kms:EncryptionContext:k': stallPatterns } }) })).keyId;
  for (const n of [1_000, 900_000]) {
    rows.push([`${stallPatterns.length.toLocaleString('en-US')} \`*a?<n>!*\` patterns (review case)`, n.toLocaleString('en-US'), '—', ...(await measure(stallKey, { k: 'a'.repeat(n) }, n > 1_000 ? 3 : runs))]);
  }

  kms.close();
  return {
    table: markdownTable(
      ['Pattern', 'Value length (chars)', 'Before: regex, one test', 'After: one Encrypt, policy with the pattern', 'Answer', 'One Encrypt, default policy'],
      rows,
    ),
    notes:
      'No value is like a pattern, so an allowed Encrypt had every condition evaluated in full. ' +
      'The 400-character value against `*a*a*a*a*b` took 393 s with the regex matcher (measured once, not repeated here). ' +
      'Each (pattern, value) pair is matched in linear time, but the pairs multiply (thousands of patterns, values as long as ' +
      'the request body): an evaluation that needs more than its budget of 2^23 character steps stops where the budget ends ' +
      'and the request is denied ("denied (budget)"), so no row holds the server much longer than the budget takes. ' +
      'Before the budget, the review case (2,849 patterns, 900,000 characters) was allowed after 13,048 ms on this machine.',
    checks: [],
  };
}
