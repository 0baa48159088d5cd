import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  ListAliasesCommand,
} from '@aws-sdk/client-kms';
import { LocalKmsService } from '../../src/local-kms/index.js';
import { startServer, tempDir } from './helpers.js';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function allFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, name.name);
    if (name.isDirectory()) out.push(...allFiles(full));
    else out.push(full);
  }
  return out;
}

describe('local KMS persistence', () => {
  it('keeps keys, aliases and ciphertexts across a server restart on the same data dir', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    let { server, kms } = await startServer({ dataDir: tmp.dir });
    const key = (await kms.send(new CreateKeyCommand({ Description: 'persisted', Tags: [{ TagKey: 'team', TagValue: 'a' }] }))).KeyMetadata!;
    await kms.send(new CreateAliasCommand({ AliasName: 'alias/persisted', TargetKeyId: key.KeyId }));
    const enc = await kms.send(new EncryptCommand({ KeyId: 'alias/persisted', Plaintext: Buffer.from('durable'), EncryptionContext: { c: '1' } }));
    const dk = await kms.send(new GenerateDataKeyCommand({ KeyId: key.KeyId, NumberOfBytes: 32 }));
    kms.destroy();
    await server.close();

    // Root key generated with owner-only permissions.
    expect(statSync(join(tmp.dir, 'root.key')).mode & 0o777).toBe(0o600);
    // Neither a data key's plaintext nor any key material appears in any file.
    const needle = Buffer.from(dk.Plaintext!);
    for (const f of allFiles(tmp.dir)) {
      const content = readFileSync(f);
      expect(content.includes(needle)).toBe(false);
      expect(content.includes(Buffer.from(needle.toString('base64')))).toBe(false);
      expect(content.includes(Buffer.from(needle.toString('hex')))).toBe(false);
    }

    ({ server, kms } = await startServer({ dataDir: tmp.dir }));
    cleanups.push(async () => {
      kms.destroy();
      await server.close();
    });
    const md = (await kms.send(new DescribeKeyCommand({ KeyId: 'alias/persisted' }))).KeyMetadata!;
    expect(md.KeyId).toBe(key.KeyId);
    expect(md.Description).toBe('persisted');
    expect(md.CreationDate!.getTime()).toBe(key.CreationDate!.getTime());
    const dec = await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { c: '1' } }));
    expect(Buffer.from(dec.Plaintext!).toString()).toBe('durable');
    const dec2 = await kms.send(new DecryptCommand({ CiphertextBlob: dk.CiphertextBlob }));
    expect(Buffer.from(dec2.Plaintext!).equals(needle)).toBe(true);
    expect((await kms.send(new ListAliasesCommand({ KeyId: key.KeyId }))).Aliases!.map((a) => a.AliasName)).toEqual(['alias/persisted']);
  });

  it('uses a given root key file and refuses a different root key for the same data', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const rootA = join(tmp.dir, 'a.key');
    const rootB = join(tmp.dir, 'b.key');
    writeFileSync(rootA, randomBytes(32).toString('hex'));
    writeFileSync(rootB, randomBytes(32).toString('base64'));
    const data = join(tmp.dir, 'data');
    const s1 = new LocalKmsService({ dataDir: data, rootKeyFile: rootA });
    await s1.call('CreateKey', {});
    s1.close();
    expect(readdirSync(data)).not.toContain('root.key');
    expect(() => new LocalKmsService({ dataDir: data, rootKeyFile: rootB })).toThrow(/root key does not match/);
    const s2 = new LocalKmsService({ dataDir: data, rootKeyFile: rootA });
    expect(((await s2.call('ListKeys', {})).Keys as unknown[]).length).toBe(1);
    // A second service on the same directory in this process is refused while s2 holds it.
    expect(() => new LocalKmsService({ dataDir: data, rootKeyFile: rootA })).toThrow(/already in use/);
    s2.close();
  });

  it('keeps working after a crash left a temporary file behind', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const s1 = new LocalKmsService({ dataDir: tmp.dir });
    const md = (await s1.call('CreateKey', {})).KeyMetadata as { KeyId: string };
    s1.close();
    // Simulate a write that died before its rename: a torn temp file next to the real one.
    writeFileSync(join(tmp.dir, 'keys', `${md.KeyId}.json.999.abcdef.tmp`), '{"torn": ');
    const s2 = new LocalKmsService({ dataDir: tmp.dir });
    expect(((await s2.call('DescribeKey', { KeyId: md.KeyId })).KeyMetadata as { KeyId: string }).KeyId).toBe(md.KeyId);
    expect(readdirSync(join(tmp.dir, 'keys')).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    s2.close();
  });

  it("removes its own torn temporary files on start, never the lock's: another starter may be writing one", async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    new LocalKmsService({ dataDir: tmp.dir }).close();
    // A starter between writing its lock candidate and linking it to `lock` (dir-lock.ts), and a
    // torn write of the alias file.
    writeFileSync(join(tmp.dir, `lock.${process.pid}.0123456789ab.tmp`), 'candidate');
    writeFileSync(join(tmp.dir, `lock.breaking.${process.pid}.0123456789ab.tmp`), 'candidate');
    writeFileSync(join(tmp.dir, 'aliases.json.999.abcdef.tmp'), '{"torn": ');
    const s = new LocalKmsService({ dataDir: tmp.dir });
    expect(readdirSync(tmp.dir).filter((n) => n.endsWith('.tmp')).sort()).toEqual([
      `lock.${process.pid}.0123456789ab.tmp`,
      `lock.breaking.${process.pid}.0123456789ab.tmp`,
    ]);
    s.close();
  });
});
