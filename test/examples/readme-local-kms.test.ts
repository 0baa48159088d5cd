/**
 * The README's local KMS walkthrough ("Creating a key the way the AWS console does", "Importing key
 * material with OpenSSL"), run as written in a clone-like directory:
 *
 * - its start and stop commands: `npx kms-envelope local-kms ... & SERVER=$!` then `kill $SERVER`
 *   killed npx and left the server holding the port and the data directory's lock. After the
 *   documented stop, the port must be free and the lock gone;
 * - with the AWS CLI (skipped without `aws`): the whole walkthrough, after which the clone holds
 *   nothing new but the data directory, and the temporary directory (TMPDIR) nothing at all: no
 *   policy.json, ImportToken.bin or PlaintextKeyMaterial.bin left behind.
 *
 * The shell runs in its own process group, killed at the end, so a server the commands fail to
 * stop does not outlive the test.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'kms-envelope-readme-kms-'));
const groups: number[] = [];
afterAll(() => {
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

/** The ```sh blocks of the README's local KMS walkthrough, console and import. */
function walkthroughBlocks(): string[] {
  const start = readme.indexOf('### Creating a key the way the AWS console does');
  const end = readme.indexOf('**Key policies** are evaluated');
  expect(start).toBeGreaterThan(0);
  return [...readme.slice(start, end).matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/** A directory laid out like a clone after `npm install` (what the README's commands run in). */
function clone(name: string): string {
  const c = join(dir, name);
  mkdirSync(c);
  for (const entry of ['package.json', 'dist', 'node_modules', 'examples']) symlinkSync(join(root, entry), join(c, entry));
  return c;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

async function portIsFree(port: number): Promise<boolean> {
  const s = createServer();
  return new Promise((res) => {
    s.once('error', () => res(false));
    s.listen(port, '127.0.0.1', () => s.close(() => res(true)));
  });
}

/** Runs a bash script in `cwd`, in its own process group; resolves with its output. */
function bash(script: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  const child = spawn('bash', ['-c', script], { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  groups.push(child.pid!);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  // 'exit', not 'close': a server the commands failed to stop keeps the pipes open.
  return new Promise((res) => child.once('exit', (code) => setTimeout(() => res({ code, out }), 100)));
}

/** Waits in bash until something listens on the port (the server printed its line). */
const waitForPort = (port: number) =>
  `for i in $(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/${port}) 2>/dev/null && break; sleep 0.1; done\n`;

describe("README local KMS walkthrough", () => {
  it('the documented stop command stops the server: port free, data directory unlocked', async () => {
    const blocks = walkthroughBlocks().join('\n').split('\n');
    const startAt = blocks.findIndex((l) => /local-kms --port 4599 .*&\s*(#.*)?$/.test(l));
    expect(startAt, 'the background start command').toBeGreaterThanOrEqual(0);
    // Everything up to the start (variables it uses), the start, and the line taking its pid.
    const setup = blocks.slice(0, startAt + 1).filter((l) => /^[A-Z_]+=/.test(l) || l === blocks[startAt]);
    const pidLine = blocks.find((l) => /^SERVER=\$!/.test(l));
    expect(pidLine).toBeDefined();
    const stop =
      blocks.find((l) => /^kill \$SERVER\b/.test(l)) ?? /stop it afterwards with: (.+)$/.exec(blocks.find((l) => l.includes('stop it afterwards with:')) ?? '')?.[1];
    expect(stop, 'the stop command').toBeDefined();

    const port = await freePort();
    const cwd = clone('stop');
    const script = [...setup, pidLine!, waitForPort(port), stop!, 'sleep 1'].join('\n').replaceAll('4599', String(port));
    const r = await bash(script, cwd, { ...process.env, npm_config_update_notifier: 'false' });
    expect(r.out).toMatch(/listening on http:\/\/127\.0\.0\.1:\d+/);
    expect(await portIsFree(port), `port ${port} still held after: ${stop}`).toBe(true);
    expect(existsSync(join(cwd, '.local-kms', 'lock')), 'data directory still locked').toBe(false);
  }, 150_000);

  const hasAws = spawnSync('sh', ['-c', 'command -v aws && command -v openssl && command -v curl'], { stdio: 'ignore' }).status === 0;
  it.runIf(hasAws)('runs end to end and leaves nothing behind but the data directory', async () => {
    const port = await freePort();
    const cwd = clone('full');
    const tmp = join(dir, 'tmp');
    mkdirSync(tmp);
    const before = readdirSync(cwd).sort();
    // Run as a script (`bash -c`), as a user who saved the blocks to a file would.
    // A person types the next command after the server printed its line; a script must wait.
    const lines = walkthroughBlocks().join('\n').split('\n');
    const at = lines.findIndex((l) => /^SERVER=\$!/.test(l));
    lines.splice(at + 1, 0, waitForPort(port));
    const script = lines.join('\n').replaceAll('4599', String(port));
    const r = await bash(script, cwd, {
      ...process.env,
      TMPDIR: tmp,
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      npm_config_update_notifier: 'false',
      npm_config_offline: 'true',
    });
    expect(r.out).toContain('"Sid": "Allow access for Key Administrators"');
    expect(r.out.match(/AccessDeniedException/g)?.length, r.out).toBe(1);
    expect(r.out).toContain('MissingAuthenticationTokenException');
    expect(r.out).toContain('UnrecognizedClientException');
    expect(r.out).toMatch(/"?Enabled"?\s*$/);
    expect(readdirSync(cwd).sort(), r.out).toEqual([...before, '.local-kms'].sort());
    expect(readdirSync(tmp)).toEqual([]);
    expect(await portIsFree(port)).toBe(true);
    expect(existsSync(join(cwd, '.local-kms', 'lock'))).toBe(false);
  }, 150_000);
});
