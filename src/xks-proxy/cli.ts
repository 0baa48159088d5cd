/**
 * `kms-envelope xks-proxy`: runs the XKS proxy from a config file until SIGINT/SIGTERM, and
 * `kms-envelope xks-proxy create-key` makes the token keys it serves (softhsm2-util cannot create
 * AES keys). Errors are printed as `kms-envelope: <code>: <message>` like every command's: exit 2
 * for bad arguments or an invalid config file (the message names the field), 11 when the proxy
 * cannot start (token missing, wrong PIN, port in use; the PIN is never printed).
 */
import { parseArgs } from 'node:util';
import { cannotStart, reportError, usage } from '../cli/errors.js';
import { printable } from '../cli/printable.js';
import { missingOptionValue } from '../cli/option-values.js';
import { serveUntilSignal } from '../cli/serve.js';
import { loadXksProxyConfig } from './config.js';
import { createXksKey, XKS_KEY_USAGES, type XksKeyUsage } from './create-key.js';
import { startXksProxy } from './server.js';

export const XKS_PROXY_HELP = `Usage: kms-envelope xks-proxy --config FILE [options]

Runs an AWS KMS External Key Store (XKS) proxy: the XKS Proxy API (aws/aws-kms-xksproxy-api-spec)
on AES-256 keys of a PKCS#11 token (SoftHSM2, an HSM), which KMS (or the local KMS) calls for keys
of an EXTERNAL_KEY_STORE key store. Requests must be SigV4-signed (service kms-xks-proxy, the
config's region) with a credential of the config file. Prints "listening on URL" and the
XksProxyUriPath once it accepts requests; one JSON line per request on stderr (request metadata,
status, time; never plaintext, keys or secrets).

Options:
  --config FILE          the JSON config file (required):
                         {"host": "127.0.0.1", "port": 8443, "uriPrefix": "keystore-1",
                          "region": "us-east-1",
                          "credentials": [{"accessKeyId": "<20-30 of A-Z 2-7>",
                                           "secretAccessKey": "<43-64 of A-Z a-z 0-9 + / =>"}],
                          "pkcs11": {"module": "/usr/lib/softhsm/libsofthsm2.so",
                                     "tokenLabel": "xks", "pinEnv": "XKS_PIN"},
                          "tls": {"cert": "proxy.crt", "key": "proxy.key"}}
                         host: default 127.0.0.1; without "tls" only loopback (plain HTTP).
                         port: default 0 (any free port). credentials: 1 or 2 (rotation).
                         pkcs11: exactly one of "pin", "pinEnv" (an environment variable),
                         "pinFile" (a file). Relative paths are relative to the config file
  --quiet                no request log on stderr
  -h, --help             show this help

Subcommands:
  create-key             create an AES-256 key in the token (see: kms-envelope xks-proxy
                         create-key --help)

Needs the optional dependency pkcs11js (npm install pkcs11js).
`;

export const XKS_CREATE_KEY_HELP = `Usage: kms-envelope xks-proxy create-key --config FILE --label LABEL [--usage USAGE]

Creates an AES-256 key in the token of the XKS proxy's config file (C_GenerateKey: a token
object, private, sensitive, not extractable; its value never leaves the token). LABEL (its
CKA_LABEL) is the key's XKS external key id, the XksKeyId of KMS CreateKey: 1-128 of A-Z, a-z,
0-9, -, . and _, not already used in the token.

Options:
  --config FILE          the xks-proxy config file (its pkcs11 section is used)
  --label LABEL          the key's label and external key id (required)
  --usage USAGE          encrypt-decrypt (default), encrypt (encrypt-only), decrypt
                         (decrypt-only) or none (neither; the compliance client's impotent_key)
  -h, --help             show this help

Example:
  kms-envelope xks-proxy create-key --config xks.json --label foo
`;

const SERVE_OPTIONS = {
  config: { type: 'string' as const },
  quiet: { type: 'boolean' as const },
  help: { type: 'boolean' as const, short: 'h' },
};

const CREATE_OPTIONS = {
  config: { type: 'string' as const },
  label: { type: 'string' as const },
  usage: { type: 'string' as const },
  help: { type: 'boolean' as const, short: 'h' },
};

export async function runXksProxyCommand(argv: string[]): Promise<number> {
  if (argv[0] === 'create-key') return runCreateKey(argv.slice(1));
  let values;
  try {
    const missing = missingOptionValue(argv, SERVE_OPTIONS);
    if (missing !== undefined) throw new Error(missing);
    ({ values } = parseArgs({ args: argv, options: SERVE_OPTIONS, strict: true, allowPositionals: false }));
    if (!values.help && !values.config) throw new Error('--config is required');
  } catch (e) {
    return reportError(usage(`xks-proxy: ${(e as Error).message} (see kms-envelope xks-proxy --help)`));
  }
  if (values.help) {
    process.stdout.write(XKS_PROXY_HELP);
    return 0;
  }
  let proxy;
  try {
    // An invalid config is a TypeError naming the field: a usage error (exit 2), via cannotStart.
    const config = loadXksProxyConfig(values.config!);
    const quiet = values.quiet === true;
    // One JSON line per request; the metadata strings are KMS's (or any signed caller's), so the
    // line is made printable (\uXXXX for C1, bidi and line separators JSON.stringify leaves raw).
    proxy = await startXksProxy(config, quiet ? {} : { log: (e) => process.stderr.write(`${printable(JSON.stringify(e))}\n`) });
  } catch (e) {
    return reportError(cannotStart('xks-proxy', e));
  }
  process.stdout.write(`listening on ${proxy.url}\nXksProxyUriPath ${proxy.uriPath}\n`);
  await serveUntilSignal(proxy);
  return 0;
}

async function runCreateKey(argv: string[]): Promise<number> {
  const prefix = 'xks-proxy create-key';
  let values;
  try {
    const missing = missingOptionValue(argv, CREATE_OPTIONS);
    if (missing !== undefined) throw new Error(missing);
    ({ values } = parseArgs({ args: argv, options: CREATE_OPTIONS, strict: true, allowPositionals: false }));
    if (!values.help) {
      if (!values.config) throw new Error('--config is required');
      if (!values.label) throw new Error('--label is required');
      if (values.usage !== undefined && !(XKS_KEY_USAGES as readonly string[]).includes(values.usage)) {
        throw new Error(`--usage must be one of ${XKS_KEY_USAGES.join(', ')}, got ${JSON.stringify(values.usage)}`);
      }
    }
  } catch (e) {
    return reportError(usage(`${prefix}: ${(e as Error).message} (see kms-envelope ${prefix} --help)`));
  }
  if (values.help) {
    process.stdout.write(XKS_CREATE_KEY_HELP);
    return 0;
  }
  try {
    await createXksKey(loadXksProxyConfig(values.config!), values.label!, (values.usage ?? 'encrypt-decrypt') as XksKeyUsage);
  } catch (e) {
    return reportError(cannotStart(prefix, e));
  }
  process.stdout.write(`${values.label}\n`);
  return 0;
}
