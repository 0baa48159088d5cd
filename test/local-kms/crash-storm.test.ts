/**
 * Crash safety of the local KMS data directory, with the server run as users run it
 * (`node dist/cli/main.js local-kms --port 0 --data-dir DIR`, a child process):
 *
 * A storm of concurrent CreateKey, CreateAlias, the full key-import flow (CreateKey Origin
 * EXTERNAL, GetParametersForImport, material wrapped here with node:crypto under each of the four
 * wrapping algorithms, ImportKeyMaterial), Encrypt and GenerateDataKey; every ACKNOWLEDGED result
 * is recorded; the server gets SIGKILL at a random moment in the middle of the storm; it restarts
 * on the same directory and must show every acknowledged key (in the right state), alias and
 * imported key (Enabled, decrypting, and still bound to the same material), and decrypt every
 * ciphertext made before the crash. Three kill/restart rounds on one directory, to catch torn or
 * half-applied writes; after each kill every key and alias file must still parse.
 *
 * Finally the directory is searched, byte for byte and recursively, for the secrets the test
 * handled: imported key material, AES keys used to wrap it, GenerateDataKey plaintexts and
 * Encrypt plaintexts, raw and as hex, base64 and base64url. None may appear.
 *
 * CRASH_SEED=<n> replays a run's kill points and choices; CRASH_ROUNDS=<n> runs more rounds.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { constants, createCipheriv, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DeleteAliasCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GetParametersForImportCommand,
  ImportKeyMaterialCommand,
  KMSClient,
  ListAliasesCommand,
  ListKeysCommand,
  UpdateAliasCommand,
  type AlgorithmSpec,
} from '@aws-sdk/client-kms';
import { killHard, spawnLocalKms, type LocalKmsChild } from './fixtures/spawn-local-kms.js';
import { tempDir } from './helpers.js';
import { prng } from '../support/prng.js';

const ROUNDS = Number(process.env.CRASH_ROUNDS ?? 3);
const WORKERS = 12;
const WRAPPING: AlgorithmSpec[] = ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256', 'RSA_AES_KEY_WRAP_SHA_1', 'RSA_AES_KEY_WRAP_SHA_256'];

/** What the server acknowledged (answered with 200) before it was killed. */
interface Acknowledged {
  /** key id -> the states the key may be in after a restart */
  keys: Map<string, { origin: 'AWS_KMS' | 'EXTERNAL'; states: string[] }>;
  /** alias name -> the targets it may have after a restart (null: may be absent) */
  aliases: Map<string, (string | null)[]>;
  /** key id -> imported material (ImportKeyMaterial acknowledged) */
  imported: Map<string, Buffer>;
  ciphertexts: { blob: Uint8Array; plaintext: Buffer; context: Record<string, string>; keyId: string }[];
}

const client = (url: string) => new KMSClient({ endpoint: url, region: 'us-east-1', credentials: { accessKeyId: 'AKIDCRASH', secretAccessKey: 'x' }, maxAttempts: 1 });

/**
 * Wraps key material for ImportKeyMaterial (AWS KMS Developer Guide, "Encrypt key material"):
 * RSAES_OAEP_*: RSA-OAEP with the named hash (MGF1 with the same hash);
 * RSA_AES_KEY_WRAP_*: a fresh AES-256 key, RSA-OAEP encrypted, followed by the material under
 * AES key wrap with padding (RFC 5649).
 */
function wrapMaterial(algorithm: string, publicKeyDer: Uint8Array, material: Buffer, secrets: Buffer[]): Buffer {
  const key = createPublicKey({ key: Buffer.from(publicKeyDer), format: 'der', type: 'spki' });
  const oaepHash = algorithm.endsWith('SHA_1') ? 'sha1' : 'sha256';
  const oaep = (data: Buffer) => publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash }, data);
  if (algorithm.startsWith('RSAES_OAEP')) return oaep(material);
  const aesKey = randomBytes(32);
  secrets.push(aesKey);
  const kwp = createCipheriv('id-aes256-wrap-pad', aesKey, Buffer.from('a65959a6', 'hex'));
  return Buffer.concat([oaep(aesKey), kwp.update(material), kwp.final()]);
}

