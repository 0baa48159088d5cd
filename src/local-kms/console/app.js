// Entry point: header (signed-in principal, language), hash router, keys list.
import { language, setLanguage, t } from './i18n.js';
import { attempt, consoleApi, fmtDate, h, kms, loadSession, session, showError, stateLabel } from './ui.js';
import { renderWizard } from './wizard.js';
import { renderKeyPage } from './key-page.js';
import { renderKeyStores } from './key-stores.js';

const main = document.getElementById('main');
const listState = { filter: '', showPending: true };
/** Whether the Region menu's "Other Region" field is open (kept across re-renders, e.g. a language switch). */
let typingRegion = false;
let routes = 0;

function renderHeader() {
  document.documentElement.lang = language();
  document.title = t('consoleTitle');
  document.getElementById('brand').textContent = t('brand');
  document.getElementById('signin-label').textContent = t('signedInAs');
  document.getElementById('lang-label').textContent = t('language');
  document.getElementById('lang').value = language();
  const select = document.getElementById('principal');
  select.replaceChildren();
  const principals = session.info.principals;
  if (principals === null) {
    select.append(h('option', { value: '' }, `${t('root')} (arn:aws:iam::${session.info.accountId}:root)`));
    select.disabled = true;
  } else {
    for (const p of principals) select.append(h('option', { value: p.accessKeyId }, `${p.arn} (${p.accessKeyId})`));
    if (!principals.some((p) => p.accessKeyId === session.principal) && principals.length > 0) session.principal = principals[0].accessKeyId;
    select.value = session.principal ?? '';
  }
  renderRegionMenu();
}

/**
 * The Region menu, like the AWS console's: the Regions that hold keys and the default (the
 * session's list), the current one, and "Other Region" for a typed name the server checks as it
 * checks a credential scope's Region. Every KMS call then goes to the chosen Region.
 */
function renderRegionMenu() {
  document.getElementById('region-label').textContent = t('region');
  document.getElementById('region-go').textContent = t('switchRegion');
  document.getElementById('region-name').setAttribute('aria-label', t('regionName'));
  const menu = document.getElementById('region');
  const regions = [...new Set([...session.info.regions, session.region])].sort();
  menu.replaceChildren(...regions.map((r) => h('option', { value: r }, r === session.info.region ? `${r} (${t('defaultRegion')})` : r)),
    h('option', { value: '' }, t('otherRegion')));
  menu.value = typingRegion ? '' : session.region;
  document.getElementById('region-other').classList.toggle('hidden', !typingRegion);
}

async function switchRegion(region) {
  const ok = await attempt(async () => { session.region = (await consoleApi.checkRegion(region)).region; });
  if (!ok) return;
  typingRegion = false;
  // A key page belongs to its Region: switching goes back to the (new Region's) keys list.
  if (location.hash.startsWith('#/key/') || location.hash === '#/create') location.hash = '#/keys';
  else await route();
}

async function keyRows() {
  const keys = [];
  let marker;
  do {
    const page = await kms('ListKeys', marker ? { Marker: marker } : {});
    keys.push(...page.Keys);
    marker = page.Truncated ? page.NextMarker : undefined;
  } while (marker);
  const aliases = [];
  marker = undefined;
  do {
    const page = await kms('ListAliases', marker ? { Marker: marker } : {});
    aliases.push(...page.Aliases);
    marker = page.Truncated ? page.NextMarker : undefined;
  } while (marker);
  return Promise.all(keys.map(async (k) => {
    const names = aliases.filter((a) => a.TargetKeyId === k.KeyId).map((a) => a.AliasName);
    try {
      const { KeyMetadata: m } = await kms('DescribeKey', { KeyId: k.KeyId });
      return { id: k.KeyId, aliases: names, m };
    } catch {
      return { id: k.KeyId, aliases: names, m: undefined }; // DescribeKey denied: the row stays, without details
    }
  }));
}

