/**
 * The console in chromium, issue 16's remaining parts: imported key material with an expiration
 * date and its deletion, a multi-Region key from the wizard, the Region menu, and the "AWS
 * CloudHSM key store" and "External key store" origins (the latter with a real XKS proxy) (SoftHSM2 token; skipped with the reason when SoftHSM2 or pkcs11js
 * is missing, see test/local-kms/softhsm.ts). What the console did is checked over HTTP with
 * @aws-sdk/client-kms. Set-up and skip rule for chromium: ./harness.ts.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import {
  ConnectCustomKeyStoreCommand, CreateCustomKeyStoreCommand, DecryptCommand, DescribeCustomKeyStoresCommand, DescribeKeyCommand, EncryptCommand,
} from '@aws-sdk/client-kms';
import { CHROMIUM, ROOT, errorText, importMaterial, runWizard, startRig, type ConsoleRig } from './harness.js';
import { USER_PIN, skipReason as hsmSkipReason, softHsm, type SoftHsm } from '../local-kms/softhsm.js';
import { ACCESS_KEY_ID, SECRET_ACCESS_KEY, TOKEN_LABEL, xksFixture } from '../xks-proxy/harness.js';
import { createXksKey } from '../../src/xks-proxy/index.js';

const CLUSTER = 'cluster-2345678901a';
const OTHER_CLUSTER = 'cluster-bcdefghijkl';

let rig: ConsoleRig;
let hsm: SoftHsm | undefined;

beforeAll(async () => {
  if (!CHROMIUM) return;
  let options = {};
  if (hsmSkipReason === undefined) {
    // Before the server's first C_Initialize: softHsm() points SOFTHSM2_CONF at this file's own tokens.
    hsm = softHsm();
    hsm.initToken('console-a');
    hsm.initToken('console-b');
    hsm.initToken(TOKEN_LABEL); // the XKS proxy's token (test f): SoftHSM2 lists tokens at C_Initialize
    const dataDir = join(hsm.dir, 'data');
    mkdirSync(dataDir);
    options = {
      dataDir,
      hsms: { [CLUSTER]: { module: hsm.module, tokenLabel: 'console-a' }, [OTHER_CLUSTER]: { module: hsm.module, tokenLabel: 'console-b' } },
      // The XKS proxy of test (f) shares this loaded machine: more than AWS's 250 ms.
      xksProxyTimeoutMs: 10_000,
    };
  }
  rig = await startRig('kms-console-more-', options);
});
afterAll(async () => {
  if (rig) {
    expect(rig.pageErrors).toEqual([]);
    await rig.close();
  }
  hsm?.cleanup();
});

/** YYYY-MM-DD, `days` after today (UTC). */
function dateIn(days: number): string {
  return new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 10);
}

async function backToKeys(page: Page, region: string): Promise<void> {
  await page.click('text=Back to keys');
  await page.waitForSelector(`#keys`);
  expect(await page.textContent('#list-region')).toBe(region);
}

