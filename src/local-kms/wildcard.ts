/**
 * IAM wildcard patterns matched without backtracking: `*` matches any run of characters (also
 * none), `?` exactly one (IAM User Guide, "IAM JSON policy elements: Condition operators", string
 * and ARN operators; the same wildcards in `Action` and `Resource`). A character is a UTF-16 code
 * unit, as it was for the regular expressions this replaces.
 *
 * Why not a RegExp: `^.*a.*a.*a.*b$` against a long run of `a` backtracks through every way of
 * placing the `a`s, which is polynomial of the degree of the number of `*`s. A key policy is
 * evaluated on the server's only thread, so one such request stalls every client.
 *
 * How: a pattern `H*M1*M2*...*T` matches when `H` matches the start of the value, `T` its end, and
 * the middle pieces `M1`, `M2`, ... occur in that order in between without overlapping. Taking the
 * leftmost occurrence of each middle piece is never worse than any other choice (it leaves the
 * most room for the rest), so there is no backtracking at all: each piece is searched once, from
 * where the previous one ended. A piece's search is linear: Knuth-Morris-Pratt for literal pieces,
 * bit-parallel Shift-And (one machine word per 32 pattern characters) for pieces holding `?`; both
 * jump with `indexOf` (memchr speed) to the next occurrence of the piece's first character whenever
 * no partial occurrence is pending. The work of one match is therefore
 * O(|pattern| + |value| * ceil(longest piece / 32)), and the searches of successive pieces cover
 * disjoint stretches of the value.
 *
 * That bound is per (pattern, value) pair, and a policy holds thousands of patterns: with a
 * WorkMeter (work-meter.ts), `matches` counts the steps its searches take (a character examined
 * costs one step per machine word, an `indexOf` jump one step per 32 characters passed over plus
 * its call), charges them to the meter, and stops a search where the meter's budget ends: the
 * meter then throws WorkBudgetExceeded, so an evaluation never does much more than its budget.
 */
import type { WorkMeter } from './work-meter.js';

/** Pattern token for `*` (a run of any characters). Other tokens >= 0 are UTF-16 code units. */
export const STAR = -1;
/** Pattern token for `?` (any one character). */
export const ANY = -2;

export interface WildcardOptions {
  /** Compare letters without regard to case (IAM action names); both sides are lower-cased. */
  ignoreCase?: boolean;
}

/**
 * Steps charged per metered `matches` call, whatever the value: the call and its searches' setup
 * (a few hundred nanoseconds, about what 64 characters of scanning take).
 */
const CALL_STEPS = 64;
/** Steps of one `indexOf` jump: its call, plus one per this many characters it passes over. */
const JUMP_STEPS = 4;
const CHARS_PER_JUMP_STEP = 32;
/** A search's result when it ran out of the steps it was allowed. */
const OUT_OF_STEPS = -2;

/**
 * Steps the last search took. Matching is synchronous and never re-entered, so one variable serves
 * every search (as the Shift-And tables below do); the piece charges it to its meter.
 */
let searchSteps = 0;

/** Steps of `indexOf(c, from)` returning `next`: the call and the characters it passed over. */
function jumpSteps(value: string, from: number, next: number): number {
  return JUMP_STEPS + Math.floor(((next < 0 ? value.length : next) - from) / CHARS_PER_JUMP_STEP);
}

/**
 * One piece between two `*`s, as `lead` x `?`, then a core that starts and ends with a literal
 * character (it may hold `?` inside), then `trail` x `?`. Leading and trailing `?`s only shift or
 * bound where the core may be, so they cost nothing in the search.
 */
class Piece {
  readonly length: number;
  private readonly core: Int32Array;
  /** The core holds `?`: searched by Shift-And, `words` machine words per character. */
  private readonly withAny: boolean;
  private readonly words: number;
  private kmp: Int32Array | undefined;

  constructor(
    readonly tokens: Int32Array,
    private readonly lead: number,
    private readonly trail: number,
  ) {
    this.length = tokens.length;
    this.core = tokens.subarray(lead, tokens.length - trail);
    this.withAny = this.core.includes(ANY);
    this.words = this.withAny ? (this.core.length + 31) >>> 5 : 1;
  }

