/** Bridges between our EncryptedDataKey objects and the ESDK's, for interop tests. */
import {
  AlgorithmSuiteIdentifier,
  EncryptedDataKey as EsdkEdk,
  NodeAlgorithmSuite,
  NodeDecryptionMaterial,
  NodeEncryptionMaterial,
  unwrapDataKey,
  type KeyringNode,
} from '@aws-crypto/client-node';
import type { EncryptedDataKey, EncryptionContext } from '../../src/types.js';

/** As the ESDK's header parser builds them: providerInfo is the UTF-8 reading of the raw bytes. */
export function toEsdkEdk(edk: EncryptedDataKey): EsdkEdk {
  const raw = Buffer.from(edk.providerInfo);
  return new EsdkEdk({
    providerId: edk.providerId,
    providerInfo: raw.toString('utf8'),
    rawInfo: raw,
    encryptedDataKey: Buffer.from(edk.ciphertext),
  });
}

export function fromEsdkEdk(edk: EsdkEdk): EncryptedDataKey {
  return {
    providerId: edk.providerId,
    providerInfo: edk.rawInfo ? Buffer.from(edk.rawInfo) : Buffer.from(edk.providerInfo, 'utf8'),
    ciphertext: Buffer.from(edk.encryptedDataKey),
  };
}

export function esdkSuite(suiteId: number): NodeAlgorithmSuite {
  return new NodeAlgorithmSuite(suiteId as AlgorithmSuiteIdentifier);
}

/** The ESDK keyring unwraps our EDKs; returns the data key, or undefined if it found none. */
export async function esdkUnwrap(
  keyring: KeyringNode,
  suiteId: number,
  context: EncryptionContext,
  edks: EncryptedDataKey[],
): Promise<Buffer | undefined> {
  const material = new NodeDecryptionMaterial(esdkSuite(suiteId), { ...context });
  const out = await keyring.onDecrypt(material, edks.map(toEsdkEdk));
  return out.hasUnencryptedDataKey ? Buffer.from(unwrapDataKey(out.getUnencryptedDataKey())) : undefined;
}

/** The ESDK keyring generates and wraps a data key. */
export async function esdkWrap(
  keyring: KeyringNode,
  suiteId: number,
  context: EncryptionContext,
): Promise<{ dataKey: Buffer; edks: EncryptedDataKey[] }> {
  const material = new NodeEncryptionMaterial(esdkSuite(suiteId), { ...context });
  const out = await keyring.onEncrypt(material);
  return { dataKey: Buffer.from(unwrapDataKey(out.getUnencryptedDataKey())), edks: out.encryptedDataKeys.map(fromEsdkEdk) };
}

/** Contexts that exercise the UTF-8 byte ordering of keys (mixed case, non-BMP, combining marks). */
export const CONTEXTS: EncryptionContext[] = [
  {},
  { purpose: 'test' },
  { b: '1', B: '2', a: '3', A: '4', _: '5', '0': '6' },
  { 'é': 'accent', 'e\u0301': 'combining', z: 'ascii', '😀': 'emoji', '\uFFFD': 'replacement', '中文': 'ジ' },
  { '\u{1F600}': 'astral', '\uFF61': 'bmp-high', 'Zz': '', 'aws-crypto-public-key': 'not-a-real-key' },
];
