/**
 * LDIF (RFC 2849) reader and writer: the text form of entries and changes,
 * which the directory shows (the change log's `changes` attribute) and the
 * operator imports and exports (`dcmx ldif`). It knows nothing of the store.
 *
 * The reader streams: it takes text chunks as they come (a file stream with
 * 'utf8' encoding, an array of strings, …), cuts them into lines, unfolds
 * continuation lines, drops comments, and yields one record per blank-line
 * separated block, never holding more than the record being read
 * (`parseLdifText` reads a string synchronously). Errors are
 * {@link LdifError}s carrying the 1-based number of the offending line.
 *
 * The writer produces what the reader (and OpenLDAP, and RFC 2849) reads:
 * values that are not SAFE-STRINGs are base64-encoded, lines are folded at 76
 * columns, LF line ends.
 *
 * Leniencies of the reader, beyond RFC 2849: a UTF-8 byte-order mark at the
 * very start is skipped; a continuation line may start with a TAB as well as
 * a SPACE (as OpenLDAP accepts); plain (single-colon) values may hold any
 * UTF-8, not just SAFE-STRING ASCII (note 7 lets readers accept other
 * encodings; UTF-8 text is the common case); a line holding only spaces where
 * there is nothing to continue counts as blank; `-` lines may carry trailing
 * spaces; base64 may carry trailing spaces. Content and change records may
 * be mixed in one file (the RFC's grammar has a file be one or the other).
 */
import { isUtf8 } from 'node:buffer';
import { readFile } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { fileURLToPath } from 'node:url';

/** An attribute value: a string, or a Buffer when the value was base64 (or a file) and is not valid UTF-8. */
export type LdifValue = string | Buffer;

/** An attribute description split up: `name` without options, `options` as written (`cn;lang-en` → cn, [lang-en]). */
export interface LdifAttr {
  name: string;
  options: string[];
  values: LdifValue[];
}

/** An LDAP control attached to a change record (RFC 2849 `control:` line). `critical` defaults to false. */
export interface LdifControl {
  oid: string;
  critical: boolean;
  value?: LdifValue;
}

/** One modification of a modify change record; `increment` is RFC 4525's. */
export interface LdifModification {
  op: 'add' | 'delete' | 'replace' | 'increment';
  /** Attribute description as written, options included. */
  attr: string;
  values: LdifValue[];
}

/**
 * One LDIF record. `line` is the 1-based line of its `dn:` line.
 *
 * In `entry` and `add` records, `attrs` keys are attribute descriptions as
 * first written (options included, e.g. `cn;lang-en`); repeated lines of the
 * same description — compared case-insensitively, as RFC 4512 §2.5 has it —
 * are merged into the first key's list, in order; keys keep first-seen order.
 */
export type LdifRecord =
  | { kind: 'entry'; dn: string; attrs: Map<string, LdifValue[]>; line: number }
  | { kind: 'add'; dn: string; attrs: Map<string, LdifValue[]>; controls: LdifControl[]; line: number }
  | { kind: 'delete'; dn: string; controls: LdifControl[]; line: number }
  | { kind: 'modify'; dn: string; changes: LdifModification[]; controls: LdifControl[]; line: number }
  | {
      kind: 'modrdn';
      dn: string;
      newRdn: string;
      deleteOldRdn: boolean;
      newSuperior?: string;
      controls: LdifControl[];
      line: number;
    };

/** A malformed LDIF input. `line` is the 1-based number of the offending line. */
export class LdifError extends Error {
  readonly line: number;

  constructor(message: string, line: number) {
    super(`line ${line}: ${message}`);
    this.name = 'LdifError';
    this.line = line;
  }
}

/** Options for {@link parseLdif}. */
export interface ParseLdifOptions {
  /**
   * Whether `:<` file:// URLs are read (default true). RFC 2849 §Security:
   * a "trojan" LDIF can name a sensitive file and have it stored where LDAP
   * clients can read it, so turn this off for LDIF from untrusted sources;
   * such lines then fail with LdifError.
   */
  fileUrls?: boolean;
}

