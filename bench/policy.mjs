// Worst-case key policy evaluation: Encrypt requests whose encryption context value is
// checked by many-wildcard StringLike patterns, through the in-process local KMS of the built
// package, next to the same Encrypt under the default key policy (no conditions).
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

export async function policyBench(localKms) {
  const kms = new localKms.LocalKms();
  const client = kms.client();
  const plaintext = Buffer.from('x');
  const runs = QUICK ? 3 : 7;
  const sizes = QUICK ? [400, 100_000] : [400, 100_000, 1_000_000];
  const baselineKey = (await kms.createKey({})).keyId;
  const encryptUnder = (keyId, encryptionContext) => () => client.encrypt({ keyId, plaintext, encryptionContext });

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
      rows.push([label, n.toLocaleString('en-US'), fmtMs(performance.now() - t), fmtMs(await timeOf(encryptUnder(keyId, { blob: value }), runs)), fmtMs(await timeOf(encryptUnder(baselineKey, { blob: value }), runs))]);
    }
    for (const n of sizes) {
      const value = 'a'.repeat(n);
      const after = await timeOf(encryptUnder(keyId, { blob: value }), runs);
      const base = await timeOf(encryptUnder(baselineKey, { blob: value }), runs);
      rows.push([label, n.toLocaleString('en-US'), '—', fmtMs(after), fmtMs(base)]);
    }
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
    const value = 'a'.repeat(n);
    rows.push([`${patterns.length.toLocaleString('en-US')} patterns (32 KiB policy)`, n.toLocaleString('en-US'), '—',
      fmtMs(await timeOf(encryptUnder(bigKey, { blob: value }), runs)), fmtMs(await timeOf(encryptUnder(baselineKey, { blob: value }), runs))]);
  }

  // Many context keys against many patterns: every (key, pattern) pair is tried once.
  progress('policy: many keys x many patterns');
  const keyPatterns = Array.from({ length: 1000 }, (_, i) => `*${i.toString(36)}?z*`);
  const manyKey = (await kms.createKey({ Policy: policyDenying({ 'ForAnyValue:StringLike': { 'kms:EncryptionContextKeys': keyPatterns } }) })).keyId;
  const context = Object.fromEntries(Array.from({ length: 2_000 }, (_, i) => [`key-${i.toString(16).padStart(8, '0')}-aaaaaaaa`, 'v']));
  rows.push(['1,000 patterns x 2,000 context keys (ForAnyValue)', '2,000 keys of 21', '—',
    fmtMs(await timeOf(encryptUnder(manyKey, context), 3)), fmtMs(await timeOf(encryptUnder(baselineKey, context), 3))]);

  kms.close();
  return {
    table: markdownTable(
      ['Pattern', 'Value length (chars)', 'Before: regex, one test', 'After: one Encrypt, policy with the pattern', 'One Encrypt, default policy'],
      rows,
    ),
    notes:
      'Each Encrypt is allowed (no value is like a pattern), so every condition is evaluated in full. ' +
      'The 400-character value against `*a*a*a*a*b` took 393 s with the regex matcher (measured once, not repeated here). ' +
      'The work is linear in the value for a fixed policy; what remains quadratic is the number of (pattern, value) ' +
      'pairs, as the last row shows (every context key is tried against every pattern).',
    checks: [],
  };
}
