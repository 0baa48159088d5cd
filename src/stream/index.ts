/**
 * Streaming encryption and decryption (Node Transforms) and the file helpers built on them.
 * Internal module: the Envelope wraps these; the public API is envelope.encryptStream(),
 * decryptStream(), encryptFile() and decryptFile().
 *
 * Web streams: both Transforms are ordinary Node Duplexes, so `Duplex.toWeb(stream)` gives a
 * `{ readable, writable }` pair usable with `ReadableStream.pipeThrough` (see
 * test/stream/web-streams.test.ts).
 */
export { createEncryptStream, EncryptTransform, type EncryptStream, type EncryptStreamDeps } from './encrypt-stream.js';
export { createDecryptStream, DecryptTransform, type DecryptStream, type DecryptStreamDeps } from './decrypt-stream.js';
export { encryptFile, decryptFile } from './files.js';
