/**
 * `kms-envelope xks-proxy` and `xks-proxy create-key` as a user runs them (the built CLI, after
 * `npm run build`) on a SoftHSM2 token: help, argument and config errors (exit 2, the field
 * named), create-key, the proxy's listening line and request log, a wrong PIN (exit 11, the CKR_
 * name, never the PIN). The token parts are skipped when SoftHSM2 or pkcs11js is missing.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { USER_PIN, softHsm, type SoftHsm } from '../local-kms/softhsm.js';
import { metadata, xksCall } from './client.js';
import { ACCESS_KEY_ID, hsmMissing, REGION, SECRET_ACCESS_KEY, TOKEN_LABEL, URI_PREFIX } from './harness.js';

const root = resolve(import.meta.dirname, '../..');
const main = join(root, 'dist/cli/main.js');
const cli = (args: string[], env: NodeJS.ProcessEnv = process.env) => spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', env, timeout: 60_000 });

let hsm: SoftHsm | undefined;
let child: ChildProcess | undefined;
afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  hsm?.cleanup();
});

describe('kms-envelope xks-proxy', () => {
  it('--help for the command and for create-key; listed in kms-envelope --help', () => {
    const r = cli(['xks-proxy', '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Usage: kms-envelope xks-proxy --config FILE/);
    expect(r.stdout).toContain('kms-xks-proxy');
    const c = cli(['xks-proxy', 'create-key', '--help']);
    expect(c.status).toBe(0);
    expect(c.stdout).toMatch(/--usage USAGE +encrypt-decrypt \(default\), encrypt/);
    expect(cli(['--help']).stdout).toMatch(/xks-proxy +run an External Key Store \(XKS\) proxy/);
  });

  it('argument errors: exit 2 with the usual message', () => {
    const r = cli(['xks-proxy']);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('kms-envelope: ERR_USAGE: xks-proxy: --config is required (see kms-envelope xks-proxy --help)\n');
    expect(cli(['xks-proxy', 'create-key', '--config', 'x.json']).stderr).toMatch(/--label is required/);
    expect(cli(['xks-proxy', 'create-key', '--config', 'x.json', '--label', 'k', '--usage', 'sign']).stderr).toMatch(/--usage must be one of encrypt-decrypt, encrypt, decrypt, none/);
    expect(cli(['xks-proxy', '--config']).stderr).toMatch(/--config needs a value/);
  });

  describe.skipIf(hsmMissing !== undefined)(`on a SoftHSM2 token${hsmMissing ? ` (skipped: ${hsmMissing})` : ''}`, () => {
    const config = (extra: Record<string, unknown> = {}) => {
      const file = join(hsm!.dir, `xks-${Math.random().toString(36).slice(2)}.json`);
      writeFileSync(
        file,
        JSON.stringify({
          port: 0,
          uriPrefix: URI_PREFIX,
          region: REGION,
          credentials: [{ accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY }],
          pkcs11: { module: hsm!.module, tokenLabel: TOKEN_LABEL, pinEnv: 'XKS_PIN' },
          ...extra,
        }),
      );
      return file;
    };
    const env = () => ({ ...process.env, SOFTHSM2_CONF: hsm!.conf, XKS_PIN: USER_PIN });

    it('create-key makes the keys; a label in use is refused', () => {
      hsm = softHsm();
      hsm.initToken(TOKEN_LABEL);
      const file = config();
      const r = cli(['xks-proxy', 'create-key', '--config', file, '--label', 'foo'], env());
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toBe('foo\n');
      expect(cli(['xks-proxy', 'create-key', '--config', file, '--label', 'encrypt_only_key', '--usage', 'encrypt'], env()).status).toBe(0);
      const again = cli(['xks-proxy', 'create-key', '--config', file, '--label', 'foo'], env());
      expect(again.status).toBe(2);
      expect(again.stderr).toMatch(/already has a key labelled foo/);
      const bad = cli(['xks-proxy', 'create-key', '--config', file, '--label', 'a/b'], env());
      expect(bad.status).toBe(2);
      expect(bad.stderr).toMatch(/label must be 1-128 of/);
      for (const dots of ['.', '..']) {
        const r = cli(['xks-proxy', 'create-key', '--config', file, '--label', dots], env());
        expect(r.status, dots).toBe(2);
        expect(r.stderr).toContain(`label must not be "${dots}"`);
      }
    });

    it('an invalid config: exit 2, the field named, the secret not repeated', () => {
      const r = cli(['xks-proxy', '--config', config({ credentials: [{ accessKeyId: 'short', secretAccessKey: SECRET_ACCESS_KEY }] })], env());
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/^kms-envelope: ERR_USAGE: xks-proxy: xks-proxy config: credentials\[0\]\.accessKeyId: must be 20-30 characters/);
      expect(r.stderr).not.toContain(SECRET_ACCESS_KEY);
    });

    it('a wrong PIN: exit 11 with CKR_PIN_INCORRECT, the PIN in no output', () => {
      const wrong = 'wrong-pin-4471';
      const r = cli(['xks-proxy', '--config', config({ pkcs11: { module: hsm!.module, tokenLabel: TOKEN_LABEL, pin: wrong } })], env());
      expect(r.status).toBe(11);
      expect(r.stderr).toMatch(/CKR_PIN_INCORRECT/);
      expect(r.stdout + r.stderr).not.toContain(wrong);
      const k = cli(['xks-proxy', 'create-key', '--config', config({ pkcs11: { module: hsm!.module, tokenLabel: TOKEN_LABEL, pin: wrong } }), '--label', 'x'], env());
      expect(k.status).toBe(11);
      expect(k.stdout + k.stderr).not.toContain(wrong);
    });

    it('serves the XKS API; prints the URL and XksProxyUriPath; logs JSON lines without secrets', async () => {
      child = spawn(process.execPath, [main, 'xks-proxy', '--config', config()], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const out = await new Promise<string>((res, rej) => {
        let text = '';
        child!.stdout!.on('data', (d: Buffer) => {
          text += d.toString();
          if (text.includes('XksProxyUriPath')) res(text);
        });
        child!.once('exit', (code) => rej(new Error(`exited ${code}: ${stderr}`)));
      });
      const m = /^listening on (http:\/\/127\.0\.0\.1:\d+)\nXksProxyUriPath (\/example\/uri\/path\/prefix\/kms\/xks\/v1)\n$/.exec(out);
      expect(m, out).not.toBeNull();
      const proxy = { url: m![1]!, uriPath: m![2]! };
      const r = await xksCall(proxy, { path: 'keys/foo/metadata', body: { requestMetadata: metadata('DescribeKey') } });
      expect(r.json).toEqual({ keySpec: 'AES_256', keyUsage: ['ENCRYPT', 'DECRYPT'], keyStatus: 'ENABLED' });
      // A signed caller's opaque kmsRequestId with C1 (CSI), DEL, NEL, a line separator and a
      // right-to-left override: logged, escaped, on its one line, and the same string once parsed.
      const hostileId = 'id-\u202egnp.exe\u202c-\u2028NEXT-\u009b31m-\u007f-\u0085';
      const h = await xksCall(proxy, { path: 'keys/foo/metadata', body: { requestMetadata: { ...metadata('DescribeKey'), kmsRequestId: hostileId } } });
      expect(h.status).toBe(200);
      const exited = new Promise<number | null>((res) => child!.once('exit', (code) => res(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      const lines = stderr.trim().split('\n');
      expect(lines).toHaveLength(2);
      expect(JSON.parse(lines[0]!)).toMatchObject({ api: 'GetKeyMetadata', keyId: 'foo', status: 200, kmsOperation: 'DescribeKey' });
      expect(lines[1]).not.toMatch(/[\u007f-\u009f\u2028\u2029\u202a-\u202e]/);
      expect(JSON.parse(lines[1]!)).toMatchObject({ api: 'GetKeyMetadata', status: 200, kmsRequestId: hostileId });
      expect(stderr).not.toContain(USER_PIN);
      expect(stderr).not.toContain(SECRET_ACCESS_KEY);
    });
  });
});
