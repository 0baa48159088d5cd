/** Runs the built CLI (`dist/cli/main.js`) in a child process, for the CLI tests. */
import { spawn } from 'node:child_process';

export interface CliResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Spawns `node main ...args` in `cwd` with exactly `env`, writes `input` (default nothing) to stdin. */
export function runCli(main: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; input?: Buffer }): Promise<CliResult> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [main, ...args], { env: opts.env, cwd: opts.cwd });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', rej);
    child.on('close', (code) => res({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') }));
    child.stdin.on('error', () => undefined); // the child may exit before reading everything
    child.stdin.end(opts.input ?? Buffer.alloc(0));
  });
}
