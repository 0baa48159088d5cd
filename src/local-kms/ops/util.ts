import { randomBytes } from 'node:crypto';
import { KmsServiceError } from '../errors.js';
import { Checks, validationError } from '../validate.js';
import type { MaterialRecord } from '../model.js';

/** Shapes and small helpers every operation family shares (request members, list pages, materials). */

export type Blob = Uint8Array;
export type Context = Record<string, string>;
export type Req = Record<string, unknown>;
export type KmsResponse = Record<string, unknown>;

export const DAY_MS = 86_400_000;

export const err = (type: string, message: string) => new KmsServiceError(type, message);

export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export function num(v: unknown): number | undefined {
  return typeof v === 'number' ? v : undefined;
}

/** Timestamp members: Date, epoch milliseconds (in-process) are accepted. */
export function time(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (v instanceof Date) return v.getTime();
  if (typeof v === 'number') return v;
  throw validationError('Timestamps must be a Date or epoch milliseconds.');
}

export function requireKeyId(v: unknown): string {
  const c = new Checks();
  checkKeyId(c, v);
  c.done();
  return String(v);
}

/** The `KeyId` member every key operation takes: required, 1-2048 characters (API reference). */
export function checkKeyId(c: Checks, v: unknown): void {
  c.required('keyId', v);
  c.length('keyId', str(v), 1, 2048);
}

export function checkMarker(c: Checks, marker: unknown): void {
  c.length('marker', str(marker), 1, 1024);
  c.pattern('marker', str(marker), /^[\u0020-\u00FF]*$/, '[\\u0020-\\u00FF]*');
}

export function checkGrantTokens(c: Checks, tokens: unknown): void {
  c.length('grantTokens', tokens as string[] | undefined, 0, 10);
}

export function withPage(out: KmsResponse, page: { truncated: boolean; nextMarker?: string }): KmsResponse {
  out.Truncated = page.truncated;
  if (page.nextMarker !== undefined) out.NextMarker = page.nextMarker;
  return out;
}

export function withMaterial(out: KmsResponse, materialId: string | undefined): KmsResponse {
  if (materialId !== undefined) out.KeyMaterialId = materialId;
  return out;
}

export function newMaterialId(): string {
  return randomBytes(32).toString('hex');
}

export function newSymmetricMaterial(createdAt: number): MaterialRecord {
  return { id: newMaterialId(), createdAt, secret: randomBytes(32) };
}
