import type { Requester } from '../request-context.js';
import { KEY_SPECS } from '../specs.js';
import { Checks, validationError } from '../validate.js';
import { paginate, sortByKey, type ListScope } from '../paging.js';
import type { AliasRecord, KeyRecord, Tag } from '../model.js';
import type { KmsCore } from '../core.js';
import { checkKeyId, checkMarker, err, num, str, withPage, type KmsResponse, type Req } from './util.js';

/**
 * Aliases and tags (API Reference: CreateAlias, UpdateAlias, DeleteAlias, ListAliases,
 * TagResource, UntagResource, ListResourceTags), with the tag rules CreateKey shares.
 */

const MAX_TAGS = 50;
const MAX_ALIASES_PER_KEY = 50;
const ALIAS_PATTERN = /^[a-zA-Z0-9:/_-]+$/;

function checkAliasName(c: Checks, member: string, name: unknown): void {
  c.required(member, name);
  c.length(member, str(name), 1, 256);
  c.pattern(member, str(name), ALIAS_PATTERN, '^[a-zA-Z0-9:/_-]+$');
}

function aliasRules(name: string): void {
  if (!name.startsWith('alias/') || name.length === 'alias/'.length) {
    throw err('InvalidAliasNameException', `Alias must start with the prefix "alias/" followed by a name: ${name}`);
  }
  if (name.startsWith('alias/aws/')) {
    throw err('InvalidAliasNameException', `Alias names beginning with alias/aws/ are reserved for AWS managed keys: ${name}`);
  }
}

export async function createAlias(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  checkAliasName(c, 'aliasName', req.AliasName);
  c.required('targetKeyId', req.TargetKeyId);
  c.length('targetKeyId', str(req.TargetKeyId), 1, 2048);
  c.done();
  const name = String(req.AliasName);
  aliasRules(name);
  const { key } = kms.resolve(String(req.TargetKeyId), { alias: false }, who);
  // Two permissions (Developer Guide, "Controlling access to aliases"): kms:CreateAlias on the key
  // (key policy, or IAM through it) and on the alias (IAM policy only).
  kms.authorize(who, 'kms:CreateAlias', key);
  kms.authorizeIamOnly(who, 'CreateAlias on the alias', { alias: name });
  kms.requireNotPendingDeletion(key);
  if (kms.aliases.has(name)) throw err('AlreadyExistsException', `An alias with the name ${kms.aliasArn(name)} already exists`);
  if ([...kms.aliases.values()].filter((a) => a.targetKeyId === key.keyId).length >= MAX_ALIASES_PER_KEY) {
    throw err('LimitExceededException', `A KMS key can have at most ${MAX_ALIASES_PER_KEY} aliases.`);
  }
  const now = kms.clock();
  const next = new Map(kms.aliases);
  next.set(name, { name, targetKeyId: key.keyId, createdAt: now, updatedAt: now });
  kms.commitAliases(next);
  return {};
}

export async function updateAlias(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  checkAliasName(c, 'aliasName', req.AliasName);
  c.required('targetKeyId', req.TargetKeyId);
  c.length('targetKeyId', str(req.TargetKeyId), 1, 2048);
  c.done();
  const name = String(req.AliasName);
  aliasRules(name);
  const alias = ownAlias(kms, name, who);
  const current = kms.keys.get(alias.targetKeyId)!;
  const { key } = kms.resolve(String(req.TargetKeyId), { alias: false }, who);
  // Three permissions: the current key, the new key, the alias (IAM only).
  kms.authorize(who, 'kms:UpdateAlias', current);
  kms.authorize(who, 'kms:UpdateAlias', key);
  kms.authorizeIamOnly(who, 'UpdateAlias on the alias', { alias: name });
  kms.requireNotPendingDeletion(key);
  const family = (k: KeyRecord) => KEY_SPECS[k.keySpec].family === 'symmetric' ? 'SYMMETRIC' : KEY_SPECS[k.keySpec].family === 'hmac' ? 'HMAC' : 'ASYMMETRIC';
  if (family(current) !== family(key) || current.keyUsage !== key.keyUsage) {
    throw validationError(
      `Alias ${kms.aliasArn(name)} cannot be changed from a KMS key with key type ${family(current)} and key usage ${current.keyUsage} to a KMS key with key type ${family(key)} and key usage ${key.keyUsage}.`,
    );
  }
  const next = new Map(kms.aliases);
  next.set(name, { ...alias, targetKeyId: key.keyId, updatedAt: kms.clock() });
  kms.commitAliases(next);
  return {};
}

