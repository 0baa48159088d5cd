import { readFileSync } from 'node:fs';
import { cannotStart, reportError, usage } from '../cli/errors.js';
import { missingOptionValue, type ValueOptionSpec } from '../cli/option-values.js';
import { serveUntilSignal } from '../cli/serve.js';
import { runCreateKeyCommand } from './create-key-cli.js';
import { runKeyPolicyCommand } from './policy-cli.js';
import { loadPrincipals } from './principals.js';
import { startLocalKmsServer, type LocalKmsServerOptions } from './server.js';

/**
 * `kms-envelope local-kms`: runs the local KMS server until SIGINT/SIGTERM.
 * Prints `listening on http://HOST:PORT` on stdout once it accepts requests (port 0 = any free port).
 * Resolves with the exit status: 0 after a clean stop, 2 for bad arguments, 11 if it cannot start
 * (port in use, data directory in use or unreadable); errors are printed as
 * `kms-envelope: <code>: <message>`, like those of every kms-envelope command.
 */
export const LOCAL_KMS_HELP = `Usage: kms-envelope local-kms [options]

Runs an offline AWS KMS (JSON 1.1 protocol) for @aws-sdk/client-kms, the AWS CLI and the
AWS Encryption SDK. Point clients at the printed URL (e.g. aws --endpoint-url URL kms ...).

Options:
  --port N               TCP port (default 4599; 0 picks a free port)
  --host H               interface to bind (default 127.0.0.1)
  --data-dir DIR         keep keys in DIR (survives restarts); in memory when omitted
  --root-key-file F      32-byte root key that seals key material at rest
                         (default DIR/root.key, generated with mode 0600)
  --principals FILE      JSON {"<accessKeyId>": {"arn": "...", "secretAccessKey"?: "...",
                         "sessionToken"?: "...", "userId"?: "AIDA...", "tags"?: {"team": "..."},
                         "policies"?: [...], "tokenIssueTime"?: "2024-05-01T12:00:00Z"}}
                         mapping SigV4 access keys to IAM principals for key policies (userId,
                         tags: aws:userid, aws:PrincipalTag; tokenIssueTime: aws:TokenIssueTime
                         of a role session, role or federated user, unknown and evaluated
                         strictly when absent).
                         "sessionToken": the entry is temporary credentials (a role session):
                         requests must send exactly that X-Amz-Security-Token; an entry without
                         one is a long-term key and a request sending a token is refused
                         (UnrecognizedClientException, as AWS answers an invalid token).
                         "policies": the principal's IAM identity policy documents. With them
                         (even []) IAM is evaluated as in AWS: the account principal of a key
                         policy delegates to them, an identity-policy Deny denies, and CreateKey,
                         ListKeys, ListAliases, GenerateRandom, ListRetirableGrants and the alias
                         side of CreateAlias/UpdateAlias/DeleteAlias need an identity-policy
                         Allow. Without "policies" IAM is not modelled for the principal (the
                         account principal means the root only; those operations are open).
                         Without --principals every caller is the account root. With it every
                         request must be signed (credential scope in a served Region, signing time
                         within 5 minutes) by a key in the file: unsigned is
                         MissingAuthenticationTokenException, an unknown key
                         UnrecognizedClientException; signatures are verified when the entry
                         has a secret (without one, the access key id alone identifies it)
  --allow-unknown-keys-as-root
                         with --principals: access keys not in the file act as the account
                         root instead of being refused (unsigned requests are still refused)
  --strict-principals    deprecated, the default with --principals (accepted, no effect)
  --test-clock           enable GET/POST /_local/clock ({"advanceSeconds": N}) for tests.
                         With --principals these requests must be signed like KMS requests by
                         a principal in the file (service kms, a served Region), e.g.
                         curl --aws-sigv4 aws:amz:us-east-1:kms --user KEY:SECRET
                           -d '{"advanceSeconds": 86400}' http://127.0.0.1:4599/_local/clock
  --console              serve the web console at http://127.0.0.1:PORT/console (loopback
                         only): keys list, create-key wizard, key policies, rotation, import,
                         deletion; it acts as a principal of --principals (or as the root)
  --account-id ID        12-digit account id of the keys (default 111122223333)
  --region R             default Region (us-east-1): the one unsigned requests address. Every
                         Region of its partition is served: a request goes to the Region of
                         its SigV4 credential scope (aws --region eu-west-1 talks to
                         eu-west-1), each Region with its own keys, aliases and ARNs;
                         multi-Region keys (create-key --multi-region, ReplicateKey) span them.
                         A data directory's own keys stay in the Region it was created with
  --hsm CLUSTER=LIB:TOKEN
                         a PKCS#11 token that CreateCustomKeyStore can name as CloudHSM cluster
                         CLUSTER (cluster- + 11-16 letters/digits), e.g.
                         --hsm cluster-1234567890a=/usr/lib/softhsm/libsofthsm2.so:kms-token
                         (repeatable; the token's user PIN is the key store password; needs
                         the optional dependency pkcs11js: npm install pkcs11js)
  --xks-timeout-ms N     how long an external key store proxy may take to answer, in ms
                         (default 250, AWS's fixed XKS proxy timeout; 1-60000)
  --xks-ca FILE          PEM CA certificate(s) trusted, besides Node's, for HTTPS external key
                         store proxies (e.g. a self-signed proxy certificate); repeatable.
                         Plain http:// proxy URIs are accepted for loopback hosts only
  --max-body-bytes N     largest request body accepted (default 1048576)
  -h, --help             show this help

Subcommands:
  create-key             create a key (and an alias) in a data directory, no server needed
                         (see: kms-envelope local-kms create-key --help)
  key-policy             print the key policy the AWS console writes for given key
                         administrators and users (see: kms-envelope local-kms key-policy --help)
`;

