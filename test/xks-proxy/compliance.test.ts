/**
 * AWS's XKS proxy compliance client (vendored unmodified, test/third-party/) against the proxy on a
 * SoftHSM2 token: `./test-xks-proxy -a` (health, metadata, encrypt/decrypt with and without AAD and
 * CDIV, wrong AAD, bad SigV4 access key and secret, wrong URI path, unknown key, encrypt-only,
 * decrypt-only and unusable keys) over plain HTTP and over HTTPS with a certificate made here by
 * openssl and verified by curl (--cacert). Skipped when SoftHSM2, pkcs11js, curl 7.75+, jq, xxd or
 * uuidgen is missing.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { runClient, toolsMissing, xksFixture } from './harness.js';

/** How many checks `-a` runs without mTLS, as the client counts them (its six test scripts). */
const EXPECTED_PASSES = 49;

function expectAllPassed(r: { status: number; stdout: string; stderr: string }) {
  const summary = r.stdout.trim().split('\n').pop() ?? '';
  expect(r.stdout, r.stderr).not.toMatch(/FAILED/);
  expect(summary).toMatch(/All \d+ tests PASSED\./);
  expect(Number(/All (\d+) tests/.exec(summary)![1])).toBe(EXPECTED_PASSES);
  expect(r.status).toBe(0);
}

it.skipIf(toolsMissing !== undefined)(`test-xks-proxy -a over HTTP${toolsMissing ? ` (skipped: ${toolsMissing})` : ''}`, async () => {
  const f = await xksFixture();
  try {
    expectAllPassed(await runClient(f.proxy));
  } finally {
    await f.close();
  }
}, 300_000);

it.skipIf(toolsMissing !== undefined)(`test-xks-proxy -a over HTTPS, certificate verified${toolsMissing ? ` (skipped: ${toolsMissing})` : ''}`, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'xks-tls-'));
  const cert = join(dir, 'proxy.crt');
  const key = join(dir, 'proxy.key');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-days', '2', '-keyout', key, '-out', cert],
    { stdio: 'pipe' },
  );
  const f = await xksFixture({ tls: { cert, key } });
  try {
    expect(f.proxy.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expectAllPassed(await runClient(f.proxy, `--cacert ${cert}`));
  } finally {
    await f.close();
    rmSync(dir, { recursive: true, force: true });
  }
}, 300_000);
