/**
 * Multi-keyring (aws-encryption-sdk-specification, framework/multi-keyring.md): the generator
 * makes the data key, every child wraps that same key, so any one of them can decrypt. Decrypt
 * tries the generator, then the children in order; the first data key wins.
 */
import { timingSafeEqual } from 'node:crypto';
import { KeyringError, NoDecryptableKeyError } from '../errors.js';
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
    // Spec "OnDecrypt": the failure carries the collected failure messages (and the errors, as cause).
    throw new NoDecryptableKeyError(
      `MultiKeyring: no keyring could decrypt a data key (${errors.length} failed): ${errors.map(describeFailure).join('; ')}`,
      { cause: new AggregateError(errors, 'keyring failures') },
    );
  }
}

/** Longest part of one child's failure message quoted in the multi-keyring's own message. */
const MAX_QUOTED = 300;

/** `Name: message` of one collected failure, cut to MAX_QUOTED characters. */
function describeFailure(err: unknown, i: number): string {
  const e = err as { name?: unknown; message?: unknown } | null;
  const name = typeof e?.name === 'string' && e.name.length > 0 ? e.name : 'Error';
  let msg = typeof e?.message === 'string' ? e.message : String(err);
  if (msg.length > MAX_QUOTED) msg = msg.slice(0, MAX_QUOTED) + '...';
  return `[${i + 1}] ${name}: ${msg}`;
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
