/**
 * The local KMS web console in a real browser: Debian's chromium, headless, driven by
 * playwright-core (no browser download). The server runs with a principals file (root, a key
 * administrator, a key user) and the console acts as the principal picked in its header, so
 * every check below is also a check that key policies apply to the console as to an SDK.
 * Shared set-up, screenshots and skip rule: ./harness.ts.
 */
import { readFileSync } from 'node:fs';
import { createPublicKey } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import {
  DescribeKeyCommand, EncryptCommand, GetKeyPolicyCommand, GetKeyRotationStatusCommand, GetPublicKeyCommand, ListResourceTagsCommand,
} from '@aws-sdk/client-kms';
import { keyPolicyFor } from '../../src/local-kms/generated-policies.js';
import { Envelope } from '../../src/index.js';
import { ACCOUNT, ADMIN, CHROMIUM, ROOT, USER, errorText, importMaterial, runWizard, startRig, type ConsoleRig } from './harness.js';

let rig: ConsoleRig;
let dir = '';
const server = { get url() { return rig.server.url; } };
const client = (who: { id: string; secret: string }) => rig.client(who);
const open = (who: { id: string }, path = '') => rig.open(who, path);
const shot = (page: Page, name: string) => rig.shot(page, name);
const wizard = (page: Page, steps: Array<(p: Page) => Promise<void>>, shotPrefix?: string) =>
  runWizard(page, steps, shotPrefix ? { rig, prefix: shotPrefix } : undefined);

beforeAll(async () => {
  if (!CHROMIUM) return;
  rig = await startRig('kms-console-browser-');
  dir = rig.dir;
});
afterAll(async () => {
  if (!rig) return;
  expect(rig.pageErrors).toEqual([]);
  await rig.close();
});

