// The create-key wizard, in the AWS console's five steps: configure key, add labels, key
// administrators, key usage permissions, review. The policy reviewed in step 5 is the one
// `kms-envelope local-kms key-policy` prints for the same choices (server: keyPolicyFor); Finish
// calls CreateKey (and CreateAlias) as the signed-in principal, which validates the policy.
import { t } from './i18n.js';
import { attempt, clearMessages, consoleApi, field, h, kms, session, showError, showNotice } from './ui.js';
import { connectionLabel, loadKeyStores } from './key-stores.js';

/**
 * Key material origins in custom key stores (API Reference, CreateKey Origin): AWS_CLOUDHSM with
 * a CloudHSM key store's CustomKeyStoreId, EXTERNAL_KEY_STORE with an external key store's id and
 * the XksKeyId of the key in the external key manager. Both are symmetric encryption keys only,
 * single-Region (Developer Guide, "Custom key stores": "You can create only symmetric encryption
 * KMS keys" and multi-Region keys are not supported in custom key stores).
 */
const STORE_ORIGINS = { AWS_CLOUDHSM: 'AWS_CLOUDHSM', EXTERNAL_KEY_STORE: 'EXTERNAL_KEY_STORE' };
const inStore = (origin) => origin in STORE_ORIGINS;
/** API Reference, CreateKey XksKeyId: 1-128 characters of ^[a-zA-Z0-9-_.]+$. */
const XKS_KEY_ID = /^[a-zA-Z0-9._-]{1,128}$/;

const SPECS = {
  symmetric: { ENCRYPT_DECRYPT: ['SYMMETRIC_DEFAULT'], GENERATE_VERIFY_MAC: ['HMAC_224', 'HMAC_256', 'HMAC_384', 'HMAC_512'] },
  asymmetric: {
    ENCRYPT_DECRYPT: ['RSA_2048', 'RSA_3072', 'RSA_4096'],
    SIGN_VERIFY: ['RSA_2048', 'RSA_3072', 'RSA_4096', 'ECC_NIST_P256', 'ECC_NIST_P384', 'ECC_NIST_P521', 'ECC_SECG_P256K1'],
    KEY_AGREEMENT: ['ECC_NIST_P256', 'ECC_NIST_P384', 'ECC_NIST_P521', 'ECC_SECG_P256K1'],
  },
};

let w;
function fresh() {
  return {
    step: 1, keyType: 'symmetric', keyUsage: 'ENCRYPT_DECRYPT', keySpec: 'SYMMETRIC_DEFAULT', origin: 'AWS_KMS', multiRegion: false,
    region: session.region, stores: undefined, storeId: '', xksKeyId: '',
    alias: '', description: '', tags: [], admins: [], adminsCanDelete: true, users: [], accounts: [], policy: '', policyFor: '',
  };
}

const knownPrincipals = () => (session.info.principals ?? []).map((p) => p.arn).filter((arn) => !arn.endsWith(':root'));
const rootArn = (account) => `arn:aws:iam::${account}:root`;
const policyInputs = () => ({
  administrators: w.admins, users: [...w.users, ...w.accounts.filter(Boolean).map(rootArn)],
  keySpec: w.keySpec, keyUsage: w.keyUsage, external: w.origin === 'EXTERNAL', administratorsCanDelete: w.adminsCanDelete,
});

function radio(name, value, current, label, onchange, disabled = false) {
  return h('label', { class: disabled ? 'row disabled' : 'row' }, h('input', { type: 'radio', name, value, checked: value === current, disabled, onchange: () => onchange(value) }), label);
}

const originLabel = (origin) => t({ AWS_KMS: 'originKms', EXTERNAL: 'originExternal', AWS_CLOUDHSM: 'originCloudHsm', EXTERNAL_KEY_STORE: 'originXks' }[origin]);
const storeType = (origin) => (origin === 'EXTERNAL_KEY_STORE' ? 'EXTERNAL_KEY_STORE' : 'AWS_CLOUDHSM');

/** The custom key stores of the chosen type: CONNECTED ones selectable, the others greyed with their state. */
function storePicker() {
  const stores = w.stores.filter((s) => s.CustomKeyStoreType === storeType(w.origin));
  return h('div', { id: 'store-list' },
    h('h3', {}, t('customKeyStore')), h('p', { class: 'help' }, t('customKeyStoreHelp')),
    stores.map((s) => {
      const connected = s.ConnectionState === 'CONNECTED';
      return h('label', { class: connected ? 'row' : 'row disabled' },
        h('input', { type: 'radio', name: 'customKeyStore', value: s.CustomKeyStoreId, 'data-store-id': s.CustomKeyStoreId, checked: s.CustomKeyStoreId === w.storeId, disabled: !connected, onchange: () => { w.storeId = s.CustomKeyStoreId; clearMessages(); } }),
        h('span', {}, s.CustomKeyStoreName), h('span', { class: 'mono' }, s.CustomKeyStoreId), connectionLabel(s.ConnectionState));
    }),
    w.origin === 'EXTERNAL_KEY_STORE' ? field(t('xksKeyId'), h('input', { type: 'text', id: 'xks-key-id', maxlength: 128, value: w.xksKeyId, oninput: (e) => { w.xksKeyId = e.target.value.trim(); } }), t('xksKeyIdHelp')) : null);
}

