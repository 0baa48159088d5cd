// The create-key wizard, in the AWS console's five steps: configure key, add labels, key
// administrators, key usage permissions, review. The policy reviewed in step 5 is the one
// `kms-envelope local-kms key-policy` prints for the same choices (server: keyPolicyFor); Finish
// calls CreateKey (and CreateAlias) as the signed-in principal, which validates the policy.
import { t } from './i18n.js';
import { attempt, consoleApi, field, h, kms, session, showNotice } from './ui.js';

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
    alias: '', description: '', tags: [], admins: [], adminsCanDelete: true, users: [], accounts: [], policy: '', policyFor: '',
  };
}

const knownPrincipals = () => (session.info.principals ?? []).map((p) => p.arn).filter((arn) => !arn.endsWith(':root'));
const rootArn = (account) => `arn:aws:iam::${account}:root`;
const policyInputs = () => ({
  administrators: w.admins, users: [...w.users, ...w.accounts.filter(Boolean).map(rootArn)],
  keySpec: w.keySpec, keyUsage: w.keyUsage, external: w.origin === 'EXTERNAL', administratorsCanDelete: w.adminsCanDelete,
});

function radio(name, value, current, label, onchange) {
  return h('label', { class: 'row' }, h('input', { type: 'radio', name, value, checked: value === current, onchange: () => onchange(value) }), label);
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
  return [
    h('fieldset', {}, h('legend', {}, t('keyType')),
      radio('keyType', 'symmetric', w.keyType, t('symmetric'), (v) => { w.keyType = v; w.keyUsage = 'ENCRYPT_DECRYPT'; w.keySpec = 'SYMMETRIC_DEFAULT'; draw(); }),
      radio('keyType', 'asymmetric', w.keyType, t('asymmetric'), (v) => { w.keyType = v; w.keyUsage = 'ENCRYPT_DECRYPT'; w.keySpec = 'RSA_2048'; draw(); }),
      h('p', { class: 'help' }, t('keyTypeHelp'))),
    h('fieldset', {}, h('legend', {}, t('keyUsage')),
      usages.map((u) => radio('keyUsage', u, w.keyUsage, t(`usage_${u}`), (v) => { w.keyUsage = v; w.keySpec = SPECS[w.keyType][v][0]; draw(); }))),
    field(t('keySpec'), h('select', { id: 'key-spec', onchange: (e) => { w.keySpec = e.target.value; } },
      specs.map((s) => h('option', { value: s, selected: s === w.keySpec }, s)))),
    h('fieldset', {}, h('legend', {}, t('advanced')),
      h('h3', {}, t('keyMaterialOrigin')),
      radio('origin', 'AWS_KMS', w.origin, t('originKms'), (v) => { w.origin = v; draw(); }),
      radio('origin', 'EXTERNAL', w.origin, t('originExternal'), (v) => { w.origin = v; draw(); }),
      h('p', { class: 'help' }, t('originHelp')),
      h('h3', {}, t('regionality')),
      radio('regionality', 'single', w.multiRegion ? 'multi' : 'single', t('singleRegion'), () => { w.multiRegion = false; draw(); }),
      radio('regionality', 'multi', w.multiRegion ? 'multi' : 'single', t('multiRegion'), () => { w.multiRegion = true; draw(); }),
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
        [t('keyMaterialOrigin'), w.origin === 'EXTERNAL' ? t('originExternal') : t('originKms')], [t('regionality'), w.multiRegion ? t('multiRegion') : t('singleRegion')],
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

async function finish() {
  await attempt(async () => {
    await consoleApi.validatePolicy(w.policy);
    const input = { KeySpec: w.keySpec, KeyUsage: w.keyUsage, Origin: w.origin, Policy: w.policy };
    if (w.multiRegion) input.MultiRegion = true;
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

export function renderWizard(main) {
  root = main;
  w ??= fresh();
  draw();
}