/** A network failure from the kill (no HTTP answer), as opposed to an AWS error the server sent. */
const cutOff = (e: unknown) => (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === undefined;

async function storm(url: string, ack: Acknowledged, secrets: Buffer[], round: number, rand: () => number, killDelayMs: number) {
  const kms = client(url);
  let stopped = false;
  const unexpected: string[] = [];
  let cut = 0;
  let acknowledgedCalls = 0;
  let importsThisRound = 0;
  let aliasesThisRound = 0;
  const call = async <T>(p: Promise<T>): Promise<T> => {
    const out = await p;
    acknowledgedCalls++;
    return out;
  };

  async function worker(w: number): Promise<void> {
    let previousKey: string | undefined;
    for (let i = 0; !stopped; i++) {
      const tag = `r${round}-w${w}-${i}`;
      try {
        if (rand() < 0.35) {
          // The import flow, as a user runs it.
          const created = await call(kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL', Description: tag })));
          const keyId = created.KeyMetadata!.KeyId!;
          ack.keys.set(keyId, { origin: 'EXTERNAL', states: ['PendingImport'] });
          const algorithm = WRAPPING[Math.floor(rand() * WRAPPING.length)]!;
          const params = await call(kms.send(new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: algorithm, WrappingKeySpec: 'RSA_2048' })));
          const material = randomBytes(32);
          secrets.push(material);
          const wrapped = wrapMaterial(algorithm, params.PublicKey!, material, secrets);
          // Sent: from here the key may come back either way, until the answer arrives.
          ack.keys.set(keyId, { origin: 'EXTERNAL', states: ['PendingImport', 'Enabled'] });
          await call(
            kms.send(new ImportKeyMaterialCommand({ KeyId: keyId, ImportToken: params.ImportToken, EncryptedKeyMaterial: wrapped, ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' })),
          );
          ack.keys.set(keyId, { origin: 'EXTERNAL', states: ['Enabled'] });
          ack.imported.set(keyId, material);
          importsThisRound++;
          const alias = `alias/imported-${tag}`;
          await call(kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: keyId })));
          ack.aliases.set(alias, [keyId]);
          const plaintext = randomBytes(48);
          secrets.push(plaintext);
          const context = { tag };
          const enc = await call(kms.send(new EncryptCommand({ KeyId: alias, Plaintext: plaintext, EncryptionContext: context })));
          ack.ciphertexts.push({ blob: enc.CiphertextBlob!, plaintext, context, keyId });
        } else {
          const created = await call(kms.send(new CreateKeyCommand({ Description: tag, Tags: [{ TagKey: 'round', TagValue: String(round) }] })));
          const keyId = created.KeyMetadata!.KeyId!;
          ack.keys.set(keyId, { origin: 'AWS_KMS', states: ['Enabled'] });
          const alias = `alias/crash-${tag}`;
          await call(kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: keyId })));
          ack.aliases.set(alias, [keyId]);
          aliasesThisRound++;
          const plaintext = randomBytes(32 + Math.floor(rand() * 64));
          secrets.push(plaintext);
          const context = { tag, purpose: 'crash' };
          const enc = await call(kms.send(new EncryptCommand({ KeyId: alias, Plaintext: plaintext, EncryptionContext: context })));
          ack.ciphertexts.push({ blob: enc.CiphertextBlob!, plaintext, context, keyId });
          const dk = await call(kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' })));
          const dataKey = Buffer.from(dk.Plaintext!);
          secrets.push(dataKey);
          ack.ciphertexts.push({ blob: dk.CiphertextBlob!, plaintext: dataKey, context: {}, keyId });
          // Some later changes of state, each ambiguous while in flight and fixed once acknowledged.
          const change = rand();
          if (change < 0.15 && previousKey !== undefined) {
            ack.aliases.set(alias, [keyId, previousKey]);
            await call(kms.send(new UpdateAliasCommand({ AliasName: alias, TargetKeyId: previousKey })));
            ack.aliases.set(alias, [previousKey]);
          } else if (change < 0.25) {
            ack.aliases.set(alias, [keyId, null]);
            await call(kms.send(new DeleteAliasCommand({ AliasName: alias })));
            ack.aliases.set(alias, [null]);
          } else if (change < 0.35) {
            ack.keys.set(keyId, { origin: 'AWS_KMS', states: ['Enabled', 'Disabled'] });
            await call(kms.send(new DisableKeyCommand({ KeyId: keyId })));
            ack.keys.set(keyId, { origin: 'AWS_KMS', states: ['Disabled'] });
          }
          previousKey = keyId;
        }
      } catch (e) {
        if (stopped && cutOff(e)) cut++;
        else unexpected.push(`${tag}: ${(e as Error).name}: ${(e as Error).message}`);
        return;
      }
    }
  }

  const workers = Array.from({ length: WORKERS }, (_, w) => worker(w));
  return {
    /**
     * Kills the server in the middle of the storm: once this round has at least one acknowledged
     * import and a few aliases (RSA key generation for GetParametersForImport paces the imports),
     * plus a random delay; then waits for every worker to notice.
     */
    async killMidway(child: LocalKmsChild) {
      for (let waited = 0; importsThisRound < 1 || aliasesThisRound < 4; waited += 10) {
        if (waited > 30_000 || unexpected.length > 0) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      await new Promise((r) => setTimeout(r, killDelayMs));
      stopped = true;
      child.proc.kill('SIGKILL');
      await Promise.all(workers);
      await child.exited;
      kms.destroy();
      return { unexpected, cut, acknowledgedCalls };
    },
  };
}

