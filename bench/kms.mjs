// KMS traffic: how many KMS requests each library makes for the same work, counted at the same
// place on both sides (a middleware on an @aws-sdk/client-kms client talking to the local KMS
// over loopback HTTP), plus ours against the in-process local KMS, counted by envelope.stats().
//
// Both sides use the same cache limits (sides.mjs). The cold-cache rows are the ESDK's issue #1665:
// its caching CMM has no single-flight, so N concurrent encrypts on a cold cache make N data keys.
import { randomBytes } from 'node:crypto';
import esdk from '@aws-crypto/client-node';
import { KMS } from '@aws-sdk/client-kms';
import { markdownTable, progress, QUICK } from './lib.mjs';
import { esdkSide } from './sides.mjs';

const MESSAGES = QUICK ? 2_000 : 10_000;
const CONCURRENCY = [20, 100];

/** A KMS client for the local server that counts requests by operation. */
function countingKms(url) {
  const client = new KMS({
    endpoint: url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'AKIDBENCH', secretAccessKey: 'bench-secret' },
  });
  const counts = {};
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const op = context.commandName.replace(/Command$/, '');
      counts[op] = (counts[op] ?? 0) + 1;
      return next(args);
    },
    { step: 'initialize', name: 'benchCountRequests' },
  );
  return { client, counts };
}

/** The three ways of encrypting under one KMS key that we compare; each fresh (cold) when made. */
function makers(lib, url, keyArn, inProcess) {
  return {
    'kms-envelope (HTTP)': () => {
      const { client, counts } = countingKms(url);
      const envelope = new lib.Envelope({ keyring: new lib.KmsKeyring({ keyId: keyArn, client }) });
      return wrapOurs(envelope, () => counts.GenerateDataKey ?? 0, () => counts.Decrypt ?? 0);
    },
    'kms-envelope (in-process local KMS)': () => {
      const keyring = new lib.KmsKeyring({ keyId: inProcess.keyArn, client: inProcess.localKms.client() });
      const envelope = new lib.Envelope({ keyring });
      // The only calls a KmsKeyring with one key makes are GenerateDataKey (encrypt) and Decrypt.
      let encryptCalls = 0;
      return wrapOurs(
        envelope,
        () => encryptCalls,
        () => envelope.stats().kmsCalls - encryptCalls,
        () => {
          encryptCalls = envelope.stats().kmsCalls;
        },
      );
    },
    '@aws-crypto/client-node (HTTP)': () => {
      const { client, counts } = countingKms(url);
      const keyring = new esdk.KmsKeyringNode({ generatorKeyId: keyArn, clientProvider: () => client });
      const side = esdkSide({ suite: 0x0478, keyring });
      return { ...side, generated: () => counts.GenerateDataKey ?? 0, decrypted: () => counts.Decrypt ?? 0, endEncrypt() {} };
    },
  };
}

function wrapOurs(envelope, generated, decrypted, endEncrypt = () => {}) {
  return {
    encrypt: (p) => envelope.encrypt(p, { context: { purpose: 'bench' } }),
    decrypt: async (m) => (await envelope.decrypt(m)).plaintext,
    generated,
    decrypted,
    endEncrypt,
  };
}

/** `count` sequential encrypts of 1 KiB, then sequential decrypts of all of them. */
async function sequential(side, count) {
  const plaintext = randomBytes(1024);
  const messages = [];
  for (let i = 0; i < count; i++) messages.push(await side.encrypt(plaintext));
  side.endEncrypt();
  for (const m of messages) {
    if (!Buffer.from(await side.decrypt(m)).equals(plaintext)) throw new Error('KMS round trip mismatch');
  }
  return { generated: side.generated(), decrypted: side.decrypted() };
}

/** `n` concurrent encrypts on a cold cache, then `n` concurrent decrypts of one message on a cold cache. */
async function concurrent(make, n) {
  const plaintext = randomBytes(1024);
  const enc = make();
  const messages = await Promise.all(Array.from({ length: n }, () => enc.encrypt(plaintext)));
  enc.endEncrypt();
  const dec = make();
  const outs = await Promise.all(Array.from({ length: n }, () => dec.decrypt(messages[0])));
  if (outs.some((o) => !Buffer.from(o).equals(plaintext))) throw new Error('KMS round trip mismatch');
  return { generated: enc.generated(), decrypted: dec.decrypted() };
}

export async function kmsBench(lib, localKmsLib) {
  progress(`KMS calls (${MESSAGES} messages, cold-cache concurrency)`);
  const server = await localKmsLib.startLocalKmsServer({ port: 0 });
  const localKms = new localKmsLib.LocalKms();
  try {
    const { client } = countingKms(server.url);
    const { KeyMetadata } = await client.createKey({ Description: 'bench' });
    const keyArn = KeyMetadata.Arn;
    const created = await localKms.client().call('CreateKey', { Description: 'bench' });
    const sides = makers(lib, server.url, keyArn, { localKms, keyArn: created.KeyMetadata.Arn });
    const names = Object.keys(sides);
    const rows = [];
    const results = new Map();
    for (const name of names) results.set(name, await sequential(sides[name](), MESSAGES));
    rows.push(row(`${MESSAGES.toLocaleString('en-US')} encrypts (1 KiB, one context): GenerateDataKey`, names.map((n) => results.get(n).generated)));
    rows.push(row(`${MESSAGES.toLocaleString('en-US')} decrypts of those messages: Decrypt`, names.map((n) => results.get(n).decrypted)));
    const checks = [];
    for (const n of CONCURRENCY) {
      const r = [];
      for (const name of names) r.push(await concurrent(sides[name], n));
      rows.push(row(`${n} concurrent encrypts, cold cache: GenerateDataKey`, r.map((x) => x.generated)));
      rows.push(row(`${n} concurrent decrypts of one message, cold cache: Decrypt`, r.map((x) => x.decrypted)));
      const oursMax = Math.max(r[0].generated, r[1].generated);
      checks.push({ name: `${n} concurrent cold encrypts make 1 data key`, pass: oursMax === 1 });
    }
    const table = markdownTable(['KMS requests', ...names], rows);
    return { table, checks };
  } finally {
    localKms.service.close();
    await server.close();
  }
}

function row(label, values) {
  return [label, ...values.map(String)];
}

