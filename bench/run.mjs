// `npm run bench`: kms-envelope against @aws-crypto/client-node and against the AES-GCM limit, in
// one process on one machine. Prints a markdown report and writes it to bench/results.md
// (bench/results-partial.md for BENCH_QUICK=1 or a subset of the groups).
//
//   npm run bench                       # everything, a few minutes
//   BENCH_QUICK=1 npm run bench         # fewer sizes and samples, about 50 s
//   node bench/run.mjs payloads streams # only some groups (after `npm run build`)
//   node bench/run.mjs policy           # worst-case key policy evaluation (not in BENCH_QUICK runs)
//   node bench/run.mjs hierarchy        # hierarchical keyring 1 KiB vs the ESDK's and its floor
//
// Groups: footprint (cold start, bundle), payloads, streams, kms, hierarchy, load, policy. See bench/README.md.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formatSize, machine, progress, QUICK, targetsSection } from './lib.mjs';

// The AWS SDK warns that future versions need Node 22; that is not a benchmark result.
process.removeAllListeners('warning');
process.on('warning', (w) => {
  if (!`${w.name} ${w.message}`.includes('NodeVersionSupportWarning')) process.stderr.write(`${w.name}: ${w.message}\n`);
});

const lib = await import('../dist/index.js').catch((e) => {
  throw new Error(`cannot import dist/index.js (run \`npm run build\` first): ${e.message}`);
});
const localKms = await import('../dist/local-kms/index.js');

const GROUPS = {
  footprint: async () => {
    const { coldStart, bundleSize } = await import('./footprint.mjs');
    const { firstDecrypt } = await import('./first-decrypt.mjs');
    const cold = coldStart();
    const first = await firstDecrypt(lib, localKms);
    const bundle = await bundleSize();
    return {
      title: 'Cold start and bundle size',
      body: `${cold.table}\n\n${cold.summary}\n\n${first.table}\n\n${first.summary}\n\n${bundle.table}\n\n${bundle.summary}`,
      checks: [...cold.checks, ...bundle.checks],
    };
  },
  payloads: async () => {
    const { payloadBench } = await import('./payloads.mjs');
    const r = await payloadBench(lib);
    return [
      {
        title: `Buffers: kms-envelope (default ${formatSize(r.frameLength)} frames) vs @aws-crypto/client-node (raw AES keyring, warm cache)`,
        body: `${r.esdkTable}\n\n${r.notes}`,
        checks: [],
      },
      { title: 'Buffers: kms-envelope vs the limit', body: r.limitTable, checks: r.checks },
    ];
  },
  streams: async () => {
    const { streamBench } = await import('./streams.mjs');
    const r = await streamBench(lib);
    return { title: 'Streams', body: r.table, checks: r.checks };
  },
  kms: async () => {
    const { kmsBench } = await import('./kms.mjs');
    const r = await kmsBench(lib, localKms);
    return { title: 'KMS requests (same cache limits on both sides)', body: r.table, checks: r.checks };
  },
  hierarchy: async () => {
    const { hierarchyBench } = await import('./hierarchy.mjs');
    const r = await hierarchyBench(lib, localKms);
    return { title: 'Hierarchical keyring, 1 KiB: kms-envelope vs KmsHierarchicalKeyRingNode vs the floor', body: `${r.table}\n\n${r.notes}`, checks: r.checks };
  },
  load: async () => {
    const { loadBench } = await import('./load.mjs');
    const r = await loadBench();
    return { title: 'Local KMS under load (server in its own process, loopback HTTP)', body: r.table, checks: r.checks };
  },
  policy: async () => {
    const { policyBench } = await import('./policy.mjs');
    const r = await policyBench(localKms);
    return { title: 'Local KMS: worst-case key policy evaluation (in process)', body: `${r.table}\n\n${r.notes}`, checks: r.checks };
  },
};

const wanted = process.argv.slice(2);
for (const w of wanted) if (!(w in GROUPS)) throw new Error(`unknown group ${w}; groups: ${Object.keys(GROUPS).join(', ')}`);
// The policy group (worst-case key policy evaluation) runs in full runs or when named, not in a
// BENCH_QUICK run of everything.
const names = wanted.length > 0 ? wanted : Object.keys(GROUPS).filter((n) => !(QUICK && n === 'policy'));

const m = machine();
const started = performance.now();
const sections = [];
for (const name of names) {
  progress(`group ${name}`);
  sections.push(...[await GROUPS[name]()].flat());
}
const seconds = (performance.now() - started) / 1000;
const loadAfter = machine().load;

const checks = sections.flatMap((s) => s.checks);
const report = [
  `Measured ${m.date} on ${m.cpu} (${m.cores} cores), Node ${m.node}, ${QUICK ? 'BENCH_QUICK=1, ' : ''}` +
    `${names.join(', ')} in ${seconds.toFixed(0)} s; 1-minute load average ${m.load.toFixed(1)} before, ` +
    `${loadAfter.toFixed(1)} after (other work on the machine shows up as noise). ` +
    'Rates are medians of alternated batches and their ratios medians of per-round ratios; big buffers ' +
    'and streams the fastest of alternated runs; MB/s = 10^6 bytes/s.',
  ...sections.map((s) => `### ${s.title}\n\n${s.body}`),
  targetsSection(checks),
]
  .filter((part) => part !== undefined)
  .join('\n\n');

process.stdout.write(`${report}\n`);
// Only a full run (every group, full samples) replaces the one the README links to.
const full = !QUICK && names.length === Object.keys(GROUPS).length;
const file = fileURLToPath(new URL(full ? './results.md' : './results-partial.md', import.meta.url));
writeFileSync(file, `# kms-envelope benchmark results\n\n\`npm run bench\` output.\n\n${report}\n`);
progress(`wrote ${file}`);
