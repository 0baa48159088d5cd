// `npm run build`: dist/ from src/.
//
// - Type declarations (and the type check) from tsc, one .d.ts per source module.
// - JavaScript from esbuild: one file per package entry point (., ./errors, ./local-kms, ./s3 and
//   the CLI) plus shared chunks, instead of one file per source module. Node's ESM loader pays per
//   file (resolve, read, compile, link): `import('kms-envelope')` loads 3 files instead of about 30,
//   which cuts its import time by more than half (`npm run bench`, footprint group) and so a
//   Lambda's cold start. Splitting keeps each module in exactly one output file, so a class reached
//   through two entry points (the error classes through `kms-envelope` and `kms-envelope/errors`)
//   stays one class and `instanceof` holds across them.
// - Not minified (readable stack traces); source maps point back to src/ for
//   `node --enable-source-maps`. Error names do not depend on class names (src/errors.ts), so no
//   name-keeping helpers are needed, here or in a user's minified bundle.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);

rmSync(`${root}dist`, { recursive: true, force: true });

// A type error fails the build here, before any JavaScript is written.
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--emitDeclarationOnly'], {
  cwd: root,
  stdio: 'inherit',
});

await build({
  absWorkingDir: root,
  entryPoints: ['src/index.ts', 'src/errors.ts', 'src/local-kms/index.ts', 'src/s3/index.ts', 'src/cli/main.ts'],
  outbase: 'src',
  outdir: 'dist',
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
