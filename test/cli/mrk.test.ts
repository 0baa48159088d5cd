/**
 * `kms-envelope encrypt|decrypt` with multi-Region keys, spawned as users run it, against the
 * multi-Region local KMS: its HTTP server (`--endpoint`) and embedded (`--local DIR`). A
 * multi-Region key is made in us-east-1 and replicated to eu-west-1. That a decrypt sent nothing
 * to us-east-1 is shown by disabling the primary there first: any request to it would fail.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KMS } from '@aws-sdk/client-kms';
import { LocalKms, startLocalKmsServer, type LocalKmsServer } from '../../src/local-kms/index.js';
import { runCli, type CliResult } from '../support/cli.js';

const MAIN = join(resolve(__dirname, '../..'), 'dist/cli/main.js');
const CREDENTIALS = { accessKeyId: 'AKIDCLIMRKTEST00', secretAccessKey: 'cli-mrk-secret' };
const EAST = 'us-east-1';
const WEST = 'eu-west-1';
const PLAIN = Buffer.from('multi-Region plaintext\n');

let dir: string;
const cleanEnv = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH ?? '', HOME: dir });
const cli = (args: string[], input?: Buffer): Promise<CliResult> => runCli(MAIN, args, { cwd: dir, env: cleanEnv(), input });
const inWest = (arn: string) => arn.replace(`:${EAST}:`, `:${WEST}:`);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kms-envelope-cli-mrk-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('kms-envelope --key with multi-Region keys: checks before any request', () => {
  it('encrypt and decrypt refuse a primary and its replica given together with --key (exit 2, ERR_USAGE, naming both)', async () => {
    const primary = 'arn:aws:kms:us-east-1:111122223333:key/mrk-4321abcd12ab34cd56ef1234567890ab';
    for (const cmd of ['encrypt', 'decrypt']) {
      // Port 9 (discard) answers nothing: the command must stop before any request.
      const r = await cli([cmd, '--endpoint', 'http://127.0.0.1:9', '--key', primary, '--key', inWest(primary)], Buffer.from('x'));
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/^kms-envelope: ERR_USAGE: --key names the same multi-Region key more than once/);
      expect(r.stderr).toContain(JSON.stringify(inWest(primary)));
    }
  });
});

describe('kms-envelope with multi-Region keys (--endpoint, local KMS server)', () => {
  let server: LocalKmsServer;
  let east: KMS;
  let primary: string;
  let single: string;
  let message: Buffer;
  let singleMessage: Buffer;

  beforeAll(async () => {
    server = await startLocalKmsServer({ port: 0 });
    east = new KMS({ region: EAST, endpoint: server.url, credentials: CREDENTIALS });
    const md = (await east.createKey({ MultiRegion: true, Description: 'cli mrk' })).KeyMetadata!;
    primary = md.Arn!;
    await east.replicateKey({ KeyId: md.KeyId!, ReplicaRegion: WEST });
    single = (await east.createKey({})).KeyMetadata!.Arn!;
    const enc = await cli(['encrypt', '--endpoint', server.url, '--key', primary, '-c', 'app=mrk'], PLAIN);
    expect(enc.code, enc.stderr).toBe(0);
    message = enc.stdout;
    const encSingle = await cli(['encrypt', '--endpoint', server.url, '--key', single], PLAIN);
    expect(encSingle.code, encSingle.stderr).toBe(0);
    singleMessage = encSingle.stdout;
    // From here on, a request to the primary in us-east-1 fails: what succeeds went to eu-west-1.
    await east.disableKey({ KeyId: md.KeyId! });
  });
  afterAll(async () => {
    east?.destroy();
    await server?.close();
  });

  it('decrypt --key <eu-west-1 replica ARN> decrypts a message written with the us-east-1 primary, without calling us-east-1', async () => {
    const r = await cli(['decrypt', '--endpoint', server.url, '--key', inWest(primary), '-c', 'app=mrk'], message);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.equals(PLAIN)).toBe(true);
    // The primary's own ARN now fails (it is disabled): the CLI really asks the --key ARN's Region.
    const viaPrimary = await cli(['decrypt', '--endpoint', server.url, '--key', primary], message);
    expect(viaPrimary.code).toBe(7);
  });

  it('decrypt --region eu-west-1 (no --key) decrypts with the replica there; without --region the message\'s Region is asked', async () => {
    const r = await cli(['decrypt', '--endpoint', server.url, '--region', WEST], message);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.equals(PLAIN)).toBe(true);
    const plain = await cli(['decrypt', '--endpoint', server.url], message);
    expect(plain.code).toBe(7);
  });

  it('single-Region keys keep strict matching: --key with its ARN in another Region, or --region another Region, decrypts nothing and says why (exit 7, no request)', async () => {
    const byKey = await cli(['decrypt', '--endpoint', server.url, '--key', inWest(single)], singleMessage);
    expect(byKey.code).toBe(7);
    expect(byKey.stderr).toMatch(/not by a key given with --key/);
    const byRegion = await cli(['decrypt', '--endpoint', server.url, '--region', WEST], singleMessage);
    expect(byRegion.code).toBe(7);
    expect(byRegion.stderr).toMatch(/not by a multi-Region key or a key in eu-west-1 .*--region eu-west-1/);
    const ok = await cli(['decrypt', '--endpoint', server.url, '--key', single], singleMessage);
    expect(ok.code, ok.stderr).toBe(0);
  });
});

describe('kms-envelope with multi-Region keys (--local DIR)', () => {
  it('encrypt --key <primary>, then decrypt --key <replica> and decrypt --region eu-west-1 with the primary disabled', async () => {
    const localDir = join(dir, 'local-kms');
    const kms = new LocalKms({ dataDir: localDir });
    const created = await kms.client().call('CreateKey', { MultiRegion: true });
    const md = created.KeyMetadata as { Arn: string; KeyId: string };
    await kms.client().call('ReplicateKey', { KeyId: md.KeyId, ReplicaRegion: WEST });
    kms.close();
    const enc = await cli(['encrypt', '--local', localDir, '--key', md.Arn], PLAIN);
    expect(enc.code, enc.stderr).toBe(0);
    const again = new LocalKms({ dataDir: localDir });
    await again.client().call('DisableKey', { KeyId: md.KeyId });
    again.close();
    for (const args of [['--key', inWest(md.Arn)], ['--region', WEST]]) {
      const r = await cli(['decrypt', '--local', localDir, ...args], enc.stdout);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      expect(r.stdout.equals(PLAIN)).toBe(true);
    }
    const viaPrimary = await cli(['decrypt', '--local', localDir], enc.stdout);
    expect(viaPrimary.code).toBe(7);
  });

  it('decrypt --local DIR --region <a Region outside its partition> is a usage error (exit 2) naming --region, and leaves the directory usable', async () => {
    const localDir = join(dir, 'local-kms-2');
    const r = await cli(['decrypt', '--local', localDir, '--region', 'cn-north-1'], Buffer.from('x'));
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^kms-envelope: ERR_USAGE: --region cn-north-1: .*partition/);
    new LocalKms({ dataDir: localDir }).close(); // not left locked
  });
});
