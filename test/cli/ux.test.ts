/**
 * What the CLI tells its user, spawned as users run it (`npm run build` first): frame lengths the
 * CLI writes are frame lengths it reads, limits name the flag that raises them, errors name what
 * the user gave (keys, paths, profiles, directories), local-kms errors have the common format,
 * and the help's example and exit-status table hold up.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildClient, CommitmentPolicy, KmsKeyringNode } from '@aws-crypto/client-node';
import { CreateKeyCommand, KMS, KMSClient } from '@aws-sdk/client-kms';
import { Envelope, KmsKeyring } from '../../src/index.js';
import { LocalKms, startLocalKmsServer, type LocalKmsServer } from '../../src/local-kms/index.js';
import { runCli, type CliResult } from '../support/cli.js';

const ROOT = resolve(__dirname, '../..');
const MAIN = join(ROOT, 'dist/cli/main.js');
const CREDENTIALS = { accessKeyId: 'AKIDCLIUXTEST000', secretAccessKey: 'cli-ux-secret' };

let dir: string;
let localDir: string;
let arnA: string;
let arnB: string;

const p = (name: string) => join(dir, name);
const cleanEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({ PATH: process.env.PATH ?? '', HOME: dir, ...extra });

function cli(args: string[], opts: { input?: Buffer; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return runCli(MAIN, args, { cwd: dir, env: opts.env ?? cleanEnv(), input: opts.input });
}

beforeAll(async () => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first (npm test does)`);
  dir = mkdtempSync(join(tmpdir(), 'kms-envelope-cli-ux-'));
  localDir = p('kms');
  const local = new LocalKms({ dataDir: localDir });
  arnA = (await local.createKey({})).arn;
  arnB = (await local.createKey({})).arn;
  local.close();
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A message written by the library with `frameLength`, under key A of the local KMS. */
async function libraryMessage(plaintext: Buffer, frameLength: number): Promise<Buffer> {
  const local = new LocalKms({ dataDir: localDir });
  try {
    const envelope = new Envelope({ keyring: new KmsKeyring({ keyIds: [arnA], client: local.client() }), cache: false, frameLength });
    return await envelope.encrypt(plaintext);
  } finally {
    local.close();
  }
}

describe('frame length: what the CLI writes, its decrypt reads', () => {
  it('encrypt refuses --frame-length over 16 MiB (the default --max-frame-length of decrypt), exit 2', async () => {
    const r = await cli(['encrypt', '--local', localDir, '--key', arnA, '--frame-length', String(32 << 20)], { input: Buffer.from('x') });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^kms-envelope: ERR_USAGE: --frame-length .*16777216.*--max-frame-length/);
    expect(r.stdout.length).toBe(0);
  });

  it('16 MiB frames round-trip with default options', async () => {
    const plain = randomBytes(1000);
    const enc = await cli(['encrypt', '--local', localDir, '--key', arnA, '--frame-length', String(16 << 20)], { input: plain });
    expect(enc.stderr).toBe('');
    expect(enc.code).toBe(0);
    const dec = await cli(['decrypt', '--local', localDir], { input: enc.stdout });
    expect(dec.stderr).toBe('');
    expect(dec.stdout.equals(plain)).toBe(true);
  });

  it('a 32 MiB-frame message: refused naming --max-frame-length without it, decrypted with it (file and pipe)', async () => {
    const plain = randomBytes((32 << 20) + 5); // one full 32 MiB frame and a final one
    writeFileSync(p('big.enc'), await libraryMessage(plain, 32 << 20));

    const refused = await cli(['decrypt', '--local', localDir, '-i', p('big.enc'), '-o', p('big.out')]);
    expect(refused.code).toBe(9);
    expect(refused.stderr).toMatch(/^kms-envelope: ERR_LIMIT_EXCEEDED: .*33554432.*--max-frame-length/);
    expect(refused.stderr).not.toMatch(/maxFrameLength/);
    expect(existsSync(p('big.out'))).toBe(false);

    const file = await cli(['decrypt', '--local', localDir, '--max-frame-length', String(32 << 20), '-i', p('big.enc'), '-o', p('big.out')]);
    expect(file.stderr).toBe('');
    expect(file.code).toBe(0);
    expect(readFileSync(p('big.out')).equals(plain)).toBe(true);

    const pipe = await cli(['decrypt', '--local', localDir, '--max-frame-length=33554432'], { input: readFileSync(p('big.enc')) });
    expect(pipe.stderr).toBe('');
    expect(pipe.code).toBe(0);
    expect(pipe.stdout.equals(plain)).toBe(true);
  });

  it('--max-frame-length takes 1 .. 4294967295 bytes', async () => {
    for (const bad of ['0', '4294967296', 'x', '1.5']) {
      const r = await cli(['decrypt', '--local', localDir, '--max-frame-length', bad], { input: Buffer.from('x') });
      expect(r.code, bad).toBe(2);
      expect(r.stderr, bad).toMatch(/^kms-envelope: ERR_USAGE: --max-frame-length must be an integer number of bytes from 1 to 4294967295/);
    }
  });
});

