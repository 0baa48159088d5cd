/**
 * The README's table of condition keys per permission says exactly what request-context.ts
 * supplies (ACTION_KEYS), and every permission the local KMS authorizes with a key policy is in it.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ACTION_KEYS } from '../../src/local-kms/request-context.js';

const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');

function readmeTable(): Map<string, string[]> {
  const start = readme.indexOf('<!-- condition-keys-table:');
  expect(start, 'README condition-keys table marker').toBeGreaterThan(0);
  const rows = new Map<string, string[]>();
  for (const line of readme.slice(start).split('\n').slice(3)) {
    if (!line.startsWith('| `kms:')) break;
    const [, permission, keys] = line.split('|').map((c) => c.trim());
    const name = /^`([^`]+)`$/.exec(permission!)![1]!;
    rows.set(name, [...keys!.matchAll(/`((?:kms|aws):[^`]+)`/g)].map((m) => m[1]!));
  }
  return rows;
}

describe('README condition-key table', () => {
  it('lists, per permission, exactly the request keys ACTION_KEYS supplies', () => {
    const table = readmeTable();
    expect([...table.keys()].sort()).toEqual(Object.keys(ACTION_KEYS).sort());
    for (const [permission, keys] of table) {
      const spec = ACTION_KEYS[permission]!;
      expect(keys.sort(), permission).toEqual([...spec.required, ...spec.optional].sort());
    }
  });
});
