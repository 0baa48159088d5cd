import { X509Certificate, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, rootCertificates } from 'node:tls';
import type { KmsCore } from './core.js';
import type { RegionSet } from './regions.js';
import type { KeyRecord } from './model.js';
import type { KmsStore } from './store.js';
import { canonicalContext, blobHeader, type ParsedBlob } from './blob.js';
import { TokenError, TokenSession, ensurePkcs11, gcmIv, tokenKeyRef, type TokenLocation } from './pkcs11.js';
import { err } from './ops/util.js';
import { DEFAULT_XKS_TIMEOUT_MS, connectXks, type XksStoreFields } from './xks-stores.js';
import type { XksTransport } from './xks-client.js';

/**
 * CloudHSM key stores of the local KMS (Developer Guide, "AWS CloudHSM key stores"; API Reference,
 * CreateCustomKeyStore ... DeleteCustomKeyStore). A "cluster" is a PKCS#11 token the local KMS was
 * configured with (service option `hsms`, CLI `--hsm`): its library and token label. The key
 * store's password is the token's user PIN (CloudHSM's `kmsuser` crypto user).
 *
 * Key stores belong to one Region like AWS's; the registry is per service (one per RegionSet), so
 * a Region's core being dropped while it holds no key does not drop its connections. Records are
 * persisted by the home Region's store (custom-key-stores.json, the password sealed).
 */

export type ConnectionState = 'CONNECTED' | 'CONNECTING' | 'FAILED' | 'DISCONNECTED' | 'DISCONNECTING';

/** CloudHSM-style cluster ids (API Reference, CloudHsmClusterId: 19-24 characters). */
export const CLUSTER_ID = /^cluster-[a-zA-Z0-9]{11,16}$/;

/** One configured "cluster": a PKCS#11 token. */
export interface HsmConfig extends TokenLocation {
  /**
   * PEM of the cluster's trust anchor certificate (customerCA.crt). When set, CreateCustomKeyStore
   * must present the same certificate (IncorrectTrustAnchorException); when absent, any well-formed
   * X.509 certificate is accepted (the local KMS has no cluster certificate to compare with).
   */
  trustAnchor?: string;
}

interface StoreRecordBase {
  id: string;
  name: string;
  region: string;
  /**
   * The secret: a CloudHSM store's token user PIN, an external key store's RawSecretAccessKey.
   * Sealed by the store at rest, never returned or logged.
   */
  password: string;
  createdAt: number;
  /** What the last Connect/Disconnect asked for: a restarted local KMS reconnects stores that were connected. */
  connect: boolean;
}

export interface CloudHsmStoreRecord extends StoreRecordBase {
  type: 'AWS_CLOUDHSM';
  clusterId: string;
  trustAnchor: string;
}

/** An external key store (xks-stores.ts): its proxy's address and SigV4 access key id. */
export interface XksStoreRecord extends StoreRecordBase {
  type: 'EXTERNAL_KEY_STORE';
  xks: XksStoreFields;
}

export type CustomKeyStoreRecord = CloudHsmStoreRecord | XksStoreRecord;

interface Connection {
  state: ConnectionState;
  errorCode?: string;
  session?: TokenSession;
}

export class KeyStoreRegistry {
  readonly records = new Map<string, CustomKeyStoreRecord>();
  readonly connections = new Map<string, Connection>();
  /** Reconnection of stores persisted as connected, started by the first request after start-up. */
  private restoring: Promise<void> | undefined;

  constructor(
    readonly hsms: ReadonlyMap<string, HsmConfig>,
    private readonly store: KmsStore,
    /** How external key store proxies are reached (timeout, extra CAs). */
    readonly xks: XksTransport,
  ) {
    for (const r of store.loadCustomKeyStores?.() ?? []) this.records.set(r.id, r);
  }

  save(): void {
    this.store.putCustomKeyStores?.([...this.records.values()]);
  }

  /**
   * Sets (or, with `undefined`, removes) the record of key store `id` and persists the registry;
   * when the store cannot write, the record in memory is put back as it was and the error thrown.
   */
  commit(id: string, next: CustomKeyStoreRecord | undefined): void {
    const before = this.records.get(id);
    if (next === undefined) this.records.delete(id);
    else this.records.set(id, next);
    try {
      this.save();
    } catch (e) {
      if (before === undefined) this.records.delete(id);
      else this.records.set(id, before);
      throw e;
    }
  }

  connection(id: string): Connection {
    let c = this.connections.get(id);
    if (!c) {
      c = { state: 'DISCONNECTED' };
      this.connections.set(id, c);
    }
    return c;
  }

  /** Reconnects the stores that were connected when the data directory was last used. */
  restore(): Promise<void> {
    this.restoring ??= (async () => {
      for (const r of this.records.values()) if (r.connect && this.connection(r.id).state === 'DISCONNECTED') await this.connect(r);
    })();
    return this.restoring;
  }

