/**
 * Multi-keyring (aws-encryption-sdk-specification, framework/multi-keyring.md): the generator
 * makes the data key, every child wraps that same key, so any one of them can decrypt. Decrypt
 * tries the generator, then the children in order; the first data key wins.
 */
import { timingSafeEqual } from 'node:crypto';
import { EnvelopeError, KeyringError, NoDecryptableKeyError } from '../errors.js';
import type {
  EncryptedDataKey,
  Keyring,
  KeyringDecryptInput,
  KeyringEncryptInput,
  KeyringEncryptOutput,
} from '../types.js';
import { keyringSuite, kmsCallsOf, type KmsCallCounter } from './common.js';

export interface MultiKeyringOptions {
  /** Generates the data key on encrypt. Required unless `children` is non-empty. */
  generator?: Keyring;
  /** Each wraps the data key too; on decrypt each is tried after the generator. */
  children?: Keyring[];
}

export class MultiKeyring implements Keyring, KmsCallCounter {
  readonly generator: Keyring | undefined;
  readonly children: readonly Keyring[];

  constructor(options: MultiKeyringOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('MultiKeyring options must be an object');
    const { generator, children } = options;
    if (generator !== undefined) checkKeyring(generator, 'options.generator');
    if (children !== undefined) {
      if (!Array.isArray(children)) throw new TypeError('options.children must be an array of keyrings');
      children.forEach((c, i) => checkKeyring(c, `options.children[${i}]`));
    }
    // Spec "Inputs": at least a generator or one child.
    if (generator === undefined && (children === undefined || children.length === 0)) {
      throw new TypeError('MultiKeyring needs options.generator or a non-empty options.children');
    }
    this.generator = generator;
    this.children = Object.freeze([...(children ?? [])]);
  }

  /** KMS requests sent by the generator and children that report them (each keyring counted once). */
  get kmsCalls(): number {
    let n = 0;
    for (const k of new Set<Keyring>([...(this.generator ? [this.generator] : []), ...this.children])) {
      n += kmsCallsOf(k);
    }
    return n;
  }

  async onEncrypt(input: KeyringEncryptInput): Promise<KeyringEncryptOutput> {
    const suite = keyringSuite(input.suiteId);
    const edks: EncryptedDataKey[] = [];
    let dataKey: Uint8Array;
    let generated = false;
    let generatorEdks: unknown;

    if (this.generator !== undefined) {
      // Spec "OnEncrypt": with a generator, an incoming data key is an error.
      if (input.dataKey !== undefined) {
        throw new KeyringError('MultiKeyring with a generator cannot wrap a data key made elsewhere');
      }
      const out = await this.generator.onEncrypt({ suiteId: input.suiteId, context: input.context });
      if (!(out?.dataKey instanceof Uint8Array) || out.dataKey.length !== suite.keyLength) {
        // Ours to dispose of (keyring-call.ts ownership): wipe whatever bytes came back.
        if (out?.dataKey instanceof Uint8Array) out.dataKey.fill(0);
        throw new KeyringError('MultiKeyring generator did not return a data key of the suite length');
      }
      dataKey = out.dataKey;
      generated = true;
      generatorEdks = out.encryptedDataKeys;
    } else {
      if (input.dataKey === undefined) {
        throw new KeyringError('MultiKeyring without a generator needs a data key from an earlier keyring');
      }
      dataKey = input.dataKey;
    }

    try {
      if (generated) edks.push(...checkEdks(generatorEdks, 'generator'));
      for (const [i, child] of this.children.entries()) {
        const out = await child.onEncrypt({ suiteId: input.suiteId, context: input.context, dataKey });
        const returned: unknown = out?.dataKey;
        const same = sameKey(returned, dataKey);
        // A child may hand back a copy of the key it was given (or, wrongly, another key): that
        // copy is key material nobody else will wipe. Never wipe memory shared with our key.
        if (returned instanceof Uint8Array && !sharesMemory(returned, dataKey)) returned.fill(0);
        if (!same) throw new KeyringError(`MultiKeyring child ${i} replaced the data key`);
        edks.push(...checkEdks(out.encryptedDataKeys, `child ${i}`));
      }
    } catch (err) {
      if (generated) dataKey.fill(0);
      throw err;
    }
    return { dataKey, encryptedDataKeys: edks };
  }

