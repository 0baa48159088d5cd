/**
 * Issue 17, "the key never leaves the token": after 1,000 operations with an AWS_CLOUDHSM key, no
 * 32-byte value in the local KMS server's memory opens the test's ciphertexts.
 *
 * The server runs as its own process (the built CLI, `local-kms --hsm`). The token runs as a
 * separate process too, as a real HSM would: `p11-kit server` serves the SoftHSM2 token over
 * p11-kit's remote PKCS#11 and the server loads only p11-kit's client module. That needs p11-kit
 * 0.25.0 or later: p11-kit 0.24.1 (Debian 12) cannot forward CK_GCM_PARAMS (its RPC serializes
 * mechanism parameters for RSA-PSS and RSA-OAEP only), so C_EncryptInit(CKM_AES_GCM) answers
 * CKR_MECHANISM_INVALID. When the installed p11-kit is older (probed first), SoftHSM2 is loaded in
 * the server process instead and the scan covers its memory as well, which is a stricter demand
 * than a real HSM's (the token library's own memory must not hold the key between operations
 * either). P11_KIT_PREFIX names a p11-kit >= 0.25 installation to use instead of the system's.
 *
 * What is scanned (memory-scan.ts): every readable mapping of the stopped server
 * (/proc/PID/maps + /proc/PID/mem) and the strings of a V8 heap snapshot (raw, and base64/hex
 * runs decoded). A V8 heap snapshot holds no ArrayBuffer/Buffer backing store bytes (the control
 * key below, a Buffer, is found in process memory and not in the snapshot), hence both.
 *
 * Positive controls, so that the scan can fail: an ordinary KMS-origin key, whose material the
 * local KMS legitimately holds in memory, must be found in process memory from one of its
 * ciphertexts (same blob layout, same check); a planted 32-byte key, sent base64-encoded as a
 * key's Description, must be found in the heap snapshot.
 *
 * External key stores (second describe): the XKS proxy runs in the test process on its own
 * SoftHSM2 token, the local KMS reaches it through the recording relay (xks-relay.ts), and after
 * 1,000 operations with an EXTERNAL_KEY_STORE key its process is scanned the same way for the
 * token key. The check comes from one proxy Encrypt seen by the relay: the request's plaintext
 * (the inner ciphertext) is the known plaintext of the proxy's AES-GCM, the answer gives IV and
 * ciphertext. Controls: the token key, imported with a known value, passes those checks and is
 * found by the same scanner in a planted copy; the local KMS's own material of the XKS key (the
 * inner layer) is found in its memory; the planted Description key is found in the snapshot.
 *
 * Runs as `npm run test:hsm` (also in .ci/run): it takes longer than `npm test`'s budget allows.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createCipheriv, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  ConnectCustomKeyStoreCommand,
  CreateCustomKeyStoreCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeCustomKeyStoresCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  type KMSClient,
} from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectAwsError, sdkClient } from './helpers.js';
import { KeyScanner, gcmKeyCheck, heapSnapshotStrings, keyMatches, readProcessMemory, type KeyCheck } from './memory-scan.js';
import { SOFTHSM_MODULE, USER_PIN, skipReason as softHsmMissing, softHsm, type SoftHsm } from './softhsm.js';
import { ACCESS_KEY_ID as XKS_ACCESS_KEY_ID, SECRET as XKS_SECRET } from './xks-harness.js';
import { startRelay } from './xks-relay.js';

const root = resolve(import.meta.dirname, '../..');
const CLUSTER = 'cluster-memscan12345';
const XKS_TOKEN = 'xks-mem';
const prefix = process.env.P11_KIT_PREFIX;
const P11KIT = prefix ? join(prefix, 'bin/p11-kit') : '/usr/bin/p11-kit';
const CLIENT = prefix ? join(prefix, 'lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so') : '/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so';
const p11Env: Record<string, string> = prefix ? { LD_LIBRARY_PATH: join(prefix, 'lib/x86_64-linux-gnu') } : {};

/** Why no process can be scanned here (the XKS test needs no p11-kit). */
const scanSkipReason = softHsmMissing ?? (process.platform !== 'linux' ? 'reads /proc/PID/mem (Linux only)' : undefined) ?? procMemUnreadable();
const skipReason =
  scanSkipReason ?? (!existsSync(P11KIT) || !existsSync(CLIENT) ? 'p11-kit or its client module is missing (apt-get install p11-kit p11-kit-modules)' : undefined);

