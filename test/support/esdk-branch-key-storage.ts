/**
 * An adapter that lets the ESDK's BranchKeyStoreNode (@aws-crypto/client-node 5.0.2) read branch
 * keys through any of our BranchKeyStorage implementations, as its custom storage
 * (IBranchKeyStorage: getEncryptedActiveBranchKey, getEncryptedBranchKeyVersion,
 * getKeyStorageInfo). The encrypted key it hands over is the item's `enc` with the item's other
 * attributes as text plus `tablename` = the logical key store name: the encryption context the
 * ESDK then authenticates with KMS (framework/branch-key-store.md, "Encryption Context").
 *
 * The ESDK does not export its EncryptedHierarchicalKey class from its index, and checks the
 * result's classes with instanceof, so the class is loaded from its build (5.0.2 layout).
 */
import { createRequire } from 'node:module';
import type { IBranchKeyStorage } from '@aws-crypto/branch-keystore-node/build/main/src/types.js';
import type { BranchKeyItem, BranchKeyStorage } from '../../src/keyrings/hierarchy/storage.js';

type EsdkTypes = typeof import('@aws-crypto/branch-keystore-node/build/main/src/types.js');
const require = createRequire(import.meta.url);
const { EncryptedHierarchicalKey } = require('@aws-crypto/branch-keystore-node/build/main/src/types.js') as EsdkTypes;

export function esdkStorageOver(storage: BranchKeyStorage, names: { logicalName: string; name: string }): IBranchKeyStorage {
  const encrypted = (item: BranchKeyItem | undefined, what: string) => {
    if (!item) throw new Error(`no ${what} item`);
    const context: Record<string, string> = { tablename: names.logicalName };
    for (const [k, v] of Object.entries(item)) if (k !== 'enc') context[k] = String(v);
    return new EncryptedHierarchicalKey(context as never, item.enc);
  };
  return {
    async getEncryptedActiveBranchKey(branchKeyId: string) {
      return encrypted(await storage.getItem(branchKeyId, 'branch:ACTIVE'), 'branch:ACTIVE');
    },
    async getEncryptedBranchKeyVersion(branchKeyId: string, version: string) {
      return encrypted(await storage.getItem(branchKeyId, `branch:version:${version}`), 'version');
    },
    getKeyStorageInfo() {
      return { name: names.name, logicalName: names.logicalName };
    },
  };
}