async function renderKeys() {
  main.replaceChildren(h('p', {}, t('loading')));
  let rows = [];
  await attempt(async () => { rows = await keyRows(); });
  const body = h('tbody');
  const fill = () => {
    const q = listState.filter.toLowerCase();
    body.replaceChildren();
    const shown = rows.filter((r) => {
      if (!listState.showPending && r.m?.KeyState === 'PendingDeletion') return false;
      const text = [r.id, ...r.aliases, r.m?.KeyState, r.m?.KeySpec, r.m?.KeyUsage, r.m?.Origin, r.m?.KeySpec === 'SYMMETRIC_DEFAULT' ? t('symmetric') : t('asymmetric')].join(' ').toLowerCase();
      return q === '' || text.includes(q);
    });
    for (const r of shown) {
      const m = r.m;
      body.append(h('tr', { 'data-key-id': r.id },
        h('td', {}, r.aliases.join(', ')),
        h('td', {}, h('a', { href: `#/key/${r.id}`, class: 'mono' }, r.id)),
        h('td', {}, m ? stateLabel(m.KeyState) : t('notVisible')),
        h('td', {}, m ? (m.KeySpec === 'SYMMETRIC_DEFAULT' || m.KeySpec?.startsWith('HMAC') ? t('symmetric') : t('asymmetric')) : ''),
        h('td', {}, m?.KeySpec ?? ''),
        h('td', {}, m ? t(`usage_${m.KeyUsage}`) : ''),
        h('td', {}, m?.Origin ?? ''),
        h('td', {}, m?.Arn?.split(':')[3] ?? ''),
      ));
    }
    if (shown.length === 0) body.append(h('tr', {}, h('td', { colspan: 8 }, t('noKeys'))));
  };
  fill();
  main.replaceChildren(
    h('div', { class: 'row' }, h('h1', {}, t('keysTitle')), h('span', { class: 'region-badge', id: 'list-region' }, session.region), h('span', { class: 'spacer' }),
      h('button', { id: 'key-stores-link', onclick: () => { location.hash = '#/custom-key-stores'; } }, t('customKeyStores')),
      h('button', { id: 'refresh', onclick: () => renderKeys() }, t('refresh')),
      h('button', { id: 'create-key', class: 'primary', onclick: () => { location.hash = '#/create'; } }, t('createKey'))),
    h('div', { class: 'panel' },
      h('div', { class: 'row' },
        h('input', { type: 'text', id: 'filter', placeholder: t('filter'), 'aria-label': t('filter'), value: listState.filter, oninput: (e) => { listState.filter = e.target.value; fill(); } }),
        h('label', {}, h('input', { type: 'checkbox', id: 'show-pending', checked: listState.showPending, onchange: (e) => { listState.showPending = e.target.checked; fill(); } }), ' ', t('showPending'))),
      h('p', { class: 'help' }, t('filterHelp')),
      h('table', { id: 'keys' },
        h('thead', {}, h('tr', {}, ['colAlias', 'colKeyId', 'colStatus', 'colKeyType', 'colSpec', 'colUsage', 'colOrigin', 'colRegion'].map((c) => h('th', {}, t(c))))),
        body)),
  );
}

/** The key id of a `#/key/<id>` link, or undefined when its percent-encoding is malformed. */
function keyIdOf(hash) {
  try {
    return decodeURIComponent(hash.slice('#/key/'.length));
  } catch {
    return undefined;
  }
}

async function route() {
  await loadSession(); // the Region menu lists Regions that hold keys: one may have been added
  renderHeader();
  const hash = location.hash || '#/keys';
  const keyId = hash.startsWith('#/key/') ? keyIdOf(hash) : undefined;
  if (hash === '#/create') await renderWizard(main);
  else if (hash === '#/custom-key-stores') await renderKeyStores(main);
  else if (keyId !== undefined) await renderKeyPage(main, keyId);
  else {
    if (hash.startsWith('#/key/')) showError(new Error(`The link does not name a key: ${hash.slice(0, 80)}`));
    await renderKeys();
  }
  main.setAttribute('data-region', session.region);
  main.setAttribute('data-ready', hash);
  main.setAttribute('data-routes', String(++routes)); // lets a test wait for the page a change leads to
}

document.getElementById('lang').addEventListener('change', (e) => { setLanguage(e.target.value); route(); });
document.getElementById('principal').addEventListener('change', (e) => { session.principal = e.target.value; route(); });
document.getElementById('region').addEventListener('change', (e) => {
  if (e.target.value === '') {
    typingRegion = true;
    document.getElementById('region-other').classList.remove('hidden');
    document.getElementById('region-name').focus();
  } else switchRegion(e.target.value);
});
document.getElementById('region-go').addEventListener('click', () => switchRegion(document.getElementById('region-name').value.trim()));
document.getElementById('region-name').addEventListener('keydown', (e) => { if (e.key === 'Enter') switchRegion(e.target.value.trim()); });
window.addEventListener('hashchange', () => route());
export const formatDate = fmtDate;
route();
