/**
 * The package as users ship it: dist/ (built by `npm test` first) through a minifying bundler, the
 * way a Lambda deployment bundles it. Class names are mangled there, and the public contract must
 * hold anyway: error names and codes, instanceof across entry points, a round trip.
 */
import { afterAll, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'kms-envelope-bundle-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('error names and codes survive a minified bundle; instanceof holds across entry points', async () => {
  const entry = join(dir, 'entry.mjs');
  writeFileSync(
    entry,
    [
      `export * as main from ${JSON.stringify(join(root, 'dist/index.js'))};`,
      `export * as errors from ${JSON.stringify(join(root, 'dist/errors.js'))};`,
    ].join('\n'),
  );
  const outfile = join(dir, 'bundle.mjs');
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    minify: true,
    platform: 'node',
    format: 'esm',
    external: ['@aws-sdk/*'],
    // lru-cache resolves from this package's node_modules.
    nodePaths: [join(root, 'node_modules')],
    logLevel: 'silent',
  });
  const { main, errors } = (await import(pathToFileURL(outfile).href)) as {
    main: typeof import('../../src/index.js');
    errors: typeof import('../../src/errors.js');
  };

  const classes = Object.entries(errors).filter(([, v]) => typeof v === 'function');
  expect(classes.length).toBeGreaterThanOrEqual(11);
  for (const [name, cls] of classes) {
    const C = cls as new (...args: never[]) => Error;
    const e = name === 'EnvelopeError' ? new (C as never as new (c: string, m: string) => Error)('ERR_STREAM', 'x') : new C();
    expect(e.name).toBe(name);
    expect(String(e.stack).startsWith(`${name}:`)).toBe(true);
    expect(e).toBeInstanceOf(errors.EnvelopeError);
    expect((main as Record<string, unknown>)[name]).toBe(cls);
  }

  const envelope = new main.Envelope({
    keyring: new main.RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key: Buffer.alloc(32, 7) }),
  });
  const message = await envelope.encrypt('bundled', { context: { app: 'lambda' } });
  expect((await envelope.decrypt(message)).plaintext.toString()).toBe('bundled');
  const err = await envelope.decrypt(Buffer.concat([message, Buffer.from([0])])).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(errors.MalformedMessageError);
  expect(err).toMatchObject({ name: 'MalformedMessageError', code: 'ERR_MALFORMED_MESSAGE' });
});
