// Types for handler.mjs (the example is plain JavaScript so it deploys without a build step).
import type { EncryptionContext, EnvelopeStats } from 'kms-envelope';

export interface DecryptEvent {
  /** Base64 ESDK messages. */
  blobs?: string[];
  /** One base64 ESDK message (when `blobs` is absent). */
  blob?: string;
  /** Pairs every message's encryption context must contain. */
  context?: EncryptionContext;
}

export type DecryptResultEntry = { ok: true; plaintext: string } | { ok: false; error: string };

export function handler(event: DecryptEvent): Promise<{ results: DecryptResultEntry[] }>;
export function stats(): EnvelopeStats;
