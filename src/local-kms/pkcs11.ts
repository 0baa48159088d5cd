import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type * as Pkcs11Types from 'pkcs11js';

/**
 * PKCS#11 token access for the local KMS's CloudHSM key stores (custom-key-stores.ts), through
 * the optional peer dependency `pkcs11js` (a native addon). It is loaded by a dynamic import the
 * first time a key store is created or connected, so `import 'kms-envelope'` and a local KMS that
 * never sees a key store load nothing native (test/package/module-graph.test.ts).
 *
 * Key material never leaves the token: keys are generated there with CKA_SENSITIVE true and
 * CKA_EXTRACTABLE false (PKCS#11 v2.40 §4.9, "Secret key objects"), and AES-GCM runs there
 * (C_Encrypt/C_Decrypt with CKM_AES_GCM, §2.11.7 in the Current Mechanisms spec). The process only
 * ever holds object handles.
 */

type Pkcs11Module = typeof Pkcs11Types;
type PKCS11 = Pkcs11Types.PKCS11;
type Handle = Buffer;

let binding: Promise<Pkcs11Module> | undefined;

/**
 * Loads `pkcs11js` once; rejects with a message telling what to install when it is missing.
 * (Not exported with its type: the published declarations must not name the optional package.)
 */
export async function ensurePkcs11(): Promise<void> {
  await loadPkcs11();
}

function loadPkcs11(): Promise<Pkcs11Module> {
  binding ??= import('pkcs11js').then(
    (m) => ((m as { default?: Pkcs11Module }).default ?? m) as Pkcs11Module,
    (e: unknown) => {
      binding = undefined;
      throw new Pkcs11UnavailableError(
        `the PKCS#11 binding 'pkcs11js' could not be loaded (${e instanceof Error ? e.message.split('\n')[0] : String(e)}); install it with 'npm install pkcs11js' (a native addon: g++, make and python3 are needed, and npm must be allowed to run its install script)`,
      );
    },
  );
  return binding;
}

/** Whether the binding was ever loaded in this process (module-graph test). */
export function pkcs11Loaded(): boolean {
  return binding !== undefined;
}

/**
 * How many TokenSessions of this process are open and logged in on the token labelled
 * `tokenLabel`, over every loaded module (diagnostics and tests: a failed start must leave none).
 */
export function openTokenSessions(tokenLabel: string): number {
  let n = 0;
  for (const m of modules.values()) n += m.logins.get(tokenLabel) ?? 0;
  return n;
}

export class Pkcs11UnavailableError extends Error {
  override readonly name = 'Pkcs11UnavailableError';
}

/** A PKCS#11 failure with its CKR_ name (e.g. CKR_PIN_INCORRECT), never a PIN or key bytes. */
export class TokenError extends Error {
  override readonly name = 'TokenError';
  constructor(
    readonly ckr: string,
    message: string,
  ) {
    super(message);
  }
}

function ckrOf(e: unknown): string {
  const m = e instanceof Error ? /CKR_[A-Z_]+/.exec(e.message) : null;
  return m ? m[0] : 'CKR_GENERAL_ERROR';
}

/** One loaded PKCS#11 library (C_Initialize is per process: shared by every key store using it). */
interface LoadedModule {
  p: PKCS11;
  lib: Pkcs11Module;
  users: number;
  /** Logged-in sessions per token label: C_Logout logs out every session of the application. */
  logins: Map<string, number>;
  /**
   * Per token label, a keyed hash of the PIN the application logged in with: C_Login answers
   * CKR_USER_ALREADY_LOGGED_IN without checking the PIN (PKCS#11 v2.40 §5.6), so a later open
   * with another PIN is refused by comparing with this instead.
   */
  loginPins: Map<string, Buffer>;
}

/** Per-process key of the PIN hashes above (never leaves memory). */
const PIN_HASH_KEY = randomBytes(32);
const pinHash = (pin: string): Buffer => createHmac('sha256', PIN_HASH_KEY).update(pin, 'utf8').digest();

