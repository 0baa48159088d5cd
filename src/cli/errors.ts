/**
 * How the CLI reports failures: one line on stderr, `kms-envelope: <code>: <message>`, and an exit
 * status chosen by the error's stable code, so scripts can branch on "wrong context" vs "KMS down"
 * without parsing text. Messages come from EnvelopeError / KMS / the OS and never carry key bytes
 * or plaintext (src/errors.ts guarantees it for our errors; KMS and OS messages name keys and paths).
 */
import { BranchKeyStoreError, EnvelopeError, NoDecryptableKeyError, type EnvelopeErrorCode } from '../errors.js';
import { printable } from './printable.js';

/** Codes the CLI adds to the library's EnvelopeErrorCode set. */
export type CliErrorCode = 'ERR_USAGE' | 'ERR_NO_KMS' | 'ERR_IO' | 'ERR_INTERNAL' | 'ERR_INTERRUPTED' | 'ERR_KEYRING_TIMEOUT';

/**
 * Exit status per error code. Documented in `kms-envelope --help` and src/cli/README.md; this
 * table is the single source for both.
 */
export const EXIT_CODES: ReadonlyArray<{ exit: number; codes: readonly string[]; meaning: string }> = [
  { exit: 0, codes: [], meaning: 'success' },
  { exit: 1, codes: ['ERR_INTERNAL'], meaning: 'unexpected internal error (a bug: please report it)' },
  { exit: 2, codes: ['ERR_USAGE', 'ERR_NO_KMS'], meaning: 'bad command line (an existing -o FILE needs --force), or no KMS configured' },
  {
    exit: 3,
    codes: ['ERR_DECRYPTION_FAILED', 'ERR_COMMITMENT_MISMATCH'],
    meaning: 'decryption failed: tampered message or wrong data key',
  },
  {
    exit: 4,
    codes: ['ERR_KMS', 'ERR_KEYRING_TIMEOUT'],
    meaning: 'KMS refused or failed a request (encrypt; on decrypt that is 7), or did not answer within --kms-timeout',
  },
  { exit: 5, codes: ['ERR_CONTEXT_MISMATCH'], meaning: 'encryption context does not match --context' },
  {
    exit: 6,
    codes: ['ERR_MALFORMED_MESSAGE', 'ERR_STREAM'],
    meaning: 'input is not a (complete) message: malformed, truncated or extended',
  },
  { exit: 7, codes: ['ERR_NO_DECRYPTABLE_KEY'], meaning: 'no encrypted data key could be decrypted with the allowed keys' },
  { exit: 8, codes: ['ERR_COMMITMENT_POLICY'], meaning: 'legacy (v1, non-committing) message; see --allow-legacy' },
  {
    exit: 9,
    codes: ['ERR_LIMIT_EXCEEDED'],
    meaning: 'a limit was exceeded (--max-frame-length, --max-encrypted-data-keys; the message names the flag)',
  },
  { exit: 10, codes: ['ERR_KEYRING'], meaning: 'a keyring failed or returned unusable data' },
  {
    exit: 11,
    codes: ['ERR_IO'],
    meaning: 'file, pipe or socket error (not found, permission, disk full, data directory in use, port in use)',
  },
  { exit: 12, codes: ['ERR_SIGNATURE_POLICY'], meaning: 'signed message refused by --unsigned-only' },
  {
    exit: 13,
    codes: ['ERR_BRANCH_KEY_STORE'],
    meaning: 'the branch key store refused or failed (no such branch key, id exists, a concurrent version won, no DynamoDB transactions)',
  },
  {
    exit: 130,
    codes: ['ERR_INTERRUPTED'],
    meaning: 'interrupted: 128 + the signal: 130 SIGINT, 143 SIGTERM, 129 SIGHUP, 131 SIGQUIT; a file output is not written',
  },
];

const EXIT_BY_CODE: ReadonlyMap<string, number> = new Map(
  EXIT_CODES.flatMap((row) => row.codes.map((c) => [c, row.exit] as const)),
);

/** The exit status for an error code; unknown codes are internal errors. */
export function exitCodeFor(code: string): number {
  return EXIT_BY_CODE.get(code) ?? 1;
}

/** A failure the CLI itself detects (bad arguments, missing KMS configuration, file problems). */
export class CliError extends Error {
  /** A CLI code, or a library code when the CLI rewords a library error (src/cli/explain.ts). */
  readonly code: CliErrorCode | EnvelopeErrorCode;
  /** Exit status when it is not the code's usual one (SIGTERM: 143 rather than 130, see signalExitCode). */
  readonly exit: number | undefined;
  constructor(code: CliErrorCode | EnvelopeErrorCode, message: string, options?: { cause?: unknown; exit?: number }) {
    super(message, options);
    this.code = code;
    this.exit = options?.exit;
    this.name = 'CliError';
  }
}

