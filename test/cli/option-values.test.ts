/**
 * Every option that takes a value refuses an option in its place (`--local --quiet`,
 * `--data-dir --test-clock`) with a usage error naming it, in every command; `-` stays a value
 * (stdin/stdout) and an inline `--opt=-x` is taken as written. Runs in process: the parse fails
 * before any KMS or file is touched.
 */
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parse } from '../../src/cli/args.js';
import { DECRYPT_OPTIONS } from '../../src/cli/decrypt.js';
import { ENCRYPT_OPTIONS } from '../../src/cli/encrypt.js';
import { missingOptionValue } from '../../src/cli/option-values.js';
import { run, type Io } from '../../src/cli/run.js';
import { LocalKmsUsageError, parseLocalKmsArgs } from '../../src/local-kms/cli.js';
import { runKeyPolicyCommand } from '../../src/local-kms/policy-cli.js';

function io(): Io & { err(): string; out(): string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  return { stdin: new PassThrough(), stdout, stderr, env: {}, err: () => err, out: () => out };
}

const valueOptions = (options: Record<string, { type: string; short?: string }>) =>
  Object.entries(options).filter(([, o]) => o.type === 'string');

describe('encrypt and decrypt', () => {
  it.each([
    ['encrypt', ENCRYPT_OPTIONS],
    ['decrypt', DECRYPT_OPTIONS],
  ] as const)('%s: every value option followed by an option is a usage error naming it', async (command, options) => {
    const names = valueOptions(options);
    expect(names.length).toBeGreaterThan(8);
    for (const [long, spec] of names) {
      for (const spelled of [`--${long}`, ...(spec.short !== undefined ? [`-${spec.short}`] : [])]) {
        const t = io();
        expect(await run([command, spelled, '--quiet'], t), spelled).toBe(2);
        const label = spelled === `--${long}` ? spelled : `${spelled} \\(--${long}\\)`;
        expect(t.err(), spelled).toMatch(new RegExp(`^kms-envelope: ERR_USAGE: ${label} needs a value, got the option --quiet`));
        // Last on the line: no value at all.
        const u = io();
        expect(await run([command, '--quiet', spelled], u), spelled).toBe(2);
        expect(u.err(), spelled).toMatch(new RegExp(`^kms-envelope: ERR_USAGE: ${label} needs a value\\n`));
      }
    }
  });

  it('names the option for the case in the brief: --local --quiet', async () => {
    const t = io();
    expect(await run(['encrypt', '--key', 'alias/app', '--local', '--quiet'], t)).toBe(2);
    expect(t.err()).toBe(
      'kms-envelope: ERR_USAGE: --local needs a value, got the option --quiet (write --local=--quiet if that is the value)\n',
    );
  });

  it('keeps - as a value (stdin/stdout), and inline values as written', () => {
    expect(parse(['-i', '-', '-o', '-', '--key', 'k'], ENCRYPT_OPTIONS).values).toMatchObject({ input: '-', output: '-' });
    expect(parse(['-o-', '-i-'], ENCRYPT_OPTIONS).values).toMatchObject({ input: '-', output: '-' });
    expect(parse(['--context=-x=1', '--local=--odd-dir'], ENCRYPT_OPTIONS).values).toMatchObject({ context: ['-x=1'], local: '--odd-dir' });
    expect(parse(['-qo', 'out', '-c', 'a=b'], ENCRYPT_OPTIONS).values).toMatchObject({ quiet: true, output: 'out', context: ['a=b'] });
    // A value starting with one dash is ambiguous too; the message says how to pass it.
    expect(() => parse(['-o', '-x'], ENCRYPT_OPTIONS)).toThrow(/^-o \(--output\) needs a value, got "-x", which looks like an option \(write --output=-x/);
    expect(() => parse(['-qo', '--key'], ENCRYPT_OPTIONS)).toThrow(/^-o \(--output\) needs a value, got the option --key/);
  });
});

describe('missingOptionValue', () => {
  const opts = { out: { type: 'string', short: 'o' }, flag: { type: 'boolean', short: 'f' } } as const;
  it('finds the first value option without a value and ignores the rest', () => {
    expect(missingOptionValue(['--out', 'x', '-f'], opts)).toBeUndefined();
    expect(missingOptionValue(['--out', '-'], opts)).toBeUndefined();
    expect(missingOptionValue(['--out=--x'], opts)).toBeUndefined();
    expect(missingOptionValue(['-oX', '-f'], opts)).toBeUndefined();
    expect(missingOptionValue(['--out', '--'], opts)).toMatch(/^--out needs a value, got the option --/);
    expect(missingOptionValue(['--', '--out'], opts)).toBeUndefined(); // positional after --
    expect(missingOptionValue(['--unknown', '--out'], opts)).toBe('--out needs a value');
    expect(missingOptionValue(['-fo'], opts)).toBe('-o (--out) needs a value');
  });
});

describe('local-kms and local-kms key-policy', () => {
  afterEach(() => vi.restoreAllMocks());

  it('local-kms: every value option refuses an option in its place', () => {
    for (const opt of ['--port', '--host', '--data-dir', '--root-key-file', '--principals', '--account-id', '--region', '--max-body-bytes']) {
      expect(() => parseLocalKmsArgs([opt, '--test-clock']), opt).toThrow(LocalKmsUsageError);
      expect(() => parseLocalKmsArgs([opt, '--test-clock']), opt).toThrow(new RegExp(`^${opt} needs a value, got the option --test-clock`));
      expect(() => parseLocalKmsArgs(['--test-clock', opt]), opt).toThrow(new RegExp(`^${opt} needs a value$`));
    }
    expect(parseLocalKmsArgs(['--data-dir', 'kms', '--test-clock'])).toMatchObject({ dataDir: 'kms', testClock: true });
    expect(parseLocalKmsArgs(['--data-dir=-x'])).toMatchObject({ dataDir: '-x' });
  });

  it('key-policy: --admin --external is a usage error (exit 2) naming --admin', () => {
    let err = '';
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      err += chunk.toString();
      return true;
    });
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    expect(runKeyPolicyCommand(['--admin', '--external'])).toBe(2);
    expect(err).toMatch(/^kms-envelope: ERR_USAGE: local-kms key-policy: --admin needs a value, got the option --external/);
    expect(out).not.toHaveBeenCalled();
    err = '';
    expect(runKeyPolicyCommand(['--admin', 'arn:aws:iam::111122223333:role/Admin', '--external'])).toBe(0);
    expect(err).toBe('');
    expect(String(out.mock.calls[0]![0])).toContain('kms:ImportKeyMaterial');
  });
});
