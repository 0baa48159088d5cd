import { randomBytes } from 'node:crypto';
import { RawAesKeyring, type Keyring } from '../../src/index.js';

/** A raw AES keyring that counts its onEncrypt/onDecrypt calls (for "no keyring call" assertions). */
export function countingKeyring(): Keyring & { calls: number } {
  const inner = new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', key: randomBytes(32) });
  const k = {
    calls: 0,
    onEncrypt: (i: Parameters<Keyring['onEncrypt']>[0]) => (k.calls++, inner.onEncrypt(i)),
    onDecrypt: (i: Parameters<Keyring['onDecrypt']>[0]) => (k.calls++, inner.onDecrypt(i)),
  };
  return k;
}
