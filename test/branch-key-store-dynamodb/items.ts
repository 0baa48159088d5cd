/** Branch key items in the specification's record format, with random `enc` bytes (storage tests do not decrypt). */
import { randomBytes, randomUUID } from 'node:crypto';
import type { BranchKeyItem } from '../../src/keyrings/hierarchy/storage.js';

export const KMS_ARN = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';

/** ISO 8601 UTC to the microsecond ("Record Format": create-time). */
export function createTime(): string {
  return new Date().toISOString().replace('Z', '000Z');
}

export function newKeyItems(branchKeyId: string = randomUUID(), context: Record<string, string> = { department: 'admin' }) {
  const version = `branch:version:${randomUUID()}` as const;
  const common = { 'branch-key-id': branchKeyId, 'kms-arn': KMS_ARN, 'create-time': createTime(), 'hierarchy-version': '1' };
  const custom = Object.fromEntries(Object.entries(context).map(([k, v]) => [`aws-crypto-ec:${k}`, v]));
  const versionItem = { ...common, ...custom, type: version, enc: randomBytes(40) } as BranchKeyItem;
  const active = { ...common, ...custom, type: 'branch:ACTIVE', version, enc: randomBytes(40) } as BranchKeyItem;
  const beacon = { ...common, ...custom, type: 'beacon:ACTIVE', enc: randomBytes(40) } as BranchKeyItem;
  return { version: versionItem, active, beacon };
}

/** The next version of a key: a new version item and a new ACTIVE item naming it. */
export function nextVersionItems(previous: { active: BranchKeyItem }) {
  const { version, active } = newKeyItems(previous.active['branch-key-id']);
  return { version, active, expectedActiveEnc: previous.active.enc };
}
