/**
 * @noble/post-quantum and @noble/curves are dependencies of the local KMS's PQ and Ed25519ph keys
 * only: `import 'kms-envelope'` (and its errors and s3 entry points) never reach them, and the local
 * KMS reaches them only through dynamic imports, run the first time such a key is created or used.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Metafile } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { LocalKms } from '../../src/local-kms/index.js';
import { pqLoaded } from '../../src/local-kms/pq.js';
import { pkcs11Loaded } from '../../src/local-kms/pkcs11.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

async function graph(entry: string): Promise<Metafile> {
  const { metafile } = await build({
    absWorkingDir: root,
    entryPoints: [entry],
    bundle: true,
    write: false,
    metafile: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    logLevel: 'silent',
  });
  return metafile;
}

/** Imports of `pkg` reached from `entry`, with their kind (import-statement, dynamic-import, ...). */
async function importsOf(entry: string, pkg: RegExp): Promise<Array<{ from: string; path: string; kind: string }>> {
  const meta = await graph(entry);
  const out: Array<{ from: string; path: string; kind: string }> = [];
  for (const [from, input] of Object.entries(meta.inputs)) {
    for (const imp of input.imports) if (pkg.test(imp.path)) out.push({ from, path: imp.path, kind: imp.kind });
  }
  return out;
}

const NOBLE = /^@noble\//;
const DYNAMODB = /^@aws-sdk\/client-dynamodb$/;
const DDB_STORAGE = 'src/branch-key-store-dynamodb/';
/** The PKCS#11 binding (a native addon) of the CloudHSM key stores: an optional peer dependency. */
const PKCS11 = /^pkcs11js$/;