// ---------------------------------------------------------------------------
// Reading: physical lines → logical lines → blocks.

/** A logical (unfolded) line: its text, first physical line, last physical line. */
interface Line {
  text: string;
  line: number;
  last: number;
}

/** A record's lines, or the error that stopped the input. */
type Block = Line[] | LdifError;

/**
 * Turns text chunks into blocks of logical lines, synchronously. Completed
 * blocks queue up in `out`; an error is queued after the blocks preceding it
 * and stops all further processing.
 */
class BlockAssembler {
  out: Block[] = [];
  private carry = '';
  private lineNo = 0;
  private dead = false;
  /** The logical line being built (continuations may follow), or null. */
  private curParts: string[] | null = null;
  private curLine = 0;
  private curLast = 0;
  /** True while inside a comment (whose continuations are dropped too). */
  private inComment = false;
  private block: Line[] = [];

  feed(chunk: string): void {
    if (this.dead || chunk.length === 0) return;
    try {
      let start = 0;
      let nl = chunk.indexOf('\n');
      if (nl < 0) {
        this.carry += chunk;
        return;
      }
      // First line completes the carry.
      this.physical(this.carry + chunk.slice(0, nl));
      this.carry = '';
      start = nl + 1;
      while ((nl = chunk.indexOf('\n', start)) >= 0) {
        this.physical(chunk.slice(start, nl));
        start = nl + 1;
      }
      this.carry = chunk.slice(start);
    } catch (err) {
      this.fail(err);
    }
  }

  end(): void {
    if (this.dead) return;
    try {
      if (this.carry.length > 0) this.physical(this.carry);
      this.carry = '';
      this.flushLine();
      this.flushBlock();
    } catch (err) {
      this.fail(err);
    }
  }

  private fail(err: unknown): void {
    this.dead = true;
    this.out.push(err instanceof LdifError ? err : new LdifError(String(err), this.lineNo));
  }

  /** One physical line, without its line end. SEP = CRLF / LF (RFC 2849). */
  private physical(text: string): void {
    const n = ++this.lineNo;
    if (text.length > 0 && text.charCodeAt(text.length - 1) === 13) text = text.slice(0, -1);
    if (n === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);

    if (text.length === 0) {
      // Blank line: record separator (several in a row are fine).
      this.flushLine();
      this.flushBlock();
      return;
    }
    const c0 = text.charCodeAt(0);
    if (c0 === 32 || c0 === 9) {
      // RFC 2849 note 2: a line beginning with a single space continues the previous line.
      if (this.inComment) return;
      if (this.curParts) {
        this.curParts.push(text.slice(1));
        this.curLast = n;
        return;
      }
      if (text.trim() === '') {
        this.flushBlock();
        return;
      }
      throw new LdifError('continuation line with no line to continue', n);
    }
    this.flushLine();
    if (c0 === 35) {
      // '#': comment, continued lines included (note 2 applies to comments too).
      this.inComment = true;
      return;
    }
    this.curParts = [text];
    this.curLine = n;
    this.curLast = n;
  }

  private flushLine(): void {
    this.inComment = false;
    if (this.curParts) {
      const text = this.curParts.length === 1 ? this.curParts[0] : this.curParts.join('');
      this.block.push({ text, line: this.curLine, last: this.curLast });
      this.curParts = null;
    }
  }

  private flushBlock(): void {
    if (this.block.length > 0) {
      this.out.push(this.block);
      this.block = [];
    }
  }
}

