/**
 * `kms-envelope branch-key create|version|describe` and `encrypt|decrypt --branch-key ID`, spawned
 * as users run them (`node dist/cli/main.js`; `npm run build` first), against the embedded local
 * KMS (`--local DIR`) with a directory store (`--branch-key-store DIR`), and one DynamoDB table
 * path against dynalite: dynalite has no TransactWriteItems, so `branch-key create` there fails
 * with the store's typed reason; encrypt/decrypt read items written into the table by the test
 * storage (test/support/dynamodb-branch-storage.ts: conditional puts, no transaction).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalKms } from '../../src/local-kms/index.js';
import { BranchKeyStore } from '../../src/keyrings/hierarchy/index.js';
import { parseHeader } from '../../src/format/header.js';
import { Envelope } from '../../src/envelope.js';
import { randomBytes } from 'node:crypto';
import { runCli, type CliResult } from '../support/cli.js';
import { DynamoDBClient, DynamoTestBranchKeyStorage, startDynalite, TEST_CREDENTIALS } from '../support/dynamodb-branch-storage.js';

const ROOT = resolve(__dirname, '../..');
const MAIN = join(ROOT, 'dist/cli/main.js');

let dir: string;
let kmsDir: string;
let arn: string;

const cleanEnv = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH ?? '', HOME: dir });
const cli = (args: string[], input?: Buffer): Promise<CliResult> => runCli(MAIN, args, { cwd: dir, env: cleanEnv(), input });
const p = (name: string) => join(dir, name);
const store = () => ['--local', kmsDir, '--branch-key-store', p('bk'), '--logical-key-store-name', 'app'];
const fields = (r: CliResult): Record<string, string> =>
  Object.fromEntries(
    r.stdout
      .toString()
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2)]),
  );

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kms-envelope-cli-bk-'));
  kmsDir = p('kms');
  const kms = new LocalKms({ dataDir: kmsDir });
  arn = (await kms.createKey({ Description: 'branch keys' })).arn;
  kms.close();
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('branch-key with a directory store and --local KMS', () => {
  it('create, encrypt, decrypt, version, the old message still decrypts, describe shows the active version', async () => {
    const plain = Buffer.from('hierarchical keyring from the command line\n');
    writeFileSync(p('a.txt'), plain);

    const created = await cli(['branch-key', 'create', ...store(), '--key', arn, '--branch-key-id', 'tenant-a', '-c', 'tenant=a']);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    const v1 = fields(created);
    expect(v1['branch-key-id']).toBe('tenant-a');
    expect(v1.version).toMatch(/^[0-9a-f-]{36}$/);

    const enc1 = await cli(['encrypt', ...store(), '--branch-key', 'tenant-a', '-c', 'purpose=test', '-i', p('a.txt'), '-o', p('a1.enc')]);
    expect(enc1.stderr).toBe('');
    expect(enc1.code).toBe(0);
    // One EDK of the hierarchical keyring, naming the branch key (suite 0x0478 by default).
    const header = parseHeader(readFileSync(p('a1.enc')), { maxEncryptedDataKeys: 10 })!;
    expect(header.encryptedDataKeys.map((e) => [e.providerId, Buffer.from(e.providerInfo).toString()])).toEqual([
      ['aws-kms-hierarchy', 'tenant-a'],
    ]);

    const dec1 = await cli(['decrypt', ...store(), '--branch-key', 'tenant-a', '-c', 'purpose=test', '-i', p('a1.enc'), '-o', p('a1.out')]);
    expect(dec1.stderr).toBe('');
    expect(dec1.code).toBe(0);
    expect(readFileSync(p('a1.out'))).toEqual(plain);

    const rotated = await cli(['branch-key', 'version', ...store(), '--key', arn, '--branch-key', 'tenant-a']);
    expect(rotated.code).toBe(0);
    const v2 = fields(rotated);
    expect(v2['branch-key-id']).toBe('tenant-a');
    expect(v2.version).not.toBe(v1.version);

    const described = await cli(['branch-key', 'describe', ...store(), '--branch-key', 'tenant-a']);
    expect(described.stderr).toBe('');
    expect(described.code).toBe(0);
    const d = fields(described);
    expect(d).toMatchObject({ 'branch-key-id': 'tenant-a', version: v2.version, 'kms-arn': arn, 'logical-key-store-name': 'app', context: 'tenant=a' });
    expect(d['create-time']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    expect(Object.keys(d).sort()).toEqual(['branch-key-id', 'context', 'create-time', 'kms-arn', 'logical-key-store-name', 'version']);

    // The message from before the rotation still decrypts (its version's item stays); a new one uses v2.
    const old = await cli(['decrypt', ...store(), '--branch-key', 'tenant-a', '-i', p('a1.enc')]);
    expect(old.code).toBe(0);
    expect(old.stdout).toEqual(plain);
    const enc2 = await cli(['encrypt', ...store(), '--branch-key', 'tenant-a', '--cache-ttl', '5', '-i', p('a.txt'), '-o', p('a2.enc')]);
    expect(enc2.code).toBe(0);
    const dec2 = await cli(['decrypt', ...store(), '--key', arn, '--branch-key', 'tenant-a', '-i', p('a2.enc')]);
    expect(dec2.code).toBe(0);
    expect(dec2.stdout).toEqual(plain);
  });

  it('a message the given keys cannot open says which branch key it names: wrong --branch-key, no --branch-key, --branch-key on a KMS message', async () => {
    writeFileSync(p('w.txt'), 'which key?\n');
    expect((await cli(['branch-key', 'create', ...store(), '--key', arn, '--branch-key-id', 'tenant-w', '-c', 'tenant=w'])).code).toBe(0);
    expect((await cli(['branch-key', 'create', ...store(), '--key', arn, '--branch-key-id', 'tenant-x', '-c', 'tenant=x'])).code).toBe(0);
    expect((await cli(['encrypt', ...store(), '--branch-key', 'tenant-w', '-i', p('w.txt'), '-o', p('w.enc')])).code).toBe(0);

    const wrong = await cli(['decrypt', ...store(), '--branch-key', 'tenant-x', '-i', p('w.enc'), '-o', p('w.out')]);
    expect(wrong.code).toBe(7);
    expect(wrong.stderr.toString()).toContain('ERR_NO_DECRYPTABLE_KEY');
    expect(wrong.stderr.toString()).toContain('wrapped by branch key "tenant-w" (a hierarchical keyring), not by the branch key given with --branch-key ("tenant-x")');

    const none = await cli(['decrypt', '--local', kmsDir, '-i', p('w.enc'), '-o', p('w.out')]);
    expect(none.code).toBe(7);
    expect(none.stderr.toString()).toContain('wrapped by branch key "tenant-w" (a hierarchical keyring), and none of them is a KMS key (decrypt with --branch-key ID');

    expect((await cli(['encrypt', '--local', kmsDir, '--key', arn, '-i', p('w.txt'), '-o', p('k.enc')])).code).toBe(0);
    const kmsMessage = await cli(['decrypt', ...store(), '--branch-key', 'tenant-w', '-i', p('k.enc'), '-o', p('k.out')]);
    expect(kmsMessage.code).toBe(7);
    expect(kmsMessage.stderr.toString()).toContain(`wrapped by ${JSON.stringify(arn)}, not by the branch key given with --branch-key ("tenant-w")`);
    // Nothing written for any of the three.
    expect(() => readFileSync(p('w.out'))).toThrow();
    expect(() => readFileSync(p('k.out'))).toThrow();
  });

  it('a hostile header cannot drive the terminal through the error: control, C1 and bidi characters of a branch key id are escaped, on one line', async () => {
    // A message whose one EDK claims a branch key id with ESC, CSI (U+009B), a newline and a
    // right-to-left override; its ciphertext is noise. Written by the library with a keyring of the test's.
    const id = 'evil\u001b[2J\u009b31m\nnext\u202eid';
    const envelope = new Envelope({
      keyring: {
        onEncrypt: async () => ({
          dataKey: randomBytes(32),
          encryptedDataKeys: [{ providerId: 'aws-kms-hierarchy', providerInfo: Buffer.from(id), ciphertext: randomBytes(92) }],
        }),
        onDecrypt: async () => undefined,
      },
    });
    writeFileSync(p('hostile.enc'), await envelope.encrypt('x'));
    for (const args of [['--local', kmsDir], [...store(), '--branch-key', 'tenant-w']]) {
      const r = await cli(['decrypt', ...args, '-i', p('hostile.enc'), '-o', p('hostile.out')]);
      expect(r.code).toBe(7);
      const err = r.stderr.toString();
      expect(err.split('\n')).toHaveLength(2); // one line, then the final newline
      expect(err).not.toMatch(/[\u001b\u009b\u202e]/);
      expect(err).toContain('branch key "evil\\u001b[2J\\u009b31m\\nnext\\u202eid"');
    }
  });

  it('describe writes each context pair on one line: a newline or a bidi override in a value is escaped', async () => {
    const created = await cli(['branch-key', 'create', ...store(), '--key', arn, '--branch-key-id', 'odd', '-c', 'note=two\nlines\u202e', '-c', 'path=a\\b']);
    expect(created.code).toBe(0);
    const d = await cli(['branch-key', 'describe', ...store(), '--branch-key', 'odd']);
    expect(d.code).toBe(0);
    const lines = d.stdout.toString().trim().split('\n');
    expect(lines.filter((l) => l.startsWith('context: '))).toEqual(['context: note=two\\u000alines\\u202e', 'context: path=a\\\\b']);
    expect(lines.every((l) => /^[a-z-]+: /.test(l))).toBe(true);
  });

  it('create without --branch-key-id: a random UUID id; stdin to stdout both ways', async () => {
    const created = await cli(['branch-key', 'create', ...store(), '--key', arn]);
    expect(created.code).toBe(0);
    const id = fields(created)['branch-key-id']!;
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const enc = await cli(['encrypt', ...store(), '--branch-key', id, '-o', p('u.enc')], Buffer.from('x'));
    expect(enc.code).toBe(0);
    const dec = await cli(['decrypt', ...store(), '--branch-key', id], readFileSync(p('u.enc')));
    expect(dec.code).toBe(0);
    expect(dec.stdout.toString()).toBe('x');
  });

  it('store failures are ERR_BRANCH_KEY_STORE (exit 13) with the reason first; a wrong logical name fails in KMS (exit 4)', async () => {
    const missing = await cli(['encrypt', ...store(), '--branch-key', 'no-such-key', '-i', p('a.txt'), '-o', p('x.enc')]);
    expect(missing.code).toBe(13);
    expect(missing.stderr).toBe('kms-envelope: ERR_BRANCH_KEY_STORE: NOT_FOUND: no branch:ACTIVE item for branch key "no-such-key"\n');
    const exists = await cli(['branch-key', 'create', ...store(), '--key', arn, '--branch-key-id', 'dup', '-c', 't=1']);
    expect(exists.code).toBe(0);
    const again = await cli(['branch-key', 'create', ...store(), '--key', arn, '--branch-key-id', 'dup', '-c', 't=1']);
    expect(again.code).toBe(13);
    expect(again.stderr).toMatch(/^kms-envelope: ERR_BRANCH_KEY_STORE: BRANCH_KEY_EXISTS: /);
    const versionMissing = await cli(['branch-key', 'version', ...store(), '--key', arn, '--branch-key', 'nope']);
    expect(versionMissing.code).toBe(13);
    const wrongName = await cli(['branch-key', 'describe', '--local', kmsDir, '--branch-key-store', p('bk'), '--logical-key-store-name', 'other', '--branch-key', 'dup']);
    expect(wrongName.code).toBe(4);
    expect(wrongName.stderr).toMatch(/^kms-envelope: ERR_KMS: /);
    // Nothing of a key in any output.
    expect(wrongName.stdout.length).toBe(0);
  });

  it('usage errors exit 2 naming the option, before anything is opened', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['branch-key'], /Usage:/],
      [['branch-key', 'rotate'], /unknown branch-key command "rotate"/],
      [['branch-key', 'create', '--local', kmsDir, '--branch-key-store', p('bk'), '--logical-key-store-name', 'app'], /needs --key KEY_ARN/],
      [['branch-key', 'create', '--local', kmsDir, '--key', arn, '--logical-key-store-name', 'app'], /needs a branch key store: --branch-key-store DIR .* --branch-key-table NAME/],
      [['branch-key', 'create', '--local', kmsDir, '--key', arn, '--branch-key-store', p('bk')], /--logical-key-store-name NAME is required/],
      [['branch-key', 'create', ...store(), '--key', 'alias/app'], /--key "alias\/app": a branch key store needs a KMS key ARN/],
      [['branch-key', 'create', ...store(), '--key', arn, '--branch-key-id', 'x'], /--branch-key-id needs at least one --context/],
      [['branch-key', 'version', ...store(), '--key', arn], /branch-key version needs --branch-key ID/],
      [['branch-key', 'describe', ...store(), '--branch-key', 'x', '--branch-key-table', 'tbl'], /--branch-key-store and --branch-key-table cannot be used together/],
      [['branch-key', 'describe', ...store(), '--branch-key', 'x', '--dynamodb-endpoint', 'http://127.0.0.1:1'], /--dynamodb-endpoint only applies with --branch-key-table/],
      [['branch-key', 'describe', ...store(), '--branch-key', 'x', '--bogus'], /Unknown option '--bogus'/],
      [['encrypt', ...store(), '--branch-key', 'x', '--cache-ttl', '0', '-i', p('a.txt'), '-o', p('y.enc')], /--cache-ttl must be an integer number of seconds from 1 to 86400/],
      [['encrypt', '--local', kmsDir, '--key', arn, '--cache-ttl', '5', '-i', p('a.txt'), '-o', p('y.enc')], /--cache-ttl only applies with --branch-key ID/],
      [['encrypt', '--local', kmsDir, '--branch-key', 'x', '-i', p('a.txt'), '-o', p('y.enc')], /--branch-key needs a branch key store/],
      [['decrypt', ...store(), '--branch-key', 'x', '--allow-account', '111122223333', '-i', p('a1.enc')], /--allow-account applies to KMS keyring discovery/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
      if (args.length > 1) expect(r.stderr, args.join(' ')).toMatch(/^kms-envelope: ERR_USAGE: /);
    }
  });

  it('--help of branch-key, and the main help lists the command and exit status 13', async () => {
    const h = await cli(['branch-key', '--help']);
    expect(h.code).toBe(0);
    expect(h.stdout.toString()).toMatch(/branch-key create --key KEY_ARN STORE[\s\S]*--branch-key-table NAME[\s\S]*--logical-key-store-name NAME/);
    const main = await cli(['--help']);
    expect(main.stdout.toString()).toMatch(/branch-key\s+create, rotate or describe/);
    expect(main.stdout.toString()).toMatch(/13\s+the branch key store refused or failed/);
    const enc = await cli(['encrypt', '--help']);
    expect(enc.stdout.toString()).toMatch(/--branch-key ID[\s\S]*--cache-ttl SECONDS[\s\S]*default 300/);
  });
});

describe('branch-key with a DynamoDB table (dynalite)', () => {
  let ddb: { endpoint: string; close(): Promise<void> };
  const TABLE = 'BranchKeys';
  const tableStore = () => ['--local', kmsDir, '--branch-key-table', TABLE, '--dynamodb-endpoint', ddb.endpoint, '--logical-key-store-name', 'ddb-app'];
  beforeAll(async () => {
    ddb = await startDynalite(TABLE);
  });
  afterAll(async () => {
    await ddb?.close();
  });

  it('create: dynalite has no TransactWriteItems -> ERR_BRANCH_KEY_STORE TRANSACTIONS_UNSUPPORTED, exit 13, nothing written', async () => {
    const r = await cli(['branch-key', 'create', ...tableStore(), '--key', arn, '--branch-key-id', 'ddb-tenant', '-c', 't=1']);
    expect(r.code).toBe(13);
    expect(r.stderr).toMatch(/^kms-envelope: ERR_BRANCH_KEY_STORE: TRANSACTIONS_UNSUPPORTED: CreateKey: the DynamoDB endpoint does not implement TransactWriteItems/);
    const d = await cli(['branch-key', 'describe', ...tableStore(), '--branch-key', 'ddb-tenant']);
    expect(d.code).toBe(13);
    expect(d.stderr).toMatch(/ERR_BRANCH_KEY_STORE: NOT_FOUND: /);
  });

  it('encrypt, decrypt and describe read items written into the table (by the test storage: conditional puts)', async () => {
    const client = new DynamoDBClient({ endpoint: ddb.endpoint, region: 'us-east-1', credentials: TEST_CREDENTIALS });
    const kms = new LocalKms({ dataDir: kmsDir });
    let id: string;
    try {
      const s = new BranchKeyStore({
        storage: new DynamoTestBranchKeyStorage(client, TABLE),
        logicalKeyStoreName: 'ddb-app',
        kmsConfiguration: { kmsKeyArn: arn },
        kmsClient: kms.client(),
      });
      id = (await s.createKey()).branchKeyId;
    } finally {
      kms.close(); // the CLI children open the same data directory
      client.destroy();
    }
    const plain = Buffer.from('tenant data in a DynamoDB-backed hierarchy');
    const enc = await cli(['encrypt', ...tableStore(), '--branch-key', id, '-o', p('ddb.enc')], plain);
    expect(enc.stderr).toBe('');
    expect(enc.code).toBe(0);
    const dec = await cli(['decrypt', ...tableStore(), '--key', arn, '--branch-key', id, '-i', p('ddb.enc')]);
    expect(dec.stderr).toBe('');
    expect(dec.code).toBe(0);
    expect(dec.stdout).toEqual(plain);
    const d = await cli(['branch-key', 'describe', ...tableStore(), '--branch-key', id]);
    expect(d.code).toBe(0);
    expect(fields(d)).toMatchObject({ 'branch-key-id': id, 'kms-arn': arn, 'logical-key-store-name': 'ddb-app' });
  });
});
