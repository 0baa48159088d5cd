/**
 * Reads the compliance tables in test/spec/compliance/: one markdown table per specification file,
 * one row per requirement. Shared by the static check (compliance.test.ts) and by the reporter that
 * checks, after a run, that every cited test ran and passed (trace-reporter.ts).
 *
 * Row: | id | level | fingerprint | requirement, in our words | status | evidence |
 *   status `test`:     evidence is one or more `path/to/file.test.ts > describe > test name` in backticks
 *   status `n/a`:      evidence says why the requirement does not apply to this library
 *   status `declined`: SHOULD/MAY only; evidence says why we chose not to
 *   status `deviation`: a deliberate, documented difference from the requirement (a default we chose
 *                      otherwise); evidence says why and cites the test(s) that pin what we do instead
 *   status `open`:     not yet traced; never allowed for MUST / MUST NOT
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const TABLES = join(ROOT, 'test', 'spec', 'compliance');

export const LEVELS = ['MUST', 'MUST NOT', 'SHOULD', 'SHOULD NOT', 'MAY'] as const;
export const STATUSES = ['test', 'n/a', 'declined', 'deviation', 'open'] as const;
export type Level = (typeof LEVELS)[number];
export type Status = (typeof STATUSES)[number];

export interface TestRef {
  /** Test file, relative to the repository root, with forward slashes. */
  file: string;
  /** Full name as vitest reports it: describe blocks and the test name joined by ' > '. */
  name: string;
}

export interface Row {
  /** Specification file, e.g. `client-apis/decrypt.md`. */
  section: string;
  /** `<section anchor>/<n>` as scripts/spec-requirements.mjs assigns it. */
  id: string;
  level: string;
  fp: string;
  text: string;
  status: string;
  evidence: string;
  tests: TestRef[];
  /** Table file and line, for messages. */
  where: string;
}

const posix = (p: string) => p.split(sep).join('/');

export function tableFiles(): string[] {
  return readdirSync(TABLES, { withFileTypes: true, recursive: true })
    .filter((d) => d.isFile() && d.name.endsWith('.md') && d.name !== 'README.md')
    .map((d) => join(d.parentPath, d.name))
    .sort();
}

/** `file > a > b` refs in backticks; the file part ends at the first ' > '. */
export function parseRefs(evidence: string): TestRef[] {
  const refs: TestRef[] = [];
  for (const m of evidence.matchAll(/`([^`]+)`/g)) {
    const s = m[1]!;
    const at = s.indexOf(' > ');
    if (at < 0 || !/\.test\.ts$/.test(s.slice(0, at))) continue;
    refs.push({ file: s.slice(0, at), name: s.slice(at + 3) });
  }
  return refs;
}

/** Cells of a table row; a `|` inside backticks (a test name) does not split. */
function splitCells(line: string): string[] {
  const cells: string[] = [];
  let cur = '';
  let code = false;
  for (let i = 1; i < line.length; i++) {
    const c = line[i]!;
    if (c === '`') code = !code;
    if (c === '|' && !code) {
      cells.push(cur.trim());
      cur = '';
    } else cur += c;
  }
  if (cur.trim() !== '') cells.push(cur.trim());
  return cells;
}

export function readTable(file: string): Row[] {
  const section = posix(relative(TABLES, file));
  const rows: Row[] = [];
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (!line.startsWith('|')) return;
      const cells = splitCells(line);
      if (cells.length !== 6 || !/\/\d+$/.test(cells[0]!)) return;
      const [id, level, fp, text, status, evidence] = cells as [string, string, string, string, string, string];
      rows.push({ section, id, level, fp, text, status, evidence, tests: status === 'test' || status === 'deviation' ? parseRefs(evidence) : [], where: `${posix(relative(ROOT, file))}:${i + 1}` });
    });
  return rows;
}

export function readAllRows(): Row[] {
  return tableFiles().flatMap(readTable);
}