/** Whether this process may read a child's /proc/PID/mem (ptrace access mode; Yama ptrace_scope). */
function procMemUnreadable(): string | undefined {
  const child = spawn('sleep', ['10'], { stdio: 'ignore' });
  try {
    const first = readFileSync(`/proc/${child.pid}/maps`, 'utf8').split('\n').find((l) => / r/.test(l))!;
    const lo = parseInt(first.split('-')[0]!, 16);
    const fd = openSync(`/proc/${child.pid}/mem`, 'r');
    try {
      readSync(fd, Buffer.alloc(16), 0, 16, lo);
    } finally {
      closeSync(fd);
    }
    return undefined;
  } catch (e) {
    return `a child's /proc/PID/mem cannot be read here (${(e as Error).message.split('\n')[0]})`;
  } finally {
    child.kill('SIGKILL');
  }
}

interface Proc {
  child: ChildProcess;
  stop(): Promise<void>;
}

function track(child: ChildProcess): Proc {
  return {
    child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Waits for a line of the child's stdout matching `re`; returns the match. */
function waitFor(child: ChildProcess, re: RegExp): Promise<RegExpExecArray> {
  return new Promise((res, rej) => {
    let out = '';
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = re.exec(out);
      if (m) res(m);
    });
    child.once('exit', (code) => rej(new Error(`${child.spawnargs.join(' ')} exited ${code}: ${err}`)));
  });
}

/** `p11-kit server` serving one token of the SoftHSM2 configuration on a socket in hsm.dir. */
async function p11KitServer(hsm: SoftHsm, token: string): Promise<{ proc: Proc; address: string }> {
  const child = spawn(P11KIT, ['server', '-f', '-n', join(hsm.dir, 'p11.sock'), '--provider', SOFTHSM_MODULE!, `pkcs11:token=${token}`], {
    env: { ...process.env, ...p11Env, SOFTHSM2_CONF: hsm.conf },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const m = await waitFor(child, /P11_KIT_SERVER_ADDRESS=([^;\n]+);/);
  return { proc: track(child), address: m[1]! };
}

/** Whether AES-GCM works through the remote token (p11-kit >= 0.25), probed with pkcs11js in a child. */
function remoteGcmWorks(address: string): { ok: boolean; detail: string } {
  const script = `
const pkcs11js = require('pkcs11js');
const p = new pkcs11js.PKCS11();
p.load(${JSON.stringify(CLIENT)});
p.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
try {
  const s = p.C_OpenSession(p.C_GetSlotList(true)[0], pkcs11js.CKF_SERIAL_SESSION);
  p.C_Login(s, pkcs11js.CKU_USER, ${JSON.stringify(USER_PIN)});
  const k = p.C_GenerateKey(s, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY }, { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
    { type: pkcs11js.CKA_VALUE_LEN, value: 32 }, { type: pkcs11js.CKA_TOKEN, value: false },
    { type: pkcs11js.CKA_ENCRYPT, value: true }, { type: pkcs11js.CKA_DECRYPT, value: true }]);
  const gcm = { mechanism: pkcs11js.CKM_AES_GCM, parameter: { type: pkcs11js.CK_PARAMS_GCM, iv: Buffer.alloc(12, 7), ivBits: 96, aad: Buffer.from('a'), tagBits: 128 } };
  try {
    p.C_EncryptInit(s, gcm, k);
    const ct = Buffer.from(p.C_Encrypt(s, Buffer.from('probe'), Buffer.alloc(21)));
    p.C_DecryptInit(s, gcm, k);
    const pt = Buffer.from(p.C_Decrypt(s, ct, Buffer.alloc(21))).toString();
    process.stdout.write(pt === 'probe' ? 'ok' : 'wrong plaintext');
  } catch (e) {
    process.stdout.write('AES-GCM through p11-kit: ' + /CKR_[A-Z_]+/.exec(e.message)[0]);
  }
  p.C_Logout(s);
} finally {
  p.C_Finalize();
}`;
  const r = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, ...p11Env, P11_KIT_SERVER_ADDRESS: address }, cwd: root, encoding: 'utf8', timeout: 30_000 });
  const detail = (r.stdout || r.stderr).trim().split('\n')[0]!;
  return { ok: detail === 'ok', detail };
}

/** `--hsm` for the cluster on `token` of the PKCS#11 library `module`. */
const hsmArgs = (module: string, token: string) => ['--hsm', `${CLUSTER}=${module}:${token}`];

