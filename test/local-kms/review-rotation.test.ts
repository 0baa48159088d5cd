import { describe, expect, it } from 'vitest';
import { LocalKmsService } from '../../src/local-kms/service.js';

// AWS KMS Developer Guide, "Rotating keys" / GetKeyRotationStatus: a key that is disabled or
// pending deletion is not rotated; while pending deletion its rotation status reads false (restored
// on CancelKeyDeletion); when re-enabled with overdue material it rotates once, then every period.
const DAY = 86_400_000;

async function setup() {
  let now = Date.UTC(2025, 0, 1);
  const svc = new LocalKmsService({ clock: () => now });
  const { KeyMetadata } = (await svc.call('CreateKey', {})) as { KeyMetadata: { KeyId: string } };
  const keyId = KeyMetadata.KeyId;
  await svc.call('EnableKeyRotation', { KeyId: keyId, RotationPeriodInDays: 90 });
  return { svc, keyId, advance: (days: number) => (now += days * DAY), now: () => now };
}

describe('review: rotation and key state', () => {
  it('GetKeyRotationStatus reports false while the key is pending deletion, and the status returns on cancel', async () => {
    const { svc, keyId } = await setup();
    await svc.call('ScheduleKeyDeletion', { KeyId: keyId, PendingWindowInDays: 7 });
    const pending = await svc.call('GetKeyRotationStatus', { KeyId: keyId });
    expect(pending.KeyRotationEnabled).toBe(false);
    expect(pending.NextRotationDate).toBeUndefined();
    await svc.call('CancelKeyDeletion', { KeyId: keyId });
    const restored = await svc.call('GetKeyRotationStatus', { KeyId: keyId });
    expect(restored.KeyRotationEnabled).toBe(true);
    expect(restored.RotationPeriodInDays).toBe(90);
  });

  it('a disabled key gains no rotations for the time it was disabled; re-enabled overdue, it rotates once, now', async () => {
    const { svc, keyId, advance, now } = await setup();
    await svc.call('DisableKey', { KeyId: keyId });
    advance(400);
    await svc.call('EnableKey', { KeyId: keyId });
    const list = (await svc.call('ListKeyRotations', { KeyId: keyId })) as { Rotations: { RotationDate: Date }[] };
    expect(list.Rotations.length).toBe(1);
    expect(list.Rotations[0]!.RotationDate.getTime()).toBe(now());
    const status = await svc.call('GetKeyRotationStatus', { KeyId: keyId });
    expect((status.NextRotationDate as Date).getTime()).toBe(now() + 90 * DAY);
    // and the schedule continues from there
    advance(91);
    const later = (await svc.call('ListKeyRotations', { KeyId: keyId })) as { Rotations: unknown[] };
    expect(later.Rotations.length).toBe(2);
  });

  it('re-enabled before the period ends, the original schedule resumes without an extra rotation', async () => {
    const { svc, keyId, advance } = await setup();
    await svc.call('DisableKey', { KeyId: keyId });
    advance(30);
    await svc.call('EnableKey', { KeyId: keyId });
    const list = (await svc.call('ListKeyRotations', { KeyId: keyId })) as { Rotations: unknown[] };
    expect(list.Rotations.length).toBe(0);
    const status = await svc.call('GetKeyRotationStatus', { KeyId: keyId });
    expect((status.NextRotationDate as Date).getTime()).toBe(Date.UTC(2025, 0, 1) + 90 * DAY);
  });
});
