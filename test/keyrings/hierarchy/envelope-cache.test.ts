/**
 * An Envelope over a HierarchicalKeyring has no data-key cache unless one is asked for: the
 * keyring's promise is a fresh data key for every message (it caches branch keys, not data keys).
 */
import { afterAll, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BranchKeyStore, DirectoryBranchKeyStorage, Envelope, HierarchicalKeyring, MultiKeyring, RawAesKeyring } from '../../../src/index.js';
import type { Keyring } from '../../../src/index.js';
import { LocalKms } from '../../../src/local-kms/index.js';

const dir = mkdtempSync(join(tmpdir(), 'kms-envelope-hierarchy-cache-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('default: every message has its own EDK (no data-key cache); an explicit cache is still honoured', async () => {
  const kms = new LocalKms();
  const { arn } = await kms.createKey();
  const store = new BranchKeyStore({ storage: new DirectoryBranchKeyStorage({ dir }), logicalKeyStoreName: 'cache', kmsConfiguration: { kmsKeyArn: arn }, kmsClient: kms.client() });
  await store.createKey({ branchKeyId: 'tenant', encryptionContext: { tenant: 'tenant' } });
  const keyring = () => new HierarchicalKeyring({ keyStore: store, branchKeyId: 'tenant', cache: { maxAgeMs: 60_000 } });
  const edks = async (envelope: Envelope): Promise<string[]> => {
    const out: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { header } = await envelope.encryptDetailed(`m${i}`);
      out.push(Buffer.from(header.encryptedDataKeys[0]!.ciphertext).toString('hex'));
    }
    return out;
  };
  expect(new Set(await edks(new Envelope({ keyring: keyring() }))).size).toBe(5);
  expect(new Set(await edks(new Envelope({ keyring: keyring(), cache: { maxEntries: 10, maxAgeMs: 60_000 } }))).size).toBe(1);

  // The same default when the hierarchical keyring makes the key as a MultiKeyring's generator
  // (also nested), and for a keyring of another copy of the package: recognized by a registered
  // symbol, which a wrapper stands in for here.
  const recovery = new RawAesKeyring({ keyNamespace: 'recovery', keyName: 'k', key: new Uint8Array(32).fill(9) });
  expect(new Set(await edks(new Envelope({ keyring: new MultiKeyring({ generator: keyring(), children: [recovery] }) }))).size).toBe(5);
  const nested = new MultiKeyring({ generator: new MultiKeyring({ generator: keyring() }), children: [recovery] });
  expect(new Set(await edks(new Envelope({ keyring: nested }))).size).toBe(5);
  const inner = keyring();
  const otherCopy: Keyring = {
    onEncrypt: (input) => inner.onEncrypt(input),
    onDecrypt: (input) => inner.onDecrypt(input),
    [Symbol.for('kms-envelope.freshDataKeyPerMessage')]: true,
  } as Keyring;
  expect(new Set(await edks(new Envelope({ keyring: otherCopy }))).size).toBe(5);
  // A hierarchical keyring only as a child does not make the data key: the default cache applies.
  expect(new Set(await edks(new Envelope({ keyring: new MultiKeyring({ generator: recovery, children: [keyring()] }) }))).size).toBe(1);
  kms.close();
});
