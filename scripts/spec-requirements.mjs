#!/usr/bin/env node
// Extracts the requirements (RFC 2119 key words) of AWS Encryption SDK specification sections and
// checks the compliance tables in test/spec/compliance/ against them.
//
//   node scripts/spec-requirements.mjs --spec DIR list [file.md ...]   # requirements as JSON lines
//   node scripts/spec-requirements.mjs --spec DIR check                # tables vs. the spec: missing,
//                                                                      # stale (fingerprint changed), extra
//   node scripts/spec-requirements.mjs --spec DIR skeleton file.md     # table rows for a new section
//
// DIR is a checkout (or `git archive`) of awslabs/aws-encryption-sdk-specification at the commit named
// in test/spec/compliance/README.md. The tables under xks-proxy/ follow another specification,
// aws/aws-kms-xksproxy-api-spec: `check` compares them only when `--xks-spec XDIR` (a checkout of it)
// is given as well, reading xks-proxy/F from XDIR/F, and skips them otherwise; `list` and
// `skeleton` read any markdown file, so `--spec XDIR list xks_proxy_api_spec.md` works as it is. The specification text is not part of this repository; the
// tables carry only our own words, an id and a fingerprint per requirement.
//
// Extraction rule (a simplified form of what the ESDKs' `duvet` annotations use): the text of each
// section (a heading and the paragraphs under it, up to the next heading) is split into paragraphs
// and list items; paragraphs into sentences. A sentence or list item that contains MUST, MUST NOT,
// SHALL, SHALL NOT, REQUIRED, SHOULD, SHOULD NOT, RECOMMENDED, MAY or OPTIONAL (upper case, whole
// words) is one requirement. A requirement sentence that ends with ":" takes the list that follows
// it (items without a key word of their own) as part of itself. Sections named "Conventions used in
// this document" and "Changelog", tables, code blocks and HTML comments are skipped.
//
// Each requirement gets an id `<section anchor>/<n>` (n counts requirements within the section,
// from 1) and a fingerprint: the first 10 hex digits of SHA-256 over its text with markdown links
// reduced to their text and whitespace collapsed. A changed fingerprint means the specification
// changed that requirement and its row must be read again.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const KEYWORD = /\b(MUST NOT|MUST|SHALL NOT|SHALL|REQUIRED|SHOULD NOT|SHOULD|RECOMMENDED|MAY|OPTIONAL)\b/g;
const SKIP_SECTIONS = new Set(['conventions used in this document', 'changelog']);

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens, duplicates numbered. */
export function anchorOf(heading, seen) {
  const base = heading
    .trim()
    .toLowerCase()
    .replace(/`/g, '')
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
  const n = seen.get(base) ?? 0;
  seen.set(base, n + 1);
  return n === 0 ? base : `${base}-${n}`;
}

/** Markdown links to their text, whitespace collapsed. */
export function normalize(text) {
  return text
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/\s+/g, ' ')
    .trim();
}

export function fingerprint(text) {
  return createHash('sha256').update(normalize(text)).digest('hex').slice(0, 10);
}

/** The strongest key word of a requirement: MUST-level before SHOULD-level before MAY-level. */
export function levelOf(text) {
  const words = new Set([...text.matchAll(KEYWORD)].map((m) => m[1]));
  for (const w of ['MUST NOT', 'MUST', 'SHALL NOT', 'SHALL', 'REQUIRED', 'SHOULD NOT', 'SHOULD', 'RECOMMENDED', 'MAY', 'OPTIONAL']) {
    if (words.has(w)) {
      if (w === 'SHALL') return 'MUST';
      if (w === 'SHALL NOT') return 'MUST NOT';
      if (w === 'REQUIRED') return 'MUST';
      if (w === 'RECOMMENDED') return 'SHOULD';
      if (w === 'OPTIONAL') return 'MAY';
      return w;
    }
  }
  return undefined;
}

/** Sentences of a paragraph: split after . ! ? followed by white space (not inside `code` or links). */
function sentences(paragraph) {
  const out = [];
  let start = 0;
  let depth = 0; // inside [...](...) or `...`
  let code = false;
  for (let i = 0; i < paragraph.length; i++) {
    const c = paragraph[i];
    if (c === '`') code = !code;
    if (code) continue;
    if (c === '[' || c === '(') depth++;
    if ((c === ']' || c === ')') && depth > 0) depth--;
    if (depth === 0 && (c === '.' || c === '!' || c === '?') && /\s/.test(paragraph[i + 1] ?? ' ') && !/\b(e\.g|i\.e|etc)$/i.test(paragraph.slice(start, i))) {
      out.push(paragraph.slice(start, i + 1));
      start = i + 1;
    }
  }
  if (start < paragraph.length) out.push(paragraph.slice(start));
  return out.map((s) => s.trim()).filter(Boolean);
}

/**
 * Blocks of a section body: paragraphs and list items, in order, with the indentation of list items.
 * Tables, fenced code and HTML comments are dropped.
 */
