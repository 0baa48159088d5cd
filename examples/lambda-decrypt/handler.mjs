/**
 * AWS Lambda handler that decrypts base64 ESDK messages.
 *
 * The Envelope lives at module scope: Lambda keeps the module loaded between invocations of a warm
 * container, so its data-key cache serves every later message whose data key it has seen. Blobs
 * written with a cached data key (many messages per key) then cost one KMS Decrypt per data key
 * per container, not one per message.
 *
 * Configuration (environment):
 *   KMS_KEY_IDS      comma-separated key ARNs allowed to decrypt; absent = discovery (decrypt
 *                    with whichever key ARN the message names). Key ARNs only: a message names the
 *                    key ARN that wrapped it, and an alias can be re-pointed (UpdateAlias)
 *   KMS_ACCOUNT_IDS  with discovery: only keys of these comma-separated account ids
 *   KMS_ENDPOINT     KMS endpoint URL, e.g. http://127.0.0.1:4599 for the local KMS (default: AWS KMS)
 *   AWS_REGION       set by Lambda
 *   CACHE_MAX_AGE_MS how long an unwrapped data key may be reused (default 300000)
 *
 * Event: { "blobs": ["<base64 message>", ...], "context": { "k": "v" } }  (or "blob": "<base64>")
 * Result: { "results": [{ "ok": true, "plaintext": "<base64>" } | { "ok": false, "error": "<code>" }] }
 * One bad blob does not fail the batch; its entry carries the error code only (never any bytes).
 */
import { Envelope } from 'kms-envelope';

function kmsOptions(env) {
  const kms = {};
  const keyIds = list(env.KMS_KEY_IDS);
  const accounts = list(env.KMS_ACCOUNT_IDS);
  const notArn = keyIds.find((k) => !/^arn:[^:]+:kms:[^:]+:[^:]+:key\//.test(k));
  if (notArn !== undefined) {
    // Fail at cold start, with what to do, rather than on every message.
    throw new TypeError(`KMS_KEY_IDS must list key ARNs (arn:aws:kms:REGION:ACCOUNT:key/ID); ${JSON.stringify(notArn)} is not one`);
  }
  if (keyIds.length > 0) kms.keyIds = keyIds;
  else {
    kms.discovery = true;
    if (accounts.length > 0) kms.discoveryFilter = { accountIds: accounts, partition: env.KMS_PARTITION || 'aws' };
  }
  if (env.KMS_ENDPOINT) kms.endpoint = env.KMS_ENDPOINT;
  if (env.AWS_REGION) kms.region = env.AWS_REGION;
  return kms;
}

function list(value) {
  return (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}

const envelope = new Envelope({
  kms: kmsOptions(process.env),
  cache: { maxEntries: 100, maxAgeMs: Number(process.env.CACHE_MAX_AGE_MS ?? 300_000) },
});

export async function handler(event) {
  const blobs = Array.isArray(event?.blobs) ? event.blobs : typeof event?.blob === 'string' ? [event.blob] : undefined;
  if (blobs === undefined) throw new TypeError('event must have "blobs" (array of base64 strings) or "blob"');
  const context = event.context ?? undefined;
  const results = [];
  for (const blob of blobs) {
    try {
      if (typeof blob !== 'string') throw new TypeError('blob must be a base64 string');
      const { plaintext } = await envelope.decrypt(Buffer.from(blob, 'base64'), { context });
      results.push({ ok: true, plaintext: plaintext.toString('base64') });
    } catch (err) {
      // Log the code only: messages never hold plaintext, but the code is all an operator needs.
      const code = typeof err?.code === 'string' ? err.code : 'ERR_INTERNAL';
      console.error(`decrypt failed: ${code}`);
      results.push({ ok: false, error: code });
    }
  }
  return { results };
}

/** Cache and KMS counters of this container's Envelope (for tests and metrics). */
export function stats() {
  return envelope.stats();
}