describe.skipIf(!CHROMIUM)('console: key material, multi-Region keys, the Region menu', () => {
  let externalKey = '';

  it('(a) material imported with an expiration date shows that date on the key material section; DescribeKey has it as ValidTo', async () => {
    const page = await rig.open(ROOT);
    await page.click('#create-key');
    externalKey = (await runWizard(page, [async (p) => p.check('input[name="origin"][value="EXTERNAL"]')])).keyId;
    expect(await page.textContent('#material-expiration')).toBe('—');
    const validTo = dateIn(30);
    await importMaterial(page, rig.dir, { validTo });
    expect(await page.textContent('#material-expiration')).toBe(`${validTo}T00:00:00Z`);
    const { KeyMetadata } = await rig.client(ROOT).send(new DescribeKeyCommand({ KeyId: externalKey }));
    expect([KeyMetadata!.ExpirationModel, KeyMetadata!.ValidTo!.toISOString()]).toEqual(['KEY_MATERIAL_EXPIRES', `${validTo}T00:00:00.000Z`]);
    await page.context().close();
  });

  it('(b) deleting the imported key material makes the key Pending import, in the console and over HTTP', async () => {
    const page = await rig.open(ROOT, `#/key/${externalKey}`);
    await page.waitForSelector('#general [data-state="Enabled"]');
    await page.click('#delete-material');
    await page.waitForSelector('#general [data-state="PendingImport"]');
    expect(await page.isDisabled('#delete-material')).toBe(true);
    expect(await page.textContent('#material-expiration')).toBe('—');
    const { KeyMetadata } = await rig.client(ROOT).send(new DescribeKeyCommand({ KeyId: externalKey }));
    expect(KeyMetadata!.KeyState).toBe('PendingImport');
    await page.context().close();
  });

  it('(c) a multi-Region key from the wizard is a primary key in the default Region (DescribeKey over HTTP)', async () => {
    const page = await rig.open(ROOT);
    await page.click('#create-key');
    const { keyId } = await runWizard(page, [async (p) => p.check('input[name="regionality"][value="multi"]'), async (p) => p.fill('#alias', 'console-mrk')]);
    expect(keyId).toMatch(/^mrk-[0-9a-f]{32}$/);
    expect(await page.textContent('#general')).toContain('Multi-Region');
    const { KeyMetadata } = await rig.client(ROOT).send(new DescribeKeyCommand({ KeyId: 'alias/console-mrk' }));
    expect(KeyMetadata).toMatchObject({ KeyId: keyId, MultiRegion: true, MultiRegionConfiguration: { MultiRegionKeyType: 'PRIMARY', PrimaryKey: { Region: 'us-east-1' } } });
    await page.context().close();
  });

  it('(d) the Region menu: a typed Region is checked, a key made there lists only there, and the menu then offers that Region', async () => {
    const page = await rig.open(ROOT);
    const options = async () => page.$$eval('#region option', (os) => os.map((o) => o.getAttribute('value')));
    expect(await options()).toEqual(['us-east-1', '']);
    expect(await page.textContent('#region option[value="us-east-1"]')).toBe('us-east-1 (default)');
    const homeRows = await page.locator('#keys tr[data-key-id]').count();
    expect(homeRows).toBeGreaterThan(0);

    await page.selectOption('#region', '');
    await page.fill('#region-name', 'cn-north-1'); // another partition: the server would not sign it in
    await page.click('#region-go');
    expect(await errorText(page)).toMatch(/^ValidationException: cn-north-1 is not in the partition/);
    await page.fill('#region-name', 'eu-west-1');
    await page.click('#region-go');
    await page.waitForSelector('main[data-region="eu-west-1"]');
    expect(await page.textContent('#list-region')).toBe('eu-west-1');
    expect(await page.locator('#keys tr[data-key-id]').count()).toBe(0);

    await page.click('#create-key');
    const { keyId } = await runWizard(page, [async () => {}, async (p) => p.fill('#alias', 'in-ireland')]);
    expect(await page.textContent('#general')).toContain(`arn:aws:kms:eu-west-1:`);
    await backToKeys(page, 'eu-west-1');
    expect(await page.locator('#keys tr[data-key-id]').count()).toBe(1);
    expect(await page.textContent(`#keys tr[data-key-id="${keyId}"] td:last-child`)).toBe('eu-west-1');
    expect(await options()).toEqual(['eu-west-1', 'us-east-1', '']);

    // Over HTTP: the key is eu-west-1's (a client of that Region finds it, one of us-east-1 does not).
    const { KeyMetadata } = await rig.client(ROOT, 'eu-west-1').send(new DescribeKeyCommand({ KeyId: 'alias/in-ireland' }));
    expect(KeyMetadata!.Arn!.split(':')[3]).toBe('eu-west-1');
    await expect(rig.client(ROOT).send(new DescribeKeyCommand({ KeyId: keyId }))).rejects.toMatchObject({ name: 'NotFoundException' });

    await page.selectOption('#region', 'us-east-1');
    await page.waitForSelector('main[data-region="us-east-1"]');
    expect(await page.locator('#keys tr[data-key-id]').count()).toBe(homeRows);
    expect(await page.locator(`#keys tr[data-key-id="${keyId}"]`).count()).toBe(0);
    // The Japanese header names the menu with the AWS console's word.
    await page.selectOption('#lang', 'ja');
    await page.waitForSelector('#region-label:text-is("リージョン")');
    await page.selectOption('#lang', 'en');
    await page.context().close();
  });
});

