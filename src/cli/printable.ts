/**
 * Text from outside the CLI (a message header, a KMS error, a stored item) made safe to write to a
 * terminal: C0 and C1 control characters and DEL (a newline starts a line of its own; ESC, or
 * U+009B which many terminals take as CSI, starts an escape sequence), the line and paragraph
 * separators, and the bidirectional formatting characters (which reorder what a terminal shows)
 * are written as \uXXXX.
 */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const escape = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** `text` with every unprintable character escaped (see above); the rest unchanged. */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, escape);
}

/**
 * A value as one unambiguous line (branch-key describe's `name: value`): as `printable`, and a
 * backslash doubled, so an escaped character and a literal `\u....` in the value differ.
 */
export function printableValue(value: string): string {
  return printable(value.replace(/\\/g, '\\\\'));
}
