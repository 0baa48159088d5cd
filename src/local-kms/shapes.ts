import { KmsServiceError } from './errors.js';

/**
 * JSON 1.1 member types of the AWS KMS operations the local KMS serves, used to turn a request
 * body into service input: blobs arrive base64-encoded, timestamps as epoch seconds. A member of
 * the wrong JSON type is a SerializationException, as AWS answers; unknown members are ignored
 * (AWS ignores them too, which keeps newer SDKs working).
 */
export type MemberKind = 'string' | 'integer' | 'boolean' | 'blob' | 'timestamp' | 'stringMap' | 'stringList' | 'tags';

const S = 'string' as const;
const I = 'integer' as const;
const B = 'boolean' as const;
const BL = 'blob' as const;
const TS = 'timestamp' as const;
const MAP = 'stringMap' as const;
const LIST = 'stringList' as const;
const TAGS = 'tags' as const;

const crypto = { KeyId: S, GrantTokens: LIST, DryRun: B };

export const SHAPES: Record<string, Record<string, MemberKind>> = {
  CreateKey: {
    Policy: S,
    Description: S,
    KeyUsage: S,
    CustomerMasterKeySpec: S,
    KeySpec: S,
    Origin: S,
    CustomKeyStoreId: S,
    BypassPolicyLockoutSafetyCheck: B,
    Tags: TAGS,
    MultiRegion: B,
    XksKeyId: S,
  },
  DescribeKey: { KeyId: S, GrantTokens: LIST },
  ListKeys: { Limit: I, Marker: S },
  UpdateKeyDescription: { KeyId: S, Description: S },
  EnableKey: { KeyId: S },
  DisableKey: { KeyId: S },
  ScheduleKeyDeletion: { KeyId: S, PendingWindowInDays: I },
  CancelKeyDeletion: { KeyId: S },
  CreateAlias: { AliasName: S, TargetKeyId: S },
  UpdateAlias: { AliasName: S, TargetKeyId: S },
  DeleteAlias: { AliasName: S },
  ListAliases: { KeyId: S, Limit: I, Marker: S },
  TagResource: { KeyId: S, Tags: TAGS },
  UntagResource: { KeyId: S, TagKeys: LIST },
  ListResourceTags: { KeyId: S, Limit: I, Marker: S },
  GetKeyPolicy: { KeyId: S, PolicyName: S },
  PutKeyPolicy: { KeyId: S, PolicyName: S, Policy: S, BypassPolicyLockoutSafetyCheck: B },
  ListKeyPolicies: { KeyId: S, Limit: I, Marker: S },
  GetParametersForImport: { KeyId: S, WrappingAlgorithm: S, WrappingKeySpec: S },
  ImportKeyMaterial: {
    KeyId: S,
    ImportToken: BL,
    EncryptedKeyMaterial: BL,
    ValidTo: TS,
    ExpirationModel: S,
    ImportType: S,
    KeyMaterialDescription: S,
    KeyMaterialId: S,
  },
  DeleteImportedKeyMaterial: { KeyId: S, KeyMaterialId: S },
  EnableKeyRotation: { KeyId: S, RotationPeriodInDays: I },
  DisableKeyRotation: { KeyId: S },
  GetKeyRotationStatus: { KeyId: S },
  RotateKeyOnDemand: { KeyId: S },
  ListKeyRotations: { KeyId: S, Limit: I, Marker: S, IncludeKeyMaterial: S },
  Encrypt: { ...crypto, Plaintext: BL, EncryptionContext: MAP, EncryptionAlgorithm: S },
  Decrypt: { ...crypto, CiphertextBlob: BL, EncryptionContext: MAP, EncryptionAlgorithm: S },
  ReEncrypt: {
    CiphertextBlob: BL,
    SourceEncryptionContext: MAP,
    SourceKeyId: S,
    DestinationKeyId: S,
    DestinationEncryptionContext: MAP,
    SourceEncryptionAlgorithm: S,
    DestinationEncryptionAlgorithm: S,
    GrantTokens: LIST,
    DryRun: B,
  },
  GenerateDataKey: { ...crypto, EncryptionContext: MAP, NumberOfBytes: I, KeySpec: S },
  GenerateDataKeyWithoutPlaintext: { ...crypto, EncryptionContext: MAP, NumberOfBytes: I, KeySpec: S },
  GenerateDataKeyPair: { ...crypto, EncryptionContext: MAP, KeyPairSpec: S },
  GenerateDataKeyPairWithoutPlaintext: { ...crypto, EncryptionContext: MAP, KeyPairSpec: S },
  GenerateRandom: { NumberOfBytes: I, CustomKeyStoreId: S },
  // Custom key stores (ops/custom-key-stores.ts, ops/xks-key-stores.ts).
  CreateCustomKeyStore: {
    CustomKeyStoreName: S, CloudHsmClusterId: S, TrustAnchorCertificate: S, KeyStorePassword: S, CustomKeyStoreType: S,
    XksProxyUriEndpoint: S, XksProxyUriPath: S, XksProxyVpcEndpointServiceName: S, XksProxyConnectivity: S,
  },
  ConnectCustomKeyStore: { CustomKeyStoreId: S },
  DisconnectCustomKeyStore: { CustomKeyStoreId: S },
  DeleteCustomKeyStore: { CustomKeyStoreId: S },
  DescribeCustomKeyStores: { CustomKeyStoreId: S, CustomKeyStoreName: S, Limit: I, Marker: S },
  UpdateCustomKeyStore: {
    CustomKeyStoreId: S, NewCustomKeyStoreName: S, KeyStorePassword: S, CloudHsmClusterId: S,
    XksProxyUriEndpoint: S, XksProxyUriPath: S, XksProxyVpcEndpointServiceName: S, XksProxyConnectivity: S,
  },
  Sign: { ...crypto, Message: BL, MessageType: S, SigningAlgorithm: S },
  Verify: { ...crypto, Message: BL, MessageType: S, Signature: BL, SigningAlgorithm: S },
  GetPublicKey: { KeyId: S, GrantTokens: LIST },
  GenerateMac: { ...crypto, Message: BL, MacAlgorithm: S },
  VerifyMac: { ...crypto, Message: BL, MacAlgorithm: S, Mac: BL },
  DeriveSharedSecret: { ...crypto, KeyAgreementAlgorithm: S, PublicKey: BL },
  Encapsulate: { ...crypto, EncapsulationAlgorithm: S },
  Decapsulate: { ...crypto, SharedSecretCiphertextBlob: BL, EncapsulationAlgorithm: S },
  GetKeyLastUsage: { KeyId: S },
  CreateGrant: {
    KeyId: S,
    GranteePrincipal: S,
    RetiringPrincipal: S,
    Operations: LIST,
    GrantTokens: LIST,
    Name: S,
    DryRun: B,
  },
  ListGrants: { Limit: I, Marker: S, KeyId: S, GrantId: S, GranteePrincipal: S },
  ListRetirableGrants: { Limit: I, Marker: S, RetiringPrincipal: S },
  RetireGrant: { GrantToken: S, KeyId: S, GrantId: S, DryRun: B },
  RevokeGrant: { KeyId: S, GrantId: S, DryRun: B },
  ReplicateKey: { KeyId: S, ReplicaRegion: S, Policy: S, BypassPolicyLockoutSafetyCheck: B, Description: S, Tags: TAGS },
  UpdatePrimaryRegion: { KeyId: S, PrimaryRegion: S },
};

