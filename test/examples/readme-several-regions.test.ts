/**
 * The README's "Several Regions" TypeScript example, step for step (with src/ imports), so the
 * README stays true: the message the us-east-1 primary wrote is read in eu-west-1 with one
 * Decrypt there and no request to us-east-1.
 */
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { Envelope, KmsKeyring } from '../../src/index.js';
import { LocalKms } from '../../src/local-kms/index.js';

it('README "Several Regions": encrypt under the us-east-1 primary, decrypt with the eu-west-1 replica, one Decrypt in eu-west-1 only', async () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('## Several Regions'));
  expect(section).toContain("const replica = arn.replace(':us-east-1:', ':eu-west-1:');");
  expect(section).toContain("new KmsKeyring({ keyId: replica, mrkAware: true, client: west })");

  const kms = new LocalKms();
  const east = kms.client({ region: 'us-east-1' }), west = kms.client({ region: 'eu-west-1' });
  const { arn } = await kms.createKey({ MultiRegion: true });
  await east.call('ReplicateKey', { KeyId: arn, ReplicaRegion: 'eu-west-1' });
  const message = await new Envelope({ keyring: new KmsKeyring({ keyId: arn, mrkAware: true, client: east }) }).encrypt('hi');
  const replica = arn.replace(':us-east-1:', ':eu-west-1:');
  const reader = new Envelope({ keyring: new KmsKeyring({ keyId: replica, mrkAware: true, client: west }) });
  const before = kms.service.callCounts();
  expect((await reader.decrypt(message)).plaintext.toString()).toBe('hi');
  const after = kms.service.callCounts();
  expect(after['eu-west-1']!.Decrypt! - (before['eu-west-1']?.Decrypt ?? 0)).toBe(1);
  expect(after['us-east-1']).toEqual(before['us-east-1']);
  kms.close();
});
