/**
 * Command-line parsing on node:util parseArgs, plus the value checks the CLI shares between
 * commands. Every problem becomes a usage error (exit 2) that names the flag.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { usage } from './errors.js';
import { missingOptionValue } from './option-values.js';
import { checkContextPairText, contextKeyLabel } from '../format/context.js';
import { DEFAULT_MAX_FRAME_LENGTH } from '../format/decryptor.js';
import type { EncryptionContext } from '../types.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * Strict parse: unknown flags, missing values and stray positionals are usage errors. An option
 * followed by another option (`--local --quiet`) is a missing value (option-values.ts).
 */
export function parse<O extends Options>(
  argv: readonly string[],
  options: O,
): ReturnType<typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: false }>> {
  const missing = missingOptionValue(argv, options);
  if (missing !== undefined) throw usage(missing);
  try {
    return parseArgs({ args: [...argv], options, strict: true, allowPositionals: false });
  } catch (err) {
    // parseArgs errors (ERR_PARSE_ARGS_*) already name the flag; drop Node's hint suffixes.
    const msg = err instanceof Error ? err.message.split('\n')[0]!.replace(/\. To specify .*$/, '') : String(err);
    throw usage(msg);
  }
}

/**
 * `--context k=v`, repeatable. The value is everything after the first `=`, so values may contain
 * `=`; keys must be non-empty and unique, keys and values well-formed UTF-16. Keys starting with `aws-crypto-` are reserved by the
 * message format (the library rejects them on encrypt; on decrypt they may be required).
 */
export function parseContext(pairs: readonly string[] | undefined): EncryptionContext {
  // Null prototype: `__proto__` is a context key like any other, and on a plain object assigning
  // it would set the prototype instead, silently dropping the pair (a required pair never checked).
  const out: EncryptionContext = Object.create(null);
  for (const pair of pairs ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw usage(`--context must be key=value with a non-empty key, got ${JSON.stringify(pair)}`);
    const k = pair.slice(0, eq);
    const v = pair.slice(eq + 1);
    // Refused for both commands: encrypt would store U+FFFD instead (a context that no longer
    // matches, or two keys that become one), and decrypt could never match such a pair.
    try {
      checkContextPairText(k, v, '--context');
    } catch (err) {
      throw usage((err as Error).message);
    }
    if (Object.prototype.hasOwnProperty.call(out, k)) throw usage(`--context key ${contextKeyLabel(k)} given twice`);
    out[k] = v;
  }
  return out;
}

/** A positive integer flag within [min, max], with its unit in the message. */
export function intFlag(value: string | undefined, flag: string, min: number, max: number, unit: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]+$/.test(value)) throw usage(`${flag} must be an integer number of ${unit} from ${min} to ${max}`);
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw usage(`${flag} must be an integer number of ${unit} from ${min} to ${max}`);
  }
  return n;
}

/**
 * `encrypt --frame-length`: 1 .. 16 MiB, the default `--max-frame-length` of `decrypt` (the
 * library's default maxFrameLength). The CLI never writes a message its own decrypt refuses by
 * default; frames over 1 MiB gain no speed (EnvelopeOptions.frameLength), so nothing is lost.
 */
export function frameLengthFlag(value: string | undefined): number | undefined {
  const n = intFlag(value, '--frame-length', 1, 0x7fff_ffff, 'bytes');
  if (n !== undefined && n > DEFAULT_MAX_FRAME_LENGTH) {
    throw usage(
      `--frame-length ${n} is over ${DEFAULT_MAX_FRAME_LENGTH} bytes (16 MiB), the largest frame \`kms-envelope decrypt\` ` +
        'and this library read by default (every reader would need --max-frame-length or maxFrameLength raised); ' +
        'frames over 1 MiB are no faster',
    );
  }
  return n;
}

/** Accepted `--suite` spellings: 0x0478 / 0478 / 1144 (decimal), and the same for 0x0578. */
export function suiteFlag(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim().toLowerCase();
  const n = /^0x[0-9a-f]+$/.test(v) ? parseInt(v, 16) : /^[0-9a-f]{4}$/.test(v) ? parseInt(v, 16) : NaN;
  if (n !== 0x0478 && n !== 0x0578) {
    throw usage('--suite must be 0x0478 (AES-256-GCM, HKDF-SHA512, key commitment) or 0x0578 (the same + ECDSA P-384 signature)');
  }
  return n;
}

/** AWS account ids are 12 digits. */
export function accountFlag(values: readonly string[] | undefined): string[] | undefined {
  if (values === undefined || values.length === 0) return undefined;
  for (const v of values) {
    if (!/^[0-9]{12}$/.test(v)) throw usage(`--allow-account must be a 12-digit AWS account id, got ${JSON.stringify(v)}`);
  }
  return [...new Set(values)];
}