/** The origin radios; the custom key store ones only when the principal has a store of that type in this Region. */
function originChoices() {
  const has = (type) => (w.stores ?? []).some((s) => s.CustomKeyStoreType === type);
  const symmetricEncryption = w.keyType === 'symmetric' && w.keyUsage === 'ENCRYPT_DECRYPT';
  const pick = (v) => {
    w.origin = v;
    if (inStore(v)) Object.assign(w, { keyType: 'symmetric', keyUsage: 'ENCRYPT_DECRYPT', keySpec: 'SYMMETRIC_DEFAULT', multiRegion: false });
    if (w.stores && !w.stores.some((s) => s.CustomKeyStoreId === w.storeId && s.CustomKeyStoreType === storeType(v))) w.storeId = '';
    draw();
  };
  return [
    radio('origin', 'AWS_KMS', w.origin, t('originKms'), pick),
    radio('origin', 'EXTERNAL', w.origin, t('originExternal'), pick),
    has('AWS_CLOUDHSM') ? radio('origin', 'AWS_CLOUDHSM', w.origin, t('originCloudHsm'), pick, !symmetricEncryption) : null,
    has('EXTERNAL_KEY_STORE') ? radio('origin', 'EXTERNAL_KEY_STORE', w.origin, t('originXks'), pick, !symmetricEncryption) : null,
    h('p', { class: 'help' }, t('originHelp')),
    has('AWS_CLOUDHSM') || has('EXTERNAL_KEY_STORE') ? h('p', { class: 'help' }, t('customOriginHelp')) : null,
    inStore(w.origin) ? storePicker() : null,
  ];
}

/** Step 1's own checks before Next (CreateKey would refuse the same later, after four more steps). */
function step1Problem() {
  if (!inStore(w.origin)) return undefined;
  const store = w.stores.find((s) => s.CustomKeyStoreId === w.storeId);
  if (!store || store.ConnectionState !== 'CONNECTED') return t('chooseKeyStore');
  if (w.origin === 'EXTERNAL_KEY_STORE' && !XKS_KEY_ID.test(w.xksKeyId)) return t('xksKeyIdInvalid');
  return undefined;
}

function principalPicker(kind, list) {
  const box = h('div', { id: `${kind}-list` });
  const arns = [...new Set([...knownPrincipals(), ...list])];
  for (const arn of arns) {
    box.append(h('label', { class: 'row' }, h('input', {
      type: 'checkbox', value: arn, 'data-arn': arn, checked: list.includes(arn),
      onchange: (e) => { if (e.target.checked) list.push(arn); else list.splice(list.indexOf(arn), 1); },
    }), h('span', { class: 'mono' }, arn)));
  }
  const typed = h('input', { type: 'text', id: `${kind}-arn`, placeholder: 'arn:aws:iam::111122223333:role/name', 'aria-label': t('typedArn') });
  box.append(h('div', { class: 'row' }, typed, h('button', { id: `${kind}-add`, onclick: () => {
    const arn = typed.value.trim();
    if (arn && !list.includes(arn)) list.push(arn);
    draw();
  } }, t('add'))));
  return box;
}

