/**
 * Duplicate member names in JSON text. RFC 8259 (section 4) says names within an object SHOULD be
 * unique and that software receiving duplicates behaves unpredictably; `JSON.parse` keeps the
 * last one silently, so `"Effect": "Deny", ..., "Effect": "Allow"` would read as an Allow. AWS
 * does not document what it does with such a policy, and the local KMS refuses what it cannot
 * read exactly (policy.ts; principals.ts for the principals file).
 *
 * A scanner, not a parser: it runs on text `JSON.parse` has already accepted, so it only follows
 * strings, objects and arrays. Linear in the text; an explicit stack, so nesting depth cannot
 * overflow the call stack.
 */

/** A duplicated member: its name and where the object holding it is (`Statement[1].Condition`). */
export interface DuplicateMember {
  name: string;
  path: string;
}

type Frame = { kind: 'object'; names: Set<string>; member: string } | { kind: 'array'; index: number };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** The first member name repeated within one object of `text` (valid JSON), or undefined. */
export function findDuplicateMember(text: string): DuplicateMember | undefined {
  const stack: Frame[] = [];
  let expectName = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      let end = i + 1;
      let escaped = false;
      while (text.charCodeAt(end) !== QUOTE) {
        if (text.charCodeAt(end) === BACKSLASH) {
          escaped = true;
          end++;
        }
        end++;
      }
      const top = stack[stack.length - 1];
      if (expectName && top?.kind === 'object') {
        // Names are compared decoded: "Effect" and "Eff\u0065ct" are the same member.
        const name = escaped ? (JSON.parse(text.slice(i, end + 1)) as string) : text.slice(i + 1, end);
        if (top.names.has(name)) return { name, path: pathOf(stack) };
        top.names.add(name);
        top.member = name;
        expectName = false;
      }
      i = end;
    } else if (c === 0x7b /* { */) {
      stack.push({ kind: 'object', names: new Set(), member: '' });
      expectName = true;
    } else if (c === 0x5b /* [ */) {
      stack.push({ kind: 'array', index: 0 });
      expectName = false;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      expectName = false;
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.kind === 'object') expectName = true;
      else if (top) top.index++;
    }
  }
  return undefined;
}

/** Path of the innermost object of `stack` from the document's top, e.g. `Statement[1].Condition`. */
function pathOf(stack: readonly Frame[]): string {
  let path = '';
  for (let i = 0; i < stack.length - 1; i++) {
    const f = stack[i]!;
    path += f.kind === 'array' ? `[${f.index}]` : `${path === '' ? '' : '.'}${f.member}`;
  }
  return path === '' ? 'the top-level object' : path;
}