describe.skipIf(!CHROMIUM)('the local KMS console in chromium', () => {
  let keyId = '';

  it('(a) the wizard creates a symmetric key with alias, description, two tags, an administrator and a user; its policy is keyPolicyFor', async () => {
    const page = await open(ROOT);
    await page.click('#create-key');
    const made = await wizard(page, [
      async () => {},
      async (p) => {
        await p.fill('#alias', 'console-demo');
        await p.fill('#description', 'Made in the console');
        await p.click('#add-tag');
        await p.click('#add-tag');
        await p.locator('.tag-key').nth(0).fill('team');
        await p.locator('.tag-value').nth(0).fill('payments');
        await p.locator('.tag-key').nth(1).fill('env');
        await p.locator('.tag-value').nth(1).fill('dev');
      },
      async (p) => p.check(`#admin-list input[data-arn="${ADMIN.arn}"]`),
      async (p) => p.check(`#user-list input[data-arn="${USER.arn}"]`),
    ], 'console-wizard-step');
    keyId = made.keyId;
    expect(made.policy).toBe(keyPolicyFor({ accountId: ACCOUNT, administrators: [ADMIN.arn], users: [USER.arn] }));
    expect(await page.textContent('#notice')).toContain(keyId);
    await shot(page, 'console-key-page.png');

    const rootKms = client(ROOT);
    const { KeyMetadata } = await rootKms.send(new DescribeKeyCommand({ KeyId: 'alias/console-demo' }));
    expect([KeyMetadata!.KeyId, KeyMetadata!.Description, KeyMetadata!.KeySpec]).toEqual([keyId, 'Made in the console', 'SYMMETRIC_DEFAULT']);
    const { Tags } = await rootKms.send(new ListResourceTagsCommand({ KeyId: keyId }));
    expect(Tags!.map((t) => `${t.TagKey}=${t.TagValue}`).sort()).toEqual(['env=dev', 'team=payments']);
    // Over HTTP, signed: the user encrypts, the administrator may not.
    const out = await client(USER).send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('hello') }));
    expect(out.CiphertextBlob!.length).toBeGreaterThan(0);
    await expect(client(ADMIN).send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('hello') }))).rejects.toMatchObject({ name: 'AccessDeniedException' });
    await page.context().close();
  });

  it('(b) signed in as the administrator, encrypting a test message in the console is AccessDenied; as the user it works', async () => {
    const admin = await open(ADMIN, `#/key/${keyId}`);
    await admin.waitForSelector('#encrypt-test');
    await admin.click('#encrypt-test');
    const text = await errorText(admin);
    expect(text).toMatch(/^AccessDeniedException: /);
    expect(text).toContain(ADMIN.arn);
    await admin.context().close();
    const user = await open(USER, `#/key/${keyId}`);
    await user.click('#encrypt-test');
    await user.waitForSelector('#notice:not(.hidden)');
    expect(await user.textContent('#notice')).toMatch(/Encrypted: \d+ bytes of ciphertext/);
    await user.context().close();
  });

  it('(c) an External key from the wizard takes material wrapped by openssl; then Envelope round-trips with it', async () => {
    const page = await open(ROOT);
    await page.click('#create-key');
    const made = await wizard(page, [
      async (p) => p.check('input[name="origin"][value="EXTERNAL"]'),
      async (p) => p.fill('#alias', 'console-imported'),
      async (p) => p.check(`#admin-list input[data-arn="${ADMIN.arn}"]`),
      async (p) => p.check(`#user-list input[data-arn="${USER.arn}"]`),
    ]);
    expect(made.policy).toBe(keyPolicyFor({ accountId: ACCOUNT, administrators: [ADMIN.arn], users: [USER.arn], externalOrigin: true }));
    expect(await page.getAttribute('#general [data-state]', 'data-state')).toBe('PendingImport');
    await importMaterial(page, dir, {
      algorithm: 'RSAES_OAEP_SHA_1',
      downloaded: async (files) => {
        expect(Object.keys(files).sort()).toEqual(['ImportToken.bin', 'WrappingPublicKey.bin']);
        expect(await page.textContent('#token-expiry')).toMatch(/Import token expires: \d{4}-\d\d-\d\dT/);
        await shot(page, 'console-key-material.png');
      },
    });
    expect(await page.textContent('#notice')).toContain('Key material imported.');

    const { KeyMetadata } = await client(ROOT).send(new DescribeKeyCommand({ KeyId: made.keyId }));
    expect([KeyMetadata!.KeyState, KeyMetadata!.Origin]).toEqual(['Enabled', 'EXTERNAL']);
    const envelope = new Envelope({ kms: { keyId: KeyMetadata!.Arn!, client: client(USER) } });
    const message = await envelope.encrypt('imported through the console');
    expect((await envelope.decrypt(message)).plaintext.toString()).toBe('imported through the console');
    await page.context().close();
  });

  it('(d) deletion is scheduled after typing the confirmation, shows in the list, and is cancelled', async () => {
    const page = await open(ROOT, `#/key/${keyId}`);
    await page.waitForSelector('#schedule-deletion');
    expect(await page.isDisabled('#schedule-deletion')).toBe(true);
    await page.fill('#pending-days', '7');
    await page.fill('#confirm-deletion', 'delete');
    await page.click('#schedule-deletion');
    await page.waitForSelector('#general [data-state="PendingDeletion"]');
    expect(await page.textContent('#deletion-date')).toMatch(/^\d{4}-/);
    await page.click('text=Back to keys');
    await page.waitForSelector(`#keys tr[data-key-id="${keyId}"] [data-state="PendingDeletion"]`);
    await page.uncheck('#show-pending');
    expect(await page.locator(`#keys tr[data-key-id="${keyId}"]`).count()).toBe(0);
    await page.goto(`${server.url}/console#/key/${keyId}`);
    await page.click('#cancel-deletion');
    await page.waitForSelector('#general [data-state="Disabled"]');
    const { KeyMetadata } = await client(ROOT).send(new DescribeKeyCommand({ KeyId: keyId }));
    expect(KeyMetadata!.KeyState).toBe('Disabled');
    await page.context().close();
  });

  it('an asymmetric signing key: its public key downloads as PEM; policy edit, rotation and tags on the key page', async () => {
    const page = await open(ROOT);
    await page.click('#create-key');
    const made = await wizard(page, [
      async (p) => {
        await p.check('input[name="keyType"][value="asymmetric"]');
        await p.check('input[name="keyUsage"][value="SIGN_VERIFY"]');
        await p.selectOption('#key-spec', 'ECC_NIST_P256');
      },
      async (p) => p.fill('#alias', 'console-signing'),
      async (p) => {
        await p.fill('#admin-arn', ADMIN.arn.replace('key-admin', 'typed-admin'));
        await p.click('#admin-add');
      },
      async (p) => {
        await p.check(`#user-list input[data-arn="${USER.arn}"]`);
        await p.click('#add-account');
        await p.fill('.account-id', '444455556666');
      },
    ]);
    expect(made.policy).toBe(keyPolicyFor({ accountId: ACCOUNT, administrators: [ADMIN.arn.replace('key-admin', 'typed-admin')], users: [USER.arn, 'arn:aws:iam::444455556666:root'], keyKind: 'SIGN_VERIFY' }));
    const download = page.waitForEvent('download');
    await page.click('#download-public-key');
    const pemFile = join(dir, 'public.pem');
    await (await download).saveAs(pemFile);
    const { PublicKey } = await client(ROOT).send(new GetPublicKeyCommand({ KeyId: made.keyId }));
    expect(createPublicKey(readFileSync(pemFile, 'utf8')).export({ format: 'der', type: 'spki' }).equals(Buffer.from(PublicKey!))).toBe(true);

    // Tags: add, then remove.
    await page.fill('#new-tag-key', 'owner');
    await page.fill('#new-tag-value', 'console');
    await page.click('#add-tag-btn');
    await page.waitForSelector('#tag-table td:text-is("owner")');
    // Policy edit: an invalid policy is refused with the KMS error, a valid one saved.
    await page.click('#edit-policy');
    await page.fill('#policy-edit', '{"Statement": 1}');
    await page.click('#save-policy');
    expect(await errorText(page)).toMatch(/^MalformedPolicyDocumentException: /);
    const policy = keyPolicyFor({ accountId: ACCOUNT, administrators: [ADMIN.arn], users: [USER.arn], keyKind: 'SIGN_VERIFY' });
    await page.fill('#policy-edit', policy);
    await page.click('#save-policy');
    await page.waitForSelector('#notice:has-text("Key policy saved.")');
    expect((await client(ADMIN).send(new GetKeyPolicyCommand({ KeyId: made.keyId, PolicyName: 'default' }))).Policy).toBe(policy);
    await page.context().close();

    // Rotation of the symmetric key from (a): period, enable, rotate now, history.
    const sym = await open(ROOT, `#/key/${keyId}`);
    await sym.click('#enable-key'); // (d) left it Disabled after cancelling the deletion
    await sym.waitForSelector('#general [data-state="Enabled"]');
    await sym.check('#rotation-enabled');
    await sym.fill('#rotation-period', '180');
    await sym.click('#rotation-save');
    await sym.waitForSelector('#notice:not(.hidden)');
    await sym.click('#rotate-now');
    await sym.waitForSelector('#rotation-history td:text-is("ON_DEMAND")');
    const status = await client(ROOT).send(new GetKeyRotationStatusCommand({ KeyId: keyId }));
    expect([status.KeyRotationEnabled, status.RotationPeriodInDays]).toEqual([true, 180]);
    await sym.context().close();
  });

  it('(e) the wizard renders in Japanese with the AWS console step titles', async () => {
    const page = await open(ROOT);
    await page.selectOption('#lang', 'ja');
    await page.waitForSelector('text=カスタマーマネージド型のキー');
    await page.click('#create-key');
    const titles: string[] = [];
    for (let i = 1; i <= 5; i++) {
      await page.waitForSelector(`#wizard-step-${i}`);
      titles.push((await page.textContent('#step-title'))!);
      if (i === 1) await shot(page, 'console-wizard-ja.png');
      if (i < 5) await page.click('#wizard-next');
    }
    expect(titles).toEqual(['キーを設定', 'ラベルを追加', 'キーの管理アクセス許可を定義', 'キーの使用法アクセス許可を定義', '確認']);
    expect(await page.textContent('#wizard-finish')).toBe('完了');
    expect(await page.getAttribute('html', 'lang')).toBe('ja');
    await page.click('#wizard-cancel');
    await page.context().close();
  });
});
