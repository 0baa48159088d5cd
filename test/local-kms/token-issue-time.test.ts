/**
 * aws:TokenIssueTime (started as an external review's reproduction, finding 5b: the local KMS never
 * supplied it, so the documented "revoke older sessions" Deny never applied to role sessions).
 *
 * IAM User Guide, "AWS global condition context keys": aws:TokenIssueTime is in the request context
 * only when the principal uses temporary credentials. "Revoke IAM role temporary security
 * credentials": the console attaches a Deny of every action with DateLessThan aws:TokenIssueTime
 * (the revocation time), which stops every session issued before it. "Disabling permissions for
 * temporary security credentials": temporary credentials live at most 36 hours.
 *
 * The local KMS takes the time from the principals-file entry (`tokenIssueTime`); without one it
 * is unknown and the request must be allowed whatever it was within the last 36 hours.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { CreateKeyCommand, EncryptCommand } from '@aws-sdk/client-kms';
import { LocalKmsService } from '../../src/local-kms/service.js';
import { loadPrincipals } from '../../src/local-kms/principals.js';
import { startLocalKmsServer } from '../../src/local-kms/index.js';
import type { Caller } from '../../src/local-kms/policy-types.js';
import { ACCOUNT, iam, keyPolicy, newKey, outcome, plain, root } from './authz-callers.js';
import { expectAwsError, sdkClient, tempDir } from './helpers.js';

let kms: LocalKmsService;
beforeEach(() => {
  kms = new LocalKmsService();
});

describe('"Revoke active sessions" (Deny with DateLessThan aws:TokenIssueTime) on a role', () => {
  it('denies a session of the role', async () => {
    const revokedAt = new Date(Date.now() + 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z'); // every existing session is older
    const session = iam(
      `arn:aws:sts::${ACCOUNT}:assumed-role/App/worker-1`,
      { Effect: 'Allow', Action: 'kms:*', Resource: '*' },
      { Effect: 'Deny', Action: '*', Resource: '*', Condition: { DateLessThan: { 'aws:TokenIssueTime': revokedAt } } },
    );
    const key = await newKey(kms);
    expect(await outcome(kms.call('Encrypt', { KeyId: key.KeyId, Plaintext: Buffer.from('x') }, session))).toBe('AccessDeniedException');
  });
});

// ---------------------------------------------------------------------------------------------

const NOW = Date.parse('2025-03-01T12:00:00Z');
const HOUR = 3_600_000;
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const SESSION = `arn:aws:sts::${ACCOUNT}:assumed-role/App/worker-1`;
const allowAll = { Effect: 'Allow', Action: 'kms:*', Resource: '*' };
const when = (op: string, time: number) => ({ [op]: { 'aws:TokenIssueTime': iso(time) } });
const deny = (condition: object) => ({ Effect: 'Deny', Action: '*', Resource: '*', Condition: condition });
/** A role session with these identity-policy statements, issued at `issued` (undefined: unknown). */
const session = (issued: number | undefined, ...statements: object[]): Caller => ({
  ...iam(SESSION, ...statements),
  ...(issued !== undefined ? { tokenIssueTime: iso(issued) } : {}),
});

