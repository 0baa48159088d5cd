import { execFileSync } from 'node:child_process';

/** Whether the AWS CLI (`aws`) runs here; tests that drive it are skipped without it (.ci/run installs it). */
export function hasAwsCli(): boolean {
  try {
    execFileSync('aws', ['--version'], { stdio: 'ignore', timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
}
