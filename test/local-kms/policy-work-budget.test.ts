/**
 * One request cannot hold the server (review11, finding 7). A key policy is limited to 32,768
 * characters (Developer Guide, "Resource quotas", "Key policy document size"), but AWS documents no
 * size limit for an encryption context (only for grant constraints: 8 pairs, 384 characters), so a
 * context value may be as long as the request body (1 MiB here). The review's case: ~2,800
 * `StringLike` patterns holding `?`, each one a scan of the whole value, against a 900,000-character
 * value, held the server for 7.5 s; the Deny names Principal "*", so any caller could do it.
 *
 * Each evaluation now has a budget of steps (work-meter.ts); the matchers count what they scan and
 * stop where the budget ends, and the request is then denied (fail closed). Times are measured in
 * `node bench/run.mjs policy`; here the step counts are asserted, plus one generous bound on how
 * long another client waits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateKeyCommand, EncryptCommand, ListKeysCommand } from '@aws-sdk/client-kms';
import { KmsServiceError } from '../../src/local-kms/errors.js';
import { startLocalKmsServer, type LocalKmsServer } from '../../src/local-kms/index.js';
import { evaluateKeyPolicy } from '../../src/local-kms/policy.js';
import type { AuthzRequest } from '../../src/local-kms/policy-types.js';
import { compileWildcard } from '../../src/local-kms/wildcard.js';
import { EVALUATION_WORK_BUDGET, WorkBudgetExceeded, WorkMeter } from '../../src/local-kms/work-meter.js';
import { expectAwsError, sdkClient } from './helpers.js';

const ACCOUNT = '111122223333';
const ROOT_ARN = `arn:aws:iam::${ACCOUNT}:root`;
const KEY = `arn:aws:kms:us-east-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;

/** The review's policy: the account statement and a Deny with ~30 KB of `?` patterns. */
function stallPolicy(): string {
  const patterns: string[] = [];
  for (let i = 0; JSON.stringify(patterns).length < 30_000; i++) patterns.push(`*a?${i.toString(36)}!*`);
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Principal: { AWS: ROOT_ARN }, Action: 'kms:*', Resource: '*' },
      { Effect: 'Deny', Principal: { AWS: '*' }, Action: 'kms:Encrypt', Resource: '*', Condition: { StringLike: { 'kms:EncryptionContext:k': patterns } } },
    ],
  });
}

/** A meter that records every charge, to see how far past its budget a search went. */
class RecordingMeter extends WorkMeter {
  charged = 0;
  override charge(steps: number): void {
    this.charged += steps;
    super.charge(steps);
  }
}

describe('the wildcard matcher stops where the budget ends', () => {
  const value = 'a'.repeat(200_000);
  const patterns = [
    '*a?b*', // Shift-And, one word
    `*${'a?'.repeat(100)}b*`, // Shift-And, seven words
    '*a0!*', // literal piece (Knuth-Morris-Pratt)
    `*${'a'.repeat(40)}b*`, // long literal piece
  ];

  it.each(patterns)('%s against 200,000 characters: throws after its budget, having charged at most one jump past it', (pattern) => {
    const p = compileWildcard(pattern);
    const meter = new RecordingMeter(10_000);
    expect(() => p.matches(value, meter)).toThrow(WorkBudgetExceeded);
    expect(meter.remaining).toBe(0);
    // One indexOf jump is not cut (it is native and linear): at most value/32 steps and its call.
    expect(meter.charged - 10_000).toBeLessThanOrEqual((value.length >>> 5) + 8 * 7);
    // The same match with enough budget answers (no match) and says what it cost.
    const big = new RecordingMeter(100_000_000);
    expect(p.matches(value, big)).toBe(false);
    expect(big.charged).toBeGreaterThan(value.length - 100);
  });

  it('charges little for what memchr skips: a missing character in a long value', () => {
    const meter = new RecordingMeter(1_000_000);
    expect(compileWildcard('*b*').matches(value, meter)).toBe(false);
    expect(meter.charged).toBeLessThan(value.length / 16);
    expect(compileWildcard('*b*').matches(`${value}b`, new WorkMeter(1_000_000))).toBe(true);
  });
});

describe('a key policy evaluation that exceeds the budget denies the request', () => {
  const request = (k: string): AuthzRequest => ({
    caller: { arn: `arn:aws:iam::${ACCOUNT}:user/anyone`, account: ACCOUNT },
    action: 'kms:Encrypt',
    resourceArn: KEY,
    encryptionContext: { k },
  });

  it('the review case: AccessDeniedException naming the limit, not an evaluation of seconds', () => {
    const policy = stallPolicy();
    expect(policy.length).toBeLessThanOrEqual(32_768);
    let error: unknown;
    try {
      evaluateKeyPolicy(policy, request('a'.repeat(900_000)));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(KmsServiceError);
    expect((error as KmsServiceError).type).toBe('AccessDeniedException');
    expect((error as KmsServiceError).message).toBe(
      `User: arn:aws:iam::${ACCOUNT}:user/anyone is not authorized to perform: kms:Encrypt on resource: ${KEY} because evaluating the ` +
        `resource-based policy needed more than ${EVALUATION_WORK_BUDGET.toLocaleString('en-US')} character steps of condition matching, ` +
        "the local KMS's limit for one request; it denies what it cannot finish evaluating",
    );
  });

  it('the same policy with a realistic value is evaluated in full (1,000 characters, every pattern tried)', () => {
    expect(evaluateKeyPolicy(stallPolicy(), request('a'.repeat(1_000)))).toEqual({ allowed: false, explicitDeny: false });
    expect(evaluateKeyPolicy(stallPolicy(), request(`${'a'.repeat(1_000)}a?0!`))).toEqual({ allowed: false, explicitDeny: true });
  });
});

describe('over HTTP: another client is answered while the large request is evaluated', () => {
  let server: LocalKmsServer;
  beforeAll(async () => {
    server = await startLocalKmsServer({ port: 0 });
  });
  afterAll(async () => {
    await server.close();
  });

  it("another client's ListKeys is answered within 5 s (the review measured 7.5-12.6 s; the budget stops the Encrypt in tens of ms), and the large Encrypt is denied", async () => {
    const kms = sdkClient(server.url);
    const key = await kms.send(new CreateKeyCommand({ Policy: stallPolicy() }));
    const heavy = expectAwsError(
      kms.send(new EncryptCommand({ KeyId: key.KeyMetadata!.KeyId!, Plaintext: Buffer.from('x'), EncryptionContext: { k: 'a'.repeat(900_000) } })),
      'AccessDeniedException',
    );
    let done = false;
    void heavy.then(
      () => (done = true),
      () => (done = true),
    );
    // Probe the server from another client until the heavy request is answered.
    let waited = 0;
    let probes = 0;
    while (!done) {
      const t0 = Date.now();
      await sdkClient(server.url).send(new ListKeysCommand({}));
      waited = Math.max(waited, Date.now() - t0);
      probes++;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect((await heavy).message).toMatch(/character steps of condition matching/);
    expect(probes).toBeGreaterThan(0);
    expect(waited).toBeLessThan(5_000); // generous: a loaded CI machine, SDK client set-up included
  });
});
