// Custom key stores, read-only: the list page (#/custom-key-stores) and the list the wizard's
// "AWS CloudHSM key store" / "External key store" origins choose from. Both come from
// DescribeCustomKeyStores as the signed-in principal, in the Region of the Region menu (a custom
// key store, like a key, belongs to one Region). Creating, connecting and deleting stores is left
// to the API and CLI: those calls take the key store password.
import { t } from './i18n.js';
import { h, kms, KmsError, session } from './ui.js';

/** Every custom key store the principal may describe (all pages), or the KMS error that refused it. */
export async function loadKeyStores() {
  const stores = [];
  let marker;
  do {
    const page = await kms('DescribeCustomKeyStores', marker ? { Marker: marker } : {});
    stores.push(...(page.CustomKeyStores ?? []));
    marker = page.Truncated ? page.NextMarker : undefined;
  } while (marker);
  return stores;
}

/** A connection state (API Reference, CustomKeyStoresListEntry ConnectionState) as a label. */
export function connectionLabel(state) {
  return h('span', { class: `cks-${state}`, 'data-connection': state }, t(`conn_${state}`));
}

/** The store type (CustomKeyStoreType) as the AWS console names it. */
export const storeTypeLabel = (type) => t(type === 'EXTERNAL_KEY_STORE' ? 'externalKeyStore' : 'cloudHsmKeyStore');

export async function renderKeyStores(main) {
  main.replaceChildren(h('p', {}, t('loading')));
  let stores = [];
  let failure;
  try {
    stores = await loadKeyStores();
  } catch (e) {
    failure = e;
  }
  const body = h('tbody', {}, stores.map((s) => h('tr', { 'data-store-id': s.CustomKeyStoreId },
    h('td', {}, s.CustomKeyStoreName),
    h('td', { class: 'mono' }, s.CustomKeyStoreId),
    h('td', {}, storeTypeLabel(s.CustomKeyStoreType)),
    h('td', {}, connectionLabel(s.ConnectionState)),
    h('td', {}, s.ConnectionErrorCode ?? ''),
  )));
  if (stores.length === 0 && !failure) body.append(h('tr', {}, h('td', { colspan: 5 }, t('noKeyStores'))));
  main.replaceChildren(
    h('p', {}, h('a', { href: '#/keys' }, t('back'))),
    h('div', { class: 'row' }, h('h1', {}, t('customKeyStores')), h('span', { class: 'region-badge' }, session.region)),
    h('div', { class: 'panel' },
      h('p', { class: 'help' }, t('keyStoresHelp')),
      failure ? h('p', { class: 'error inline' }, failure instanceof KmsError ? `${failure.name}: ${failure.message}` : String(failure)) : null,
      h('table', { id: 'key-stores' },
        h('thead', {}, h('tr', {}, ['ksName', 'ksId', 'ksType', 'ksConnection', 'ksError'].map((c) => h('th', {}, t(c))))),
        body)),
  );
}