  /** True when the piece matches `value` at `at` (the caller checked that it fits). */
  matchesAt(value: string, at: number, meter?: WorkMeter): boolean {
    const t = this.tokens;
    meter?.charge(t.length);
    for (let i = 0; i < t.length; i++) {
      if (t[i] !== ANY && t[i] !== value.charCodeAt(at + i)) return false;
    }
    return true;
  }

  /**
   * Leftmost start s >= from with the whole piece inside [from, to), or -1. With a meter, the
   * search's steps are charged, and a search the budget cannot finish throws.
   */
  find(value: string, from: number, to: number, meter?: WorkMeter): number {
    const coreFrom = from + this.lead;
    const coreTo = to - this.trail;
    if (coreTo - coreFrom < this.core.length) return -1;
    if (this.core.length === 0) return from; // only `?`s: any place that fits
    const allowed = meter ? meter.remaining : Infinity;
    let at: number;
    if (this.withAny) {
      at = this.words === 1 ? shiftAnd(this.core, value, coreFrom, coreTo, allowed) : shiftAndWide(this.core, this.words, value, coreFrom, coreTo, allowed);
    } else {
      this.kmp ??= failureTable(this.core);
      at = kmpSearch(this.core, this.kmp, value, coreFrom, coreTo, allowed);
    }
    if (meter) {
      meter.charge(searchSteps); // throws when the search ran past what was left
      if (at === OUT_OF_STEPS) meter.exhausted();
    }
    return at < 0 ? -1 : at - this.lead;
  }
}

/** Knuth-Morris-Pratt failure function of a literal core. */
function failureTable(p: Int32Array): Int32Array {
  const f = new Int32Array(p.length);
  let k = 0;
  for (let i = 1; i < p.length; i++) {
    while (k > 0 && p[i] !== p[k]) k = f[k - 1]!;
    if (p[i] === p[k]) k++;
    f[i] = k;
  }
  return f;
}

/**
 * Leftmost start of the literal `p` in value[from, to) (the whole occurrence inside), or -1, or
 * OUT_OF_STEPS after `allowed` steps. With nothing of `p` pending it jumps to the next `p[0]`.
 */
function kmpSearch(p: Int32Array, f: Int32Array, value: string, from: number, to: number, allowed: number): number {
  const first = String.fromCharCode(p[0]!);
  const m = p.length;
  let steps = 0;
  let k = 0;
  let found = -1;
  for (let i = from; i < to; i++) {
    if (k === 0) {
      const next = value.indexOf(first, i);
      steps += jumpSteps(value, i, next);
      if (next < 0 || next + m > to) break;
      i = next;
    }
    const c = value.charCodeAt(i);
    while (k > 0 && p[k] !== c) {
      k = f[k - 1]!;
      steps++;
    }
    if (p[k] === c) k++;
    steps++;
    if (k === m) {
      found = i - m + 1;
      break;
    }
    if (steps > allowed) {
      found = OUT_OF_STEPS;
      break;
    }
  }
  searchSteps = steps;
  return found;
}

// Scratch tables of the Shift-And search, indexed by UTF-16 code unit. Matching is synchronous
// and never re-entered, so one set serves every search; each search clears what it set. Int32,
// not Uint32: a mask with bit 31 set would otherwise be read back as a heap number.
const wordMask = new Int32Array(0x10000);
const rowOf = new Int32Array(0x10000);

/**
 * Leftmost start of `core` (literals and ANY, at most 32, starting with a literal) in
 * value[from, to), or -1, or OUT_OF_STEPS after `allowed` steps, by Shift-And: bit j of the state
 * says "core[0..j] matches the text ending here". The masks exist only for the characters of the
 * core (others match only `?`). With no partial match pending it jumps to the next `core[0]`.
 */