const VALUE_OPTIONS: Record<string, keyof LocalKmsServerOptions> = {
  '--port': 'port',
  '--host': 'host',
  '--data-dir': 'dataDir',
  '--root-key-file': 'rootKeyFile',
  '--principals': 'principalsFile',
  '--account-id': 'accountId',
  '--region': 'region',
  '--max-body-bytes': 'maxBodyBytes',
  '--xks-timeout-ms': 'xksProxyTimeoutMs',
};
const FLAG_OPTIONS: Record<string, keyof LocalKmsServerOptions> = {
  '--allow-unknown-keys-as-root': 'allowUnknownKeysAsRoot',
  '--strict-principals': 'strictPrincipals',
  '--test-clock': 'testClock',
  '--console': 'console',
};
const NUMERIC = new Set<keyof LocalKmsServerOptions>(['port', 'maxBodyBytes', 'xksProxyTimeoutMs']);

export class LocalKmsUsageError extends Error {}


/** The options above in the shape option-values.ts reads. */
const OPTION_SPECS: Record<string, ValueOptionSpec> = Object.fromEntries([
  ...Object.keys(VALUE_OPTIONS).map((o) => [o.slice(2), { type: 'string' }] as const),
  ...Object.keys(FLAG_OPTIONS).map((o) => [o.slice(2), { type: 'boolean' }] as const),
  ['help', { type: 'boolean', short: 'h' }] as const,
  ['hsm', { type: 'string' }] as const,
  ['xks-ca', { type: 'string' }] as const,
]);

/** `--hsm cluster-x=/path/lib.so:token-label`: the token label is after the last colon. */
export function parseHsmArg(value: string): [string, { module: string; tokenLabel: string }] {
  const eq = value.indexOf('=');
  const colon = value.lastIndexOf(':');
  if (eq <= 0 || colon <= eq + 1 || colon === value.length - 1) {
    throw new LocalKmsUsageError(`--hsm must be CLUSTER=PKCS11_LIBRARY:TOKEN_LABEL, got ${JSON.stringify(value)}`);
  }
  return [value.slice(0, eq), { module: value.slice(eq + 1, colon), tokenLabel: value.slice(colon + 1) }];
}

