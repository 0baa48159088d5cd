/**
 * The hierarchical keyring on the command line (issue 14):
 *
 * - `kms-envelope branch-key create|version|describe`: the branch key store's CreateKey, VersionKey
 *   and a description of the ACTIVE version (version, create-time, kms-arn, custom context; never
 *   key material);
 * - `encrypt|decrypt --branch-key ID`: the HierarchicalKeyring over the same store instead of the
 *   KMS keyring (encrypt.ts, decrypt.ts call openBranchKeyStore / hierarchicalKeyring here).
 *
 * Store selection: `--branch-key-store DIR` (DirectoryBranchKeyStorage, embedded) or
 * `--branch-key-table NAME` (DynamoDbBranchKeyStorage; the AWS environment, or
 * `--dynamodb-endpoint URL` for a DynamoDB-compatible server), always with
 * `--logical-key-store-name NAME` (bound into every branch key's KMS encryption context: the same
 * name the ESDK's key store uses for the same items). KMS is selected as for encrypt/decrypt
 * (kms.ts: --local DIR, --endpoint URL, or AWS KMS); branch keys need GenerateDataKeyWithoutPlaintext,
 * ReEncrypt and Decrypt, which all three provide.
 *
 * `--key ARN` is the KMS key that wraps branch keys: required for create and version (new items
 * are encrypted under it), optional elsewhere: with it, only items naming that key are used
 * (the store's `{ kmsKeyArn }`); without it, the store decrypts with the key ARN each item names
 * (`'discovery'`: KMS still authenticates every item under its full encryption context).
 *
 * Time limit: the same `--kms-timeout` as encrypt/decrypt, here over one whole store operation
 * (its KMS and DynamoDB requests together); on expiry every request in flight is aborted.
 */
import { BranchKeyStoreError } from '../errors.js';
import { HierarchicalKeyring } from '../keyrings/hierarchy/keyring.js';
import { BranchKeyStore } from '../keyrings/hierarchy/store.js';
import { DirectoryBranchKeyStorage } from '../keyrings/hierarchy/directory-storage.js';
import type { BranchKeyStorage } from '../keyrings/hierarchy/storage.js';
import { checkItem, CREATE_TIME, KMS_ARN } from '../keyrings/hierarchy/items.js';
import { parseKeyArn } from '../keyrings/kms-arn.js';
import { intFlag, parse, parseContext } from './args.js';
import { asUsage, CliError, usage } from './errors.js';
import { BRANCH_KEY_HELP } from './help.js';
import type { Io } from './io.js';
import { printableValue } from './printable.js';
import {
  abortableClients,
  checkProfileExists,
  checkSelection,
  dummyCredentials,
  envRegion,
  hasCredentialHints,
  MAX_KMS_TIMEOUT_SECONDS,
  DEFAULT_KMS_TIMEOUT_SECONDS,
  openLocalKms,
  type KmsSelection,
} from './kms.js';

/** The options naming a branch key store, shared by `branch-key` and encrypt/decrypt `--branch-key`. */
export const STORE_OPTIONS = {
  'branch-key-store': { type: 'string' },
  'branch-key-table': { type: 'string' },
  'dynamodb-endpoint': { type: 'string' },
  'logical-key-store-name': { type: 'string' },
} as const;

/**
 * `--cache-ttl` default, in seconds: the README's `cache: { maxAgeMs: 300_000 }`. One CLI run
 * encrypts or decrypts one message, so the cache matters little here; the value bounds how long a
 * revoked grant would still be honoured by a long streaming run's already-loaded branch key.
 */
export const DEFAULT_CACHE_TTL_SECONDS = 300;

export interface StoreFlags {
  'branch-key-store'?: string | undefined;
  'branch-key-table'?: string | undefined;
  'dynamodb-endpoint'?: string | undefined;
  'logical-key-store-name'?: string | undefined;
}

export interface StoreSelection {
  storage: { kind: 'dir'; dir: string } | { kind: 'table'; table: string; endpoint: string | undefined };
  logicalKeyStoreName: string;
  /** The KMS key ARN (`--key`), or undefined for discovery. */
  kmsKeyArn: string | undefined;
}

