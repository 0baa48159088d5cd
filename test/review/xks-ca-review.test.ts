/**
 * Adversarial review: `--xks-ca FILE` (service option xksProxyCa) must ADD to the CAs Node
 * trusts (README, "External key stores"; cli.ts usage: "trusted, besides Node's"), not replace
 * them. Node's `ca` option replaces the default store ("Mozilla's CAs are completely replaced
 * when CAs are explicitly specified", Node docs, tls.createSecureContext). The default store is
 * made observable here with NODE_EXTRA_CA_CERTS (Node docs: "the well known 'root' CAs will be
 * extended with the extra certificates in file"), in a child process of the built CLI
 * (`npm run build` first).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { CreateCustomKeyStoreCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sdkClient, tempDir } from '../local-kms/helpers.js';

const root = resolve(import.meta.dirname, '../..');
const cli = join(root, 'dist/cli/main.js');
const tmp = tempDir('xks-ca-review-');
const children: ChildProcess[] = [];
let proxy: Server | undefined;
let proxyUrl = '';

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { stdio: 'pipe', cwd: tmp.dir });
}

async function startKms(extraEnv: Record<string, string>, args: string[]): Promise<string> {
  const child = spawn(process.execPath, [cli, 'local-kms', '--port', '0', '--xks-timeout-ms', '5000', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...extraEnv } });
  children.push(child);
  return new Promise<string>((res, rej) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) res(m[1]!);
    });
    child.once('exit', (code) => rej(new Error(`local-kms exited ${code}`)));
  });
}

let n = 0;
async function createStore(url: string): Promise<string> {
  const kms = sdkClient(url);
  try {
    const r = await kms.send(
      new CreateCustomKeyStoreCommand({
        CustomKeyStoreName: `ca-${++n}`,
        CustomKeyStoreType: 'EXTERNAL_KEY_STORE',
        XksProxyUriEndpoint: proxyUrl,
        XksProxyUriPath: `/ca${n}/kms/xks/v1`,
        XksProxyConnectivity: 'PUBLIC_ENDPOINT',
        XksProxyAuthenticationCredential: { AccessKeyId: 'ABCDEFGHIJKLMNOPQRST', RawSecretAccessKey: 'UmV2aWV3U2VjcmV0QWNjZXNzS2V5Rm9yWGtzVGVzdHMxMjM0NTY3' },
      }),
    );
    return r.CustomKeyStoreId!;
  } catch (e) {
    return `error: ${(e as Error).name}`;
  } finally {
    kms.destroy();
  }
}

describe.skipIf(!existsSync(cli))('review: --xks-ca adds to the CAs Node trusts', () => {
  beforeAll(async () => {
    // CA A (trusted by Node through NODE_EXTRA_CA_CERTS) signs the proxy's certificate; CA B is
    // the one given to --xks-ca.
    for (const ca of ['a', 'b']) {
      openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=review CA ${ca}`, '-days', '2', '-keyout', `ca-${ca}.key`, '-out', `ca-${ca}.pem`);
    }
    openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'leaf.key', '-out', 'leaf.csr');
    execFileSync('sh', ['-c', "printf 'subjectAltName=IP:127.0.0.1\\n' > ext.cnf"], { cwd: tmp.dir });
    openssl('x509', '-req', '-in', 'leaf.csr', '-CA', 'ca-a.pem', '-CAkey', 'ca-a.key', '-CAcreateserial', '-days', '2', '-extfile', 'ext.cnf', '-out', 'leaf.pem');
    proxy = createServer({ key: readFileSync(join(tmp.dir, 'leaf.key')), cert: readFileSync(join(tmp.dir, 'leaf.pem')) }, (req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ xksProxyFleetSize: 1, xksProxyVendor: 'r', xksProxyModel: 'r', ekmVendor: 'r', ekmFleetDetails: [{ id: '1', model: 'r', healthStatus: 'ACTIVE' }] }));
      });
    });
    await new Promise<void>((r) => proxy!.listen(0, '127.0.0.1', r));
    proxyUrl = `https://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const c of children) {
      if (c.exitCode === null) {
        const exited = new Promise((r) => c.once('exit', r));
        c.kill('SIGTERM');
        await exited;
      }
    }
    proxy?.closeAllConnections();
    await new Promise<void>((r) => (proxy ? proxy.close(() => r()) : r()));
    tmp.cleanup();
  });

  it('a proxy certificate from a CA Node already trusts is still accepted when --xks-ca names another CA', async () => {
    const env = { NODE_EXTRA_CA_CERTS: join(tmp.dir, 'ca-a.pem') };
    // Control: Node's defaults (with NODE_EXTRA_CA_CERTS) trust the proxy.
    expect(await createStore(await startKms(env, []))).toMatch(/^cks-/);
    // With an extra CA the defaults must still be trusted.
    expect(await createStore(await startKms(env, ['--xks-ca', join(tmp.dir, 'ca-b.pem')]))).toMatch(/^cks-/);
  }, 60_000);
});
