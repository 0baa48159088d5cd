import { KmsServiceError } from './errors.js';

/**
 * Request validation with AWS's wording. AWS services built on the Coral framework report
 * constraint violations as one ValidationException listing every violation:
 * "2 validation errors detected: Value 'x' at 'keyId' failed to satisfy constraint: Member must
 * have length less than or equal to 2048; Value ...". Member names are camelCased. Secret
 * members (plaintext, key material) are never echoed.
 */
export class Checks {
  private readonly errors: string[] = [];

  private add(value: unknown, member: string, constraint: string): void {
    const shown = value === undefined || value === null ? 'null' : `'${describe(value, member)}'`;
    this.errors.push(`Value ${shown} at '${member}' failed to satisfy constraint: ${constraint}`);
  }

  required(member: string, value: unknown): boolean {
    if (value === undefined || value === null) {
      this.errors.push(`Value null at '${member}' failed to satisfy constraint: Member must not be null`);
      return false;
    }
    return true;
  }

  /** Length in characters (strings), bytes (buffers) or members (arrays, maps). */
  length(member: string, value: unknown, min: number, max: number): void {
    if (value === undefined || value === null) return;
    const len =
      typeof value === 'string'
        ? value.length
        : value instanceof Uint8Array
          ? value.length
          : Array.isArray(value)
            ? value.length
            : Object.keys(value as object).length;
    if (len < min) this.add(value, member, `Member must have length greater than or equal to ${min}`);
    else if (len > max) this.add(value, member, `Member must have length less than or equal to ${max}`);
  }

  range(member: string, value: number | undefined, min: number, max: number): void {
    if (value === undefined || value === null) return;
    if (value < min) this.add(value, member, `Member must have value greater than or equal to ${min}`);
    else if (value > max) this.add(value, member, `Member must have value less than or equal to ${max}`);
  }

  oneOf(member: string, value: string | undefined, allowed: readonly string[]): void {
    if (value === undefined || value === null) return;
    if (!allowed.includes(value)) {
      this.add(value, member, `Member must satisfy enum value set: [${allowed.join(', ')}]`);
    }
  }

  pattern(member: string, value: string | undefined, re: RegExp, shown: string): void {
    if (value === undefined || value === null) return;
    if (!re.test(value)) this.add(value, member, `Member must satisfy regular expression pattern: ${shown}`);
  }

  /** Free-form violation with a custom constraint text. */
  violation(member: string, value: unknown, constraint: string): void {
    this.add(value, member, constraint);
  }

  done(): void {
    if (this.errors.length === 0) return;
    const n = this.errors.length;
    throw new KmsServiceError(
      'ValidationException',
      `${n} validation error${n === 1 ? '' : 's'} detected: ${this.errors.join('; ')}`,
    );
  }
}

// keyStorePassword (CloudHSM kmsuser password) and rawSecretAccessKey (XKS proxy credential) are
// sensitive members too (API Reference, CreateCustomKeyStore): never quoted back.
const SECRET_MEMBERS = /plaintext|keymaterial|message|^mac$|signature|ciphertext|token|password|secret/i;

function describe(value: unknown, member: string): string {
  if (value instanceof Uint8Array || SECRET_MEMBERS.test(member)) return '[SENSITIVE]';
  if (typeof value === 'string') return value.length > 256 ? `${value.slice(0, 256)}...` : value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value)?.slice(0, 256) ?? String(value);
}

export const validationError = (message: string): KmsServiceError =>
  new KmsServiceError('ValidationException', message);