  /**
   * Opens the token session. A failure leaves the store FAILED with AWS's ConnectionErrorCode
   * (API Reference, CustomKeyStoresListEntry): wrong PIN → INVALID_CREDENTIALS, locked PIN →
   * USER_LOCKED_OUT, no such token or library → CLUSTER_NOT_FOUND, anything else INTERNAL_ERROR.
   */
  async connect(r: CustomKeyStoreRecord): Promise<void> {
    const c = this.connection(r.id);
    c.state = 'CONNECTING';
    delete c.errorCode;
    if (r.type === 'EXTERNAL_KEY_STORE') {
      // An external key store is connected when its proxy answers GetHealthStatus (Developer
      // Guide, "Connecting and disconnecting external key stores"); nothing stays open.
      const code = await connectXks(r, this.xks);
      if (c.state !== 'CONNECTING' || this.connections.get(r.id) !== c) return;
      c.state = code === undefined ? 'CONNECTED' : 'FAILED';
      if (code !== undefined) c.errorCode = code;
      return;
    }
    const hsm = this.hsms.get(r.clusterId);
    if (!hsm) {
      c.state = 'FAILED';
      c.errorCode = 'CLUSTER_NOT_FOUND';
      return;
    }
    try {
      const session = await TokenSession.open(hsm, r.password);
      // Disconnected (or deleted) while the session was being opened: that request wins.
      if (c.state !== 'CONNECTING' || this.connections.get(r.id) !== c) {
        session.close();
        return;
      }
      c.session = session;
      c.state = 'CONNECTED';
    } catch (e) {
      if (c.state !== 'CONNECTING') return;
      c.state = 'FAILED';
      c.errorCode = connectionErrorCode(e);
    }
  }

  disconnect(id: string): void {
    const c = this.connection(id);
    c.session?.close();
    delete c.session;
    delete c.errorCode;
    c.state = 'DISCONNECTED';
  }

  close(): void {
    for (const id of this.connections.keys()) this.disconnect(id);
  }
}

function connectionErrorCode(e: unknown): string {
  if (!(e instanceof TokenError)) return 'INTERNAL_ERROR';
  switch (e.ckr) {
    case 'CKR_PIN_INCORRECT':
    case 'CKR_PIN_INVALID':
    case 'CKR_PIN_LEN_RANGE':
      return 'INVALID_CREDENTIALS';
    case 'CKR_PIN_LOCKED':
      return 'USER_LOCKED_OUT';
    case 'CKR_USER_PIN_NOT_INITIALIZED':
      return 'USER_NOT_FOUND';
    case 'TOKEN_NOT_FOUND':
    case 'MODULE_NOT_FOUND':
      return 'CLUSTER_NOT_FOUND';
    default:
      return 'INTERNAL_ERROR';
  }
}

const registries = new WeakMap<RegionSet, KeyStoreRegistry>();

/**
 * Parses the `hsms` service option: cluster id → { module, tokenLabel, trustAnchor? }. Validated
 * once, at construction (RangeError/TypeError naming the entry).
 */
export function parseHsmOption(hsms: unknown): Map<string, HsmConfig> {
  const out = new Map<string, HsmConfig>();
  if (hsms === undefined) return out;
  if (hsms === null || typeof hsms !== 'object' || Array.isArray(hsms)) {
    throw new TypeError('hsms must be an object mapping cluster ids to { module, tokenLabel, trustAnchor? }');
  }
  for (const [id, v] of Object.entries(hsms as Record<string, unknown>)) {
    if (!CLUSTER_ID.test(id)) throw new RangeError(`hsms: '${id}' is not a cluster id (cluster- followed by 11 to 16 letters or digits)`);
    const c = v as Partial<HsmConfig> | null;
    if (!c || typeof c.module !== 'string' || c.module === '' || typeof c.tokenLabel !== 'string' || c.tokenLabel === '' || c.tokenLabel.length > 32) {
      throw new TypeError(`hsms.${id} must be { module: PKCS#11 library path, tokenLabel: token label (1-32 characters), trustAnchor?: PEM }`);
    }
    if (c.trustAnchor !== undefined && (typeof c.trustAnchor !== 'string' || !parseCertificate(c.trustAnchor))) {
      throw new TypeError(`hsms.${id}.trustAnchor must be a PEM X.509 certificate`);
    }
    out.set(id, { module: c.module, tokenLabel: c.tokenLabel, ...(c.trustAnchor !== undefined ? { trustAnchor: c.trustAnchor } : {}) });
  }
  return out;
}

