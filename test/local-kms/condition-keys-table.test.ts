/**
 * The README's tables of condition keys say exactly what request-context.ts supplies: per
 * permission a key policy authorizes (ACTION_KEYS), and per authorization AWS makes with IAM
 * policies alone (IAM_ONLY_ACTION_KEYS), with the resource identity policies must allow.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ACTION_KEYS, IAM_ONLY_ACTION_KEYS, type IamOnlyResource } from '../../src/local-kms/request-context.js';

const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');

/** Rows of the table after `marker`: its cells, for every line that starts with `| \``. */
function readmeRows(marker: string): string[][] {
  const start = readme.indexOf(marker);
  expect(start, `README table marker ${marker}`).toBeGreaterThan(0);
  const rows: string[][] = [];
  for (const line of readme.slice(start).split('\n').slice(3)) {
    if (!line.startsWith('| `')) break;
    rows.push(line.split('|').slice(1, -1).map((c) => c.trim()));
  }
  return rows;
}

const keysIn = (cell: string) => [...cell.matchAll(/`((?:kms|aws):[^`]+)`/g)].map((m) => m[1]!).sort();
const nameIn = (cell: string) => /^`([^`]+)`$/.exec(cell)![1]!;

describe('README condition-key tables', () => {
  it('lists, per permission, exactly the request keys ACTION_KEYS supplies', () => {
    const rows = readmeRows('<!-- condition-keys-table:');
    expect(rows.map((r) => nameIn(r[0]!)).sort()).toEqual(Object.keys(ACTION_KEYS).sort());
    for (const [permission, keys] of rows) {
      const spec = ACTION_KEYS[nameIn(permission!)]!;
      expect(keysIn(keys!), permission).toEqual([...spec.required, ...spec.optional].sort());
    }
  });

  it('lists, per IAM-only authorization, its permission, its resource and exactly the keys IAM_ONLY_ACTION_KEYS supplies', () => {
    const rows = readmeRows('<!-- iam-only-keys-table:');
    expect(rows.map((r) => nameIn(r[0]!)).sort()).toEqual(Object.keys(IAM_ONLY_ACTION_KEYS).sort());
    const resourceText: Record<IamOnlyResource, RegExp> = {
      account: /^`\*`/,
      'account-keys': /every key of the account and Region \(`arn:aws:kms:[^`]*:key\/\*`/,
      alias: /^the alias ARN/,
      principal: /^the retiring principal's ARN$/,
    };
    for (const [name, permission, resource, keys] of rows) {
      const spec = IAM_ONLY_ACTION_KEYS[nameIn(name!)]!;
      expect(nameIn(permission!), name).toBe(spec.action);
      expect(resource, name).toMatch(resourceText[spec.resource]);
      expect(keysIn(keys!), name).toEqual([...spec.required, ...spec.optional].sort());
    }
  });
});
