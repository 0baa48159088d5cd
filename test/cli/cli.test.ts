/**
 * The `kms-envelope` bin, spawned as users run it: `node dist/cli/main.js ...` (`npm test` builds
 * dist/ first). Everything runs against the local KMS: embedded (`--local DIR`) or its HTTP server
 * (`--endpoint URL`, started here on port 0). The environment of every child is scrubbed of AWS
 * settings so the host's configuration can never leak in.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildClient, CommitmentPolicy, KmsKeyringNode } from '@aws-crypto/client-node';
import { CreateKeyCommand, KMS, KMSClient, ListKeysCommand } from '@aws-sdk/client-kms';
import { LocalKms, startLocalKmsServer, type LocalKmsServer } from '../../src/local-kms/index.js';
import { runCli, type CliResult } from '../support/cli.js';

const ROOT = resolve(__dirname, '../..');
const MAIN = join(ROOT, 'dist/cli/main.js');
const CREDENTIALS = { accessKeyId: 'AKIDCLITEST0000', secretAccessKey: 'cli-test-secret' };

let dir: string;
let localDir: string;
let localArn: string;
let localOtherArn: string;
let server: LocalKmsServer;
let serverArn: string;
let otherServerArn: string;
let sdk: KMSClient;

/** A clean environment: no AWS variables, HOME without ~/.aws. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '', HOME: dir, ...extra };
}

function cli(args: string[], opts: { input?: Buffer; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return runCli(MAIN, args, { cwd: dir, env: opts.env ?? cleanEnv(), input: opts.input });
}

const p = (name: string) => join(dir, name);

beforeAll(async () => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first (npm test does)`);
  dir = mkdtempSync(join(tmpdir(), 'kms-envelope-cli-'));
  localDir = p('local-kms');
  // Keys for --local: created in process, then closed, because a data directory has one owner at a time.
  const local = new LocalKms({ dataDir: localDir });
  const k = await local.createKey({ Description: 'cli test' });
  await local.createAlias('alias/cli', k.keyId);
  localArn = k.arn;
  const other = await local.createKey({});
  await local.createAlias('alias/cli-other', other.keyId);
  localOtherArn = other.arn;
  local.close();

  server = await startLocalKmsServer({ port: 0, dataDir: p('server-kms') });
  sdk = new KMSClient({ endpoint: server.url, region: 'us-east-1', credentials: CREDENTIALS });
  serverArn = (await sdk.send(new CreateKeyCommand({ Description: 'cli endpoint test' }))).KeyMetadata!.Arn!;
  otherServerArn = (await sdk.send(new CreateKeyCommand({ Description: 'cli endpoint other' }))).KeyMetadata!.Arn!;
});

afterAll(async () => {
  sdk?.destroy();
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('kms-envelope --help / --version', () => {
  it('prints help for the program and every command, exit 0', async () => {
    const main = await cli(['--help']);
    expect(main.code).toBe(0);
    expect(main.stdout.toString()).toMatch(/Usage:[\s\S]*encrypt[\s\S]*decrypt[\s\S]*local-kms/);
    // The exit-code table is part of the help.
    expect(main.stdout.toString()).toMatch(/5\s+encryption context does not match/);
    for (const [cmd, marker] of [
      ['encrypt', /--key KEY/],
      ['decrypt', /--allow-account/],
      ['local-kms', /--data-dir DIR/],
    ] as const) {
      const r = await cli([cmd, '--help']);
      expect(r.code, cmd).toBe(0);
      expect(r.stdout.toString(), cmd).toMatch(/^Usage: kms-envelope /);
      expect(r.stdout.toString(), cmd).toMatch(marker);
    }
    const v = await cli(['--version']);
    expect(v.code).toBe(0);
    expect(v.stdout.toString().trim()).toBe(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
  });

  it('reports usage errors with exit 2 and the error format', async () => {
    const cases: string[][] = [
      ['frobnicate'],
      ['encrypt', '--local', localDir], // no --key
      ['encrypt', '--local', localDir, '--key', 'alias/cli', '--bogus'],
      ['encrypt', '--local', localDir, '--key', 'alias/cli', '--context', 'novalue'],
      ['encrypt', '--local', localDir, '--key', 'alias/cli', '--suite', '0x0014'],
      ['encrypt', '--local', localDir, '--key', 'alias/cli', '--frame-length', '0'],
      ['encrypt', '--local', localDir, '--key', 'alias/cli', '--context', 'aws-crypto-x=1'],
      ['encrypt', '--local', localDir, '--endpoint', 'http://127.0.0.1:1', '--key', 'alias/cli'],
      ['decrypt', '--local', localDir, '--key', 'alias/cli', '--allow-account', '111122223333'],
      ['decrypt', '--local', localDir, '--allow-account', '12345'],
    ];
    for (const args of cases) {
      const r = await cli(args, { input: Buffer.from('x') });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/^kms-envelope: ERR_USAGE: \S/);
    }
  });

  it('says how to configure a KMS when there is none (exit 2, ERR_NO_KMS)', async () => {
    const r = await cli(['encrypt', '--key', 'alias/cli'], { input: Buffer.from('x') });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^kms-envelope: ERR_NO_KMS: .*--local DIR.*--endpoint URL.*AWS_REGION/);
  });
});

describe('kms-envelope encrypt/decrypt with the embedded local KMS (--local)', () => {
  it('round-trips through files', async () => {
    const plain = randomBytes(200_000);
    writeFileSync(p('f.txt'), plain);
    const enc = await cli(['encrypt', '--local', localDir, '--key', 'alias/cli', '-c', 'app=cli', '-c', 'x=a=b', '-i', p('f.txt'), '-o', p('f.enc')]);
    expect(enc.stderr).toBe('');
    expect(enc.code).toBe(0);
    expect(enc.stdout.length).toBe(0);
    const msg = readFileSync(p('f.enc'));
    expect(msg.subarray(0, 3)).toEqual(Buffer.from([0x02, 0x04, 0x78])); // v2, suite 0x0478
    expect(msg.includes(Buffer.from(localArn))).toBe(true); // the EDK names the key ARN

    const dec = await cli(['decrypt', '--local', localDir, '-c', 'app=cli', '-c', 'x=a=b', '-i', p('f.enc'), '-o', p('f.out')]);
    expect(dec.stderr).toBe('');
    expect(dec.code).toBe(0);
    expect(readFileSync(p('f.out')).equals(plain)).toBe(true);
    expect(statSync(p('f.out')).mode & 0o777).toBe(0o600); // plaintext is private
    // No temporary files are left behind.
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('round-trips through pipes (stdin/stdout), with --suite 0x0578 and a small frame length', async () => {
    const plain = randomBytes(3 * 1024 * 1024 + 3);
    for (const extra of [[], ['--suite', '0x0578', '--frame-length', '1000']]) {
      const enc = await cli(['encrypt', '--local', localDir, '--key', 'alias/cli', '-c', 'pipe=1', ...extra], { input: plain });
      expect(enc.stderr).toBe('');
      expect(enc.code).toBe(0);
      expect(enc.stdout[1]).toBe(extra.length ? 0x05 : 0x04);
      const dec = await cli(['decrypt', '--local', localDir, '--key', localArn, '-c', 'pipe=1', '-i', '-', '-o', '-'], {
        input: enc.stdout,
      });
      expect(dec.stderr).toBe('');
      expect(dec.code).toBe(0);
      expect(dec.stdout.equals(plain)).toBe(true);
    }
  });

  it('mixes file and pipe ends: stdin -> file and file -> stdout', async () => {
    const plain = Buffer.from('mixed ends\n'.repeat(1000));
    const enc = await cli(['encrypt', '--local', localDir, '--key', localArn, '-o', p('m.enc')], { input: plain });
    expect(enc.code).toBe(0);
    const dec = await cli(['decrypt', '--local', localDir, '-i', p('m.enc')]);
    expect(dec.code).toBe(0);
    expect(dec.stdout.equals(plain)).toBe(true);
  });

  it('fails with the error code and exit status, leaving no output file', async () => {
    writeFileSync(p('c.txt'), 'context matters');
    expect((await cli(['encrypt', '--local', localDir, '--key', 'alias/cli', '-c', 'tenant=a', '-i', p('c.txt'), '-o', p('c.enc')])).code).toBe(0);
    const message = readFileSync(p('c.enc'));

    const wrongContext = await cli(['decrypt', '--local', localDir, '-c', 'tenant=b', '-i', p('c.enc'), '-o', p('c.out')]);
    expect(wrongContext.code).toBe(5);
    expect(wrongContext.stderr).toMatch(/^kms-envelope: ERR_CONTEXT_MISMATCH: /);
    expect(wrongContext.stderr).not.toContain('context matters');
    expect(existsSync(p('c.out'))).toBe(false);

    const missingPair = await cli(['decrypt', '--local', localDir, '-c', 'other=x'], { input: message });
    expect(missingPair.code).toBe(5);
    expect(missingPair.stdout.length).toBe(0);

    const tampered = Buffer.from(message);
    tampered[tampered.length - 20]! ^= 1;
    writeFileSync(p('t.enc'), tampered);
    const bad = await cli(['decrypt', '--local', localDir, '-i', p('t.enc'), '-o', p('t.out')]);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/^kms-envelope: ERR_DECRYPTION_FAILED: /);
    expect(existsSync(p('t.out'))).toBe(false);

    const cut = await cli(['decrypt', '--local', localDir], { input: message.subarray(0, message.length - 5) });
    expect(cut.code).toBe(6);
    expect(cut.stderr).toMatch(/^kms-envelope: ERR_(MALFORMED_MESSAGE|STREAM): /);
    expect(cut.stdout.length).toBe(0);

    const notMine = await cli(['decrypt', '--local', localDir, '--key', localOtherArn], { input: message });
    expect(notMine.code).toBe(7);
    expect(notMine.stderr).toMatch(/^kms-envelope: ERR_NO_DECRYPTABLE_KEY: /);

    const otherAccount = await cli(['decrypt', '--local', localDir, '--allow-account', '999988887777'], { input: message });
    expect(otherAccount.code).toBe(7);
    const sameAccount = await cli(['decrypt', '--local', localDir, '--allow-account', '111122223333'], { input: message });
    expect(sameAccount.code).toBe(0);
    expect(sameAccount.stdout.toString()).toBe('context matters');

    const garbage = await cli(['decrypt', '--local', localDir], { input: Buffer.from('not a message at all') });
    expect(garbage.code).toBe(6);

    const unknownKey = await cli(['encrypt', '--local', localDir, '--key', 'alias/nope'], { input: Buffer.from('x') });
    expect(unknownKey.code).toBe(4);
    expect(unknownKey.stderr).toMatch(/^kms-envelope: ERR_KMS: .*NotFoundException/);

    const noInput = await cli(['encrypt', '--local', localDir, '--key', 'alias/cli', '-i', p('does-not-exist')]);
    expect(noInput.code).toBe(11);
    expect(noInput.stderr).toMatch(/^kms-envelope: ERR_IO: /);
  });
});

describe('kms-envelope interrupted', () => {
  it('removes its temporary file on SIGINT and exits 130, leaving no output', async () => {
    const child = spawn(process.execPath, [MAIN, 'encrypt', '--local', localDir, '--key', 'alias/cli', '-o', p('int.enc')], {
      env: cleanEnv(),
      cwd: dir,
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
    // The child exits with part of this input unread: the pipe then fails with EPIPE, which is expected.
    child.stdin.on('error', () => undefined);
    // Feed some input but never end it, so the run is mid-way when the signal comes.
    child.stdin.write(randomBytes(512 * 1024));
    const temps = () => readdirSync(dir).filter((n) => n.startsWith('.int.enc.') && n.endsWith('.tmp'));
    for (let i = 0; i < 200 && temps().length === 0; i++) await new Promise((r) => setTimeout(r, 25));
    expect(temps()).toHaveLength(1);
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(temps()).toEqual([]);
    expect(existsSync(p('int.enc'))).toBe(false);
  });
});

describe('kms-envelope with --endpoint (local KMS server)', () => {
  it('round-trips with dummy credentials, and its output is an ordinary ESDK message', async () => {
    const plain = randomBytes(70_000);
    const enc = await cli(['encrypt', '--endpoint', server.url, '--key', serverArn, '-c', 'purpose=interop'], { input: plain });
    expect(enc.stderr).toBe('');
    expect(enc.code).toBe(0);

    // Decrypt with the AWS Encryption SDK, its KMS keyring talking to the same server.
    const esdkKms = new KMS({ endpoint: server.url, region: 'us-east-1', credentials: CREDENTIALS });
    try {
      const { decrypt, encrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
      const keyring = new KmsKeyringNode({ keyIds: [serverArn], clientProvider: () => esdkKms });
      const { plaintext, messageHeader } = await decrypt(keyring, enc.stdout);
      expect(Buffer.from(plaintext).equals(plain)).toBe(true);
      expect(messageHeader.encryptionContext).toEqual({ purpose: 'interop' });

      // And the other way: an ESDK message decrypts with the CLI (discovery, no --key).
      const esdkKeyring = new KmsKeyringNode({ generatorKeyId: otherServerArn, clientProvider: () => esdkKms });
      const { result } = await encrypt(esdkKeyring, plain, { encryptionContext: { from: 'esdk' } });
      const dec = await cli(['decrypt', '--endpoint', server.url, '-c', 'from=esdk'], { input: Buffer.from(result) });
      expect(dec.stderr).toBe('');
      expect(dec.code).toBe(0);
      expect(dec.stdout.equals(plain)).toBe(true);
    } finally {
      esdkKms.destroy();
    }
  });

  it('reads legacy v1 ESDK messages only with --allow-legacy', async () => {
    const esdkKms = new KMS({ endpoint: server.url, region: 'us-east-1', credentials: CREDENTIALS });
    try {
      const { encrypt } = buildClient(CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT);
      const keyring = new KmsKeyringNode({ generatorKeyId: serverArn, clientProvider: () => esdkKms });
      const { result } = await encrypt(keyring, Buffer.from('legacy'), { encryptionContext: { v: '1' } });
      expect(result[0]).toBe(0x01);
      const refused = await cli(['decrypt', '--endpoint', server.url], { input: Buffer.from(result) });
      expect(refused.code).toBe(8);
      expect(refused.stderr).toMatch(/^kms-envelope: ERR_COMMITMENT_POLICY: /);
      const allowed = await cli(['decrypt', '--endpoint', server.url, '--allow-legacy', '-c', 'v=1'], { input: Buffer.from(result) });
      expect(allowed.code).toBe(0);
      expect(allowed.stdout.toString()).toBe('legacy');
    } finally {
      esdkKms.destroy();
    }
  });

  it('reports an unreachable endpoint as a KMS error (exit 4)', async () => {
    const r = await cli(['encrypt', '--endpoint', 'http://127.0.0.1:9', '--key', serverArn], { input: Buffer.from('x') });
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/^kms-envelope: ERR_KMS: /);
  });
});

describe('kms-envelope local-kms', () => {
  it('prints its URL for --port 0, serves the KMS protocol, and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, [MAIN, 'local-kms', '--port', '0', '--data-dir', p('served-kms')], {
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const line = await new Promise<string>((res, rej) => {
        const rl = createInterface({ input: child.stdout });
        rl.once('line', res);
        child.once('exit', (code) => rej(new Error(`local-kms exited early with ${code}`)));
      });
      const m = /^listening on (http:\/\/127\.0\.0\.1:(\d+))$/.exec(line);
      expect(m, line).not.toBeNull();
      expect(Number(m![2])).toBeGreaterThan(0);

      const client = new KMSClient({ endpoint: m![1], region: 'us-east-1', credentials: CREDENTIALS });
      try {
        const arn = (await client.send(new CreateKeyCommand({}))).KeyMetadata!.Arn!;
        expect((await client.send(new ListKeysCommand({}))).Keys?.map((k) => k.KeyArn)).toContain(arn);
        // And the CLI can use the server it started.
        const enc = await cli(['encrypt', '--endpoint', m![1], '--key', arn], { input: Buffer.from('served') });
        expect(enc.code).toBe(0);
        const dec = await cli(['decrypt', '--endpoint', m![1]], { input: enc.stdout });
        expect(dec.stdout.toString()).toBe('served');
      } finally {
        client.destroy();
      }
    } finally {
      const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  });
});