describe.skipIf(!CHROMIUM || hsmSkipReason !== undefined)(`console: the custom key store origins${hsmSkipReason ? ` (skipped: ${hsmSkipReason})` : ''}`, () => {
  it('(e) only the CONNECTED store is selectable, the origin forces a symmetric single-Region key, and DescribeKey names the store', async () => {
    const kms = rig.client(ROOT);
    const anchor = hsm!.certificate('consoleCA');
    const { CustomKeyStoreId: storeId } = await kms.send(new CreateCustomKeyStoreCommand({
      CustomKeyStoreName: 'console-hsm', CloudHsmClusterId: CLUSTER, TrustAnchorCertificate: anchor, KeyStorePassword: USER_PIN,
    }));
    const { CustomKeyStoreId: idleId } = await kms.send(new CreateCustomKeyStoreCommand({
      CustomKeyStoreName: 'idle-hsm', CloudHsmClusterId: OTHER_CLUSTER, TrustAnchorCertificate: anchor, KeyStorePassword: USER_PIN,
    }));
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    const states = (await kms.send(new DescribeCustomKeyStoresCommand({}))).CustomKeyStores!.map((s) => [s.CustomKeyStoreId, s.ConnectionState]);
    expect(states).toContainEqual([storeId, 'CONNECTED']);

    const page = await rig.open(ROOT);
    await page.click('#create-key');
    await page.waitForSelector('#wizard-step-1');
    expect(await page.locator('input[name="origin"][value="EXTERNAL_KEY_STORE"]').count()).toBe(0); // no store of that type
    await page.check('input[name="origin"][value="AWS_CLOUDHSM"]');
    expect(await page.isDisabled('input[name="keyType"][value="asymmetric"]')).toBe(true);
    expect(await page.isDisabled('input[name="regionality"][value="multi"]')).toBe(true);
    expect(await page.isDisabled(`#store-list input[data-store-id="${idleId}"]`)).toBe(true);
    expect(await page.textContent(`#store-list label:has(input[data-store-id="${idleId}"]) [data-connection]`)).toBe('Disconnected');
    await page.click('#wizard-next');
    expect(await errorText(page)).toBe('Choose a connected custom key store.');
    await page.check(`#store-list input[data-store-id="${storeId}"]`);
    await rig.shot(page, 'console-wizard-custom-key-store.png');
    const { keyId } = await runWizard(page, [async () => {}, async (p) => p.fill('#alias', 'in-the-hsm')]);
    expect(await page.textContent('#custom-key-store-id')).toBe(storeId);
    expect(await page.textContent('#cloudhsm-cluster-id')).toBe(CLUSTER);
    const { KeyMetadata } = await kms.send(new DescribeKeyCommand({ KeyId: keyId }));
    expect(KeyMetadata).toMatchObject({ CustomKeyStoreId: storeId, CloudHsmClusterId: CLUSTER, Origin: 'AWS_CLOUDHSM', KeySpec: 'SYMMETRIC_DEFAULT', MultiRegion: false });

    await page.context().close();

    // The read-only list of custom key stores, in both languages.
    const list = await rig.open(ROOT, '#/custom-key-stores');
    await list.waitForSelector(`#key-stores tr[data-store-id="${storeId}"]`);
    expect(await list.textContent(`#key-stores tr[data-store-id="${storeId}"]`)).toMatch(/console-hsm.*AWS CloudHSM key store.*Connected/);
    expect(await list.textContent(`#key-stores tr[data-store-id="${idleId}"] [data-connection]`)).toBe('Disconnected');
    await rig.shot(list, 'console-custom-key-stores.png');
    await list.selectOption('#lang', 'ja');
    await list.waitForSelector(`#key-stores tr[data-store-id="${storeId}"] [data-connection]:text-is("接続済み")`);
    await list.selectOption('#lang', 'en');
    await list.context().close();
  });
  it('(f) an external key store: the wizard offers it with an External key ID, and the key it makes is an XKS key of the real proxy', async () => {
    // A real XKS proxy (kms-envelope/xks-proxy) on its own SoftHSM2 token, reached by the local KMS
    // over loopback HTTP; runs after (e), which checks that no external store is offered yet.
    const xks = await xksFixture({ hsm: hsm! });
    try {
      await createXksKey(xks.config, 'console-ext-key');
      const kms = rig.client(ROOT);
      const { CustomKeyStoreId: xksStore } = await kms.send(new CreateCustomKeyStoreCommand({
        CustomKeyStoreName: 'console-xks',
        CustomKeyStoreType: 'EXTERNAL_KEY_STORE',
        XksProxyUriEndpoint: xks.proxy.url,
        XksProxyUriPath: xks.proxy.uriPath,
        XksProxyConnectivity: 'PUBLIC_ENDPOINT',
        XksProxyAuthenticationCredential: { AccessKeyId: ACCESS_KEY_ID, RawSecretAccessKey: SECRET_ACCESS_KEY },
      }));
      await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: xksStore }));

      const page = await rig.open(ROOT);
      await page.click('#create-key');
      await page.waitForSelector('#wizard-step-1');
      await page.check('input[name="keyType"][value="asymmetric"]');
      expect(await page.isDisabled('input[name="origin"][value="EXTERNAL_KEY_STORE"]')).toBe(true); // symmetric encryption keys only
      await page.check('input[name="keyType"][value="symmetric"]');
      await page.check('input[name="regionality"][value="multi"]');
      await page.check('input[name="origin"][value="EXTERNAL_KEY_STORE"]');
      expect(await page.isChecked('input[name="regionality"][value="single"]')).toBe(true);
      await page.check(`#store-list input[data-store-id="${xksStore}"]`);
      await page.fill('#xks-key-id', 'bad key id!');
      await page.click('#wizard-next');
      expect(await errorText(page)).toMatch(/^Enter the external key ID/);
      await page.fill('#xks-key-id', 'console-ext-key');
      const { keyId } = await runWizard(page, [async () => {}, async (p) => p.fill('#alias', 'outside-kms'), async () => {}, async () => {}, async (p) => {
        expect(await p.textContent('#review')).toContain('console-ext-key');
      }]);
      expect(await page.textContent('#custom-key-store-id')).toBe(xksStore);
      expect(await page.textContent('#xks-key-id-value')).toBe('console-ext-key');
      const { KeyMetadata } = await kms.send(new DescribeKeyCommand({ KeyId: keyId }));
      expect(KeyMetadata).toMatchObject({
        Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: xksStore, XksKeyConfiguration: { Id: 'console-ext-key' }, KeySpec: 'SYMMETRIC_DEFAULT', MultiRegion: false,
      });
      // The key works, through the proxy (its log shows one Encrypt and one Decrypt).
      const before = xks.log.length;
      const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('through the proxy') }));
      expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob }))).Plaintext!).toString()).toBe('through the proxy');
      expect(xks.log.slice(before).map((e) => [e.api, e.status])).toEqual([['Encrypt', 200], ['Decrypt', 200]]);
      await page.context().close();
    } finally {
      await xks.proxy.close();
    }
  });
});