/** The built CLI's local KMS as its own process; `cwd` receives its heap snapshots. */
async function localKms(cwd: string, args: string[], env: Record<string, string>): Promise<{ proc: Proc; kms: KMSClient; pid: number }> {
  const child = spawn(process.execPath, [join(root, 'dist/cli/main.js'), 'local-kms', '--port', '0', '--data-dir', join(cwd, 'kms-data'), ...args], {
    cwd,
    env: { ...env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --heapsnapshot-signal=SIGUSR2`.trim() },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const m = await waitFor(child, /listening on (http:\/\/\S+)/);
  return { proc: track(child), kms: sdkClient(m[1]!), pid: child.pid! };
}

/** Environment without SoftHSM's configuration: a server that must not open the token itself. */
function envWithout(...names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !names.includes(k)) out[k] = v;
  return out;
}

async function hsmKey(kms: KMSClient, anchor: string): Promise<{ storeId: string; keyId: string }> {
  const { CustomKeyStoreId } = await kms.send(
    new CreateCustomKeyStoreCommand({ CustomKeyStoreName: 'mem', CloudHsmClusterId: CLUSTER, KeyStorePassword: USER_PIN, TrustAnchorCertificate: anchor }),
  );
  await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId }));
  const store = (await kms.send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreId }))).CustomKeyStores![0]!;
  expect({ state: store.ConnectionState, error: store.ConnectionErrorCode }).toEqual({ state: 'CONNECTED', error: undefined });
  const keyId = (await kms.send(new CreateKeyCommand({ Origin: 'AWS_CLOUDHSM', CustomKeyStoreId }))).KeyMetadata!.KeyId!;
  return { storeId: CustomKeyStoreId!, keyId };
}

/** The check of a local KMS blob (blob.ts: header 49 B, IV 12 B, ciphertext, tag 16 B) with known plaintext. */
function blobCheck(label: string, blob: Uint8Array, plaintext: Uint8Array): KeyCheck {
  return gcmKeyCheck(label, blob.subarray(49, 61), blob.subarray(61, blob.length - 16), plaintext);
}

describe.skipIf(skipReason !== undefined)(`the HSM key is not in the local KMS process${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let hsm: SoftHsm;
  let anchor: string;
  let p11kit: { proc: Proc; address: string };
  let probe: { ok: boolean; detail: string };
  const procs: Proc[] = [];

  beforeAll(async () => {
    hsm = softHsm();
    hsm.initToken('remote');
    hsm.initToken('local');
    anchor = hsm.certificate('customerCA');
    p11kit = await p11KitServer(hsm, 'remote');
    procs.push(p11kit.proc);
    probe = remoteGcmWorks(p11kit.address);
  });

  afterAll(async () => {
    for (const p of procs.reverse()) await p.stop();
    hsm?.cleanup();
  });

  it('a key store on a token served by p11-kit server connects through p11-kit-client.so (C_Initialize asks for OS locking, which the client requires)', async () => {
    const server = await localKms(hsm.dir, hsmArgs(CLIENT, 'remote'), { ...envWithout('SOFTHSM2_CONF'), ...p11Env, P11_KIT_SERVER_ADDRESS: p11kit.address });
    procs.push(server.proc);
    try {
      const { keyId } = await hsmKey(server.kms, anchor);
      const maps = readFileSync(`/proc/${server.pid}/maps`, 'utf8');
      expect(maps).toContain('p11-kit-client.so');
      expect(maps).not.toContain('libsofthsm2');
      if (probe.ok) {
        const enc = await server.kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('through the remote token') }));
        expect(Buffer.from((await server.kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob }))).Plaintext!).toString()).toBe('through the remote token');
      } else {
        // p11-kit < 0.25: the key was generated in the remote token, but GCM cannot be forwarded.
        const e = await expectAwsError(server.kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') })), 'KMSInternalException');
        expect(e.message).toContain('CKR_MECHANISM_INVALID');
      }
    } finally {
      server.kms.destroy();
      await server.proc.stop();
    }
  });

  it('after 1,000 operations no 32-byte value in the server process or its heap snapshot opens the HSM ciphertexts; the controls are found', { timeout: 600_000 }, async () => {
    const remote = probe.ok;
    console.log(remote ? 'token in its own process (p11-kit server)' : `token library in the local KMS process (fallback: ${probe.detail})`);
    const cwd = join(hsm.dir, 'scan');
    mkdirSync(cwd);
    const server = remote
      ? await localKms(cwd, hsmArgs(CLIENT, 'remote'), { ...envWithout('SOFTHSM2_CONF'), ...p11Env, P11_KIT_SERVER_ADDRESS: p11kit.address })
      : await localKms(cwd, hsmArgs(SOFTHSM_MODULE!, 'local'), { ...process.env, SOFTHSM2_CONF: hsm.conf } as Record<string, string>);
    procs.push(server.proc);
    const { kms, pid } = server;
    try {
      const { keyId } = await hsmKey(kms, anchor);
      // Controls: a KMS-origin key (material held by the local KMS) and a planted key in a Description.
      const plantedCheck = await plant(kms);
      const controlKey = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
      const controlPlain = randomBytes(32);
      const controlBlob = (await kms.send(new EncryptCommand({ KeyId: controlKey, Plaintext: controlPlain }))).CiphertextBlob!;
      const checks: KeyCheck[] = [blobCheck('KMS-origin control', controlBlob, controlPlain), plantedCheck];

      const kept = await thousandOperations(kms, keyId);
      // Five HSM ciphertexts (different IVs, Encrypt and GenerateDataKey) give five checks of the one key.
      for (const k of [kept[0]!, kept[1]!, kept[Math.floor(kept.length / 2)]!, kept[kept.length - 2]!, kept[kept.length - 1]!]) checks.push(blobCheck('HSM key', k.blob, k.plaintext));

      const { memScanner, snapScanner } = await scanServer(pid, cwd, checks);
      // The controls: the scan finds keys that are there.
      expect(found(memScanner, 'KMS-origin control').length).toBe(1);
      expect(found(snapScanner, 'planted').length).toBe(1);
      // The HSM key is in neither.
      expect(found(memScanner, 'HSM key')).toEqual([]);
      expect(found(snapScanner, 'HSM key')).toEqual([]);
      if (remote) {
        const maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
        expect(maps).not.toContain('libsofthsm2');
      }
    } finally {
      kms.destroy();
      await server.proc.stop();
    }
  });
});