export async function deleteAlias(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  checkAliasName(c, 'aliasName', req.AliasName);
  c.done();
  const name = String(req.AliasName);
  aliasRules(name);
  const alias = ownAlias(kms, name, who);
  kms.authorize(who, 'kms:DeleteAlias', kms.keys.get(alias.targetKeyId)!);
  kms.authorizeIamOnly(who, 'DeleteAlias on the alias', { alias: name });
  const next = new Map(kms.aliases);
  next.delete(name);
  kms.commitAliases(next);
  return {};
}

/**
 * The alias `name` of the caller's account. Alias names are resolved in the caller's account, so
 * for a caller of another account (cross-account.ts) no alias of this one is found.
 */
function ownAlias(kms: KmsCore, name: string, who: Requester): AliasRecord {
  const alias = kms.isForeign(who) ? undefined : kms.aliases.get(name);
  if (!alias) throw err('NotFoundException', `Alias ${kms.aliasArn(name, who.caller.account)} is not found.`);
  return alias;
}

export async function listAliases(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  c.length('keyId', str(req.KeyId), 1, 2048);
  c.range('limit', num(req.Limit), 1, 100);
  checkMarker(c, req.Marker);
  c.done();
  // IAM policies alone, on "*", even with KeyId (Developer Guide, "Controlling access to aliases").
  kms.authorizeIamOnly(who, 'ListAliases');
  // "ListAliases does not return aliases in other AWS accounts" (API Reference): a caller of
  // another account lists its own account's aliases, of which this KMS holds none.
  const foreign = kms.isForeign(who);
  let list = foreign ? [] : [...kms.aliases.values()];
  const scope: ListScope = { operation: 'ListAliases', scope: foreign ? `account ${who.caller.account}` : '' };
  if (req.KeyId !== undefined) {
    const { key } = kms.resolve(String(req.KeyId), { alias: false }, who);
    list = list.filter((a) => a.targetKeyId === key.keyId);
    scope.scope += key.keyId;
  }
  sortByKey(list, (a) => a.name);
  const page = paginate(list, (a) => a.name, num(req.Limit) ?? 50, str(req.Marker), kms.markers, scope);
  return withPage(
    {
      Aliases: page.items.map((a) => ({
        AliasName: a.name,
        AliasArn: kms.aliasArn(a.name),
        TargetKeyId: a.targetKeyId,
        CreationDate: new Date(a.createdAt),
        LastUpdatedDate: new Date(a.updatedAt),
      })),
    },
    page,
  );
}

export async function tagResource(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  checkKeyId(c, req.KeyId);
  c.required('tags', req.Tags);
  checkTagShapes(c, req.Tags as Tag[] | undefined, 'tags');
  c.done();
  const { key } = kms.resolve(String(req.KeyId), { alias: false }, who);
  const tags = req.Tags as Tag[];
  // aws:TagKeys (multi-valued) and one aws:RequestTag/<key> per tag (IAM User Guide, global
  // condition keys; Developer Guide, "Limiting tag permissions").
  kms.authorize(who, 'kms:TagResource', key, {
    keys: { 'aws:TagKeys': tags.map((t) => t.TagKey), ...Object.fromEntries(tags.map((t) => [`aws:RequestTag/${t.TagKey}`, t.TagValue])) },
  });
  kms.requireNotPendingDeletion(key);
  checkTagRules(tags, key.tags);
  const merged = key.tags.map((t) => ({ ...t }));
  for (const t of tags) {
    const existing = merged.find((m) => m.TagKey === t.TagKey);
    if (existing) existing.TagValue = t.TagValue;
    else merged.push({ TagKey: t.TagKey, TagValue: t.TagValue });
  }
  kms.commit(key, { tags: merged });
  return {};
}

