/**
 * Which KMS the CLI talks to, and the keyring built on it.
 *
 * 1. `--local DIR`: the embedded local KMS, in process, keys persisted in DIR. No network at all.
 * 2. `--endpoint URL`: any server speaking the AWS KMS JSON protocol (the local KMS server,
 *    LocalStack, a VPC endpoint). Credentials come from the AWS environment when there are any;
 *    otherwise fixed dummy ones are used, which the local KMS accepts (it maps unknown access keys
 *    to its account root).
 * 3. Neither: AWS KMS with region and credentials resolved the way the AWS SDK always does
 *    (AWS_REGION, AWS_PROFILE, ~/.aws/config and credentials, container/instance roles). Key ARNs
 *    name their own region, so a client is made per region for them, as the ESDK does.
 *
 * With neither flag and no trace of an AWS environment the CLI stops with ERR_NO_KMS (exit 2)
 * instead of letting the SDK probe the instance metadata service and fail after a timeout.
 *
 * Time limit (`--kms-timeout SECONDS`, 2. and 3.): the AWS SDK's HTTP handler sets no request
 * timeout of its own and retries a failed attempt on a new connection, so a KMS endpoint that
 * accepts connections and never answers (a stuck proxy, a dropped firewall rule) held the command
 * forever. The limit is the Envelope's `keyringTimeoutMs`: one bound on the whole keyring call of
 * the command, i.e. on all its KMS requests together (GenerateDataKey, one Encrypt per further
 * --key, the Decrypt attempts of each encrypted data key), retries and credential lookups included,
 * so retries cannot multiply it. When the command ends (that limit, a signal, any error) every
 * request still in flight is aborted through the AbortSignal each request carries: the SDK's retry
 * loop stops on an aborted signal instead of opening a new connection, and nothing is left to keep
 * the process alive.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { KMSClient, KMSClientConfig } from '@aws-sdk/client-kms';
import { intFlag } from './args.js';
import { CliError, usage } from './errors.js';
import { KeyringTimeoutError } from '../errors.js';
import { KmsKeyring, type KmsKeyringOptions } from '../keyrings/kms.js';
import { kmsIdentifierKind, parseKeyArn, parseKmsArn } from '../keyrings/kms-arn.js';
import { assertMrksAreUnique } from '../keyrings/kms-mrk.js';
import type { KmsClient } from '../types.js';

/** `--kms-timeout` default and largest value, in seconds (the largest is the Envelope's keyringTimeoutMs limit). */
export const DEFAULT_KMS_TIMEOUT_SECONDS = 30;
export const MAX_KMS_TIMEOUT_SECONDS = 600;

export interface KmsSelection {
  local?: string | undefined;
  endpoint?: string | undefined;
  region?: string | undefined;
  profile?: string | undefined;
  /** `--kms-timeout` as given: whole seconds, 1 .. 600; not with `--local`. */
  kmsTimeout?: string | undefined;
}

/** What the keyring is for: encryption needs keys; decryption may be strict, filtered or open. */
export type KeyringMode =
  | { mode: 'encrypt'; keyIds: string[] }
  | {
      mode: 'decrypt';
      /** Key ARNs: strict, multi-Region-key aware (a replica's ARN decrypts what its primary wrapped). */
      keyIds: string[];
      allowAccounts?: string[] | undefined;
      partition: string;
      /** Without keyIds: discovery limited to this Region (`decrypt --region`), multi-Region-key aware. */
      discoveryRegion?: string | undefined;
    };

export interface KmsConnection {
  keyring: KmsKeyring;
  /** Where requests go, for messages (never contains credentials). */
  describe: string;
  /** The limit on the command's KMS requests, for the Envelope's `keyringTimeoutMs`. */
  timeoutMs: number;
  /**
   * The error to report for `err`: the Envelope's KeyringTimeoutError becomes one that names the
   * KMS and the option; anything else is returned as it is.
   */
  explain(err: unknown): unknown;
  /** Aborts every KMS request still in flight and releases what the connection holds. */
  close(): Promise<void>;
}