  async onDecrypt(input: KeyringDecryptInput): Promise<Uint8Array | undefined> {
    keyringSuite(input.suiteId);
    const errors: unknown[] = [];
    const order = this.generator !== undefined ? [this.generator, ...this.children] : this.children;
    for (const k of order) {
      try {
        const key = await k.onDecrypt(input);
        if (key !== undefined) return key;
      } catch (err) {
        // Spec "OnDecrypt": a failing keyring does not stop the others; fail only if none succeeds.
        errors.push(err);
      }
    }
    if (errors.length === 0) return undefined;
    // Spec "OnDecrypt": the failure carries the collected failures. The errors themselves, messages
    // and all, are the cause (in order); our message says what kind each was, and quotes only our
    // own errors' texts: a foreign keyring's message may carry secrets (as in keyring-call.ts).
    throw new NoDecryptableKeyError(
      `MultiKeyring: no keyring could decrypt a data key (${errors.length} failed): ${errors.map(describeFailure).join('; ')}` +
        ' (the errors are the cause, an AggregateError)',
      { cause: new AggregateError(errors, 'keyring failures') },
    );
  }
}

/** Longest part of one of our own errors' messages quoted in the multi-keyring's message. */
const MAX_QUOTED = 300;

/** A class name or `code` shaped like code (an identifier), not like data. */
const CLASS_NAME = /^[A-Za-z_$][\w$]{0,63}$/;
/** Error codes as Node and most libraries spell them (ECONNREFUSED, ERR_KMS): upper-case constants. */
const ERROR_CODE = /^[A-Z][A-Z0-9_]{0,63}$/;

/**
 * One collected failure for the multi-keyring's message: `[n] Class (code)`, and for our own
 * errors (EnvelopeError, whose texts this library writes) `: message` cut to MAX_QUOTED characters.
 * A foreign error's message, `name` (settable to anything) and a non-Error value are never
 * quoted: they may carry secrets (a connection string, a token). The originals are the cause.
 */
function describeFailure(err: unknown, i: number): string {
  const n = `[${i + 1}]`;
  if (!(err instanceof Error)) {
    return `${n} ${err === null || err === undefined ? String(err) : `a value of type ${typeof err} (not an Error)`}`;
  }
  // Our errors' `name` is spelt out in errors.ts (it survives a minifier); others': their class.
  const ctor = err instanceof EnvelopeError ? err.name : (err as { constructor?: { name?: unknown } }).constructor?.name;
  const cls = typeof ctor === 'string' && CLASS_NAME.test(ctor) ? ctor : 'an Error subclass';
  const code = (err as { code?: unknown }).code;
  const kind = typeof code === 'string' && ERROR_CODE.test(code) ? `${cls} (${code})` : cls;
  if (!(err instanceof EnvelopeError)) return `${n} ${kind}`;
  const msg = err.message.length > MAX_QUOTED ? err.message.slice(0, MAX_QUOTED) + '...' : err.message;
  return `${n} ${kind}: ${msg}`;
}

function checkKeyring(k: unknown, option: string): void {
  if (
    k === null ||
    typeof k !== 'object' ||
    typeof (k as Keyring).onEncrypt !== 'function' ||
    typeof (k as Keyring).onDecrypt !== 'function'
  ) {
    throw new TypeError(`${option} must be a keyring (onEncrypt and onDecrypt)`);
  }
}

function checkEdks(edks: unknown, who: string): EncryptedDataKey[] {
  if (!Array.isArray(edks)) throw new KeyringError(`MultiKeyring ${who} returned no encrypted data keys list`);
  return edks as EncryptedDataKey[];
}

/** Whether two views overlap in memory (wiping one would wipe part of the other). */
function sharesMemory(a: Uint8Array, b: Uint8Array): boolean {
  return a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

function sameKey(a: unknown, b: Uint8Array): boolean {
  return a instanceof Uint8Array && a.length === b.length && timingSafeEqual(a, b);
}