/** Checks the store flags before anything is opened. `requireKey`: create and version need `--key ARN`. */
export function checkStoreFlags(v: StoreFlags, keys: readonly string[] | undefined, requireKey: boolean, what: string): StoreSelection {
  const dir = v['branch-key-store'];
  const table = v['branch-key-table'];
  if (dir !== undefined && table !== undefined) throw usage('--branch-key-store and --branch-key-table cannot be used together');
  if (dir === undefined && table === undefined) {
    throw usage(`${what} needs a branch key store: --branch-key-store DIR (a directory) or --branch-key-table NAME (DynamoDB)`);
  }
  if (dir !== undefined && dir.length === 0) throw usage('--branch-key-store needs a directory');
  const endpoint = v['dynamodb-endpoint'];
  if (endpoint !== undefined) {
    if (table === undefined) throw usage('--dynamodb-endpoint only applies with --branch-key-table');
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      throw usage('--dynamodb-endpoint must be an absolute URL, e.g. http://127.0.0.1:8000');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw usage('--dynamodb-endpoint must be an http: or https: URL');
    if (url.username !== '' || url.password !== '') throw usage('--dynamodb-endpoint must not contain credentials');
  }
  if (table !== undefined && !/^[a-zA-Z0-9_.-]{3,255}$/.test(table)) {
    throw usage(`--branch-key-table must be a DynamoDB table name (3-255 characters of a-z, A-Z, 0-9, _ . -), got ${JSON.stringify(table)}`);
  }
  const logical = v['logical-key-store-name'];
  if (logical === undefined || logical.length === 0) {
    throw usage(
      '--logical-key-store-name NAME is required with a branch key store (bound into every branch key; the same name every reader of these keys uses)',
    );
  }
  if ((keys?.length ?? 0) > 1) throw usage('--key is given once with a branch key store: the KMS key ARN that wraps its branch keys');
  const key = keys?.[0];
  if (key !== undefined && parseKeyArn(key) === undefined) {
    throw usage(`--key ${JSON.stringify(key)}: a branch key store needs a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), not an alias or key id`);
  }
  if (requireKey && key === undefined) throw usage(`${what} needs --key KEY_ARN, the KMS key that wraps the branch keys`);
  return {
    storage: dir !== undefined ? { kind: 'dir', dir } : { kind: 'table', table: table!, endpoint },
    logicalKeyStoreName: logical,
    kmsKeyArn: key,
  };
}

/** `--cache-ttl SECONDS` in milliseconds, 1 .. 86400 (the keyring's cache.maxAgeMs limit). */
export function cacheTtlMs(value: string | undefined): number {
  return (intFlag(value, '--cache-ttl', 1, 86_400, 'seconds') ?? DEFAULT_CACHE_TTL_SECONDS) * 1000;
}

export interface OpenStore {
  store: BranchKeyStore;
  /** The storage under the store (describe reads the ACTIVE item's plain attributes from it). */
  storage: BranchKeyStorage;
  /** Where KMS requests go, for messages. */
  describe: string;
  timeoutMs: number;
  /** Runs one store operation within --kms-timeout (aborting what is in flight when it expires). */
  bounded<T>(op: () => Promise<T>): Promise<T>;
  explain(err: unknown): unknown;
  close(): Promise<void>;
}

