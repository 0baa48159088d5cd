/**
 * Review finding: Envelope.decryptFile opened the source file before validating options.context,
 * so a bad context threw with the read stream's descriptor left open.
 */
import { expect, it, onTestFinished } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Envelope, RawAesKeyring } from '../../src/index.js';

const openFds = (): number => readdirSync('/proc/self/fd').length;

it.skipIf(process.platform !== 'linux')('decryptFile with a bad context throws before opening anything', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kms-envelope-review-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const envelope = new Envelope({ keyring: new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', key: randomBytes(32) }) });
  const src = join(dir, 'in.enc');
  writeFileSync(src, await envelope.encrypt('hello'));
  await new Promise((r) => setTimeout(r, 20));
  const before = openFds();
  for (let i = 0; i < 20; i++) {
    await expect(envelope.decryptFile(src, join(dir, 'out'), { context: { a: 1 as never } })).rejects.toThrow(TypeError);
  }
  await new Promise((r) => setTimeout(r, 50));
  expect(openFds()).toBeLessThan(before + 5);
  expect(readdirSync(dir)).toEqual(['in.enc']);
});
