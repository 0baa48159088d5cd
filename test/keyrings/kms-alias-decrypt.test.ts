/**
 * Review finding (issue 10, hole 8): a strict KmsKeyring configured with an alias (or a bare key
 * id) decrypted any `aws-kms` EDK whose key the alias resolved to at that moment, so whoever may
 * call UpdateAlias decided which messages the reader accepted. The specification
 * (framework/aws-kms/aws-kms-keyring.md, "OnDecrypt") filters EDKs to those whose provider info
 * matches the configured identifier and requires the KeyId KMS answers with to equal it; AWS
 * documents that a decrypting KMS keyring must be given key ARNs. That is now the default; the old
 * behaviour is an explicit option, `resolveOnDecrypt: true`, whose effect (trust follows
 * UpdateAlias) is tested here too.
 *
 * Runs against the in-process local KMS (its UpdateAlias is the real operation).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Envelope, KmsKeyring, MultiKeyring, NoDecryptableKeyError, RawAesKeyring } from '../../src/index.js';
import { run, type Io } from '../../src/cli/run.js';
import { LocalKms } from '../../src/local-kms/index.js';

const context = { tenant: 'acme' };

async function world() {
  const local = new LocalKms({});
  const client = local.client();
  const a = await local.createKey({ Description: 'a' });
  const b = await local.createKey({ Description: 'b' });
  await local.createAlias('alias/app', a.keyId);
  const [, partition, , region, account] = a.arn.split(':') as [string, string, string, string, string];
  const aliasArn = `arn:${partition}:kms:${region}:${account}:alias/app`;
  const write = (keyArn: string, text: string) =>
    new Envelope({ kms: { keyId: keyArn, client }, cache: false }).encrypt(text, { context });
  const underA = await write(a.arn, 'written under key A');
  const underB = await write(b.arn, 'written under key B');
  const repoint = () => local.service.call('UpdateAlias', { AliasName: 'alias/app', TargetKeyId: b.keyId });
  return { local, client, a, b, aliasArn, underA, underB, repoint };
}

function expectGuidance(err: unknown, id: string): void {
  expect(err).toBeInstanceOf(NoDecryptableKeyError);
  expect((err as NoDecryptableKeyError).code).toBe('ERR_NO_DECRYPTABLE_KEY');
  const m = (err as Error).message;
  expect(m).toContain(JSON.stringify(id));
  expect(m).toMatch(/key ARN/);
  expect(m).toMatch(/resolveOnDecrypt: true/);
  expect(m).toMatch(/UpdateAlias/);
}

describe('aws-kms-keyring.md OnDecrypt: provider info must match the configured identifier (default)', () => {
  it('an alias-configured keyring does not follow UpdateAlias: a message under the new target is refused, no KMS call', async () => {
    const w = await world();
    const reader = new KmsKeyring({ keyId: 'alias/app', client: w.client });
    const envelope = new Envelope({ keyring: reader, cache: false });
    await w.repoint(); // alias/app -> key B, by whoever may call UpdateAlias
    const err = await envelope.decrypt(w.underB, { context }).catch((e: unknown) => e);
    expectGuidance(err, 'alias/app');
    expect(reader.kmsCalls).toBe(0);
    w.local.close();
  });

  for (const kind of ['alias name', 'alias ARN', 'bare key id'] as const) {
    it(`${kind}: no EDK matches, no KMS call, and the error says to configure the key ARN or opt in`, async () => {
      const w = await world();
      const id = kind === 'alias name' ? 'alias/app' : kind === 'alias ARN' ? w.aliasArn : w.a.keyId;
      const reader = new KmsKeyring({ keyId: id, client: w.client });
      const err = await new Envelope({ keyring: reader, cache: false }).decrypt(w.underA, { context }).catch((e: unknown) => e);
      expectGuidance(err, id);
      expect(reader.kmsCalls).toBe(0);
      // Encrypting with it is still allowed (any identifier: aws-kms-keyring.md "OnEncrypt").
      const m = await new Envelope({ keyring: reader, cache: false }).encrypt('x', { context });
      expect((await new Envelope({ kms: { keyId: w.a.arn, client: w.client } }).decrypt(m, { context })).plaintext.toString()).toBe('x');
      w.local.close();
    });
  }

  it('a key-ARN-configured keyring decrypts its own EDKs (one KMS call, KeyId = the ARN) and refuses others without a call', async () => {
    const w = await world();
    const ring = new KmsKeyring({ keyId: w.a.arn, client: w.client });
    const envelope = new Envelope({ keyring: ring, cache: false });
    expect((await envelope.decrypt(w.underA, { context })).plaintext.toString()).toBe('written under key A');
    expect(ring.kmsCalls).toBe(1);
    const err = await envelope.decrypt(w.underB, { context }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoDecryptableKeyError);
    expect((err as Error).message).not.toMatch(/resolveOnDecrypt/); // nothing to opt into: the key is an ARN
    expect(ring.kmsCalls).toBe(1);
    w.local.close();
  });

  it('keyIds mixing an alias and a key ARN: the ARN decrypts; the alias alone never does', async () => {
    const w = await world();
    const ring = new KmsKeyring({ keyIds: ['alias/app', w.a.arn], client: w.client });
    expect((await new Envelope({ keyring: ring, cache: false }).decrypt(w.underA, { context })).plaintext.toString()).toBe('written under key A');
    await w.repoint();
    const err = await new Envelope({ keyring: ring, cache: false }).decrypt(w.underB, { context }).catch((e: unknown) => e);
    expectGuidance(err, 'alias/app');
    expect(ring.kmsCalls).toBe(1);
    w.local.close();
  });

  it('inside a MultiKeyring the refusal does not stop another keyring from decrypting', async () => {
    const w = await world();
    const raw = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key: Buffer.alloc(32, 9) });
    const writer = new Envelope({ keyring: new MultiKeyring({ generator: new KmsKeyring({ keyId: w.a.arn, client: w.client }), children: [raw] }), cache: false });
    const m = await writer.encrypt('either key', { context });
    const reader = new Envelope({ keyring: new MultiKeyring({ children: [new KmsKeyring({ keyId: 'alias/app', client: w.client }), raw] }), cache: false });
    expect((await reader.decrypt(m, { context })).plaintext.toString()).toBe('either key');
    w.local.close();
  });
});

describe('resolveOnDecrypt: true (explicit opt-in): KMS resolves the identifier at decrypt time', () => {
  it('alias: decrypts what the alias names now, so trust follows UpdateAlias (the documented effect)', async () => {
    const w = await world();
    const ring = new KmsKeyring({ keyId: 'alias/app', client: w.client, resolveOnDecrypt: true });
    const envelope = new Envelope({ keyring: ring, cache: false });
    expect((await envelope.decrypt(w.underA, { context })).plaintext.toString()).toBe('written under key A');
    await expect(envelope.decrypt(w.underB, { context })).rejects.toMatchObject({ code: 'ERR_NO_DECRYPTABLE_KEY' });
    await w.repoint();
    expect((await envelope.decrypt(w.underB, { context })).plaintext.toString()).toBe('written under key B');
    await expect(envelope.decrypt(w.underA, { context })).rejects.toMatchObject({ code: 'ERR_NO_DECRYPTABLE_KEY' });
    w.local.close();
  });

  it('alias ARN and bare key id decrypt with KMS confirming the key ARN; the Envelope kms shorthand passes the option', async () => {
    const w = await world();
    for (const keyId of [w.aliasArn, w.a.keyId]) {
      const envelope = new Envelope({ kms: { keyId, client: w.client, resolveOnDecrypt: true }, cache: false });
      expect((await envelope.decrypt(w.underA, { context })).plaintext.toString()).toBe('written under key A');
    }
    w.local.close();
  });

  it('is validated at construction: a boolean, not with discovery', () => {
    const client = new LocalKms({}).client();
    expect(() => new KmsKeyring({ keyId: 'alias/app', client, resolveOnDecrypt: 'yes' as never })).toThrow(/options\.resolveOnDecrypt/);
    expect(() => new KmsKeyring({ discovery: true, client, resolveOnDecrypt: true })).toThrow(/options\.resolveOnDecrypt/);
  });
});

describe('CLI: decrypt --key needs key ARNs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kms-envelope-alias-cli-'));
  let kmsDir: string;
  let arn: string;
  let keyId: string;
  let message: string;
  beforeAll(async () => {
    kmsDir = join(dir, 'kms');
    const kms = new LocalKms({ dataDir: kmsDir });
    ({ arn, keyId } = await kms.createKey({}));
    await kms.createAlias('alias/cli', keyId);
    kms.close();
    writeFileSync(join(dir, 'plain.txt'), 'cli secret');
    message = join(dir, 'plain.txt.enc');
    expect(await run(['encrypt', '--local', kmsDir, '--key', 'alias/cli', '-i', join(dir, 'plain.txt'), '-o', message], io())).toBe(0);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('--key alias/NAME, an alias ARN or a bare key id: usage error (exit 2) saying how to get the ARN; no output', async () => {
    for (const key of ['alias/cli', 'arn:aws:kms:us-east-1:111122223333:alias/cli', () => keyId] as const) {
      const k = typeof key === 'function' ? key() : key;
      const out = join(dir, 'out.txt');
      const r = io();
      const code = await run(['decrypt', '--local', kmsDir, '--key', k, '-i', message, '-o', out], r);
      expect(r.err()).toMatch(/^kms-envelope: ERR_USAGE: /);
      expect(code).toBe(2);
      expect(r.err()).toContain(k);
      expect(r.err()).toMatch(/key ARN/);
      expect(r.err()).toMatch(/describe-key/);
      expect(existsSync(out)).toBe(false);
    }
  });

  it('--key KEY_ARN decrypts', async () => {
    const r = io();
    expect(await run(['decrypt', '--local', kmsDir, '--key', arn, '-i', message, '-o', '-'], r)).toBe(0);
    expect(r.out().toString()).toBe('cli secret');
    expect(readFileSync(message).includes(Buffer.from(arn))).toBe(true);
  });
});

function io(input: string | Buffer = ''): Io & { out(): Buffer; err(): string } {
  const stdin = new PassThrough();
  stdin.end(input);
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  let err = '';
  stdout.on('data', (d: Buffer) => out.push(d));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  return { stdin, stdout, stderr, env: {}, out: () => Buffer.concat(out), err: () => err };
}
