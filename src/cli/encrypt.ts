/** `kms-envelope encrypt`: input -> one AWS Encryption SDK message. */
import { Envelope } from '../envelope.js';
import { checkEncryptContext } from '../format/context.js';
import { frameLengthFlag, parse, parseContext, suiteFlag } from './args.js';
import { asUsage, usage } from './errors.js';
import { ENCRYPT_HELP } from './help.js';
import { checkDistinct, checkOverwrite, resolveEndpoint, type Io } from './io.js';
import { checkKeyIds, checkSelection, connectKms } from './kms.js';
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
  if (keyIds.length === 0) throw usage('encrypt needs --key (a KMS key id, key ARN, alias/NAME or alias ARN)');
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

  const kms = await connectKms(selection, { mode: 'encrypt', keyIds }, io.env);
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
