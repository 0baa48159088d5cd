/**
 * What the console's browser tests share: Debian's chromium driven by playwright-core (no browser
 * download), a local KMS with the console and a principals file (root, a key administrator, a key
 * user), and the page helpers (sign in, run the wizard, screenshots, errors).
 *
 * Screenshots: written to docs/ (the README's "Console" subsection) when CONSOLE_SCREENSHOTS=docs
 * (`npm run test:browser` sets it), else to a temp dir; either way each is checked to be a PNG.
 *
 * CHROMIUM is undefined when no chromium is installed (apt-get install -y chromium; .ci/run
 * installs it); CHROMIUM_PATH names another binary. The test files skip with a message then.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expect } from 'vitest';
import { chromium, type Browser, type Download, type Page } from 'playwright-core';
import { KMSClient } from '@aws-sdk/client-kms';
import { startLocalKmsServer, type LocalKmsServer, type LocalKmsServerOptions } from '../../src/local-kms/index.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
if (!CHROMIUM) {
  process.stderr.write('test/browser: skipped, no chromium found (apt-get install -y chromium, or set CHROMIUM_PATH)\n');
}

export const ACCOUNT = '111122223333';
export const ROOT = { id: 'AKIACONSOLEROOT01', secret: 'root-secret', arn: `arn:aws:iam::${ACCOUNT}:root` };
export const ADMIN = { id: 'AKIACONSOLEADMIN1', secret: 'admin-secret', arn: `arn:aws:iam::${ACCOUNT}:user/key-admin` };
export const USER = { id: 'AKIACONSOLEUSER01', secret: 'user-secret', arn: `arn:aws:iam::${ACCOUNT}:role/key-user` };

const repoRoot = resolve(import.meta.dirname, '../..');

export interface ConsoleRig {
  server: LocalKmsServer;
  browser: Browser;
  /** A temp dir for downloads and files the test writes; removed by close(). */
  dir: string;
  /** Uncaught exceptions of the console's own scripts: none is expected. */
  pageErrors: string[];
  /** A KMS client signed as `who`, in `region` (default us-east-1). */
  client(who: { id: string; secret: string }, region?: string): KMSClient;
  /** A fresh browser context (its own sessionStorage) on the console, signed in as `who`. */
  open(who: { id: string }, path?: string): Promise<Page>;
  /** A full-page screenshot, checked to be a PNG. */
  shot(page: Page, name: string): Promise<void>;
  close(): Promise<void>;
}