/**
 * Parses LDIF from a stream of text chunks (e.g. `fs.createReadStream(file,
 * 'utf8')` or an array of strings) without holding the file in memory;
 * yields records in order.
 *
 * Handles: a `version: 1` line first (any other version is an error);
 * comments (`#`), folded ones included; line folding (RFC 2849 note 2); CRLF
 * and LF line ends, also split across chunks; `::` base64 values (strictly
 * checked); `:<` URLs — only file:// (read when the record is parsed;
 * anything else, or an unreadable file, is an LdifError; see
 * {@link ParseLdifOptions.fileUrls}); `dn::` base64 DNs (must be UTF-8);
 * changetype add / delete / modify (add:, delete:, replace:, increment:
 * specs each closed by `-`) / modrdn / moddn (both yield kind 'modrdn');
 * `control:` lines before changetype; blank-line record separators;
 * attribute descriptions with options (`cn;lang-en`). Keywords (`dn`,
 * `changetype`, `add`, …) are case-insensitive, as ABNF literals are.
 *
 * Values: a plain or base64 value that is valid UTF-8 is a string, else a
 * Buffer; the same for file contents.
 *
 * Errors carry the 1-based line number of the offending line; an error about
 * something missing at the end of a record (e.g. the `-` closing a modify
 * spec) carries the number of the line after the record's last line. After
 * an error nothing more is yielded. Chunks may also be Buffers (decoded as
 * UTF-8).
 */
export async function* parseLdif(
  source: AsyncIterable<string> | Iterable<string>,
  options: ParseLdifOptions = {},
): AsyncGenerator<LdifRecord> {
  const asm = new BlockAssembler();
  const decoder = new StringDecoder('utf8');
  const ctx: Ctx = { first: true, fileUrls: options.fileUrls !== false, reads: [] };
  for await (const chunk of source as AsyncIterable<string | Buffer> | Iterable<string | Buffer>) {
    asm.feed(typeof chunk === 'string' ? chunk : decoder.write(chunk));
    if (asm.out.length > 0) yield* drain(asm, ctx);
  }
  asm.feed(decoder.end());
  asm.end();
  yield* drain(asm, ctx);
}

/**
 * Parses LDIF held in one string, synchronously, with the rules of
 * {@link parseLdif}; `:<` file URLs are refused (LdifError), since reading
 * them would not be synchronous. For LDIF the program wrote itself.
 */
export function parseLdifText(text: string): LdifRecord[] {
  const asm = new BlockAssembler();
  asm.feed(text);
  asm.end();
  const ctx: Ctx = { first: true, fileUrls: false, reads: [] };
  const out: LdifRecord[] = [];
  for (const block of asm.out) {
    if (block instanceof LdifError) throw block;
    const rec = interpret(block, ctx);
    if (rec) out.push(rec);
  }
  return out;
}

interface Ctx {
  /** True until the first block has been read (the only place `version:` may appear). */
  first: boolean;
  fileUrls: boolean;
  /** The file URLs of the record being interpreted, read (in order) once its syntax has been checked. */
  reads: PendingRead[];
}

/** A `:<` value to read: the file, its line, and where the bytes go. */
interface PendingRead {
  path: string;
  url: string;
  line: number;
  put(v: LdifValue): void;
}

async function* drain(asm: BlockAssembler, ctx: Ctx): AsyncGenerator<LdifRecord> {
  const blocks = asm.out;
  asm.out = [];
  for (const block of blocks) {
    if (block instanceof LdifError) throw block;
    const rec = interpret(block, ctx);
    const reads = ctx.reads.splice(0);
    for (const r of reads) r.put(bufferToValue(await readUrl(r)));
    if (rec) yield rec;
  }
}

const PLAIN = 0;
const BASE64 = 1;
const URL_REF = 2;

/** `name:[:|<] value` split up. */
interface Spec {
  /** Attribute description or keyword, as written. */
  name: string;
  /** Lower-cased name, for keyword comparisons. */
  key: string;
  type: typeof PLAIN | typeof BASE64 | typeof URL_REF;
  /** The value text after the separator and FILL. */
  rest: string;
  line: number;
}

function splitLine(l: Line): Spec {
  const t = l.text;
  const i = t.indexOf(':');
  if (i < 0) {
    throw new LdifError(t === '-' || t.trimEnd() === '-' ? 'unexpected "-"' : 'expected "name: value" (no colon)', l.line);
  }
  if (i === 0) throw new LdifError('missing attribute description before ":"', l.line);
  const name = t.slice(0, i);
  let j = i + 1;
  let type: Spec['type'] = PLAIN;
  const c = t.charCodeAt(j);
  if (c === 58) {
    type = BASE64;
    j++;
  } else if (c === 60) {
    type = URL_REF;
    j++;
  }
  while (t.charCodeAt(j) === 32) j++; // FILL
  return { name, key: name.toLowerCase(), type, rest: t.slice(j), line: l.line };
}

