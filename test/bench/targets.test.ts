/**
 * The benchmark report's "Targets" section: `node bench/run.mjs policy` (a group without targets)
 * ended with "### Targets 0 of 0 pass". The section is printed only when there are targets.
 */
import { expect, it } from 'vitest';

type Check = { name: string; pass: boolean };
// A string specifier: bench/ is plain .mjs without declarations.
const lib = '../../bench/lib.mjs';
const { targetsSection } = (await import(lib)) as { targetsSection: (checks: Check[]) => string | undefined };

it('has no Targets section without targets, and counts them when there are some', () => {
  expect(targetsSection([])).toBeUndefined();
  expect(targetsSection([{ name: 'a', pass: true }, { name: 'b', pass: true }])).toBe('### Targets\n\n2 of 2 pass.');
  expect(targetsSection([{ name: 'a', pass: true }, { name: 'b', pass: false }])).toBe('### Targets\n\n1 of 2 pass; failing: b.');
});
