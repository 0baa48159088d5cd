/**
 * A small in-memory stand-in for KMS across several Regions, with multi-Region keys, to check
 * which Region and KeyId an MRK-aware keyring calls (the integration tests use the real local KMS).
 * A key is its key id plus the Regions it exists in; a multi-Region key (`mrk-...`) and its
 * replicas share the material, as in KMS. A ciphertext blob carries the key id in the clear and is
 * AES-GCM under the key's material, with the encryption context as AAD. Decrypt in Region R
 * answers with the key's ARN in R; a KeyId naming another key is IncorrectKeyException.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { KmsServiceError } from '../../src/local-kms/errors.js';
import { serializeContext } from '../../src/format/context.js';
import type { KmsClient } from '../../src/types.js';

export interface FakeRequest {
  region: string;
  op: 'GenerateDataKey' | 'Encrypt' | 'Decrypt';
  keyId: string | undefined;
  encryptionContext: Record<string, string> | undefined;
  grantTokens: string[] | undefined;
  ciphertextBlob?: Uint8Array;
}

export class FakeMrkKms {
  readonly requests: FakeRequest[] = [];
  readonly #keys = new Map<string, { secret: Buffer; regions: Set<string> }>();
  /** Alter a Decrypt answer (to test the keyring's checks); called with the honest answer. */
  alterDecrypt: ((out: { keyId: string; plaintext: Buffer }, region: string) => { keyId: string; plaintext: Buffer }) | undefined;

  constructor(
    readonly account = '111122223333',
    readonly partition = 'aws',
  ) {}

  arn(keyId: string, region: string, account = this.account): string {
    return `arn:${this.partition}:kms:${region}:${account}:key/${keyId}`;
  }

  /** A multi-Region key in `regions` (primary first); returns its key id. */
  createMrk(regions: string[]): string {
    const id = `mrk-${randomBytes(16).toString('hex')}`;
    this.#keys.set(id, { secret: randomBytes(32), regions: new Set(regions) });
    return id;
  }

  /** A single-Region key; returns its ARN. */
  createKey(region: string): string {
    const id = randomBytes(16).toString('hex').replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-');
    this.#keys.set(id, { secret: randomBytes(32), regions: new Set([region]) });
    return this.arn(id, region);
  }

  requestsIn(region: string): FakeRequest[] {
    return this.requests.filter((r) => r.region === region);
  }

  /** The client of one Region. */
  client(region: string): KmsClient {
    return {
      generateDataKey: async (input) => {
        this.#log(region, 'GenerateDataKey', input);
        const id = this.#resolve(region, input.keyId);
        const plaintext = randomBytes(input.numberOfBytes);
        return { keyId: this.arn(id, region), plaintext: Buffer.from(plaintext), ciphertextBlob: this.#seal(id, plaintext, input.encryptionContext) };
      },
      encrypt: async (input) => {
        this.#log(region, 'Encrypt', input);
        const id = this.#resolve(region, input.keyId);
        return { keyId: this.arn(id, region), ciphertextBlob: this.#seal(id, input.plaintext, input.encryptionContext) };
      },
      decrypt: async (input) => {
        this.#log(region, 'Decrypt', input);
        const blob = Buffer.from(input.ciphertextBlob);
        const n = blob.length >= 1 ? blob.readUInt8(0) : 0;
        const id = blob.subarray(1, 1 + n).toString();
        const key = this.#keys.get(id);
        if (key === undefined || !key.regions.has(region)) throw new KmsServiceError('InvalidCiphertextException', '');
        if (input.keyId !== undefined && this.#resolve(region, input.keyId) !== id) {
          throw new KmsServiceError('IncorrectKeyException', 'The key ID in the request does not identify a KMS key that can decrypt the ciphertext');
        }
        const d = createDecipheriv('aes-256-gcm', key.secret, blob.subarray(1 + n, 13 + n));
        d.setAAD(serializeContext(input.encryptionContext ?? {}));
        d.setAuthTag(blob.subarray(13 + n, 29 + n));
        let plaintext: Buffer;
        try {
          plaintext = Buffer.concat([d.update(blob.subarray(29 + n)), d.final()]);
        } catch {
          throw new KmsServiceError('InvalidCiphertextException', '');
        }
        const out = { keyId: this.arn(id, region), plaintext };
        return this.alterDecrypt ? this.alterDecrypt(out, region) : out;
      },
    };
  }

  #log(region: string, op: FakeRequest['op'], input: { keyId?: string; encryptionContext?: Record<string, string>; grantTokens?: string[]; ciphertextBlob?: Uint8Array }) {
    this.requests.push({
      region,
      op,
      keyId: input.keyId,
      encryptionContext: input.encryptionContext,
      grantTokens: input.grantTokens,
      ...(input.ciphertextBlob ? { ciphertextBlob: input.ciphertextBlob } : {}),
    });
  }

  /** Key id named by `keyId` (an ARN of this Region and account, or a bare id) if the key exists in `region`. */
  #resolve(region: string, keyId: string): string {
    const prefix = `arn:${this.partition}:kms:${region}:${this.account}:key/`;
    const id = keyId.startsWith('arn:') ? (keyId.startsWith(prefix) ? keyId.slice(prefix.length) : '') : keyId;
    if (!this.#keys.get(id)?.regions.has(region)) throw new KmsServiceError('NotFoundException', `Key '${keyId}' does not exist`);
    return id;
  }

  #seal(id: string, plaintext: Uint8Array, ctx: Record<string, string> | undefined): Buffer {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.#keys.get(id)!.secret, iv);
    c.setAAD(serializeContext(ctx ?? {}));
    const ct = Buffer.concat([c.update(plaintext), c.final()]);
    return Buffer.concat([Buffer.from([Buffer.byteLength(id)]), Buffer.from(id), iv, c.getAuthTag(), ct]);
  }
}
