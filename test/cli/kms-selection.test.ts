/**
 * How the CLI picks its KMS (src/cli/kms.ts), checked in process without sending any request:
 * AWS clients are built lazily, so constructing a connection touches no network.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connectKms } from '../../src/cli/kms.js';
import { KmsKeyring } from '../../src/keyrings/kms.js';

const home = mkdtempSync(join(tmpdir(), 'kms-envelope-sel-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));
// Point the AWS config lookups at files that do not exist unless a test writes them.
const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
  AWS_CONFIG_FILE: join(home, 'config'),
  AWS_SHARED_CREDENTIALS_FILE: join(home, 'credentials'),
  ...extra,
});
const encrypt = (keyIds: string[]) => ({ mode: 'encrypt' as const, keyIds });
const ARN = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';

describe('connectKms (AWS environment)', () => {
  it('refuses with ERR_NO_KMS when there is no AWS environment at all', async () => {
    await expect(connectKms({}, encrypt(['alias/app']), env())).rejects.toMatchObject({
      code: 'ERR_NO_KMS',
      message: expect.stringMatching(/--local DIR.*--endpoint URL.*AWS_REGION/),
    });
  });

  it('uses AWS_REGION (or AWS_DEFAULT_REGION, or --region)', async () => {
    // The profile must exist (checked before the SDK would fail on missing credentials).
    writeFileSync(join(home, 'credentials'), '[dev]\naws_access_key_id = AKIDDEV\naws_secret_access_key = x\n');
    for (const [sel, extra] of [
      [{}, { AWS_REGION: 'eu-central-1' }],
      [{}, { AWS_DEFAULT_REGION: 'eu-central-1', AWS_ACCESS_KEY_ID: 'AKIDX' }],
      [{ region: 'eu-central-1' }, { AWS_PROFILE: 'dev' }],
    ] as const) {
      const c = await connectKms(sel, encrypt(['alias/app']), env(extra));
      expect(c.describe).toBe('AWS KMS in eu-central-1');
      expect(c.keyring).toBeInstanceOf(KmsKeyring);
      expect(c.keyring.keyIds).toEqual(['alias/app']);
      await c.close();
    }
    rmSync(join(home, 'credentials'));
  });

  it('refuses a profile that is in neither AWS file, naming the profile and both files', async () => {
    for (const [sel, extra, source] of [
      [{ profile: 'nosuch' }, {}, '--profile'],
      [{}, { AWS_PROFILE: 'nosuch', AWS_REGION: 'eu-west-1' }, 'AWS_PROFILE'],
    ] as const) {
      await expect(connectKms(sel, encrypt(['alias/app']), env(extra))).rejects.toMatchObject({
        code: 'ERR_NO_KMS',
        message: expect.stringMatching(new RegExp(`^${source} "nosuch": profile not found .*config.*credentials`)),
      });
    }
    // `[profile NAME]` or `[NAME]` in the config file, `[NAME]` in the credentials file.
    for (const [file, text] of [
      ['config', '[profile dev]\nregion = eu-west-1\n'],
      ['config', '[dev]\nregion = eu-west-1\n'],
      ['credentials', '[dev]\naws_access_key_id = AKIDDEV\n'],
    ] as const) {
      writeFileSync(join(home, file), text);
      const c = await connectKms({ profile: 'dev', region: 'eu-west-1' }, encrypt(['alias/app']), env());
      expect(c.describe, text).toBe('AWS KMS in eu-west-1');
      rmSync(join(home, file));
    }
  });

  it('needs a region for aliases and key ids, but not for key ARNs or discovery', async () => {
    const creds = env({ AWS_ACCESS_KEY_ID: 'AKIDX', AWS_SECRET_ACCESS_KEY: 'x' });
    await expect(connectKms({}, encrypt(['alias/app']), creds)).rejects.toMatchObject({
      code: 'ERR_NO_KMS',
      message: expect.stringMatching(/no AWS region for "alias\/app"/),
    });
    const byArn = await connectKms({}, encrypt([ARN]), creds);
    expect(byArn.describe).toBe('AWS KMS (regions from key ARNs)');
    const discovery = await connectKms({}, { mode: 'decrypt', keyIds: [], partition: 'aws' }, creds);
    expect(discovery.keyring.discovery).toBe(true);
    expect(discovery.keyring.discoveryFilter).toBeUndefined();
  });

  it("reads the profile's region from the AWS config file", async () => {
    writeFileSync(join(home, 'config'), '[default]\nregion = us-west-2\n[profile dev]\nregion = ap-south-1\n');
    expect((await connectKms({}, encrypt(['alias/app']), env())).describe).toBe('AWS KMS in us-west-2');
    expect((await connectKms({}, encrypt(['alias/app']), env({ AWS_PROFILE: 'dev' }))).describe).toBe('AWS KMS in ap-south-1');
    rmSync(join(home, 'config'));
  });

  it('builds a filtered discovery keyring for --allow-account', async () => {
    const c = await connectKms(
      {},
      { mode: 'decrypt', keyIds: [], allowAccounts: ['111122223333'], partition: 'aws-cn' },
      env({ AWS_REGION: 'cn-north-1' }),
    );
    expect(c.keyring.discoveryFilter).toEqual({ accountIds: ['111122223333'], partition: 'aws-cn' });
  });

  it('decrypt --key builds an MRK-aware strict keyring; decrypt --region without --key an MRK discovery keyring limited to that Region; encrypt stays plain', async () => {
    const creds = env({ AWS_ACCESS_KEY_ID: 'AKIDX', AWS_SECRET_ACCESS_KEY: 'x' });
    const strict = await connectKms({}, { mode: 'decrypt', keyIds: [ARN], partition: 'aws' }, creds);
    expect([strict.keyring.mrkAware, strict.keyring.discovery]).toEqual([true, false]);
    const regional = await connectKms(
      { region: 'eu-west-1' },
      { mode: 'decrypt', keyIds: [], allowAccounts: ['111122223333'], partition: 'aws', discoveryRegion: 'eu-west-1' },
      creds,
    );
    expect(regional.keyring.discoveryRegions).toEqual(['eu-west-1']);
    expect(regional.keyring.discoveryFilter).toEqual({ accountIds: ['111122223333'], partition: 'aws' });
    const open = await connectKms({ region: 'eu-west-1' }, { mode: 'decrypt', keyIds: [], partition: 'aws' }, creds);
    expect([open.keyring.discovery, open.keyring.discoveryRegions]).toEqual([true, undefined]);
    expect((await connectKms({}, encrypt([ARN]), creds)).keyring.mrkAware).toBe(false);
    for (const c of [strict, regional, open]) await c.close();
  });
});