/**
 * External key stores: the token key behind an EXTERNAL_KEY_STORE key is the XKS proxy's (here in
 * this test process, over its own SoftHSM2 token); the local KMS process, which loads no PKCS#11
 * library at all for it, must hold only its own inner-layer material. The token key is imported
 * with a value the test knows, so that the check taken from the proxy's answer is shown to be that
 * key's (a wrong reading of the answer would make the scan pass vacuously).
 */
describe.skipIf(scanSkipReason !== undefined)(`the XKS proxy's token key is not in the local KMS process${scanSkipReason ? ` (skipped: ${scanSkipReason})` : ''}`, () => {
  it('after 1,000 operations with an XKS key no 32-byte value in the server process or its heap snapshot is the token key; the controls are found', { timeout: 600_000 }, async () => {
    const hsm = softHsm();
    const started: Array<() => Promise<void>> = [];
    try {
      hsm.initToken(XKS_TOKEN);
      const tokenKey = randomBytes(32);
      importTokenKey(hsm, 'mem-xks-key', tokenKey);
      const { startXksProxy } = await import('../../src/xks-proxy/index.js');
      const proxy = await startXksProxy({
        port: 0,
        uriPrefix: 'mem',
        region: 'us-east-1',
        credentials: [{ accessKeyId: XKS_ACCESS_KEY_ID, secretAccessKey: XKS_SECRET }],
        pkcs11: { module: hsm.module, tokenLabel: XKS_TOKEN, pin: USER_PIN },
      });
      started.push(() => proxy.close());
      const relay = await startRelay(proxy.url);
      started.push(() => relay.close());
      const cwd = join(hsm.dir, 'scan');
      mkdirSync(cwd);
      // A generous proxy timeout (AWS's is 250 ms): the proxy shares this process and 2 cores.
      const server = await localKms(cwd, ['--xks-timeout-ms', '10000'], envWithout('SOFTHSM2_CONF'));
      started.push(() => server.proc.stop());
      const { kms, pid } = server;
      started.push(async () => kms.destroy());

      const { CustomKeyStoreId } = await kms.send(
        new CreateCustomKeyStoreCommand({
          CustomKeyStoreName: 'mem-xks',
          CustomKeyStoreType: 'EXTERNAL_KEY_STORE',
          XksProxyUriEndpoint: relay.url,
          XksProxyUriPath: proxy.uriPath,
          XksProxyConnectivity: 'PUBLIC_ENDPOINT',
          XksProxyAuthenticationCredential: { AccessKeyId: XKS_ACCESS_KEY_ID, RawSecretAccessKey: XKS_SECRET },
        }),
      );
      await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId }));
      const keyId = (await kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId, XksKeyId: 'mem-xks-key' }))).KeyMetadata!.KeyId!;
      const plantedCheck = await plant(kms);

      const kept = await thousandOperations(kms, keyId);
      expect(kept.length).toBeGreaterThan(600);
      // One more Encrypt, of a known plaintext: its inner layer (the local KMS's own material of the
      // XKS key, which it must hold) is the control found in process memory.
      const controlPlain = randomBytes(32);
      await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: controlPlain }));
      const encrypts = relay.seen.filter((r) => r.path.endsWith('/encrypt'));
      const inner = Buffer.from(String(encrypts.at(-1)!.body.plaintext), 'base64');
      // The proxy gets the inner IV and ciphertext; the inner tag stays in the local KMS blob
      // (xks-client.ts: a proxy cannot answer with another ciphertext's inner layer).
      expect(inner).toHaveLength(12 + 32);
      const checks: KeyCheck[] = [gcmKeyCheck('local material control', inner.subarray(0, 12), inner.subarray(12, 44), controlPlain), plantedCheck];
      // Five proxy Encrypts give five checks of the token key: the request's plaintext (the inner
      // ciphertext) is the known plaintext of the proxy's AES-GCM, its answer gives IV and ciphertext.
      const b64 = (v: unknown) => Buffer.from(String(v), 'base64');
      for (const r of [encrypts[0]!, encrypts[1]!, encrypts[Math.floor(encrypts.length / 2)]!, encrypts.at(-2)!, encrypts.at(-1)!]) {
        const check = gcmKeyCheck('XKS token key', b64(r.response!.initializationVector), b64(r.response!.ciphertext), b64(r.body.plaintext));
        expect(keyMatches(tokenKey, check)).toBe(true);
        checks.push(check);
      }
      // The same scan finds the token key where it is (a copy among random bytes).
      const copy = new KeyScanner(checks);
      copy.scan(Buffer.concat([randomBytes(4099), tokenKey, randomBytes(4099)]), 'planted copy');
      expect(found(copy, 'XKS token key').map((h) => h.key)).toEqual([tokenKey.toString('hex')]);

      const { memScanner, snapScanner } = await scanServer(pid, cwd, checks);
      expect(found(memScanner, 'local material control').length).toBe(1);
      expect(found(snapScanner, 'planted').length).toBe(1);
      expect(found(memScanner, 'XKS token key')).toEqual([]);
      expect(found(snapScanner, 'XKS token key')).toEqual([]);
      const maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
      expect(maps).not.toContain('libsofthsm2');
    } finally {
      for (const stop of started.reverse()) await stop();
      hsm.cleanup();
    }
  });
});

