// Micro-benchmark of the message-format engine against its crypto floor.
//
//   node bench/format-micro.mjs [--quick]
//
// Compiles src/format with esbuild (so it runs without a full build) and reports ops/s for:
//  - 1 KiB encrypt (encryptBuffer, cached materials) vs the crypto floor of one message:
//    pooled 32-byte random id + HKDF-SHA512 extract + 2 single-block expands + header GCM tag +
//    one 1 KiB AES-256-GCM frame;
//  - 1 KiB decrypt (parseHeader + deriveAndVerifyHeader + decryptBody) vs the same floor;
//  - large payloads: encryptBuffer (64 KiB and 1 MiB frames) vs one-shot AES-256-GCM.
import { build } from 'esbuild';
import { createCipheriv, createHmac, randomBytes, randomFillSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const quick = process.argv.includes('--quick');
const root = new URL('..', import.meta.url).pathname;
const out = await build({
  entryPoints: [join(root, 'src/format/index.ts')],
  bundle: true,
  platform: 'node',
  format: 'esm',
  write: false,
  logLevel: 'silent',
});
const dir = mkdtempSync(join(tmpdir(), 'fmt-bench-'));
const file = join(dir, 'format.mjs');
writeFileSync(file, out.outputFiles[0].text);
const F = await import(pathToFileURL(file).href);
rmSync(dir, { recursive: true, force: true });

/** ops/s of fn over ~ms milliseconds. */
function rate(fn, ms) {
  let n = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(ms * 1e6));
  let now = start;
  while (now < deadline) {
    fn();
    n++;
    now = process.hrtime.bigint();
  }
  return n / (Number(now - start) / 1e9);
}

/**
 * Compares candidate to baseline in interleaved rounds (so both see the same machine load) and
 * returns the best rates and the median per-round ratio candidate/baseline.
 */
function compare(baseline, candidate, ms = quick ? 60 : 200, rounds = quick ? 5 : 15) {
  for (let i = 0; i < 20; i++) {
    baseline();
    candidate();
  }
  const ratios = [];
  let bestBase = 0;
  let bestCand = 0;
  for (let r = 0; r < rounds; r++) {
    const b = rate(baseline, ms);
    const c = rate(candidate, ms);
    bestBase = Math.max(bestBase, b);
    bestCand = Math.max(bestCand, c);
    ratios.push(c / b);
  }
  ratios.sort((x, y) => x - y);
  return { base: bestBase, cand: bestCand, ratio: ratios[Math.floor(ratios.length / 2)] };
}

const suite = F.SUITES.get(0x0478);
const dataKey = randomBytes(32);
const edk = { providerId: 'aws-kms', providerInfo: Buffer.alloc(75, 0x61), ciphertext: randomBytes(184) };
const context = { purpose: 'bench', tenant: 'acme' };
const prepared = F.prepareEncryption({ suite, dataKey, encryptedDataKeys: [edk], context }, 65536);
const headerAuthLength = prepared.template.authenticatedLength;

// Crypto floor of one message.
const pool = Buffer.allocUnsafe(4096);
let poolOff = 4096;
const keyInfo = Buffer.concat([Buffer.from([0x04, 0x78]), Buffer.from('DERIVEKEY'), Buffer.from([1])]);
const commitInfo = Buffer.concat([Buffer.from('COMMITKEY'), Buffer.from([1])]);
const headerBytes = randomBytes(headerAuthLength);
const zeroIv = Buffer.alloc(12);
const frameIv = Buffer.alloc(12);
frameIv[11] = 1;
const frameAad = randomBytes(32 + 34 + 12);
function floor(plaintext) {
  if (poolOff + 32 > 4096) {
    randomFillSync(pool);
    poolOff = 0;
  }
  const id = pool.subarray(poolOff, (poolOff += 32));
  const prk = createHmac('sha512', id).update(dataKey).digest();
  const key = createHmac('sha512', prk).update(keyInfo).digest().subarray(0, 32);
  createHmac('sha512', prk).update(commitInfo).digest();
  const h = createCipheriv('aes-256-gcm', key, zeroIv);
  h.setAAD(headerBytes);
  h.final();
  h.getAuthTag();
  const c = createCipheriv('aes-256-gcm', key, frameIv);
  c.setAAD(frameAad);
  c.update(plaintext);
  c.final();
  c.getAuthTag();
}

const results = {};
const kib = randomBytes(1024);
const enc = compare(() => floor(kib), () => F.encryptBuffer(prepared, dataKey, kib));
const message = F.encryptBuffer(prepared, dataKey, kib);
const limits = { maxEncryptedDataKeys: 10 };
const dec = compare(
  () => floor(kib),
  () => {
    const h = F.parseHeader(message, limits);
    F.decryptBody(h, F.deriveAndVerifyHeader(h, dataKey), message);
  },
);
results['1 KiB'] = {
  floor_ops: Math.round(enc.base),
  encrypt_ops: Math.round(enc.cand),
  encrypt_vs_floor_median: +enc.ratio.toFixed(3),
  decrypt_ops: Math.round(dec.cand),
  decrypt_vs_floor_median: +dec.ratio.toFixed(3),
};

for (const size of quick ? [1 << 20] : [1 << 20, 16 << 20]) {
  const pt = randomBytes(size);
  const oneShot = () => {
    const c = createCipheriv('aes-256-gcm', dataKey, frameIv);
    c.setAAD(frameAad);
    c.update(pt);
    c.final();
    c.getAuthTag();
  };
  const ms = size > 4 << 20 ? 400 : 200;
  const row = {};
  const mbps = (ops) => Math.round((ops * size) / 1e6);
  for (const frame of [65536, 1 << 20]) {
    const p = F.prepareEncryption({ suite, dataKey, encryptedDataKeys: [edk], context }, frame);
    const r = compare(oneShot, () => F.encryptBuffer(p, dataKey, pt), ms);
    row.one_shot_MBps = Math.max(row.one_shot_MBps ?? 0, mbps(r.base));
    row[`encrypt_frame_${frame >> 10}KiB_MBps`] = mbps(r.cand);
    row[`ratio_frame_${frame >> 10}KiB_median`] = +r.ratio.toFixed(3);
  }
  const p = F.prepareEncryption({ suite, dataKey, encryptedDataKeys: [edk], context }, 65536);
  const m = F.encryptBuffer(p, dataKey, pt);
  const r = compare(oneShot, () => {
    const h = F.parseHeader(m, limits);
    F.decryptBody(h, F.deriveAndVerifyHeader(h, dataKey), m);
  }, ms);
  row.decrypt_frame_64KiB_MBps = mbps(r.cand);
  row.decrypt_ratio_median = +r.ratio.toFixed(3);
  results[`${size >> 20} MiB`] = row;
}

console.log(JSON.stringify({ node: process.version, results }, null, 2));
