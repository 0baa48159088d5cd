import { readFileSync } from 'node:fs';
import * as sdk from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SUPPORTED_OPERATIONS, UNSUPPORTED_OPERATIONS } from '../../src/local-kms/service.js';
import { startServer } from './helpers.js';
import type { LocalKmsServer } from '../../src/local-kms/index.js';

/**
 * The local KMS answers every operation @aws-sdk/client-kms defines. The list comes from the SDK's
 * own exported `<Operation>Command` classes, so an SDK release with a new operation makes this test
 * name it. The operations allowed to answer UnsupportedOperationException are the README's table
 * "Operations the local KMS does not answer" (each with its reason), which must equal
 * UNSUPPORTED_OPERATIONS in src/local-kms/service.ts.
 */

const sdkOperations = Object.entries(sdk)
  .filter(([name, v]) => /^[A-Z]\w*Command$/.test(name) && typeof v === 'function')
  .map(([name]) => name.slice(0, -'Command'.length))
  .sort();

function readmeUnsupported(): Map<string, string> {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const marker = '<!-- unsupported-operations: checked against the SDK and UNSUPPORTED_OPERATIONS by test/local-kms/every-operation.test.ts -->';
  const at = readme.indexOf(marker);
  if (at < 0) throw new Error('README.md has no unsupported-operations table');
  const rows = new Map<string, string>();
  let inTable = false;
  for (const line of readme.slice(at + marker.length).split('\n').slice(1)) {
    if (!line.startsWith('|')) {
      // The table ends at its first non-table line, even when it lists no operation.
      if (inTable) break;
      continue;
    }
    inTable = true;
    const m = /^\| `(\w+)` \| (.+) \|$/.exec(line.trim());
    if (m) rows.set(m[1]!, m[2]!);
  }
  return rows;
}

describe('every operation of @aws-sdk/client-kms', () => {
  let server: LocalKmsServer;
  let kms: sdk.KMSClient;
  beforeAll(async () => {
    ({ server, kms } = await startServer());
  });
  afterAll(async () => {
    kms.destroy();
    await server.close();
  });

  it('the SDK defines the operations this test walks (a sanity check of the derivation)', () => {
    expect(sdkOperations.length).toBeGreaterThanOrEqual(56);
    expect(sdkOperations).toContain('Encapsulate');
    expect(sdkOperations).toContain('GetKeyLastUsage');
  });

  it('the README lists exactly the operations answered UnsupportedOperationException, each with its reason', () => {
    const listed = readmeUnsupported();
    expect([...listed.keys()].sort()).toEqual([...UNSUPPORTED_OPERATIONS].sort());
    for (const [op, why] of listed) expect(why.trim().length, `${op} needs a reason`).toBeGreaterThan(10);
  });

  it('every SDK operation is supported or listed as unsupported, and the local KMS has no operation the SDK lacks', () => {
    const known = new Set([...SUPPORTED_OPERATIONS, ...UNSUPPORTED_OPERATIONS]);
    expect(sdkOperations.filter((op) => !known.has(op)), 'SDK operations the local KMS does not know').toEqual([]);
    expect([...known].filter((op) => !sdkOperations.includes(op)), 'operations the SDK does not define').toEqual([]);
    expect(SUPPORTED_OPERATIONS.filter((op) => UNSUPPORTED_OPERATIONS.includes(op))).toEqual([]);
  });

  it('over HTTP, each operation sent by the SDK with an empty request gets an answer of its own, UnsupportedOperationException only for the listed ones', async () => {
    const listed = readmeUnsupported();
    const answers: Record<string, string> = {};
    for (const op of sdkOperations) {
      const Command = (sdk as unknown as Record<string, new (input: object) => sdk.KMSClient extends { send(c: infer C): unknown } ? C : never>)[`${op}Command`]!;
      try {
        await kms.send(new Command({}));
        answers[op] = 'ok';
      } catch (e) {
        answers[op] = (e as Error).name;
      }
    }
    for (const op of sdkOperations) {
      expect(answers[op], op).not.toBe('UnknownOperationException');
      if (listed.has(op)) expect(answers[op], op).toBe('UnsupportedOperationException');
      else expect(answers[op], op).not.toBe('UnsupportedOperationException');
    }
  });
});
