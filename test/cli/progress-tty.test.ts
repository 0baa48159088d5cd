/**
 * The progress bar as a user sees it: the built CLI runs on a pseudo-terminal (util-linux `script`)
 * sized 40 columns. Every redraw fits the width (a wider line wraps and leaves a stale line behind
 * on each update), the count is of input bytes, and a successful run ends at 100% of the input
 * size, for encryption and decryption alike. KMS_ENVELOPE_PROGRESS_DELAY_MS=0 (a test-only knob,
 * src/cli/README.md) shows the bar from the first byte instead of after 1 s of work.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalKms } from '../../src/local-kms/index.js';

const MAIN = join(resolve(__dirname, '../..'), 'dist/cli/main.js');
const hasScript = spawnSync('script', ['--version']).status === 0;
const SIZE = 24 << 20;

let dir: string;
let arn: string;

beforeAll(async () => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first (npm test does)`);
  dir = mkdtempSync(join(tmpdir(), 'kms-envelope-progress-'));
  const local = new LocalKms({ dataDir: join(dir, 'kms') });
  arn = (await local.createKey({})).arn;
  local.close();
  writeFileSync(join(dir, 'plain'), randomBytes(SIZE));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Runs the CLI on a pseudo-terminal of `cols` columns; returns what the terminal received. */
function onTerminal(args: string[], cols: number): { status: number | null; screen: string } {
  const command = `stty cols ${cols} rows 24; exec ${[process.execPath, MAIN, ...args].map(sh).join(' ')}`;
  const r = spawnSync('script', ['-qfec', command, '/dev/null'], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', HOME: dir, TERM: 'xterm', KMS_ENVELOPE_PROGRESS_DELAY_MS: '0' },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: r.status, screen: r.stdout };
}

/** The text between carriage returns, newlines and erase-line sequences: what each redraw leaves on a row. */
function segments(screen: string): string[] {
  return screen
    .split(/\r|\n|\x1b\[2K|\x1b\[K/)
    .map((s) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, ''))
    .filter((s) => s.length > 0);
}

describe.skipIf(!hasScript)('progress bar on a narrow terminal', () => {
  for (const cols of [40, 24]) {
    it(`encrypt and decrypt (file to file) end at 100% of the input size, every line within ${cols} columns`, () => {
      const enc = onTerminal(['encrypt', '--local', join(dir, 'kms'), '--key', arn, '-i', 'plain', '-o', 'm.enc', '--force'], cols);
      expect(enc.status, enc.screen).toBe(0);
      const encLines = segments(enc.screen);
      for (const l of encLines) expect(l.length, JSON.stringify(l)).toBeLessThanOrEqual(cols);
      const encLast = encLines.filter((l) => l.includes('%')).at(-1);
      // At 40 columns the sizes fit; narrower, the line keeps at least the percentage.
      expect(encLast, enc.screen).toMatch(cols >= 40 ? /100% 24\.0 MiB \/ 24\.0 MiB/ : /^100%/);

      const encSize = readFileSync(join(dir, 'm.enc')).length;
      expect(encSize).toBeGreaterThan(SIZE);
      const dec = onTerminal(['decrypt', '--local', join(dir, 'kms'), '-i', 'm.enc', '-o', 'back', '--force'], cols);
      expect(dec.status, dec.screen).toBe(0);
      const decLines = segments(dec.screen);
      for (const l of decLines) expect(l.length, JSON.stringify(l)).toBeLessThanOrEqual(cols);
      const decLast = decLines.filter((l) => l.includes('%')).at(-1);
      // The input is the message: 100% of its size, whatever the plaintext size.
      const mib = (encSize / (1 << 20)).toFixed(1);
      expect(decLast, dec.screen).toMatch(cols >= 40 ? new RegExp(`100% ${mib.replace('.', '\\.')} MiB / ${mib.replace('.', '\\.')} MiB`) : /^100%/);
      expect(readFileSync(join(dir, 'back')).equals(readFileSync(join(dir, 'plain')))).toBe(true);
    });
  }
});