/** Starts the server (console on, the three principals, `options` added) and chromium. */
export async function startRig(prefix: string, options: Partial<LocalKmsServerOptions> = {}): Promise<ConsoleRig> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const shots = process.env.CONSOLE_SCREENSHOTS === 'docs' ? join(repoRoot, 'docs') : join(dir, 'shots');
  mkdirSync(shots, { recursive: true });
  const principalsFile = join(dir, 'principals.json');
  writeFileSync(principalsFile, JSON.stringify(Object.fromEntries([ROOT, ADMIN, USER].map((p) => [p.id, { arn: p.arn, secretAccessKey: p.secret }]))));
  const server = await startLocalKmsServer({ port: 0, principalsFile, accountId: ACCOUNT, console: true, ...options });
  const browser = await chromium.launch({ executablePath: CHROMIUM!, headless: true, args: ['--no-sandbox'] });
  const pageErrors: string[] = [];
  return {
    server,
    browser,
    dir,
    pageErrors,
    client: (who, region = 'us-east-1') =>
      new KMSClient({ endpoint: server.url, region, credentials: { accessKeyId: who.id, secretAccessKey: who.secret }, maxAttempts: 1 }),
    async open(who, path = '') {
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
      const page = await context.newPage();
      page.setDefaultTimeout(15_000);
      page.on('pageerror', (e) => pageErrors.push(`${e.name}: ${e.message}`));
      await page.goto(`${server.url}/console${path}`);
      await page.waitForSelector('main[data-routes]');
      const before = await page.getAttribute('main', 'data-routes');
      await page.selectOption('#principal', who.id);
      // The principal's own page: the change re-runs the route (selectOption fires it even for the same value).
      // (A selector, not waitForFunction: the console's CSP forbids evaluating strings.)
      await page.waitForSelector(`main[data-routes]:not([data-routes="${before}"])`);
      return page;
    },
    async shot(page, name) {
      const file = join(shots, name);
      await page.screenshot({ path: file, fullPage: true });
      const png = readFileSync(file);
      expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
      expect(png.length).toBeGreaterThan(10_000);
    },
    async close() {
      await browser.close();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Runs the wizard (already on step 1) through `steps`, one callback per step, then Finish. Returns
 * the new key id and the policy step 5 showed. With `shot`, each step is photographed as
 * `${shotPrefix}-${i}.png`.
 */
export async function runWizard(
  page: Page,
  steps: Array<(p: Page) => Promise<void>>,
  shot?: { rig: ConsoleRig; prefix: string },
): Promise<{ keyId: string; policy: string }> {
  let policy = '';
  for (let i = 1; i <= 5; i++) {
    await page.waitForSelector(`#wizard-step-${i}`);
    await steps[i - 1]?.(page);
    if (i === 5) policy = await page.inputValue('#policy');
    if (shot) await shot.rig.shot(page, `${shot.prefix}-${i}.png`);
    await page.click(i < 5 ? '#wizard-next' : '#wizard-finish');
  }
  await page.waitForSelector('#key-title');
  return { keyId: (await page.textContent('#key-id'))!.trim(), policy };
}

export async function errorText(page: Page): Promise<string> {
  await page.waitForSelector('#error:not(.hidden)');
  return (await page.textContent('#error'))!;
}

/** The OpenSSL digest options of each wrapping algorithm the import helper uses. */
const OAEP_DIGESTS = {
  RSAES_OAEP_SHA_1: ['-pkeyopt', 'rsa_oaep_md:sha1'],
  RSAES_OAEP_SHA_256: ['-pkeyopt', 'rsa_oaep_md:sha256', '-pkeyopt', 'rsa_mgf1_md:sha256'],
} as const;

/**
 * On the key page of an External key in PendingImport: downloads the wrapping public key (RSA_2048)
 * and import token, wraps 32 random bytes with `openssl pkeyutl` under `algorithm` (default
 * RSAES_OAEP_SHA_256) and uploads them with the token, expiring on `validTo` (YYYY-MM-DD) when
 * given. `downloaded` runs with the saved files before the upload. Waits for the key to be Enabled.
 */
export async function importMaterial(
  page: Page,
  dir: string,
  opts: { validTo?: string; algorithm?: keyof typeof OAEP_DIGESTS; downloaded?: (files: Record<string, string>) => Promise<void> } = {},
): Promise<void> {
  const algorithm = opts.algorithm ?? 'RSAES_OAEP_SHA_256';
  await page.selectOption('#wrapping-algorithm', algorithm);
  await page.selectOption('#wrapping-spec', 'RSA_2048');
  const downloads: Download[] = [];
  const both = new Promise<void>((res) => page.on('download', (d) => { downloads.push(d); if (downloads.length === 2) res(); }));
  await page.click('#download-wrapping');
  await both;
  const files: Record<string, string> = {};
  for (const d of downloads) {
    files[d.suggestedFilename()] = join(dir, `${randomBytes(4).toString('hex')}-${d.suggestedFilename()}`);
    await d.saveAs(files[d.suggestedFilename()]!);
  }
  await opts.downloaded?.(files);
  const material = join(dir, `material-${randomBytes(4).toString('hex')}.bin`);
  const wrapped = `${material}.wrapped`;
  writeFileSync(material, randomBytes(32));
  execFileSync('openssl', ['pkeyutl', '-encrypt', '-in', material, '-out', wrapped, '-inkey', files['WrappingPublicKey.bin']!, '-keyform', 'DER', '-pubin',
    '-pkeyopt', 'rsa_padding_mode:oaep', ...OAEP_DIGESTS[algorithm]]);
  await page.setInputFiles('#material-file', wrapped);
  await page.setInputFiles('#token-file', files['ImportToken.bin']!);
  if (opts.validTo !== undefined) {
    await page.check('input[name="expiration"][value="date"]');
    await page.fill('#valid-to', opts.validTo);
  }
  await page.click('#import-material');
  await page.waitForSelector('#general [data-state="Enabled"]');
}
