/**
 * Failure paths of the `kms-envelope` bin, spawned as users run it (`npm run build` first):
 * a KMS endpoint that never answers (--kms-timeout), signals while a KMS request is pending or while
 * plaintext is being written (SIGINT, SIGTERM, SIGHUP, SIGQUIT, and the file SIGKILL leaves), what
 * the interrupt message says about stdout, refusing to replace an existing output without --force,
 * and destination names up to NAME_MAX (255 bytes).
 *
 * The "black hole" is a TCP server on 127.0.0.1 that accepts connections and never answers: the
 * shape of a KMS endpoint behind a stuck proxy or a dropped firewall rule.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalKms } from '../../src/local-kms/index.js';

const ROOT = resolve(__dirname, '../..');
const MAIN = join(ROOT, 'dist/cli/main.js');

let dir: string;
let localDir: string;
let localArn: string;
/** A message of 4 MiB plaintext (16 frames) under the --local key, and the plaintext. */
let bigMessage: Buffer;
let bigPlain: Buffer;
let hole: Server;
let holeUrl: string;
const holeSockets: Socket[] = [];
/** Every child started, so none outlives the tests (a hang must fail the test, not linger). */
const children: ChildProcess[] = [];

const p = (name: string) => join(dir, name);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cleanEnv = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH ?? '', HOME: dir });
/** Temporary files next to `target` (any naming that starts with `.<target>.` and ends in `.tmp`). */
const tempsOf = (target: string) => readdirSync(dir).filter((n) => n.startsWith(`.${target}.`) && n.endsWith('.tmp'));

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

interface Running {
  child: ChildProcess;
  stdout: Buffer[];
  stderr: Buffer[];
  done: Promise<Result>;
}

/** Starts the CLI; stdin stays open for the caller unless `input` is given (then it is written and ended). */
function start(args: string[], input?: Uint8Array): Running {
  const child = spawn(process.execPath, [MAIN, ...args], { env: cleanEnv(), cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(child);
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout!.on('data', (c: Buffer) => stdout.push(c));
  child.stderr!.on('data', (c: Buffer) => stderr.push(c));
  // The child may exit with input unread (EPIPE): expected when it is interrupted.
  child.stdin!.on('error', () => undefined);
  if (input !== undefined) child.stdin!.end(input);
  const done = new Promise<Result>((res, rej) => {
    child.on('error', rej);
    child.on('close', (code, signal) =>
      res({ code, signal, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString('utf8') }),
    );
  });
  return { child, stdout, stderr, done };
}

const cli = (args: string[], input: Uint8Array = Buffer.alloc(0)) => start(args, input).done;

/** Polls `cond` every 20 ms, at most `tries` times; true once it held. */
async function until(cond: () => boolean, tries = 500): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (cond()) return true;
    await sleep(20);
  }
  return cond();
}

