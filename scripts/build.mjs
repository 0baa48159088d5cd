// `npm run build`: dist/ from src/.
//
// - Type declarations (and the type check) from tsc, one .d.ts per source module.
// - JavaScript from esbuild: one file per package entry point (., ./errors, ./local-kms, ./s3,
//   ./branch-key-store-dynamodb, ./xks-proxy and the CLI) plus shared chunks, instead of one file per source
//   module. Node's ESM loader pays per file (resolve, read, compile, link): `import('kms-envelope')`
//   loads 3 files instead of about 30, which cuts its import time by more than half (`npm run bench`,
//   footprint group) and so a Lambda's cold start. Splitting keeps each module in exactly one output
//   file, so a class reached through two entry points (the error classes through `kms-envelope` and
//   `kms-envelope/errors`) stays one class and `instanceof` holds across them.
// - Not minified (readable stack traces); source maps point back to src/ for
//   `node --enable-source-maps`. Error names do not depend on class names (src/errors.ts), so no
//   name-keeping helpers are needed, here or in a user's minified bundle.
// - Atomic: the new dist/ is written beside the old one and swapped in by rename, so a process
//   running the CLI or importing dist/ meanwhile (a second terminal, a test, the `prepare` that the
//   first `npx kms-envelope` in a clone runs) never finds it half written or missing.
// - Skipped when dist/ was built from exactly these sources (a hash of src/ and the build's
//   configuration, kept in dist/.build-hash): `npm test` and `npx` in a clone then cost nothing.
//   `node scripts/build.mjs --force` rebuilds anyway.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const dist = join(root, 'dist');
const stampFile = join(dist, '.build-hash');

/** SHA-256 over the sources and everything that shapes the output (paths and contents, in order). */
function sourceHash() {
  const h = createHash('sha256');
  const add = (rel) => {
    h.update(`${rel}\0`);
    h.update(readFileSync(join(root, rel)));
    h.update('\0');
  };
  const walk = (rel) => {
    for (const e of readdirSync(join(root, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const child = `${rel}/${e.name}`;
      if (e.isDirectory()) walk(child);
      else add(child);
    }
  };
  walk('src');
  for (const f of ['scripts/build.mjs', 'tsconfig.json', 'tsconfig.build.json', 'package.json', 'package-lock.json']) {
    if (existsSync(join(root, f))) add(f);
  }
  return h.digest('hex');
}

const hash = sourceHash();
if (!process.argv.includes('--force') && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === hash) {
  console.log('dist/ is up to date');
  process.exit(0);
}

const next = join(root, `dist.${process.pid}.tmp`);
rmSync(next, { recursive: true, force: true });

// A type error fails the build here, before any JavaScript is written.
execFileSync(
  process.execPath,
  [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--emitDeclarationOnly', '--outDir', next],
  { cwd: root, stdio: 'inherit' },
);

await build({
  absWorkingDir: root,
  entryPoints: [
    'src/index.ts',
    'src/errors.ts',
    'src/local-kms/index.ts',
    'src/s3/index.ts',
    'src/branch-key-store-dynamodb/index.ts',
    'src/xks-proxy/index.ts',
    'src/cli/main.ts',
  ],
  outbase: 'src',
  outdir: next,
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Dependencies (@aws-sdk/*, lru-cache) stay imports, resolved from the user's node_modules.
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
});

// The local KMS web console's static assets (HTML, JS, CSS: no build step), beside the local-kms
// entry; console-http.ts finds them relative to its own chunk.
cpSync(join(root, 'src/local-kms/console'), join(next, 'local-kms/console'), { recursive: true });

writeFileSync(join(next, '.build-hash'), hash);
// The swap: two renames, so dist/ is missing for the time between them only (no file is ever half
// written under dist/). The old tree is removed afterwards.
const old = join(root, `dist.${process.pid}.old`);
if (existsSync(dist)) renameSync(dist, old);
renameSync(next, dist);
rmSync(old, { recursive: true, force: true });