// RFC 4512 §2.5 AttributeDescription: (descr / numericoid) *( ";" option ).
const ATTR_DESC = /^(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*)(?:;[A-Za-z0-9-]+)*$/;
const NUMERIC_OID = /^[0-9]+(?:\.[0-9]+)*$/;
// RFC 2045 base64, padded, no whitespace (RFC 2849 note 10 b).
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function checkAttrDesc(s: Spec): void {
  if (!ATTR_DESC.test(s.name)) {
    throw new LdifError(`invalid attribute description "${s.name}"`, s.line);
  }
}

function decodeBase64(text: string, line: number): Buffer {
  const t = text.trimEnd();
  if (!BASE64_RE.test(t)) throw new LdifError('invalid base64 value', line);
  return Buffer.from(t, 'base64');
}

const bufferToValue = (b: Buffer): LdifValue => (isUtf8(b) ? b.toString('utf8') : b);

/** Checks a `:<` URL and queues its reading; `put` receives the file's contents. */
function queueRead(url: string, line: number, ctx: Ctx, put: (v: LdifValue) => void): void {
  // RFC 2849 note 6: implementations SHOULD support file:// URLs, MAY support others; we do not.
  if (!/^file:\/\//i.test(url)) throw new LdifError(`unsupported URL "${url}" (only file:// is read)`, line);
  if (!ctx.fileUrls) throw new LdifError(`file URLs are not allowed here ("${url}")`, line);
  let path: string;
  try {
    path = fileURLToPath(url);
  } catch (err) {
    throw new LdifError(`bad file URL "${url}": ${(err as Error).message}`, line);
  }
  ctx.reads.push({ path, url, line, put });
}

async function readUrl(r: PendingRead): Promise<Buffer> {
  try {
    return await readFile(r.path);
  } catch (err) {
    throw new LdifError(`cannot read ${r.url}: ${(err as Error).message}`, r.line);
  }
}

/** Decodes the value of `s` and hands it to `put`; a `:<` value once its file has been read. */
function decodeValue(s: Spec, ctx: Ctx, put: (v: LdifValue) => void): void {
  if (s.type === PLAIN) put(s.rest);
  else if (s.type === BASE64) put(bufferToValue(decodeBase64(s.rest, s.line)));
  else queueRead(s.rest.trim(), s.line, ctx, put);
}

/** Appends the value of `s` to `list` (see decodeValue). */
function pushValue(s: Spec, ctx: Ctx, list: LdifValue[]): void {
  const i = list.push('') - 1;
  decodeValue(s, ctx, (v) => {
    list[i] = v;
  });
}

/** A DN, RDN or similar that must be a string: plain or base64 of UTF-8 (RFC 2849 note 7). */
function decodeString(s: Spec, what: string): string {
  if (s.type === PLAIN) return s.rest;
  if (s.type === URL_REF) throw new LdifError(`${what} cannot be given by URL`, s.line);
  const b = decodeBase64(s.rest, s.line);
  if (!isUtf8(b)) throw new LdifError(`${what} is not valid UTF-8`, s.line);
  return b.toString('utf8');
}

/** A keyword value (changetype, deleteoldrdn, mod-spec attribute): plain only. */
function plainWord(s: Spec): string {
  if (s.type !== PLAIN) throw new LdifError(`"${s.name}" takes a plain value`, s.line);
  return s.rest.trim();
}

function interpret(lines: Line[], ctx: Ctx): LdifRecord | null {
  let i = 0;
  const n = lines.length;
  const endLine = lines[n - 1].last + 1;

  if (ctx.first) {
    ctx.first = false;
    const s = splitLine(lines[0]);
    if (s.key === 'version') {
      // RFC 2849: version-spec = "version:" FILL version-number; only 1 is defined.
      if (plainWord(s) !== '1') throw new LdifError(`unsupported LDIF version "${s.rest}"`, s.line);
      i++;
      if (i === n) return null;
    }
  }

  const dnSpec = splitLine(lines[i]);
  if (dnSpec.key !== 'dn') {
    throw new LdifError(`expected "dn:", found "${dnSpec.name}:"`, dnSpec.line);
  }
  const dn = decodeString(dnSpec, 'dn');
  const line = dnSpec.line;
  i++;

  const controls: LdifControl[] = [];
  let s: Spec | null = i < n ? splitLine(lines[i]) : null;
  while (s && s.key === 'control') {
    controls.push(parseControl(s, ctx));
    i++;
    s = i < n ? splitLine(lines[i]) : null;
  }

  if (!s || s.key !== 'changetype') {
    if (controls.length > 0) {
      throw new LdifError('"control:" lines must be followed by "changetype:"', s ? s.line : endLine);
    }
    // Content record: ldif-attrval-record = dn-spec SEP 1*attrval-spec.
    if (i === n) throw new LdifError('entry has no attributes', line);
    return { kind: 'entry', dn, attrs: readAttrs(lines, i, ctx), line };
  }

  const changeSpec = s;
  const changetype = plainWord(changeSpec).toLowerCase();
  i++;
  switch (changetype) {
    case 'add': {
      if (i === n) throw new LdifError('add record has no attributes', endLine);
      return { kind: 'add', dn, attrs: readAttrs(lines, i, ctx), controls, line };
    }
    case 'delete': {
      if (i < n) throw new LdifError('delete record takes no further lines', lines[i].line);
      return { kind: 'delete', dn, controls, line };
    }
    case 'modrdn':
    case 'moddn': {
      const next = (what: string): Spec => {
        if (i >= n) throw new LdifError(`${changetype} record needs "${what}:"`, endLine);
        const t = splitLine(lines[i]);
        if (t.key !== what) throw new LdifError(`expected "${what}:", found "${t.name}:"`, t.line);
        i++;
        return t;
      };
      const newRdn = decodeString(next('newrdn'), 'newrdn');
      const delSpec = next('deleteoldrdn');
      const del = plainWord(delSpec);
      if (del !== '0' && del !== '1') throw new LdifError('deleteoldrdn must be 0 or 1', delSpec.line);
      const rec: Extract<LdifRecord, { kind: 'modrdn' }> = { kind: 'modrdn', dn, newRdn, deleteOldRdn: del === '1', controls, line };
      if (i < n) rec.newSuperior = decodeString(next('newsuperior'), 'newsuperior');
      if (i < n) throw new LdifError(`unexpected line in ${changetype} record`, lines[i].line);
      return rec;
    }
    case 'modify': {
      const changes: LdifModification[] = [];
      while (i < n) {
        const spec = splitLine(lines[i]);
        const op = spec.key;
        if (op !== 'add' && op !== 'delete' && op !== 'replace' && op !== 'increment') {
          throw new LdifError(`expected "add:", "delete:", "replace:" or "increment:", found "${spec.name}:"`, spec.line);
        }
        const attr = plainWord(spec);
        if (!ATTR_DESC.test(attr)) throw new LdifError(`invalid attribute description "${attr}"`, spec.line);
        const attrKey = attr.toLowerCase();
        i++;
        const values: LdifValue[] = [];
        for (;;) {
          if (i >= n) throw new LdifError(`missing "-" to end the ${op} of ${attr}`, endLine);
          const l = lines[i];
          if (l.text.trimEnd() === '-') {
            i++;
            break;
          }
          const v = splitLine(l);
          if (v.key !== attrKey) {
            throw new LdifError(`expected "-" to end the ${op} of ${attr}, found "${v.name}:"`, v.line);
          }
          pushValue(v, ctx, values);
          i++;
        }
        // RFC 4525 §3: an increment carries exactly one value.
        if (op === 'increment' && values.length !== 1) {
          throw new LdifError('increment takes exactly one value', spec.line);
        }
        changes.push({ op, attr, values });
      }
      return { kind: 'modify', dn, changes, controls, line };
    }
    default:
      throw new LdifError(`unknown changetype "${changetype}"`, changeSpec.line);
  }
}

function readAttrs(lines: Line[], from: number, ctx: Ctx): Map<string, LdifValue[]> {
  const attrs = new Map<string, LdifValue[]>();
  const keys = new Map<string, LdifValue[]>(); // lower-cased description → list in attrs
  for (let i = from; i < lines.length; i++) {
    const s = splitLine(lines[i]);
    if (s.key === 'dn') throw new LdifError('unexpected "dn:" (missing blank line between records?)', s.line);
    if (s.key === 'changetype') throw new LdifError('"changetype:" must directly follow the dn (and control) lines', s.line);
    checkAttrDesc(s);
    let list = keys.get(s.key);
    if (!list) {
      list = [];
      keys.set(s.key, list);
      attrs.set(s.name, list);
    }
    pushValue(s, ctx, list);
  }
  return attrs;
}

// control: ldap-oid [1*SPACE ("true" / "false")] [value-spec]   (RFC 2849)
const CONTROL_RE = /^([0-9]+(?:\.[0-9]+)*)(?: +(true|false))? *(?:(:[:<]?) *(.*))?$/i;

function parseControl(s: Spec, ctx: Ctx): LdifControl {
  if (s.type !== PLAIN) throw new LdifError('malformed control line', s.line);
  const m = CONTROL_RE.exec(s.rest);
  if (!m) throw new LdifError(`malformed control "${s.rest}"`, s.line);
  const control: LdifControl = { oid: m[1], critical: (m[2] ?? '').toLowerCase() === 'true' };
  if (m[3] !== undefined) {
    const sep = m[3];
    const text = m[4];
    const type = sep === '::' ? BASE64 : sep === ':<' ? URL_REF : PLAIN;
    decodeValue({ ...s, type, rest: text }, ctx, (v) => {
      control.value = v;
    });
  }
  return control;
}

// ---------------------------------------------------------------------------
// Writing.

/** RFC 2849 note 2 folds long lines; 76 columns is the customary width. */
const FOLD_WIDTH = 76;

/**
 * True when `s` can be written after a single colon: an RFC 2849 SAFE-STRING
 * (empty, or SAFE-INIT-CHAR *SAFE-CHAR: ASCII without NUL, LF, CR; not
 * starting with SPACE, ':' or '<') that does not end with SPACE (note 8).
 */
function isSafeString(s: string): boolean {
  const n = s.length;
  if (n === 0) return true;
  const c0 = s.charCodeAt(0);
  if (c0 === 32 || c0 === 58 || c0 === 60) return false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === 0 || c === 10 || c === 13 || c > 127) return false;
  }
  return s.charCodeAt(n - 1) !== 32;
}

