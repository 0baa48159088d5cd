/**
 * List markers resume after the last item returned, by its identity (key id, alias name, tag key,
 * rotation), not by position: items created or deleted between pages never make the remaining
 * ones repeat or go missing. Markers we did not issue (forged, edited, or from another list) are
 * InvalidMarkerException.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ListKeysCommand, ListResourceTagsCommand } from '@aws-sdk/client-kms';
import { KmsServiceError, LocalKmsService, type KmsResponse } from '../../src/local-kms/index.js';
import { expectAwsError, startServer, tempDir } from './helpers.js';

const DAY_MS = 86_400_000;

let now = Date.UTC(2026, 0, 1);
const toClose: LocalKmsService[] = [];
function service(opts: { dataDir?: string } = {}): LocalKmsService {
  const s = new LocalKmsService({ clock: () => now, ...opts });
  toClose.push(s);
  return s;
}
afterEach(() => {
  for (const s of toClose.splice(0)) s.close();
});

async function invalidMarker(p: Promise<unknown>): Promise<void> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(KmsServiceError);
  expect((e as KmsServiceError).type).toBe('InvalidMarkerException');
  expect((e as KmsServiceError).status).toBe(400);
}

/** Pages of `limit` through `op`, running `between(pageIndex)` after each page. Returns all items. */
async function pages<T>(
  kms: LocalKmsService,
  op: string,
  input: Record<string, unknown>,
  member: string,
  between: (page: number, items: T[]) => Promise<void> = async () => {},
): Promise<T[]> {
  const seen: T[] = [];
  let marker: string | undefined;
  for (let page = 0; page < 100; page++) {
    const r: KmsResponse = await kms.call(op, { ...input, Limit: 2, ...(marker !== undefined ? { Marker: marker } : {}) });
    const items = r[member] as T[];
    expect(items.length).toBeLessThanOrEqual(2);
    seen.push(...items);
    expect(r.Truncated).toBe(r.NextMarker !== undefined);
    if (!r.Truncated) return seen;
    marker = r.NextMarker as string;
    await between(page, items);
  }
  throw new Error('pagination did not end');
}

describe('markers resume after the last returned item', () => {
  it('ListKeys: deleting a returned key and a not-yet-returned one between pages skips and repeats nothing', async () => {
    const kms = service();
    for (let i = 0; i < 8; i++) await kms.call('CreateKey', {});
    const before = ((await kms.call('ListKeys', {})).Keys as { KeyId: string }[]).map((k) => k.KeyId);
    const deleted = new Set<string>();
    const created: string[] = [];
    const seen = await pages<{ KeyId: string }>(kms, 'ListKeys', {}, 'Keys', async (page, items) => {
      if (page !== 0) return;
      // Delete the last key returned (the marker names it) and the last one not yet returned.
      const victims = [items[items.length - 1]!.KeyId, before[before.length - 1]!];
      for (const id of victims) {
        await kms.call('ScheduleKeyDeletion', { KeyId: id, PendingWindowInDays: 7 });
        deleted.add(id);
      }
      now += 8 * DAY_MS; // the window passes: the next request deletes them for good
      created.push(((await kms.call('CreateKey', {})).KeyMetadata as { KeyId: string }).KeyId);
    });
    const ids = seen.map((k) => k.KeyId);
    expect(new Set(ids).size).toBe(ids.length); // nothing twice
    // Every key that existed throughout was listed exactly once; the not-yet-returned deleted key was not.
    for (const id of before) {
      if (id === before[before.length - 1]) expect(ids).not.toContain(id);
      else expect(ids.filter((x) => x === id)).toHaveLength(1);
    }
    expect(deleted.size).toBe(2);
    // A key created mid-listing may or may not appear (it depends on where it sorts), never twice.
    expect(ids.filter((x) => x === created[0]).length).toBeLessThanOrEqual(1);
  });

  it('ListAliases (all, and for one key): deletions and creations between pages', async () => {
    const kms = service();
    const key = ((await kms.call('CreateKey', {})).KeyMetadata as { KeyId: string }).KeyId;
    const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((n) => `alias/p-${n}`);
    for (const n of names) await kms.call('CreateAlias', { AliasName: n, TargetKeyId: key });
    for (const input of [{}, { KeyId: key }]) {
      const seen = await pages<{ AliasName: string }>(kms, 'ListAliases', input, 'Aliases', async (page, items) => {
        if (page !== 0) return;
        expect(items.map((a) => a.AliasName)).toEqual(['alias/p-a', 'alias/p-b']);
        await kms.call('DeleteAlias', { AliasName: 'alias/p-b' }); // returned, named by the marker
        await kms.call('DeleteAlias', { AliasName: 'alias/p-e' }); // not yet returned
        await kms.call('CreateAlias', { AliasName: 'alias/p-a0', TargetKeyId: key }); // sorts before the marker
        await kms.call('CreateAlias', { AliasName: 'alias/p-dd', TargetKeyId: key }); // sorts after it
      });
      expect(seen.map((a) => a.AliasName)).toEqual(['alias/p-a', 'alias/p-b', 'alias/p-c', 'alias/p-d', 'alias/p-dd', 'alias/p-f', 'alias/p-g']);
      // Put things back for the second round.
      await kms.call('DeleteAlias', { AliasName: 'alias/p-a0' });
      await kms.call('DeleteAlias', { AliasName: 'alias/p-dd' });
      for (const n of ['alias/p-b', 'alias/p-e']) await kms.call('CreateAlias', { AliasName: n, TargetKeyId: key });
    }
  });

  it('ListResourceTags: untagging a returned and a not-yet-returned tag between pages', async () => {
    const kms = service();
    const tags = ['t1', 't2', 't3', 't4', 't5', 't6', 't7'].map((k) => ({ TagKey: k, TagValue: `v-${k}` }));
    const key = ((await kms.call('CreateKey', { Tags: tags })).KeyMetadata as { KeyId: string }).KeyId;
    const seen = await pages<{ TagKey: string }>(kms, 'ListResourceTags', { KeyId: key }, 'Tags', async (page, items) => {
      if (page !== 0) return;
      expect(items.map((t) => t.TagKey)).toEqual(['t1', 't2']);
      await kms.call('UntagResource', { KeyId: key, TagKeys: ['t1', 't2', 't5'] });
      await kms.call('TagResource', { KeyId: key, Tags: [{ TagKey: 't0', TagValue: '' }, { TagKey: 't8', TagValue: '' }] });
    });
    expect(seen.map((t) => t.TagKey)).toEqual(['t1', 't2', 't3', 't4', 't6', 't7', 't8']);
  });

  it('ListKeyRotations: rotations made between pages come after, nothing repeats', async () => {
    const kms = service();
    const key = ((await kms.call('CreateKey', {})).KeyMetadata as { KeyId: string }).KeyId;
    for (let i = 0; i < 3; i++) {
      now += 1000;
      await kms.call('RotateKeyOnDemand', { KeyId: key });
    }
    const seen = await pages<{ KeyMaterialId: string }>(kms, 'ListKeyRotations', { KeyId: key }, 'Rotations', async (page) => {
      if (page !== 0) return;
      now += 1000;
      await kms.call('RotateKeyOnDemand', { KeyId: key });
    });
    const ids = seen.map((r) => r.KeyMaterialId);
    expect(ids).toHaveLength(4);
    expect(new Set(ids).size).toBe(4);
    const all = ((await kms.call('ListKeyRotations', { KeyId: key })).Rotations as { KeyMaterialId: string }[]).map((r) => r.KeyMaterialId);
    expect(ids).toEqual(all);
  });
});

