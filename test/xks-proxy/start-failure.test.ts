/**
 * startXksProxy failing after it opened the token (a TLS certificate and key that do not belong
 * together) must close its token session: the error leaves nothing logged in behind it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { openTokenSessions } from '../../src/local-kms/pkcs11.js';
import { startXksProxy } from '../../src/xks-proxy/index.js';
import { skipReason, softHsm } from '../local-kms/softhsm.js';
import { TOKEN_LABEL, proxyConfig } from './harness.js';

it.skipIf(skipReason !== undefined)(`a certificate that does not match its key: the start fails and its token session is closed${skipReason ? ` (skipped: ${skipReason})` : ''}`, async () => {
  const hsm = softHsm();
  const dir = mkdtempSync(join(tmpdir(), 'xks-start-'));
  try {
    hsm.initToken(TOKEN_LABEL);
    const cert = join(dir, 'proxy.crt');
    const key = join(dir, 'proxy.key');
    const otherKey = join(dir, 'other.key');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost', '-days', '2', '-keyout', key, '-out', cert], { stdio: 'pipe' });
    execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', otherKey], { stdio: 'pipe' });
    const config = proxyConfig(hsm, { cert, key: otherKey });
    expect(openTokenSessions(TOKEN_LABEL)).toBe(0);
    await expect(startXksProxy(config)).rejects.toThrow();
    expect(openTokenSessions(TOKEN_LABEL)).toBe(0);
    // And the same token still serves a proxy with a matching pair.
    const proxy = await startXksProxy({ ...config, tls: { cert, key } });
    expect(openTokenSessions(TOKEN_LABEL)).toBe(1);
    await proxy.close();
    expect(openTokenSessions(TOKEN_LABEL)).toBe(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    hsm.cleanup();
  }
});
