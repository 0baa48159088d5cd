// The key page: general configuration, key actions, key policy, cryptographic configuration,
// tags, aliases, rotation and (origin EXTERNAL) key material. Each section is read with the
// operation an SDK would call, as the signed-in principal; a section the principal may not read
// shows that operation's KMS error instead of its content.
import { t } from './i18n.js';
import { attempt, bytesToB64, b64ToBytes, download, field, fmtDate, h, kms, kv, showError, showNotice, stateLabel, KmsError } from './ui.js';
import { keyMaterialSection } from './key-material.js';

const denied = (e) => h('p', { class: 'error inline' }, e instanceof KmsError ? `${e.name}: ${e.message}` : String(e));
async function section(id, title, build) {
  let content;
  try {
    content = await build();
  } catch (e) {
    content = denied(e);
  }
  return h('section', { class: 'panel', id }, h('h2', {}, title), content);
}

function pem(der) {
  const b64 = bytesToB64(der).replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN PUBLIC KEY-----\n${b64}-----END PUBLIC KEY-----\n`;
}

export async function renderKeyPage(main, keyId) {
  main.replaceChildren(h('p', {}, t('loading')));
  let m;
  try {
    m = (await kms('DescribeKey', { KeyId: keyId })).KeyMetadata;
  } catch (e) {
    main.replaceChildren(h('p', {}, h('a', { href: '#/keys' }, t('back'))));
    showError(e);
    return;
  }
  const id = m.KeyId;
  const rerender = (notice) => renderKeyPage(main, id).then(() => notice && showNotice(notice));
  const act = (fn, notice = t('done')) => attempt(async () => { await fn(); await rerender(notice); });

  const general = await section('general', t('generalConfiguration'), async () => kv([
    [t('keyId'), h('span', { class: 'mono', id: 'key-id' }, id)], [t('arn'), h('span', { class: 'mono' }, m.Arn)],
    [t('status'), stateLabel(m.KeyState)], [t('description'), m.Description || t('description_none')],
    [t('creationDate'), fmtDate(m.CreationDate)], [t('origin'), m.Origin], [t('region'), m.Arn.split(':')[3]],
    // Keys in a custom key store (API Reference, KeyMetadata): the store, and its CloudHSM cluster
    // or the key's id in the external key manager.
    m.CustomKeyStoreId ? [t('customKeyStoreId'), h('span', { class: 'mono', id: 'custom-key-store-id' }, m.CustomKeyStoreId)] : null,
    m.CloudHsmClusterId ? [t('cloudHsmClusterId'), h('span', { class: 'mono', id: 'cloudhsm-cluster-id' }, m.CloudHsmClusterId)] : null,
    m.XksKeyConfiguration?.Id ? [t('xksKeyId'), h('span', { class: 'mono', id: 'xks-key-id-value' }, m.XksKeyConfiguration.Id)] : null,
    [t('multiRegionCol'), m.MultiRegion ? t('yes') : t('no')], [t('keyManager'), t('customer')],
    m.DeletionDate !== undefined ? [t('deletionDate'), h('span', { id: 'deletion-date' }, fmtDate(m.DeletionDate))] : null,
  ]));

  const days = h('input', { type: 'number', id: 'pending-days', min: 7, max: 30, value: 30 });
  const confirmWord = t('confirmWord');
  const scheduleBtn = h('button', { id: 'schedule-deletion', class: 'danger', disabled: true, onclick: () => act(() => kms('ScheduleKeyDeletion', { KeyId: id, PendingWindowInDays: Number(days.value) })) }, t('scheduleDeletion'));
  const confirm = h('input', { type: 'text', id: 'confirm-deletion', 'aria-label': t('confirmDeletion', { word: confirmWord }), oninput: (e) => { scheduleBtn.disabled = e.target.value !== confirmWord; } });
  const actions = h('section', { class: 'panel', id: 'key-actions' }, h('h2', {}, t('keyActions')),
    h('div', { class: 'row' },
      m.KeyState === 'Disabled' ? h('button', { id: 'enable-key', onclick: () => act(() => kms('EnableKey', { KeyId: id })) }, t('enable')) : null,
      m.KeyState === 'Enabled' ? h('button', { id: 'disable-key', onclick: () => act(() => kms('DisableKey', { KeyId: id })) }, t('disable')) : null,
      m.KeyState === 'PendingDeletion' ? h('button', { id: 'cancel-deletion', onclick: () => act(() => kms('CancelKeyDeletion', { KeyId: id })) }, t('cancelDeletion')) : null),
    m.KeyState !== 'PendingDeletion' ? h('div', {},
      h('h3', {}, t('scheduleDeletion')), field(t('waitingPeriod'), days, t('waitingHelp')),
      field(t('confirmDeletion', { word: confirmWord }), confirm), scheduleBtn) : null);

  const testMsg = h('textarea', { id: 'test-message', rows: 2, 'aria-label': t('message') }, 'hello');
  const usage = m.KeyUsage === 'ENCRYPT_DECRYPT' ? h('section', { class: 'panel', id: 'test-encrypt' }, h('h2', {}, t('testMessage')),
    h('p', { class: 'help' }, t('testMessageHelp')), field(t('message'), testMsg),
    h('button', { id: 'encrypt-test', onclick: () => attempt(async () => {
      const out = await kms('Encrypt', { KeyId: id, Plaintext: bytesToB64(new TextEncoder().encode(testMsg.value)), ...(m.KeySpec === 'SYMMETRIC_DEFAULT' ? {} : { EncryptionAlgorithm: m.EncryptionAlgorithms[0] }) });
      showNotice(t('encrypted', { n: b64ToBytes(out.CiphertextBlob).length }));
    }) }, t('encrypt'))) : null;

  const policy = await section('key-policy', t('keyPolicy'), async () => {
    const { Policy } = await kms('GetKeyPolicy', { KeyId: id, PolicyName: 'default' });
    const view = h('pre', { id: 'policy-view', class: 'mono' }, JSON.stringify(JSON.parse(Policy), null, 2));
    const box = h('div', {}, view);
    box.append(h('button', { id: 'edit-policy', onclick: () => {
      const area = h('textarea', { id: 'policy-edit', class: 'policy', spellcheck: 'false' }, Policy);
      box.replaceChildren(area, h('div', { class: 'row' }, h('button', { id: 'save-policy', class: 'primary', onclick: () => act(() => kms('PutKeyPolicy', { KeyId: id, PolicyName: 'default', Policy: area.value }), t('policySaved')) }, t('savePolicy'))));
    } }, t('editPolicy')));
    return box;
  });

  const crypto = await section('crypto', t('cryptoConfiguration'), async () => {
    const rows = [[t('keySpec'), m.KeySpec], [t('keyUsage'), t(`usage_${m.KeyUsage}`)],
      m.EncryptionAlgorithms ? [t('encryptionAlgorithms'), m.EncryptionAlgorithms.join(', ')] : null,
      m.SigningAlgorithms ? [t('signingAlgorithms'), m.SigningAlgorithms.join(', ')] : null,
      m.MacAlgorithms ? [t('macAlgorithms'), m.MacAlgorithms.join(', ')] : null];
    const asym = !(m.KeySpec === 'SYMMETRIC_DEFAULT' || m.KeySpec.startsWith('HMAC_'));
    return h('div', {}, kv(rows), asym ? h('div', {}, h('h3', {}, t('publicKey')), h('p', { class: 'help' }, t('publicKeyHelp')),
      h('button', { id: 'download-public-key', onclick: () => attempt(async () => {
        const { PublicKey } = await kms('GetPublicKey', { KeyId: id });
        download(`${id}-public-key.pem`, pem(b64ToBytes(PublicKey)), 'application/x-pem-file');
      }) }, t('downloadPublicKey'))) : null);
  });

  const tags = await section('tags', t('tags'), async () => {
    const { Tags } = await kms('ListResourceTags', { KeyId: id });
    const k = h('input', { type: 'text', id: 'new-tag-key', placeholder: t('tagKey'), 'aria-label': t('tagKey') });
    const v = h('input', { type: 'text', id: 'new-tag-value', placeholder: t('tagValue'), 'aria-label': t('tagValue') });
    return h('div', {}, h('table', { id: 'tag-table' }, h('tr', {}, h('th', {}, t('tagKey')), h('th', {}, t('tagValue')), h('th', {})),
      Tags.map((tag) => h('tr', {}, h('td', {}, tag.TagKey), h('td', {}, tag.TagValue),
        h('td', {}, h('button', { onclick: () => act(() => kms('UntagResource', { KeyId: id, TagKeys: [tag.TagKey] })) }, t('remove')))))),
    h('div', { class: 'row' }, k, v, h('button', { id: 'add-tag-btn', onclick: () => act(() => kms('TagResource', { KeyId: id, Tags: [{ TagKey: k.value, TagValue: v.value }] })) }, t('addTag'))));
  });

  const aliases = await section('aliases', t('aliases'), async () => {
    const { Aliases } = await kms('ListAliases', { KeyId: id });
    const input = h('input', { type: 'text', id: 'new-alias', placeholder: 'alias/name', 'aria-label': t('alias') });
    return h('div', {}, h('ul', { id: 'alias-list' }, Aliases.map((a) => h('li', {}, h('span', { class: 'mono' }, a.AliasName), ' ',
      h('button', { onclick: () => act(() => kms('DeleteAlias', { AliasName: a.AliasName })) }, t('deleteAlias'))))),
    h('div', { class: 'row' }, input, h('button', { id: 'add-alias', onclick: () => act(() => kms('CreateAlias', { AliasName: input.value.startsWith('alias/') ? input.value : `alias/${input.value}`, TargetKeyId: id })) }, t('addAlias'))));
  });

  const rotation = m.KeySpec === 'SYMMETRIC_DEFAULT' && m.Origin === 'AWS_KMS' ? await section('rotation', t('keyRotation'), async () => {
    const status = await kms('GetKeyRotationStatus', { KeyId: id });
    const { Rotations } = await kms('ListKeyRotations', { KeyId: id });
    const enabled = h('input', { type: 'checkbox', id: 'rotation-enabled', checked: status.KeyRotationEnabled });
    const period = h('input', { type: 'number', id: 'rotation-period', min: 90, max: 2560, value: status.RotationPeriodInDays ?? 365 });
    return h('div', {},
      h('label', { class: 'row' }, enabled, t('autoRotation')), field(t('rotationPeriod'), period, t('rotationHelp')),
      kv([status.NextRotationDate ? [t('nextRotation'), fmtDate(status.NextRotationDate)] : null]),
      h('div', { class: 'row' },
        h('button', { id: 'rotation-save', onclick: () => act(() => (enabled.checked ? kms('EnableKeyRotation', { KeyId: id, RotationPeriodInDays: Number(period.value) }) : kms('DisableKeyRotation', { KeyId: id }))) }, t('save')),
        h('button', { id: 'rotate-now', onclick: () => act(() => kms('RotateKeyOnDemand', { KeyId: id })) }, t('rotateNow'))),
      h('h3', {}, t('rotationHistory')),
      h('table', { id: 'rotation-history' }, h('tr', {}, h('th', {}, t('rotationDate')), h('th', {}, t('rotationType'))),
        Rotations.map((r) => h('tr', {}, h('td', {}, fmtDate(r.RotationDate)), h('td', {}, r.RotationType)))));
  }) : null;

  const material = m.Origin === 'EXTERNAL' ? await section('key-material', t('keyMaterial'), () => keyMaterialSection(m, act)) : null;

  main.replaceChildren(...[
    h('p', {}, h('a', { href: '#/keys' }, t('back'))),
    h('h1', { id: 'key-title' }, id),
    general, actions, usage, policy, crypto, material, rotation, tags, aliases,
  ].filter(Boolean));
}