/** Opens the KMS client and the storage the selection names. */
export async function openBranchKeyStore(sel: KmsSelection, store: StoreSelection, env: NodeJS.ProcessEnv): Promise<OpenStore> {
  checkSelection(sel);
  if (sel.kmsTimeout !== undefined && sel.local !== undefined && store.storage.kind === 'dir') {
    throw usage('--kms-timeout bounds requests to a KMS endpoint; the embedded --local KMS makes none');
  }
  const timeoutMs = (intFlag(sel.kmsTimeout, '--kms-timeout', 1, MAX_KMS_TIMEOUT_SECONDS, 'seconds') ?? DEFAULT_KMS_TIMEOUT_SECONDS) * 1000;
  const arnRegion = store.kmsKeyArn !== undefined ? parseKeyArn(store.kmsKeyArn)?.region : undefined;
  const inFlight = new AbortController();
  const releases: Array<() => void> = [];
  const releaseAll = () => {
    inFlight.abort();
    for (const r of releases.splice(0).reverse()) r();
  };
  try {
    let kmsClient: unknown;
    let describe: string;
    if (sel.local !== undefined) {
      const kms = await openLocalKms(sel.local);
      releases.push(() => kms.close());
      kmsClient = kms.client(arnRegion !== undefined ? { region: arnRegion } : undefined);
      describe = `embedded local KMS in ${sel.local}`;
    } else {
      const clients = abortableClients(await import('@aws-sdk/client-kms'), inFlight.signal);
      releases.push(() => clients.destroy());
      if (sel.endpoint !== undefined) {
        const region = arnRegion ?? sel.region ?? envRegion(env) ?? 'us-east-1';
        const credentials = hasCredentialHints(env, sel) ? {} : { credentials: dummyCredentials() };
        kmsClient = clients.make({ region, endpoint: sel.endpoint, ...credentials });
        describe = `KMS at ${sel.endpoint}`;
      } else {
        if (sel.profile !== undefined) env.AWS_PROFILE = sel.profile;
        checkProfileExists(env, sel.profile !== undefined ? '--profile' : 'AWS_PROFILE');
        const region = arnRegion ?? sel.region ?? envRegion(env);
        if (!hasCredentialHints(env, sel) && region === undefined) {
          throw new CliError(
            'ERR_NO_KMS',
            'no KMS configured: use --local DIR (embedded local KMS), --endpoint URL (a KMS-compatible server), ' +
              'or set AWS_REGION and AWS credentials (or AWS_PROFILE) to use AWS KMS',
          );
        }
        kmsClient = clients.make(region !== undefined ? { region } : {});
        describe = region !== undefined ? `AWS KMS in ${region}` : 'AWS KMS';
      }
    }

    let storage: BranchKeyStorage;
    if (store.storage.kind === 'dir') {
      storage = asUsage(() => new DirectoryBranchKeyStorage({ dir: (store.storage as { dir: string }).dir }));
    } else {
      const { table, endpoint } = store.storage;
      let ddb: typeof import('@aws-sdk/client-dynamodb');
      try {
        ddb = await import('@aws-sdk/client-dynamodb');
      } catch (err) {
        throw usage('--branch-key-table needs the package @aws-sdk/client-dynamodb: npm install @aws-sdk/client-dynamodb');
      }
      const region = sel.region ?? envRegion(env) ?? (endpoint !== undefined ? 'us-east-1' : arnRegion);
      if (region === undefined) throw usage('--branch-key-table needs an AWS region: set AWS_REGION or pass --region');
      const credentials = endpoint !== undefined && !hasCredentialHints(env, sel) ? { credentials: dummyCredentials() } : {};
      const client = new ddb.DynamoDBClient({ region, ...(endpoint !== undefined ? { endpoint } : {}), ...credentials });
      releases.push(() => client.destroy());
      const send = (command: Parameters<typeof client.send>[0]) => client.send(command, { abortSignal: inFlight.signal });
      const { DynamoDbBranchKeyStorage } = await import('../branch-key-store-dynamodb/index.js');
      storage = asUsage(() => new DynamoDbBranchKeyStorage({ client: { send } as unknown as typeof client, tableName: table }));
    }

    const bkStore = asUsage(
      () =>
        new BranchKeyStore({
          storage,
          logicalKeyStoreName: store.logicalKeyStoreName,
          kmsConfiguration: store.kmsKeyArn !== undefined ? { kmsKeyArn: store.kmsKeyArn } : 'discovery',
          kmsClient,
        }),
    );
    const explain = (err: unknown): unknown => {
      if (err instanceof TimeoutSignal) {
        return new CliError(
          'ERR_KEYRING_TIMEOUT',
          `no answer from ${describe} or the branch key storage within ${timeoutMs / 1000} s (--kms-timeout SECONDS, default 30)`,
        );
      }
      return err;
    };
    return {
      store: bkStore,
      storage,
      describe,
      timeoutMs,
      bounded: async <T>(op: () => Promise<T>): Promise<T> => {
        let timer: NodeJS.Timeout | undefined;
        const expired = new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            inFlight.abort();
            reject(new TimeoutSignal());
          }, timeoutMs);
        });
        try {
          return await Promise.race([op(), expired]);
        } finally {
          clearTimeout(timer);
        }
      },
      explain,
      close: async () => releaseAll(),
    };
  } catch (err) {
    releaseAll();
    throw err;
  }
}

class TimeoutSignal extends Error {}

/** The HierarchicalKeyring over an open store, for encrypt/decrypt `--branch-key ID`. */
export function hierarchicalKeyring(open: OpenStore, branchKeyId: string, cacheTtl: number): HierarchicalKeyring {
  return asUsage(() => new HierarchicalKeyring({ keyStore: open.store, branchKeyId, cache: { maxAgeMs: cacheTtl, maxEntries: 16 } }));
}

