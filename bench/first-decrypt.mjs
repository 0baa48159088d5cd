// A Lambda's cold invocation: a fresh `node` process that loads the library and the AWS SDK KMS
// client, makes a KMS keyring, and decrypts one message whose data key it must ask KMS for (one
// `Decrypt` over loopback HTTP to the local KMS). Timed inside the process from before the first
// import to the verified plaintext, so it adds what the import-time row leaves out: constructing
// the SDK client, its first request (credentials, signing, connection) and the first decrypt on
// cold JIT. Both libraries decrypt the same message (ours, which the ESDK reads) with the same
// SDK version and credentials; runs alternate between the two.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { formatRatio, markdownTable, median, progress, QUICK } from './lib.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CREDENTIALS = "{ accessKeyId: 'AKIDBENCH', secretAccessKey: 'bench-secret' }";

// Each program prints "<ms> <sha256 of the plaintext>". Inputs come from the environment.
// Each side builds the client its users would: ours takes the bare `KMSClient` (commands loaded per
// use), the ESDK's keyring calls methods and needs the aggregated `KMS` class.
const clientOptions = `{ endpoint: process.env.KMS_URL, region: 'us-east-1', credentials: ${CREDENTIALS} }`;
const MESSAGE = "Buffer.from(process.env.MESSAGE_B64, 'base64')";
const REPORT = "process.stdout.write((performance.now() - t0).toFixed(2) + ' ' + require('node:crypto').createHash('sha256').update(plaintext).digest('hex'))";

const PROGRAMS = {
  'kms-envelope': [
    '--input-type=module',
    '-e',
    [
      "import { createRequire } from 'node:module';",
      'const require = createRequire(import.meta.url);',
      'const t0 = performance.now();',
      "const { Envelope, KmsKeyring } = await import('kms-envelope');",
      "const { KMSClient } = await import('@aws-sdk/client-kms');",
      `const client = new KMSClient(${clientOptions});`,
      'const envelope = new Envelope({ keyring: new KmsKeyring({ keyId: process.env.KEY_ARN, client }) });',
      `const { plaintext } = await envelope.decrypt(${MESSAGE});`,
      `${REPORT};`,
    ].join('\n'),
  ],
  '@aws-crypto/client-node': [
    '-e',
    [
      '(async () => {',
      'const t0 = performance.now();',
      "const { buildClient, CommitmentPolicy, KmsKeyringNode } = require('@aws-crypto/client-node');",
      "const { KMS } = require('@aws-sdk/client-kms');",
      `const client = new KMS(${clientOptions});`,
      'const keyring = new KmsKeyringNode({ keyIds: [process.env.KEY_ARN], clientProvider: () => client });',
      'const { decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);',
      `const { plaintext } = await decrypt(keyring, ${MESSAGE});`,
      `${REPORT};`,
      '})().catch((e) => { console.error(e); process.exit(1); });',
    ].join('\n'),
  ],
};

/**
 * Median time to the first plaintext in a fresh process, per library. `lib` and `localKmsLib` are
 * the built package and its local KMS subpath (the server runs in this process).
 */
export async function firstDecrypt(lib, localKmsLib, runs = QUICK ? 5 : 9) {
  progress('cold start to first decrypt (fresh processes, KMS over loopback HTTP)');
  const server = await localKmsLib.startLocalKmsServer({ port: 0 });
  try {
    const { KMSClient } = await import('@aws-sdk/client-kms');
    const client = new KMSClient({ endpoint: server.url, region: 'us-east-1', credentials: { accessKeyId: 'AKIDBENCH', secretAccessKey: 'bench-secret' } });
    const { CreateKeyCommand } = await import('@aws-sdk/client-kms');
    const { KeyMetadata } = await client.send(new CreateKeyCommand({ Description: 'first-decrypt bench' }));
    const plaintext = randomBytes(4096);
    const envelope = new lib.Envelope({ keyring: new lib.KmsKeyring({ keyId: KeyMetadata.Arn, client }), cache: false });
    const message = await envelope.encrypt(plaintext, { context: { purpose: 'bench' } });
    client.destroy();
    const expected = createHash('sha256').update(plaintext).digest('hex');
    const env = { KMS_URL: server.url, KEY_ARN: KeyMetadata.Arn, MESSAGE_B64: message.toString('base64') };

    const names = Object.keys(PROGRAMS);
    // The server runs in this process, so the probes run asynchronously (spawnSync would block it).
    const run = (name) => runAsync(PROGRAMS[name], env);
    for (const n of names) await run(n); // warm the OS file cache for both sides
    const samples = new Map(names.map((n) => [n, []]));
    for (let r = 0; r < runs; r++) {
      for (const n of r % 2 === 0 ? names : [...names].reverse()) {
        const { ms, digest } = await run(n);
        if (digest !== expected) throw new Error(`${n}: first decrypt returned the wrong plaintext`);
        samples.get(n).push(ms);
      }
    }
    const med = new Map([...samples].map(([n, v]) => [n, median(v)]));
    const table = markdownTable(
      ['Fresh process: import, KMS client, keyring, first decrypt (1 KMS Decrypt)', `median of ${runs}`, 'fastest'],
      names.map((n) => [n, `${med.get(n).toFixed(1)} ms`, `${Math.min(...samples.get(n)).toFixed(1)} ms`]),
    );
    const ratio = med.get('kms-envelope') / med.get('@aws-crypto/client-node');
    return { table, summary: `Time to the first plaintext, ours / ESDK: ${formatRatio(ratio)} (reported, no target).` };
  } finally {
    await server.close();
  }
}

async function runAsync(args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      // Nothing preloaded; the SDK's Node-version notice (a process warning) silenced on both sides.
      env: { ...process.env, ...env, NODE_OPTIONS: '', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`first-decrypt probe failed: ${err.trim().split('\n').slice(0, 8).join(' ')}`));
      const [ms, digest] = out.trim().split(' ');
      resolve({ ms: Number(ms), digest });
    });
  });
}