describe('markers we did not issue are InvalidMarkerException', () => {
  it('refuses forged, edited and foreign markers', async () => {
    const kms = service();
    const a = ((await kms.call('CreateKey', {})).KeyMetadata as { KeyId: string }).KeyId;
    const b = ((await kms.call('CreateKey', {})).KeyMetadata as { KeyId: string }).KeyId;
    for (const key of [a, b]) {
      await kms.call('TagResource', { KeyId: key, Tags: ['x', 'y', 'z'].map((k) => ({ TagKey: k, TagValue: '' })) });
    }
    await kms.call('CreateKey', {});
    const keysMarker = (await kms.call('ListKeys', { Limit: 1 })).NextMarker as string;
    const tagsMarker = (await kms.call('ListResourceTags', { KeyId: a, Limit: 1 })).NextMarker as string;
    expect(typeof keysMarker).toBe('string');
    expect(typeof tagsMarker).toBe('string');
    // Our own markers work.
    expect(((await kms.call('ListResourceTags', { KeyId: a, Marker: tagsMarker })).Tags as unknown[]).length).toBe(2);

    // The old positional form, a made-up one, and edits of a real one.
    const edited = `${Buffer.from('w', 'utf8').toString('base64url')}${tagsMarker.slice(tagsMarker.indexOf('.'))}`;
    for (const bogus of ['bogus', Buffer.from('m1:0000000001').toString('base64url'), edited, `${tagsMarker}A`, tagsMarker.replace('.', '..')]) {
      await invalidMarker(kms.call('ListResourceTags', { KeyId: a, Marker: bogus }));
    }
    // A marker of another list, or of the same list for another key.
    await invalidMarker(kms.call('ListResourceTags', { KeyId: b, Marker: tagsMarker }));
    await invalidMarker(kms.call('ListAliases', { Marker: keysMarker }));
    await invalidMarker(kms.call('ListKeyRotations', { KeyId: a, Marker: tagsMarker }));
    await invalidMarker(kms.call('ListKeys', { Marker: tagsMarker }));
    // ListKeyPolicies never has a second page, so no marker is one it issued.
    await invalidMarker(kms.call('ListKeyPolicies', { KeyId: a, Marker: keysMarker }));
    expect((await kms.call('ListKeyPolicies', { KeyId: a })).PolicyNames).toEqual(['default']);
  });

  it('a persistent server accepts its markers after a restart; another data directory does not', async () => {
    const d1 = tempDir();
    const d2 = tempDir();
    try {
      let kms = service({ dataDir: d1.dir });
      for (let i = 0; i < 3; i++) await kms.call('CreateKey', {});
      const marker = (await kms.call('ListKeys', { Limit: 1 })).NextMarker as string;
      kms.close();
      kms = service({ dataDir: d1.dir });
      expect(((await kms.call('ListKeys', { Marker: marker })).Keys as unknown[]).length).toBe(2);
      await invalidMarker(service({ dataDir: d2.dir }).call('ListKeys', { Marker: marker }));
    } finally {
      for (const s of toClose.splice(0)) s.close();
      d1.cleanup();
      d2.cleanup();
    }
  });

  it('over HTTP the SDK sees InvalidMarkerException', async () => {
    const { server, kms } = await startServer();
    try {
      const key = (await kms.send(new ListKeysCommand({}))).Keys;
      expect(key).toEqual([]);
      await expectAwsError(kms.send(new ListKeysCommand({ Marker: 'bogus' })), 'InvalidMarkerException');
      await expectAwsError(kms.send(new ListResourceTagsCommand({ KeyId: '00000000-0000-0000-0000-000000000000', Marker: 'x' })), 'NotFoundException');
    } finally {
      kms.destroy();
      await server.close();
    }
  });
});