export const BRANCH_KEY_OPTIONS = {
  ...STORE_OPTIONS,
  key: { type: 'string', short: 'k', multiple: true },
  'branch-key': { type: 'string' },
  'branch-key-id': { type: 'string' },
  context: { type: 'string', short: 'c', multiple: true },
  local: { type: 'string' },
  endpoint: { type: 'string' },
  region: { type: 'string' },
  profile: { type: 'string' },
  'kms-timeout': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** `kms-envelope branch-key create|version|describe`. */
export async function branchKeyCommand(argv: readonly string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '-h' || sub === '--help' || sub === 'help') {
    (sub === undefined ? io.stderr : io.stdout).write(BRANCH_KEY_HELP);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'create' && sub !== 'version' && sub !== 'describe') {
    throw usage(`unknown branch-key command ${JSON.stringify(sub)}: create, version or describe`);
  }
  const { values: v } = parse(rest, BRANCH_KEY_OPTIONS);
  if (v.help) {
    io.stdout.write(BRANCH_KEY_HELP);
    return 0;
  }
  const what = `branch-key ${sub}`;
  if (sub === 'create') {
    if (v['branch-key'] !== undefined) throw usage('branch-key create names a new key with --branch-key-id ID (default: a random UUID), not --branch-key');
  } else {
    if (v['branch-key-id'] !== undefined) throw usage(`${what} takes --branch-key ID (--branch-key-id is for create)`);
    if (v['branch-key'] === undefined || v['branch-key'].length === 0) throw usage(`${what} needs --branch-key ID`);
    if (v.context !== undefined) throw usage(`--context only applies to branch-key create`);
  }
  const context = parseContext(v.context);
  if (sub === 'create' && v['branch-key-id'] !== undefined && Object.keys(context).length === 0) {
    throw usage('--branch-key-id needs at least one --context k=v (the specification requires a context for a chosen id; it is stored with every version)');
  }
  if (sub === 'create' && v['branch-key-id'] !== undefined && v['branch-key-id'].length === 0) throw usage('--branch-key-id must not be empty');
  const storeSel = checkStoreFlags(v, v.key, sub !== 'describe', what);
  const selection = { local: v.local, endpoint: v.endpoint, region: v.region, profile: v.profile, kmsTimeout: v['kms-timeout'] };
  checkSelection(selection);

  const open = await openBranchKeyStore(selection, storeSel, io.env);
  try {
    if (sub === 'create') {
      const input = v['branch-key-id'] !== undefined ? { branchKeyId: v['branch-key-id'], encryptionContext: context } : {};
      const out = await open.bounded(() => open.store.createKey(asUsage(() => input)));
      io.stdout.write(`branch-key-id: ${out.branchKeyId}\nversion: ${out.branchKeyVersion}\n`);
    } else if (sub === 'version') {
      const out = await open.bounded(() => open.store.versionKey(v['branch-key']!));
      io.stdout.write(`branch-key-id: ${out.branchKeyId}\nversion: ${out.branchKeyVersion}\n`);
    } else {
      io.stdout.write(await open.bounded(() => describeBranchKey(open, v['branch-key']!)));
    }
  } catch (err) {
    throw open.explain(err);
  } finally {
    await open.close();
  }
  return 0;
}

/**
 * The ACTIVE version of a branch key: first authenticated with KMS (GetActiveBranchKey: one
 * Decrypt under the item's full encryption context; the plaintext key is zeroed at once), then its
 * plain attributes read from the storage. A rotation between the two reads is retried once.
 */
async function describeBranchKey(open: OpenStore, branchKeyId: string): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    const materials = await open.store.getActiveBranchKey(branchKeyId);
    materials.branchKey.fill(0);
    const raw = await open.storage.getItem(branchKeyId, 'branch:ACTIVE');
    if (raw === undefined) throw new BranchKeyStoreError('NOT_FOUND', `no branch:ACTIVE item for branch key ${JSON.stringify(branchKeyId)}`);
    const { item } = checkItem(raw, { branchKeyId, type: 'branch:ACTIVE' }, open.store.logicalKeyStoreName);
    const version = (item as unknown as Record<string, string>).version?.replace(/^branch:version:/, '');
    if (version !== materials.branchKeyVersion) {
      if (attempt === 0) continue;
      throw new BranchKeyStoreError('ACTIVE_CHANGED', `branch key ${JSON.stringify(branchKeyId)} was rotated while it was described: try again`);
    }
    const lines = [
      `branch-key-id: ${printableValue(branchKeyId)}`,
      `version: ${printableValue(materials.branchKeyVersion)}`,
      `create-time: ${printableValue(String((item as unknown as Record<string, string>)[CREATE_TIME]))}`,
      `kms-arn: ${printableValue(String((item as unknown as Record<string, string>)[KMS_ARN]))}`,
      `logical-key-store-name: ${printableValue(open.store.logicalKeyStoreName)}`,
      ...Object.entries(materials.encryptionContext).map(([k, val]) => `context: ${printableValue(k)}=${printableValue(val)}`),
    ];
    return `${lines.join('\n')}\n`;
  }
}
