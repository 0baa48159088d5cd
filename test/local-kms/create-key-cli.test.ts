/**
 * `kms-envelope local-kms create-key`: a key and an alias in a data directory with no server and
 * no AWS CLI, usable right away by `kms-envelope encrypt --local DIR`. Runs the built bin
 * (`npm test` builds dist/ first).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { tempDir } from './helpers.js';

const MAIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const t = tempDir('lkms-create-key-');
afterAll(() => t.cleanup());

const cli = (args: string[], input?: Buffer) => {
  const r = spawnSync(process.execPath, [MAIN, ...args], { input, env: { ...process.env, NODE_OPTIONS: '' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
};

it('creates a key and its alias, prints only the ARN, and the CLI encrypts under the alias', () => {
  expect(existsSync(MAIN), 'dist/ is missing: run `npm run build`').toBe(true);
  const dir = join(t.dir, 'kms');
  const made = cli(['local-kms', 'create-key', '--data-dir', dir, '--alias', 'alias/app', '--description', 'app key']);
  expect(made.stderr).toBe('');
  expect(made.status).toBe(0);
  expect(made.stdout.toString()).toMatch(/^arn:aws:kms:us-east-1:111122223333:key\/[0-9a-f-]{36}\n$/);

  const message = join(t.dir, 'm.enc');
  expect(cli(['encrypt', '--local', dir, '--key', 'alias/app', '-o', message], Buffer.from('hello')).status).toBe(0);
  const back = cli(['decrypt', '--local', dir, '-i', message, '-o', '-']);
  expect(back.status).toBe(0);
  expect(back.stdout.toString()).toBe('hello');
});

it('refuses a taken alias without leaving a second key, and reports usage errors with exit 2', () => {
  const dir = join(t.dir, 'kms2');
  expect(cli(['local-kms', 'create-key', '--data-dir', dir, '--alias', 'alias/app']).status).toBe(0);
  const again = cli(['local-kms', 'create-key', '--data-dir', dir, '--alias', 'alias/app']);
  expect(again.status).toBe(4); // ERR_KMS, as encrypt reports a KMS refusal
  expect(again.stderr).toMatch(/AlreadyExistsException/);
  expect(readdirSync(join(dir, 'keys')).filter((n) => n.endsWith('.json'))).toHaveLength(1);

  expect(cli(['local-kms', 'create-key', '--alias', 'alias/x']).status).toBe(2);
  expect(cli(['local-kms', 'create-key', '--data-dir', dir, '--alias', 'app']).stderr).toMatch(/--alias must start with alias\//);
  expect(cli(['local-kms', 'create-key', '--data-dir', '--alias', 'alias/x']).status).toBe(2);
  expect(cli(['local-kms', 'create-key', '--data-dir', dir, '--key-spec', 'NOPE']).status).toBe(4);
  expect(cli(['local-kms', 'create-key', '--help']).stdout.toString()).toMatch(/^Usage: kms-envelope local-kms create-key/);
});

it('--multi-region with --replica-region makes a primary and its replicas, one ARN per line; the data directory then serves each Region', async () => {
  const dir = join(t.dir, 'kms-mrk');
  const made = cli(['local-kms', 'create-key', '--data-dir', dir, '--multi-region', '--replica-region', 'eu-west-1', '--replica-region', 'ap-south-1']);
  expect(made.stderr).toBe('');
  expect(made.status).toBe(0);
  const arns = made.stdout.toString().trim().split('\n');
  expect(arns).toHaveLength(3);
  const id = /key\/(mrk-[0-9a-f]{32})$/.exec(arns[0]!)?.[1];
  expect(id).toBeDefined();
  expect(arns).toEqual(['us-east-1', 'eu-west-1', 'ap-south-1'].map((r) => `arn:aws:kms:${r}:111122223333:key/${id}`));
  const { LocalKms } = await import('../../src/local-kms/index.js');
  const kms = new LocalKms({ dataDir: dir });
  try {
    const md = (await kms.client({ region: 'ap-south-1' }).call('DescribeKey', { KeyId: id })).KeyMetadata as { MultiRegionConfiguration: { MultiRegionKeyType: string } };
    expect(md.MultiRegionConfiguration.MultiRegionKeyType).toBe('REPLICA');
  } finally {
    kms.close();
  }
  expect(cli(['local-kms', 'create-key', '--data-dir', dir, '--replica-region', 'eu-west-1']).stderr).toMatch(/--replica-region needs --multi-region/);
});
