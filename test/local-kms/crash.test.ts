import { describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateAliasCommand, CreateKeyCommand, DecryptCommand, EncryptCommand, ListAliasesCommand, ListKeysCommand, TagResourceCommand } from '@aws-sdk/client-kms';
import { LocalKmsService } from '../../src/local-kms/index.js';
import { DAY, sdkClient, tempDir } from './helpers.js';

/** Starts the local KMS in a child process (vite-node runs the TypeScript) and waits for its URL. */
async function child(dataDir: string, scriptDir: string): Promise<{ proc: ChildProcess; url: string }> {
  const script = join(scriptDir, 'run-server.ts');
  const cli = new URL('../../src/local-kms/cli.ts', import.meta.url).pathname;
  writeFileSync(script, `import { runLocalKmsCommand } from ${JSON.stringify(cli)};\nawait runLocalKmsCommand(['--port', '0', '--data-dir', ${JSON.stringify(dataDir)}]);\n`);
  const bin = new URL('../../node_modules/.bin/vite-node', import.meta.url).pathname;
  const proc = spawn(bin, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no URL from child: ${out}`)), 30_000);
    proc.stdout!.on('data', (d) => {
      out += d.toString();
      const m = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    proc.once('exit', (code) => reject(new Error(`child exited with ${code}`)));
  });
  return { proc, url };
}

describe('crash safety', () => {
  it('keeps every acknowledged change when the server process is killed (SIGKILL)', async () => {
    const tmp = tempDir('lkms-crash-');
    const dataDir = join(tmp.dir, 'data');
    let running: ChildProcess | undefined;
    try {
      const first = await child(dataDir, tmp.dir);
      running = first.proc;
      let kms = sdkClient(first.url);
      const acknowledged: { keyId: string; blob: Uint8Array; text: string }[] = [];
      // Fire a burst of concurrent mutations; kill the process while some are still in flight.
      const inFlight: Promise<unknown>[] = [];
      for (let i = 0; i < 12; i++) {
        inFlight.push(
          (async () => {
            const key = (await kms.send(new CreateKeyCommand({ Description: `k${i}` }))).KeyMetadata!.KeyId!;
            await kms.send(new CreateAliasCommand({ AliasName: `alias/crash-${i}`, TargetKeyId: key }));
            await kms.send(new TagResourceCommand({ KeyId: key, Tags: [{ TagKey: 'i', TagValue: String(i) }] }));
            const text = `payload ${i}`;
            const blob = (await kms.send(new EncryptCommand({ KeyId: `alias/crash-${i}`, Plaintext: Buffer.from(text) }))).CiphertextBlob!;
            acknowledged.push({ keyId: key, blob, text });
          })().catch(() => undefined),
        );
      }
      // Kill as soon as a few have been acknowledged, so others are cut off mid-way.
      while (acknowledged.length < 3) await new Promise((r) => setTimeout(r, 2));
      first.proc.kill('SIGKILL');
      const atKill = acknowledged.length;
      await Promise.all(inFlight);
      kms.destroy();
      // Answers already on the wire before the kill still arrive; they count as acknowledged too.
      expect(acknowledged.length).toBeGreaterThanOrEqual(atKill);
      if (first.proc.exitCode === null && first.proc.signalCode === null) await new Promise((r) => first.proc.once('exit', r));

      const second = await child(dataDir, tmp.dir);
      running = second.proc;
      kms = sdkClient(second.url);
      const keys = new Set((await kms.send(new ListKeysCommand({ Limit: 1000 }))).Keys!.map((k) => k.KeyId));
      const aliases = (await kms.send(new ListAliasesCommand({ Limit: 100 }))).Aliases!;
      for (const a of acknowledged) {
        expect(keys.has(a.keyId)).toBe(true);
        const dec = await kms.send(new DecryptCommand({ CiphertextBlob: a.blob }));
        expect(Buffer.from(dec.Plaintext!).toString()).toBe(a.text);
      }
      // Every alias that survived points at a key that exists.
      for (const a of aliases) expect(keys.has(a.TargetKeyId)).toBe(true);
      kms.destroy();
    } finally {
      running?.kill('SIGKILL');
      tmp.cleanup();
    }
  }, 60_000);

  it('applies deletion windows and rotations that fell due while the service was stopped', async () => {
    const tmp = tempDir('lkms-time-');
    let now = Date.UTC(2030, 0, 1);
    const clock = () => now;
    try {
      const s1 = new LocalKmsService({ dataDir: tmp.dir, clock });
      const doomed = ((await s1.call('CreateKey', {})).KeyMetadata as { KeyId: string }).KeyId;
      const rotating = ((await s1.call('CreateKey', {})).KeyMetadata as { KeyId: string }).KeyId;
      await s1.call('ScheduleKeyDeletion', { KeyId: doomed, PendingWindowInDays: 7 });
      await s1.call('EnableKeyRotation', { KeyId: rotating, RotationPeriodInDays: 90 });
      const blob = (await s1.call('Encrypt', { KeyId: rotating, Plaintext: Buffer.from('before') })).CiphertextBlob;
      s1.close();
      now += 181 * DAY * 1000;
      const s2 = new LocalKmsService({ dataDir: tmp.dir, clock });
      const ids = ((await s2.call('ListKeys', {})).Keys as { KeyId: string }[]).map((k) => k.KeyId);
      expect(ids).toEqual([rotating]);
      const rotations = (await s2.call('ListKeyRotations', { KeyId: rotating })).Rotations as { RotationDate: Date; RotationType: string }[];
      expect(rotations.map((r) => r.RotationType)).toEqual(['AUTOMATIC', 'AUTOMATIC']);
      expect(rotations[0]!.RotationDate.getTime()).toBe(Date.UTC(2030, 0, 1) + 90 * DAY * 1000);
      expect(Buffer.from((await s2.call('Decrypt', { CiphertextBlob: blob })).Plaintext as Uint8Array).toString()).toBe('before');
      s2.close();
      // The rotations are durable too.
      const s3 = new LocalKmsService({ dataDir: tmp.dir, clock });
      expect(((await s3.call('ListKeyRotations', { KeyId: rotating })).Rotations as unknown[]).length).toBe(2);
      s3.close();
    } finally {
      tmp.cleanup();
    }
  });
});
