/**
 * Review 10b, finding 2: MultiKeyring's OnDecrypt failure quoted up to 300 characters of each
 * child's error message (`[1] Error: cannot reach postgres://app:hunter2@db`), although a foreign
 * keyring's text may carry secrets and src/keyring-call.ts never copies it. The collected errors
 * now travel only as the cause (an AggregateError, in order); the message names each failure's
 * kind (class name, `code`) and quotes only the library's own EnvelopeError texts.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Envelope, KmsError, MultiKeyring, NoDecryptableKeyError, RawAesKeyring, type Keyring } from '../../src/index.js';

const SECRET = 'postgres://app:hunter2@db';
const rawAes = () => new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', key: randomBytes(32) });

/** A keyring that wraps like `inner` and fails every decrypt with `err`. */
function failing(inner: Keyring, err: unknown): Keyring {
  return {
    onEncrypt: (i) => inner.onEncrypt(i),
    onDecrypt: async () => {
      throw err;
    },
  };
}

class ConnectionError extends Error {
  readonly code = 'ECONNREFUSED';
}

describe('MultiKeyring OnDecrypt failure does not copy a foreign error\'s text', () => {
  it('a child\'s secret is not in the message (through Envelope.decrypt) but is in the cause', async () => {
    const inner = rawAes();
    const message = await new Envelope({ keyring: inner }).encrypt('x');
    const thrown = new Error(`cannot reach ${SECRET}`);
    const envelope = new Envelope({ keyring: new MultiKeyring({ children: [failing(inner, thrown)] }) });
    const err = (await envelope.decrypt(message).catch((e: unknown) => e)) as NoDecryptableKeyError;
    expect(err).toBeInstanceOf(NoDecryptableKeyError);
    expect(err.code).toBe('ERR_NO_DECRYPTABLE_KEY');
    expect(err.message).not.toContain(SECRET);
    expect(err.message).not.toContain('cannot reach');
    expect(err.message).toContain('[1] Error');
    const cause = err.cause as AggregateError;
    expect(cause).toBeInstanceOf(AggregateError);
    expect(cause.errors).toEqual([thrown]);
    expect((cause.errors[0] as Error).message).toContain(SECRET);
  });

  it('names each failure\'s kind (class, code) in order; quotes EnvelopeError texts; never a name, string or value', async () => {
    const inner = rawAes();
    const out = await inner.onEncrypt({ suiteId: 0x0478, context: {} });
    const renamed = new Error('x');
    renamed.name = `Error ${SECRET}`;
    const errors: unknown[] = [
      new ConnectionError(`connect ${SECRET}`),
      new KmsError('KMS Decrypt failed: AccessDeniedException: not allowed', 'AccessDeniedException'),
      `token ${SECRET}`,
      renamed,
      Object.assign(new TypeError(SECRET), { code: SECRET }),
      undefined,
    ];
    const multi = new MultiKeyring({ children: errors.map((e) => failing(inner, e)) });
    const err = (await multi
      .onDecrypt({ suiteId: 0x0478, context: {}, encryptedDataKeys: out.encryptedDataKeys })
      .catch((e: unknown) => e)) as NoDecryptableKeyError;
    out.dataKey.fill(0);
    expect(err).toBeInstanceOf(NoDecryptableKeyError);
    expect(err.message).not.toContain('hunter2');
    expect(err.message).toContain('(6 failed)');
    expect(err.message).toContain('[1] ConnectionError (ECONNREFUSED)');
    expect(err.message).toContain('[2] KmsError (ERR_KMS): KMS Decrypt failed: AccessDeniedException: not allowed');
    expect(err.message).toContain('[3] a value of type string (not an Error)');
    expect(err.message).toContain('[4] Error');
    expect(err.message).toContain('[5] TypeError');
    expect(err.message).toContain('[6] undefined');
    expect((err.cause as AggregateError).errors).toEqual(errors);
  });
});