/** Folds one logical line (ASCII only, so columns are characters) into physical lines. */
function fold(line: string): string {
  if (line.length <= FOLD_WIDTH) return line;
  const parts = [line.slice(0, FOLD_WIDTH)];
  for (let i = FOLD_WIDTH; i < line.length; i += FOLD_WIDTH - 1) {
    parts.push(' ' + line.slice(i, i + FOLD_WIDTH - 1));
  }
  return parts.join('\n');
}

/** The value-spec for a value, unfolded: ": value", ":: base64", or ":" for the empty string. */
function valueSpec(value: LdifValue): string {
  let bytes: Buffer;
  if (typeof value === 'string') {
    if (isSafeString(value)) return value.length ? `: ${value}` : ':';
    bytes = Buffer.from(value, 'utf8');
  } else {
    if (isUtf8(value)) {
      const s = value.toString('utf8');
      if (isSafeString(s)) return s.length ? `: ${s}` : ':';
    }
    bytes = value;
  }
  return `:: ${bytes.toString('base64')}`;
}

/** `name: value` or `name:: base64`, folded, with its LF. */
function valueLine(name: string, value: LdifValue): string {
  return fold(name + valueSpec(value)) + '\n';
}

function checkName(name: string): void {
  if (!ATTR_DESC.test(name)) throw new RangeError(`invalid attribute description "${name}"`);
}

