/**
 * Pooled randomness (src/crypto/random.ts): each value is a copy, handed out once, in memory of its
 * own; and a startup snapshot never carries pooled bytes into the processes started from it (they
 * would repeat message ids, wrap IVs and data keys across processes).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { randomFillPooled, randomKey, randomPooled } from '../../src/crypto/random.js';

const root = resolve(import.meta.dirname, '../..');

describe('pooled randomness', () => {
  it('randomKey: a fresh key per call, in memory of its own', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5_000; i++) {
      const key = randomKey(32);
      expect(key.length).toBe(32);
      // Its own ArrayBuffer: zeroing the key leaves no copy in a shared Buffer pool slab.
      expect(key.byteOffset).toBe(0);
      expect(key.buffer.byteLength).toBe(32);
      seen.add(key.toString('hex'));
    }
    expect(seen.size).toBe(5_000);
  });

  it('a value handed out is a copy: refilling the pool does not change it', () => {
    const key = randomKey(32);
    const id = randomPooled(32);
    const keyBefore = Buffer.from(key);
    const idBefore = Buffer.from(id);
    for (let i = 0; i < 24; i++) randomKey(32); // three refills of the 256-byte key pool
    for (let i = 0; i < 400; i++) randomPooled(32); // three refills of the 4 KiB pool
    expect(key).toEqual(keyBefore);
    expect(id).toEqual(idBefore);
  });

  it('randomFillPooled writes exactly the asked range, also past the pool size', () => {
    for (const length of [1, 28, 32, 4096, 5000]) {
      const target = Buffer.alloc(length + 8, 0xaa);
      randomFillPooled(target, 4, length);
      expect(target.subarray(0, 4).every((b) => b === 0xaa)).toBe(true);
      expect(target.subarray(4 + length).every((b) => b === 0xaa)).toBe(true);
      if (length >= 28) expect(target.subarray(4, 4 + length).some((b) => b !== 0xaa)).toBe(true);
    }
  });

  describe('startup snapshots (node --build-snapshot)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kms-envelope-snapshot-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('two processes started from one snapshot, built after both pools were filled, draw different keys and ids', async () => {
      // An application bundled to one CommonJS file (what --build-snapshot loads) that used the
      // library while the snapshot was built, so both pools held bytes when the heap was serialized.
      const entry = join(dir, 'entry.ts');
      writeFileSync(
        entry,
        `import { startupSnapshot } from 'node:v8';
         import { randomKey, randomPooled } from ${JSON.stringify(join(root, 'src/crypto/random.ts'))};
         randomKey(32);
         randomPooled(32);
         startupSnapshot.setDeserializeMainFunction(() => {
           process.stdout.write(randomKey(32).toString('hex') + ' ' + randomPooled(32).toString('hex'));
         });`,
      );
      const bundle = join(dir, 'entry.cjs');
      await build({ entryPoints: [entry], bundle: true, platform: 'node', format: 'cjs', outfile: bundle, logLevel: 'silent' });
      const blob = join(dir, 'snapshot.blob');
      const made = spawnSync(process.execPath, ['--snapshot-blob', blob, '--build-snapshot', bundle], { encoding: 'utf8', timeout: 60_000 });
      expect(made.stderr).toBe('');
      expect(made.status).toBe(0);
      const run = () => {
        const r = spawnSync(process.execPath, ['--snapshot-blob', blob], { encoding: 'utf8', timeout: 60_000 });
        expect(r.stderr).toBe('');
        expect(r.status).toBe(0);
        return r.stdout.split(' ');
      };
      const [key1, id1] = run();
      const [key2, id2] = run();
      expect(key1).toMatch(/^[0-9a-f]{64}$/);
      expect(id1).toMatch(/^[0-9a-f]{64}$/);
      expect(key2).not.toBe(key1);
      expect(id2).not.toBe(id1);
    }, 120_000);
  });
});
