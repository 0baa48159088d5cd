import { parseArgs } from 'node:util';
import { reportError, usage } from '../cli/errors.js';
import { missingOptionValue } from '../cli/option-values.js';
import { consoleKeyKind, keyPolicyFor } from './generated-policies.js';

/**
 * `kms-envelope local-kms key-policy`: prints the key policy the AWS console writes at its "define
 * key administrative permissions" and "define key usage permissions" steps, so a user following
 * the console flow with the AWS CLI can review it and pass it to `create-key --policy`.
 */
export const KEY_POLICY_HELP = `Usage: kms-envelope local-kms key-policy [options]

Prints the key policy the AWS console would write for these administrators and users
(statements "Enable IAM User Permissions", "Allow access for Key Administrators",
"Allow use of the key", "Allow attachment of persistent resources").

Options:
  --account-id ID        12-digit account id (default 111122223333)
  --admin ARN            key administrator (IAM user/role ARN); repeat for several
  --user ARN             key user (IAM user/role ARN or account id); repeat for several
  --key-spec SPEC        SYMMETRIC_DEFAULT (default), RSA_2048, ECC_NIST_P256, HMAC_256, ...
  --key-usage USAGE      ENCRYPT_DECRYPT (default), SIGN_VERIFY, GENERATE_VERIFY_MAC
  --external             key material will be imported (administrators get kms:ImportKeyMaterial)
  --no-admin-delete      administrators may not schedule or cancel key deletion
  -h, --help             show this help
`;

const KEY_POLICY_OPTIONS = {
  'account-id': { type: 'string' as const, default: '111122223333' },
  admin: { type: 'string' as const, multiple: true as const, default: [] as string[] },
  user: { type: 'string' as const, multiple: true as const, default: [] as string[] },
  'key-spec': { type: 'string' as const, default: 'SYMMETRIC_DEFAULT' },
  'key-usage': { type: 'string' as const, default: 'ENCRYPT_DECRYPT' },
  external: { type: 'boolean' as const, default: false },
  'no-admin-delete': { type: 'boolean' as const, default: false },
  help: { type: 'boolean' as const, short: 'h', default: false },
};

export function runKeyPolicyCommand(argv: string[]): number {
  let values;
  try {
    // `--admin --external` is a forgotten value: the same rule as every other kms-envelope option.
    const missing = missingOptionValue(argv, KEY_POLICY_OPTIONS);
    if (missing !== undefined) throw new Error(missing);
    ({ values } = parseArgs({ args: argv, options: KEY_POLICY_OPTIONS, strict: true, allowPositionals: false }));
  } catch (e) {
    return reportError(usage(`local-kms key-policy: ${(e as Error).message} (see kms-envelope local-kms key-policy --help)`));
  }
  if (values.help) {
    process.stdout.write(KEY_POLICY_HELP);
    return 0;
  }
  try {
    const policy = keyPolicyFor({
      accountId: values['account-id'],
      administrators: values.admin,
      users: values.user,
      keyKind: consoleKeyKind(values['key-spec'], values['key-usage']),
      externalOrigin: values.external,
      administratorsCanDelete: !values['no-admin-delete'],
    });
    process.stdout.write(JSON.stringify(JSON.parse(policy), null, 2) + '\n');
    return 0;
  } catch (e) {
    return reportError(usage(`local-kms key-policy: ${(e as Error).message}`));
  }
}