/**
 * Imports an AES-256 key of known value into the XKS token (in a child process, so that this
 * process's SoftHSM2 is first initialized by the proxy): token, private, sensitive, not
 * extractable, encrypt and decrypt, labelled `label` (the external key id).
 */
function importTokenKey(hsm: SoftHsm, label: string, value: Buffer): void {
  const script = `
const pkcs11js = require('pkcs11js');
const p = new pkcs11js.PKCS11();
p.load(${JSON.stringify(hsm.module)});
p.C_Initialize();
try {
  const slot = p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).label.trim() === ${JSON.stringify(XKS_TOKEN)});
  const s = p.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
  p.C_Login(s, pkcs11js.CKU_USER, ${JSON.stringify(USER_PIN)});
  p.C_CreateObject(s, [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY }, { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
    { type: pkcs11js.CKA_VALUE, value: Buffer.from(process.env.KEY_HEX, 'hex') }, { type: pkcs11js.CKA_LABEL, value: ${JSON.stringify(label)} },
    { type: pkcs11js.CKA_TOKEN, value: true }, { type: pkcs11js.CKA_PRIVATE, value: true }, { type: pkcs11js.CKA_SENSITIVE, value: true },
    { type: pkcs11js.CKA_EXTRACTABLE, value: false }, { type: pkcs11js.CKA_ENCRYPT, value: true }, { type: pkcs11js.CKA_DECRYPT, value: true }]);
  p.C_Logout(s);
} finally {
  p.C_Finalize();
}`;
  // The key goes by environment, not argv (argv is readable by any user through /proc).
  const r = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, SOFTHSM2_CONF: hsm.conf, KEY_HEX: value.toString('hex') }, cwd: root, encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`importing the token key failed: ${r.stderr.split('\n').slice(0, 5).join(' ')}`);
}

