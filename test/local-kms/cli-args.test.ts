import { expect, it } from 'vitest';
import { LocalKmsUsageError, parseLocalKmsArgs } from '../../src/local-kms/cli.js';

it('parses local-kms options and refuses an option where a value belongs', () => {
  expect(parseLocalKmsArgs(['--port', '0', '--data-dir', 'kms', '--test-clock'])).toMatchObject({
    port: 0,
    dataDir: 'kms',
    testClock: true,
  });
  expect(parseLocalKmsArgs(['--data-dir=--odd-but-explicit'])).toMatchObject({ dataDir: '--odd-but-explicit' });
  expect(() => parseLocalKmsArgs(['--data-dir', '--test-clock'])).toThrow(LocalKmsUsageError);
  expect(() => parseLocalKmsArgs(['--data-dir', '--test-clock'])).toThrow(/--data-dir needs a value/);
  expect(() => parseLocalKmsArgs(['--port', '70000'])).toThrow(/--port must be 0-65535/);
  expect(() => parseLocalKmsArgs(['--bogus'])).toThrow(/unknown option/);
});
