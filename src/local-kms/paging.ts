import { KmsServiceError } from './errors.js';

/**
 * List pagination like AWS KMS: `Limit` items per page, `Truncated` and `NextMarker` when more
 * remain, and the marker passed back as `Marker`. Markers are opaque to callers; here they encode
 * the sort key of the last item returned, so deleting items between pages never skips or repeats
 * the rest.
 */
export interface Page<T> {
  items: T[];
  truncated: boolean;
  nextMarker?: string;
}

export function encodeMarker(sortKey: string): string {
  return Buffer.from(`m1:${sortKey}`, 'utf8').toString('base64url');
}

function decodeMarker(marker: string): string {
  const text = Buffer.from(marker, 'base64url').toString('utf8');
  if (!text.startsWith('m1:') || encodeMarker(text.slice(3)) !== marker) {
    throw new KmsServiceError('InvalidMarkerException', 'The request was rejected because the marker that specifies where pagination should next begin is not valid.');
  }
  return text.slice(3);
}

/** `items` must be sorted by `sortKey` (string order). */
export function paginate<T>(
  items: readonly T[],
  sortKey: (item: T) => string,
  limit: number,
  marker: string | undefined,
): Page<T> {
  let start = 0;
  if (marker !== undefined) {
    const after = decodeMarker(marker);
    start = items.findIndex((it) => sortKey(it) > after);
    if (start < 0) start = items.length;
  }
  const slice = items.slice(start, start + limit);
  const truncated = start + limit < items.length;
  const page: Page<T> = { items: slice, truncated };
  if (truncated && slice.length > 0) page.nextMarker = encodeMarker(sortKey(slice[slice.length - 1]!));
  return page;
}

/** Fixed-width sort key for positional lists (tags, rotations). */
export const indexKey = (i: number): string => String(i).padStart(10, '0');
