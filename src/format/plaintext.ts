import { isWellFormedUtf16 } from './context.js';

/**
 * The bytes of a plaintext given as a string. UTF-8 (the default, and what `encrypt` uses) only
 * for well-formed UTF-16: `Buffer.from(s, 'utf8')` silently writes U+FFFD for every unpaired
 * surrogate (half an emoji, a string cut between the two halves of a pair), so the message would
 * decrypt to something other than what was encrypted. Such a string is refused with a TypeError
 * naming `name`; its content is never quoted (plaintext may be secret). Other encodings (hex,
 * base64, latin1, utf16le, ...) are the caller's explicit choice and decode as Node decodes them.
 * Only string inputs come here: byte inputs pay nothing.
 */
export function stringPlaintextBytes(s: string, name: string, encoding: string = 'utf8'): Buffer {
  const e = encoding.toLowerCase();
  const utf8 = e === 'utf8' || e === 'utf-8';
  if (utf8 && !isWellFormedUtf16(s)) {
    throw new TypeError(
      `${name} is a string that is not well-formed UTF-16 (it has an unpaired surrogate, e.g. half an emoji), ` +
        'so it has no UTF-8 form; pass the bytes (a Uint8Array) to encrypt such data',
    );
  }
  return Buffer.from(s, encoding as BufferEncoding);
}
