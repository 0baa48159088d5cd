/**
 * The runnable examples run with one command each and do what their READMEs say. They import the
 * built package (dist/), which `npm test` builds first.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(__dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'kms-envelope-examples-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const env = (extra: Record<string, string> = {}) => ({ PATH: process.env.PATH ?? '', HOME: dir, ...extra });

describe('examples/service', () => {
  let child: ChildProcess | undefined;
  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  });

  it('encrypts and decrypts request bodies per tenant', async () => {
    child = spawn(process.execPath, [join(ROOT, 'examples/service/server.mjs')], {
      env: env({ PORT: '0', SERVICE_DATA_DIR: join(dir, 'service-kms') }),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const url = await new Promise<string>((res, rej) => {
      createInterface({ input: child!.stdout! }).once('line', (line) => res(line.replace(/^listening on /, '')));
      child!.once('exit', (code) => rej(new Error(`service exited with ${code}`)));
    });
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const body = randomBytes(600_000); // more than two frames at the default frame length
    const post = (path: string, tenant: string, data: Uint8Array) =>
      fetch(url + path, { method: 'POST', headers: { 'x-tenant': tenant }, body: data });
    const enc = await post('/encrypt', 'acme', body);
    expect(enc.status).toBe(200);
    const message = Buffer.from(await enc.arrayBuffer());
    expect(message[0]).toBe(0x02);
    const again = await post('/encrypt', 'acme', body);
    expect(again.status).toBe(200);
    await again.arrayBuffer();

    const dec = await post('/decrypt', 'acme', message);
    expect(dec.status).toBe(200);
    expect(Buffer.from(await dec.arrayBuffer()).equals(body)).toBe(true);

    const other = await post('/decrypt', 'other', message);
    expect(other.status).toBe(403);
    expect(await other.json()).toEqual({ error: 'ERR_CONTEXT_MISMATCH' });

    const tampered = Buffer.from(message);
    tampered[tampered.length - 100]! ^= 1; // in the final frame
    // The first frames verify and stream out before the bad one: the response must be cut, not end cleanly.
    const bad = await (async () => {
      const r = await post('/decrypt', 'acme', tampered);
      return r.status === 200 ? Buffer.from(await r.arrayBuffer()).length : r.status;
    })().catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(Error);

    const stats = (await (await fetch(url + '/stats')).json()) as { encryptHits: number; kmsCalls: number };
    expect(stats.encryptHits).toBeGreaterThanOrEqual(1); // second encryption reused the data key
    expect(stats.kmsCalls).toBe(2); // one GenerateDataKey, one Decrypt
  });
});

describe('examples/s3', () => {
  it('uploads and downloads through the local S3 server with matching SHA-256', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'examples/s3/run.mjs'), '12'], { env: env(), encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/uploaded .*12582912 plaintext bytes/);
    expect(r.stdout).toMatch(/x-amz-meta-kms-envelope: 1/);
    expect(r.stdout).toMatch(/downloaded 12582912 plaintext bytes .* SHA-256 matches/);
  });
});

describe('examples/local-kms', () => {
  it('walks through key management, encryption and a disabled key', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'examples/local-kms/walkthrough.mjs')], {
      env: env(),
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/listening on http:\/\/127\.0\.0\.1:\d+/);
    expect(r.stdout).toMatch(/exit 0: a file encrypted by the kms-envelope CLI/);
    expect(r.stdout).toMatch(/state: Disabled/);
    expect(r.stdout).toMatch(/decrypt -> exit 7: kms-envelope: ERR_NO_DECRYPTABLE_KEY: .*DisabledException/);
    expect(r.stdout).toMatch(/after clearCache\(\): ERR_NO_DECRYPTABLE_KEY/);
    expect(r.stdout).toMatch(/stopped the local KMS/);
  });
});

describe('examples/hierarchy', () => {
  it('three tenants, 1,000 messages: a distinct data key each, one KMS Decrypt per tenant; another branch key opens none; a rotation keeps old messages readable; a second run reuses the keys', () => {
    const run = () =>
      spawnSync(process.execPath, [join(ROOT, 'examples/hierarchy/tenants.mjs')], {
        env: env({ KMS_ENVELOPE_EXAMPLE_DIR: join(dir, 'hierarchy') }),
        encoding: 'utf8',
        timeout: 60_000,
      });
    const first = run();
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    expect(first.stdout).toMatch(/branch keys +tenant-a, tenant-b, tenant-c \(created tenant-a, tenant-b, tenant-c\)/);
    expect(first.stdout).toMatch(/1,000 messages for 3 tenants: 1,000 distinct data keys, KMS Decrypt x3 /);
    expect(first.stdout).toMatch(/decrypt +1,000 of 1,000; a keyring with tenant-b's branch key refused 10 of 10 tenant-a messages/);
    expect(first.stdout).toMatch(/rotate +tenant-a [0-9a-f]{8}\.\.\. -> [0-9a-f]{8}\.\.\.: a new message and one from before the rotation both decrypt/);
    const second = run();
    expect(second.status).toBe(0);
    expect(second.stdout).toMatch(/branch keys +tenant-a, tenant-b, tenant-c \(reused\)/);
    expect(second.stdout).toMatch(/KMS Decrypt x3 /);
  });
});
