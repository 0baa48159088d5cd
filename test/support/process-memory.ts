/**
 * For tests that look for key bytes the way an attacker with a memory read (or a core dump) would:
 * module source for a child process, defining `memory()`, which returns every readable and writable
 * mapping of that process (read through /proc/self/mem; the vvar/vsyscall pages excluded) as one
 * Buffer. Build a needle only after taking the dump, or the dump contains the needle. Linux only:
 * `procMemSkipReason` says why it cannot run elsewhere.
 */
import { existsSync } from 'node:fs';

export const procMemSkipReason = existsSync('/proc/self/mem') ? undefined : 'no /proc/self/mem on this system (Linux only)';

export const memoryFunctionSource = `
  import { closeSync as closeMem, openSync as openMem, readFileSync as readMaps, readSync as readMem } from 'node:fs';
  function memory() {
    const fd = openMem('/proc/self/mem', 'r');
    const parts = [];
    for (const line of readMaps('/proc/self/maps', 'utf8').trim().split('\\n')) {
      const [range, perms, , , , path = ''] = line.split(/\\s+/);
      if (!perms.startsWith('rw') || path.startsWith('[v')) continue;
      const [a, b] = range.split('-').map((h) => BigInt('0x' + h));
      const buf = Buffer.allocUnsafeSlow(Number(b - a));
      try { parts.push(buf.subarray(0, readMem(fd, buf, 0, buf.length, a))); } catch {}
    }
    closeMem(fd);
    return Buffer.concat(parts);
  }
`;
