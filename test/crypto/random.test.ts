/**
 * Pooled randomness (src/crypto/random.ts): each value is a copy, handed out once; a closed pool
 * keeps nothing; and a startup snapshot never carries pooled bytes into the processes started from
 * it (they would repeat message ids, wrap IVs and data keys across processes), even bytes drawn
 * after the library's serialize callback ran.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { RandomPool, randomFillPooled, randomPooled } from '../../src/crypto/random.js';

// Every CSPRNG call random.ts makes, by the length it fills (the real randomFillSync still runs).
const fills = vi.hoisted(() => [] as number[]);
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return {
    ...real,
    randomFillSync: (target: Uint8Array, offset?: number, size?: number) => {
      fills.push(size ?? target.length - (offset ?? 0));
      return real.randomFillSync(target, offset, size);
    },
  };
});

const root = resolve(import.meta.dirname, '../..');

describe('pooled randomness', () => {
  beforeEach(() => {
    fills.length = 0;
  });

  it('takeKey: a fresh key per call, over an ArrayBuffer of its own; one CSPRNG call per 256 bytes', () => {
    const pool = new RandomPool(256);
    const seen = new Set<string>();
    for (let i = 0; i < 4_000; i++) {
      const key = pool.takeKey(32);
      expect(key.length).toBe(32);
      expect(key.byteOffset).toBe(0);
      expect(key.buffer.byteLength).toBe(32);
      seen.add(key.toString('hex'));
    }
    expect(seen.size).toBe(4_000);
    expect(fills).toEqual(Array.from({ length: 500 }, () => 256));
  });

  it('a value handed out is a copy: refilling the pool does not change it', () => {
    const pool = new RandomPool(256);
    const key = pool.takeKey(32);
    const id = randomPooled(32);
    const keyBefore = Buffer.from(key);
    const idBefore = Buffer.from(id);
    for (let i = 0; i < 24; i++) pool.takeKey(32); // three refills of the key pool
    for (let i = 0; i < 400; i++) randomPooled(32); // three refills of the 4 KiB pool
    expect(key).toEqual(keyBefore);
    expect(id).toEqual(idBefore);
  });

  it('discard empties a pool (the next draw refills it); close empties it for good (every later draw goes to the CSPRNG directly)', () => {
    const pool = new RandomPool(256);
    pool.takeKey(32);
    pool.takeKey(32);
    expect(fills).toEqual([256]);
    pool.discard();
    pool.takeKey(32);
    expect(fills).toEqual([256, 256]);
    pool.close();
    const a = pool.takeKey(32);
    const b = pool.takeKey(16);
    expect(fills).toEqual([256, 256, 32, 16]);
    expect(a.equals(Buffer.alloc(32))).toBe(false);
    expect(b.equals(Buffer.alloc(16))).toBe(false);
  });

  it('a pool allocates nothing until its first draw', () => {
    new RandomPool(256);
    expect(fills).toEqual([]);
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

    it("two processes started from one snapshot draw different keys and ids: pools filled before serialization, drawn from after it and by a deserialize callback that runs before the library's", async () => {
      // An application bundled to one CommonJS file (what --build-snapshot loads) that used the
      // library while the snapshot was built: before serialization, in a serialize callback
      // registered after the library's, and in an exit handler (which runs before the heap is saved).
      // A deserialize callback registered before the library's also draws: it runs before the
      // library's own callback has started the process's new epoch.
      writeFileSync(
        join(dir, 'first.ts'),
        `import { startupSnapshot } from 'node:v8';
         startupSnapshot.addDeserializeCallback(() => {
           globalThis.early = globalThis.draw();
         });`,
      );
      const entry = join(dir, 'entry.ts');
      writeFileSync(
        entry,
        `import './first.ts';
         import { startupSnapshot } from 'node:v8';
         import { RandomPool, randomPooled } from ${JSON.stringify(join(root, 'src/crypto/random.ts'))};
         const keys = new RandomPool(256);
         keys.takeKey(32);
         randomPooled(32);
         globalThis.draw = () => keys.takeKey(32).toString('hex') + ' ' + randomPooled(32).toString('hex');
         startupSnapshot.addSerializeCallback(() => {
           keys.takeKey(32);
           randomPooled(32);
         });
         process.once('exit', () => {
           keys.takeKey(32);
           randomPooled(32);
         });
         startupSnapshot.setDeserializeMainFunction(() => {
           process.stdout.write(globalThis.early + ' ' + globalThis.draw());
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
      const first = run();
      const second = run();
      expect(first).toHaveLength(4);
      for (const value of first) expect(value).toMatch(/^[0-9a-f]{64}$/);
      // Early key, early id, key, id: none the same in the two processes.
      for (let i = 0; i < 4; i++) expect(second[i]).not.toBe(first[i]);
    }, 120_000);
  });
});