function step1() {
  const usages = Object.keys(SPECS[w.keyType]);
  const specs = SPECS[w.keyType][w.keyUsage] ?? [];
  // A custom key store origin fixes a symmetric encryption, single-Region key: the other choices are greyed.
  const fixed = inStore(w.origin);
  return [
    h('fieldset', {}, h('legend', {}, t('keyType')),
      radio('keyType', 'symmetric', w.keyType, t('symmetric'), (v) => { w.keyType = v; w.keyUsage = 'ENCRYPT_DECRYPT'; w.keySpec = 'SYMMETRIC_DEFAULT'; draw(); }),
      radio('keyType', 'asymmetric', w.keyType, t('asymmetric'), (v) => { w.keyType = v; w.keyUsage = 'ENCRYPT_DECRYPT'; w.keySpec = 'RSA_2048'; draw(); }, fixed),
      h('p', { class: 'help' }, t('keyTypeHelp'))),
    h('fieldset', {}, h('legend', {}, t('keyUsage')),
      usages.map((u) => radio('keyUsage', u, w.keyUsage, t(`usage_${u}`), (v) => { w.keyUsage = v; w.keySpec = SPECS[w.keyType][v][0]; draw(); }, fixed && u !== 'ENCRYPT_DECRYPT'))),
    field(t('keySpec'), h('select', { id: 'key-spec', disabled: fixed, onchange: (e) => { w.keySpec = e.target.value; } },
      specs.map((s) => h('option', { value: s, selected: s === w.keySpec }, s)))),
    h('fieldset', {}, h('legend', {}, t('advanced')),
      h('h3', {}, t('keyMaterialOrigin')),
      ...originChoices(),
      h('h3', {}, t('regionality')),
      radio('regionality', 'single', w.multiRegion ? 'multi' : 'single', t('singleRegion'), () => { w.multiRegion = false; draw(); }),
      radio('regionality', 'multi', w.multiRegion ? 'multi' : 'single', t('multiRegion'), () => { w.multiRegion = true; draw(); }, fixed),
      h('p', { class: 'help' }, t('regionalityHelp'))),
  ];
}

function step2() {
  const tags = h('div', { id: 'tags' });
  w.tags.forEach((tag, i) => tags.append(h('div', { class: 'row' },
    h('input', { type: 'text', class: 'tag-key', 'aria-label': t('tagKey'), placeholder: t('tagKey'), value: tag.TagKey, oninput: (e) => { tag.TagKey = e.target.value; } }),
    h('input', { type: 'text', class: 'tag-value', 'aria-label': t('tagValue'), placeholder: t('tagValue'), value: tag.TagValue, oninput: (e) => { tag.TagValue = e.target.value; } }),
    h('button', { onclick: () => { w.tags.splice(i, 1); draw(); } }, t('remove')))));
  return [
    field(t('alias'), h('input', { type: 'text', id: 'alias', value: w.alias, oninput: (e) => { w.alias = e.target.value; } }), t('aliasHelp')),
    field(t('description'), h('textarea', { id: 'description', rows: 3, oninput: (e) => { w.description = e.target.value; } }, w.description), t('descriptionHelp')),
    h('h3', {}, t('tags')), h('p', { class: 'help' }, t('tagsHelp')), tags,
    h('button', { id: 'add-tag', onclick: () => { w.tags.push({ TagKey: '', TagValue: '' }); draw(); } }, t('addTag')),
  ];
}

function step3() {
  return [
    h('h3', {}, t('keyAdministrators')), h('p', { class: 'help' }, t('adminsHelp')), principalPicker('admin', w.admins),
    h('label', { class: 'row' }, h('input', { type: 'checkbox', id: 'admin-delete', checked: w.adminsCanDelete, onchange: (e) => { w.adminsCanDelete = e.target.checked; } }), t('allowAdminDelete')),
  ];
}

function step4() {
  const accounts = h('div', { id: 'accounts' });
  w.accounts.forEach((a, i) => accounts.append(h('div', { class: 'row' },
    h('input', { type: 'text', class: 'account-id', 'aria-label': t('accountId'), placeholder: '444455556666', value: a, oninput: (e) => { w.accounts[i] = e.target.value.trim(); } }),
    h('button', { onclick: () => { w.accounts.splice(i, 1); draw(); } }, t('remove')))));
  return [
    h('h3', {}, t('keyUsers')), h('p', { class: 'help' }, t('usersHelp')), principalPicker('user', w.users),
    h('h3', {}, t('otherAccounts')), h('p', { class: 'help' }, t('otherAccountsHelp')), accounts,
    h('button', { id: 'add-account', onclick: () => { w.accounts.push(''); draw(); } }, t('addAccount')),
  ];
}