/**
 * The attribute lines only of an entry, for changelog `changes` of an add
 * ("objectClass: top\ncn: x\n"): one line per value, in the order given,
 * base64 where the value is not a SAFE-STRING, folded at 76 columns.
 * Attributes with no values produce nothing. Throws RangeError for an
 * attribute description that is not RFC 4512 §2.5 syntax.
 */
export function formatLdifAttributes(attrs: Iterable<[string, LdifValue[]]>): string {
  let out = '';
  for (const [name, values] of attrs) {
    checkName(name);
    for (const v of values) out += valueLine(name, v);
  }
  return out;
}

/**
 * Formats one content record: `dn:` line then attributes, values
 * base64-encoded (`::`) when not SAFE-STRING (RFC 2849: starts with space,
 * colon or '<', contains NUL/CR/LF or non-ASCII, ends with space) and always
 * for Buffers that are not UTF-8; lines folded at 76 columns; ends with one
 * blank line. The DN follows the same rule (`dn::` when not safe).
 */
export function formatLdifEntry(dn: string, attrs: Iterable<[string, LdifValue[]]>): string {
  return valueLine('dn', dn) + formatLdifAttributes(attrs) + '\n';
}

/**
 * Formats only the body of a modify change list, as draft-good-ldap-changelog's
 * `changes` attribute holds it ("replace: mail\nmail: x\n-\n"): per
 * modification an `op: attr` line, its values, and a `-` line.
 */
