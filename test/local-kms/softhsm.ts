import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * SoftHSM2 tokens for the custom key store tests: each test file gets its own token directory and
 * SOFTHSM2_CONF (set in this process before the PKCS#11 library is first initialized), so files
 * never share a token. `skipReason` says why the tests cannot run (no softhsm2, no pkcs11js).
 */

const MODULES = ['/usr/lib/softhsm/libsofthsm2.so', '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so', '/usr/local/lib/softhsm/libsofthsm2.so'];

export const SOFTHSM_MODULE = MODULES.find((m) => existsSync(m));

function pkcs11jsMissing(): string | undefined {
  try {
    createRequire(import.meta.url)('pkcs11js');
    return undefined;
  } catch (e) {
    return (e as Error).message.split('\n')[0];
  }
}

export const skipReason: string | undefined = (() => {
  if (!SOFTHSM_MODULE) return 'SoftHSM2 is not installed (apt-get install softhsm2; .ci/run installs it)';
  if (spawnSync('softhsm2-util', ['--version']).status !== 0) return 'softhsm2-util is not on PATH';
  const missing = pkcs11jsMissing();
  if (missing) return `the PKCS#11 binding pkcs11js cannot be loaded (${missing})`;
  return undefined;
})();

export const USER_PIN = 'kmsuser-pin-1';
export const SO_PIN = 'so-pin-12345';

export interface SoftHsm {
  dir: string;
  conf: string;
  module: string;
  /** Initializes a new token labelled `label` with USER_PIN. */
  initToken(label: string): void;
  /** A PEM X.509 certificate (the "trust anchor" customerCA.crt of a cluster). */
  certificate(cn: string): string;
  cleanup(): void;
}

export function softHsm(): SoftHsm {
  const dir = mkdtempSync(join(tmpdir(), 'softhsm-'));
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens);
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  process.env.SOFTHSM2_CONF = conf;
  return {
    dir,
    conf,
    module: SOFTHSM_MODULE!,
    initToken(label) {
      execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--so-pin', SO_PIN, '--pin', USER_PIN], {
        env: { ...process.env, SOFTHSM2_CONF: conf },
        stdio: 'pipe',
      });
    },
    certificate(cn) {
      const key = join(dir, `${cn}.key`);
      const crt = join(dir, `${cn}.crt`);
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${cn}`, '-days', '2', '-keyout', key, '-out', crt], { stdio: 'pipe' });
      return readFileSync(crt, 'utf8');
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Reads a key's token object through PKCS#11 in a separate process (its own C_Initialize and
 * login, so nothing of the local KMS's session is shared): the object's attributes, and what
 * C_GetAttributeValue answers for CKA_VALUE.
 */
export function inspectTokenKey(hsm: SoftHsm, tokenLabel: string, keyId: string): {
  found: number;
  sensitive?: boolean;
  extractable?: boolean;
  valueLen?: number;
  label?: string;
  value: string;
} {
  const script = `
const pkcs11js = require('pkcs11js');
const p = new pkcs11js.PKCS11();
p.load(${JSON.stringify(hsm.module)});
p.C_Initialize();
try {
  const slot = p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).label.trim() === ${JSON.stringify(tokenLabel)});
  const session = p.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
  p.C_Login(session, pkcs11js.CKU_USER, ${JSON.stringify(USER_PIN)});
  p.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_ID, value: Buffer.from(${JSON.stringify(keyId.replace(/-/g, ''))}, 'hex') }]);
  const found = p.C_FindObjects(session, 10);
  p.C_FindObjectsFinal(session);
  const out = { found: found.length, value: 'n/a' };
  if (found.length === 1) {
    const a = p.C_GetAttributeValue(session, found[0], [
      { type: pkcs11js.CKA_SENSITIVE }, { type: pkcs11js.CKA_EXTRACTABLE }, { type: pkcs11js.CKA_VALUE_LEN }, { type: pkcs11js.CKA_LABEL },
    ]);
    out.sensitive = a[0].value[0] === 1;
    out.extractable = a[1].value[0] === 1;
    out.valueLen = a[2].value.readUInt32LE(0);
    out.label = a[3].value.toString('utf8');
    try {
      const v = p.C_GetAttributeValue(session, found[0], [{ type: pkcs11js.CKA_VALUE }]);
      out.value = 'RETURNED ' + v[0].value.length + ' bytes';
    } catch (e) {
      out.value = /CKR_[A-Z_]+/.exec(e.message)[0];
    }
  }
  p.C_Logout(session);
  p.C_CloseSession(session);
  console.log(JSON.stringify(out));
} finally {
  p.C_Finalize();
}`;
  const out = execFileSync(process.execPath, ['-e', script], { env: { ...process.env, SOFTHSM2_CONF: hsm.conf }, cwd: process.cwd(), encoding: 'utf8' });
  return JSON.parse(out.trim()) as ReturnType<typeof inspectTokenKey>;
}
