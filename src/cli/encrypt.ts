/** `kms-envelope encrypt`: input -> one AWS Encryption SDK message. */
import { Envelope } from '../envelope.js';
import { checkEncryptContext } from '../format/context.js';
import { frameLengthFlag, parse, parseContext, suiteFlag } from './args.js';
import { asUsage, usage } from './errors.js';
import { ENCRYPT_HELP } from './help.js';
import { checkDistinct, checkOverwrite, resolveEndpoint, type Io } from './io.js';
import { checkKeyIds, checkSelection, connectKms } from './kms.js';
import { cacheTtlMs, checkStoreFlags, hierarchicalKeyring, openBranchKeyStore, STORE_OPTIONS } from './branch-key.js';
import { checkOutputDirectory, transfer } from './transfer.js';

export const ENCRYPT_OPTIONS = {
  key: { type: 'string', short: 'k', multiple: true },
  context: { type: 'string', short: 'c', multiple: true },
  input: { type: 'string', short: 'i' },
  output: { type: 'string', short: 'o' },
  force: { type: 'boolean', short: 'f' },
  suite: { type: 'string' },
  'frame-length': { type: 'string' },
  local: { type: 'string' },
  endpoint: { type: 'string' },
  region: { type: 'string' },
  profile: { type: 'string' },
  'kms-timeout': { type: 'string' },
  'branch-key': { type: 'string' },
  'cache-ttl': { type: 'string' },
  ...STORE_OPTIONS,
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function encryptCommand(argv: readonly string[], io: Io): Promise<number> {
  const { values: v } = parse(argv, ENCRYPT_OPTIONS);
  if (v.help) {
    io.stdout.write(ENCRYPT_HELP);
    return 0;
  }
  const keyIds = checkKeyIds(v.key, '--key');
  const branchKey = branchKeyFlags(v);
  if (keyIds.length === 0 && branchKey === undefined) {
    throw usage('encrypt needs --key (a KMS key id, key ARN, alias/NAME or alias ARN) or --branch-key ID with a branch key store');
  }
  const context = parseContext(v.context);
  const suite = suiteFlag(v.suite);
  const frameLength = frameLengthFlag(v['frame-length']);
  const selection = { local: v.local, endpoint: v.endpoint, region: v.region, profile: v.profile, kmsTimeout: v['kms-timeout'] };
  checkSelection(selection);

  const input = await resolveEndpoint(v.input, '-i');
  const output = await resolveEndpoint(v.output, '-o');
  await checkOutputDirectory(v.output, output);
  checkDistinct(input, output);
  await checkOverwrite(output, v.force === true);
  if (output.kind === 'std' && io.stdout.isTTY === true) {
    throw usage('refusing to write ciphertext to a terminal: use -o FILE or redirect stdout');
  }
  if (input.kind === 'std' && io.stdin.isTTY === true) {
    throw usage('no input: use -i FILE or pipe data into stdin');
  }

  // Reserved `aws-crypto-` keys and oversize contexts are option errors, found before any KMS call.
  asUsage(() => checkEncryptContext(context, '--context'));

  const kms =
    branchKey !== undefined
      ? await connectBranchKey(selection, branchKey, io.env)
      : await connectKms(selection, { mode: 'encrypt', keyIds }, io.env);
  try {
    // One message per run: a data-key cache would only hold a key in memory longer.
    const envelope = asUsage(() => new Envelope({ keyring: kms.keyring, cache: false, suite, frameLength, keyringTimeoutMs: kms.timeoutMs }));
    await transfer(
      {
        label: 'encrypt',
        input,
        output,
        quiet: v.quiet === true,
        force: v.force === true,
        mode: 0o666,
        stream: (length) => envelope.encryptStream({ context, plaintextLength: length }),
      },
      io,
    );
  } catch (err) {
    throw kms.explain(err);
  } finally {
    await kms.close();
  }
  return 0;
}

type EncryptValues = ReturnType<typeof parse<typeof ENCRYPT_OPTIONS>>['values'];

/** `--branch-key ID` and its store flags, checked; undefined without --branch-key (the KMS keyring). */
export function branchKeyFlags(v: EncryptValues | Record<string, unknown>) {
  const f = v as Record<string, string | string[] | undefined>;
  const id = f['branch-key'] as string | undefined;
  if (id === undefined) {
    for (const flag of ['cache-ttl', 'branch-key-store', 'branch-key-table', 'dynamodb-endpoint', 'logical-key-store-name']) {
      if (f[flag] !== undefined) throw usage(`--${flag} only applies with --branch-key ID`);
    }
    return undefined;
  }
  if (id.length === 0) throw usage('--branch-key needs a branch key id');
  const store = checkStoreFlags(f, f.key as string[] | undefined, false, `--branch-key`);
  return { id, store, cacheTtlMs: cacheTtlMs(f['cache-ttl'] as string | undefined) };
}

/**
 * The hierarchical keyring in the shape of a KMS connection: the Envelope's keyringTimeoutMs is
 * --kms-timeout (the keyring's only remote calls are the branch key store's), close() aborts and
 * releases the KMS client and the storage.
 */
export async function connectBranchKey(
  selection: Parameters<typeof openBranchKeyStore>[0],
  branchKey: NonNullable<ReturnType<typeof branchKeyFlags>>,
  env: NodeJS.ProcessEnv,
) {
  const open = await openBranchKeyStore(selection, branchKey.store, env);
  try {
    const keyring = hierarchicalKeyring(open, branchKey.id, branchKey.cacheTtlMs);
    const base = await connectKmsExplain(open.describe, open.timeoutMs, selection.local !== undefined);
    return { keyring, timeoutMs: open.timeoutMs, explain: base, close: open.close };
  } catch (err) {
    await open.close();
    throw err;
  }
}

async function connectKmsExplain(describe: string, timeoutMs: number, local: boolean): Promise<(err: unknown) => unknown> {
  const { KeyringTimeoutError } = await import('../errors.js');
  const { CliError } = await import('./errors.js');
  return (err) =>
    err instanceof KeyringTimeoutError
      ? new CliError(
          'ERR_KEYRING_TIMEOUT',
          `no answer from ${describe} or the branch key storage within ${timeoutMs / 1000} s` +
            (local ? '' : ' (--kms-timeout SECONDS, default 30)'),
          { cause: err },
        )
      : err;
}