describe('module graph', () => {
  it.each(['src/index.ts', 'src/errors.ts', 'src/s3/index.ts'])('%s never reaches @noble/*', async (entry) => {
    expect(await importsOf(entry, NOBLE)).toEqual([]);
  });

  it.each(['src/index.ts', 'src/errors.ts', 'src/s3/index.ts', 'src/local-kms/index.ts'])(
    '%s never reaches @aws-sdk/client-dynamodb nor the DynamoDB branch key storage',
    async (entry) => {
      expect(await importsOf(entry, DYNAMODB)).toEqual([]);
      expect(Object.keys((await graph(entry)).inputs).filter((f) => f.startsWith(DDB_STORAGE))).toEqual([]);
    },
  );

  it('kms-envelope/branch-key-store-dynamodb is a package entry point and loads @aws-sdk/client-dynamodb lazily (dynamic import, sdk.ts only)', async () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      exports: Record<string, { default: string }>;
      peerDependencies: Record<string, string>;
      peerDependenciesMeta: Record<string, { optional?: boolean }>;
      devDependencies: Record<string, string>;
      dependencies: Record<string, string>;
    };
    expect(pkg.exports['./branch-key-store-dynamodb']).toEqual({
      types: './dist/branch-key-store-dynamodb/index.d.ts',
      default: './dist/branch-key-store-dynamodb/index.js',
    });
    expect(readFileSync(join(root, 'scripts/build.mjs'), 'utf8')).toContain("'src/branch-key-store-dynamodb/index.ts'");
    // An optional peer pinned like the S3 ones, in the @aws-sdk/client-kms family.
    expect(pkg.peerDependencies['@aws-sdk/client-dynamodb']).toBe(`^${pkg.dependencies['@aws-sdk/client-kms']}`);
    expect(pkg.peerDependenciesMeta['@aws-sdk/client-dynamodb']).toEqual({ optional: true });
    expect(pkg.devDependencies['@aws-sdk/client-dynamodb']).toBe(pkg.dependencies['@aws-sdk/client-kms']);
    const found = await importsOf('src/branch-key-store-dynamodb/index.ts', DYNAMODB);
    // `import type` is erased: the one import left is sdk.ts's dynamic one.
    expect(found).toEqual([{ from: 'src/branch-key-store-dynamodb/sdk.ts', path: '@aws-sdk/client-dynamodb', kind: 'dynamic-import' }]);
  });

  it('the local KMS reaches @noble/* through dynamic imports only, from pq.ts and eddsa.ts', async () => {
    const found = await importsOf('src/local-kms/index.ts', NOBLE);
    expect(found.length).toBeGreaterThanOrEqual(3);
    for (const f of found) {
      expect(f.kind, `${f.from} → ${f.path}`).toBe('dynamic-import');
      expect(['src/local-kms/pq.ts', 'src/local-kms/eddsa.ts']).toContain(f.from);
    }
  });

  it.each(['src/index.ts', 'src/errors.ts', 'src/s3/index.ts', 'src/cli/main.ts'])('%s never reaches pkcs11js statically', async (entry) => {
    for (const f of await importsOf(entry, PKCS11)) expect(f.kind, `${f.from} → ${f.path}`).toBe('dynamic-import');
    if (entry !== 'src/cli/main.ts') expect(await importsOf(entry, PKCS11)).toEqual([]);
  });

  it.each(['src/index.ts', 'src/errors.ts', 'src/s3/index.ts', 'src/local-kms/index.ts', 'src/cli/main.ts'])(
    '%s never reaches the XKS proxy statically (kms-envelope/xks-proxy and `kms-envelope xks-proxy` only)',
    async (entry) => {
      const meta = await graph(entry);
      for (const [from, input] of Object.entries(meta.inputs)) {
        for (const imp of input.imports) {
          if (!from.startsWith('src/xks-proxy/') && /xks-proxy\//.test(imp.path)) expect(imp.kind, `${from} → ${imp.path}`).toBe('dynamic-import');
        }
      }
      if (entry !== 'src/cli/main.ts') expect(Object.keys(meta.inputs).filter((f) => f.startsWith('src/xks-proxy/'))).toEqual([]);
    },
  );

  it('kms-envelope/xks-proxy is a package entry point and reaches pkcs11js only through the dynamic import in pkcs11.ts', async () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
    expect(pkg.exports['./xks-proxy']).toEqual({ types: './dist/xks-proxy/index.d.ts', default: './dist/xks-proxy/index.js' });
    expect(readFileSync(join(root, 'scripts/build.mjs'), 'utf8')).toContain("'src/xks-proxy/index.ts'");
    expect(await importsOf('src/xks-proxy/index.ts', PKCS11)).toEqual([{ from: 'src/local-kms/pkcs11.ts', path: 'pkcs11js', kind: 'dynamic-import' }]);
  });

  it('the local KMS reaches pkcs11js through one dynamic import, in pkcs11.ts', async () => {
    const found = await importsOf('src/local-kms/index.ts', PKCS11);
    expect(found).toEqual([{ from: 'src/local-kms/pkcs11.ts', path: 'pkcs11js', kind: 'dynamic-import' }]);
  });

  it('a local KMS without custom key stores never loads the PKCS#11 binding', async () => {
    const kms = new LocalKms();
    const client = kms.client();
    const { KeyMetadata } = await client.call('CreateKey', {});
    const { CiphertextBlob } = await client.call('Encrypt', { KeyId: (KeyMetadata as { KeyId: string }).KeyId, Plaintext: Buffer.from('x') });
    await client.call('Decrypt', { CiphertextBlob });
    await client.call('DescribeCustomKeyStores', {});
    expect(pkcs11Loaded()).toBe(false);
    kms.close();
  });

  it('a local KMS that never sees an ML-KEM/ML-DSA key does not load the PQ implementation', async () => {
    const kms = new LocalKms();
    const { arn } = await kms.createKey({ Description: 'symmetric' });
    const client = kms.client();
    const { CiphertextBlob } = await client.call('Encrypt', { KeyId: arn, Plaintext: Buffer.from('x') });
    await client.call('Decrypt', { CiphertextBlob });
    await client.call('CreateKey', { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' });
    expect(pqLoaded()).toBe(false);
    await client.call('CreateKey', { KeySpec: 'ML_KEM_512', KeyUsage: 'ENCAPSULATE_DECAPSULATE' });
    expect(pqLoaded()).toBe(true);
    kms.close();
  });
});