export function parseLocalKmsArgs(argv: readonly string[]): LocalKmsServerOptions | 'help' {
  if (argv.includes('-h') || argv.includes('--help')) return 'help';
  // `--data-dir --test-clock` is a forgotten value, not a directory named "--test-clock": one rule
  // for every kms-envelope option.
  const missing = missingOptionValue(argv, OPTION_SPECS);
  if (missing !== undefined) throw new LocalKmsUsageError(missing);
  const opts: Record<string, unknown> = { port: 4599 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') return 'help';
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    // Own properties only: `constructor` or `__proto__` must be an unknown option, not a table entry.
    if (Object.hasOwn(FLAG_OPTIONS, name)) {
      if (eq > 0) throw new LocalKmsUsageError(`${name} takes no value`);
      opts[FLAG_OPTIONS[name]!] = true;
      continue;
    }
    if (name === '--hsm') {
      const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined || value === '') throw new LocalKmsUsageError('--hsm needs a value');
      const [cluster, token] = parseHsmArg(value);
      const hsms = (opts.hsms ??= {}) as Record<string, unknown>;
      if (Object.hasOwn(hsms, cluster)) throw new LocalKmsUsageError(`--hsm ${cluster} is given twice`);
      hsms[cluster] = token;
      continue;
    }
    if (name === '--xks-ca') {
      const file = eq > 0 ? arg.slice(eq + 1) : argv[++i];
      if (file === undefined || file === '') throw new LocalKmsUsageError('--xks-ca needs a file');
      let pem: string;
      try {
        pem = readFileSync(file, 'utf8');
      } catch (e) {
        throw new LocalKmsUsageError(`--xks-ca ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      ((opts.xksProxyCa ??= []) as string[]).push(pem);
      continue;
    }
    const key = Object.hasOwn(VALUE_OPTIONS, name) ? VALUE_OPTIONS[name] : undefined;
    if (!key) throw new LocalKmsUsageError(`unknown option ${JSON.stringify(arg)}`);
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined || value === '') throw new LocalKmsUsageError(`${name} needs a value`);
    if (NUMERIC.has(key)) {
      if (!/^\d+$/.test(value)) throw new LocalKmsUsageError(`${name} must be a non-negative integer, got ${JSON.stringify(value)}`);
      opts[key] = Number(value);
    } else {
      opts[key] = value;
    }
  }
  const port = opts.port as number;
  if (port > 65535) throw new LocalKmsUsageError(`--port must be 0-65535, got ${port}`);
  return opts as LocalKmsServerOptions;
}

/** What the operator should know about who can call the server (the server started, so the file reads). */
function authWarnings(opts: LocalKmsServerOptions): string[] {
  if (!opts.principalsFile) return [];
  const out: string[] = [];
  const unverified = [...loadPrincipals(opts.principalsFile).entries()].filter(([, e]) => e.secretAccessKey === undefined);
  if (unverified.length > 0) {
    out.push(
      `${unverified.length} principal(s) without "secretAccessKey" (${unverified.map(([k]) => k).join(', ')}): ` +
        'their signatures are not verified, the access key id alone identifies them',
    );
  }
  if (opts.allowUnknownKeysAsRoot) out.push('--allow-unknown-keys-as-root: any access key not in the principals file acts as the account root');
  return out;
}

export async function runLocalKmsCommand(argv: string[]): Promise<number> {
  if (argv[0] === 'key-policy') return runKeyPolicyCommand(argv.slice(1));
  if (argv[0] === 'create-key') return runCreateKeyCommand(argv.slice(1));
  let opts: LocalKmsServerOptions | 'help';
  try {
    opts = parseLocalKmsArgs(argv);
  } catch (e) {
    return reportError(usage(`local-kms: ${(e as Error).message} (see kms-envelope local-kms --help)`));
  }
  if (opts === 'help') {
    process.stdout.write(LOCAL_KMS_HELP);
    return 0;
  }
  let server;
  try {
    server = await startLocalKmsServer(opts);
  } catch (e) {
    return reportError(cannotStart('local-kms', e));
  }
  if (!opts.dataDir) process.stderr.write('kms-envelope local-kms: no --data-dir, keys live in memory only\n');
  for (const warning of authWarnings(opts)) process.stderr.write(`kms-envelope local-kms: ${warning}\n`);
  process.stdout.write(`listening on ${server.url}\n`);
  if (opts.console) process.stdout.write(`console at ${server.url}/console\n`);
  await serveUntilSignal(server);
  return 0;
}
