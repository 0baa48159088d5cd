/**
 * Decrypt failures in the words of the command line: the library's errors name its options
 * (`commitmentPolicy`, `maxFrameLength`), the CLI user knows flags (`--allow-legacy`,
 * `--max-frame-length`). And "no encrypted data key could be decrypted" says which key the message
 * names and which ones the command allowed, because that is what the user has to compare.
 * Key ARNs and account ids are identifiers, not secrets (they are in the clear in every message
 * header); what comes from the message is quoted with JSON.stringify and cut, since a hostile
 * header chooses it.
 */
import { CommitmentPolicyError, LimitExceededError, NoDecryptableKeyError } from '../errors.js';
import { decodeUtf8 } from '../keyrings/common.js';
import { HIERARCHY_PROVIDER_ID } from '../keyrings/hierarchy/wrapping.js';
import type { EncryptedDataKey, Keyring } from '../types.js';
import { CliError } from './errors.js';

/** Library option -> the decrypt flag that sets it. */
const FLAG_FOR_OPTION: Readonly<Record<string, string>> = {
  maxFrameLength: '--max-frame-length',
  maxEncryptedDataKeys: '--max-encrypted-data-keys',
};

/** What `decrypt` allowed, for the message when no encrypted data key matches. */
export interface AllowedKeys {
  keyIds: readonly string[];
  allowAccounts?: readonly string[] | undefined;
  partition: string;
  /** `decrypt --region R` without --key: multi-Region-key-aware discovery limited to R. */
  region?: string | undefined;
  /** `decrypt --branch-key ID`: the hierarchical keyring's branch key id. */
  branchKeyId?: string | undefined;
}

/** Rewrites a library error in terms of the decrypt command's flags; anything else is returned as is. */
export function explainDecryptError(err: unknown): unknown {
  if (err instanceof CommitmentPolicyError) {
    return new CliError(
      'ERR_COMMITMENT_POLICY',
      'legacy message (format v1, an algorithm suite without key commitment): refused unless --allow-legacy is given ' +
        '(such a message does not commit to its data key)',
      { cause: err },
    );
  }
  if (err instanceof LimitExceededError && err.option !== undefined) {
    const flag = FLAG_FOR_OPTION[err.option];
    const message =
      flag === undefined
        ? `${err.message.replace(/; raise the \w+ option.*$/, '')} (a fixed limit of kms-envelope decrypt)`
        : err.message.replace(`the ${err.option} option`, flag).split(err.option).join(flag);
    return new CliError('ERR_LIMIT_EXCEEDED', message, { cause: err });
  }
  return err;
}

const MAX_NAMED = 5;

function quote(text: string): string {
  return JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}...` : text);
}

/** The key ARNs (or other providers) a message's encrypted data keys name, for a message. */
function describeEdks(edks: readonly EncryptedDataKey[]): string {
  const names = edks.map((edk) => {
    const info = decodeUtf8(edk.providerInfo);
    if (edk.providerId === 'aws-kms' && info !== undefined) return quote(info);
    if (edk.providerId === HIERARCHY_PROVIDER_ID && info !== undefined) return `branch key ${quote(info)} (a hierarchical keyring)`;
    return `a key of provider ${quote(edk.providerId)} (not KMS)`;
  });
  const unique = [...new Set(names)];
  const shown = unique.slice(0, MAX_NAMED).join(', ');
  return unique.length > MAX_NAMED ? `${shown} and ${unique.length - MAX_NAMED} more` : shown;
}

/**
 * The decrypt keyring, unchanged except that "none of the message's encrypted data keys is for an
 * allowed key" (the keyring's `undefined`) becomes a NoDecryptableKeyError saying which keys the
 * message names and which the command allowed. Failed KMS calls are reported as before.
 */
export function explainingKeyring(inner: Keyring, allowed: AllowedKeys): Keyring {
  return {
    onEncrypt: (input) => inner.onEncrypt(input),
    onDecrypt: async (input) => {
      const key = await inner.onDecrypt(input);
      if (key !== undefined) return key;
      const named = `the message's data key is wrapped by ${describeEdks(input.encryptedDataKeys)}`;
      let what: string;
      if (allowed.branchKeyId !== undefined) {
        what = `not by the branch key given with --branch-key (${quote(allowed.branchKeyId)})`;
      } else if (allowed.keyIds.length > 0) {
        what = `not by a key given with --key (${allowed.keyIds.map(quote).join(', ')})`;
      } else if (allowed.region !== undefined) {
        const accounts =
          allowed.allowAccounts !== undefined
            ? ` of the --allow-account accounts (${allowed.allowAccounts.join(', ')}, partition ${allowed.partition})`
            : '';
        what =
          `not by a multi-Region key or a key in ${allowed.region}${accounts} ` +
          `(--region ${allowed.region} limits decryption to that Region's keys and replicas)`;
      } else if (allowed.allowAccounts !== undefined) {
        what = `not by a key of the --allow-account accounts (${allowed.allowAccounts.join(', ')}, partition ${allowed.partition})`;
      } else if (input.encryptedDataKeys.some((edk) => edk.providerId === HIERARCHY_PROVIDER_ID)) {
        // The message was written with `encrypt --branch-key`: say how to read it back.
        what = 'and none of them is a KMS key (decrypt with --branch-key ID and the branch key store the message was written with)';
      } else {
        what = 'and none of them is a KMS key';
      }
      throw new NoDecryptableKeyError(`no encrypted data key of this message is for an allowed key: ${named}, ${what}`);
    },
  };
}
