/**
 * Compliance: framework/aws-kms/aws-kms-key-arn.md (test/spec/compliance/framework/aws-kms/aws-kms-key-arn.md).
 * The parser decides which configured identifiers the KMS keyring accepts, which KMS answers it
 * takes as key ARNs, and which EDK provider infos it considers.
 */
import { describe, expect, it } from 'vitest';
import { isMultiRegionKmsArn, isMultiRegionKmsIdentifier, kmsIdentifierKind, parseKeyArn, parseKmsArn } from '../../src/keyrings/index.js';

const GOOD = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';

describe('AWS KMS ARN', () => {
  it('is "arn" and five more parts separated by ":": another first part, or another number of parts, is not an ARN', () => {
    expect(parseKmsArn(GOOD)).toEqual({ partition: 'aws', region: 'us-east-1', account: '111122223333', resourceType: 'key', resourceId: '1234abcd-12ab-34cd-56ef-1234567890ab' });
    for (const bad of ['ARN:aws:kms:us-east-1:111122223333:key/k', 'arm:aws:kms:us-east-1:111122223333:key/k', 'xarn:aws:kms:us-east-1:111122223333:key/k', ':aws:kms:us-east-1:111122223333:key/k']) {
      expect(parseKmsArn(bad), bad).toBeUndefined();
    }
    expect(parseKmsArn('arn:aws:kms:us-east-1:111122223333:key/k:extra')).toBeUndefined();
    expect(parseKmsArn('arn:aws:kms:us-east-1:key/k')).toBeUndefined();
  });

  it('needs a non-empty partition, region and account', () => {
    expect(parseKmsArn('arn::kms:us-east-1:111122223333:key/k')).toBeUndefined();
    expect(parseKmsArn('arn:aws:kms::111122223333:key/k')).toBeUndefined();
    expect(parseKmsArn('arn:aws:kms:us-east-1::key/k')).toBeUndefined();
    expect(parseKmsArn('arn:aws-cn:kms:cn-north-1:111122223333:key/k')?.partition).toBe('aws-cn');
    expect(parseKmsArn('arn:x:kms:r:a:key/k')).toEqual({ partition: 'x', region: 'r', account: 'a', resourceType: 'key', resourceId: 'k' });
  });

  it('needs the service "kms", exactly', () => {
    for (const service of ['s3', 'KMS', 'kms ', '', 'kms-fips']) {
      expect(parseKmsArn(`arn:aws:${service}:us-east-1:111122223333:key/k`), service).toBeUndefined();
    }
  });

  it('needs a non-empty resource split at its first "/": further "/" belong to the resource id', () => {
    expect(parseKmsArn('arn:aws:kms:us-east-1:111122223333:')).toBeUndefined();
    expect(parseKmsArn('arn:aws:kms:us-east-1:111122223333:key')).toBeUndefined();
    expect(parseKmsArn('arn:aws:kms:us-east-1:111122223333:/k')).toBeUndefined();
    expect(parseKmsArn('arn:aws:kms:us-east-1:111122223333:alias/team/app')).toMatchObject({ resourceType: 'alias', resourceId: 'team/app' });
    expect(parseKmsArn('arn:aws:kms:us-east-1:111122223333:key/a/b/')).toMatchObject({ resourceType: 'key', resourceId: 'a/b/' });
  });

  it('needs the resource type "key" or "alias" and a non-empty resource id', () => {
    for (const type of ['keys', 'Key', 'ALIAS', 'grant', '']) {
      expect(parseKmsArn(`arn:aws:kms:us-east-1:111122223333:${type}/k`), type).toBeUndefined();
    }
    expect(parseKmsArn('arn:aws:kms:us-east-1:111122223333:key/')).toBeUndefined();
    expect(parseKmsArn('arn:aws:kms:us-east-1:111122223333:alias/')).toBeUndefined();
    expect(parseKmsArn('arn:aws:kms:us-east-1:111122223333:alias/a')?.resourceType).toBe('alias');
    // A key ARN is an ARN of resource type key: what KMS answers with and what EDKs name.
    expect(parseKeyArn(GOOD)?.resourceType).toBe('key');
    expect(parseKeyArn('arn:aws:kms:us-east-1:111122223333:alias/a')).toBeUndefined();
    // Identifiers: a valid ARN, an alias name (the resource of an alias ARN), or a key id.
    expect(kmsIdentifierKind(GOOD)).toBe('key-arn');
    expect(kmsIdentifierKind('arn:aws:kms:us-east-1:111122223333:alias/a')).toBe('alias-arn');
    expect(kmsIdentifierKind('alias/a')).toBe('alias-name');
    expect(kmsIdentifierKind('1234abcd-12ab-34cd-56ef-1234567890ab')).toBe('key-id');
    expect(kmsIdentifierKind('arn:aws:kms:us-east-1:111122223333:grant/g')).toBeUndefined();
  });
});

describe('AWS KMS multi-Region keys', () => {
  const MRK = 'arn:aws:kms:us-east-1:2222222222222:key/mrk-4321abcd12ab34cd56ef1234567890ab';
  it('ARN: takes one ARN; an invalid one is a TypeError; an alias ARN is never multi-Region (even named mrk-...); a key ARN is when its key id begins with "mrk-"', () => {
    expect(isMultiRegionKmsArn(MRK)).toBe(true);
    expect(isMultiRegionKmsArn(GOOD)).toBe(false);
    expect(isMultiRegionKmsArn('arn:aws:kms:us-west-2:111122223333:alias/mrk-test-key')).toBe(false);
    expect(isMultiRegionKmsArn('arn:aws:kms:us-west-2:111122223333:key/xmrk-1')).toBe(false);
    for (const bad of ['arn:aws:kms:us-east-1:111122223333:key', 'mrk-1', 'arn:aws:s3:us-east-1:1:key/mrk-1', '']) {
      expect(() => isMultiRegionKmsArn(bad), bad).toThrow(TypeError);
    }
  });

  it('identifier: "arn:..." is judged as an ARN (invalid: TypeError), "alias/..." is never multi-Region, a bare key id is when it begins with "mrk-"', () => {
    expect(isMultiRegionKmsIdentifier(MRK)).toBe(true);
    expect(isMultiRegionKmsIdentifier(GOOD)).toBe(false);
    expect(() => isMultiRegionKmsIdentifier('arn:aws:kms:us-east-1:1:key')).toThrow(TypeError);
    expect(isMultiRegionKmsIdentifier('alias/mrk-test-key')).toBe(false);
    expect(isMultiRegionKmsIdentifier('mrk-4321abcd12ab34cd56ef1234567890ab')).toBe(true);
    expect(isMultiRegionKmsIdentifier('1234abcd-12ab-34cd-56ef-1234567890ab')).toBe(false);
    expect(isMultiRegionKmsIdentifier('MRK-1')).toBe(false);
  });
});
