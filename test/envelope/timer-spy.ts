/**
 * Spies on setTimeout/clearTimeout (vitest's vi.spyOn, undone by vi.restoreAllMocks) and keeps the
 * timers created with one distinctive delay (an Envelope's keyringTimeoutMs), and which of all
 * timers were cleared. Shared by the keyring time-limit tests.
 */
import { vi } from 'vitest';

export function spyTimers(ms: number): { created: NodeJS.Timeout[]; cleared: Set<unknown> } {
  const created: NodeJS.Timeout[] = [];
  const cleared = new Set<unknown>();
  const realSet = globalThis.setTimeout;
  const realClear = globalThis.clearTimeout;
  vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: () => void, delay?: number, ...args: unknown[]) => {
    const t = (realSet as (...a: unknown[]) => NodeJS.Timeout)(fn, delay, ...args);
    if (delay === ms) created.push(t);
    return t;
  }) as typeof setTimeout);
  vi.spyOn(globalThis, 'clearTimeout').mockImplementation(((t?: NodeJS.Timeout) => {
    cleared.add(t);
    realClear(t);
  }) as typeof clearTimeout);
  return { created, cleared };
}
