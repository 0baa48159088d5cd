/**
 * The console's two languages (src/local-kms/console/i18n.js): every label the UI scripts ask for
 * exists in English and in Japanese, and the Japanese labels use the AWS console's terms.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll, expect, it } from 'vitest';

const dir = resolve(import.meta.dirname, '../../src/local-kms/console');
let dictionaries: { en: Record<string, string>; ja: Record<string, string> };

beforeAll(async () => {
  // i18n.js reads the saved language from localStorage when it loads.
  (globalThis as { localStorage?: unknown }).localStorage = { getItem: () => null, setItem: () => undefined };
  ({ DICTIONARIES: dictionaries } = (await import(join(dir, 'i18n.js'))) as { DICTIONARIES: typeof dictionaries });
});

it('every t(...) label of the UI scripts is in both dictionaries, and the dictionaries have the same labels', () => {
  const used = new Set<string>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.js') && f !== 'i18n.js')) {
    for (const m of readFileSync(join(dir, file), 'utf8').matchAll(/\bt\('([A-Za-z0-9_]+)'/g)) used.add(m[1]!);
  }
  expect(used.size).toBeGreaterThan(100);
  for (const key of [...used, ...['ENCRYPT_DECRYPT', 'GENERATE_VERIFY_MAC', 'SIGN_VERIFY', 'KEY_AGREEMENT'].map((u) => `usage_${u}`), ...[1, 2, 3, 4, 5].map((n) => `step${n}`),
    // Built from API values: ConnectionState of DescribeCustomKeyStores, the wizard's origins.
    ...['CONNECTED', 'CONNECTING', 'DISCONNECTED', 'DISCONNECTING', 'FAILED'].map((c) => `conn_${c}`), 'originKms', 'originExternal', 'originCloudHsm', 'originXks']) {
    expect(dictionaries.en[key], `en ${key}`).toBeTruthy();
    expect(dictionaries.ja[key], `ja ${key}`).toBeTruthy();
  }
  expect(Object.keys(dictionaries.ja).sort()).toEqual(Object.keys(dictionaries.en).sort());
});

it('the Japanese labels are the AWS console terms', () => {
  const ja = dictionaries.ja;
  expect([ja.createKey, ja.keyAdministrators, ja.keyUsers, ja.alias, ja.keyPolicy, ja.keyRotation]).toEqual(['キーの作成', 'キー管理者', 'キーユーザー', 'エイリアス', 'キーポリシー', 'キーのローテーション']);
  expect(ja.scheduleDeletion).toContain('削除をスケジュール');
  expect([ja.region, ja.customKeyStores, ja.originCloudHsm, ja.originXks, ja.xksKeyId, ja.ksConnection]).toEqual(['リージョン', 'カスタムキーストア', 'AWS CloudHSM キーストア', '外部キーストア', '外部キー ID', '接続状態']);
  const untranslated = Object.entries(ja).filter(([k, v]) => !/[\u3040-\u30ff\u4e00-\u9fff]/.test(v) && v !== dictionaries.en[k]);
  expect(untranslated).toEqual([]);
});
