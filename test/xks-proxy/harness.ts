/**
 * An XKS proxy on a fresh SoftHSM2 token for tests: the token, the four keys AWS's test client
 * expects (foo, encrypt_only_key, decrypt_only_key, impotent_key), the proxy on a free port, and
 * a way to run the vendored client against it. `toolsMissing` says why the client cannot run.
 */
import { execFile, spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { createXksKey, startXksProxy, type XksLogEntry, type XksProxyConfig, type XksProxyHandle } from '../../src/xks-proxy/index.js';
import { USER_PIN, skipReason, softHsm, type SoftHsm } from '../local-kms/softhsm.js';

export const CLIENT_DIR = resolve(import.meta.dirname, '../third-party/aws-kms-xksproxy-test-client');

/** The client's own defaults (utils/test_config.sh), which satisfy the spec's rules. */
export const ACCESS_KEY_ID = 'BETWEEN2TENAND3TENCHARACTERS';
export const SECRET_ACCESS_KEY = 'PleaseReplaceThisWithSomeSecretOfLength43To64';
export const URI_PREFIX = 'example/uri/path/prefix';
export const REGION = 'us-east-1';
export const TOKEN_LABEL = 'xks-token';

function missingTool(): string | undefined {
  for (const tool of ['bash', 'curl', 'jq', 'xxd', 'uuidgen', 'openssl']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0) return `${tool} is not installed (.ci/run installs curl jq xxd uuid-runtime)`;
  }
  const v = /^curl (\d+)\.(\d+)/.exec(spawnSync('curl', ['--version'], { encoding: 'utf8' }).stdout ?? '');
  if (!v || Number(v[1]) < 7 || (Number(v[1]) === 7 && Number(v[2]) < 75)) return 'curl 7.75 or later (for --aws-sigv4) is needed';
  return undefined;
}

export const hsmMissing = skipReason;
export const toolsMissing: string | undefined = skipReason ?? missingTool();

export interface XksFixture {
  hsm: SoftHsm;
  config: XksProxyConfig;
  proxy: XksProxyHandle;
  log: XksLogEntry[];
  close(): Promise<void>;
}

/** The proxy config of the tests: a free port, the client's credential, TOKEN_LABEL on `hsm` (`tls`: PEM file paths). */
export function proxyConfig(hsm: SoftHsm, tls?: { cert: string; key: string }): XksProxyConfig {
  return {
    port: 0,
    uriPrefix: URI_PREFIX,
    region: REGION,
    credentials: [{ accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY }],
    pkcs11: { module: hsm.module, tokenLabel: TOKEN_LABEL, pin: USER_PIN },
    ...(tls ? { tls } : {}),
  };
}

/** A token with the client's four keys and a proxy serving it (`tls`: PEM file paths). */
export async function xksFixture(opts: { tls?: { cert: string; key: string }; hsm?: SoftHsm } = {}): Promise<XksFixture> {
  const hsm = opts.hsm ?? softHsm();
  const config = proxyConfig(hsm, opts.tls);
  if (!opts.hsm) {
    hsm.initToken(TOKEN_LABEL);
    await createXksKey(config, 'foo');
    await createXksKey(config, 'encrypt_only_key', 'encrypt');
    await createXksKey(config, 'decrypt_only_key', 'decrypt');
    await createXksKey(config, 'impotent_key', 'none');
  }
  const log: XksLogEntry[] = [];
  const proxy = await startXksProxy(config, { log: (e) => log.push(e) });
  return {
    hsm,
    config,
    proxy,
    log,
    async close() {
      await proxy.close();
      if (!opts.hsm) hsm.cleanup();
    },
  };
}

/**
 * The fixture of one test file: the object returned is filled in by a beforeAll (when SoftHSM2 is
 * there; the suites that use it skip otherwise) and closed by an afterAll.
 */
export function fileFixture(): XksFixture {
  const f = {} as XksFixture;
  beforeAll(async () => {
    if (!hsmMissing) Object.assign(f, await xksFixture());
  });
  afterAll(async () => {
    await f.close?.();
  });
  return f;
}

/** Runs `./test-xks-proxy -a` against the proxy; `secure` goes to curl (e.g. `--cacert FILE`). */
export function runClient(proxy: XksProxyHandle, secure = ''): Promise<{ status: number; stdout: string; stderr: string }> {
  const u = new URL(proxy.url);
  const env: NodeJS.ProcessEnv = { ...process.env };
  // A proxy from the environment would stand between curl and the XKS proxy.
  for (const k of ['http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'all_proxy']) delete env[k];
  Object.assign(env, {
    XKS_PROXY_HOST: u.host,
    SCHEME: u.protocol === 'https:' ? 'https://' : '',
    SECURE: secure,
    URI_PREFIX,
    REGION,
    SIGV4_ACCESS_KEY_ID: ACCESS_KEY_ID,
    SIGV4_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
    KEY_ID: 'foo',
    ENCRYPT_ONLY_KEY_ID: 'encrypt_only_key',
    DECRYPT_ONLY_KEY_ID: 'decrypt_only_key',
    IMPOTENT_KEY_ID: 'impotent_key',
    ANSI_ESCAPE: '0',
    VERBOSE: '-i',
  });
  return new Promise((res) => {
    execFile(join(CLIENT_DIR, 'test-xks-proxy'), ['-a'], { cwd: CLIENT_DIR, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 300_000 }, (err, stdout, stderr) => {
      res({ status: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}