export function usage(message: string): CliError {
  return new CliError('ERR_USAGE', message);
}

/**
 * Runs library setup (Envelope, keyring construction) on values from the command line. The
 * library rejects bad options with a TypeError/RangeError naming the option: for the CLI user that
 * is a usage error. Anything else passes through unchanged.
 */
export function asUsage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError) throw usage(err.message);
    throw err;
  }
}

/** Node system errors (fs, pipes) carry `code` like ENOENT and `syscall`. */
function isSystemError(err: unknown): err is NodeJS.ErrnoException {
  return (
    err instanceof Error &&
    typeof (err as NodeJS.ErrnoException).code === 'string' &&
    /^E[A-Z0-9]+$/.test((err as NodeJS.ErrnoException).code!) &&
    typeof (err as NodeJS.ErrnoException).syscall === 'string'
  );
}

export interface Classified {
  code: string;
  exit: number;
  message: string;
}

/**
 * Maps anything thrown to the code, exit status and one-line message the CLI prints. The message
 * may quote a hostile message header or a KMS error: it is made printable (cli/printable.ts), so
 * it stays one line and cannot drive the terminal.
 */
export function classify(err: unknown): Classified {
  const c = classifyRaw(err);
  return { ...c, message: printable(c.message) };
}

function classifyRaw(err: unknown): Classified {
  if (err instanceof CliError) return { code: err.code, exit: err.exit ?? exitCodeFor(err.code), message: err.message };
  if (err instanceof EnvelopeError) {
    let message = err.message;
    // The keyring wraps each failed KMS Decrypt; the first cause is what the user can act on
    // (AccessDenied, NotFound, connection refused). KMS messages name keys, never key material.
    if (err instanceof NoDecryptableKeyError && err.cause instanceof AggregateError) {
      const first = err.cause.errors.find((e: unknown) => e instanceof Error) as Error | undefined;
      if (first !== undefined && !message.includes(first.message)) message += `: ${first.message}`;
    }
    // The reason is the stable part a script can match: `ERR_BRANCH_KEY_STORE: NOT_FOUND: ...`.
    if (err instanceof BranchKeyStoreError) message = `${err.reason}: ${message}`;
    return { code: err.code, exit: exitCodeFor(err.code), message };
  }
  if (isSystemError(err)) {
    const where = err.path !== undefined ? ` ${JSON.stringify(err.path)}` : '';
    return { code: 'ERR_IO', exit: exitCodeFor('ERR_IO'), message: `${err.syscall}${where}: ${err.code}` };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: 'ERR_INTERNAL', exit: exitCodeFor('ERR_INTERNAL'), message };
}

/**
 * Why a local-kms command could not open its data directory or start its server, as the CLI
 * reports it: bad option values (TypeError/RangeError) are usage errors (exit
 * 2); everything else here is about files and sockets the user named (data directory in use or
 * unreadable, wrong root key, invalid principals file, port in use): ERR_IO, exit 11.
 */
export function cannotStart(command: string, e: unknown): CliError {
  const message = e instanceof Error ? e.message : String(e);
  if (e instanceof TypeError || e instanceof RangeError) return usage(`${command}: ${message}`);
  return new CliError('ERR_IO', `${command}: cannot start: ${message}`, { cause: e });
}

/**
 * Writes `kms-envelope: <code>: <message>` for `err` and returns its exit status: for commands
 * that report their own errors (the `local-kms` commands) in the format of every other command.
 */
export function reportError(err: unknown, stderr: { write(s: string): unknown } = process.stderr): number {
  const c = classify(err);
  stderr.write(`kms-envelope: ${c.code}: ${c.message}\n`);
  return c.exit;
}

/**
 * Renders the exit-code table for `--help`: statuses right-aligned in one column, meanings in the
 * next, long meanings wrapped at `width` with continuation lines indented to the meaning column.
 */
export function exitCodeTable(width = 100): string {
  const label = (exit: number) => (exit === 130 ? '130/143' : String(exit));
  const statusWidth = Math.max(...EXIT_CODES.map((r) => label(r.exit).length));
  const indent = 2 + statusWidth + 2;
  const out: string[] = [];
  for (const r of EXIT_CODES) {
    const text = `${r.meaning}${r.codes.length ? ` (${r.codes.join(', ')})` : ''}`;
    const lines: string[] = [];
    let line = '';
    for (const word of text.split(' ')) {
      if (line.length > 0 && indent + line.length + 1 + word.length > width) {
        lines.push(line);
        line = word;
      } else {
        line = line.length > 0 ? `${line} ${word}` : word;
      }
    }
    lines.push(line);
    out.push(`  ${label(r.exit).padStart(statusWidth)}  ${lines[0]}`);
    for (const more of lines.slice(1)) out.push(`${' '.repeat(indent)}${more}`);
  }
  return out.join('\n');
}