function blocks(lines) {
  const out = [];
  let cur;
  let fence = false;
  const flush = () => {
    if (cur) out.push(cur);
    cur = undefined;
  };
  for (const raw of lines) {
    if (/^\s*(```|~~~)/.test(raw)) {
      fence = !fence;
      flush();
      continue;
    }
    if (fence) continue;
    if (/^\s*\|/.test(raw) || /^\s*<!--.*-->\s*$/.test(raw) || /^\[\/\/\]: #/.test(raw)) {
      flush();
      continue;
    }
    if (raw.trim() === '') {
      flush();
      continue;
    }
    const item = /^(\s*)([-*+]|\d+[.)])\s+(.*)$/.exec(raw);
    if (item) {
      flush();
      cur = { kind: 'item', indent: item[1].length, text: item[3] };
      continue;
    }
    if (cur) cur.text += ' ' + raw.trim();
    else cur = { kind: 'para', indent: /^\s*/.exec(raw)[0].length, text: raw.trim() };
  }
  flush();
  return out;
}

/** Requirements of one markdown file: [{ id, section, level, fp, text }]. */
export function extract(markdown) {
  const lines = markdown.split(/\r?\n/);
  const seen = new Map();
  const sections = [];
  let current = { anchor: '', title: '', lines: [] };
  let fence = false;
  for (const line of lines) {
    if (/^\s*(```|~~~)/.test(line)) fence = !fence;
    const h = !fence && /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (h) {
      sections.push(current);
      current = { anchor: anchorOf(h[2], seen), title: h[2], lines: [] };
    } else current.lines.push(line);
  }
  sections.push(current);

  const reqs = [];
  for (const s of sections) {
    if (SKIP_SECTIONS.has(s.title.trim().toLowerCase())) continue;
    let n = 0;
    const bs = blocks(s.lines);
    for (let i = 0; i < bs.length; i++) {
      const b = bs[i];
      const parts = b.kind === 'item' ? [b.text] : sentences(b.text);
      for (const sentence of parts) {
        if (!levelOf(sentence)) continue;
        let text = sentence;
        // "... MUST be one of the following:" takes the list below it.
        if (b.kind === 'para' && sentence === parts[parts.length - 1] && /:\s*$/.test(sentence)) {
          let j = i + 1;
          while (j < bs.length && bs[j].kind === 'item' && !levelOf(bs[j].text)) {
            text += ` - ${bs[j].text}`;
            j++;
          }
        }
        n++;
        reqs.push({ id: `${s.anchor}/${n}`, section: s.title, level: levelOf(text), fp: fingerprint(text), text: normalize(text) });
      }
    }
  }
  return reqs;
}

// ---------------------------------------------------------------------------------------------

const here = fileURLToPath(new URL('.', import.meta.url));
const TABLES = join(here, '..', 'test', 'spec', 'compliance');
/** Tables of the XKS Proxy API Specification (another repository than the ESDK's). */
const XKS_DIR = 'xks-proxy/';

function tableFiles(dir = TABLES) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((d) => d.isFile() && d.name.endsWith('.md') && d.name !== 'README.md')
    .map((d) => join(d.parentPath ?? d.path, d.name));
}

/** Rows of one table file: { id, level, fp }. */
function tableRows(file) {
  const rows = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 8 || !/^[\p{L}\p{N}_-]*\/\d+$/u.test(cells[1])) continue;
    rows.push({ id: cells[1], level: cells[2], fp: cells[3] });
  }
  return rows;
}

function main(argv) {
  const i = argv.indexOf('--spec');
  if (i < 0 || !argv[i + 1]) {
    process.stderr.write('usage: spec-requirements.mjs --spec DIR [--xks-spec XDIR] (list [file ...] | check | skeleton file)\n');
    return 2;
  }
  const spec = argv[i + 1];
  const x = argv.indexOf('--xks-spec');
  const xksSpec = x >= 0 ? argv[x + 1] : undefined;
  const rest = argv.filter((_, k) => k !== i && k !== i + 1 && (x < 0 || (k !== x && k !== x + 1)));
  const cmd = rest[0] ?? 'check';
  const read = (f) => extract(readFileSync(join(spec, f), 'utf8'));

  if (cmd === 'list') {
    for (const f of rest.slice(1)) for (const r of read(f)) process.stdout.write(JSON.stringify({ file: f, ...r }) + '\n');
    return 0;
  }
  if (cmd === 'skeleton') {
    for (const r of read(rest[1])) {
      // The specification's sentence is shown after the row for the writer, to be replaced by our own
      // words: the tables do not copy the specification's text.
      process.stdout.write(`| ${r.id} | ${r.level} | ${r.fp} | (in our words) | open | not traced yet |\n`);
      process.stdout.write(`<!-- spec: ${r.text} -->\n`);
    }
    return 0;
  }
  if (cmd === 'check') {
    let problems = 0;
    for (const file of tableFiles()) {
      const section = relative(TABLES, file).split('\\').join('/');
      let want;
      if (section.startsWith(XKS_DIR)) {
        if (!xksSpec) {
          process.stdout.write(`${section}: skipped (the XKS proxy specification: give --xks-spec DIR)\n`);
          continue;
        }
        want = new Map(extract(readFileSync(join(xksSpec, section.slice(XKS_DIR.length)), 'utf8')).map((r) => [r.id, r]));
      } else want = new Map(read(section).map((r) => [r.id, r]));
      const have = new Map(tableRows(file).map((r) => [r.id, r]));
      for (const [id, r] of want) {
        const row = have.get(id);
        if (!row) {
          problems++;
          process.stdout.write(`${section}: missing ${id} (${r.level}): ${r.text}\n`);
        } else if (row.fp !== r.fp || row.level !== r.level) {
          problems++;
          process.stdout.write(`${section}: changed ${id}: table has ${row.level} ${row.fp}, spec ${r.level} ${r.fp}: ${r.text}\n`);
        }
      }
      for (const id of have.keys()) {
        if (!want.has(id)) {
          problems++;
          process.stdout.write(`${section}: ${id} is not a requirement of the specification\n`);
        }
      }
    }
    process.stdout.write(problems === 0 ? 'tables match the specification\n' : `${problems} problem(s)\n`);
    return problems === 0 ? 0 : 1;
  }
  process.stderr.write(`unknown command ${cmd}\n`);
  return 2;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.exitCode = main(process.argv.slice(2));
