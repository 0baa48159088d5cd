/**
 * Seeds and the per-case oracle for the fuzz properties (fuzz-*.test.ts).
 *
 * Seeds: valid messages of every shape the reader accepts: v2 0x0478/0x0578 framed (raw AES
 * keyring, and a fixed-key keyring the tests can re-authenticate under), v2 non-framed (built and
 * sealed by the model), an empty message, ESDK-written v1 messages (0x0178, 0x0378), and a message
 * wrapped by the KMS keyring under the in-process local KMS (read by key ARN, by alias with
 * resolveOnDecrypt, and by discovery).
 *
 * Oracle for one case: Envelope.decrypt and Envelope.decryptStream either both return exactly the
 * seed's plaintext (only when the bytes are the seed's bytes, or for a valid sealed change), or
 * both reject with an EnvelopeError; the stream emits at most a prefix of the true plaintext; no
 * keyring call when the header claims more EDKs than allowed or is rejected while parsing; no
 * single allocation larger than the input plus one 64 KiB piece; no secret in any error.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import {
  AlgorithmSuiteIdentifier,
  buildClient,
  CommitmentPolicy,
  RawAesKeyringNode,
  RawAesWrappingSuiteIdentifier,
} from '@aws-crypto/client-node';
import { Envelope, EnvelopeError, KmsKeyring } from '../../src/index.js';
import { LocalKms } from '../../src/local-kms/index.js';
import {
  AllocationProbe,
  CountingKeyring,
  cut,
  decryptBuffer,
  decryptStreamed,
  FixedKeyring,
  isPrefix,
  KEY_NAME,
  KEY_NAMESPACE,
  rawKeyring,
  REJECTION_CODES,
  SecretScanner,
  WRAPPING_KEY,
} from './harness.js';
import { canaryPlaintext, CANARY } from './bitflip.js';
import { layout, openModel, p384KeyPair, parseModel, seal, serializeModel, type MessageModel, type SealKeys } from './model.js';

export interface CaseEnv {
  name: string;
  envelope: Envelope;
  keyring: CountingKeyring;
  maxEncryptedDataKeys: number;
  maxHeaderBytes: number;
  /** Default commitment policy: v1 (non-committing) messages are refused before any keyring call. */
  requireCommitment: boolean;
}

/** Whether an unchanged seed is within `env`'s limits (the tight envelope refuses the bigger headers). */
export function withinLimits(seed: Seed, env: CaseEnv): boolean {
  return (
    layout(seed.model).headerLength <= env.maxHeaderBytes &&
    seed.model.edks.length <= env.maxEncryptedDataKeys &&
    (seed.model.version === 2 || !env.requireCommitment)
  );
}

export interface Seed {
  name: string;
  bytes: Buffer;
  model: MessageModel;
  plaintext: Buffer;
  /** Envelopes that can decrypt this seed (the first with default limits). */
  envs: CaseEnv[];
  /** Fixed-key seeds: the model with plaintexts filled in, and the keys to seal changes with. */
  opened?: MessageModel;
  sealKeys?: SealKeys;
}

export interface Fixture {
  seeds: Seed[];
  scanner: SecretScanner;
  probe: AllocationProbe;
  stats: { cases: number; accepted: number; codes: Map<string, number> };
  /** ARN of the local KMS key the `kms` seed is wrapped under. */
  kmsArn: string;
  close(): void;
}

