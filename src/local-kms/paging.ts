import { createHmac, timingSafeEqual } from 'node:crypto';
import { KmsServiceError } from './errors.js';

/**
 * List pagination like AWS KMS (ListKeys, ListAliases, ListResourceTags, ListKeyRotations,
 * ListKeyPolicies): at most `Limit` items per page; `Truncated: true` and a `NextMarker` when more
 * remain; the caller passes that marker back as `Marker`. The API Reference tells callers to treat
 * the marker as opaque and to send back only a NextMarker they received; a marker the service did
 * not issue is refused with InvalidMarkerException.
 *
 * Here a marker names the last item returned by its stable sort key (key id, alias name, tag key,
 * rotation date + material id), never by position. The next page starts at the first item whose
 * sort key is greater, so creating or deleting items between pages (including the item the marker
 * names) never repeats or skips the items that remain.
 *
 * Markers are authenticated: `<base64url(sort key)>.<base64url(HMAC)>`, the HMAC binding the list
 * operation and its scope (e.g. the key whose tags are listed) to the sort key. A forged or edited
 * marker, or one issued for another list, is InvalidMarkerException rather than a silently wrong
 * starting point. The MAC key comes from the store's root key, so markers stay valid across a
 * restart of a server with a data directory.
 */
export interface Page<T> {
  items: T[];
  truncated: boolean;
  nextMarker?: string;
}

/** Which list a marker belongs to: the operation and what it lists within (a key id, or ''). */
export interface ListScope {
  operation: string;
  scope: string;
}

const MAC_BYTES = 16;
const VERSION = 'm2';

export function invalidMarker(): KmsServiceError {
  return new KmsServiceError('InvalidMarkerException', 'The marker is not valid: pass back only the NextMarker of the previous page of the same list.');
}

export class MarkerCodec {
  private readonly key: Buffer;

  /** `key`: a secret of at least 32 bytes, used only for list markers. */
  constructor(key: Buffer) {
    if (key.length < 32) throw new RangeError('marker key must be at least 32 bytes');
    this.key = Buffer.from(key);
  }

  encode(list: ListScope, sortKey: string): string {
    const body = Buffer.from(sortKey, 'utf8');
    return `${body.toString('base64url')}.${this.mac(list, body).toString('base64url')}`;
  }

  /** The sort key named by `marker`, or InvalidMarkerException when we did not issue it for `list`. */
  decode(list: ListScope, marker: string): string {
    const dot = marker.indexOf('.');
    if (dot < 0 || marker.indexOf('.', dot + 1) >= 0) throw invalidMarker();
    const bodyText = marker.slice(0, dot);
    const macText = marker.slice(dot + 1);
    if (!/^[A-Za-z0-9_-]*$/.test(bodyText) || !/^[A-Za-z0-9_-]+$/.test(macText)) throw invalidMarker();
    const body = Buffer.from(bodyText, 'base64url');
    const mac = Buffer.from(macText, 'base64url');
    // Canonical encodings only: one marker per position, so a marker cannot be re-spelled.
    if (body.toString('base64url') !== bodyText || mac.length !== MAC_BYTES || mac.toString('base64url') !== macText) {
      throw invalidMarker();
    }
    if (!timingSafeEqual(mac, this.mac(list, body))) throw invalidMarker();
    return body.toString('utf8');
  }

  private mac(list: ListScope, body: Buffer): Buffer {
    // Operation names and scopes (key ids) never contain NUL; the sort key comes last, so the
    // MAC input is unambiguous.
    return createHmac('sha256', this.key)
      .update(`${VERSION}\0${list.operation}\0${list.scope}\0`, 'utf8')
      .update(body)
      .digest()
      .subarray(0, MAC_BYTES);
  }
}

/**
 * One page of `items`, which must be sorted by `sortKey` (JavaScript string order) with unique
 * keys. `marker` is the caller's Marker (already shape-checked), undefined for the first page.
 */
export function paginate<T>(
  items: readonly T[],
  sortKey: (item: T) => string,
  limit: number,
  marker: string | undefined,
  codec: MarkerCodec,
  list: ListScope,
): Page<T> {
  let start = 0;
  if (marker !== undefined) {
    const after = codec.decode(list, marker);
    start = items.findIndex((it) => sortKey(it) > after);
    if (start < 0) start = items.length;
  }
  const slice = items.slice(start, start + limit);
  const truncated = start + limit < items.length;
  const page: Page<T> = { items: slice, truncated };
  if (truncated && slice.length > 0) page.nextMarker = codec.encode(list, sortKey(slice[slice.length - 1]!));
  return page;
}

/** Sorts by `key` in the order `paginate` compares (JavaScript string order); returns `items`. */
export function sortByKey<T>(items: T[], key: (item: T) => string): T[] {
  return items.sort((a, b) => {
    const x = key(a);
    const y = key(b);
    return x < y ? -1 : x > y ? 1 : 0;
  });
}
