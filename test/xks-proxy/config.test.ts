/**
 * The XKS proxy's config validation: every problem is an XksProxyConfigError (a TypeError) whose
 * message names the field, checked once before anything starts, and no message repeats a secret
 * access key or a PIN.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadXksProxyConfig, resolveXksProxyConfig, startXksProxy, XksProxyConfigError } from '../../src/xks-proxy/index.js';

const SECRET = 'PleaseReplaceThisWithSomeSecretOfLength43To64';
const PIN = 'pin-that-must-not-leak-7731';
const dir = mkdtempSync(join(tmpdir(), 'xks-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const valid = () => ({
  uriPrefix: 'example/uri/path/prefix',
  region: 'us-east-1',
  credentials: [{ accessKeyId: 'BETWEEN2TENAND3TENCHARACTERS', secretAccessKey: SECRET }],
  pkcs11: { module: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 'xks', pin: PIN } as Record<string, unknown>,
});

function problem(raw: unknown, env: NodeJS.ProcessEnv = {}): XksProxyConfigError {
  try {
    resolveXksProxyConfig(raw, { baseDir: dir, env });
  } catch (e) {
    expect(e).toBeInstanceOf(XksProxyConfigError);
    expect(e).toBeInstanceOf(TypeError);
    const msg = (e as Error).message;
    expect(msg).not.toContain(SECRET);
    expect(msg).not.toContain(PIN);
    return e as XksProxyConfigError;
  }
  throw new Error('accepted');
}

describe('XKS proxy config', () => {
  it('defaults: 127.0.0.1, port 0, plain HTTP; the prefix without its slashes', () => {
    const c = resolveXksProxyConfig({ ...valid(), uriPrefix: '/example/uri/path/prefix/' }, { env: {} });
    expect(c).toMatchObject({ host: '127.0.0.1', port: 0, uriPrefix: 'example/uri/path/prefix', region: 'us-east-1', tokenLabel: 'xks', pin: PIN });
    expect(c.tls).toBeUndefined();
    expect([...c.credentials.keys()]).toEqual(['BETWEEN2TENAND3TENCHARACTERS']);
  });

  it.each<[string, (c: ReturnType<typeof valid>) => unknown, string, RegExp]>([
    ['not an object', () => [], '(top level)', /JSON object/],
    ['an unknown field', (c) => ({ ...c, prot: 1 }), 'prot', /unknown field/],
    ['port 70000', (c) => ({ ...c, port: 70000 }), 'port', /0-65535/],
    ['port "80"', (c) => ({ ...c, port: '80' }), 'port', /integer/],
    ['a prefix with a space', (c) => ({ ...c, uriPrefix: 'a b' }), 'uriPrefix', /letters, digits/],
    ['a prefix with //', (c) => ({ ...c, uriPrefix: 'a//b' }), 'uriPrefix', /empty path segment/],
    ['a prefix over 128 characters of XksProxyUriPath', (c) => ({ ...c, uriPrefix: 'a'.repeat(117) }), 'uriPrefix', /129 characters long; at most 128/],
    ['no region', (c) => ({ ...c, region: undefined }), 'region', /non-empty string/],
    ['region "US"', (c) => ({ ...c, region: 'US' }), 'region', /not an AWS Region/],
    ['no credentials', (c) => ({ ...c, credentials: [] }), 'credentials', /1 or 2/],
    ['three credentials', (c) => ({ ...c, credentials: [1, 2, 3] }), 'credentials', /1 or 2/],
    ['a lower-case access key id', (c) => ({ ...c, credentials: [{ accessKeyId: 'between2tenand3tenchars', secretAccessKey: SECRET }] }), 'credentials[0].accessKeyId', /20-30 characters, A-Z and 2-7/],
    ['a 19-character access key id', (c) => ({ ...c, credentials: [{ accessKeyId: 'A'.repeat(19), secretAccessKey: SECRET }] }), 'credentials[0].accessKeyId', /20-30/],
    ['an access key id with 8 or 9', (c) => ({ ...c, credentials: [{ accessKeyId: `${'A'.repeat(20)}89`, secretAccessKey: SECRET }] }), 'credentials[0].accessKeyId', /2-7/],
    ['a 42-character secret', (c) => ({ ...c, credentials: [{ accessKeyId: 'A'.repeat(20), secretAccessKey: SECRET.slice(0, 42) }] }), 'credentials[0].secretAccessKey', /43-64 characters .* \(it has 42 characters\)/],
    ['a secret with a dash', (c) => ({ ...c, credentials: [{ accessKeyId: 'A'.repeat(20), secretAccessKey: `${SECRET}-` }] }), 'credentials[0].secretAccessKey', /A-Z, a-z, 0-9, \+, \/ and =/],
    ['a repeated access key id', (c) => ({ ...c, credentials: [c.credentials[0], { ...c.credentials[0] }] }), 'credentials[1].accessKeyId', /twice/],
    ['no pkcs11', (c) => ({ ...c, pkcs11: undefined }), 'pkcs11', /module, tokenLabel/],
    ['no module', (c) => ({ ...c, pkcs11: { ...c.pkcs11, module: undefined } }), 'pkcs11.module', /non-empty/],
    ['no PIN source', (c) => ({ ...c, pkcs11: { ...c.pkcs11, pin: undefined } }), 'pkcs11', /exactly one of pin, pinEnv, pinFile \(got none\)/],
    ['pin and pinEnv', (c) => ({ ...c, pkcs11: { ...c.pkcs11, pinEnv: 'X' } }), 'pkcs11', /got pin, pinEnv/],
    ['pinEnv naming an unset variable', (c) => ({ ...c, pkcs11: { ...c.pkcs11, pin: undefined, pinEnv: 'XKS_TEST_UNSET' } }), 'pkcs11.pinEnv', /XKS_TEST_UNSET is not set/],
    ['pinFile missing', (c) => ({ ...c, pkcs11: { ...c.pkcs11, pin: undefined, pinFile: 'nope.pin' } }), 'pkcs11.pinFile', /cannot read .*nope\.pin: ENOENT/],
    ['a non-loopback host without TLS', (c) => ({ ...c, host: '0.0.0.0' }), 'tls', /required to listen on 0\.0\.0\.0/],
    ['tls without key', (c) => ({ ...c, tls: { cert: 'a.crt' } }), 'tls.key', /non-empty/],
    ['a tls cert that is not there', (c) => ({ ...c, tls: { cert: 'a.crt', key: 'a.key' } }), 'tls.cert', /ENOENT/],
  ])('%s: names %s', (_, mutate, field, message) => {
    const e = problem(mutate(valid()));
    expect(e.field).toBe(field);
    expect(e.message).toMatch(new RegExp(`^xks-proxy config: ${field.replace(/[[\]().]/g, '\\$&')}: `));
    expect(e.message).toMatch(message);
  });

  it('the PIN from an environment variable or a file (one trailing newline dropped)', () => {
    const { pin: _, ...p } = valid().pkcs11;
    expect(resolveXksProxyConfig({ ...valid(), pkcs11: { ...p, pinEnv: 'XKS_PIN' } }, { env: { XKS_PIN: PIN } }).pin).toBe(PIN);
    writeFileSync(join(dir, 'user.pin'), `${PIN}\n`);
    expect(resolveXksProxyConfig({ ...valid(), pkcs11: { ...p, pinFile: 'user.pin' } }, { baseDir: dir, env: {} }).pin).toBe(PIN);
  });

  it('a config file that is not JSON: says where, not what (the text may hold a secret)', () => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, `{"credentials": [{"secretAccessKey": "${SECRET}" oops`);
    expect(() => loadXksProxyConfig(file)).toThrow(XksProxyConfigError);
    try {
      loadXksProxyConfig(file);
    } catch (e) {
      expect((e as Error).message).toMatch(/is not valid JSON/);
      expect((e as Error).message).not.toContain(SECRET);
    }
  });

  it('startXksProxy validates before touching the token', async () => {
    await expect(startXksProxy({ ...valid(), region: 'nowhere' } as unknown as Parameters<typeof startXksProxy>[0])).rejects.toThrow(/xks-proxy config: region:/);
  });
});