/**
 * Structure members, decoded apart from the flat member kinds above: CreateGrant `Constraints`
 * (GrantConstraints: two encryption-context maps and SourceArn, a string; any other member is
 * passed on as sent, so that CreateGrant refuses it: a constraint dropped here would leave a
 * grant wider than asked for, which is why unknown members are not ignored inside it) and the
 * `Recipient` of Decrypt, DeriveSharedSecret, GenerateDataKey, GenerateDataKeyPair and GenerateRandom (RecipientInfo: KeyEncryptionAlgorithm, a string,
 * and AttestationDocument, a blob). Recipient must be decoded, not dropped as an unknown member:
 * the service refuses it (UnsupportedOperationException), and a dropped Recipient would return
 * the plaintext or shared secret that AWS only returns encrypted for the enclave.
 */
const CONSTRAINT_MAPS = ['EncryptionContextSubset', 'EncryptionContextEquals'];
type StructureKind = 'grantConstraints' | 'recipientInfo' | 'xksCredential';
export const STRUCTURE_MEMBERS: Record<string, Record<string, StructureKind>> = {
  CreateGrant: { Constraints: 'grantConstraints' },
  // XksProxyAuthenticationCredentialType: AccessKeyId and RawSecretAccessKey, strings.
  CreateCustomKeyStore: { XksProxyAuthenticationCredential: 'xksCredential' },
  UpdateCustomKeyStore: { XksProxyAuthenticationCredential: 'xksCredential' },
  Decrypt: { Recipient: 'recipientInfo' },
  DeriveSharedSecret: { Recipient: 'recipientInfo' },
  GenerateDataKey: { Recipient: 'recipientInfo' },
  GenerateDataKeyPair: { Recipient: 'recipientInfo' },
  GenerateRandom: { Recipient: 'recipientInfo' },
};

