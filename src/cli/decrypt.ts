/** `kms-envelope decrypt`: one AWS Encryption SDK message -> plaintext. */
import { Envelope } from '../envelope.js';
import { accountFlag, intFlag, parse, parseContext } from './args.js';
import { asUsage, usage } from './errors.js';
import { DECRYPT_HELP } from './help.js';
import { checkDistinct, checkOverwrite, resolveEndpoint, type Io } from './io.js';
import { checkDecryptKeyIds, checkKeyIds, checkSelection, connectKms } from './kms.js';
import { explainDecryptError, explainingKeyring } from './explain.js';
import { checkOutputDirectory, transfer } from './transfer.js';
import { STORE_OPTIONS } from './branch-key.js';
import { branchKeyFlags, connectBranchKey } from './encrypt.js';

export const DECRYPT_OPTIONS = {
  key: { type: 'string', short: 'k', multiple: true },
  'allow-account': { type: 'string', multiple: true },
  partition: { type: 'string' },
  context: { type: 'string', short: 'c', multiple: true },
  input: { type: 'string', short: 'i' },
  output: { type: 'string', short: 'o' },
  force: { type: 'boolean', short: 'f' },
  'allow-legacy': { type: 'boolean' },
  'unsigned-only': { type: 'boolean' },
  'max-encrypted-data-keys': { type: 'string' },
  'max-frame-length': { type: 'string' },
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

export async function decryptCommand(argv: readonly string[], io: Io): Promise<number> {
  const { values: v } = parse(argv, DECRYPT_OPTIONS);
  if (v.help) {
    io.stdout.write(DECRYPT_HELP);
    return 0;
  }
  const keyIds = checkKeyIds(v.key, '--key');
  const branchKey = branchKeyFlags(v);
  if (branchKey === undefined) checkDecryptKeyIds(keyIds);
  const allowAccounts = accountFlag(v['allow-account']);
  if (branchKey !== undefined && allowAccounts !== undefined) {
    throw usage('--allow-account applies to KMS keyring discovery; with --branch-key the branch key store names the key');
  }
  if (keyIds.length > 0 && allowAccounts !== undefined) {
    throw usage('--key and --allow-account cannot be combined: --key already names the only keys allowed');
  }
  if (v.partition !== undefined && allowAccounts === undefined) throw usage('--partition only applies with --allow-account');
  const partition = v.partition ?? 'aws';
  if (!/^aws(-[a-z]+)*$/.test(partition)) throw usage('--partition must be an AWS partition such as aws, aws-cn, aws-us-gov');
  const context = parseContext(v.context);
  const maxEncryptedDataKeys = intFlag(v['max-encrypted-data-keys'], '--max-encrypted-data-keys', 1, 0xffff, 'keys');
  // The library's maxFrameLength: a stream holds one frame of plaintext, so this bounds memory.
  const maxFrameLength = intFlag(v['max-frame-length'], '--max-frame-length', 1, 0xffff_ffff, 'bytes');
  const selection = { local: v.local, endpoint: v.endpoint, region: v.region, profile: v.profile, kmsTimeout: v['kms-timeout'] };
  checkSelection(selection);

  const input = await resolveEndpoint(v.input, '-i');
  const output = await resolveEndpoint(v.output, '-o');
  await checkOutputDirectory(v.output, output);
  checkDistinct(input, output);
  await checkOverwrite(output, v.force === true);
  if (input.kind === 'std' && io.stdin.isTTY === true) {
    throw usage('no input: use -i FILE or pipe a message into stdin');
  }

  // --region without --key: discovery limited to that Region (multi-Region keys through their replica there).
  const discoveryRegion = keyIds.length === 0 ? v.region : undefined;
  const kms =
    branchKey !== undefined
      ? await connectBranchKey(selection, branchKey, io.env)
      : await connectKms(selection, { mode: 'decrypt', keyIds, allowAccounts, partition, discoveryRegion }, io.env);
  try {
    const envelope = asUsage(
      () =>
        new Envelope({
          keyring: explainingKeyring(kms.keyring as Parameters<typeof explainingKeyring>[0], {
            keyIds,
            allowAccounts,
            partition,
            region: discoveryRegion,
            branchKeyId: branchKey?.id,
          }),
          cache: false,
          maxEncryptedDataKeys,
          keyringTimeoutMs: kms.timeoutMs,
          maxFrameLength,
          commitmentPolicy: v['allow-legacy'] ? 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' : 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT',
        }),
    );
    // --unsigned-only: the ESDK's signature policy ALLOW_ENCRYPT_FORBID_DECRYPT (its CLI's
    // --decrypt-unsigned): signed messages fail right after the header, before any KMS call.
    const signaturePolicy = v['unsigned-only'] ? 'ALLOW_ENCRYPT_FORBID_DECRYPT' : 'ALLOW_ENCRYPT_ALLOW_DECRYPT';
    await transfer(
      {
        label: 'decrypt',
        input,
        output,
        quiet: v.quiet === true,
        force: v.force === true,
        mode: 0o600,
        // Signed messages: the final frame always waits for the signature, so a forged tail never
        // reaches stdout.
        stream: () => envelope.decryptStream({ context, signaturePolicy }),
      },
      io,
    );
  } catch (err) {
    // Library errors in terms of this command's flags (src/cli/explain.ts), a timeout naming the endpoint.
    throw kms.explain(explainDecryptError(err));
  } finally {
    await kms.close();
  }
  return 0;
}
