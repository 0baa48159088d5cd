// Parsed header contexts are decoded once per distinct context and shared (frozen) between the
// headers that carry the same bytes; what callers get back from decrypt is their own copy.
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { Envelope, RawAesKeyring } from '../../src/index.js';
import { parseHeader } from '../../src/format/header.js';

const LIMITS = { maxEncryptedDataKeys: 10 };

function envelope(): Envelope {
  return new Envelope({ keyring: new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', key: randomBytes(32) }) });
}

describe('header context memo', () => {
  it('two headers with the same context bytes share one frozen context; the decrypt result is a private copy', async () => {
    const env = envelope();
    const a = await env.encrypt('one', { context: { tenant: 'acme', purpose: 'x' } });
    const b = await env.encrypt('two', { context: { purpose: 'x', tenant: 'acme' } });
    const ha = parseHeader(a, LIMITS)!;
    const hb = parseHeader(b, LIMITS)!;
    expect(ha.messageId.equals(hb.messageId)).toBe(false);
    expect(hb.context).toBe(ha.context);
    expect(Object.isFrozen(ha.context)).toBe(true);
    expect(() => {
      (ha.context as Record<string, string>).tenant = 'evil';
    }).toThrow(TypeError);

    const first = await env.decrypt(a);
    expect(first.context).toEqual({ tenant: 'acme', purpose: 'x' });
    first.context.tenant = 'changed by the caller';
    delete (first.context as Record<string, string>).purpose;
    const second = await env.decrypt(b);
    expect(second.context).toEqual({ tenant: 'acme', purpose: 'x' });
    expect(second.plaintext.toString()).toBe('two');
  });

  it('different context bytes never share an entry, and contexts past the memo size still parse', async () => {
    const env = envelope();
    const seen = new Map<string, object>();
    // More distinct contexts than the memo holds, then the first ones again: always the right pairs.
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 100; i++) {
        const context = { tenant: `t${i}`, big: 'v'.repeat(i * 30) };
        const h = parseHeader(await env.encrypt('x', { context }), LIMITS)!;
        expect({ ...h.context }).toEqual(context);
        if (round === 0) seen.set(`t${i}`, h.context);
      }
    }
    expect(new Set(seen.values()).size).toBe(100);
  });
});
