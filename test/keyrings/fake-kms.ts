/**
 * A tiny in-memory stand-in for KMS used to unit-test keyring logic (matching rules, key-id
 * checks, error handling, counting) independently of the local KMS. Ciphertext blobs are
 * AES-GCM under a per-key secret, with the key ARN in the clear, like KMS's.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { KmsServiceError } from '../../src/local-kms/errors.js';
import { serializeContext } from '../../src/format/context.js';
import type { KmsClient } from '../../src/types.js';

export class FakeKms implements KmsClient {
  readonly keys = new Map<string, Buffer>();
  readonly aliases = new Map<string, string>();
  readonly requests: { op: string; keyId?: string }[] = [];
  /** Lie about the key id in Decrypt answers (to test the keyring's check). */
  lieAboutKeyId = false;
  /** Return a data key of this many bytes instead (to test the length check). */
  wrongLength: number | undefined;

  constructor(
    readonly region = 'us-east-1',
    readonly account = '111122223333',
    readonly partition = 'aws',
  ) {}

  createKey(alias?: string): string {
    const arn = `arn:${this.partition}:kms:${this.region}:${this.account}:key/${randomBytes(16).toString('hex')}`;
    this.keys.set(arn, randomBytes(32));
    if (alias) this.aliases.set(alias, arn);
    return arn;
  }

  resolve(keyId: string): string {
    const prefix = `arn:${this.partition}:kms:${this.region}:${this.account}:`;
    let arn: string | undefined;
    if (keyId.startsWith('alias/')) arn = this.aliases.get(keyId);
    else if (keyId.startsWith(prefix + 'alias/')) arn = this.aliases.get(keyId.slice(prefix.length));
    else if (keyId.startsWith('arn:')) arn = this.keys.has(keyId) ? keyId : undefined;
    else arn = this.keys.has(prefix + 'key/' + keyId) ? prefix + 'key/' + keyId : undefined;
    if (arn === undefined) throw new KmsServiceError('NotFoundException', `Key '${keyId}' does not exist`);
    return arn;
  }

  async generateDataKey(input: { keyId: string; numberOfBytes: number; encryptionContext?: Record<string, string> }) {
    this.requests.push({ op: 'GenerateDataKey', keyId: input.keyId });
    const arn = this.resolve(input.keyId);
    const plaintext = randomBytes(this.wrongLength ?? input.numberOfBytes);
    return { keyId: arn, plaintext: Buffer.from(plaintext), ciphertextBlob: this.#seal(arn, plaintext, input.encryptionContext) };
  }

  async encrypt(input: { keyId: string; plaintext: Uint8Array; encryptionContext?: Record<string, string> }) {
    this.requests.push({ op: 'Encrypt', keyId: input.keyId });
    const arn = this.resolve(input.keyId);
    return { keyId: arn, ciphertextBlob: this.#seal(arn, input.plaintext, input.encryptionContext) };
  }

  async decrypt(input: { keyId?: string; ciphertextBlob: Uint8Array; encryptionContext?: Record<string, string> }) {
    this.requests.push({ op: 'Decrypt', keyId: input.keyId });
    const blob = Buffer.from(input.ciphertextBlob);
    if (blob.length < 2) throw new KmsServiceError('InvalidCiphertextException', '');
    const n = blob.readUInt16BE(0);
    const arn = blob.subarray(2, 2 + n).toString();
    const secret = this.keys.get(arn);
    if (secret === undefined) throw new KmsServiceError('InvalidCiphertextException', '');
    if (input.keyId !== undefined && this.resolve(input.keyId) !== arn) {
      throw new KmsServiceError('IncorrectKeyException', 'The key ID in the request does not identify a KMS key that can decrypt the ciphertext');
    }
    const iv = blob.subarray(2 + n, 14 + n);
    const tag = blob.subarray(14 + n, 30 + n);
    const d = createDecipheriv('aes-256-gcm', secret, iv);
    d.setAAD(Buffer.concat([Buffer.from(arn), serializeContext(input.encryptionContext ?? {})]));
    d.setAuthTag(tag);
    let plaintext: Buffer;
    try {
      plaintext = Buffer.concat([d.update(blob.subarray(30 + n)), d.final()]);
    } catch {
      throw new KmsServiceError('InvalidCiphertextException', '');
    }
    if (this.wrongLength !== undefined) plaintext = randomBytes(this.wrongLength);
    return { keyId: this.lieAboutKeyId ? this.createKey() : arn, plaintext };
  }

  #seal(arn: string, plaintext: Uint8Array, ctx: Record<string, string> | undefined): Buffer {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.keys.get(arn)!, iv);
    c.setAAD(Buffer.concat([Buffer.from(arn), serializeContext(ctx ?? {})]));
    const ct = Buffer.concat([c.update(plaintext), c.final()]);
    const head = Buffer.alloc(2);
    head.writeUInt16BE(Buffer.byteLength(arn));
    return Buffer.concat([head, Buffer.from(arn), iv, c.getAuthTag(), ct]);
  }
}