beforeAll(async () => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first (npm test does)`);
  dir = mkdtempSync(join(tmpdir(), 'kms-envelope-cli-fail-'));
  localDir = p('local-kms');
  const local = new LocalKms({ dataDir: localDir });
  const k = await local.createKey({ Description: 'cli failure paths' });
  await local.createAlias('alias/cli', k.keyId);
  localArn = k.arn;
  local.close();

  bigPlain = randomBytes(4 * 1024 * 1024);
  writeFileSync(p('big.txt'), bigPlain);
  const enc = await cli(['encrypt', '--local', localDir, '--key', localArn, '-i', p('big.txt'), '-o', p('big.enc')]);
  expect(enc.stderr).toBe('');
  expect(enc.code).toBe(0);
  bigMessage = readFileSync(p('big.enc'));

  hole = createServer((s) => {
    holeSockets.push(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((res) => hole.listen(0, '127.0.0.1', res));
  const addr = hole.address();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  holeUrl = `http://127.0.0.1:${addr.port}`;
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const s of holeSockets) s.destroy();
  await new Promise<void>((res) => (hole ? hole.close(() => res()) : res()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('--kms-timeout: a KMS endpoint that accepts connections and never answers', () => {
  it('encrypt and decrypt stop with exit 4 (ERR_KEYRING_TIMEOUT) naming the endpoint, leaving no output', async () => {
    const enc = await cli(['encrypt', '--endpoint', holeUrl, '--kms-timeout', '1', '--key', localArn, '-o', p('hole.enc')], Buffer.from('x'));
    expect(enc.code).toBe(4);
    expect(enc.stderr).toMatch(/^kms-envelope: ERR_KEYRING_TIMEOUT: /);
    expect(enc.stderr).toContain(holeUrl);
    expect(enc.stderr).toContain('--kms-timeout');
    expect(existsSync(p('hole.enc'))).toBe(false);
    expect(tempsOf('hole.enc')).toEqual([]);

    const dec = await cli(['decrypt', '--endpoint', holeUrl, '--kms-timeout', '1', '-i', p('big.enc'), '-o', p('hole.out')]);
    expect(dec.code).toBe(4);
    expect(dec.stderr).toMatch(/^kms-envelope: ERR_KEYRING_TIMEOUT: /);
    expect(dec.stderr).toContain(holeUrl);
    expect(existsSync(p('hole.out'))).toBe(false);
    expect(tempsOf('hole.out')).toEqual([]);

    // Through pipes as well.
    const piped = await cli(['decrypt', '--endpoint', holeUrl, '--kms-timeout', '1'], bigMessage.subarray(0, 64 * 1024));
    expect(piped.code).toBe(4);
    expect(piped.stdout.length).toBe(0);
  }, 30_000);

  it('is an integer number of seconds from 1 to 600, and is refused with --local (no requests to bound)', async () => {
    for (const bad of ['0', '601', '1.5', 'soon', '']) {
      const r = await cli(['encrypt', '--endpoint', holeUrl, `--kms-timeout=${bad}`, '--key', localArn], Buffer.from('x'));
      expect(r.code, bad).toBe(2);
      expect(r.stderr, bad).toMatch(/^kms-envelope: ERR_USAGE: --kms-timeout /);
    }
    const local = await cli(['encrypt', '--local', localDir, '--kms-timeout', '5', '--key', localArn], Buffer.from('x'));
    expect(local.code).toBe(2);
    expect(local.stderr).toMatch(/^kms-envelope: ERR_USAGE: --kms-timeout .*--local/);
    for (const cmd of ['encrypt', 'decrypt']) {
      const help = await cli([cmd, '--help']);
      expect(help.stdout.toString(), cmd).toMatch(/--kms-timeout SECONDS[\s\S]*default 30/);
      expect(help.stdout.toString(), cmd).toMatch(/--force/);
    }
  });
});

describe('one signal while a KMS request is pending ends the run', () => {
  for (const [signal, exit] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    it(`${signal}: exit ${exit}, no temporary file, no output (encrypt to a file, decrypt to stdout)`, async () => {
      const before = holeSockets.length;
      // No --kms-timeout: the default (30 s) is far longer than this test may take, so only the
      // signal can end the run in time.
      const enc = start(['encrypt', '--endpoint', holeUrl, '--key', localArn, '-o', p(`sig-${signal}.enc`)], Buffer.from('x'));
      expect(await until(() => holeSockets.length > before)).toBe(true);
      enc.child.kill(signal);
      const r = await enc.done;
      expect(r.code).toBe(exit);
      expect(r.stderr).toMatch(new RegExp(`^kms-envelope: ERR_INTERRUPTED: interrupted by ${signal}`));
      expect(existsSync(p(`sig-${signal}.enc`))).toBe(false);
      expect(tempsOf(`sig-${signal}.enc`)).toEqual([]);

      const mid = holeSockets.length;
      const dec = start(['decrypt', '--endpoint', holeUrl], bigMessage.subarray(0, 64 * 1024));
      expect(await until(() => holeSockets.length > mid)).toBe(true);
      dec.child.kill(signal);
      const d = await dec.done;
      expect(d.code).toBe(exit);
      expect(d.stdout.length).toBe(0);
    }, 25_000);
  }
});

describe('signals while plaintext is being written to a file', () => {
  /** decrypt from a pipe into `target`, fed half the message: mid-write once plaintext reached the temp file. */
  async function midWrite(target: string): Promise<Running> {
    const run = start(['decrypt', '--local', localDir, '-o', p(target)]);
    run.child.stdin!.write(bigMessage.subarray(0, bigMessage.length >> 1));
    const writing = () => tempsOf(target).some((n) => (statSync(p(n), { throwIfNoEntry: false })?.size ?? 0) > 0);
    expect(await until(writing)).toBe(true);
    return run;
  }

  for (const [signal, exit] of [
    ['SIGHUP', 129],
    ['SIGQUIT', 131],
    ['SIGINT', 130],
  ] as const) {
    it(`${signal}: exit ${exit}, the temporary file with partial plaintext is removed, the message says no output was written`, async () => {
      const target = `mid-${signal}.out`;
      const run = await midWrite(target);
      run.child.kill(signal);
      const r = await run.done;
      expect(r.signal).toBeNull();
      expect(r.code).toBe(exit);
      expect(r.stderr).toMatch(new RegExp(`^kms-envelope: ERR_INTERRUPTED: interrupted by ${signal}; no output was written`));
      expect(tempsOf(target)).toEqual([]);
      expect(existsSync(p(target))).toBe(false);
    }, 30_000);
  }

  it('SIGKILL leaves a recognizable private temp file; the next run into the same target removes it, not a live run\'s or another target\'s', async () => {
    const target = 'killed.out';
    const run = await midWrite(target);
    run.child.kill('SIGKILL');
    expect((await run.done).signal).toBe('SIGKILL');
    const [left, ...more] = tempsOf(target);
    expect(more).toEqual([]);
    const m = /^\.killed\.out\.kms-envelope-tmp-(\d+)-([0-9a-f]{8})-[0-9a-f]{16}\.tmp$/.exec(left!);
    expect(m, left).not.toBeNull();
    expect(Number(m![1])).toBe(run.child.pid);
    expect(statSync(p(left!)).mode & 0o777).toBe(0o600);

    // Same shape, but owned by a live process (this test runner), and one for another target.
    const live = left!.replace(`-${m![1]}-`, `-${process.pid}-`);
    writeFileSync(p(live), 'a live run writes here');
    const otherTarget = left!.replace('.killed.out.', '.other.out.');
    writeFileSync(p(otherTarget), 'another target');

    const again = await cli(['decrypt', '--local', localDir, '-i', p('big.enc'), '-o', p(target)]);
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
    expect(readFileSync(p(target)).equals(bigPlain)).toBe(true);
    expect(existsSync(p(left!))).toBe(false);
    expect(readFileSync(p(live), 'utf8')).toBe('a live run writes here');
    expect(readFileSync(p(otherTarget), 'utf8')).toBe('another target');
    rmSync(p(live));
    rmSync(p(otherTarget));
  }, 30_000);
});

describe('the interrupt message says what is true for stdout', () => {
  it('SIGINT after plaintext reached stdout: "output on stdout is incomplete", not "no output was written"', async () => {
    const run = start(['decrypt', '--local', localDir]);
    run.child.stdin!.write(bigMessage.subarray(0, bigMessage.length >> 1));
    expect(await until(() => run.stdout.length > 0)).toBe(true);
    run.child.kill('SIGINT');
    const r = await run.done;
    expect(r.code).toBe(130);
    expect(r.stdout.length).toBeGreaterThan(0);
    expect(r.stderr).toMatch(/^kms-envelope: ERR_INTERRUPTED: interrupted by SIGINT; output on stdout is incomplete/);
    expect(r.stderr).not.toMatch(/no output was written/);
  }, 30_000);
});

describe('an existing output file is replaced only with --force', () => {
  it('refuses -o FILE that exists, naming the file and --force, before any KMS request; leaves it as it was', async () => {
    writeFileSync(p('exists.enc'), 'previous contents');
    writeFileSync(p('exists.out'), 'previous plaintext');
    const before = holeSockets.length;
    const enc = await cli(['encrypt', '--endpoint', holeUrl, '--key', localArn, '-o', p('exists.enc')], Buffer.from('x'));
    expect(enc.code).toBe(2);
    expect(enc.stderr).toMatch(/^kms-envelope: ERR_USAGE: .*exists\.enc.*--force/);
    const dec = await cli(['decrypt', '--endpoint', holeUrl, '-i', p('big.enc'), '-o', p('exists.out')]);
    expect(dec.code).toBe(2);
    expect(dec.stderr).toMatch(/^kms-envelope: ERR_USAGE: .*exists\.out.*--force/);
    expect(holeSockets.length).toBe(before); // no KMS request was even attempted
    expect(readFileSync(p('exists.enc'), 'utf8')).toBe('previous contents');
    expect(readFileSync(p('exists.out'), 'utf8')).toBe('previous plaintext');
  }, 20_000);

  it('replaces it with --force (file to file and pipe to file); devices such as /dev/null need no --force', async () => {
    writeFileSync(p('forced.txt'), 'old');
    const dec = await cli(['decrypt', '--local', localDir, '--force', '-i', p('big.enc'), '-o', p('forced.txt')]);
    expect(dec.stderr).toBe('');
    expect(dec.code).toBe(0);
    expect(readFileSync(p('forced.txt')).equals(bigPlain)).toBe(true);
    const piped = await cli(['decrypt', '--local', localDir, '-f', '-o', p('forced.txt')], bigMessage);
    expect(piped.code).toBe(0);
    expect(readFileSync(p('forced.txt')).equals(bigPlain)).toBe(true);
    const devNull = await cli(['decrypt', '--local', localDir, '-i', p('big.enc'), '-o', '/dev/null']);
    expect(devNull.stderr).toBe('');
    expect(devNull.code).toBe(0);
  }, 30_000);
});

describe('destination names up to NAME_MAX (255 bytes)', () => {
  it('encrypts and decrypts to 255-byte names (ASCII and multi-byte UTF-8), file to file and from a pipe', async () => {
    const plain = Buffer.from('long names\n');
    writeFileSync(p('short.txt'), plain);
    const names = ['e'.repeat(251) + '.enc', 'é'.repeat(127) + 'x'];
    for (const name of names) {
      expect(Buffer.byteLength(name)).toBe(255);
      const enc = await cli(['encrypt', '--local', localDir, '--key', localArn, '-i', p('short.txt'), '-o', p(name)]);
      expect(enc.stderr, name).toBe('');
      expect(enc.code, name).toBe(0);
      const decName = 'd'.repeat(255);
      const dec = await cli(['decrypt', '--local', localDir, '--force', '-i', p(name), '-o', p(decName)]);
      expect(dec.stderr, name).toBe('');
      expect(dec.code, name).toBe(0);
      expect(readFileSync(p(decName)).equals(plain)).toBe(true);
      const piped = await cli(['decrypt', '--local', localDir, '--force', '-o', p(decName)], readFileSync(p(name)));
      expect(piped.code, name).toBe(0);
      rmSync(p(name));
      rmSync(p(decName));
    }
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  }, 30_000);
});