/** Every key and alias file must be complete JSON after a crash (temporary files aside). */
let tmpFilesSeen = 0;

function assertNoTornFiles(dataDir: string): number {
  let files = 0;
  const keysDir = join(dataDir, 'keys');
  tmpFilesSeen += readdirSync(dataDir).filter((n) => n.endsWith('.tmp')).length;
  for (const name of readdirSync(keysDir)) {
    if (name.endsWith('.tmp')) {
      tmpFilesSeen++; // a write the kill interrupted before its rename; the restart removes it
      continue;
    }
    expect(() => JSON.parse(readFileSync(join(keysDir, name), 'utf8')), name).not.toThrow();
    files++;
  }
  const aliases = readdirSync(dataDir).filter((n) => n === 'aliases.json');
  for (const name of aliases) expect(() => JSON.parse(readFileSync(join(dataDir, name), 'utf8')), name).not.toThrow();
  return files;
}

async function listAll<T>(page: (marker?: string) => Promise<{ items: T[]; next?: string }>): Promise<T[]> {
  const out: T[] = [];
  let marker: string | undefined;
  do {
    const p = await page(marker);
    out.push(...p.items);
    marker = p.next;
  } while (marker);
  return out;
}

async function verify(url: string, ack: Acknowledged, seed: number): Promise<void> {
  const kms = client(url);
  try {
    const keyIds = new Set(
      await listAll(async (Marker) => {
        const r = await kms.send(new ListKeysCommand({ Limit: 1000, ...(Marker ? { Marker } : {}) }));
        return { items: r.Keys!.map((k) => k.KeyId!), ...(r.Truncated ? { next: r.NextMarker! } : {}) };
      }),
    );
    for (const [keyId, want] of ack.keys) {
      expect(keyIds.has(keyId), `seed ${seed}: acknowledged key ${keyId} is gone`).toBe(true);
      const md = (await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!;
      expect(md.Origin).toBe(want.origin);
      expect(want.states, `seed ${seed}: key ${keyId} is ${md.KeyState}`).toContain(md.KeyState);
    }
    const aliases = new Map(
      (
        await listAll(async (Marker) => {
          const r = await kms.send(new ListAliasesCommand({ Limit: 100, ...(Marker ? { Marker } : {}) }));
          return { items: r.Aliases!, ...(r.Truncated ? { next: r.NextMarker! } : {}) };
        })
      ).map((a) => [a.AliasName!, a.TargetKeyId!]),
    );
    for (const [name, targets] of ack.aliases) expect(targets, `seed ${seed}: alias ${name}`).toContain(aliases.get(name) ?? null);
    // Nothing half-applied either: every alias that exists names a key that exists.
    for (const [name, target] of aliases) expect(keyIds.has(target), `seed ${seed}: alias ${name} dangles`).toBe(true);
    const states = new Map<string, string>();
    for (const c of ack.ciphertexts) {
      if (!states.has(c.keyId)) states.set(c.keyId, (await kms.send(new DescribeKeyCommand({ KeyId: c.keyId }))).KeyMetadata!.KeyState!);
      if (states.get(c.keyId) === 'Disabled') {
        const refused = await kms.send(new DecryptCommand({ CiphertextBlob: c.blob, EncryptionContext: c.context })).then(() => 'decrypted', (e: Error) => e.name);
        expect(refused).toBe('DisabledException');
        continue;
      }
      const dec = await kms.send(new DecryptCommand({ CiphertextBlob: c.blob, EncryptionContext: c.context }));
      expect(Buffer.from(dec.Plaintext!).equals(c.plaintext), `seed ${seed}: ciphertext under ${c.keyId}`).toBe(true);
      expect(dec.KeyId).toContain(c.keyId);
    }
    for (const keyId of ack.imported.keys()) {
      const enc = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('after restart') }));
      const dec = await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob }));
      expect(Buffer.from(dec.Plaintext!).toString()).toBe('after restart');
    }
  } finally {
    kms.destroy();
  }
}

