/**
 * Load: 200 concurrent clients x 50 mixed operations against the local KMS over loopback, each
 * client its own @aws-sdk/client-kms KMSClient (keep-alive sockets). The server runs as users
 * run it, `node dist/cli/main.js local-kms`, in its own process. Every answer is checked
 * (decrypt returns what was encrypted or generated, lengths, key ids, MAC and signature
 * verification) and the test counts: 10,000 successful calls, zero errors. Throughput is not
 * asserted here; `npm run bench` reports ops/s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DeleteAliasCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  GenerateMacCommand,
  GenerateRandomCommand,
  KMSClient,
  ListAliasesCommand,
  ReEncryptCommand,
  SignCommand,
  VerifyCommand,
  VerifyMacCommand,
} from '@aws-sdk/client-kms';
import { killHard, spawnLocalKms, type LocalKmsChild } from './fixtures/spawn-local-kms.js';
import { prng } from '../support/prng.js';

const CLIENTS = 200;
const OPS_PER_CLIENT = 50;
const SYMMETRIC_KEYS = 8; // AWS allows 50 aliases per key: 200 client aliases need several keys

let child: LocalKmsChild;
const admin = () => new KMSClient({ endpoint: child.url, region: 'us-east-1', credentials: { accessKeyId: 'AKIDLOAD', secretAccessKey: 'x' }, maxAttempts: 1 });

beforeAll(async () => {
  child = await spawnLocalKms([]);
});

afterAll(async () => {
  if (child) await killHard(child);
});

describe('local KMS under load', () => {
  it(`serves ${CLIENTS} concurrent clients x ${OPS_PER_CLIENT} mixed operations with every answer correct`, async () => {
    const setup = admin();
    const keys: string[] = [];
    for (let i = 0; i < SYMMETRIC_KEYS; i++) keys.push((await setup.send(new CreateKeyCommand({ Description: `load ${i}` }))).KeyMetadata!.KeyId!);
    const hmacKey = (await setup.send(new CreateKeyCommand({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' }))).KeyMetadata!.KeyId!;
    const signKey = (await setup.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata!.KeyId!;

    const counts: Record<string, number> = {};
    const errors: string[] = [];
    const seed = Number(process.env.LOAD_SEED ?? Date.now() % 1_000_000);

    async function simulatedClient(n: number): Promise<number> {
      const kms = new KMSClient({ endpoint: child.url, region: 'us-east-1', credentials: { accessKeyId: `AKIDLOAD${n}`, secretAccessKey: 'x' }, maxAttempts: 1 });
      const rand = prng(seed * 1000 + n);
      const myKey = keys[n % keys.length]!;
      const otherKey = keys[(n + 1) % keys.length]!;
      const alias = `alias/load-${n}`;
      let calls = 0;
      // Every call is counted only after its answer passed the checks of the step it belongs to.
      const send = async <T>(name: string, p: Promise<T>): Promise<T> => {
        const out = await p;
        calls++;
        counts[name] = (counts[name] ?? 0) + 1;
        return out;
      };
      const seen = new Set<string>();
      try {
        await send('CreateAlias', kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: myKey })));
        while (calls < OPS_PER_CLIENT - 1) {
          const left = OPS_PER_CLIENT - 1 - calls;
          const pick = Math.floor(rand() * 9);
          const context = { client: String(n), step: String(calls) };
          if (pick === 0 && left >= 2) {
            const dk = await send('GenerateDataKey', kms.send(new GenerateDataKeyCommand({ KeyId: alias, KeySpec: 'AES_256', EncryptionContext: context })));
            expect(dk.Plaintext).toHaveLength(32);
            expect(dk.KeyId).toContain(myKey);
            const back = await send('Decrypt', kms.send(new DecryptCommand({ CiphertextBlob: dk.CiphertextBlob, EncryptionContext: context })));
            expect(Buffer.from(back.Plaintext!).equals(Buffer.from(dk.Plaintext!))).toBe(true);
          } else if (pick === 1 && left >= 2) {
            const plaintext = randomBytes(1 + Math.floor(rand() * 4096));
            const enc = await send('Encrypt', kms.send(new EncryptCommand({ KeyId: myKey, Plaintext: plaintext, EncryptionContext: context })));
            const dec = await send('Decrypt', kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: context, KeyId: myKey })));
            expect(Buffer.from(dec.Plaintext!).equals(plaintext)).toBe(true);
          } else if (pick === 2 && left >= 2) {
            const bytes = 1 + Math.floor(rand() * 1024);
            const dk = await send('GenerateDataKeyWithoutPlaintext', kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: myKey, NumberOfBytes: bytes })));
            expect((dk as { Plaintext?: Uint8Array }).Plaintext).toBeUndefined();
            const dec = await send('Decrypt', kms.send(new DecryptCommand({ CiphertextBlob: dk.CiphertextBlob })));
            expect(dec.Plaintext).toHaveLength(bytes);
          } else if (pick === 3 && left >= 3) {
            const plaintext = randomBytes(64);
            const enc = await send('Encrypt', kms.send(new EncryptCommand({ KeyId: myKey, Plaintext: plaintext })));
            const re = await send('ReEncrypt', kms.send(new ReEncryptCommand({ CiphertextBlob: enc.CiphertextBlob, DestinationKeyId: otherKey, DestinationEncryptionContext: context })));
            expect(re.SourceKeyId).toContain(myKey);
            expect(re.KeyId).toContain(otherKey);
            const dec = await send('Decrypt', kms.send(new DecryptCommand({ CiphertextBlob: re.CiphertextBlob, EncryptionContext: context })));
            expect(Buffer.from(dec.Plaintext!).equals(plaintext)).toBe(true);
            expect(dec.KeyId).toContain(otherKey);
          } else if (pick === 4) {
            const md = await send('DescribeKey', kms.send(new DescribeKeyCommand({ KeyId: alias })));
            expect(md.KeyMetadata!.KeyId).toBe(myKey);
            expect(md.KeyMetadata!.KeyState).toBe('Enabled');
          } else if (pick === 5) {
            const bytes = 16 + Math.floor(rand() * 1009);
            const r = await send('GenerateRandom', kms.send(new GenerateRandomCommand({ NumberOfBytes: bytes })));
            expect(r.Plaintext).toHaveLength(bytes);
            const hex = Buffer.from(r.Plaintext!).toString('hex');
            expect(seen.has(hex)).toBe(false);
            seen.add(hex);
          } else if (pick === 6) {
            const list = await send('ListAliases', kms.send(new ListAliasesCommand({ KeyId: myKey, Limit: 100 })));
            expect(list.Aliases!.map((a) => a.AliasName)).toContain(alias);
            expect(list.Aliases!.every((a) => a.TargetKeyId === myKey)).toBe(true);
          } else if (pick === 7 && left >= 2) {
            const message = randomBytes(1 + Math.floor(rand() * 512));
            const mac = await send('GenerateMac', kms.send(new GenerateMacCommand({ KeyId: hmacKey, Message: message, MacAlgorithm: 'HMAC_SHA_256' })));
            expect(mac.Mac).toHaveLength(32);
            const ok = await send('VerifyMac', kms.send(new VerifyMacCommand({ KeyId: hmacKey, Message: message, Mac: mac.Mac, MacAlgorithm: 'HMAC_SHA_256' })));
            expect(ok.MacValid).toBe(true);
          } else if (pick === 8 && left >= 2) {
            const message = randomBytes(100);
            const sig = await send('Sign', kms.send(new SignCommand({ KeyId: signKey, Message: message, MessageType: 'RAW', SigningAlgorithm: 'ECDSA_SHA_256' })));
            const ok = await send('Verify', kms.send(new VerifyCommand({ KeyId: signKey, Message: message, Signature: sig.Signature, SigningAlgorithm: 'ECDSA_SHA_256' })));
            expect(ok.SignatureValid).toBe(true);
          } else {
            // Not enough calls left for a multi-call step: a single read.
            const md = await send('DescribeKey', kms.send(new DescribeKeyCommand({ KeyId: myKey })));
            expect(md.KeyMetadata!.Arn).toMatch(new RegExp(`:key/${myKey}$`));
          }
        }
        await send('DeleteAlias', kms.send(new DeleteAliasCommand({ AliasName: alias })));
      } catch (e) {
        errors.push(`client ${n} after ${calls} calls: ${(e as Error).name}: ${(e as Error).message}`);
      } finally {
        kms.destroy();
      }
      return calls;
    }

    const perClient = await Promise.all(Array.from({ length: CLIENTS }, (_, n) => simulatedClient(n)));
    expect(errors, `seed ${seed}`).toEqual([]);
    expect(perClient.every((c) => c === OPS_PER_CLIENT)).toBe(true);
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(CLIENTS * OPS_PER_CLIENT);
    expect(counts.CreateAlias).toBe(CLIENTS);
    expect(counts.DeleteAlias).toBe(CLIENTS);
    // The mix really was mixed.
    for (const op of ['GenerateDataKey', 'Encrypt', 'Decrypt', 'ReEncrypt', 'DescribeKey', 'GenerateRandom', 'ListAliases', 'GenerateMac', 'Sign']) {
      expect(counts[op] ?? 0, op).toBeGreaterThan(100);
    }
    // Every alias was created and deleted exactly once: none left behind, none lost.
    const left = await setup.send(new ListAliasesCommand({ Limit: 100 }));
    expect(left.Aliases!.filter((a) => a.AliasName!.startsWith('alias/load-'))).toEqual([]);
    setup.destroy();
  }, 180_000); // completion bound under load, not a speed check
});
