/**
 * The hierarchical keyring's data keys come from a pool per cached branch key (cache.ts,
 * crypto/random.ts): keys waiting in a pool must never be in memory without the branch key that
 * will wrap them. Checked the way an attacker with a memory read would: every writable mapping of
 * a child process read through /proc/self/mem, then the data keys of later messages searched for
 * in that dump. With one pool for the whole process (an earlier design), 7 of the next 8 keys of
 * another tenant, and of the same tenant after its cache entry was cleared, were in such a dump.
 */
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { memoryFunctionSource, procMemSkipReason } from '../../support/process-memory.js';

const dist = join(resolve(import.meta.dirname, '../../..'), 'dist/index.js');
const noProcMem = procMemSkipReason;

const script = `
  ${memoryFunctionSource}
  const { Envelope, HierarchicalKeyring } = await import(${JSON.stringify(dist)});
  // An in-memory branch key store: one fixed branch key per tenant, so no KMS is involved.
  const VERSION = '11111111-2222-4333-8444-555555555555';
  const keyStore = {
    logicalKeyStoreName: 'pool-test',
    getActiveBranchKey: async (id) => ({ branchKeyId: id, branchKeyVersion: VERSION, branchKey: Buffer.alloc(32, id.length), encryptionContext: {} }),
    getBranchKeyVersion: async (id, v) => ({ branchKeyId: id, branchKeyVersion: v, branchKey: Buffer.alloc(32, id.length), encryptionContext: {} }),
  };
  const ring = (id) => new HierarchicalKeyring({ keyStore, branchKeyId: id, cache: { maxAgeMs: 600_000 } });
  // The data key of a message, as hex (text, so not the key's bytes), read back through the keyring.
  function edkOf(message) {
    const b = Buffer.from(message);
    let o = 35;
    o += 2 + b.readUInt16BE(o); // context
    o += 2; // EDK count (1)
    o += 2 + b.readUInt16BE(o); // provider id
    const infoLength = b.readUInt16BE(o);
    const providerInfo = b.subarray(o + 2, o + 2 + infoLength);
    o += 2 + infoLength;
    const ciphertext = b.subarray(o + 2, o + 2 + b.readUInt16BE(o));
    return [{ providerId: 'aws-kms-hierarchy', providerInfo, ciphertext }];
  }
  async function dataKeyOf(keyring, message) {
    const key = await keyring.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: edkOf(message) });
    const hex = Buffer.from(key).toString('hex');
    key.fill(0);
    return hex;
  }
  async function foundIn(dump, keyring, messages) {
    let n = 0;
    for (const m of messages) if (dump.indexOf(Buffer.from(await dataKeyOf(keyring, m), 'hex')) >= 0) n++;
    return n;
  }
  const a = ring('tenant-a'), b = ring('tenant-bb');
  const envA = new Envelope({ keyring: a, cache: false }), envB = new Envelope({ keyring: b, cache: false });
  await envA.encrypt('a0');
  globalThis.gc();
  const afterA = memory();
  const messagesB = [];
  for (let i = 0; i < 8; i++) messagesB.push(await envB.encrypt('b' + i));
  a.clearCache();
  await new Promise((r) => setImmediate(r));
  globalThis.gc();
  const afterClear = memory();
  const messagesA = [];
  for (let i = 0; i < 8; i++) messagesA.push(await envA.encrypt('a' + (i + 1)));
  const result = { otherTenant: await foundIn(afterA, b, messagesB), afterClear: await foundIn(afterClear, a, messagesA) };
  // The check can see a key: one held in a buffer when the dump is taken is found in it.
  const held = await a.onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: edkOf(messagesA[7]) });
  const dump = memory();
  const hex = Buffer.from(held).toString('hex');
  held.fill(0);
  result.control = dump.indexOf(Buffer.from(hex, 'hex')) >= 0 ? 1 : 0;
  process.stdout.write(JSON.stringify(result));
`;

describe.skipIf(noProcMem)(`hierarchical keyring data-key pools${noProcMem ? ` (skipped: ${noProcMem})` : ''}`, () => {
  it('no future data key is in memory before its branch key is loaded (another tenant) or after its cache entry left (clearCache)', () => {
    const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    const result = JSON.parse(r.stdout) as { otherTenant: number; afterClear: number; control: number };
    expect(result).toEqual({ otherTenant: 0, afterClear: 0, control: 1 });
  }, 120_000);
});