/**
 * Access key the CLI signs with for `--endpoint` when the environment has no credentials. A fresh
 * object each time: the SDK annotates credential objects (`$source`), so they must not be frozen.
 */
export const dummyCredentials = () => ({ accessKeyId: 'KMSENVELOPELOCAL', secretAccessKey: 'kms-envelope-local' });

export function checkKeyIds(keys: readonly string[] | undefined, flag: string): string[] {
  const out: string[] = [];
  for (const k of keys ?? []) {
    if (kmsIdentifierKind(k) === undefined) {
      throw usage(`${flag} ${JSON.stringify(k)} is not a KMS key id, key ARN, alias name (alias/...) or alias ARN`);
    }
    if (out.includes(k)) throw usage(`${flag} ${JSON.stringify(k)} given twice`);
    out.push(k);
  }
  // A multi-Region key and its replica share key id and material: giving both leaves it open which
  // Region to call (AWS Encryption SDK specification, aws-kms-mrk-are-unique.md).
  try {
    assertMrksAreUnique(out, flag);
  } catch (err) {
    throw usage((err as Error).message);
  }
  return out;
}

/**
 * `decrypt --key` takes key ARNs only, as the library's KmsKeyring does by default and as the
 * AWS Encryption SDK specification requires (aws-kms-keyring.md, "OnDecrypt": an encrypted data
 * key is tried only with a configured identifier equal to the key ARN it names). An alias would
 * make the accepted key whatever the alias names when the command runs (UpdateAlias), and a bare
 * key id matches no key ARN; both are refused with the way to get the ARN.
 */
export function checkDecryptKeyIds(keyIds: readonly string[]): void {
  const k = keyIds.find((id) => parseKeyArn(id) === undefined);
  if (k === undefined) return;
  throw usage(
    `--key ${JSON.stringify(k)}: decrypt needs key ARNs (arn:aws:kms:REGION:ACCOUNT:key/ID), the key the message names; ` +
      `an alias can be re-pointed. Get it with \`aws kms describe-key --key-id ${k} --query KeyMetadata.Arn --output text\` ` +
      '(add --endpoint-url for the local KMS server), or leave out --key to decrypt with the key the message names ' +
      '(--allow-account ID limits that to your accounts)',
  );
}

