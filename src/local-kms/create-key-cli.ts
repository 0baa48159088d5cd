import { parseArgs } from 'node:util';
import { cannotStart, CliError, reportError, usage } from '../cli/errors.js';
import { missingOptionValue } from '../cli/option-values.js';
import { LocalKms } from './client.js';
import { KmsServiceError } from './errors.js';

/**
 * `kms-envelope local-kms create-key`: makes a key (and optionally an alias) in a local KMS data
 * directory without a running server, so `kms-envelope encrypt --local DIR --key alias/app` works
 * from a fresh checkout with no AWS CLI. Prints the key ARN, and nothing else, on stdout.
 */
export const CREATE_KEY_HELP = `Usage: kms-envelope local-kms create-key --data-dir DIR [options]

Creates a KMS key in the local KMS data directory DIR (created if missing; the directory that
"kms-envelope encrypt --local DIR" and "kms-envelope local-kms --data-dir DIR" use) and prints its
key ARN. Stop a server running on DIR first: a data directory has one owner at a time.

Options:
  --data-dir DIR         the data directory (required)
  --alias NAME           also point this alias (alias/...) at the new key; an existing alias is
                         an error (AlreadyExistsException) and then no key is created
  --description TEXT     key description
  --key-spec SPEC        SYMMETRIC_DEFAULT (default), RSA_2048|3072|4096,
                         ECC_NIST_P256|P384|P521, ECC_SECG_P256K1, ECC_NIST_EDWARDS25519,
                         HMAC_224|256|384|512, ML_DSA_44|65|87, ML_KEM_512|768|1024
  --key-usage USAGE      ENCRYPT_DECRYPT (default), SIGN_VERIFY (RSA, ECC, Ed25519, ML-DSA),
                         GENERATE_VERIFY_MAC (HMAC), KEY_AGREEMENT (ECC_NIST_*),
                         ENCAPSULATE_DECAPSULATE (ML-KEM)
  --root-key-file F      as for local-kms (default DIR/root.key)
  --account-id ID        as for local-kms (default 111122223333)
  --region R             the Region to create the key in (default us-east-1)
  --multi-region         a multi-Region primary key (key id mrk-...)
  --replica-region R     with --multi-region: also replicate it to Region R (repeatable); each
                         replica's ARN is printed on its own line after the primary's
  -h, --help             show this help

Example:
  kms-envelope local-kms create-key --data-dir .local-kms --alias alias/app
`;

const OPTIONS = {
  'data-dir': { type: 'string' as const },
  alias: { type: 'string' as const },
  description: { type: 'string' as const },
  'key-spec': { type: 'string' as const },
  'key-usage': { type: 'string' as const },
  'root-key-file': { type: 'string' as const },
  'account-id': { type: 'string' as const },
  region: { type: 'string' as const },
  'multi-region': { type: 'boolean' as const },
  'replica-region': { type: 'string' as const, multiple: true as const },
  help: { type: 'boolean' as const, short: 'h' },
};

const PREFIX = 'local-kms create-key';

/**
 * Exit status: 0 created, 2 bad arguments, 4 the local KMS refused (ERR_KMS), 11 the data directory
 * cannot be used (ERR_IO); errors are printed as `kms-envelope: <code>: <message>`.
 */
export async function runCreateKeyCommand(argv: string[]): Promise<number> {
  let values;
  try {
    const missing = missingOptionValue(argv, OPTIONS);
    if (missing !== undefined) throw new Error(missing);
    ({ values } = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }));
    if (!values.help && (values['data-dir'] === undefined || values['data-dir'] === '')) throw new Error('--data-dir is required');
    if (values['replica-region'] !== undefined && values['multi-region'] !== true) throw new Error('--replica-region needs --multi-region');
    if (values.alias !== undefined && !values.alias.startsWith('alias/')) {
      throw new Error(`--alias must start with alias/, got ${JSON.stringify(values.alias)}`);
    }
  } catch (e) {
    return reportError(usage(`${PREFIX}: ${(e as Error).message} (see kms-envelope ${PREFIX} --help)`));
  }
  if (values.help) {
    process.stdout.write(CREATE_KEY_HELP);
    return 0;
  }
  let kms: LocalKms | undefined;
  try {
    kms = new LocalKms({
      dataDir: values['data-dir']!,
      ...(values['root-key-file'] !== undefined ? { rootKeyFile: values['root-key-file'] } : {}),
      ...(values['account-id'] !== undefined ? { accountId: values['account-id'] } : {}),
      ...(values.region !== undefined ? { region: values.region } : {}),
    });
    const client = kms.client();
    // Check the alias first: a taken alias must not leave an orphan key behind.
    if (values.alias !== undefined) {
      const taken = await client.call('DescribeKey', { KeyId: values.alias }).then(
        () => true,
        (e: unknown) => (e instanceof KmsServiceError && e.type === 'NotFoundException' ? false : Promise.reject(e)),
      );
      if (taken) throw new KmsServiceError('AlreadyExistsException', `An alias with the name ${values.alias} already exists`);
    }
    const input: Record<string, unknown> = {};
    if (values.description !== undefined) input.Description = values.description;
    if (values['key-spec'] !== undefined) input.KeySpec = values['key-spec'];
    if (values['key-usage'] !== undefined) input.KeyUsage = values['key-usage'];
    if (values['multi-region'] === true) input.MultiRegion = true;
    const key = await kms.createKey(input);
    if (values.alias !== undefined) await kms.createAlias(values.alias, key.keyId);
    const arns = [key.arn];
    for (const ReplicaRegion of values['replica-region'] ?? []) {
      const out = await client.call('ReplicateKey', { KeyId: key.arn, ReplicaRegion });
      arns.push((out.ReplicaKeyMetadata as { Arn: string }).Arn);
    }
    process.stdout.write(`${arns.join('\n')}\n`);
    return 0;
  } catch (e) {
    // The local KMS refused the request (AlreadyExistsException, ValidationException): a KMS
    // error, exit 4, as encrypt reports one. Anything else is opening the data directory.
    if (e instanceof KmsServiceError) return reportError(new CliError('ERR_KMS', `${PREFIX}: ${e.type}: ${e.message}`, { cause: e }));
    return reportError(cannotStart(PREFIX, e));
  } finally {
    kms?.close();
  }
}
