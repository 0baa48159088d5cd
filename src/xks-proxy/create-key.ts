import { type ResolveOptions, type ResolvedXksProxyConfig, type XksProxyConfig, resolveXksProxyConfig } from './config.js';
import { TokenKeys } from './token-keys.js';

/** What a created key may do: CKA_ENCRYPT and CKA_DECRYPT of the token object. */
export type XksKeyUsage = 'encrypt-decrypt' | 'encrypt' | 'decrypt' | 'none';

export const XKS_KEY_USAGES: readonly XksKeyUsage[] = ['encrypt-decrypt', 'encrypt', 'decrypt', 'none'];

/**
 * Creates an AES-256 key in the proxy's token, labelled `label` (its XKS external key id): a token
 * object, private, sensitive and not extractable (its value never leaves the token), allowed to
 * encrypt and/or decrypt as `usage` says (default both; `none` makes the spec's "impotent" test key).
 * TypeError/RangeError for a bad label or one already in use.
 */
export async function createXksKey(
  config: XksProxyConfig | ResolvedXksProxyConfig,
  label: string,
  usage: XksKeyUsage = 'encrypt-decrypt',
  opts: ResolveOptions = {},
): Promise<void> {
  if (!XKS_KEY_USAGES.includes(usage)) throw new TypeError(`usage must be one of ${XKS_KEY_USAGES.join(', ')}`);
  const c = config.credentials instanceof Map ? (config as ResolvedXksProxyConfig) : resolveXksProxyConfig(config, opts);
  const keys = await TokenKeys.open(c.module, c.tokenLabel, c.pin);
  try {
    keys.createKey(label, { encrypt: usage === 'encrypt-decrypt' || usage === 'encrypt', decrypt: usage === 'encrypt-decrypt' || usage === 'decrypt' });
  } finally {
    keys.close();
  }
}