/** Checks the flag combination before anything is loaded or opened. */
export function checkSelection(sel: KmsSelection): void {
  if (sel.local !== undefined && sel.endpoint !== undefined) throw usage('--local and --endpoint cannot be used together');
  if (sel.local !== undefined && sel.local.length === 0) throw usage('--local needs a data directory');
  if (sel.endpoint !== undefined) {
    let url: URL;
    try {
      url = new URL(sel.endpoint);
    } catch {
      throw usage('--endpoint must be an absolute URL, e.g. http://127.0.0.1:4599');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw usage('--endpoint must be an http: or https: URL');
    if (url.username !== '' || url.password !== '') throw usage('--endpoint must not contain credentials');
  }
  if (sel.region !== undefined && !/^[a-z0-9-]{1,64}$/.test(sel.region)) {
    throw usage('--region must be an AWS region name such as us-east-1');
  }
  kmsTimeoutMs(sel);
}

/** `--kms-timeout` in milliseconds (default 30 s). */
function kmsTimeoutMs(sel: KmsSelection): number {
  if (sel.kmsTimeout !== undefined && sel.local !== undefined) {
    throw usage('--kms-timeout bounds requests to a KMS endpoint; the embedded --local KMS makes none');
  }
  const seconds = intFlag(sel.kmsTimeout, '--kms-timeout', 1, MAX_KMS_TIMEOUT_SECONDS, 'seconds');
  return (seconds ?? DEFAULT_KMS_TIMEOUT_SECONDS) * 1000;
}

/**
 * Makes SDK clients whose every request carries `signal` (aborted by close()), and remembers them
 * for close(). The keyring accepts anything with an SDK-style `send` (keyrings/kms-client.ts).
 */
export function abortableClients(sdk: typeof import('@aws-sdk/client-kms'), signal: AbortSignal) {
  const made: KMSClient[] = [];
  return {
    make(config: KMSClientConfig): KMSClient {
      const client = new sdk.KMSClient(config);
      made.push(client);
      const send = (command: Parameters<KMSClient['send']>[0]) => client.send(command, { abortSignal: signal });
      return { send } as unknown as KMSClient;
    },
    destroy(): void {
      for (const c of made) c.destroy();
    },
  };
}

export async function connectKms(sel: KmsSelection, use: KeyringMode, env = process.env): Promise<KmsConnection> {
  checkSelection(sel);
  const timeoutMs = kmsTimeoutMs(sel);
  const connection = (keyring: KmsKeyring, describe: string, release: () => void | Promise<void>): KmsConnection => ({
    keyring,
    describe,
    timeoutMs,
    explain: (err) =>
      err instanceof KeyringTimeoutError
        ? new CliError(
            'ERR_KEYRING_TIMEOUT',
            `no answer from ${describe} within ${timeoutMs / 1000} s` +
              (sel.local === undefined ? ' (--kms-timeout SECONDS, default 30)' : ''),
            { cause: err },
          )
        : err,
    close: async () => release(),
  });
  const keyringOptions = (client?: KmsClient | unknown): KmsKeyringOptions => {
    let base: KmsKeyringOptions;
    if (use.mode === 'encrypt') base = { keyIds: use.keyIds };
    // decrypt --key: key ARNs only (checkDecryptKeyIds), matched MRK-aware: a single-Region key by
    // its exact ARN, a multi-Region key also when the message names a related replica; the
    // Decrypt goes to the Region of the --key ARN.
    else if (use.keyIds.length > 0) base = { keyIds: use.keyIds, mrkAware: true };
    else {
      base = { discovery: true };
      if (use.allowAccounts !== undefined) base.discoveryFilter = { accountIds: use.allowAccounts, partition: use.partition };
      if (use.discoveryRegion !== undefined) base.discoveryRegions = [use.discoveryRegion];
    }
    if (client !== undefined) base.client = client as KmsClient;
    return base;
  };

  if (sel.local !== undefined) {
    const kms = await openLocalKms(sel.local);
    const options = keyringOptions(kms.client());
    // Key ARNs (and discovery Regions) address their own Region of the embedded local KMS, which
    // serves every Region of its partition (multi-Region keys replicate between them).
    options.clientForRegion = (r: string) => kms.client({ region: r });
    let keyring: KmsKeyring;
    try {
      keyring = new KmsKeyring(options);
    } catch (err) {
      kms.close(); // release the data directory
      // `--region` outside the local KMS's partition: the Region's client cannot be made.
      const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
      const reason = cause instanceof Error && cause.cause instanceof Error ? cause.cause.message : String(cause);
      if (use.mode === 'decrypt' && use.discoveryRegion !== undefined) throw usage(`--region ${use.discoveryRegion}: ${reason}`);
      throw err;
    }
    return connection(keyring, `embedded local KMS in ${sel.local}`, () => kms.close());
  }

  // Every request of the SDK clients below carries this signal; close() aborts what is in flight.
  const inFlight = new AbortController();
  const release = (clients: { destroy(): void }) => () => {
    inFlight.abort();
    clients.destroy();
  };

  if (sel.endpoint !== undefined) {
    const region = sel.region ?? envRegion(env) ?? 'us-east-1';
    const clients = abortableClients(await import('@aws-sdk/client-kms'), inFlight.signal);
    const credentials = hasCredentialHints(env, sel) ? {} : { credentials: dummyCredentials() };
    const endpoint = sel.endpoint;
    const options = keyringOptions(clients.make({ region, endpoint, ...credentials }));
    // Key ARNs go to a client signing for their own Region: a multi-Region endpoint (the local KMS
    // server, LocalStack) serves the Region named in the request's SigV4 credential scope.
    options.clientForRegion = (r: string) => clients.make({ region: r, endpoint, ...credentials });
    return connection(new KmsKeyring(options), `KMS at ${sel.endpoint}`, release(clients));
  }

  // AWS KMS proper.
  if (sel.profile !== undefined) env.AWS_PROFILE = sel.profile; // read by the SDK's default providers
  checkProfileExists(env, sel.profile !== undefined ? '--profile' : 'AWS_PROFILE');
  if (!hasCredentialHints(env, sel) && envRegion(env) === undefined && sel.region === undefined) {
    throw new CliError(
      'ERR_NO_KMS',
      'no KMS configured: use --local DIR (embedded local KMS), --endpoint URL (a KMS-compatible server, e.g. ' +
        '`kms-envelope local-kms`), or set AWS_REGION and AWS credentials (or AWS_PROFILE) to use AWS KMS',
    );
  }
  const region = sel.region ?? envRegion(env) ?? configFileRegion(env);
  const needsRegion = use.keyIds.filter((k) => parseKmsArn(k) === undefined);
  if (region === undefined && needsRegion.length > 0) {
    throw new CliError(
      'ERR_NO_KMS',
      `no AWS region for ${JSON.stringify(needsRegion[0])}: set AWS_REGION, pass --region, or use a key ARN (it names its region)`,
    );
  }
  const clients = abortableClients(await import('@aws-sdk/client-kms'), inFlight.signal);
  const options = keyringOptions(region !== undefined ? clients.make({ region }) : undefined);
  // Key ARNs (and, in discovery, the ARNs named by the message) go to a client in their own region.
  options.clientForRegion = (r: string) => clients.make({ region: r });
  // Without a default region only ARNs are configured (checked above): no default client is needed.
  const describe = options.client === undefined ? 'AWS KMS (regions from key ARNs)' : `AWS KMS in ${region}`;
  return connection(new KmsKeyring(options), describe, release(clients));
}

export function envRegion(env: NodeJS.ProcessEnv): string | undefined {
  return nonEmpty(env.AWS_REGION) ?? nonEmpty(env.AWS_DEFAULT_REGION);
}

function nonEmpty(v: string | undefined): string | undefined {
  return v !== undefined && v.length > 0 ? v : undefined;
}

/** Anything from which the AWS SDK's default chain could produce credentials, short of probing the network. */
export function hasCredentialHints(env: NodeJS.ProcessEnv, sel: KmsSelection): boolean {
  if (sel.profile !== undefined) return true;
  const vars = [
    'AWS_ACCESS_KEY_ID',
    'AWS_PROFILE',
    'AWS_WEB_IDENTITY_TOKEN_FILE',
    'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
    'AWS_CONTAINER_CREDENTIALS_FULL_URI',
    'AWS_ROLE_ARN',
  ];
  if (vars.some((v) => nonEmpty(env[v]) !== undefined)) return true;
  return existsSync(credentialsFile(env)) || existsSync(configFile(env));
}

function configFile(env: NodeJS.ProcessEnv): string {
  return nonEmpty(env.AWS_CONFIG_FILE) ?? join(homedir(), '.aws', 'config');
}

function credentialsFile(env: NodeJS.ProcessEnv): string {
  return nonEmpty(env.AWS_SHARED_CREDENTIALS_FILE) ?? join(homedir(), '.aws', 'credentials');
}

/**
 * The region of the active profile in the AWS config file, if it sets one. Only a presence check:
 * the SDK reads the file itself; this just tells us whether it will find a region.
 */
function configFileRegion(env: NodeJS.ProcessEnv): string | undefined {
  let text: string;
  try {
    text = readFileSync(configFile(env), 'utf8');
  } catch {
    return undefined;
  }
  const profile = nonEmpty(env.AWS_PROFILE) ?? 'default';
  const section = profile === 'default' ? /^\s*\[(?:profile\s+)?default\]\s*$/ : new RegExp(`^\\s*\\[profile\\s+${escapeRe(profile)}\\]\\s*$`);
  let inSection = false;
  for (const line of text.split(/\r?\n/)) {
    if (/^\s*\[/.test(line)) {
      inSection = section.test(line);
      continue;
    }
    const m = inSection ? /^\s*region\s*=\s*(\S+)\s*$/.exec(line) : null;
    if (m) return m[1];
  }
  return undefined;
}

/**
 * A named profile (--profile or AWS_PROFILE) must be a section of the AWS config file
 * (`[profile NAME]`, or `[NAME]`, which the SDK also reads there) or of the shared credentials file
 * (`[NAME]`). Otherwise the SDK's own failure would be a missing region or missing credentials,
 * which sends the user looking in the wrong place. `default` is exempt: the SDK works without it.
 */
export function checkProfileExists(env: NodeJS.ProcessEnv, source: '--profile' | 'AWS_PROFILE'): void {
  const profile = nonEmpty(env.AWS_PROFILE);
  if (profile === undefined || profile === 'default') return;
  const config = configFile(env);
  const credentials = credentialsFile(env);
  const has = (file: string, sections: RegExp): boolean => {
    try {
      return readFileSync(file, 'utf8')
        .split(/\r?\n/)
        .some((line) => sections.test(line));
    } catch {
      return false;
    }
  };
  const name = escapeRe(profile);
  if (has(config, new RegExp(`^\\s*\\[\\s*(?:profile\\s+)?${name}\\s*\\]\\s*$`))) return;
  if (has(credentials, new RegExp(`^\\s*\\[\\s*${name}\\s*\\]\\s*$`))) return;
  const where = (file: string, variable: string) =>
    `${file}${nonEmpty(env[variable]) !== undefined ? ` (${variable})` : ''}${existsSync(file) ? '' : ' (no such file)'}`;
  throw new CliError(
    'ERR_NO_KMS',
    `${source} ${JSON.stringify(profile)}: profile not found in the AWS config file ${where(config, 'AWS_CONFIG_FILE')} ` +
      `or the shared credentials file ${where(credentials, 'AWS_SHARED_CREDENTIALS_FILE')}; ` +
      '`aws configure list-profiles` lists the profiles there',
  );
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The embedded local KMS of `--local DIR`; failing to open the data directory (locked by another
 * kms-envelope process, unreadable, wrong root key) is ERR_IO naming it.
 */
export async function openLocalKms(dir: string): Promise<import('../local-kms/index.js').LocalKms> {
  const { LocalKms } = await import('../local-kms/index.js');
  try {
    return new LocalKms({ dataDir: dir });
  } catch (err) {
    // Opening the data directory: locked by a running server, unreadable, wrong root key.
    const msg = err instanceof Error ? err.message : String(err);
    // dir-lock.ts: "data directory DIR is locked by running process PID". The holder may be a
    // `local-kms` server or another encrypt/decrypt with --local: both are kms-envelope processes.
    const locked = /is locked by running process (\d+)/.exec(msg);
    if (locked !== null) {
      throw new CliError(
        'ERR_IO',
        `--local ${JSON.stringify(dir)}: another kms-envelope process (pid ${locked[1]}) holds it (a data directory has ` +
          'one user at a time): if it is a `kms-envelope local-kms` server, use --endpoint with its URL; if it is ' +
          'another encrypt or decrypt with --local, wait for it to finish',
        { cause: err },
      );
    }
    throw new CliError('ERR_IO', `--local ${dir}: ${msg}`, { cause: err });
  }
}