function decodeRecipient(member: string, v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw wrongType(member, v, 'a RecipientInfo structure');
  const r = v as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  if (r.KeyEncryptionAlgorithm !== undefined && r.KeyEncryptionAlgorithm !== null) {
    out.KeyEncryptionAlgorithm = decodeMember(`${member}.KeyEncryptionAlgorithm`, 'string', r.KeyEncryptionAlgorithm);
  }
  if (r.AttestationDocument !== undefined && r.AttestationDocument !== null) {
    out.AttestationDocument = decodeMember(`${member}.AttestationDocument`, 'blob', r.AttestationDocument);
  }
  return out;
}

function decodeXksCredential(member: string, v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw wrongType(member, v, 'an XksProxyAuthenticationCredentialType structure');
  const r = v as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const m of ['AccessKeyId', 'RawSecretAccessKey']) {
    if (r[m] !== undefined && r[m] !== null) out[m] = decodeMember(`${member}.${m}`, 'string', r[m]);
  }
  return out;
}

function isXksCredential(v: unknown): boolean {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const r = v as Record<string, unknown>;
  return (r.AccessKeyId === undefined || typeof r.AccessKeyId === 'string') && (r.RawSecretAccessKey === undefined || typeof r.RawSecretAccessKey === 'string');
}

function isRecipient(v: unknown): boolean {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const r = v as Record<string, unknown>;
  return (
    (r.KeyEncryptionAlgorithm === undefined || typeof r.KeyEncryptionAlgorithm === 'string') &&
    (r.AttestationDocument === undefined || r.AttestationDocument instanceof Uint8Array)
  );
}

function decodeConstraints(member: string, v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw wrongType(member, v, 'a GrantConstraints structure');
  const out: Record<string, unknown> = Object.create(null);
  for (const [m, value] of Object.entries(v as Record<string, unknown>)) {
    if (value === null) continue;
    if (CONSTRAINT_MAPS.includes(m)) out[m] = decodeMember(`${member}.${m}`, 'stringMap', value);
    else if (m === 'SourceArn') out[m] = decodeMember(`${member}.${m}`, 'string', value);
    else out[m] = value;
  }
  return out;
}

function isConstraints(v: unknown): boolean {
  return (
    typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    CONSTRAINT_MAPS.every((m) => {
      const x = (v as Record<string, unknown>)[m];
      return x === undefined || (x !== null && typeof x === 'object' && !Array.isArray(x) && Object.values(x).every((y) => typeof y === 'string'));
    }) &&
    ((v as Record<string, unknown>).SourceArn === undefined || typeof (v as Record<string, unknown>).SourceArn === 'string')
  );
}

