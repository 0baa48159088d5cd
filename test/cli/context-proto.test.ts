/**
 * `--context __proto__=v` is a pair like any other. The parsed pairs used to be a plain object, on
 * which assigning `__proto__` sets the prototype: the pair vanished, so `decrypt -c __proto__=x`
 * checked nothing and released any message, and `encrypt -c __proto__=x` left it out.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, expect, it } from 'vitest';
import { parseContext } from '../../src/cli/args.js';
import { run, type Io } from '../../src/cli/run.js';
import { parseHeader } from '../../src/format/header.js';
import { LocalKms } from '../../src/local-kms/index.js';

const dir = mkdtempSync(join(tmpdir(), 'kms-envelope-cli-proto-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function io(input = ''): Io & { out(): Buffer; err(): string } {
  const stdin = new PassThrough();
  stdin.end(input);
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  let err = '';
  stdout.on('data', (d: Buffer) => out.push(d));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  return { stdin, stdout, stderr, env: {}, out: () => Buffer.concat(out), err: () => err };
}

it('parses __proto__ as a context key', () => {
  const c = parseContext(['__proto__=x', 'a=b']);
  expect(Object.keys(c).sort()).toEqual(['__proto__', 'a']);
  expect(c['__proto__']).toBe('x');
});

it('encrypt binds a __proto__ pair, and decrypt requires it', async () => {
  const kmsDir = join(dir, 'kms');
  const kms = new LocalKms({ dataDir: kmsDir });
  const { arn } = await kms.createKey({});
  kms.close();

  const withProto = join(dir, 'with.enc');
  expect(await run(['encrypt', '--local', kmsDir, '--key', arn, '-c', '__proto__=tenant-a', '-o', withProto], io('secret'))).toBe(0);
  const without = join(dir, 'without.enc');
  expect(await run(['encrypt', '--local', kmsDir, '--key', arn, '-c', 'tenant=a', '-o', without], io('secret'))).toBe(0);

  const { readFileSync } = await import('node:fs');
  const header = parseHeader(readFileSync(withProto), { maxEncryptedDataKeys: 10 })!;
  expect({ ...header.context }).toEqual(JSON.parse('{"__proto__":"tenant-a"}'));

  // A required pair the message does not carry: context mismatch (exit 5), no plaintext.
  const denied = io();
  expect(await run(['decrypt', '--local', kmsDir, '-c', '__proto__=anything', '-i', without, '-o', '-'], denied)).toBe(5);
  expect(denied.out().length).toBe(0);
  expect(denied.err()).toMatch(/ERR_CONTEXT_MISMATCH/);

  const allowed = io();
  expect(await run(['decrypt', '--local', kmsDir, '-c', '__proto__=tenant-a', '-i', withProto, '-o', '-'], allowed)).toBe(0);
  expect(allowed.out().toString()).toBe('secret');
});
