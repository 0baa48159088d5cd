/**
 * What a new user reads first, checked against what works: the package is not on the npm
 * registry, so the README installs it from a clone (npm pack, then the tarball); commands in the
 * examples' READMEs run from a clone or an application, where `kms-envelope` is not on PATH;
 * what the offline example and RawRsaKeyring need is in the README, not only in the .d.ts; the
 * README keeps its order.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');

/** The text of a `## Title` section, up to the next `## `. */
function section(title: string): string {
  const start = readme.indexOf(`\n## ${title}\n`);
  expect(start, `section ${title}`).toBeGreaterThanOrEqual(0);
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end === -1 ? undefined : end);
}

/** Shell lines of the ```sh blocks of a markdown text (comments stripped). */
function shellLines(md: string): string[] {
  return [...md.matchAll(/```(?:sh|bash)\n([\s\S]*?)```/g)].flatMap((m) =>
    m[1]!.split('\n').map((l) => l.replace(/\s+#.*$/, '').trim()).filter((l) => l !== '' && !l.startsWith('#')),
  );
}

describe('README', () => {
  it('keeps its order: what it is, install, example, cache, streams, CLI, local KMS, security, benchmarks, Node versions', () => {
    const order = ['Install', 'Example', 'Cache limits and why', 'Streams', 'CLI', 'Local KMS', 'Security notes', 'Benchmarks', 'Supported Node versions'];
    const at = order.map((t) => readme.indexOf(`\n## ${t}\n`));
    expect(at.every((i) => i > 0), JSON.stringify(at)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    expect(readme.slice(0, at[0])).toContain('**What it is not:**');
  });

  it('installs from a clone (npm pack, then the tarball), never from the registry', () => {
    const install = section('Install');
    const lines = shellLines(install);
    expect(lines.some((l) => /^npm (install|i) kms-envelope\b/.test(l))).toBe(false);
    expect(lines).toContain('npm pack');
    expect(lines.some((l) => /^npm install \S*kms-envelope-\*\.tgz$/.test(l))).toBe(true);
    expect(install).toMatch(/not (published )?on the npm registry/);
    // The quick start runs in the clone: the examples import `kms-envelope`, which resolves to this
    // checkout through the package's own `exports` (self-reference), not to a registry package.
    expect(lines).toContain('npm install && npm run demo');
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', "console.log(import.meta.resolve('kms-envelope'))"], {
      cwd: join(root, 'examples'),
      encoding: 'utf8',
    });
    expect(r.stdout.trim()).toBe(`file://${join(root, 'dist/index.js')}`);
  });

  it('documents the supported Node versions as `engines` declares them, and how CommonJS and TypeScript load it', () => {
    const engines = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    const nodeSection = section('Supported Node versions');
    expect(nodeSection).toContain(`"node": "${engines}"`);
    expect(nodeSection).toMatch(/require\('kms-envelope'\)/);
    expect(nodeSection).toMatch(/no CommonJS build/);
    for (const setting of ['node16', 'nodenext', 'bundler']) expect(nodeSection).toContain(`"moduleResolution": "${setting}"`);
    expect(nodeSection).toMatch(/--module commonjs/);
  });

  it('names the paths the console walkthrough needs in an application, and they are in the package', () => {
    const start = readme.indexOf('### Creating a key the way the AWS console does');
    const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(start))![1]!;
    // `examples/aws-cli/principals.json` is relative to a clone; an application has it under node_modules.
    expect(block).toMatch(/--principals "\$PRINCIPALS"/);
    const app = /PRINCIPALS=\$PWD\/node_modules\/kms-envelope\/(\S+)/.exec(block);
    expect(app, 'the application path of principals.json').not.toBeNull();
    expect(block).toContain(`PRINCIPALS=$PWD/${app![1]}`);
    const files = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { files: string[] }).files;
    expect(readFileSync(join(root, app![1]!), 'utf8')).toContain('AKIAEXAMPLEROOT0001');
    expect(files.some((f) => app![1]!.startsWith(`${f}/`))).toBe(true);
  });

  it('the ten-line example says how to run it in an application: an .mjs file, the Region from the AWS environment', () => {
    const example = section('Example');
    expect(example).toContain('example.mjs');
    expect(example).toMatch(/"type": "module"/);
    expect(example).toContain('AWS_REGION');
    expect(example).toMatch(/kms: \{[^}]*region/);
  });

  it('names the option that picks the signed suite (`suite`, not the result field `suiteId`)', () => {
    expect(readme).toMatch(/suite: 0x0578/);
    const security = section('Security notes');
    expect(security).toMatch(/suite: 0x0578/);
  });

  it('documents LocalKms.createAlias and RawRsaKeyring padding', () => {
    expect(readme).toMatch(/createAlias\('alias\/[a-z-]+', /);
    expect(readme).toMatch(/new RawRsaKeyring\(\{[^}]*padding: 'OAEP_SHA256'/);
    for (const p of ['OAEP_SHA1', 'OAEP_SHA256', 'OAEP_SHA384', 'OAEP_SHA512', 'PKCS1']) expect(readme).toContain(`\`${p}\``);
  });
});

describe('examples/*/README.md', () => {
  const docs = readdirSync(join(root, 'examples'), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => join('examples', d.name, 'README.md'))
    .filter((p) => {
      try {
        readFileSync(join(root, p));
        return true;
      } catch {
        return false;
      }
    });

  // Shell blocks are also saved and run as `bash file.sh`, where aliases do not expand.
  it.each(['README.md', ...docs].map((d) => [d]))('%s defines no shell aliases (a function works in scripts too)', (doc) => {
    const lines = shellLines(readFileSync(join(root, doc), 'utf8'));
    expect(lines.filter((l) => /(^|[;&|]\s*)alias\s+\w+=/.test(l))).toEqual([]);
  });

  it.each(docs.map((d) => [d]))('%s removes the files its commands write', (doc) => {
    const lines = shellLines(readFileSync(join(root, doc), 'utf8'));
    const written = lines.flatMap((l) => [...l.matchAll(/>\s*([\w.\/-]+)(?=\s|$)/g)].map((m) => m[1]!)).filter((f) => f !== '/dev/null');
    for (const file of written) {
      expect(lines.some((l) => new RegExp(`\\brm\\b.*(^|\\s)${file.replaceAll('.', '\\.')}(\\s|;|$)`).test(l)), `${file} is not removed`).toBe(true);
    }
  });

  it.each(docs.map((d) => [d]))('%s runs the CLI through npx (kms-envelope is not on PATH in a clone or an app)', (doc) => {
    const lines = shellLines(readFileSync(join(root, doc), 'utf8'));
    const bare = lines.filter((l) => /(^|[|;&(]\s*)kms-envelope\s/.test(l));
    expect(bare).toEqual([]);
  });
});