const serialization = (message: string) => new KmsServiceError('SerializationException', message);

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function typeName(v: unknown): string {
  if (v === null) return 'NULL';
  if (Array.isArray(v)) return 'START_ARRAY';
  if (typeof v === 'object') return 'START_OBJECT';
  if (typeof v === 'string') return 'VALUE_STRING';
  if (typeof v === 'boolean') return 'VALUE_BOOLEAN';
  return 'VALUE_NUMBER';
}

function wrongType(member: string, v: unknown, expected: string): KmsServiceError {
  return serialization(`Unexpected ${typeName(v)} for member ${member}; expected ${expected}`);
}

/** Converts a parsed JSON body into service input for `operation`. */
export function decodeInput(operation: string, body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw serialization(`Unexpected ${typeName(body)} at the top level; expected a JSON object`);
  }
  // Own properties only, for the operation (X-Amz-Target) and for every member name: with
  // `TrentService.constructor` the tables' prototype members (Object's `length`, `name`, ...) were
  // read as shapes, and a body `{"length": 5}` answered SerializationException instead of
  // UnknownOperationException.
  const shape = Object.hasOwn(SHAPES, operation) ? SHAPES[operation]! : {};
  const structures = Object.hasOwn(STRUCTURE_MEMBERS, operation) ? STRUCTURE_MEMBERS[operation]! : {};
  const out: Record<string, unknown> = {};
  for (const [member, value] of Object.entries(body as Record<string, unknown>)) {
    if (Object.hasOwn(structures, member)) {
      const kind = structures[member];
      if (value !== null) out[member] = kind === 'recipientInfo' ? decodeRecipient(member, value) : kind === 'xksCredential' ? decodeXksCredential(member, value) : decodeConstraints(member, value);
      continue;
    }
    const kind = Object.hasOwn(shape, member) ? shape[member] : undefined;
    if (kind === undefined || value === null) continue;
    out[member] = decodeMember(member, kind, value);
  }
  return out;
}

function decodeMember(member: string, kind: MemberKind, v: unknown): unknown {
  switch (kind) {
    case 'string':
      if (typeof v !== 'string') throw wrongType(member, v, 'a string');
      return v;
    case 'integer':
      if (typeof v !== 'number' || !Number.isInteger(v)) throw wrongType(member, v, 'an integer');
      if (v > 2 ** 31 - 1 || v < -(2 ** 31)) throw serialization(`Numeric value (${v}) of member ${member} out of range of int`);
      return v;
    case 'boolean':
      if (typeof v !== 'boolean') throw wrongType(member, v, 'a boolean');
      return v;
    case 'blob':
      if (typeof v !== 'string') throw wrongType(member, v, 'a base64 string');
      if (!BASE64.test(v)) throw serialization(`Member ${member} is not valid base64`);
      return Buffer.from(v, 'base64');
    case 'timestamp':
      // JSON 1.1 timestamps are epoch seconds (fractions allowed).
      if (typeof v !== 'number' || !Number.isFinite(v)) throw wrongType(member, v, 'epoch seconds');
      return Math.round(v * 1000);
    case 'stringMap': {
      if (typeof v !== 'object' || Array.isArray(v)) throw wrongType(member, v, 'a map of strings');
      // Null prototype: a key named "__proto__" (legal in an encryption context) must stay a key,
      // not set the object's prototype and vanish.
      const m: Record<string, string> = Object.create(null);
      for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
        if (typeof val !== 'string') throw wrongType(`${member}.${k}`, val, 'a string');
        m[k] = val;
      }
      return m;
    }
    case 'stringList':
      if (!Array.isArray(v)) throw wrongType(member, v, 'a list');
      return v.map((x, i) => {
        if (typeof x !== 'string') throw wrongType(`${member}[${i}]`, x, 'a string');
        return x;
      });
    case 'tags':
      if (!Array.isArray(v)) throw wrongType(member, v, 'a list');
      return v.map((t, i) => {
        if (t === null || typeof t !== 'object' || Array.isArray(t)) throw wrongType(`${member}[${i}]`, t, 'a Tag structure');
        const tag = t as Record<string, unknown>;
        for (const f of ['TagKey', 'TagValue']) {
          if (tag[f] !== undefined && tag[f] !== null && typeof tag[f] !== 'string') throw wrongType(`${member}[${i}].${f}`, tag[f], 'a string');
        }
        return { TagKey: tag.TagKey ?? undefined, TagValue: tag.TagValue ?? undefined };
      });
  }
}