function shiftAnd(core: Int32Array, value: string, from: number, to: number, allowed: number): number {
  const k = core.length;
  let any = 0;
  for (let j = 0; j < k; j++) if (core[j] === ANY) any |= 1 << j;
  for (let j = 0; j < k; j++) if (core[j] !== ANY) wordMask[core[j]!] = any;
  for (let j = 0; j < k; j++) {
    const c = core[j]!;
    if (c !== ANY) wordMask[c] = wordMask[c]! | (1 << j);
  }
  const first = String.fromCharCode(core[0]!);
  const hit = 1 << (k - 1);
  let state = 0;
  let steps = 0;
  let found = -1;
  for (let i = from; i < to; i++) {
    if (state === 0) {
      const next = value.indexOf(first, i);
      steps += jumpSteps(value, i, next);
      if (next < 0 || next + k > to) break;
      i = next;
    }
    // A character absent from the core has mask 0 in the table and matches only the `?`s.
    state = ((state << 1) | 1) & (wordMask[value.charCodeAt(i)]! | any);
    steps++;
    if ((state & hit) !== 0) {
      found = i - k + 1;
      break;
    }
    if (steps > allowed) {
      found = OUT_OF_STEPS;
      break;
    }
  }
  for (let j = 0; j < k; j++) if (core[j] !== ANY) wordMask[core[j]!] = 0;
  searchSteps = steps;
  return found;
}

/** shiftAnd for a core longer than 32: `words` machine words of state per text character. */
function shiftAndWide(core: Int32Array, words: number, value: string, from: number, to: number, allowed: number): number {
  const k = core.length;
  // Row 0: the mask of a character absent from the core (only the `?` positions); row r > 0: one
  // per distinct character of the core.
  const distinct: number[] = [];
  for (let j = 0; j < k; j++) {
    const c = core[j]!;
    if (c !== ANY && rowOf[c] === 0) {
      distinct.push(c);
      rowOf[c] = distinct.length;
    }
  }
  const masks = new Int32Array((distinct.length + 1) * words);
  for (let j = 0; j < k; j++) {
    const bit = 1 << (j & 31);
    const c = core[j]!;
    if (c === ANY) {
      for (let r = 0; r <= distinct.length; r++) masks[r * words + (j >>> 5)] = masks[r * words + (j >>> 5)]! | bit;
    } else {
      const at = rowOf[c]! * words + (j >>> 5);
      masks[at] = masks[at]! | bit;
    }
  }
  const first = String.fromCharCode(core[0]!);
  const state = new Int32Array(words);
  const hitWord = (k - 1) >>> 5;
  const hitBit = 1 << ((k - 1) & 31);
  let pending = false;
  let steps = 0;
  let found = -1;
  for (let i = from; i < to; i++) {
    if (!pending) {
      const next = value.indexOf(first, i);
      steps += jumpSteps(value, i, next);
      if (next < 0 || next + k > to) break;
      i = next;
    }
    const base = rowOf[value.charCodeAt(i)]! * words;
    let carry = 1;
    let bits = 0;
    for (let w = 0; w < words; w++) {
      const s = state[w]!;
      const next = ((s << 1) | carry) & masks[base + w]!;
      state[w] = next;
      bits |= next;
      carry = s >>> 31;
    }
    pending = bits !== 0;
    steps += words;
    if ((state[hitWord]! & hitBit) !== 0) {
      found = i - k + 1;
      break;
    }
    if (steps > allowed) {
      found = OUT_OF_STEPS;
      break;
    }
  }
  for (const c of distinct) rowOf[c] = 0;
  searchSteps = steps;
  return found;
}

function pieceOf(tokens: Int32Array): Piece {
  let lead = 0;
  while (lead < tokens.length && tokens[lead] === ANY) lead++;
  let trail = 0;
  while (trail < tokens.length - lead && tokens[tokens.length - 1 - trail] === ANY) trail++;
  return new Piece(tokens, lead, trail);
}

/** A compiled wildcard pattern; immutable, safe to keep with a parsed policy. */
export class WildcardPattern {
  /** With no `*` at all: the one piece, which must be the whole value. */
  private readonly whole: Piece | undefined;
  /** Otherwise: the piece before the first `*`, the non-empty pieces between, the piece after the last. */
  private readonly head: Piece | undefined;
  private readonly middle: Piece[] = [];
  private readonly tail: Piece | undefined;
  /** Characters the value needs at least (every non-`*` token). */
  private readonly minLength: number;

