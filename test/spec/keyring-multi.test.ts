/**
 * Compliance: framework/multi-keyring.md (test/spec/compliance/framework/multi-keyring.md).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MultiKeyring, RawAesKeyring } from '../../src/keyrings/index.js';
import { KeyringError, KmsError, NoDecryptableKeyError } from '../../src/errors.js';
import type { Keyring, KeyringDecryptInput, KeyringEncryptInput } from '../../src/types.js';

const SUITE = 0x0478;
const aes = (name: string) => new RawAesKeyring({ keyNamespace: 'ns', keyName: name, key: randomBytes(32) });

/** A keyring that throws `err` from every call and records the inputs it was given. */
class Throwing implements Keyring {
  readonly encryptInputs: KeyringEncryptInput[] = [];
  readonly decryptInputs: KeyringDecryptInput[] = [];
  constructor(readonly err: Error) {}
  async onEncrypt(input: KeyringEncryptInput): Promise<never> {
    this.encryptInputs.push(input);
    throw this.err;
  }
  async onDecrypt(input: KeyringDecryptInput): Promise<never> {
    this.decryptInputs.push(input);
    throw this.err;
  }
}

describe('multi-keyring: OnDecrypt', () => {
  it('when no keyring succeeds, the failure message contains every collected failure message, in order', async () => {
    const g = aes('g');
    const out = await g.onEncrypt({ suiteId: SUITE, context: {} });
    const a = new Throwing(new KmsError('KMS Decrypt failed: AccessDeniedException: not allowed here', 'AccessDeniedException'));
    const b = new Throwing(new KeyringError('second child is broken'));
    const multi = new MultiKeyring({ generator: aes('other'), children: [a, aes('third'), b] });
    const err = await multi.onDecrypt({ suiteId: SUITE, context: {}, encryptedDataKeys: out.encryptedDataKeys }).catch((e) => e);
    expect(err).toBeInstanceOf(NoDecryptableKeyError);
    expect(err.code).toBe('ERR_NO_DECRYPTABLE_KEY');
    const msg: string = err.message;
    expect(msg).toContain('KMS Decrypt failed: AccessDeniedException: not allowed here');
    expect(msg).toContain('second child is broken');
    expect(msg.indexOf('AccessDeniedException')).toBeLessThan(msg.indexOf('second child is broken'));
    // The errors themselves travel as the cause.
    expect((err.cause as AggregateError).errors).toEqual([a.err, b.err]);
  });
});