/** Service output to JSON 1.1: blobs as base64, Dates as epoch seconds. */
export function encodeOutput(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.length).toString('base64');
  if (value instanceof Date) return value.getTime() / 1000;
  if (Array.isArray(value)) return value.map(encodeOutput);
  if (value !== null && typeof value === 'object') {
    // Null prototype: an encryption context key "__proto__" (a grant constraint in ListGrants)
    // must stay an own key; on a plain {} the assignment would set the prototype and vanish.
    // JSON.stringify writes the own key like any other.
    const out: Record<string, unknown> = Object.create(null);
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = encodeOutput(v);
    return out;
  }
  return value;
}

/**
 * Type check for in-process callers (the HTTP path is already decoded by decodeInput): a member
 * of the wrong JavaScript type is a ValidationException naming the member, instead of being
 * silently treated as absent.
 */
export function checkInputTypes(operation: string, input: Record<string, unknown>): void {
  for (const [member, kind] of Object.entries(Object.hasOwn(STRUCTURE_MEMBERS, operation) ? STRUCTURE_MEMBERS[operation]! : {})) {
    const v = input[member];
    if (v === undefined || v === null) continue;
    if (kind === 'grantConstraints' && !isConstraints(v)) {
      throw new KmsServiceError('ValidationException', `${operation}: member ${member} must be a GrantConstraints structure (string maps EncryptionContextSubset/EncryptionContextEquals, string SourceArn)`);
    }
    if (kind === 'xksCredential' && !isXksCredential(v)) {
      throw new KmsServiceError('ValidationException', `${operation}: member ${member} must be an XksProxyAuthenticationCredentialType structure ({ AccessKeyId: string, RawSecretAccessKey: string })`);
    }
    if (kind === 'recipientInfo' && !isRecipient(v)) {
      throw new KmsServiceError('ValidationException', `${operation}: member ${member} must be a RecipientInfo structure ({ KeyEncryptionAlgorithm?: string, AttestationDocument?: Uint8Array })`);
    }
  }
  const shape = Object.hasOwn(SHAPES, operation) ? SHAPES[operation] : undefined;
  if (!shape) return;
  for (const [member, kind] of Object.entries(shape)) {
    const v = input[member];
    if (v === undefined || v === null) continue;
    let ok: boolean;
    switch (kind) {
      case 'string':
        ok = typeof v === 'string';
        break;
      case 'integer':
        ok = typeof v === 'number' && Number.isInteger(v);
        break;
      case 'boolean':
        ok = typeof v === 'boolean';
        break;
      case 'blob':
        ok = v instanceof Uint8Array;
        break;
      case 'timestamp':
        ok = v instanceof Date || (typeof v === 'number' && Number.isFinite(v));
        break;
      case 'stringMap':
        ok = typeof v === 'object' && !Array.isArray(v) && Object.values(v as object).every((x) => typeof x === 'string');
        break;
      case 'stringList':
        ok = Array.isArray(v) && v.every((x) => typeof x === 'string');
        break;
      case 'tags':
        ok = Array.isArray(v) && v.every((t) => t !== null && typeof t === 'object');
        break;
    }
    if (!ok) {
      const expected = { string: 'a string', integer: 'an integer', boolean: 'a boolean', blob: 'a Uint8Array', timestamp: 'a Date or epoch milliseconds', stringMap: 'a map of strings', stringList: 'an array of strings', tags: 'an array of { TagKey, TagValue }' }[kind];
      throw new KmsServiceError('ValidationException', `${operation}: member ${member} must be ${expected}`);
    }
  }
}