export function formatLdifModifications(changes: LdifModification[]): string {
  let out = '';
  for (const c of changes) {
    if (c.op !== 'add' && c.op !== 'delete' && c.op !== 'replace' && c.op !== 'increment') {
      throw new RangeError(`invalid modification operation "${String(c.op)}"`);
    }
    checkName(c.attr);
    out += fold(`${c.op}: ${c.attr}`) + '\n';
    for (const v of c.values) out += valueLine(c.attr, v);
    out += '-\n';
  }
  return out;
}

function controlLine(c: LdifControl): string {
  if (!NUMERIC_OID.test(c.oid)) throw new RangeError(`invalid control OID "${c.oid}"`);
  const head = `control: ${c.oid}${c.critical ? ' true' : ''}`;
  // The value-spec follows the criticality directly: "control: 1.2.3 true:: AAEC".
  return fold(c.value === undefined ? head : head + valueSpec(c.value)) + '\n';
}

/**
 * Formats a change record in LDIF change syntax (for changelog `changes`
 * values and exports): `dn:`, `control:` lines, `changetype:` and its body
 * (attributes for add; mod-specs closed by `-` for modify; newrdn,
 * deleteoldrdn and optional newsuperior for modrdn); same value rules as
 * {@link formatLdifEntry}; ends with one blank line.
 */
export function formatLdifChange(rec: Exclude<LdifRecord, { kind: 'entry' }>): string {
  let out = valueLine('dn', rec.dn);
  for (const c of rec.controls) out += controlLine(c);
  switch (rec.kind) {
    case 'add':
      out += 'changetype: add\n' + formatLdifAttributes(rec.attrs);
      break;
    case 'delete':
      out += 'changetype: delete\n';
      break;
    case 'modify':
      out += 'changetype: modify\n' + formatLdifModifications(rec.changes);
      break;
    case 'modrdn':
      out += 'changetype: modrdn\n' + valueLine('newrdn', rec.newRdn) + `deleteoldrdn: ${rec.deleteOldRdn ? 1 : 0}\n`;
      if (rec.newSuperior !== undefined) out += valueLine('newsuperior', rec.newSuperior);
      break;
    default: {
      const never: never = rec;
      throw new RangeError(`unknown change record kind ${String((never as { kind: unknown }).kind)}`);
    }
  }
  return out + '\n';
}
