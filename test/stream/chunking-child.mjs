// Child process for test/stream/chunking-memory.test.ts: decrypts one message file through the
// built package's envelope.decryptStream(), written CHUNK bytes at a time, and prints one JSON line:
// the plaintext's length and SHA-256, and the largest growth of process.memoryUsage() over the
// baseline taken before the first write. Every sample follows a full GC (run with --expose-gc), so
// the numbers are live memory, not garbage waiting for the collector.
//
// Usage: node --expose-gc test/stream/chunking-child.mjs MESSAGE_FILE WRAPPING_KEY_HEX CHUNK [SAMPLE_EVERY]
//        (needs `npm run build` first; the keyring is RawAesKeyring({ keyNamespace: 'chunking', keyName: 'k' }))
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Envelope, RawAesKeyring } from '../../dist/index.js';

if (typeof globalThis.gc !== 'function') throw new Error('run with --expose-gc');
const [file, keyHex, chunkArg, everyArg] = process.argv.slice(2);
const message = readFileSync(file);
const CHUNK = Number(chunkArg);
// Samples (each a full GC) per message: about 64, whatever the chunk size.
const EVERY = Number(everyArg ?? Math.max(1, Math.floor(message.length / CHUNK / 64)));

const keyring = new RawAesKeyring({ keyNamespace: 'chunking', keyName: 'k', key: Buffer.from(keyHex, 'hex') });
const envelope = new Envelope({ keyring, cache: false, commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' });

const hash = createHash('sha256');
let received = 0;
const stream = envelope.decryptStream();
stream.on('data', (c) => {
  hash.update(c);
  received += c.length;
});
const ended = new Promise((resolve, reject) => {
  stream.on('end', resolve);
  stream.on('error', reject);
});

const fields = ['rss', 'heapUsed', 'external', 'arrayBuffers'];
const measure = () => {
  globalThis.gc();
  return process.memoryUsage();
};
const base = measure();
const peak = Object.fromEntries(fields.map((f) => [f, 0]));
let samples = 0;
const sample = () => {
  const m = measure();
  samples++;
  for (const f of fields) peak[f] = Math.max(peak[f], m[f] - base[f]);
};

let writes = 0;
for (let o = 0; o < message.length; o += CHUNK) {
  // One write in flight at a time: Node's own write queue (up to 16 KiB of pending chunks, one
  // object each) is not the decryptor's memory, and the test's chunks are garbage once consumed.
  await new Promise((resolve, reject) => stream.write(message.subarray(o, o + CHUNK), (e) => (e ? reject(e) : resolve())));
  if (++writes % EVERY === 0) sample();
}
stream.end();
await ended;
sample();

process.stdout.write(
  JSON.stringify({
    messageBytes: message.length,
    chunk: CHUNK,
    writes,
    samples,
    received,
    sha256: hash.digest('hex'),
    // Largest growth over the baseline, in bytes; heapUsed + external is the live JS and Buffer memory.
    peakDelta: { ...peak, live: Math.max(0, peak.heapUsed) + Math.max(0, peak.external) },
  }) + '\n',
);