describe('aws:TokenIssueTime with a fixed clock', () => {
  let key: { KeyId: string; Arn: string };
  const encrypt = (who: Caller) => outcome(kms.call('Encrypt', { KeyId: key.Arn, Plaintext: Buffer.from('x') }, who));
  beforeEach(async () => {
    kms = new LocalKmsService({ clock: () => NOW });
    key = await newKey(kms);
  });

  it('a known issue time is evaluated exactly: revoked an hour ago, a session issued two hours ago is denied, one issued 30 minutes ago is allowed', async () => {
    const revoke = deny(when('DateLessThan', NOW - HOUR));
    expect(await encrypt(session(NOW - 2 * HOUR, allowAll, revoke))).toBe('AccessDeniedException');
    expect(await encrypt(session(NOW - HOUR / 2, allowAll, revoke))).toBe('OK');
  });

  it('unknown: a revocation at any time in the last 36 hours denies (a session could be older than it)', async () => {
    for (const revokedAgo of [HOUR / 60, HOUR, 35 * HOUR]) {
      expect(await encrypt(session(undefined, allowAll, deny(when('DateLessThan', NOW - revokedAgo)))), `${revokedAgo / HOUR} h`).toBe('AccessDeniedException');
    }
    // A revocation more than 36 hours ago cannot touch a live session: no temporary credentials live that long.
    expect(await encrypt(session(undefined, allowAll, deny(when('DateLessThan', NOW - 37 * HOUR)))))
      .toBe('OK');
  });

  it('unknown: a Deny of sessions issued after a cut-off, and one of sessions issued in a window, deny too', async () => {
    expect(await encrypt(session(undefined, allowAll, deny(when('DateGreaterThan', NOW - 10 * HOUR)))))
      .toBe('AccessDeniedException');
    const window = deny({ DateGreaterThan: { 'aws:TokenIssueTime': iso(NOW - 6 * HOUR) }, DateLessThan: { 'aws:TokenIssueTime': iso(NOW - 5 * HOUR) } });
    expect(await encrypt(session(undefined, allowAll, window))).toBe('AccessDeniedException');
    // Known and outside the window: allowed; inside: denied.
    expect(await encrypt(session(NOW - HOUR, allowAll, window))).toBe('OK');
    expect(await encrypt(session(NOW - 5.5 * HOUR, allowAll, window))).toBe('AccessDeniedException');
  });

  it('unknown: an Allow only for sessions issued after (or before) some time allows nothing; known, it allows what it says', async () => {
    const after = { ...allowAll, Condition: when('DateGreaterThan', NOW - 10 * HOUR) };
    const before = { ...allowAll, Condition: when('DateLessThan', NOW - HOUR) };
    expect(await encrypt(session(undefined, after))).toBe('AccessDeniedException');
    expect(await encrypt(session(undefined, before))).toBe('AccessDeniedException');
    expect(await encrypt(session(NOW - HOUR, after))).toBe('OK');
    expect(await encrypt(session(NOW - 2 * HOUR, before))).toBe('OK');
  });

  it('IAM users and the root user (long-term keys) have no aws:TokenIssueTime: the revocation does not touch them, Null says it is absent', async () => {
    const user = iam(`arn:aws:iam::${ACCOUNT}:user/alice`, allowAll, deny(when('DateLessThan', NOW + HOUR)));
    expect(await encrypt(user)).toBe('OK');
    const absent = iam(`arn:aws:iam::${ACCOUNT}:user/alice`, { ...allowAll, Condition: { Null: { 'aws:TokenIssueTime': 'true' } } });
    expect(await encrypt(absent)).toBe('OK');
    const present = session(undefined, { ...allowAll, Condition: { Null: { 'aws:TokenIssueTime': 'false' } } });
    expect(await encrypt(present)).toBe('OK');
  });

  it('applies to key policies, to callers whose IAM is not modelled, to IAM-only operations and to RetireGrant', async () => {
    const revoke = { Effect: 'Deny', Principal: { AWS: '*' }, Action: 'kms:*', Resource: '*', Condition: when('DateLessThan', NOW - HOUR) };
    const guarded = await newKey(kms, {
      Policy: keyPolicy({ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:role/App` }, Action: 'kms:Encrypt', Resource: '*' }, revoke),
    });
    const plainSession = plain(SESSION);
    expect(await outcome(kms.call('Encrypt', { KeyId: guarded.Arn, Plaintext: Buffer.from('x') }, plainSession))).toBe('AccessDeniedException');
    expect(await outcome(kms.call('Encrypt', { KeyId: guarded.Arn, Plaintext: Buffer.from('x') }, { ...plainSession, tokenIssueTime: iso(NOW - 60_000) }))).toBe('OK');

    const revokedIam = session(undefined, allowAll, deny(when('DateLessThan', NOW - HOUR)));
    expect(await outcome(kms.call('ListKeys', {}, revokedIam))).toBe('AccessDeniedException');
    const { GrantId } = (await kms.call('CreateGrant', { KeyId: key.KeyId, GranteePrincipal: SESSION, RetiringPrincipal: SESSION, Operations: ['Encrypt'] }, root)) as { GrantId: string };
    expect(await outcome(kms.call('RetireGrant', { KeyId: key.Arn, GrantId }, revokedIam))).toBe('AccessDeniedException');
    expect(await outcome(kms.call('RetireGrant', { KeyId: key.Arn, GrantId }, session(NOW - 60_000, deny(when('DateLessThan', NOW - HOUR)))))).toBe('OK');
  });
});

describe('principals file `tokenIssueTime`', () => {
  const tmp = tempDir('lkms-tit-');
  afterAll(() => tmp.cleanup());
  const write = (name: string, doc: object) => {
    const file = join(tmp.dir, name);
    writeFileSync(file, JSON.stringify(doc));
    return file;
  };

  it('is read for role sessions, roles and federated users (normalized to UTC seconds) and refused for IAM users, the root user and malformed times', () => {
    const ok = loadPrincipals(
      write('ok.json', {
        AKIATOKENISSUE000001: { arn: SESSION, tokenIssueTime: '2025-03-01T13:30:00.250+01:00' },
        AKIATOKENISSUE000002: { arn: `arn:aws:iam::${ACCOUNT}:role/App`, tokenIssueTime: '2025-03-01T12:00:00Z' },
        AKIATOKENISSUE000003: { arn: `arn:aws:sts::${ACCOUNT}:federated-user/bob`, tokenIssueTime: '2025-03-01T12:00:00Z' },
      }),
    );
    expect(ok.get('AKIATOKENISSUE000001')!.tokenIssueTime).toBe('2025-03-01T12:30:00Z');
    expect(ok.get('AKIATOKENISSUE000002')!.tokenIssueTime).toBe('2025-03-01T12:00:00Z');
    for (const [arn, value, message] of [
      [`arn:aws:iam::${ACCOUNT}:user/alice`, '2025-03-01T12:00:00Z', /only for role sessions, roles and federated users/],
      [`arn:aws:iam::${ACCOUNT}:root`, '2025-03-01T12:00:00Z', /only for role sessions/],
      [SESSION, '2025-03-01', /ISO 8601 date and time with a zone/],
      [SESSION, '2025-03-01T12:00:00', /ISO 8601/],
      [SESSION, '2025-02-30T12:00:00Z', /ISO 8601/],
      [SESSION, 1740830400, /ISO 8601/],
    ] as const) {
      expect(() => loadPrincipals(write('bad.json', { AKIATOKENISSUE000009: { arn, tokenIssueTime: value } })), `${arn} ${value}`).toThrow(message);
    }
  });

  it('over HTTP: a session issued after the revocation may encrypt, the same session without `tokenIssueTime` (or issued before it) may not', async () => {
    const revokedAt = iso(Date.now() - 10 * 60_000);
    const policies = [{ Version: '2012-10-17', Statement: [allowAll, deny(when('DateLessThan', Date.parse(revokedAt)))] }];
    const file = write('http.json', {
      AKIASESSIONFRESH0001: { arn: SESSION, secretAccessKey: 'fresh', tokenIssueTime: iso(Date.now() - 60_000), policies },
      AKIASESSIONSTALE0001: { arn: SESSION, secretAccessKey: 'stale', tokenIssueTime: iso(Date.now() - 3_600_000), policies },
      AKIASESSIONUNKNOWN01: { arn: SESSION, secretAccessKey: 'unknown', policies },
      AKIAROOTROOTROOT0001: { arn: `arn:aws:iam::${ACCOUNT}:root`, secretAccessKey: 'root' },
    });
    const server = await startLocalKmsServer({ port: 0, principalsFile: file, accountId: ACCOUNT });
    try {
      const { KeyMetadata } = await sdkClient(server.url, 'AKIAROOTROOTROOT0001', 'root').send(new CreateKeyCommand({}));
      const send = (id: string, secret: string) => sdkClient(server.url, id, secret).send(new EncryptCommand({ KeyId: KeyMetadata!.Arn!, Plaintext: Buffer.from('x') }));
      await send('AKIASESSIONFRESH0001', 'fresh');
      await expectAwsError(send('AKIASESSIONSTALE0001', 'stale'), 'AccessDeniedException');
      await expectAwsError(send('AKIASESSIONUNKNOWN01', 'unknown'), 'AccessDeniedException');
    } finally {
      await server.close();
    }
  });
});
