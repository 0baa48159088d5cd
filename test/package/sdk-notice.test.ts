/**
 * The AWS SDK prints an 8-line NodeVersionSupportWarning ("... will require node >=22 ...") once per
 * process on Node < 22. `npm test` runs in many processes (vitest workers, CLI and example children),
 * so the suite's output drowned in it. The test configuration (vitest.config.ts `test.env`) sets the
 * SDK's own switch, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true (read by
 * @aws-sdk/core's emitWarningIfUnsupportedVersion), for the workers and everything they spawn with
 * their environment. The library itself must not set it: the notice is for the application.
 */
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const SWITCH = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';
const nodeMajor = Number(process.versions.node.split('.')[0]);

/** A child that builds the library's default KMS client (what `kms: { keyId }` does) and makes one request. */
function childStderr(env: NodeJS.ProcessEnv): string {
  const script = `
    const { Envelope } = await import(${JSON.stringify(pathToFileURL(join(root, 'dist/index.js')).href)});
    const envelope = new Envelope({ kms: { keyId: 'arn:aws:kms:us-east-1:111122223333:key/k', region: 'us-east-1', endpoint: 'http://127.0.0.1:9' } });
    await envelope.encrypt('x').catch(() => {});
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: root,
    env: { ...env, AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'x', AWS_MAX_ATTEMPTS: '1', NODE_OPTIONS: '' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  expect(r.status, r.stderr).toBe(0);
  return r.stderr;
}

it('the test workers and the processes they spawn run with the SDK notice switched off', () => {
  expect(process.env[SWITCH]).toBe('true');
  expect(childStderr(process.env)).not.toMatch(/NodeVersionSupportWarning/);
});

it.runIf(nodeMajor < 22)('the library leaves the notice on for its users (only the tests switch it off)', () => {
  const env = { ...process.env };
  delete env[SWITCH];
  expect(childStderr(env)).toMatch(/NodeVersionSupportWarning/);
});
