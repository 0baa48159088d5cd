// Local KMS under load: 200 concurrent clients x 50 mixed operations (GenerateDataKey,
// Encrypt, Decrypt, DescribeKey, GenerateRandom) over loopback HTTP, every response checked.
//
// The server runs in its own process (startLocalKmsServer({ port: 0 }) from the built package) so
// that it and the clients each have a core, as in real use. Two client transports:
//   - @aws-sdk/client-kms, one client per simulated caller, retries off (maxAttempts: 1) so that no
//     error is hidden by a retry;
//   - raw HTTP/1.1 with keep-alive (one shared agent), to show how much of the cost is the SDK.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import {
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateRandomCommand,
  KMSClient,
  CreateKeyCommand,
} from '@aws-sdk/client-kms';
import { formatRate, markdownTable, progress, QUICK } from './lib.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLIENTS = 200;
const OPS_PER_CLIENT = 50;
const KEYS = 4;
const CREDENTIALS = { accessKeyId: 'AKIDBENCHLOAD', secretAccessKey: 'bench-secret' };

/** Starts the local KMS in a child process; resolves to { url, stop() }. */
function startServerProcess() {
  const script =
    "const { startLocalKmsServer } = await import('kms-envelope/local-kms');" +
    'const s = await startLocalKmsServer({ port: 0 });' +
    "process.stdout.write(s.url + '\\n');" +
    "process.on('SIGTERM', () => s.close().then(() => process.exit(0)));";
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.once('exit', (code) => reject(new Error(`local KMS server exited early (code ${code})`)));
    child.stdout.on('data', (d) => {
      out += d;
      const m = /^(http:\/\/\S+)\n/.exec(out);
      if (m) {
        child.removeAllListeners('exit');
        resolve({
          url: m[1],
          stop: () =>
            new Promise((res) => {
              child.once('exit', res);
              child.kill('SIGTERM');
            }),
        });
      }
    });
  });
}

/** KMS operations through the AWS SDK, normalized to Buffers. */
function sdkTransport(url) {
  return () => {
    const client = new KMSClient({ endpoint: url, region: 'us-east-1', credentials: CREDENTIALS, maxAttempts: 1 });
    return {
      async generateDataKey(KeyId) {
        const o = await client.send(new GenerateDataKeyCommand({ KeyId, NumberOfBytes: 32 }));
        return { keyId: o.KeyId, plaintext: Buffer.from(o.Plaintext), blob: o.CiphertextBlob };
      },
      async encrypt(KeyId, Plaintext, EncryptionContext) {
        const o = await client.send(new EncryptCommand({ KeyId, Plaintext, EncryptionContext }));
        return { keyId: o.KeyId, blob: o.CiphertextBlob };
      },
      async decrypt(CiphertextBlob, EncryptionContext) {
        const o = await client.send(new DecryptCommand({ CiphertextBlob, EncryptionContext }));
        return { keyId: o.KeyId, plaintext: Buffer.from(o.Plaintext) };
      },
      async describeKey(KeyId) {
        const o = await client.send(new DescribeKeyCommand({ KeyId }));
        return { arn: o.KeyMetadata.Arn, state: o.KeyMetadata.KeyState };
      },
      async generateRandom(NumberOfBytes) {
        const o = await client.send(new GenerateRandomCommand({ NumberOfBytes }));
        return Buffer.from(o.Plaintext);
      },
      close: () => client.destroy(),
    };
  };
}

/** KMS operations as raw JSON 1.1 POSTs over one keep-alive agent (blobs are base64, as on the wire). */
function rawTransport(url) {
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });
  const { hostname, port } = new URL(url);
  const call = (op, input) =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify(input);
      const req = request(
        {
          agent,
          hostname,
          port,
          method: 'POST',
          path: '/',
          headers: {
            'Content-Type': 'application/x-amz-json-1.1',
            'X-Amz-Target': `TrentService.${op}`,
            'Content-Length': Buffer.byteLength(body),
          },
        },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            const json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            if (res.statusCode !== 200) reject(new Error(`${op}: HTTP ${res.statusCode} ${json.__type}`));
            else resolve(json);
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const b64 = (b) => Buffer.from(b).toString('base64');
  const bin = (s) => Buffer.from(s, 'base64');
  const transport = () => ({
    async generateDataKey(KeyId) {
      const o = await call('GenerateDataKey', { KeyId, NumberOfBytes: 32 });
      return { keyId: o.KeyId, plaintext: bin(o.Plaintext), blob: bin(o.CiphertextBlob) };
    },
    async encrypt(KeyId, plaintext, EncryptionContext) {
      const o = await call('Encrypt', { KeyId, Plaintext: b64(plaintext), EncryptionContext });
      return { keyId: o.KeyId, blob: bin(o.CiphertextBlob) };
    },
    async decrypt(blob, EncryptionContext) {
      const o = await call('Decrypt', { CiphertextBlob: b64(blob), EncryptionContext });
      return { keyId: o.KeyId, plaintext: bin(o.Plaintext) };
    },
    async describeKey(KeyId) {
      const o = await call('DescribeKey', { KeyId });
      return { arn: o.KeyMetadata.Arn, state: o.KeyMetadata.KeyState };
    },
    async generateRandom(NumberOfBytes) {
      return bin((await call('GenerateRandom', { NumberOfBytes })).Plaintext);
    },
    close() {},
  });
  transport.close = () => agent.destroy();
  return transport;
}