/** Imported keys stay bound to their material across crashes: other material is refused, the same accepted. */
async function verifyImportBinding(url: string, ack: Acknowledged, secrets: Buffer[]): Promise<number> {
  const kms = client(url);
  let checked = 0;
  try {
    // One key per restart (each check costs an RSA key generation), a different one each time.
    for (const [keyId, material] of [...ack.imported].slice(-1)) {
      const params = await kms.send(new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_2048' }));
      const other = randomBytes(32);
      secrets.push(other);
      const refused = await kms
        .send(new ImportKeyMaterialCommand({ KeyId: keyId, ImportToken: params.ImportToken, EncryptedKeyMaterial: wrapMaterial('RSAES_OAEP_SHA_256', params.PublicKey!, other, secrets), ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' }))
        .then(() => 'accepted', (e: Error) => e.name);
      expect(refused).toBe('IncorrectKeyMaterialException');
      await kms.send(
        new ImportKeyMaterialCommand({ KeyId: keyId, ImportToken: params.ImportToken, EncryptedKeyMaterial: wrapMaterial('RSAES_OAEP_SHA_256', params.PublicKey!, material, secrets), ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' }),
      );
      checked++;
    }
  } finally {
    kms.destroy();
  }
  return checked;
}

function allFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? allFiles(join(dir, d.name)) : [join(dir, d.name)]));
}

/** The encodings a secret could be written in. */
function forms(secret: Buffer): Buffer[] {
  return [
    secret,
    Buffer.from(secret.toString('hex')),
    Buffer.from(secret.toString('hex').toUpperCase()),
    Buffer.from(secret.toString('base64')),
    Buffer.from(secret.toString('base64url')),
  ];
}

/** Files under `dir` that contain any secret in any form. */
function findSecrets(dir: string, secrets: Buffer[]): string[] {
  const hits: string[] = [];
  const needles = secrets.flatMap((s, i) => forms(s).map((f) => ({ f, i })));
  for (const file of allFiles(dir)) {
    const content = readFileSync(file);
    for (const { f, i } of needles) if (content.includes(f)) hits.push(`${file}: secret #${i}`);
  }
  return hits;
}

describe('local KMS crash safety under a storm (SIGKILL, restart, 3 rounds)', () => {
  const tmp = tempDir('lkms-storm-');
  let running: LocalKmsChild | undefined;
  afterAll(async () => {
    if (running) await killHard(running);
    tmp.cleanup();
  });

  it('keeps every acknowledged key, alias, import and ciphertext; no plaintext key material on disk', async () => {
    const seed = Number(process.env.CRASH_SEED ?? Math.floor(Math.random() * 1e9));
    const rand = prng(seed);
    const dataDir = join(tmp.dir, 'data');
    const ack: Acknowledged = { keys: new Map(), aliases: new Map(), imported: new Map(), ciphertexts: [] };
    const secrets: Buffer[] = [];
    let cutTotal = 0;
    let bindingChecks = 0;

    for (let round = 0; round < ROUNDS; round++) {
      running = await spawnLocalKms(['--data-dir', dataDir]);
      if (round > 0) {
        // Everything acknowledged in all earlier rounds survived the kill.
        await verify(running.url, ack, seed);
        bindingChecks += await verifyImportBinding(running.url, ack, secrets);
      }
      const s = await storm(running.url, ack, secrets, round, rand, Math.floor(rand() * 300));
      const result = await s.killMidway(running);
      running = undefined;
      expect(result.unexpected, `seed ${seed}`).toEqual([]);
      // The kill landed in the middle of traffic: requests were cut off, and many were answered before.
      expect(result.cut, `seed ${seed}`).toBeGreaterThan(0);
      expect(result.acknowledgedCalls).toBeGreaterThan(10);
      cutTotal += result.cut;
      expect(assertNoTornFiles(dataDir)).toBeGreaterThan(0);
    }

    running = await spawnLocalKms(['--data-dir', dataDir]);
    await verify(running.url, ack, seed);
    bindingChecks += await verifyImportBinding(running.url, ack, secrets);
    // A clean stop, then the same directory once more (the state after a graceful shutdown).
    running.proc.kill('SIGTERM');
    expect((await running.exited).code).toBe(0);
    running = await spawnLocalKms(['--data-dir', dataDir]);
    await verify(running.url, ack, seed);
    await killHard(running);
    running = undefined;

    // The storm did all of it, several times over.
    expect(ack.imported.size, `seed ${seed}`).toBeGreaterThan(0);
    expect([...ack.keys.values()].filter((k) => k.origin === 'AWS_KMS').length).toBeGreaterThan(ROUNDS);
    expect(ack.aliases.size).toBeGreaterThan(ROUNDS);
    expect(ack.ciphertexts.length).toBeGreaterThan(ROUNDS);
    expect(cutTotal).toBeGreaterThanOrEqual(ROUNDS);
    expect(bindingChecks).toBeGreaterThan(0);

    if (process.env.CRASH_VERBOSE) console.log(JSON.stringify({ seed, keys: ack.keys.size, aliases: ack.aliases.size, imported: ack.imported.size, ciphertexts: ack.ciphertexts.length, secrets: secrets.length, cutTotal, bindingChecks, tmpFilesSeen }));
    // No secret the test handled is in the data directory, in any encoding.
    expect(secrets.length).toBeGreaterThan(ack.imported.size);
    expect(findSecrets(dataDir, secrets)).toEqual([]);
    // The search itself finds a secret planted in each form (so an empty result means something).
    const control = join(tmp.dir, 'control');
    mkdirSync(control);
    const planted = secrets[0]!;
    forms(planted).forEach((f, i) => writeFileSync(join(control, `f${i}`), Buffer.concat([randomBytes(7), f, randomBytes(5)])));
    expect(new Set(findSecrets(control, [planted]).map((h) => h.split(':')[0])).size).toBe(forms(planted).length);
  }, 60_000);
});
