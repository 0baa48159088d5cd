// Quick throughput check (not a test; timing is never asserted): envelope.encryptStream /
// decryptStream through `pipeline` against a raw AES-256-GCM Transform over the same 64 KiB chunks.
// Usage: npm run build && node test/stream/throughput.mjs [MiB=256] [runs=5]
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Envelope, RawAesKeyring } from '../../dist/index.js';

const MiB = 1 << 20;
const TOTAL = Number(process.argv[2] ?? 256) * MiB;
const RUNS = Number(process.argv[3] ?? 5);
const CHUNK = 64 * 1024;
const block = randomBytes(MiB);
const chunksOf = (buf, size) => Array.from({ length: Math.ceil(buf.length / size) }, (_, i) => buf.subarray(i * size, (i + 1) * size));
const plain = Array.from({ length: TOTAL / CHUNK }, (_, i) => block.subarray((i * CHUNK) % MiB, ((i * CHUNK) % MiB) + CHUNK));

const source = (chunks) => {
  let i = 0;
  return new Readable({
    highWaterMark: 4 * CHUNK,
    read() {
      while (i < chunks.length) if (!this.push(chunks[i++])) return;
      this.push(null);
    },
  });
};
const sink = (parts) => new Writable({ highWaterMark: 4 * CHUNK, write(c, _e, cb) { parts?.push(c); cb(); } });
const rawGcm = (key, iv, tag) => {
  const c = tag ? createDecipheriv('aes-256-gcm', key, iv) : createCipheriv('aes-256-gcm', key, iv);
  if (tag) c.setAuthTag(tag);
  return new Transform({
    transform: (chunk, _e, cb) => cb(null, c.update(chunk)),
    flush: (cb) => { c.final(); cb(null, tag ? undefined : c.getAuthTag()); },
  });
};

const envelope = new Envelope({ keyring: new RawAesKeyring({ keyNamespace: 'tp', keyName: 'k', key: randomBytes(32) }) });
const parts = [];
await pipeline(source(plain), envelope.encryptStream({}), sink(parts));
const message = chunksOf(Buffer.concat(parts), CHUNK);
const key = randomBytes(32);
const iv = randomBytes(12);
const rawParts = [];
await pipeline(source(plain), rawGcm(key, iv), sink(rawParts));
const rawAll = Buffer.concat(rawParts);
const rawChunks = chunksOf(rawAll.subarray(0, TOTAL), CHUNK);
const tag = rawAll.subarray(TOTAL);

async function best(op) {
  let min = Infinity;
  for (let r = 0; r < RUNS; r++) {
    const t = process.hrtime.bigint();
    await op();
    min = Math.min(min, Number(process.hrtime.bigint() - t) / 1e9);
  }
  return TOTAL / MiB / min; // MiB/s
}
// Alternate sides run by run so both see the same machine state.
const result = {};
for (const [name, ours, raw] of [
  ['encrypt', () => pipeline(source(plain), envelope.encryptStream({}), sink()), () => pipeline(source(plain), rawGcm(key, iv), sink())],
  ['decrypt', () => pipeline(source(message), envelope.decryptStream({}), sink()), () => pipeline(source(rawChunks), rawGcm(key, iv, tag), sink())],
]) {
  let o = 0, w = 0;
  for (let i = 0; i < 2; i++) {
    o = Math.max(o, await best(ours));
    w = Math.max(w, await best(raw));
  }
  result[name] = { oursMiBps: Math.round(o), rawMiBps: Math.round(w), ratio: Number((o / w).toFixed(2)) };
}
console.log(JSON.stringify({ totalMiB: TOTAL / MiB, chunk: CHUNK, frameLength: envelope.frameLength, ...result }));