export async function untagResource(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  checkKeyId(c, req.KeyId);
  c.required('tagKeys', req.TagKeys);
  const keys = (req.TagKeys as string[] | undefined) ?? [];
  keys.forEach((k, i) => c.length(`tagKeys.${i + 1}.member`, k, 1, 128));
  c.done();
  const { key } = kms.resolve(String(req.KeyId), { alias: false }, who);
  // aws:TagKeys: the tag keys to remove (Developer Guide, "Limiting tag permissions").
  kms.authorize(who, 'kms:UntagResource', key, { keys: { 'aws:TagKeys': [...keys] } });
  kms.requireNotPendingDeletion(key);
  // AWS tagging rules: `aws:` keys belong to AWS and cannot be edited or removed by callers.
  // UntagResource's only tag error in the API Reference is TagException; the whole request is
  // refused, so no other key in it is removed either.
  const reserved = keys.find(isReservedTagKey);
  if (reserved !== undefined) {
    throw err('TagException', `Tag keys beginning with "aws:" are reserved for AWS use and cannot be removed: ${reserved}`);
  }
  kms.commit(key, { tags: key.tags.filter((t) => !keys.includes(t.TagKey)) });
  return {};
}

export async function listResourceTags(kms: KmsCore, req: Req, who: Requester): Promise<KmsResponse> {
  const c = new Checks();
  checkKeyId(c, req.KeyId);
  c.range('limit', num(req.Limit), 1, 50);
  checkMarker(c, req.Marker);
  c.done();
  const { key } = kms.resolve(String(req.KeyId), { alias: false }, who);
  kms.authorize(who, 'kms:ListResourceTags', key);
  // Listed in tag-key order: the tag key is the tag's identity, so a marker naming the last key
  // returned stays meaningful when tags are added or removed between pages.
  const tags = sortByKey([...key.tags], (t) => t.TagKey);
  const scope = { operation: 'ListResourceTags', scope: key.keyId };
  const page = paginate(tags, (t) => t.TagKey, num(req.Limit) ?? 50, str(req.Marker), kms.markers, scope);
  return withPage({ Tags: page.items.map((t) => ({ TagKey: t.TagKey, TagValue: t.TagValue })) }, page);
}

export function checkTagShapes(c: Checks, tags: Tag[] | undefined, member: string): void {
  if (!tags) return;
  tags.forEach((t, i) => {
    const m = `${member}.${i + 1}.member`;
    c.required(`${m}.tagKey`, t?.TagKey);
    c.length(`${m}.tagKey`, t?.TagKey, 1, 128);
    c.required(`${m}.tagValue`, t?.TagValue);
    c.length(`${m}.tagValue`, t?.TagValue, 0, 256);
  });
}

/**
 * Tag rules (Developer Guide, "Tags in AWS KMS"; AWS General Reference, tag restrictions):
 * - keys beginning with `aws:` (any case) are reserved for AWS: TagException;
 * - a tag key appears once per request: TagException;
 * - at most 50 user tags per key, counting the tags it already has: LimitExceededException.
 *   TagException means "a tag is not valid"; a count over the quota is not an invalid tag, and the
 *   API Reference lists LimitExceededException ("a length constraint or quota was exceeded") for
 *   TagResource and CreateKey. Invalid tags are reported before the count.
 */
export function checkTagRules(tags: Tag[], existing: Tag[]): void {
  const seen = new Set<string>();
  for (const t of tags) {
    if (isReservedTagKey(t.TagKey)) {
      throw err('TagException', `Tag keys beginning with "aws:" are reserved for AWS use: ${t.TagKey}`);
    }
    if (seen.has(t.TagKey)) throw err('TagException', `Duplicate tag key in the request: ${t.TagKey}`);
    seen.add(t.TagKey);
  }
  const total = new Set([...existing.map((t) => t.TagKey), ...seen]).size;
  if (total > MAX_TAGS) {
    throw err('LimitExceededException', `A KMS key can have at most ${MAX_TAGS} tags; this request would give it ${total}.`);
  }
}

export function isReservedTagKey(key: string): boolean {
  return key.toLowerCase().startsWith('aws:');
}
