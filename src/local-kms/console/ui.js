// DOM and API helpers. Every text goes in as a text node (never innerHTML), so nothing a key's
// description, tag or alias holds can run as markup.
import { t } from './i18n.js';

const csrf = document.querySelector('meta[name="csrf-token"]').getAttribute('content');

/** h('button', { class: 'primary', onclick }, 'text', child...): an element. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = true;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

/** A KMS error as the API answered it: `name` is the AWS error name (AccessDeniedException, ...). */
export class KmsError extends Error {
  constructor(name, message) { super(message); this.name = name; }
}

export const session = {
  /** Access key id of the principal the console acts as; undefined = the account root (no principals file). */
  get principal() { return sessionStorage.getItem('kms-console-principal') ?? undefined; },
  set principal(v) { sessionStorage.setItem('kms-console-principal', v); },
  /** The Region the console acts in (the Region menu); the server's default until one is picked. */
  get region() { return sessionStorage.getItem('kms-console-region') ?? session.info?.region; },
  set region(v) { sessionStorage.setItem('kms-console-region', v); },
  info: null,
};

async function post(path, body) {
  const res = await fetch(`/console/api/${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new KmsError(json.__type ?? 'KMSInternalException', json.message ?? '');
  return json;
}

/** Runs one KMS operation as the signed-in principal, in the Region of the Region menu. */
export function kms(operation, input = {}) {
  return post('call', { operation, input, principal: session.principal, region: session.region });
}
export const consoleApi = {
  keyPolicy: (o) => post('key-policy', o),
  validatePolicy: (policy) => post('validate-policy', { policy }),
  /** The server's check of a typed Region name (the one it applies to credential scopes). */
  checkRegion: (region) => post('region', { region }),
};

export async function loadSession() {
  const res = await fetch('/console/api/session');
  session.info = await res.json();
  return session.info;
}

export function showError(e) {
  const box = document.getElementById('error');
  box.textContent = e instanceof KmsError ? `${e.name}: ${e.message}` : String(e?.message ?? e);
  box.classList.remove('hidden');
  box.scrollIntoView?.({ block: 'nearest' });
}
export function showNotice(text) {
  const box = document.getElementById('notice');
  box.textContent = text;
  box.classList.remove('hidden');
}
export function clearMessages() {
  for (const id of ['error', 'notice']) document.getElementById(id).classList.add('hidden');
}
/** Runs `fn`, showing a failure as the KMS error name and message. Returns whether it succeeded. */
export async function attempt(fn) {
  clearMessages();
  try {
    await fn();
    return true;
  } catch (e) {
    showError(e);
    return false;
  }
}

export function b64ToBytes(b64) { return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)); }
export function bytesToB64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}
export function download(name, bytes, type = 'application/octet-stream') {
  const url = URL.createObjectURL(new Blob([bytes], { type }));
  const a = h('a', { href: url, download: name, class: 'hidden' });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
export function fmtDate(epochSeconds) {
  return epochSeconds === undefined ? '' : new Date(epochSeconds * 1000).toISOString().replace('.000Z', 'Z');
}
export function stateLabel(state) { return h('span', { class: `state-${state}`, 'data-state': state }, t(`st_${state}`)); }
export function kv(rows) {
  return h('table', { class: 'kv' }, rows.filter(Boolean).map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v))));
}
export function field(label, control, help) {
  return h('div', { class: 'field' }, h('label', {}, h('strong', {}, label), h('br'), control), help ? h('p', { class: 'help' }, help) : null);
}