/**
 * One simulated client: OPS_PER_CLIENT operations cycling GenerateDataKey, Encrypt, Decrypt,
 * DescribeKey, GenerateRandom. Decrypt alternately unwraps the last data key and the last Encrypt
 * ciphertext and must return exactly those bytes. Returns { ok, errors, wrong, firstProblem }.
 */
async function client(kms, keyArn, id) {
  const r = { ok: 0, errors: 0, wrong: 0, firstProblem: undefined };
  const context = { client: String(id) };
  const check = (cond, what) => {
    if (cond) r.ok++;
    else {
      r.wrong++;
      r.firstProblem ??= what;
    }
  };
  let dataKey;
  let sealed;
  for (let i = 0; i < OPS_PER_CLIENT; i++) {
    try {
      switch (i % 5) {
        case 0: {
          const o = await kms.generateDataKey(keyArn);
          check(o.keyId === keyArn && o.plaintext.length === 32 && o.blob.length > 0, 'GenerateDataKey answer');
          dataKey = o;
          break;
        }
        case 1: {
          const plaintext = randomBytes(16 + (i % 200));
          const o = await kms.encrypt(keyArn, plaintext, context);
          check(o.keyId === keyArn && o.blob.length > plaintext.length, 'Encrypt answer');
          sealed = { plaintext, blob: o.blob };
          break;
        }
        case 2: {
          const useDataKey = Math.floor(i / 5) % 2 === 0;
          const o = useDataKey ? await kms.decrypt(dataKey.blob) : await kms.decrypt(sealed.blob, context);
          const expected = useDataKey ? dataKey.plaintext : sealed.plaintext;
          check(o.keyId === keyArn && o.plaintext.equals(expected), 'Decrypt plaintext');
          break;
        }
        case 3: {
          const o = await kms.describeKey(keyArn);
          check(o.arn === keyArn && o.state === 'Enabled', 'DescribeKey answer');
          break;
        }
        default: {
          const n = 1 + (i % 64);
          const o = await kms.generateRandom(n);
          check(o.length === n, 'GenerateRandom length');
        }
      }
    } catch (e) {
      r.errors++;
      r.firstProblem ??= e.message;
    }
  }
  return r;
}

async function createKeys(url) {
  const c = new KMSClient({ endpoint: url, region: 'us-east-1', credentials: CREDENTIALS });
  const arns = [];
  for (let i = 0; i < KEYS; i++) arns.push((await c.send(new CreateKeyCommand({ Description: `load ${i}` }))).KeyMetadata.Arn);
  c.destroy();
  return arns;
}

async function storm(transport, arns) {
  const kmss = Array.from({ length: CLIENTS }, () => transport());
  const t0 = performance.now();
  const results = await Promise.all(kmss.map((k, i) => client(k, arns[i % arns.length], i)));
  const ms = performance.now() - t0;
  for (const k of kmss) k.close();
  const sum = (f) => results.reduce((n, r) => n + r[f], 0);
  return {
    opsPerSec: (CLIENTS * OPS_PER_CLIENT * 1000) / ms,
    ok: sum('ok'),
    errors: sum('errors'),
    wrong: sum('wrong'),
    problem: results.find((r) => r.firstProblem !== undefined)?.firstProblem,
  };
}

export async function loadBench() {
  progress(`local KMS load (${CLIENTS} clients x ${OPS_PER_CLIENT} ops)`);
  const server = await startServerProcess();
  try {
    const arns = await createKeys(server.url);
    const transports = { '@aws-sdk/client-kms': sdkTransport(server.url), 'raw HTTP keep-alive': rawTransport(server.url) };
    const rounds = QUICK ? 1 : 2;
    const best = new Map();
    for (let r = 0; r < rounds; r++) {
      const names = Object.keys(transports);
      for (const name of r % 2 === 0 ? names : names.reverse()) {
        const res = await storm(transports[name], arns);
        const prev = best.get(name);
        best.set(name, {
          opsPerSec: Math.max(prev?.opsPerSec ?? 0, res.opsPerSec),
          ok: (prev?.ok ?? 0) + res.ok,
          errors: (prev?.errors ?? 0) + res.errors,
          wrong: (prev?.wrong ?? 0) + res.wrong,
          problem: prev?.problem ?? res.problem,
        });
      }
    }
    transports['raw HTTP keep-alive'].close();
    const rows = [...best].map(([name, b]) => [
      name,
      `${CLIENTS} x ${OPS_PER_CLIENT}${rounds > 1 ? ` (x${rounds} rounds)` : ''}`,
      formatRate(b.opsPerSec, 'ops/s'),
      String(b.ok),
      String(b.errors),
      String(b.wrong) + (b.problem ? ` (${b.problem})` : ''),
      b.errors === 0 && b.wrong === 0 ? 'PASS (0 errors)' : 'FAIL (0 errors)',
    ]);
    const table = markdownTable(['Local KMS client', 'clients x ops', 'ops/s (best round)', 'checked OK', 'errors', 'wrong answers', 'target'], rows);
    const checks = [...best].map(([name, b]) => ({ name: `local KMS load via ${name}: 0 errors`, pass: b.errors === 0 && b.wrong === 0 }));
    return { table, checks };
  } finally {
    await server.stop();
  }
}
