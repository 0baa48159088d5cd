/**
 * The package as `npm pack` ships it, installed into an application the way `npm install
 * ./kms-envelope-<version>.tgz` lays it out (node_modules/kms-envelope; its dependencies beside it,
 * linked from this checkout so the test needs no registry), then loaded as the README's
 * "Install" section says it can be: ESM import, CommonJS require on the Node versions `engines`
 * names, TypeScript with each supported `moduleResolution`. Also: the LICENSE ships, and every
 * relative link in the shipped README resolves to a file in the tarball.
 *
 * Packs with --ignore-scripts: `prepare` would rebuild dist/ while other test files import it
 * (`npm test` builds it first).
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'kms-envelope-tarball-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const pkgJson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  engines: { node: string };
  files: string[];
  license: string;
};

let files: string[] = [];
const app = join(dir, 'app');
const installed = join(app, 'node_modules', 'kms-envelope');

beforeAll(() => {
  const out = execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, npm_config_loglevel: 'error', npm_config_update_notifier: 'false' },
  });
  const [info] = JSON.parse(out) as [{ filename: string; files: { path: string }[] }];
  files = info.files.map((f) => f.path);
  mkdirSync(join(app, 'node_modules'), { recursive: true });
  execFileSync('tar', ['xzf', join(dir, info.filename), '-C', join(app, 'node_modules')]);
  renameSync(join(app, 'node_modules', 'package'), installed);
  // What npm would install beside it (runtime dependencies, optional peers, and @types/node for
  // the TypeScript checks), taken from this checkout's node_modules.
  for (const name of ['@aws-sdk', '@smithy', 'lru-cache', '@types']) {
    symlinkSync(join(root, 'node_modules', name), join(app, 'node_modules', name));
  }
});

/** Every relative link target of a markdown file, without its #fragment. */
function relativeLinks(markdown: string): string[] {
  const targets = [...markdown.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!);
  return targets.filter((t) => !/^[a-z]+:/i.test(t) && !t.startsWith('#')).map((t) => t.replace(/#.*$/, ''));
}

describe('what the tarball holds', () => {
  it('ships the Apache-2.0 LICENSE it declares, listed in `files`', () => {
    expect(pkgJson.license).toBe('Apache-2.0');
    expect(pkgJson.files).toContain('LICENSE');
    expect(files).toContain('LICENSE');
    const text = readFileSync(join(installed, 'LICENSE'), 'utf8');
    expect(text).toMatch(/^\s*Apache License\s+Version 2\.0, January 2004\s+http:\/\/www\.apache\.org\/licenses\//);
    expect(text).toContain('END OF TERMS AND CONDITIONS');
  });

  it('every relative link in the shipped README (and the docs it links) resolves to a file in the tarball', () => {
    const shipped = new Set(files);
    const exists = (p: string) => shipped.has(p) || files.some((f) => f.startsWith(p.replace(/\/?$/, '/')));
    const broken: string[] = [];
    const seen = new Set<string>();
    const queue = ['README.md'];
    while (queue.length > 0) {
      const doc = queue.shift()!;
      if (seen.has(doc)) continue;
      seen.add(doc);
      for (const link of relativeLinks(readFileSync(join(installed, doc), 'utf8'))) {
        const target = posix.normalize(posix.join(posix.dirname(doc), link)).replace(/\/$/, '');
        if (!exists(target)) broken.push(`${doc} -> ${link}`);
        else if (target.endsWith('.md')) queue.push(target);
      }
    }
    expect(seen.size).toBeGreaterThan(1);
    expect(broken).toEqual([]);
  });
});

describe('the local KMS web console in the tarball', () => {
  it('ships its static assets and the installed package serves them', () => {
    for (const f of ['index.html', 'app.js', 'ui.js', 'i18n.js', 'wizard.js', 'key-page.js', 'key-material.js', 'style.css']) {
      expect(files).toContain(`dist/local-kms/console/${f}`);
    }
    const script = `
      const { startLocalKmsServer } = await import('kms-envelope/local-kms');
      const server = await startLocalKmsServer({ port: 0, console: true });
      const page = await fetch(server.url + '/console');
      const js = await fetch(server.url + '/console/wizard.js');
      console.log(page.status, js.status, (await page.text()).includes('csrf-token'));
      await server.close();
    `;
    const r = node(['--input-type=module', '-e', script]);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('200 200 true');
  });
});

/** Runs node in the application directory. */
function node(args: string[], cwd = app) {
  const r = spawnSync(process.execPath, args, { cwd, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' }, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const roundTrip = (load: (spec: string) => string) => `
  const { Envelope, EnvelopeError } = ${load('kms-envelope')};
  const { LocalKms } = ${load('kms-envelope/local-kms')};
  const errors = ${load('kms-envelope/errors')};
  const s3 = ${load('kms-envelope/s3')};
  const ddb = ${load('kms-envelope/branch-key-store-dynamodb')};
  const kms = new LocalKms();
  const { arn, keyId } = await kms.createKey({ Description: 'app key' });
  await kms.createAlias('alias/app', keyId); // as the README's offline example
  const envelope = new Envelope({ kms: { keyId: arn, client: kms.client() } });
  const { plaintext } = await envelope.decrypt(await envelope.encrypt('from the tarball'));
  if (errors.EnvelopeError !== EnvelopeError || typeof s3.uploadEncrypted !== 'function') throw new Error('exports differ');
  if (ddb.BranchKeyStoreError !== errors.BranchKeyStoreError || typeof ddb.DynamoDbBranchKeyStorage !== 'function') throw new Error('exports differ');
  kms.close();
  console.log(plaintext.toString());
`;

/** Whether this Node satisfies a range made of `^x.y.z` and `>=x.y.z` alternatives (what `engines` uses). */
function satisfies(version: string, range: string): boolean {
  const v = version.split('.').map(Number);
  const cmp = (a: number[], b: number[]) => a.map((x, i) => x - b[i]!).find((d) => d !== 0) ?? 0;
  return range.split('||').some((alt) => {
    const m = /^\s*(\^|>=)(\d+)\.(\d+)\.(\d+)\s*$/.exec(alt);
    if (!m) throw new Error(`unsupported range ${alt}`);
    const min = [Number(m[2]), Number(m[3]), Number(m[4])];
    return cmp(v, min) >= 0 && (m[1] === '>=' || v[0] === min[0]);
  });
}

describe('loading the installed package', () => {
  it('`engines` names exactly the Node versions that can both import and require it, and the README says so', () => {
    expect(pkgJson.engines.node).toBe('^20.19.0 || >=22.12.0');
    expect(satisfies('20.18.3', pkgJson.engines.node)).toBe(false); // require(esm) is flagged before 20.19
    expect(satisfies('22.11.0', pkgJson.engines.node)).toBe(false); // ... and before 22.12
    expect(satisfies('21.7.3', pkgJson.engines.node)).toBe(false);
    expect(satisfies('20.19.0', pkgJson.engines.node)).toBe(true);
    expect(satisfies('24.0.0', pkgJson.engines.node)).toBe(true);
    const readme = readFileSync(join(installed, 'README.md'), 'utf8');
    expect(readme).toContain(`"node": "${pkgJson.engines.node}"`);
  });

  it('ESM: import from every entry point', () => {
    writeFileSync(join(app, 'esm.mjs'), roundTrip((s) => `await import(${JSON.stringify(s)})`));
    const r = node(['esm.mjs']);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('from the tarball');
  });

  const supported = (() => {
    try {
      return satisfies(process.versions.node, pkgJson.engines.node);
    } catch {
      return true; // an unreadable range: let the test run and show what happens
    }
  })();
  it.runIf(supported)('CommonJS: require() every entry point (require(esm), no CJS build)', () => {
    writeFileSync(join(app, 'cjs.cjs'), `(async () => {${roundTrip((s) => `require(${JSON.stringify(s)})`)}})().catch((e) => { console.error(e); process.exit(1); });`);
    const r = node(['cjs.cjs']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe(''); // no ExperimentalWarning on the versions `engines` names
    expect(r.stdout.trim()).toBe('from the tarball');
  });

  it('the bin is the built CLI', () => {
    const r = node([join(installed, 'dist/cli/main.js'), '--version']);
    expect(r.stdout.trim()).toBe(JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')).version);
  });
});

describe('TypeScript in the application', () => {
  const tsc = join(root, 'node_modules/typescript/bin/tsc');
  const source = `
import { Envelope, RawRsaKeyring } from 'kms-envelope';
import { LocalKms } from 'kms-envelope/local-kms';
import { EnvelopeError } from 'kms-envelope/errors';
import { uploadEncrypted } from 'kms-envelope/s3';
import { DynamoDbBranchKeyStorage } from 'kms-envelope/branch-key-store-dynamodb';
export const used = [Envelope, RawRsaKeyring, LocalKms, EnvelopeError, uploadEncrypted, DynamoDbBranchKeyStorage];
`;
  /**
   * Type-checks `source` in a fresh project of the given module kind with the given compiler
   * options. Asynchronous: a compile takes seconds, and a blocked worker misses vitest's RPC.
   */
  async function check(name: string, type: 'module' | 'commonjs', options: Record<string, string | boolean>) {
    const project = join(app, name);
    mkdirSync(project, { recursive: true });
    writeFileSync(join(project, 'package.json'), JSON.stringify({ type }));
    writeFileSync(join(project, 'index.ts'), source);
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        // ES2015+ for the private fields the declarations carry; skipLibCheck as most applications
        // set it (one case below checks our declarations too).
        compilerOptions: { strict: true, noEmit: true, target: 'es2022', skipLibCheck: true, types: ['node'], ...options },
        files: ['index.ts'],
      }),
    );
    return new Promise<{ status: number; out: string }>((res) => {
      execFile(process.execPath, [tsc, '-p', project], { cwd: project, encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => {
        res({ status: err ? Number((err as { code?: unknown }).code ?? 1) || 1 : 0, out: stdout + stderr });
      });
    });
  }

  it.each([
    ['ESM, node16', 'module', { module: 'node16', moduleResolution: 'node16' }],
    ['ESM, nodenext, declarations checked', 'module', { module: 'nodenext', moduleResolution: 'nodenext', skipLibCheck: false }],
    ['ESM, bundler', 'module', { module: 'esnext', moduleResolution: 'bundler' }],
    ['CommonJS output, nodenext (require of ESM, TypeScript >= 5.8)', 'commonjs', { module: 'nodenext', moduleResolution: 'nodenext' }],
  ] as const)('%s resolves every entry point', async (label, type, options) => {
    const r = await check(label.replace(/\W+/g, '-'), type, options);
    expect(r.out).toBe('');
    expect(r.status).toBe(0);
  });

  it('--module commonjs (node10 resolution, which ignores `exports`) cannot resolve the subpaths, as the README says', async () => {
    const r = await check('cjs-node10', 'commonjs', { module: 'commonjs' });
    expect(r.out).toMatch(/Cannot find module 'kms-envelope\/local-kms'/);
    expect(r.status).not.toBe(0);
  });
});
