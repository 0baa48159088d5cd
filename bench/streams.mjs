// Stream throughput: our encryptStream/decryptStream through `pipeline` from a generated source
// into a discarding sink, against raw AES-256-GCM over the same chunks (a Transform around one
// createCipheriv/createDecipheriv): the cost of framing, backpressure and bookkeeping on top of the
// cipher itself. Target: at least 60% of raw GCM.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { compareFastest, formatPercent, formatRate, markdownTable, mbps, MiB, progress, QUICK, verdictAtLeast } from './lib.mjs';
import { CONTEXT, ours } from './sides.mjs';

const TOTAL = QUICK ? 64 * MiB : 256 * MiB;
const CHUNK = 64 * 1024; // what fs.createReadStream hands out
const BLOCK = randomBytes(MiB); // the source repeats this block

/** A source of `chunks` (Buffers, reused), pushed synchronously as fast as the consumer pulls. */
class ChunkSource extends Readable {
  #chunks;
  #i = 0;
  constructor(chunks) {
    super({ highWaterMark: 4 * CHUNK });
    this.#chunks = chunks;
  }
  _read() {
    while (this.#i < this.#chunks.length) {
      if (!this.push(this.#chunks[this.#i++])) return;
    }
    this.push(null);
  }
}

/** A sink that counts bytes and, when given a hash, feeds it. */
class Sink extends Writable {
  bytes = 0;
  constructor(hash) {
    super({ highWaterMark: 4 * CHUNK });
    this.hash = hash;
  }
  _write(chunk, _enc, cb) {
    this.bytes += chunk.length;
    this.hash?.update(chunk);
    cb();
  }
}

function slices(buf, size) {
  const out = [];
  for (let o = 0; o < buf.length; o += size) out.push(buf.subarray(o, Math.min(o + size, buf.length)));
  return out;
}

function plaintextChunks() {
  const out = [];
  for (let o = 0; o < TOTAL; o += CHUNK) out.push(BLOCK.subarray(o % MiB, (o % MiB) + CHUNK));
  return out;
}

/** Raw GCM as a Transform: one cipher over the whole stream; the tag (encrypt) is appended at the end. */
function rawGcm({ key, iv, tag }) {
  const c = tag === undefined ? createCipheriv('aes-256-gcm', key, iv) : createDecipheriv('aes-256-gcm', key, iv);
  if (tag !== undefined) c.setAuthTag(tag);
  return new Transform({
    transform(chunk, _enc, cb) {
      cb(null, c.update(chunk));
    },
    flush(cb) {
      c.final();
      cb(null, tag === undefined ? c.getAuthTag() : undefined);
    },
  });
}

async function run(chunks, transform, hash) {
  const sink = new Sink(hash);
  await pipeline(new ChunkSource(chunks), transform, sink);
  return sink.bytes;
}

function plaintextDigest() {
  const h = createHash('sha256');
  for (const c of plaintextChunks()) h.update(c);
  return h.digest('hex');
}

export async function streamBench(lib) {
  progress(`streams (${TOTAL / MiB} MiB)`);
  const side = ours(lib, { suite: 0x0478 });
  const env = side.envelope;
  const chunks = plaintextChunks();
  const expected = plaintextDigest();

  // Setup (untimed): one message through encryptStream, checked by a streaming decrypt; raw GCM ciphertext.
  const parts = [];
  await pipeline(new ChunkSource(chunks), env.encryptStream({ context: CONTEXT }), new Writable({
    write(c, _e, cb) {
      parts.push(c);
      cb();
    },
  }));
  const message = Buffer.concat(parts);
  parts.length = 0;
  const check = createHash('sha256');
  await run(slices(message, CHUNK), env.decryptStream(), check);
  if (check.digest('hex') !== expected) throw new Error('decryptStream output differs from the plaintext');
  const key = randomBytes(32);
  const iv = randomBytes(12);
  const rawParts = [];
  await pipeline(new ChunkSource(chunks), rawGcm({ key, iv }), new Writable({
    write(c, _e, cb) {
      rawParts.push(c);
      cb();
    },
  }));
  const rawAll = Buffer.concat(rawParts);
  const raw = rawAll.subarray(0, TOTAL);
  const tag = rawAll.subarray(TOTAL);
  const messageChunks = slices(message, CHUNK);
  const rawChunks = slices(raw, CHUNK);

  const expectBytes = (n) => {
    if (n !== TOTAL && n !== TOTAL + 16) throw new Error(`stream produced ${n} bytes`);
  };
  const runs = QUICK ? 3 : 6;
  const enc = await compareFastest(
    [
      { name: 'ours', op: async () => run(chunks, env.encryptStream({ context: CONTEXT })) },
      { name: 'raw', op: async () => run(chunks, rawGcm({ key, iv })) },
    ],
    { runs },
  );
  const dec = await compareFastest(
    [
      { name: 'ours', op: async () => expectBytes(await run(messageChunks, env.decryptStream())) },
      { name: 'raw', op: async () => expectBytes(await run(rawChunks, rawGcm({ key, iv, tag }))) },
    ],
    { runs },
  );

  const checks = [];
  const rows = [];
  for (const [op, best] of [['encryptStream', enc], ['decryptStream', dec]]) {
    const o = mbps(TOTAL, best.get('ours'));
    const r = mbps(TOTAL, best.get('raw'));
    checks.push({ name: `${op} ≥ 60% of raw GCM stream`, pass: o / r >= 0.6 });
    rows.push([`${op} ${TOTAL / MiB} MiB`, formatRate(o, 'MB/s'), formatRate(r, 'MB/s'), formatPercent(o / r), verdictAtLeast(o / r, 0.6, '60%')]);
  }
  const table = markdownTable(['Stream (64 KiB chunks, pipeline)', 'kms-envelope', 'raw GCM Transform', 'ours / raw', 'target'], rows);
  return { table, checks };
}
