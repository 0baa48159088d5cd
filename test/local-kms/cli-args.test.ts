import { expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

it('--console is a flag; with a non-loopback --host it is a usage error (exit 2)', async () => {
  expect(parseLocalKmsArgs(['--console'])).toMatchObject({ console: true });
  expect(() => parseLocalKmsArgs(['--console=yes'])).toThrow(/--console takes no value/);
  const { runLocalKmsCommand } = await import('../../src/local-kms/cli.js');
  const write = process.stderr.write;
  let err = '';
  process.stderr.write = ((s: string) => { err += s; return true; }) as typeof process.stderr.write;
  try {
    expect(await runLocalKmsCommand(['--console', '--host', '0.0.0.0', '--port', '0'])).toBe(2);
  } finally {
    process.stderr.write = write;
  }
  expect(err).toMatch(/console needs a loopback host/);
});

it('--hsm CLUSTER=LIBRARY:TOKEN (repeatable) names the PKCS#11 tokens custom key stores can use', () => {
  expect(parseLocalKmsArgs(['--hsm', 'cluster-1234567890a=/usr/lib/softhsm/libsofthsm2.so:kms-token', '--hsm=cluster-bbbbbbbbbbb=/opt/c:d/lib.so:t2'])).toMatchObject({
    hsms: {
      'cluster-1234567890a': { module: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 'kms-token' },
      'cluster-bbbbbbbbbbb': { module: '/opt/c:d/lib.so', tokenLabel: 't2' },
    },
  });
  expect(() => parseLocalKmsArgs(['--hsm', 'cluster-1234567890a'])).toThrow(/--hsm must be CLUSTER=PKCS11_LIBRARY:TOKEN_LABEL/);
  expect(() => parseLocalKmsArgs(['--hsm', 'cluster-1234567890a=/lib.so:'])).toThrow(/--hsm must be/);
  expect(() => parseLocalKmsArgs(['--hsm', 'c=/a:b', '--hsm', 'c=/d:e'])).toThrow(/given twice/);
  expect(() => parseLocalKmsArgs(['--hsm'])).toThrow(/--hsm needs a value/);
});

it('--xks-timeout-ms N and --xks-ca FILE (repeatable) set how external key store proxies are reached', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xks-ca-'));
  try {
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    expect(parseLocalKmsArgs(['--xks-timeout-ms', '2000', '--xks-ca', ca, `--xks-ca=${ca}`])).toMatchObject({
      xksProxyTimeoutMs: 2000,
      xksProxyCa: [readFileSync(ca, 'utf8'), readFileSync(ca, 'utf8')],
    });
    expect(() => parseLocalKmsArgs(['--xks-timeout-ms', 'soon'])).toThrow(/non-negative integer/);
    expect(() => parseLocalKmsArgs(['--xks-ca', join(dir, 'missing.pem')])).toThrow(/--xks-ca .*ENOENT/);
    expect(() => parseLocalKmsArgs(['--xks-ca'])).toThrow(LocalKmsUsageError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
