/**
 * Vitest reporter: after a run, every test a compliance table cites (test/spec/compliance/) must
 * have run and passed. A cited test that was renamed, deleted, skipped or failed fails the run, so a
 * requirement cannot silently lose its test. Only test files that were part of the run are checked
 * (running one file checks that file's citations; `npm test` checks all of them).
 */
import { relative, sep } from 'node:path';
import type { Reporter, TestModule } from 'vitest/node';
import { readAllRows, ROOT } from './trace.js';

export default class TraceReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const ran = new Map<string, Map<string, string>>();
    for (const m of modules) {
      const file = relative(ROOT, m.moduleId).split(sep).join('/');
      const states = new Map<string, string>();
      for (const t of m.children.allTests()) states.set(t.fullName, t.result().state);
      ran.set(file, states);
    }
    const problems: string[] = [];
    let checked = 0;
    for (const row of readAllRows()) {
      for (const ref of row.tests) {
        const states = ran.get(ref.file);
        if (!states) continue;
        checked++;
        const state = states.get(ref.name);
        if (state !== 'passed') {
          problems.push(`${row.where} (${row.section} ${row.id}): \`${ref.file} > ${ref.name}\` ${state === undefined ? 'does not exist' : `did not pass (${state})`}`);
        }
      }
    }
    if (problems.length > 0) {
      process.stderr.write(`\nCompliance trace: ${problems.length} cited test(s) missing or not passing:\n  ${problems.join('\n  ')}\n`);
      process.exitCode = 1;
    } else if (checked > 0) {
      process.stdout.write(`\nCompliance trace: ${checked} cited test(s) ran and passed.\n`);
    }
  }
}
