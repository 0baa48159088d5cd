import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LEVELS, readAllRows, readTable, ROOT, STATUSES, tableFiles, TABLES } from './trace.js';

// The specification files the library implements, with the commit the tables were read against
// (test/spec/compliance/README.md says how to re-check them with scripts/spec-requirements.mjs).
const README = readFileSync(join(TABLES, 'README.md'), 'utf8');
const LISTED = [...README.matchAll(/^\| `([\w/.-]+\.md)` \|/gm)].map((m) => m[1]!);

describe('compliance tables (test/spec/compliance)', () => {
  const rows = readAllRows();

  it('has one table for every specification file the README lists, and no other', () => {
    expect(LISTED.length).toBeGreaterThan(0);
    const have = tableFiles().map((f) => f.slice(TABLES.length + 1).split('\\').join('/'));
    expect(have.sort()).toEqual([...LISTED].sort());
  });

  it('every row is well formed: unique id, level, 10-hex fingerprint, our words, known status', () => {
    for (const file of tableFiles()) {
      const seen = new Set<string>();
      const table = readTable(file);
      expect(table.length, file).toBeGreaterThan(0);
      for (const r of table) {
        expect(seen.has(r.id), `${r.where}: duplicate id ${r.id}`).toBe(false);
        seen.add(r.id);
        expect(LEVELS, r.where).toContain(r.level);
        expect(r.fp, r.where).toMatch(/^[0-9a-f]{10}$/);
        expect(r.text.length, `${r.where}: requirement text`).toBeGreaterThan(10);
        expect(STATUSES, r.where).toContain(r.status);
        expect(r.evidence.length, `${r.where}: evidence`).toBeGreaterThan(3);
      }
    }
  });

  it('no MUST or MUST NOT is open or declined (a deviation must be deliberate, documented and pinned by a test)', () => {
    const bad = rows.filter((r) => (r.level === 'MUST' || r.level === 'MUST NOT') && (r.status === 'open' || r.status === 'declined'));
    expect(bad.map((r) => `${r.where} ${r.section} ${r.id} (${r.status})`)).toEqual([]);
  });

  it('a row traced to tests names at least one, in a test file that exists (trace-reporter.ts checks after a run that it passed)', () => {
    const problems: string[] = [];
    for (const r of rows.filter((r) => r.status === 'test' || r.status === 'deviation')) {
      if (r.tests.length === 0) problems.push(`${r.where}: status ${r.status} without a \`file > name\` reference`);
      for (const t of r.tests) if (!existsSync(join(ROOT, t.file))) problems.push(`${r.where}: ${t.file} does not exist`);
    }
    expect(problems).toEqual([]);
  });

  it('prints the counts by level and status', () => {
    const counts: Record<string, Record<string, number>> = {};
    for (const r of rows) {
      const level = r.level.startsWith('MUST') ? 'MUST/MUST NOT' : r.level.startsWith('SHOULD') ? 'SHOULD/SHOULD NOT' : 'MAY';
      counts[level] ??= {};
      counts[level]![r.status] = (counts[level]![r.status] ?? 0) + 1;
    }
    // eslint-disable-next-line no-console
    console.log(`compliance: ${rows.length} requirements`, JSON.stringify(counts));
    expect(rows.length).toBeGreaterThan(0);
  });
});