export function parseCertificate(pem: string): X509Certificate | undefined {
  try {
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}

/** Called once by LocalKmsService: the registry of its Regions, loaded from the home store. */
export function configureKeyStores(regions: RegionSet, store: KmsStore, hsms: Map<string, HsmConfig>, xks: XksTransport): void {
  registries.set(regions, new KeyStoreRegistry(hsms, store, xks));
}

/**
 * Parses the external key store transport options once (LocalKmsServiceOptions.xksProxyTimeoutMs,
 * xksProxyCa): RangeError/TypeError naming the option.
 */
export function parseXksOptions(timeoutMs: unknown, ca: unknown, clock: () => number): XksTransport {
  const t = timeoutMs ?? DEFAULT_XKS_TIMEOUT_MS;
  if (typeof t !== 'number' || !Number.isInteger(t) || t < 1 || t > 60_000) throw new RangeError('xksProxyTimeoutMs must be an integer from 1 to 60000 (milliseconds)');
  if (ca === undefined) return { timeoutMs: t, clock };
  const list = typeof ca === 'string' ? [ca] : ca;
  if (!Array.isArray(list) || list.length === 0 || !list.every((c) => typeof c === 'string' && parseCertificate(c))) {
    throw new TypeError('xksProxyCa must be a PEM X.509 certificate or a non-empty array of them');
  }
  // Node's `ca` option REPLACES the CAs it trusts by default ("Mozilla's CAs are completely
  // replaced when CAs are explicitly specified", Node docs, tls.createSecureContext), while
  // xksProxyCa is documented to add to them: the defaults are the bundled roots
  // (tls.rootCertificates) extended with NODE_EXTRA_CA_CERTS (Node docs, "NODE_EXTRA_CA_CERTS"),
  // which Node reads at start-up; an unreadable file is skipped, as Node only warns about it.
  let extra: string[] = [];
  const envFile = process.env.NODE_EXTRA_CA_CERTS;
  if (envFile) {
    try {
      extra = [readFileSync(envFile, 'utf8')];
    } catch {
      extra = [];
    }
  }
  const all = [...rootCertificates, ...extra, ...(list as string[])];
  // Built once: parsing every root for each proxy request would block the event loop each time.
  return { timeoutMs: t, ca: all, secureContext: createSecureContext({ ca: all }), clock };
}

export function registryOf(kms: KmsCore): KeyStoreRegistry {
  const r = kms.regions ? registries.get(kms.regions) : undefined;
  if (!r) throw new Error('custom key stores: the service did not configure them');
  return r;
}

/** Before each request: reconnects persisted connected stores (once); free when there are none. */
export async function keyStoresReady(kms: KmsCore): Promise<void> {
  const r = kms.regions ? registries.get(kms.regions) : undefined;
  if (r && r.records.size > 0) await r.restore();
}

export function closeKeyStores(regions: RegionSet): void {
  registries.get(regions)?.close();
}

/** Whether two clusters are the same token (AWS: "share a backup history"). */
export function sameToken(a: TokenLocation, b: TokenLocation): boolean {
  return a.module === b.module && a.tokenLabel === b.tokenLabel;
}

export function trustAnchorMatches(hsm: HsmConfig, pem: string): boolean {
  const cert = parseCertificate(pem);
  if (!cert) return false;
  if (hsm.trustAnchor === undefined) return true;
  const want = parseCertificate(hsm.trustAnchor)!;
  return cert.fingerprint256 === want.fingerprint256;
}

export function newKeyStoreId(random: Buffer): string {
  // AWS's ids: `cks-` + 17 hex digits (API Reference examples, e.g. cks-1234567890abcdef0).
  return `cks-${createHash('sha256').update(random).digest('hex').slice(0, 17)}`;
}

export async function ensureBinding(): Promise<void> {
  await ensurePkcs11();
}

// ---------------------------------------------------------------------------------------
// Keys in key stores

/** The key's key store, when its key store is not CONNECTED: the key is `Unavailable`. */
export function keyUnavailable(kms: KmsCore, key: KeyRecord): boolean {
  if (key.customKeyStoreId === undefined) return false;
  const r = kms.regions ? registries.get(kms.regions) : undefined;
  return r?.connections.get(key.customKeyStoreId)?.state !== 'CONNECTED';
}

/**
 * DescribeKey members of a key in a key store (KeyMetadata CustomKeyStoreId, CloudHsmClusterId;
 * for external key stores XksKeyConfiguration { Id }).
 */
export function keyStoreMetadata(kms: KmsCore, key: KeyRecord): Record<string, unknown> {
  if (key.customKeyStoreId === undefined) return {};
  if (key.xksKeyId !== undefined) return { CustomKeyStoreId: key.customKeyStoreId, XksKeyConfiguration: { Id: key.xksKeyId } };
  const rec = kms.regions ? registries.get(kms.regions)?.records.get(key.customKeyStoreId) : undefined;
  return { CustomKeyStoreId: key.customKeyStoreId, ...(rec?.type === 'AWS_CLOUDHSM' ? { CloudHsmClusterId: rec.clusterId } : {}) };
}

/** The external key store of a key in one, with the transport to reach its proxy. */
export function xksStoreOf(kms: KmsCore, key: KeyRecord): { rec: XksStoreRecord; transport: XksTransport } {
  const reg = registryOf(kms);
  const rec = reg.records.get(key.customKeyStoreId!);
  // requireEnabled ran first: the store exists and is connected.
  if (!rec || rec.type !== 'EXTERNAL_KEY_STORE') throw kms.invalidState(key, 'Unavailable');
  return { rec, transport: reg.xks };
}

function sessionFor(kms: KmsCore, key: KeyRecord): TokenSession {
  const s = registryOf(kms).connections.get(key.customKeyStoreId!)?.session;
  // requireEnabled ran first, so a key of a store that is not connected never gets here.
  if (!s) throw kms.invalidState(key, 'Unavailable');
  return s;
}

/** A token failure during a request: KMSInternalException naming only the PKCS#11 result code. */
function tokenFailure(e: unknown): Error {
  if (e instanceof TokenError) return err('KMSInternalException', `The CloudHSM key store's token failed: ${e.ckr}.`);
  return e as Error;
}

/** Encrypt with a key in a CloudHSM key store: blob.ts's layout, AES-GCM computed by the token. */
export function hsmSealBlob(kms: KmsCore, key: KeyRecord, materialId: string, plaintext: Uint8Array, context: Readonly<Record<string, string>> | undefined): Buffer {
  const header = blobHeader(key.keyId, materialId);
  const iv = gcmIv();
  try {
    const ctAndTag = sessionFor(kms, key).gcmEncrypt(tokenKeyRef(key.keyId), iv, Buffer.concat([header, canonicalContext(context)]), plaintext);
    return Buffer.concat([header, iv, ctAndTag]);
  } catch (e) {
    throw tokenFailure(e);
  }
}

/** Decrypt with a key in a CloudHSM key store; undefined when the ciphertext does not authenticate. */
export function hsmOpenBlob(kms: KmsCore, key: KeyRecord, parsed: ParsedBlob, context: Readonly<Record<string, string>> | undefined): Buffer | undefined {
  try {
    return sessionFor(kms, key).gcmDecrypt(tokenKeyRef(key.keyId), parsed.iv, Buffer.concat([parsed.header, canonicalContext(context)]), Buffer.concat([parsed.ct, parsed.tag]));
  } catch (e) {
    throw tokenFailure(e);
  }
}

/**
 * A key's waiting period ended: its token object is destroyed when its key store is connected.
 * When it is not, AWS deletes the KMS key and leaves the key material in the cluster (Developer
 * Guide, "Deleting KMS keys from an AWS CloudHSM key store": orphaned key material); so does this.
 */
export function destroyTokenKey(kms: KmsCore, key: KeyRecord): void {
  // Keys of external key stores: AWS never deletes the external key (Developer Guide, "Deleting
  // KMS keys from an external key store"); the KMS key's own material goes with its record.
  if (key.customKeyStoreId === undefined || key.xksKeyId !== undefined) return;
  const s = kms.regions ? registries.get(kms.regions)?.connections.get(key.customKeyStoreId)?.session : undefined;
  if (s) s.destroy(tokenKeyRef(key.keyId));
}

/**
 * GenerateRandom with CustomKeyStoreId: random bytes from the CloudHSM key store's token
 * (C_GenerateRandom). Unknown store: CustomKeyStoreNotFoundException; not connected:
 * CustomKeyStoreInvalidStateException (API Reference, GenerateRandom).
 */
export function keyStoreRandom(kms: KmsCore, storeId: string, n: number, foreignCaller: boolean): Buffer {
  const reg = registryOf(kms);
  const rec = reg.records.get(storeId);
  // A caller of another account names a key store of its own account, which is not here.
  if (!rec || rec.region !== kms.region || foreignCaller) throw err('CustomKeyStoreNotFoundException', `Custom key store ${storeId} does not exist.`);
  // "External key stores do not support GenerateRandom" (API Reference, GenerateRandom CustomKeyStoreId).
  if (rec.type === 'EXTERNAL_KEY_STORE') throw err('UnsupportedOperationException', `Custom key store ${storeId} is an external key store; GenerateRandom uses CloudHSM key stores only.`);
  const conn = reg.connection(storeId);
  if (conn.state !== 'CONNECTED' || !conn.session) {
    throw err('CustomKeyStoreInvalidStateException', `Custom key store ${storeId} is ${conn.state}; GenerateRandom needs it CONNECTED.`);
  }
  try {
    return conn.session.random(n);
  } catch (e) {
    throw tokenFailure(e);
  }
}
