import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KMSClient } from '@aws-sdk/client-kms';
import { KmsServiceError } from '../../src/local-kms/errors.js';
import { startLocalKmsServer, type LocalKmsServer, type LocalKmsServerOptions } from '../../src/local-kms/index.js';
import { handSign, postRaw } from './signing.js';

export const ACCOUNT = '111122223333';
export const ROOT_ARN = `arn:aws:iam::${ACCOUNT}:root`;

export function tempDir(prefix = 'lkms-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function sdkClient(url: string, accessKeyId = 'AKIDEXAMPLE', secretAccessKey = 'x'): KMSClient {
  return new KMSClient({
    endpoint: url,
    region: 'us-east-1',
    credentials: { accessKeyId, secretAccessKey },
    maxAttempts: 1,
  });
}

export async function startServer(opts: LocalKmsServerOptions = {}): Promise<{ server: LocalKmsServer; kms: KMSClient }> {
  const server = await startLocalKmsServer({ port: 0, ...opts });
  return { server, kms: sdkClient(server.url) };
}

/** Asserts that `p` rejects with the AWS error `name`; returns the error. */
export async function expectAwsError(p: Promise<unknown>, name: string): Promise<Error & { $metadata?: { httpStatusCode?: number } }> {
  try {
    await p;
  } catch (e) {
    const err = e as Error;
    if (err.name !== name) throw new Error(`expected ${name}, got ${err.name}: ${err.message}`);
    return err;
  }
  throw new Error(`expected ${name}, but the call succeeded`);
}

/**
 * Moves the test clock of the server at `url`. With a principals file the request must be signed
 * by a principal in it: pass its credentials as `as`.
 */
export async function advanceClock(url: string, seconds: number, as?: { accessKeyId: string; secretAccessKey: string; region?: string }): Promise<number> {
  const body = JSON.stringify({ advanceSeconds: seconds });
  const res = as
    ? await postRaw(url, await handSign({ url, target: undefined, path: '/_local/clock', body, ...as }), body, { path: '/_local/clock' })
    : await fetch(`${url}/_local/clock`, { method: 'POST', body }).then(async (r) => ({ status: r.status, json: (await r.json()) as Record<string, unknown> }));
  if (res.status !== 200) throw new Error(`clock advance failed: ${res.status} ${JSON.stringify(res.json).slice(0, 200)}`);
  return res.json.now as number;
}

export const DAY = 86_400;

/** Runs `p` and returns the AWS error name it failed with (fails the test when it succeeds). */
export async function errorOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof KmsServiceError) return e.type;
    throw e;
  }
  throw new Error('expected the call to fail');
}