  constructor(
    tokens: ArrayLike<number>,
    private readonly ignoreCase = false,
  ) {
    const all = Int32Array.from(tokens, (t) => (ignoreCase && t >= 0 ? foldCase(t) : t));
    const pieces: Piece[] = [];
    let start = 0;
    for (let i = 0; i <= all.length; i++) {
      if (i === all.length || all[i] === STAR) {
        pieces.push(pieceOf(all.subarray(start, i)));
        start = i + 1;
      }
    }
    this.minLength = pieces.reduce((n, p) => n + p.length, 0);
    if (pieces.length === 1) {
      this.whole = pieces[0];
    } else {
      this.head = pieces[0]!;
      this.tail = pieces[pieces.length - 1]!;
      this.middle = pieces.slice(1, -1).filter((p) => p.length > 0); // `**` is `*`
    }
  }

  /** With a meter: charges its steps, and throws WorkBudgetExceeded when the budget runs out. */
  matches(input: string, meter?: WorkMeter): boolean {
    meter?.charge(CALL_STEPS + (this.ignoreCase ? input.length : 0));
    const value = this.ignoreCase ? input.toLowerCase() : input;
    const n = value.length;
    if (n < this.minLength) return false;
    if (this.whole) return n === this.minLength && this.whole.matchesAt(value, 0, meter);
    const head = this.head!;
    const tail = this.tail!;
    if (!head.matchesAt(value, 0, meter) || !tail.matchesAt(value, n - tail.length, meter)) return false;
    let cursor = head.length;
    const end = n - tail.length;
    for (const piece of this.middle) {
      const at = piece.find(value, cursor, end, meter);
      if (at < 0) return false;
      cursor = at + piece.length;
    }
    return true;
  }
}

/** Lower-cases one code unit the way `String#toLowerCase` does when that keeps it one code unit. */
function foldCase(c: number): number {
  const lowered = String.fromCharCode(c).toLowerCase();
  return lowered.length === 1 ? lowered.charCodeAt(0) : c;
}

/** Tokens of policy text: with `wildcards`, `*` and `?` are wildcards; otherwise every character is literal. */
export function tokensOf(text: string, wildcards: boolean, out: number[] = []): number[] {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    out.push(wildcards && c === 0x2a ? STAR : wildcards && c === 0x3f ? ANY : c);
  }
  return out;
}

/** Compiles pattern text in which every `*` and `?` is a wildcard. */
export function compileWildcard(pattern: string, options: WildcardOptions = {}): WildcardPattern {
  return new WildcardPattern(tokensOf(pattern, true), options.ignoreCase ?? false);
}

const COLON = 0x3a;

/**
 * ARN pattern of `ArnLike`/`ArnEquals`: the value and the pattern are cut at their first five
 * colons into six parts (the resource part keeps any further colons), and each part of the pattern
 * must match the same part of the value, case-sensitively, wildcards staying inside their part
 * (IAM User Guide, "IAM JSON policy elements: Condition operators", ARN condition operators).
 */
export class ArnPattern {
  private readonly parts: WildcardPattern[] | undefined;

  constructor(tokens: ArrayLike<number>) {
    const parts: number[][] = [[]];
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i]!;
      if (t === COLON && parts.length < 6) parts.push([]);
      else parts[parts.length - 1]!.push(t);
    }
    this.parts = parts.length === 6 ? parts.map((p) => new WildcardPattern(p)) : undefined;
  }

  /** With a meter: charges its steps (the colon searches and slices, and each part's match). */
  matches(value: string, meter?: WorkMeter): boolean {
    if (!this.parts) return false;
    let start = 0;
    for (let i = 0; i < 5; i++) {
      const colon = value.indexOf(':', start);
      meter?.charge(jumpSteps(value, start, colon) + (colon < 0 ? 0 : colon - start));
      if (colon < 0) return false;
      if (!this.parts[i]!.matches(value.slice(start, colon), meter)) return false;
      start = colon + 1;
    }
    meter?.charge(value.length - start);
    return this.parts[5]!.matches(value.slice(start), meter);
  }
}