function step5() {
  const area = h('textarea', { id: 'policy', class: 'policy', spellcheck: 'false', oninput: (e) => { w.policy = e.target.value; } }, w.policy);
  const tagText = w.tags.filter((x) => x.TagKey).map((x) => `${x.TagKey}=${x.TagValue}`).join(', ');
  return [
    h('h3', {}, t('keyConfiguration')),
    h('table', { class: 'kv', id: 'review' },
      [[t('keyType'), w.keyType === 'symmetric' ? t('symmetric') : t('asymmetric')], [t('keySpec'), w.keySpec], [t('keyUsage'), t(`usage_${w.keyUsage}`)],
        [t('keyMaterialOrigin'), originLabel(w.origin)],
        ...(inStore(w.origin) ? [[t('customKeyStoreId'), w.storeId]] : []),
        ...(w.origin === 'EXTERNAL_KEY_STORE' ? [[t('xksKeyId'), w.xksKeyId]] : []),
        [t('regionality'), w.multiRegion ? t('multiRegion') : t('singleRegion')], [t('region'), w.region],
        [t('alias'), w.alias ? `alias/${w.alias}` : t('none')], [t('description'), w.description || t('none')], [t('tags'), tagText || t('none')],
        [t('keyAdministrators'), w.admins.join(', ') || t('none')], [t('keyUsers'), [...w.users, ...w.accounts.filter(Boolean).map(rootArn)].join(', ') || t('none')],
      ].map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v)))),
    h('h3', {}, t('keyPolicy')), h('p', { class: 'help' }, t('policyHelp')), area,
    h('div', { class: 'row' }, h('button', { id: 'validate-policy', onclick: () => attempt(async () => { await consoleApi.validatePolicy(w.policy); showNotice(t('policyValid')); }) }, t('validate'))),
  ];
}

const STEPS = [step1, step2, step3, step4, step5];

let root;
async function goto(step) {
  const problem = w.step === 1 && step === 2 ? step1Problem() : undefined;
  if (problem) {
    showError(new Error(problem));
    return;
  }
  if (step === 5) {
    // The generated policy follows the choices until the user edits it; an edited one is kept.
    const inputs = JSON.stringify(policyInputs());
    if (w.policyFor !== inputs) {
      const ok = await attempt(async () => { w.policy = (await consoleApi.keyPolicy(policyInputs())).policy; });
      if (!ok) return;
      w.policyFor = inputs;
    }
  }
  w.step = step;
  draw();
}

/** Whether a Finish is running: a second click (a double click) must not send a second CreateKey. */
let finishing = false;
async function finish() {
  if (finishing) return;
  finishing = true;
  try {
    await create();
  } finally {
    finishing = false;
  }
}

async function create() {
  await attempt(async () => {
    await consoleApi.validatePolicy(w.policy);
    const input = { KeySpec: w.keySpec, KeyUsage: w.keyUsage, Origin: w.origin, Policy: w.policy };
    if (inStore(w.origin)) input.CustomKeyStoreId = w.storeId;
    if (w.origin === 'EXTERNAL_KEY_STORE') input.XksKeyId = w.xksKeyId;
    if (w.multiRegion && !inStore(w.origin)) input.MultiRegion = true;
    if (w.description) input.Description = w.description;
    const tags = w.tags.filter((x) => x.TagKey);
    if (tags.length > 0) input.Tags = tags;
    const { KeyMetadata } = await kms('CreateKey', input);
    const alias = w.alias;
    // The key exists now: leave the wizard whatever CreateAlias answers, so Finish cannot make a second key.
    w = fresh();
    location.hash = `#/key/${KeyMetadata.KeyId}`;
    showNotice(t('created', { id: KeyMetadata.KeyId }));
    if (alias) await kms('CreateAlias', { AliasName: `alias/${alias}`, TargetKeyId: KeyMetadata.KeyId });
  });
}

function draw() {
  const n = w.step;
  root.replaceChildren(
    h('h1', {}, t('createKey')),
    h('ol', { class: 'steps' }, [1, 2, 3, 4, 5].map((i) => h('li', { class: i === n ? 'current' : '' }, `${t('stepN', { n: i })}: ${t(`step${i}`)}`))),
    h('div', { class: 'panel', id: `wizard-step-${n}`, 'data-step': n },
      h('p', { class: 'help' }, t('stepN', { n })), h('h2', { id: 'step-title' }, t(`step${n}`)), ...STEPS[n - 1]()),
    h('div', { class: 'actions' },
      h('button', { id: 'wizard-cancel', onclick: () => { w = fresh(); location.hash = '#/keys'; } }, t('cancel')),
      n > 1 ? h('button', { id: 'wizard-previous', onclick: () => goto(n - 1) }, t('previous')) : null,
      n < 5 ? h('button', { id: 'wizard-next', class: 'primary', onclick: () => goto(n + 1) }, t('next'))
        : h('button', { id: 'wizard-finish', class: 'primary', onclick: finish }, t('finish'))),
  );
}

export async function renderWizard(main) {
  root = main;
  // A wizard belongs to a Region (its custom key stores are that Region's): a new Region starts over.
  if (w === undefined || w.region !== session.region) w = fresh();
  if (w.stores === undefined || w.step === 1) {
    // Read again on step 1: a store may have been connected meanwhile. Not offered when the principal may not describe stores (the AWS console shows none then either).
    try {
      w.stores = await loadKeyStores();
    } catch {
      w.stores = [];
    }
  }
  draw();
}
