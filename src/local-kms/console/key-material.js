// Key material of an EXTERNAL key (KMS Developer Guide, "Importing key material"): download the
// wrapping public key and import token (GetParametersForImport, valid 24 hours), upload the
// wrapped material with that token (ImportKeyMaterial), expiry, DeleteImportedKeyMaterial.
import { t } from './i18n.js';
import { b64ToBytes, bytesToB64, download, field, fmtDate, h, kms, kv, showNotice, attempt } from './ui.js';

const ALGORITHMS = ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256', 'RSA_AES_KEY_WRAP_SHA_1', 'RSA_AES_KEY_WRAP_SHA_256'];
const WRAPPING_SPECS = ['RSA_2048', 'RSA_3072', 'RSA_4096'];

export function keyMaterialSection(m, act) {
  const id = m.KeyId;
  const algorithm = h('select', { id: 'wrapping-algorithm' }, ALGORITHMS.map((a) => h('option', { value: a }, a)));
  const spec = h('select', { id: 'wrapping-spec' }, WRAPPING_SPECS.map((s) => h('option', { value: s }, s)));
  const expiry = h('span', { id: 'token-expiry' });
  const materialFile = h('input', { type: 'file', id: 'material-file' });
  const tokenFile = h('input', { type: 'file', id: 'token-file' });
  const validTo = h('input', { type: 'date', id: 'valid-to' });
  let expires = false;
  const radio = (value, label) => h('label', { class: 'row' }, h('input', { type: 'radio', name: 'expiration', value, checked: value === 'never', onchange: () => { expires = value === 'date'; } }), label);
  return h('div', {},
    kv([[t('expiration'), h('span', { id: 'material-expiration' }, m.ExpirationModel === 'KEY_MATERIAL_EXPIRES' ? fmtDate(m.ValidTo) : m.ExpirationModel ? t('neverExpires') : '—')]]),
    h('h3', {}, t('downloadWrapping')),
    h('p', { class: 'help' }, t('tokenHelp')),
    field(t('wrappingKeySpec'), spec), field(t('wrappingAlgorithm'), algorithm),
    h('div', { class: 'row' }, h('button', { id: 'download-wrapping', onclick: () => attempt(async () => {
      const out = await kms('GetParametersForImport', { KeyId: id, WrappingAlgorithm: algorithm.value, WrappingKeySpec: spec.value });
      download(`WrappingPublicKey.bin`, b64ToBytes(out.PublicKey));
      download(`ImportToken.bin`, b64ToBytes(out.ImportToken));
      expiry.textContent = `${t('tokenExpires')}: ${fmtDate(out.ParametersValidTo)}`;
      showNotice(t('externalDownloaded', { files: 'WrappingPublicKey.bin, ImportToken.bin' }));
    }) }, t('downloadWrapping')), expiry),
    h('h3', {}, t('upload')),
    field(t('encryptedMaterial'), materialFile), field(t('importToken'), tokenFile),
    h('fieldset', {}, h('legend', {}, t('expiration')), radio('never', t('neverExpires')), radio('date', t('expiresOn')), validTo),
    h('button', { id: 'import-material', class: 'primary', onclick: () => act(async () => {
      const [mat, tok] = [materialFile.files[0], tokenFile.files[0]];
      if (!mat || !tok) throw new Error(`${t('encryptedMaterial')} / ${t('importToken')}?`);
      const input = {
        KeyId: id,
        EncryptedKeyMaterial: bytesToB64(new Uint8Array(await mat.arrayBuffer())),
        ImportToken: bytesToB64(new Uint8Array(await tok.arrayBuffer())),
        ExpirationModel: expires ? 'KEY_MATERIAL_EXPIRES' : 'KEY_MATERIAL_DOES_NOT_EXPIRE',
      };
      if (expires) input.ValidTo = Math.floor(new Date(`${validTo.value}T00:00:00Z`).getTime() / 1000);
      await kms('ImportKeyMaterial', input);
    }, t('imported')) }, t('upload')),
    h('h3', {}, t('deleteMaterial')), h('p', { class: 'help' }, t('materialHelp')),
    h('button', { id: 'delete-material', class: 'danger', disabled: m.KeyState === 'PendingImport', onclick: () => act(() => kms('DeleteImportedKeyMaterial', { KeyId: id })) }, t('deleteMaterial')),
  );
}
