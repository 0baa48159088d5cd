import { createRequire } from 'node:module';
import { getKeyMetadata, XksProxyFailure } from '../../src/local-kms/xks-client.js';
import { USER_PIN, skipReason, softHsm } from './softhsm.js';

/**
 * The project's real XKS proxy (src/xks-proxy: `startXksProxy` over a fresh SoftHSM2 token) for
 * the external key store tests: its URL and XksProxyUriPath, the SigV4 credential it accepts, and
 * the AES-256 token keys (external keys) made before it starts. `proxySkipReason` says why it
 * cannot run (no SoftHSM2 or pkcs11js).
 */

export const ACCESS_KEY_ID = 'ABCDEFGHIJKLMNOPQRST';
export const SECRET = 'c2VjcmV0LWFjY2Vzcy1rZXktZm9yLXRlc3RzLW9ubHk1234';
const REGION = 'us-east-1';
const TOKEN = 'xks-token';

export interface ProxyUnderTest {
  url: string;
  path: string;
  accessKeyId: string;
  secret: string;
  /** Whether the proxy still has external key `id` (asked with its GetKeyMetadata). */
  keyExists(id: string): Promise<boolean>;
  close(): Promise<void>;
}

export const proxySkipReason: string | undefined = skipReason;

/**
 * Starts the proxy on a new token holding one AES-256 key per entry of `keys`: an id (encrypt and
 * decrypt) or [id, usage] (createXksKey's usages: encrypt-decrypt, encrypt, decrypt, none).
 */
export async function startProxyUnderTest(keys: ReadonlyArray<string | readonly [string, 'encrypt-decrypt' | 'encrypt' | 'decrypt' | 'none']>): Promise<ProxyUnderTest> {
  // Imported here, not at the top: a missing pkcs11js must skip the tests, not fail the import.
  createRequire(import.meta.url)('pkcs11js');
  const { createXksKey, startXksProxy } = await import('../../src/xks-proxy/index.js');
  const hsm = softHsm();
  hsm.initToken(TOKEN);
  const config = {
    port: 0,
    uriPrefix: 'tenant1',
    region: REGION,
    credentials: [{ accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET }],
    pkcs11: { module: hsm.module, tokenLabel: TOKEN, pin: USER_PIN },
  };
  try {
    for (const k of keys) await (typeof k === 'string' ? createXksKey(config, k) : createXksKey(config, k[0], k[1]));
    const proxy = await startXksProxy(config);
    const target = { endpoint: proxy.url, path: proxy.uriPath, accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET, region: REGION };
    return {
      url: proxy.url,
      path: proxy.uriPath,
      accessKeyId: ACCESS_KEY_ID,
      secret: SECRET,
      async keyExists(id) {
        try {
          await getKeyMetadata(target, { timeoutMs: 10_000, clock: Date.now }, id, { awsPrincipalArn: 'arn:aws:iam::111122223333:root', kmsOperation: 'DescribeKey', kmsRequestId: 'test' });
          return true;
        } catch (e) {
          if (e instanceof XksProxyFailure && e.errorName === 'KeyNotFoundException') return false;
          throw e;
        }
      },
      async close() {
        await proxy.close();
        hsm.cleanup();
      },
    };
  } catch (e) {
    hsm.cleanup();
    throw e;
  }
}