const modules = new Map<string, LoadedModule>();

async function openModule(path: string): Promise<LoadedModule> {
  const lib = await loadPkcs11();
  let m = modules.get(path);
  if (!m) {
    const p = new lib.PKCS11();
    try {
      p.load(path);
    } catch (e) {
      throw new TokenError('MODULE_NOT_FOUND', `PKCS#11 module ${path} could not be loaded (${e instanceof Error ? e.message : String(e)})`);
    }
    try {
      // CKF_OS_LOCKING_OK (PKCS#11 v2.40 §5.4, CK_C_INITIALIZE_ARGS): the library may use the OS's
      // locks. Remote-token clients need it: p11-kit's client module refuses C_Initialize without
      // it (CKR_CANT_LOCK). Calls from this process are serialized anyway (pkcs11js is synchronous).
      p.C_Initialize({ flags: lib.CKF_OS_LOCKING_OK });
    } catch (e) {
      if (ckrOf(e) !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') throw new TokenError(ckrOf(e), `C_Initialize of ${path} failed: ${ckrOf(e)}`);
    }
    m = { p, lib, users: 0, logins: new Map(), loginPins: new Map() };
    modules.set(path, m);
  }
  m.users++;
  return m;
}

function releaseModule(path: string, m: LoadedModule): void {
  m.users--;
  if (m.users > 0) return;
  modules.delete(path);
  try {
    m.p.C_Finalize();
  } catch {
    // Finalizing is best effort: the process may be exiting.
  }
  try {
    m.p.close();
  } catch {
    // as above
  }
}

/** Where a key store's token is: the PKCS#11 library and the token's label (CK_TOKEN_INFO label). */
export interface TokenLocation {
  module: string;
  tokenLabel: string;
}

/**
 * A secret-key token object. The local KMS's keys: CKA_ID is the key id's 16 bytes (hex here), the
 * label names the key. The XKS proxy's keys (src/xks-proxy/) have no `id`: an external key id is
 * the object's CKA_LABEL, and the object is found by that label alone.
 */
export interface TokenKeyRef {
  label: string;
  id?: string;
}

/** What a token key may be used for (its CKA_ENCRYPT, CKA_DECRYPT... attributes). */
export interface TokenKeyUsage {
  encrypt: boolean;
  decrypt: boolean;
}

/** A token key's type and usage attributes (PKCS#11 v2.40 §4.9, "Secret key objects"). */
export interface TokenKeyInfo extends TokenKeyUsage {
  /** True for a CKK_AES key. */
  aes: boolean;
  /** CKA_VALUE_LEN in bytes (32 for AES-256). */
  valueLen: number;
  wrap: boolean;
  unwrap: boolean;
  sign: boolean;
  verify: boolean;
  derive: boolean;
}

/** The token's CK_TOKEN_INFO fields an XKS health check reports (PKCS#11 v2.40 §3.2). */
export interface TokenDescription {
  label: string;
  manufacturerId: string;
  model: string;
  serialNumber: string;
}

/** The cache key of a ref: the CKA_ID when there is one, else the label. */
const refKey = (ref: TokenKeyRef): string => (ref.id !== undefined ? ref.id : `label:${ref.label}`);

export function tokenKeyRef(keyId: string): TokenKeyRef {
  return { label: `kms-envelope:${keyId}`, id: keyId.replace(/^mrk-|-/g, '') };
}

/**
 * A logged-in session on a token as the crypto user (CloudHSM's `kmsuser`; SoftHSM's user PIN).
 * All calls are synchronous (pkcs11js), so two requests never interleave on the session.
 */
export class TokenSession {
  private closed = false;
  private readonly handles = new Map<string, Handle>();

  private constructor(
    private readonly where: TokenLocation,
    private readonly m: LoadedModule,
    private readonly session: Handle,
  ) {}

  /** Opens a R/W session on the token labelled `where.tokenLabel` and logs in with `pin`. */
  static async open(where: TokenLocation, pin: string): Promise<TokenSession> {
    const m = await openModule(where.module);
    const { p, lib } = m;
    let session: Handle | undefined;
    try {
      const slot = p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).label.trim() === where.tokenLabel);
      if (!slot) throw new TokenError('TOKEN_NOT_FOUND', `no token labelled '${where.tokenLabel}' in ${where.module}`);
      session = p.C_OpenSession(slot, lib.CKF_RW_SESSION | lib.CKF_SERIAL_SESSION);
      try {
        p.C_Login(session, lib.CKU_USER, pin);
        m.loginPins.set(where.tokenLabel, pinHash(pin));
      } catch (e) {
        if (ckrOf(e) !== 'CKR_USER_ALREADY_LOGGED_IN') throw new TokenError(ckrOf(e), `C_Login failed: ${ckrOf(e)}`);
        // Already logged in: the token did not look at this PIN. Only the PIN of that login passes.
        const known = m.loginPins.get(where.tokenLabel);
        if (!known || !timingSafeEqual(known, pinHash(pin))) throw new TokenError('CKR_PIN_INCORRECT', 'C_Login failed: CKR_PIN_INCORRECT');
      }
      m.logins.set(where.tokenLabel, (m.logins.get(where.tokenLabel) ?? 0) + 1);
      return new TokenSession(where, m, session);
    } catch (e) {
      if (session) {
        try {
          p.C_CloseSession(session);
        } catch {
          // already failing
        }
      }
      releaseModule(where.module, m);
      if (e instanceof TokenError) throw e;
      throw new TokenError(ckrOf(e), `opening a session on '${where.tokenLabel}' failed: ${ckrOf(e)}`);
    }
  }

  /** Logs out (when no other key store of this process uses the token) and closes the session. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const { p } = this.m;
    const left = (this.m.logins.get(this.where.tokenLabel) ?? 1) - 1;
    if (left > 0) this.m.logins.set(this.where.tokenLabel, left);
    else {
      this.m.logins.delete(this.where.tokenLabel);
      this.m.loginPins.delete(this.where.tokenLabel);
    }
    try {
      if (left === 0) p.C_Logout(this.session);
    } catch {
      // best effort
    }
    try {
      p.C_CloseSession(this.session);
    } catch {
      // best effort
    }
    releaseModule(this.where.module, this.m);
  }

  private call<T>(what: string, f: () => T): T {
    if (this.closed) throw new TokenError('CKR_SESSION_CLOSED', `${what}: the token session is closed`);
    try {
      return f();
    } catch (e) {
      if (e instanceof TokenError) throw e;
      throw new TokenError(ckrOf(e), `${what} failed: ${ckrOf(e)}`);
    }
  }

  /**
   * Generates a 256-bit AES key in the token: a token object (persists), private (needs the user
   * login), sensitive and not extractable, usable only to encrypt and decrypt (or, with `usage`,
   * only for what it allows: the XKS proxy's encrypt-only, decrypt-only and unusable keys).
   */
  generateAesKey(ref: TokenKeyRef, usage: TokenKeyUsage = { encrypt: true, decrypt: true }): void {
    const { p, lib } = this.m;
    this.call('C_GenerateKey', () => {
      const handle = p.C_GenerateKey(this.session, { mechanism: lib.CKM_AES_KEY_GEN }, [
        { type: lib.CKA_CLASS, value: lib.CKO_SECRET_KEY },
        { type: lib.CKA_KEY_TYPE, value: lib.CKK_AES },
        { type: lib.CKA_VALUE_LEN, value: 32 },
        { type: lib.CKA_TOKEN, value: true },
        { type: lib.CKA_PRIVATE, value: true },
        { type: lib.CKA_SENSITIVE, value: true },
        { type: lib.CKA_EXTRACTABLE, value: false },
        { type: lib.CKA_ENCRYPT, value: usage.encrypt },
        { type: lib.CKA_DECRYPT, value: usage.decrypt },
        { type: lib.CKA_WRAP, value: false },
        { type: lib.CKA_UNWRAP, value: false },
        // Tokens default these as they like (SoftHSM 2.6: CKA_SIGN and CKA_VERIFY true, for MACs):
        // a key that says "only encrypt and decrypt" must not also MAC or derive.
        { type: lib.CKA_SIGN, value: false },
        { type: lib.CKA_VERIFY, value: false },
        { type: lib.CKA_DERIVE, value: false },
        { type: lib.CKA_LABEL, value: ref.label },
        ...(ref.id !== undefined ? [{ type: lib.CKA_ID, value: Buffer.from(ref.id, 'hex') }] : []),
      ]);
      if (ref.id !== undefined) this.handles.set(refKey(ref), handle);
    });
  }

  /**
   * The key's object handle, or undefined when the token has no such object (or more than one).
   * Handles found by CKA_ID are cached (the local KMS owns those objects); by label they are
   * looked up each time, as a label's key can be replaced outside this process (the XKS proxy's
   * keys are made by `xks-proxy create-key`, possibly while it runs).
   */
  find(ref: TokenKeyRef): Handle | undefined {
    const cached = this.handles.get(refKey(ref));
    if (cached) return cached;
    const found = this.findAll(ref, 2);
    if (found.length !== 1) return undefined;
    if (ref.id !== undefined) this.handles.set(refKey(ref), found[0]!);
    return found[0];
  }

  /** How many secret-key objects match `ref` (0, 1, or 2 meaning "more than one"). */
  count(ref: TokenKeyRef): number {
    return this.findAll(ref, 2).length;
  }

  private findAll(ref: TokenKeyRef, max: number): Handle[] {
    const { p, lib } = this.m;
    return this.call('C_FindObjects', () => {
      p.C_FindObjectsInit(this.session, [
        { type: lib.CKA_CLASS, value: lib.CKO_SECRET_KEY },
        ref.id !== undefined ? { type: lib.CKA_ID, value: Buffer.from(ref.id, 'hex') } : { type: lib.CKA_LABEL, value: ref.label },
      ]);
      try {
        return p.C_FindObjects(this.session, max);
      } finally {
        p.C_FindObjectsFinal(this.session);
      }
    });
  }

  /** The key's type and usage attributes, or undefined when the token has no such object. */
  keyInfo(ref: TokenKeyRef): TokenKeyInfo | undefined {
    const h = this.find(ref);
    if (!h) return undefined;
    const { p, lib } = this.m;
    return this.call('C_GetAttributeValue', () => {
      const names = [lib.CKA_KEY_TYPE, lib.CKA_VALUE_LEN, lib.CKA_ENCRYPT, lib.CKA_DECRYPT, lib.CKA_WRAP, lib.CKA_UNWRAP, lib.CKA_SIGN, lib.CKA_VERIFY, lib.CKA_DERIVE];
      const a = p.C_GetAttributeValue(this.session, h, names.map((type) => ({ type })));
      // CK_ULONG values come back in the platform's byte order and width; CK_BBOOL as one byte.
      const ulong = (b: Buffer | undefined) => (b && b.length >= 4 ? (b.length >= 8 ? Number(b.readBigUInt64LE(0)) : b.readUInt32LE(0)) : -1);
      const bool = (i: number) => {
        const v = a[i]?.value;
        return Buffer.isBuffer(v) ? v[0] === 1 : v === true;
      };
      return {
        aes: ulong(a[0]?.value as Buffer) === lib.CKK_AES,
        valueLen: ulong(a[1]?.value as Buffer),
        encrypt: bool(2),
        decrypt: bool(3),
        wrap: bool(4),
        unwrap: bool(5),
        sign: bool(6),
        verify: bool(7),
        derive: bool(8),
      };
    });
  }

  /** The token's label, manufacturer, model and serial number (C_GetTokenInfo). */
  describeToken(): TokenDescription {
    const { p } = this.m;
    return this.call('C_GetTokenInfo', () => {
      const slot = p.C_GetSessionInfo(this.session).slotID;
      const t = p.C_GetTokenInfo(slot);
      return { label: t.label.trim(), manufacturerId: t.manufacturerID.trim(), model: t.model.trim(), serialNumber: t.serialNumber.trim() };
    });
  }

  /** Destroys the key's token object (no-op when it is gone already). */
  destroy(ref: TokenKeyRef): void {
    const h = this.find(ref);
    this.handles.delete(refKey(ref));
    if (!h) return;
    this.call('C_DestroyObject', () => this.m.p.C_DestroyObject(this.session, h));
  }

  /** AES-256-GCM in the token; returns ciphertext || 16-byte tag (the token's output layout). */
  gcmEncrypt(ref: TokenKeyRef, iv: Buffer, aad: Buffer, plaintext: Uint8Array): Buffer {
    const h = this.requireKey(ref);
    const { p, lib } = this.m;
    return this.call('C_Encrypt', () => {
      p.C_EncryptInit(this.session, gcm(lib, iv, aad), h);
      const out = Buffer.alloc(plaintext.length + 16);
      return Buffer.from(p.C_Encrypt(this.session, Buffer.from(plaintext), out));
    });
  }

  /** AES-256-GCM decryption in the token; undefined when the tag does not verify. */
  gcmDecrypt(ref: TokenKeyRef, iv: Buffer, aad: Buffer, ctAndTag: Buffer): Buffer | undefined {
    const h = this.requireKey(ref);
    const { p, lib } = this.m;
    this.call('C_DecryptInit', () => p.C_DecryptInit(this.session, gcm(lib, iv, aad), h));
    try {
      const out = Buffer.alloc(ctAndTag.length);
      return Buffer.from(p.C_Decrypt(this.session, ctAndTag, out));
    } catch (e) {
      // A failed C_Decrypt ends the operation (PKCS#11 v2.40 §5.2). A wrong tag is
      // CKR_ENCRYPTED_DATA_INVALID (..._LEN_RANGE for short input) in the spec; SoftHSM 2.6
      // answers CKR_GENERAL_ERROR (its OpenSSL final step failed). All three: not authentic.
      if (/^CKR_(ENCRYPTED_DATA_INVALID|ENCRYPTED_DATA_LEN_RANGE|GENERAL_ERROR)$/.test(ckrOf(e))) return undefined;
      throw new TokenError(ckrOf(e), `C_Decrypt failed: ${ckrOf(e)}`);
    }
  }

  /** Random bytes from the token's generator (C_GenerateRandom). */
  random(n: number): Buffer {
    return this.call('C_GenerateRandom', () => Buffer.from(this.m.p.C_GenerateRandom(this.session, Buffer.alloc(n))));
  }

  private requireKey(ref: TokenKeyRef): Handle {
    const h = this.find(ref);
    if (!h) throw new TokenError('KEY_NOT_FOUND', `the token has no object for ${ref.label}`);
    return h;
  }
}

function gcm(lib: Pkcs11Module, iv: Buffer, aad: Buffer): Pkcs11Types.Mechanism {
  return { mechanism: lib.CKM_AES_GCM, parameter: { type: lib.CK_PARAMS_GCM, iv, ivBits: iv.length * 8, aad, tagBits: 128 } as Pkcs11Types.GcmParams };
}

/** 12 random bytes for a GCM IV (NIST SP 800-38D §8.2.2, random IV construction). */
export function gcmIv(): Buffer {
  return randomBytes(12);
}
