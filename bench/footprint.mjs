// Cold start and bundle size: what a Lambda pays before its first message.
//
// Cold start: fresh `node` processes, alternated, each timing its own import of the package
// (`import('kms-envelope')` resolves dist/index.js through the package's self-reference;
// `require('@aws-crypto/client-node')`). Whole-process wall time is reported too, next to an empty
// `node` for reference.
// Bundle: esbuild bundle + minify of each package's entry, Node platform, ESM output, @aws-sdk/*
// external (the target: "esbuild-minified size with @aws-sdk/* external"; lru-cache is bundled).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { formatRatio, markdownTable, median, progress, QUICK, verdictAtMost } from './lib.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);

const PROGRAMS = {
  'kms-envelope': {
    args: ['--input-type=module', '-e', timed("await import('kms-envelope')")],
  },
  '@aws-crypto/client-node': {
    args: ['-e', timed("require('@aws-crypto/client-node')")],
  },
  'node (empty)': { args: ['-e', timed('0')] },
};

/** Source that prints the milliseconds `expr` takes, then the process exits. */
function timed(expr) {
  return `const t0 = performance.now(); ${expr}; process.stdout.write(String(performance.now() - t0));`;
}

function runOnce(args) {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  const wall = performance.now() - t0;
  if (r.status !== 0) throw new Error(`cold start probe failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
  return { importMs: Number(r.stdout), wall };
}

/** Median in-process import time and process wall time over `runs` fresh processes per program. */
export function coldStart(runs = QUICK ? 5 : 9) {
  progress('cold start');
  const names = Object.keys(PROGRAMS);
  for (const n of names) runOnce(PROGRAMS[n].args); // warm the OS file cache for both sides
  const samples = new Map(names.map((n) => [n, { importMs: [], wall: [] }]));
  for (let r = 0; r < runs; r++) {
    const order = r % 2 === 0 ? names : [...names].reverse();
    for (const n of order) {
      const { importMs, wall } = runOnce(PROGRAMS[n].args);
      samples.get(n).importMs.push(importMs);
      samples.get(n).wall.push(wall);
    }
  }
  const med = new Map([...samples].map(([n, s]) => [n, { importMs: median(s.importMs), wall: median(s.wall) }]));
  const ours = med.get('kms-envelope');
  const esdk = med.get('@aws-crypto/client-node');
  const ratio = ours.importMs / esdk.importMs;
  const rows = names.map((n) => [
    n,
    n === 'node (empty)' ? '—' : `${med.get(n).importMs.toFixed(1)} ms`,
    `${med.get(n).wall.toFixed(0)} ms`,
  ]);
  const table = markdownTable(['Fresh process', `import time (median of ${runs})`, 'process wall time'], rows);
  const summary = `Import time, ours / ESDK: ${formatRatio(ratio)} — ${verdictAtMost(ratio, 0.5, '0.5x')}`;
  return { table, summary, checks: [{ name: 'import time ≤ half of the ESDK', pass: ratio <= 0.5 }] };
}

async function bundle(entry, external = ['@aws-sdk/*']) {
  const out = await build({
    entryPoints: [entry],
    bundle: true,
    minify: true,
    platform: 'node',
    format: 'esm',
    external,
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const code = out.outputFiles[0].contents;
  const inputs = Object.entries(out.metafile.outputs[Object.keys(out.metafile.outputs)[0]].inputs)
    .map(([file, { bytesInOutput }]) => ({ file, bytes: bytesInOutput }))
    .sort((a, b) => b.bytes - a.bytes);
  return { bytes: code.length, gzip: gzipSync(code).length, inputs };
}

/** KB as esbuild and bundle analyzers print them: 1,000 bytes (the stricter reading of "40 KB"). */
const KB = 1000;
const kb = (n) => `${(n / KB).toFixed(1)} KB`;

/** Bundle sizes of both packages; the biggest inputs of ours, so a regression names its cause. */
export async function bundleSize() {
  progress('bundle size');
  const ours = await bundle(`${ROOT}dist/index.js`);
  // For reference only: our own code, with the lru-cache runtime dependency left out too.
  const oursOwn = await bundle(`${ROOT}dist/index.js`, ['@aws-sdk/*', 'lru-cache']);
  const esdk = await bundle(require.resolve('@aws-crypto/client-node'));
  const table = markdownTable(
    ['Bundle (esbuild --minify, @aws-sdk/* external)', 'minified', 'gzip'],
    [
      ['kms-envelope (dist/index.js)', kb(ours.bytes), kb(ours.gzip)],
      ['kms-envelope, lru-cache also external (reference)', kb(oursOwn.bytes), kb(oursOwn.gzip)],
      ['@aws-crypto/client-node', kb(esdk.bytes), kb(esdk.gzip)],
    ],
  );
  // dist/ is bundled per entry point (scripts/build.mjs), so name the source modules from a bundle
  // of src/ instead (esbuild reads TypeScript); its total matches that of dist within a few dozen bytes.
  const bySource = await bundle(`${ROOT}src/index.ts`);
  const top = bySource.inputs
    .slice(0, 6)
    .map((i) => `${i.file.replace(/^.*node_modules\//, '')} ${kb(i.bytes)}`)
    .join(', ');
  const summary =
    `Bundle: ours ${kb(ours.bytes)} vs ESDK ${kb(esdk.bytes)} (${formatRatio(ours.bytes / esdk.bytes)}) — ` +
    `${verdictAtMost(ours.bytes, 40 * KB, '40 KB')}. Largest inputs of ours: ${top}.`;
  return { table, summary, checks: [{ name: 'bundle ≤ 40 KB minified', pass: ours.bytes <= 40 * KB }] };
}
