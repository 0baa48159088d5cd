/**
 * Writing under a umask that leaves files read-only (0222, 0277): the file helpers and the CLI
 * create their temporary file with the process umask applied, so it may have no write bit by the
 * time it is fsynced before the rename; reopening it for writing failed with EACCES (ERR_IO, no
 * output). Runs the built package (dist/, `npm test` builds it) in a child process with that
 * umask (the CLI inherits it), as an unprivileged user when the tests run as root (root ignores permission bits), else
 * as the current user.
 *
 * The child runs a copy of the package (package.json, dist/ and the one runtime dependency it
 * loads, lru-cache) in the test's world-readable temporary directory: the checkout itself may sit
 * in a directory only its owner can enter (root cloning into a 0700 home), where the unprivileged
 * child could not read dist/.
 */
import { afterAll, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'kms-envelope-umask-'));
chmodSync(dir, 0o777);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A readable copy of what the child loads: `pkg/` with package.json (the CLI reads its version
 * through the package's self-reference) and dist/, and `pkg/node_modules/lru-cache`. Everything
 * is made world-readable (directories also searchable), whatever the umask of the checkout.
 */
function copyPackage(to: string): string {
  const pkg = join(to, 'pkg');
  cpSync(join(root, 'package.json'), join(pkg, 'package.json'));
  cpSync(join(root, 'dist'), join(pkg, 'dist'), { recursive: true });
  cpSync(packageDir('lru-cache'), join(pkg, 'node_modules', 'lru-cache'), { recursive: true, dereference: true });
  makeReadable(to);
  return pkg;
}

/** The directory of an installed dependency, as the package itself resolves it (its exports hide package.json). */
function packageDir(name: string): string {
  let p = dirname(realpathSync(createRequire(join(root, 'package.json')).resolve(name)));
  while (!isPackageRoot(p, name)) {
    if (dirname(p) === p) throw new Error(`cannot find the directory of ${name}`);
    p = dirname(p);
  }
  return p;
}

function isPackageRoot(p: string, name: string): boolean {
  const file = join(p, 'package.json');
  return existsSync(file) && (JSON.parse(readFileSync(file, 'utf8')) as { name?: string }).name === name;
}

function makeReadable(path: string): void {
  const st = statSync(path);
  if (st.isDirectory()) {
    chmodSync(path, 0o755);
    for (const name of readdirSync(path)) makeReadable(join(path, name));
  } else {
    chmodSync(path, 0o644);
  }
}

const asRoot = process.getuid?.() === 0;
const setpriv = asRoot ? ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p)) : undefined;
const runnable = process.platform !== 'win32' && (!asRoot || setpriv !== undefined);

const pkg = runnable ? copyPackage(dir) : root;
chmodSync(dir, 0o777); // the child writes its files here

const script = `
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
const { Envelope, RawAesKeyring } = await import(${JSON.stringify(join(pkg, 'dist/index.js'))});
const { LocalKms } = await import(${JSON.stringify(join(pkg, 'dist/local-kms/index.js'))});
const dir = ${JSON.stringify(dir)};
const out = {};
// The local KMS needs writable directories of its own: make its key with a usual umask first.
process.umask(0o022);
const kmsDir = join(dir, 'kms');
const kms = new LocalKms({ dataDir: kmsDir });
const key = await kms.createKey({});
kms.close();
process.umask(0o222);
const src = join(dir, 'plain.txt');
writeFileSync(src, 'read-only world');
out.srcMode = (statSync(src).mode & 0o777).toString(8);
const envelope = new Envelope({ keyring: new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', key: Buffer.alloc(32, 3) }) });
await envelope.encryptFile(src, join(dir, 'plain.txt.enc'));
await envelope.decryptFile(join(dir, 'plain.txt.enc'), join(dir, 'back.txt'));
out.library = readFileSync(join(dir, 'back.txt'), 'utf8');
const cli = ${JSON.stringify(join(pkg, 'dist/cli/main.js'))};
execFileSync(process.execPath, [cli, 'encrypt', '--local', kmsDir, '--key', key.arn, '-o', join(dir, 'stdin.enc')], { input: 'from stdin' });
out.cli = execFileSync(process.execPath, [cli, 'decrypt', '--local', kmsDir, '-i', join(dir, 'stdin.enc'), '-o', '-']).toString();
process.stdout.write(JSON.stringify(out));
`;

it.runIf(runnable)('file helpers and the CLI write their output under umask 0222', () => {
  const file = join(dir, 'probe.mjs');
  writeFileSync(file, script);
  chmodSync(file, 0o644);
  const cmd = [...(setpriv ? [setpriv, '--reuid=65534', '--regid=65534', '--clear-groups'] : []), process.execPath, file];
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', cwd: dir, env: { ...process.env, NODE_OPTIONS: '' } });
  expect(r.stderr, r.stderr).not.toMatch(/EACCES|ERR_IO/);
  expect(r.status, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout) as { srcMode: string; library: string; cli: string };
  expect(out.srcMode).toBe('444'); // the umask really left no write bit
  expect(out.library).toBe('read-only world');
  expect(out.cli).toBe('from stdin');
  expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
});