/** The planted control: a random 32-byte key sent base64-encoded as a new key's Description. */
async function plant(kms: KMSClient): Promise<KeyCheck> {
  const planted = randomBytes(32);
  const input = randomBytes(16);
  const check: KeyCheck = { label: 'planted', input, output: createCipheriv('aes-256-ecb', planted, null).setAutoPadding(false).update(input) };
  expect(keyMatches(planted, check)).toBe(true);
  await kms.send(new CreateKeyCommand({ Description: `planted ${planted.toString('base64')}` }));
  return check;
}

/**
 * 1,000 operations with `keyId`: Encrypt, Decrypt and GenerateDataKey in turn, 10 at a time.
 * Returns the ciphertexts made, with their plaintexts.
 */
async function thousandOperations(kms: KMSClient, keyId: string): Promise<Array<{ blob: Uint8Array; plaintext: Buffer }>> {
  const kept: Array<{ blob: Uint8Array; plaintext: Buffer }> = [];
  let decrypted = 0;
  const op = async (i: number) => {
    if (i % 3 === 0 || kept.length === 0) {
      const plaintext = randomBytes(16 + (i % 48));
      const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext }));
      kept.push({ blob: CiphertextBlob!, plaintext });
    } else if (i % 3 === 1) {
      const k = kept[i % kept.length]!;
      const { Plaintext } = await kms.send(new DecryptCommand({ CiphertextBlob: k.blob }));
      expect(Buffer.compare(Buffer.from(Plaintext!), k.plaintext)).toBe(0);
      decrypted++;
    } else {
      const { CiphertextBlob, Plaintext } = await kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' }));
      kept.push({ blob: CiphertextBlob!, plaintext: Buffer.from(Plaintext!) });
    }
  };
  for (let i = 0; i < 1000; i += 10) await Promise.all(Array.from({ length: 10 }, (_, j) => op(i + j)));
  expect(kept.length + decrypted).toBe(1000);
  return kept;
}

const found = (s: KeyScanner, label: string) => s.result.hits.filter((h) => h.label === label);

/**
 * Scans the local KMS process `pid` for the keys of `checks`: a V8 heap snapshot (written to its
 * cwd `cwd` on SIGUSR2), then its whole memory while stopped. Logs what was scanned.
 */
async function scanServer(pid: number, cwd: string, checks: KeyCheck[]): Promise<{ memScanner: KeyScanner; snapScanner: KeyScanner }> {
  const t0 = Date.now();
  process.kill(pid, 'SIGUSR2');
  const snapshotPath = await snapshotFile(cwd);
  const snapScanner = new KeyScanner(checks);
  const strings = heapSnapshotStrings(snapshotPath);
  for (const [i, s] of strings.entries()) if (s.length >= 32) snapScanner.scanText(s, `snapshot string ${i}`);
  const t1 = Date.now();
  const memScanner = new KeyScanner(checks);
  process.kill(pid, 'SIGSTOP');
  let mem;
  try {
    mem = readProcessMemory(pid, (bytes, where) => memScanner.scan(bytes, where));
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  const t2 = Date.now();
  console.log(
    JSON.stringify({
      snapshot: { bytes: statSync(snapshotPath).size, strings: strings.length, scannedBytes: snapScanner.result.bytes, candidates: snapScanner.result.candidates, ms: t1 - t0 },
      memory: { regions: mem.regions, bytes: mem.bytes, scannedBytes: mem.visited, unreadable: mem.unreadable, candidates: memScanner.result.candidates, ms: t2 - t1 },
      // Observed (not asserted): the control key, a Buffer, is absent from the snapshot.
      controlInSnapshot: snapScanner.result.hits.some((h) => h.label.endsWith('control')),
      hits: { memory: memScanner.result.hits.map((h) => `${h.label} @ ${h.where}`), snapshot: snapScanner.result.hits.map((h) => `${h.label} @ ${h.where}`) },
    }),
  );
  return { memScanner, snapScanner };
}

/** The .heapsnapshot file the server writes into `dir`, once complete (it parses as JSON). */
async function snapshotFile(dir: string): Promise<string> {
  for (let i = 0; i < 600; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const name = readdirSync(dir).find((f) => f.endsWith('.heapsnapshot'));
    if (!name) continue;
    const path = join(dir, name);
    const text = readFileSync(path, 'utf8');
    if (text.endsWith('}') || text.endsWith('}\n')) {
      try {
        JSON.parse(text);
        return path;
      } catch {
        // still being written
      }
    }
  }
  throw new Error('the server wrote no heap snapshot within 60 s');
}