describe('errors name what the user gave', () => {
  let server: LocalKmsServer;
  let serverArn: string;
  beforeAll(async () => {
    server = await startLocalKmsServer({ port: 0, dataDir: p('server-kms') });
    const sdk = new KMSClient({ endpoint: server.url, region: 'us-east-1', credentials: CREDENTIALS });
    serverArn = (await sdk.send(new CreateKeyCommand({}))).KeyMetadata!.Arn!;
    sdk.destroy();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('a legacy message: ERR_COMMITMENT_POLICY names --allow-legacy, not a library option', async () => {
    const esdkKms = new KMS({ endpoint: server.url, region: 'us-east-1', credentials: CREDENTIALS });
    try {
      const { encrypt } = buildClient(CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT);
      const keyring = new KmsKeyringNode({ generatorKeyId: serverArn, clientProvider: () => esdkKms });
      const { result } = await encrypt(keyring, Buffer.from('legacy'));
      const r = await cli(['decrypt', '--endpoint', server.url], { input: Buffer.from(result) });
      expect(r.code).toBe(8);
      expect(r.stderr).toMatch(/^kms-envelope: ERR_COMMITMENT_POLICY: .*--allow-legacy/);
      expect(r.stderr).not.toMatch(/commitmentPolicy|REQUIRE_ENCRYPT/);
    } finally {
      esdkKms.destroy();
    }
  });

  it('decrypt with keys the message does not name: says which key the message names and which are allowed', async () => {
    const enc = await cli(['encrypt', '--local', localDir, '--key', arnA], { input: Buffer.from('mine') });
    expect(enc.code).toBe(0);
    const wrongKey = await cli(['decrypt', '--local', localDir, '--key', arnB], { input: enc.stdout });
    expect(wrongKey.code).toBe(7);
    expect(wrongKey.stderr).toMatch(/^kms-envelope: ERR_NO_DECRYPTABLE_KEY: /);
    expect(wrongKey.stderr).toContain(arnA);
    expect(wrongKey.stderr).toContain(arnB);
    expect(wrongKey.stderr).toContain('--key');

    const wrongAccount = await cli(['decrypt', '--local', localDir, '--allow-account', '999988887777'], { input: enc.stdout });
    expect(wrongAccount.code).toBe(7);
    expect(wrongAccount.stderr).toContain(arnA);
    expect(wrongAccount.stderr).toContain('999988887777');
    expect(wrongAccount.stderr).toContain('--allow-account');
  });

  it('a missing output directory names the path given to -o, not the temporary file', async () => {
    writeFileSync(p('in.txt'), 'x');
    for (const [cmd, extra] of [
      ['encrypt', ['--key', arnA]],
      ['decrypt', []],
    ] as const) {
      for (const input of [['-i', p('in.txt')], []]) {
        const r = await cli([cmd, '--local', localDir, ...extra, ...input, '-o', 'nosuchdir/out'], { input: Buffer.from('x') });
        expect(r.code, `${cmd} ${input.join(' ')}`).toBe(11);
        expect(r.stderr).toMatch(/^kms-envelope: ERR_IO: -o "nosuchdir\/out": .*directory.*does not exist/);
        expect(r.stderr).not.toMatch(/\.tmp/);
      }
    }
  });

  it('two --local commands on one directory: says another kms-envelope process holds it', async () => {
    const holder = spawn(process.execPath, [MAIN, 'encrypt', '--local', localDir, '--key', arnA, '-o', p('held.enc')], {
      env: cleanEnv(),
      cwd: dir,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    const exited = new Promise<number | null>((res) => holder.once('exit', (code) => res(code)));
    holder.stdin.on('error', () => undefined);
    holder.stdin.write(Buffer.alloc(1024)); // never ended: the holder keeps the directory
    try {
      for (let i = 0; i < 400 && !existsSync(join(localDir, 'lock')); i++) await new Promise((r) => setTimeout(r, 25));
      expect(existsSync(join(localDir, 'lock'))).toBe(true);
      const r = await cli(['encrypt', '--local', localDir, '--key', arnA], { input: Buffer.from('x') });
      expect(r.code).toBe(11);
      expect(r.stderr).toMatch(/^kms-envelope: ERR_IO: --local .*another kms-envelope process \(pid \d+\) holds it/);
      expect(r.stderr).not.toMatch(/a local KMS server owns it/);
    } finally {
      holder.kill('SIGTERM');
      await exited;
    }
  });

  it('--profile that is in neither AWS file: says the profile was not found and where it looked', async () => {
    const aws = join(dir, 'aws-home');
    mkdirSync(aws, { recursive: true });
    writeFileSync(join(aws, 'conf'), '[profile other]\nregion = eu-west-1\n');
    writeFileSync(join(aws, 'creds'), '[other]\naws_access_key_id = AKIDOTHER\naws_secret_access_key = x\n');
    const env = cleanEnv({ HOME: aws, AWS_CONFIG_FILE: join(aws, 'conf'), AWS_SHARED_CREDENTIALS_FILE: join(aws, 'creds') });
    const r = await cli(['encrypt', '--profile', 'nosuch', '--key', 'alias/x'], { input: Buffer.from('x'), env });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^kms-envelope: ERR_NO_KMS: --profile "nosuch": profile not found/);
    expect(r.stderr).toContain(join(aws, 'conf'));
    expect(r.stderr).toContain(join(aws, 'creds'));
    expect(r.stderr).not.toMatch(/no AWS region/);

    // The default locations under HOME when the variables are unset.
    mkdirSync(join(aws, '.aws'), { recursive: true });
    writeFileSync(join(aws, '.aws', 'config'), '[default]\nregion = eu-west-1\n');
    const home = await cli(['decrypt', '--profile', 'nosuch'], { input: Buffer.from('x'), env: cleanEnv({ HOME: aws }) });
    expect(home.code).toBe(2);
    expect(home.stderr).toMatch(/^kms-envelope: ERR_NO_KMS: --profile "nosuch": profile not found/);
    expect(home.stderr).toContain(join(aws, '.aws', 'config'));
  });

  it('local-kms errors use the common format and exit statuses (usage 2, KMS 4, I/O 11)', async () => {
    const usage = await cli(['local-kms', '--port', '99999']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^kms-envelope: ERR_USAGE: local-kms: --port must be 0-65535, got 99999/);

    const policy = await cli(['local-kms', 'key-policy', '--bogus']);
    expect(policy.code).toBe(2);
    expect(policy.stderr).toMatch(/^kms-envelope: ERR_USAGE: local-kms key-policy: /);

    const kmsDir = p('lkms');
    expect((await cli(['local-kms', 'create-key', '--data-dir', kmsDir, '--alias', 'alias/app'])).code).toBe(0);
    const taken = await cli(['local-kms', 'create-key', '--data-dir', kmsDir, '--alias', 'alias/app']);
    expect(taken.code).toBe(4);
    expect(taken.stderr).toMatch(/^kms-envelope: ERR_KMS: local-kms create-key: AlreadyExistsException: /);

    const badSpec = await cli(['local-kms', 'create-key', '--data-dir', kmsDir, '--key-spec', 'NOPE']);
    expect(badSpec.code).toBe(4);
    expect(badSpec.stderr).toMatch(/^kms-envelope: ERR_KMS: /);

    const missingArg = await cli(['local-kms', 'create-key', '--alias', 'alias/x']);
    expect(missingArg.code).toBe(2);
    expect(missingArg.stderr).toMatch(/^kms-envelope: ERR_USAGE: local-kms create-key: --data-dir is required/);

    // A file where the data directory should be: the server cannot start.
    writeFileSync(p('not-a-dir'), 'x');
    const cannot = await cli(['local-kms', '--port', '0', '--data-dir', p('not-a-dir')]);
    expect(cannot.code).toBe(11);
    expect(cannot.stderr).toMatch(/^kms-envelope: ERR_IO: local-kms: cannot start: /);
    expect(readdirSync(dir)).toContain('not-a-dir');
  });
});

describe('--help', () => {
  it('the offline example sets a region and credentials for the AWS CLI', async () => {
    const help = (await cli(['--help'])).stdout.toString();
    expect(help).not.toMatch(/any credentials work/);
    const example = help.slice(help.indexOf('Examples'));
    const firstAws = example.indexOf('aws --endpoint-url');
    expect(firstAws).toBeGreaterThan(0);
    const before = example.slice(0, firstAws);
    expect(before).toMatch(/AWS_REGION=\S+/);
    expect(before).toMatch(/AWS_ACCESS_KEY_ID=\S+/);
    expect(before).toMatch(/AWS_SECRET_ACCESS_KEY=\S+/);
  });

  it('the exit-status table lines up: every meaning starts in the same column', async () => {
    const help = (await cli(['--help'])).stdout.toString();
    const lines = help.slice(help.indexOf('Exit status:')).split('\n').slice(1).filter((l) => l.length > 0);
    const rows = lines.filter((l) => /^\s+\d/.test(l));
    expect(rows.length).toBeGreaterThanOrEqual(14);
    const columns = new Set(rows.map((l) => /^\s+[\d/]+ +/.exec(l)![0].length));
    expect([...columns]).toHaveLength(1);
    const [col] = [...columns];
    // Statuses are right-aligned, continuation lines indented to the meaning column.
    const ends = new Set(rows.map((l) => /^\s+[\d/]+/.exec(l)![0].length));
    expect([...ends]).toHaveLength(1);
    for (const l of lines.filter((x) => !/^\s+\d/.test(x))) expect(/^ */.exec(l)![0].length, l).toBe(col);
    expect(help).toMatch(/130\/143 +interrupted/);
    for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(100);
  });
  it('local-kms --help: what happens without --principals names the option (not "it" after the policies text)', async () => {
    const help = (await cli(['local-kms', '--help'])).stdout.toString().replace(/\s+/g, ' ');
    expect(help).toContain('Without --principals every caller is the account root.');
    expect(help).not.toMatch(/Without it every caller/);
  });
});
