/**
 * Vitest reporter: after a run, every test a compliance table cites (test/spec/compliance/) must
 * have run and passed. A cited test that was renamed, deleted, skipped or failed fails the run, so a
 * requirement cannot silently lose its test. Only test files that were part of the run are checked
 * (running one file checks that file's citations; `npm test` checks all of them).
 *
 * One exception, declared by the test file itself: a suite that needs something a machine may lack
 * (SoftHSM2 for the XKS proxy) is skipped with the reason in its name, `describe.skipIf(reason)(
 * `name (skipped: ${reason})`)`. Its cited tests are then reported as not run on this machine, with
 * the reason, instead of failing; where the requirement is present they must run and pass like any
 * other. Under CI (`CI` set: .ci/run installs SoftHSM2) there is no exception: a suite that skipped
 * itself fails the run, so a skip reason can never hide a requirement's test for good.
 */
import { relative, sep } from 'node:path';
import type { Reporter, TestModule } from 'vitest/node';
import { readAllRows, ROOT } from './trace.js';

/** Under CI every cited test must run: no suite may skip itself for the machine. */
const STRICT = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';

export default class TraceReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const ran = new Map<string, Map<string, string>>();
    // Tests of suites skipped for this machine, by their name without the "(skipped: reason)" part.
    const machineSkipped = new Map<string, Map<string, string>>();
    for (const m of modules) {
      const file = relative(ROOT, m.moduleId).split(sep).join('/');
      const states = new Map<string, string>();
      const skipped = new Map<string, string>();
      for (const t of m.children.allTests()) {
        const state = t.result().state;
        states.set(t.fullName, state);
        const split = withoutSkipReason(t.fullName);
        if (split !== undefined && state === 'skipped') skipped.set(split.name, split.reason);
      }
      ran.set(file, states);
      machineSkipped.set(file, skipped);
    }
    const problems: string[] = [];
    const notRunHere = new Map<string, number>();
    let checked = 0;
    for (const row of readAllRows()) {
      for (const ref of row.tests) {
        const states = ran.get(ref.file);
        if (!states) continue;
        const state = states.get(ref.name);
        const reason = state === undefined ? machineSkipped.get(ref.file)!.get(ref.name) : undefined;
        if (reason !== undefined && !STRICT) {
          notRunHere.set(reason, (notRunHere.get(reason) ?? 0) + 1);
          continue;
        }
        checked++;
        if (state !== 'passed') {
          problems.push(`${row.where} (${row.section} ${row.id}): \`${ref.file} > ${ref.name}\` ${state === undefined ? 'does not exist' : `did not pass (${state})`}`);
        }
      }
    }
    for (const [reason, n] of notRunHere) {
      process.stdout.write(`\nCompliance trace: ${n} cited test(s) not run on this machine: ${reason}.\n`);
    }
    if (problems.length > 0) {
      process.stderr.write(`\nCompliance trace: ${problems.length} cited test(s) missing or not passing:\n  ${problems.join('\n  ')}\n`);
      process.exitCode = 1;
    } else if (checked > 0) {
      process.stdout.write(`\nCompliance trace: ${checked} cited test(s) ran and passed.\n`);
    }
  }
}

/**
 * A test name with its " (skipped: reason)" part removed, and the reason; undefined when it has
 * none. The reason may hold parentheses of its own: the part ends at the parenthesis that closes it.
 */
function withoutSkipReason(fullName: string): { name: string; reason: string } | undefined {
  const marker = ' (skipped: ';
  const at = fullName.indexOf(marker);
  if (at < 0) return undefined;
  let depth = 1;
  for (let i = at + marker.length; i < fullName.length; i++) {
    if (fullName[i] === '(') depth++;
    else if (fullName[i] === ')' && --depth === 0) {
      return { name: fullName.slice(0, at) + fullName.slice(i + 1), reason: fullName.slice(at + marker.length, i) };
    }
  }
  return undefined;
}
