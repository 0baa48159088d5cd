/**
 * `kms-envelope` command dispatch. Returns the exit status instead of exiting, so it can be run
 * in-process (tests) as well as from the bin (main.ts).
 */
import { createRequire } from 'node:module';
import { decryptCommand } from './decrypt.js';
import { encryptCommand } from './encrypt.js';
import { classify, usage } from './errors.js';
import { MAIN_HELP } from './help.js';
import type { Io } from './io.js';

export type { Io } from './io.js';

export function version(): string {
  // The package's self-reference (its exports map exports ./package.json) resolves from wherever
  // this code sits: src/cli/ under the tests, a bundled file of dist/ when installed.
  const pkg = createRequire(import.meta.url)('kms-envelope/package.json') as { version: string };
  return pkg.version;
}

export async function run(argv: readonly string[], io: Io = defaultIo()): Promise<number> {
  try {
    const [command, ...rest] = argv;
    switch (command) {
      case 'encrypt':
        return await encryptCommand(rest, io);
      case 'decrypt':
        return await decryptCommand(rest, io);
      case 'branch-key': {
        const { branchKeyCommand } = await import('./branch-key.js');
        return await branchKeyCommand(rest, io);
      }
      case 'local-kms': {
        // Loaded only for this command: encrypt/decrypt never pay for the server code.
        const { runLocalKmsCommand } = await import('../local-kms/cli.js');
        const code = await runLocalKmsCommand(rest);
        return typeof code === 'number' ? code : 0;
      }
      case 'xks-proxy': {
        // Loaded only for this command, like local-kms (and pkcs11js only when it starts).
        const { runXksProxyCommand } = await import('../xks-proxy/cli.js');
        return await runXksProxyCommand(rest);
      }
      case '-h':
      case '--help':
      case 'help':
        io.stdout.write(MAIN_HELP);
        return 0;
      case '-v':
      case '--version':
      case 'version':
        io.stdout.write(`${version()}\n`);
        return 0;
      case undefined:
        io.stderr.write(MAIN_HELP);
        return 2;
      default:
        throw usage(`unknown command ${JSON.stringify(command)}; see kms-envelope --help`);
    }
  } catch (err) {
    const c = classify(err);
    io.stderr.write(`kms-envelope: ${c.code}: ${c.message}\n`);
    if (c.code === 'ERR_INTERNAL' && io.env.KMS_ENVELOPE_DEBUG && err instanceof Error && err.stack) {
      io.stderr.write(`${err.stack}\n`);
    }
    return c.exit;
  }
}

function defaultIo(): Io {
  return { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env };
}