function env(name: string, keyring: CountingKeyring, options: Omit<ConstructorParameters<typeof Envelope>[0], 'keyring'> = {}): CaseEnv {
  return {
    name,
    keyring,
    envelope: new Envelope({ keyring, ...options }),
    maxEncryptedDataKeys: options.maxEncryptedDataKeys ?? 10,
    maxHeaderBytes: options.maxHeaderBytes ?? 1 << 20,
    requireCommitment: (options.commitmentPolicy ?? 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT') === 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT',
  };
}

export async function makeFixture(): Promise<Fixture> {
  const raw = new CountingKeyring(rawKeyring());
  const fixedKey = randomBytes(32);
  const fixed = new CountingKeyring(new FixedKeyring(fixedKey));
  const allow = { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' as const };
  const rawEnvs = [
    env('raw, v1 allowed', raw, allow),
    env('raw, tight limits (2 EDKs, 256-byte header)', raw, { maxEncryptedDataKeys: 2, maxHeaderBytes: 256 }),
  ];
  const fixedEnvs = [env('fixed key, v1 allowed', fixed, allow)];
  const plaintext = canaryPlaintext(300);
  const context = { purpose: 'fuzz', tenant: 't1' };
  const seeds: Seed[] = [];
  const add = (name: string, bytes: Buffer, pt: Buffer, envs: CaseEnv[], extra: Partial<Seed> = {}): void => {
    seeds.push({ name, bytes, model: parseModel(bytes), plaintext: pt, envs, ...extra });
  };

  for (const suite of [0x0478, 0x0578]) {
    const w = new Envelope({ keyring: raw, suite, frameLength: 64 });
    add(`raw 0x${suite.toString(16)} framed`, await w.encrypt(plaintext, { context }), plaintext, rawEnvs);
  }
  add('raw 0x478 empty', await new Envelope({ keyring: raw, frameLength: 64 }).encrypt(Buffer.alloc(0)), Buffer.alloc(0), rawEnvs);

  // ESDK v1 messages (legacy suites, non-committing): readable with REQUIRE_ENCRYPT_ALLOW_DECRYPT.
  const esdk = buildClient(CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT);
  const esdkKeyring = new RawAesKeyringNode({
    keyName: KEY_NAME,
    keyNamespace: KEY_NAMESPACE,
    unencryptedMasterKey: new Uint8Array(WRAPPING_KEY),
    wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
    utf8Sorting: true,
  });
  for (const suiteId of [
    AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA256,
    AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384,
  ]) {
    const { result } = await esdk.encrypt(esdkKeyring, plaintext.subarray(0, 150), { suiteId, frameLength: 64, encryptionContext: context });
    add(`esdk v1 0x${suiteId.toString(16)}`, Buffer.from(result), plaintext.subarray(0, 150), rawEnvs);
  }

  // Fixed-key seeds: the tests re-authenticate changes to these themselves.
  const signer = p384KeyPair();
  for (const suite of [0x0478, 0x0578]) {
    const w = new Envelope({ keyring: new FixedKeyring(fixedKey), suite, frameLength: 64 });
    const written = parseModel(await w.encrypt(plaintext, { context }));
    const sealKeys: SealKeys = suite === 0x0578 ? { dataKey: fixedKey, ...signer } : { dataKey: fixedKey };
    const opened = openModel(written, fixedKey);
    // Re-sealed under our signing key, so sealed changes and the seed verify the same way.
    const framed = seal(opened, sealKeys);
    add(`fixed 0x${suite.toString(16)} framed`, serializeModel(framed), plaintext, fixedEnvs, { opened: openModel(framed, fixedKey), sealKeys });
    // Non-framed (content type 1, frame length 0): only the model writes these.
    const nonFramed: MessageModel = {
      ...opened,
      contentType: 1,
      frameLength: 0,
      body: { kind: 'nonFramed', part: { iv: randomBytes(12), content: Buffer.alloc(0), tag: Buffer.alloc(16), plaintext } },
    };
    const sealedNf = seal(nonFramed, sealKeys);
    add(`fixed 0x${suite.toString(16)} non-framed`, serializeModel(sealedNf), plaintext, fixedEnvs, { opened: openModel(sealedNf, fixedKey), sealKeys });
  }

  // KMS keyring over the in-process local KMS: hostile EDKs reach KmsKeyring's ARN matching and
  // the KMS Decrypt error mapping. Readers: by key ARN (the default, exact match), by alias name
  // with resolveOnDecrypt (any key ARN may match; KMS decides) and discovery.
  const local = new LocalKms();
  const keyArn = (await local.createKey({ Description: 'fuzz' })).arn;
  await local.createAlias('alias/fuzz', keyArn);
  const kmsWriter = new CountingKeyring(new KmsKeyring({ keyId: keyArn, client: local.client() }));
  const kmsEnvs = [
    env('kms by key ARN', new CountingKeyring(new KmsKeyring({ keyId: keyArn, client: local.client() }))),
    env('kms by alias', new CountingKeyring(new KmsKeyring({ keyId: 'alias/fuzz', client: local.client(), resolveOnDecrypt: true }))),
    env('kms discovery', new CountingKeyring(new KmsKeyring({ discovery: true, client: local.client() }))),
  ];
  add('kms 0x478 framed', await new Envelope({ keyring: kmsWriter, frameLength: 64 }).encrypt(plaintext, { context }), plaintext, kmsEnvs);

  const scanner = new SecretScanner(
    [
      { what: 'wrapping key', bytes: WRAPPING_KEY },
      { what: 'fixed data key', bytes: fixedKey },
      ...raw.dataKeys.map((bytes) => ({ what: 'data key', bytes })),
      ...kmsWriter.dataKeys.map((bytes) => ({ what: 'KMS data key', bytes })),
    ],
    [CANARY],
  );
  return {
    seeds,
    scanner,
    probe: new AllocationProbe(),
    stats: { cases: 0, accepted: 0, codes: new Map() },
    kmsArn: keyArn,
    close: () => local.close(),
  };
}

function kmsCallsOf(keyring: unknown): number {
  const n = (keyring as { kmsCalls?: unknown }).kmsCalls;
  return typeof n === 'number' ? n : 0;
}

/** The EDK count a parser would read from these bytes, when the bytes reach that far. */
export function declaredEdkCount(b: Buffer): number | undefined {
  const o = b[0] === 2 ? 35 : b[0] === 1 ? 20 : -1;
  if (o < 0 || b.length < o + 2) return undefined;
  const at = o + 2 + b.readUInt16BE(o);
  return b.length < at + 2 ? undefined : b.readUInt16BE(at);
}

/** Bytes one piece of the stream decryptor may hold on top of the input (src/stream: 64 KiB pieces). */
const ALLOCATION_SLACK = 64 * 1024 + 4096;
const ARRAY_BUFFER_GROWTH_LIMIT = 32 * 1024 * 1024;

export interface CaseSpec {
  label: string;
  bytes: Buffer;
  env: CaseEnv;
  /** Where to cut the stream input. */
  cuts: number[];
  /** The plaintext that must come out, when the message must decrypt. */
  expect?: { plaintext: Buffer; context?: Record<string, string> };
  /** The true plaintext the stream may release a prefix of (empty: nothing may come out). */
  truth: Buffer;
  /** Rejected while parsing the header: no keyring call allowed. */
  headerStage?: boolean;
  /** Encryption context pairs the caller requires (decrypt option `context`). */
  required?: Record<string, string>;
}

function failCase(spec: CaseSpec, what: string): never {
  throw new Error(`${spec.label} [${spec.env.name}]: ${what}\nbytes: ${spec.bytes.toString('hex')}`);
}

function checkRejection(f: Fixture, spec: CaseSpec, error: unknown, path: string): void {
  if (!(error instanceof EnvelopeError)) {
    failCase(spec, `${path} failed with ${error instanceof Error ? `${error.constructor.name}: ${error.message}\n${error.stack}` : String(error)}`);
  }
  if (!REJECTION_CODES.includes(error.code)) failCase(spec, `${path} code ${error.code}`);
  f.stats.codes.set(error.code, (f.stats.codes.get(error.code) ?? 0) + 1);
  const leak = f.scanner.scan(error);
  if (leak) failCase(spec, `${path}: ${leak}`);
}

/** Runs one case through both decryption paths and checks the oracle; throws on a violation. */
export async function runCase(f: Fixture, spec: CaseSpec): Promise<void> {
  const { envelope, keyring } = spec.env;
  f.stats.cases++;
  const calls0 = keyring.decryptCalls;
  const kms0 = kmsCallsOf(keyring.inner);
  const mem0 = process.memoryUsage().arrayBuffers;
  f.probe.start();
  let largest: number;
  let b: Awaited<ReturnType<typeof decryptBuffer>>;
  let s: Awaited<ReturnType<typeof decryptStreamed>>;
  try {
    const options = spec.required ? { context: spec.required } : {};
    b = await decryptBuffer(envelope, spec.bytes, options);
    s = await decryptStreamed(envelope, cut(spec.bytes, spec.cuts), options);
  } finally {
    largest = f.probe.stop();
  }
  const growth = process.memoryUsage().arrayBuffers - mem0;
  const calls = keyring.decryptCalls - calls0;

  if (spec.expect) {
    if (!b.ok) failCase(spec, `buffer decrypt rejected a valid message: ${String(b.error)}`);
    if (!b.plaintext.equals(spec.expect.plaintext)) failCase(spec, 'buffer decrypt returned other plaintext');
    if (s.error !== undefined || !s.ended) failCase(spec, `stream rejected a valid message: ${String(s.error)}`);
    if (!s.out.equals(spec.expect.plaintext)) failCase(spec, 'stream returned other plaintext');
    if (spec.expect.context) {
      const r = await envelope.decrypt(spec.bytes);
      if (JSON.stringify(r.context) !== JSON.stringify(spec.expect.context)) failCase(spec, `context ${JSON.stringify(r.context)}`);
    }
    f.stats.accepted++;
  } else {
    if (b.ok) failCase(spec, `buffer decrypt returned ${b.plaintext.length} bytes of plaintext`);
    checkRejection(f, spec, b.error, 'buffer decrypt');
    if (s.ended || s.error === undefined) failCase(spec, `stream ended normally after ${s.out.length} bytes`);
    checkRejection(f, spec, s.error, 'stream');
    if (!isPrefix(s.out, spec.truth)) failCase(spec, `stream emitted ${s.out.length} bytes that are not a prefix of the plaintext`);
  }

  if (calls > 2) failCase(spec, `${calls} keyring calls for two decryptions`);
  // At most one KMS Decrypt per EDK, and never more EDKs than the limit: the limit bounds KMS traffic.
  const kms = kmsCallsOf(keyring.inner) - kms0;
  if (kms > 2 * spec.env.maxEncryptedDataKeys) failCase(spec, `${kms} KMS calls for two decryptions`);
  const edks = declaredEdkCount(spec.bytes);
  if (edks !== undefined && edks > spec.env.maxEncryptedDataKeys && calls !== 0) {
    failCase(spec, `header claims ${edks} EDKs (limit ${spec.env.maxEncryptedDataKeys}) but the keyring was called ${calls} times`);
  }
  if (spec.headerStage && calls !== 0) failCase(spec, `malformed header, yet the keyring was called ${calls} times`);
  if (spec.env.requireCommitment && spec.bytes[0] === 1 && calls !== 0) {
    failCase(spec, `a v1 message under the default commitment policy reached the keyring (${calls} calls)`);
  }
  if (largest > spec.bytes.length + ALLOCATION_SLACK) {
    failCase(spec, `allocated ${largest} bytes at once for a ${spec.bytes.length}-byte input`);
  }
  if (growth > ARRAY_BUFFER_GROWTH_LIMIT) failCase(spec, `arrayBuffers grew by ${growth} bytes`);
}

/** Stream cut points: up to 3 positions anywhere in the input. */
export const cutsArb = fc.array(fc.nat(4000), { maxLength: 3 });

/** Runs a fast-check property with a seed from FUZZ_SEED (or random) and names the seed on failure. */
export async function assertProperty<T>(
  name: string,
  arb: fc.Arbitrary<T>,
  predicate: (value: T) => Promise<void>,
  numRuns: number,
  seed: number,
): Promise<void> {
  try {
    await fc.assert(fc.asyncProperty(arb, predicate), { numRuns, seed, endOnFailure: false, interruptAfterTimeLimit: 30 * 60_000 });
  } catch (e) {
    let msg = e instanceof Error ? e.message : String(e);
    const cause = e instanceof Error ? e.cause : undefined;
    if (cause !== undefined) msg += `\ncause: ${cause instanceof Error ? cause.message : String(cause)}`;
    throw new Error(`fuzz property "${name}" failed; reproduce with FUZZ_SEED=${seed} (fast-check seed ${seed})\n${msg}`);
  }
}
