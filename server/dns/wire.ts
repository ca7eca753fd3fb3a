/**
 * DNS wire format (RFC 1035 §4) for dcmx: screening of incoming packets at the
 * door, encoding of responses, zone-transfer messages and NOTIFY, and a guarded
 * generic decoder for tests and tools.
 *
 * Why this module parses and writes the wire itself instead of handing it to
 * native-dns-packet 0.1.1 (the design card's library):
 *
 *  - Decoding. Its parser trusts its input: a self-pointing compression
 *    pointer spins forever (its issue #18), QDCOUNT ≠ 1 fails an assert, a
 *    TXT string or label that overruns its RR is read on into the next one.
 *    So every packet must be walked and validated before it may touch the
 *    library — and that walk ({@link screen}) already visits every byte the
 *    decoder would, so the query falls out of it for free. Handing the packet
 *    on to `Packet.parse` afterwards would parse it twice and lose
 *    information: it decodes labels as 'ascii' (high bit stripped, a '.'
 *    inside a label not escaped, so `a\.b` and `a.b` collide), TXT as UTF-8
 *    (binary strings are mangled), AAAA without zero compression, and reads
 *    SOA timers as signed. {@link decodeMessage} therefore decodes with the
 *    same validated walker and formats through records.ts.
 *  - Encoding. `Packet.write` is unusable for our responses: a name first
 *    written at an offset ≥ 0x4000 that recurs later gets a pointer
 *    0xC000 + offset > 0xFFFF and throws RangeError (any TCP answer or
 *    transfer message over 16 KiB); its compression index is a plain object,
 *    so a name ending in the label `constructor` or `__proto__` finds an
 *    inherited property, writes a NaN pointer and corrupts the message;
 *    `serial & 0xFFFFFFFF` makes an SOA serial ≥ 2^31 negative and
 *    writeUInt32BE throws (same for TTLs ≥ 2^31); TXT strings must be JS
 *    strings (our Buffers throw TypeError); labels are written without a
 *    63-octet check and without escape handling; QDCOUNT is forced to 1 (no
 *    question-less transfer messages); compression is case-sensitive, so
 *    answers cannot point at a mixed-case question; its truncation path
 *    throws ReferenceError (`count`/`last_resource` undefined). Working
 *    around each of these would leave little of it, and two encoders would
 *    disagree on compression and sizes, which truncation depends on. So one
 *    encoder here does sections, compression (RFC 1035 §4.1.4) and
 *    truncation (RFC 2181 §9), writing into one reused scratch buffer.
 *
 * native-dns-packet stays a test dependency: the tests decode our output with
 * `Packet.parse` (after {@link decodeMessage} has validated it) as an
 * independent check, and prove the issue #18 hang in a worker thread.
 *
 * Names. A {@link Question} name is in master-file presentation form
 * (RFC 1035 §5.1) with case as sent: labels joined by '.', no trailing dot,
 * '' for the root; inside a label `.`, `\`, `"`, `(`, `)`, `;`, `@` and `$`
 * are escaped with a backslash and bytes outside 0x21–0x7E as `\DDD`, so the
 * text is pure ASCII and maps one-to-one to the wire name. The encoder
 * accepts the same syntax, and plain lower-case names (all records.ts can
 * build) take a fast path.
 *
 * Validation rules for names, stricter than RFC 1035 requires but met by
 * every real encoder: a compression pointer must point into the message body
 * (not the 12-octet header) and strictly before the start of the run of
 * labels it ends (so before itself, and before the target of the previous
 * pointer followed): chains can only go backwards, which rules out loops
 * without bookkeeping; at most 127 pointers are followed per name and a name
 * may not exceed 255 octets (RFC 1035 §3.1), so a name costs O(255) work at
 * most. Length octets 0x40–0xBF (a label over 63 octets, or an extended label
 * type, RFC 6891 §5) are rejected.
 */
import { formatRR, fqdn, type RData, type RR } from '../directory/records';

// ---------------------------------------------------------------------------
// Types

/** The question of a query (RFC 1035 §4.1.2). */
export interface Question {
  /**
   * As sent: case preserved, no trailing dot, '' = root; labels joined by '.',
   * a label containing '.', '\', '"', '(', ')', ';', '@', '$' or bytes outside
   * 0x21–0x7E is escaped as in master files (`\.`, `\DDD`, RFC 1035 §5.1).
   */
  name: string;
  type: number;
  class: number;
}

/** The EDNS parameters of a query's OPT RR (RFC 6891 §6.1). */
export interface Edns {
  /** max(512, advertised UDP payload size) (RFC 6891 §6.2.5). */
  udpSize: number;
  /** EDNS version from the OPT TTL (RFC 6891 §6.1.3). */
  version: number;
  /** The DNSSEC OK bit (RFC 3225 §3); responses must echo it. */
  do: boolean;
  /** The Compact Answers OK bit (RFC 9824 §4), present only when set: the client wants NXDOMAIN for compact denial. */
  co?: true;
  // Options are checked for structure only; unknown ones are ignored (RFC 6891 §6.1.2).
}

/** A query that passed {@link screen}. */
export interface Query {
  id: number;
  /** 0 QUERY or 4 NOTIFY (RFC 1996); the server decides what to do with NOTIFY. */
  opcode: number;
  rd: boolean;
  cd: boolean;
  question: Question;
  /**
   * The raw bytes of the question section (name, type, class), for cache keys
   * and echo: a copy, never compressed (screen rejects pointers into the
   * header, the only place before the question).
   */
  questionWire: Buffer;
  edns?: Edns;
  /**
   * SERIAL of the SOA in the authority section, when that section holds
   * exactly one SOA owned by the question name, in the question's class
   * (IXFR, RFC 1995 §3).
   */
  authoritySoaSerial?: number;
}

/** Why a packet is dropped without reply. */
export type DropReason =
  /** Shorter than the 12-octet header (RFC 1035 §4.1.1). */
  | 'short'
  /** QR=1: never answer a response. */
  | 'response';

/** Why a packet gets FORMERR. */
export type FormerrReason =
  /** A count, name, fixed field or RDLENGTH runs past the end of the packet. */
  | 'truncated'
  /** A length octet 0x40–0xBF: a label over 63 octets or an extended label type (RFC 1035 §3.1, RFC 6891 §5). */
  | 'bad-label-length'
  /** A name over 255 octets (RFC 1035 §3.1). */
  | 'name-too-long'
  /** A pointer to itself or into the labels it terminates. */
  | 'pointer-loop'
  /** A pointer to a later offset (RFC 1035 §4.1.4: pointers refer to prior occurrences). */
  | 'forward-pointer'
  /** A pointer into the 12-octet header. */
  | 'pointer-into-header'
  /** More than 127 pointers followed in one name. */
  | 'too-many-pointers'
  /** QDCOUNT ≠ 1 for QUERY or NOTIFY. */
  | 'qdcount'
  /** An OPT RR in the answer or authority section (RFC 6891 §6.1.1). */
  | 'opt-outside-additional'
  /** An OPT RR whose owner is not the root (RFC 6891 §6.1.2). */
  | 'opt-owner'
  /** More than one OPT RR (RFC 6891 §6.1.1). */
  | 'opt-duplicate'
  /** OPT RDATA that is not a sequence of {code, length, data} (RFC 6891 §6.1.2). */
  | 'opt-rdata'
  /** An SOA for the question name and class in the authority section has malformed RDATA. */
  | 'soa-rdata';

/** Named outcomes of screening a packet at the door (STYLE.md). */
export type Screened =
  /** Shorter than a header, or QR=1: no reply (RFC 1035 §4.1.1; never answer a response). */
  | { kind: 'drop'; reason: DropReason }
  /**
   * Malformed (see {@link FormerrReason}). `question`/`questionWire` are set
   * when QDCOUNT is 1 and the question itself parsed; `edns` when the whole
   * packet parsed and carried an OPT (RFC 6891 §7: answer with an OPT).
   */
  | { kind: 'formerr'; id: number; opcode: number; rd: boolean; reason: FormerrReason; question?: Question; questionWire?: Buffer; edns?: Edns }
  /** Opcodes other than QUERY (0) and NOTIFY (4) in a well-formed packet (RFC 1035 §4.1.1). */
  | { kind: 'notimp'; id: number; opcode: number; rd: boolean; question?: Question; questionWire?: Buffer; edns?: Edns }
  /** EDNS version > 0 (RFC 6891 §6.1.3): answer BADVERS (16) with an OPT of version 0. */
  | { kind: 'badvers'; id: number; opcode: number; rd: boolean; question: Question; questionWire: Buffer; edns: Edns }
  | { kind: 'query'; query: Query };

/** A response to encode with {@link encodeResponse}. */
export interface Response {
  id: number;
  opcode: number;
  aa: boolean;
  rd: boolean;
  cd: boolean;
  /** Full 12-bit rcode; the upper 8 bits go into the OPT TTL (RFC 6891 §6.1.3), e.g. BADVERS = 16. */
  rcode: number;
  /** Echoed; `questionWire` is preferred when given (it preserves the case exactly). */
  question?: Question;
  /** An uncompressed question section as returned by {@link screen}. */
  questionWire?: Buffer;
  /** RRs from records.ts; the class is always IN. */
  answer: RR[];
  authority: RR[];
  additional: RR[];
  /**
   * When present, an OPT RR (version 0, our payload size e.g. 1232) is
   * appended to the additional section; `do` echoes the query's DO bit
   * (RFC 3225 §3), `co` sets the Compact Answers OK bit (RFC 9824 §4).
   */
  edns?: { udpSize: number; do?: boolean; co?: boolean };
}

// ---------------------------------------------------------------------------
// Constants

const HEADER = 12;
const MAX_NAME = 255; // octets, RFC 1035 §3.1
const MAX_POINTERS = 127;
const MAX_MESSAGE = 65535;
const QR = 0x8000;
const AA = 0x0400;
const TC = 0x0200;
const RD = 0x0100;
const CD = 0x0010;
const OPCODE_QUERY = 0;
const OPCODE_NOTIFY = 4;
const TYPE_SOA = 6;
const TYPE_OPT = 41;
const CLASS_IN = 1;
const OPT_RR_SIZE = 11; // root owner, TYPE, CLASS, TTL, RDLENGTH=0

// Walker failures are negative numbers so that validation allocates nothing.
const E_TRUNCATED = -1;
const E_BAD_LABEL_LENGTH = -2;
const E_NAME_TOO_LONG = -3;
const E_POINTER_LOOP = -4;
const E_FORWARD_POINTER = -5;
const E_POINTER_INTO_HEADER = -6;
const E_TOO_MANY_POINTERS = -7;
const E_OPT_OUTSIDE_ADDITIONAL = -8;
const E_OPT_OWNER = -9;
const E_OPT_DUPLICATE = -10;
const E_OPT_RDATA = -11;
const E_SOA_RDATA = -12;
const REASONS: readonly FormerrReason[] = [
  'truncated', 'bad-label-length', 'name-too-long', 'pointer-loop', 'forward-pointer', 'pointer-into-header',
  'too-many-pointers', 'opt-outside-additional', 'opt-owner', 'opt-duplicate', 'opt-rdata', 'soa-rdata',
];
const reasonOf = (code: number): FormerrReason => REASONS[-code - 1];

const u16 = (b: Buffer, p: number): number => (b[p] << 8) | b[p + 1];
const u32 = (b: Buffer, p: number): number => ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;

// ---------------------------------------------------------------------------
// Validation

/**
 * Validates the name at `p` and returns the offset just after it in the
 * stream (after its terminating zero or its first pointer), or a negative
 * E_* code. The octets before the first pointer must lie before `firstEnd`
 * (an RDATA end, or the packet end); labels reached through pointers may lie
 * anywhere in the packet. See the module comment for the pointer rules.
 */
function skipName(buf: Buffer, p: number, firstEnd: number): number {
  let end = firstEnd;
  let chunk = p; // start of the run of labels being read
  let next = -1; // stream position after the name, once a pointer is seen
  let octets = 0;
  let jumps = 0;
  for (;;) {
    if (p >= end) return E_TRUNCATED;
    const len = buf[p];
    if (len < 0x40) {
      if (len === 0) return next < 0 ? p + 1 : next;
      octets += len + 1;
      if (octets > MAX_NAME - 1) return E_NAME_TOO_LONG; // + 1 for the root label
      p += len + 1;
      continue;
    }
    if (len < 0xc0) return E_BAD_LABEL_LENGTH;
    if (p + 1 >= end) return E_TRUNCATED;
    const target = ((len & 0x3f) << 8) | buf[p + 1];
    if (target > p) return E_FORWARD_POINTER;
    if (target >= chunk) return E_POINTER_LOOP;
    if (target < HEADER) return E_POINTER_INTO_HEADER;
    if (++jumps > MAX_POINTERS) return E_TOO_MANY_POINTERS;
    if (next < 0) next = p + 2;
    p = chunk = target;
    end = buf.length;
  }
}

// Results of the last walk(); valid only until the next call (never re-entered).
let wQEnd = 0; // end of the first question, 0 when none parsed
let wOpt = -1; // offset of the OPT RR's TYPE field, -1 when absent

/**
 * Walks the whole message (buf.length ≥ 12): every question, and every RR's
 * owner name, fixed fields and RDLENGTH, plus the OPT rules of RFC 6891
 * §6.1.1–6.1.2. RDATA other than OPT's is not looked into. Returns 0 or a
 * negative E_* code. Each iteration consumes at least 5 (question) or 11
 * (RR) octets or fails, so the walk is O(n) whatever the counts say. Octets
 * after the last counted RR are ignored.
 */
function walk(buf: Buffer): number {
  const n = buf.length;
  wQEnd = 0;
  wOpt = -1;
  const qd = u16(buf, 4);
  let p = HEADER;
  for (let i = 0; i < qd; i++) {
    const e = skipName(buf, p, n);
    if (e < 0) return e;
    if (e + 4 > n) return E_TRUNCATED;
    p = e + 4;
    if (i === 0) wQEnd = p;
  }
  const an = u16(buf, 6);
  const anns = an + u16(buf, 8);
  const total = anns + u16(buf, 10);
  for (let i = 0; i < total; i++) {
    const owner = p;
    const e = skipName(buf, p, n);
    if (e < 0) return e;
    if (e + 10 > n) return E_TRUNCATED;
    const rdEnd = e + 10 + u16(buf, e + 8);
    if (rdEnd > n) return E_TRUNCATED;
    if (u16(buf, e) === TYPE_OPT) {
      if (i < anns) return E_OPT_OUTSIDE_ADDITIONAL;
      if (wOpt >= 0) return E_OPT_DUPLICATE;
      if (buf[owner] !== 0) return E_OPT_OWNER;
      let o = e + 10;
      while (o < rdEnd) {
        if (o + 4 > rdEnd) return E_OPT_RDATA;
        o += 4 + u16(buf, o + 2);
      }
      if (o !== rdEnd) return E_OPT_RDATA;
      wOpt = e;
    }
    p = rdEnd;
  }
  return 0;
}

/** Case-insensitive comparison of two validated names (RFC 4343 §3). */
function sameName(buf: Buffer, a: number, b: number): boolean {
  for (let guard = 0; guard <= MAX_NAME; guard++) {
    while (buf[a] >= 0xc0) a = ((buf[a] & 0x3f) << 8) | buf[a + 1];
    while (buf[b] >= 0xc0) b = ((buf[b] & 0x3f) << 8) | buf[b + 1];
    const len = buf[a];
    if (len !== buf[b]) return false;
    if (len === 0) return true;
    for (let i = 1; i <= len; i++) {
      let x = buf[a + i];
      let y = buf[b + i];
      if (x >= 0x41 && x <= 0x5a) x |= 0x20;
      if (y >= 0x41 && y <= 0x5a) y |= 0x20;
      if (x !== y) return false;
    }
    a += len + 1;
    b += len + 1;
  }
  return false;
}

/**
 * Serial of the single SOA for the question name and class in the authority
 * section, -1 when there is none or more than one, E_SOA_RDATA when such an
 * SOA's RDATA is malformed. Call after a successful walk() with QDCOUNT = 1.
 */
function authoritySoa(buf: Buffer): number {
  const n = buf.length;
  const an = u16(buf, 6);
  const ns = u16(buf, 8);
  const qclass = u16(buf, wQEnd - 2);
  let p = wQEnd;
  let serial = -1;
  let found = 0;
  for (let i = 0; i < an + ns; i++) {
    const owner = p;
    const e = skipName(buf, p, n);
    const rd = e + 10;
    const rdEnd = rd + u16(buf, e + 8);
    if (i >= an && u16(buf, e) === TYPE_SOA && u16(buf, e + 2) === qclass && sameName(buf, owner, HEADER)) {
      const m = skipName(buf, rd, rdEnd);
      const r = m < 0 ? m : skipName(buf, m, rdEnd);
      if (r < 0 || r + 20 !== rdEnd) return E_SOA_RDATA;
      serial = u32(buf, r);
      found++;
    }
    p = rdEnd;
  }
  return found === 1 ? serial : -1;
}

// ---------------------------------------------------------------------------
// Presentation of names

// 1: printed as is; 2: backslash + char; 0: \DDD (RFC 1035 §5.1).
const LABEL_CHAR = new Uint8Array(256);
for (let c = 0x21; c <= 0x7e; c++) LABEL_CHAR[c] = 1;
for (const c of '.\\"();@$') LABEL_CHAR[c.charCodeAt(0)] = 2;

/** One label's octets in presentation form. */
function labelText(buf: Buffer, s: number, e: number): string {
  let i = s;
  while (i < e && LABEL_CHAR[buf[i]] === 1) i++;
  if (i === e) return buf.toString('latin1', s, e);
  let out = buf.toString('latin1', s, i);
  for (; i < e; i++) {
    const c = buf[i];
    const k = LABEL_CHAR[c];
    if (k === 1) out += String.fromCharCode(c);
    else if (k === 2) out += '\\' + String.fromCharCode(c);
    else out += (c < 10 ? '\\00' : c < 100 ? '\\0' : '\\') + c;
  }
  return out;
}

const textScratch = Buffer.allocUnsafe(MAX_NAME);

/**
 * The presentation form of the uncompressed name at `buf[p]` (validated,
 * at most 255 octets), in lower case when `lower`, if every label octet
 * prints as itself (LABEL_CHAR 1: no escapes); undefined otherwise. One
 * string, built in a scratch buffer: no string per label.
 */
function plainText(buf: Buffer, p: number, lower: boolean): string | undefined {
  let k = 0;
  for (;;) {
    const len = buf[p];
    if (len === 0) return textScratch.toString('latin1', 0, k);
    if (len >= 0x40) return undefined; // a pointer: nameText follows it
    if (k > 0) textScratch[k++] = 0x2e;
    for (let i = p + 1, e = p + 1 + len; i < e; i++) {
      const c = buf[i];
      if (LABEL_CHAR[c] !== 1) return undefined;
      textScratch[k++] = lower && c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
    }
    p += len + 1;
  }
}

/** A validated name in presentation form, case preserved, '' for the root. */
function nameText(buf: Buffer, p: number): string {
  const plain = plainText(buf, p, false);
  if (plain !== undefined) return plain;
  let s = '';
  let first = true;
  for (;;) {
    const len = buf[p];
    if (len >= 0xc0) {
      p = ((len & 0x3f) << 8) | buf[p + 1];
      continue;
    }
    if (len === 0) return s;
    s = first ? labelText(buf, p + 1, p + 1 + len) : s + '.' + labelText(buf, p + 1, p + 1 + len);
    first = false;
    p += len + 1;
  }
}

// ---------------------------------------------------------------------------
// Screening

function readEdns(buf: Buffer, at: number): Edns {
  const ttl = u32(buf, at + 4);
  // RFC 6891 §6.2.5: values below 512 are treated as 512.
  const edns: Edns = { udpSize: Math.max(512, u16(buf, at + 2)), version: (ttl >>> 16) & 0xff, do: (ttl & 0x8000) !== 0 };
  if (ttl & 0x4000) edns.co = true; // RFC 9824 §4: CO, the bit after DO
  return edns;
}

function readQuestion(buf: Buffer): Question {
  return { name: nameText(buf, HEADER), type: u16(buf, wQEnd - 4), class: u16(buf, wQEnd - 2) };
}

function copyOf(buf: Buffer, s: number, e: number): Buffer {
  const out = Buffer.allocUnsafe(e - s);
  buf.copy(out, 0, s, e);
  return out;
}

/**
 * Validates then decodes a packet (a UDP payload or a TCP message body
 * without its length prefix). Never throws, never loops: O(n) with a hard
 * cap on pointer jumps and on total name length (255 octets, RFC 1035 §3.1).
 *
 * Outcomes, in the order they are decided:
 *  1. under 12 octets → drop 'short'; QR=1 → drop 'response';
 *  2. the whole packet is walked (questions; every RR's owner, fixed fields,
 *     RDLENGTH; OPT placement, owner, count and option structure, RFC 6891
 *     §6.1.1–6.1.2): any fault → formerr with its {@link FormerrReason};
 *  3. opcode other than QUERY (0) or NOTIFY (4) → notimp (RFC 1035 §4.1.1);
 *  4. QDCOUNT ≠ 1 → formerr 'qdcount';
 *  5. OPT version > 0 → badvers (RFC 6891 §6.1.3);
 *  6. an SOA for the question name in the authority section with malformed
 *     RDATA → formerr 'soa-rdata'; otherwise → query.
 * The question class and type are not judged here (REFUSED, NOTIMP for
 * meta types and the like are the server's business).
 */
export function screen(buf: Buffer): Screened {
  if (buf.length < HEADER) return { kind: 'drop', reason: 'short' };
  const flags = u16(buf, 2);
  if (flags & QR) return { kind: 'drop', reason: 'response' };
  const id = u16(buf, 0);
  const opcode = (flags >>> 11) & 0xf;
  const rd = (flags & RD) !== 0;
  const qd = u16(buf, 4);
  const err = walk(buf);
  const hasQuestion = qd === 1 && wQEnd > 0;
  if (err < 0) {
    const f: Screened = { kind: 'formerr', id, opcode, rd, reason: reasonOf(err) };
    if (hasQuestion) {
      f.question = readQuestion(buf);
      f.questionWire = copyOf(buf, HEADER, wQEnd);
    }
    return f;
  }
  const edns = wOpt >= 0 ? readEdns(buf, wOpt) : undefined;
  if (opcode !== OPCODE_QUERY && opcode !== OPCODE_NOTIFY) {
    const f: Screened = { kind: 'notimp', id, opcode, rd };
    if (hasQuestion) {
      f.question = readQuestion(buf);
      f.questionWire = copyOf(buf, HEADER, wQEnd);
    }
    if (edns) f.edns = edns;
    return f;
  }
  if (!hasQuestion) {
    const f: Screened = { kind: 'formerr', id, opcode, rd, reason: 'qdcount' };
    if (edns) f.edns = edns;
    return f;
  }
  const question = readQuestion(buf);
  const questionWire = copyOf(buf, HEADER, wQEnd);
  if (edns && edns.version > 0) return { kind: 'badvers', id, opcode, rd, question, questionWire, edns };
  const query: Query = { id, opcode, rd, cd: (flags & CD) !== 0, question, questionWire };
  if (edns) query.edns = edns;
  if (u16(buf, 8) > 0) {
    const serial = authoritySoa(buf);
    if (serial === E_SOA_RDATA) {
      const f: Screened = { kind: 'formerr', id, opcode, rd, reason: 'soa-rdata', question, questionWire };
      if (edns) f.edns = edns;
      return f;
    }
    if (serial >= 0) query.authoritySoaSerial = serial;
  }
  return { kind: 'query', query };
}

// ---------------------------------------------------------------------------
// Plain queries (the answer cache's fast path)

/** What {@link plainQuery} found in a packet; one shared object, valid until its next call. */
export interface PlainQuery {
  /** Offset just after the question (name, type, class), which starts at 12. */
  questionEnd: number;
  /** No OPT RR: 0; OPT without DO: 1; DO: 2; DO and CO (RFC 9824 §4): 3. */
  edns: 0 | 1 | 2 | 3;
  /** The OPT's UDP payload size as sent (0 without OPT). */
  udpSize: number;
}

const plain: PlainQuery = { questionEnd: 0, edns: 0, udpSize: 0 };

/**
 * Recognizes, without decoding anything, the packet an ordinary client sends
 * and that {@link screen} would pass as a query unchanged: QR=0, opcode
 * QUERY, QDCOUNT=1, ANCOUNT=NSCOUNT=0, a question whose name is plain labels
 * (no pointer, each under 64 octets, 255 octets in all), and either nothing
 * after it or exactly one OPT RR (root owner, EDNS version 0, well-formed
 * options, RFC 6891 §6.1.2) ending the packet. Returns the shared
 * {@link PlainQuery}, or undefined for anything else (a response, another
 * opcode, more RRs, a pointer, trailing octets, a malformed packet...), which
 * the caller hands to {@link screen}. Allocates nothing.
 */
export function plainQuery(buf: Buffer): PlainQuery | undefined {
  const n = buf.length;
  // QR=0, opcode 0 (the other header bits are echoed or ignored); QDCOUNT=1, ANCOUNT=0, NSCOUNT=0, ARCOUNT ≤ 1.
  if (n < HEADER + 5 || (buf[2] & 0xf8) !== 0 || buf[4] !== 0 || buf[5] !== 1 || buf[6] !== 0 || buf[7] !== 0 || buf[8] !== 0 || buf[9] !== 0 || buf[10] !== 0 || buf[11] > 1) return undefined;
  let p = HEADER;
  for (;;) {
    const len = buf[p];
    if (len === 0) break;
    if (len >= 0x40) return undefined; // a pointer or a bad length: screen() says what it is
    p += len + 1;
    if (p - HEADER > MAX_NAME - 1 || p >= n) return undefined;
  }
  const end = p + 5;
  if (end > n) return undefined;
  plain.questionEnd = end;
  if (buf[11] === 0) {
    if (end !== n) return undefined;
    plain.edns = 0;
    plain.udpSize = 0;
    return plain;
  }
  // The OPT RR: root owner (one zero octet), TYPE 41, CLASS = payload size, TTL = extended RCODE, version, flags; RDLENGTH.
  if (end + OPT_RR_SIZE > n || buf[end] !== 0 || u16(buf, end + 1) !== TYPE_OPT || buf[end + 6] !== 0) return undefined;
  const rdEnd = end + OPT_RR_SIZE + u16(buf, end + 9);
  if (rdEnd !== n) return undefined;
  let o = end + OPT_RR_SIZE;
  while (o < rdEnd) {
    if (o + 4 > rdEnd) return undefined;
    o += 4 + u16(buf, o + 2);
  }
  if (o !== rdEnd) return undefined;
  const flags = buf[end + 7];
  plain.edns = flags & 0x80 ? (flags & 0x40 ? 3 : 2) : 1; // DO, then CO, the bit after it (RFC 3225 §3, RFC 9824 §4)
  plain.udpSize = u16(buf, end + 3);
  return plain;
}

const keyScratch = Buffer.allocUnsafe(MAX_NAME + 4 + 3);

/**
 * The answer cache's key for the question `wire[start, end)` (name, type,
 * class; the name plain labels, as {@link plainQuery} or {@link screen}
 * leave it), the EDNS state (see {@link PlainQuery.edns}) and the reply size
 * limit: the question's octets with the name's ASCII letters in lower case
 * (RFC 4343 §3: names compare case-insensitively, octets outside A–Z
 * exactly), then the state and the limit, as a latin1 string.
 */
export function answerKey(wire: Buffer, start: number, end: number, edns: number, limit: number): string {
  const nameEnd = end - 4;
  let k = 0;
  for (let i = start; i < nameEnd; i++) {
    const c = wire[i];
    keyScratch[k++] = c >= 0x41 && c <= 0x5a ? c | 0x20 : c; // length octets are < 0x40: never folded
  }
  for (let i = nameEnd; i < end; i++) keyScratch[k++] = wire[i];
  keyScratch[k++] = edns;
  keyScratch[k++] = limit >>> 8;
  keyScratch[k++] = limit & 0xff;
  return keyScratch.toString('latin1', 0, k);
}

// ---------------------------------------------------------------------------
// Encoding

/** A programming error in what was handed to the encoder. */
function bad(what: string): never {
  throw new TypeError(`dns wire: ${what}`);
}

/** Parses dotted-quad IPv4 text into buf[pos..pos+4); false if malformed. */
function putIPv4(buf: Buffer, pos: number, s: string): boolean {
  let part = 0;
  let digits = 0;
  let n = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 0x2e;
    if (c === 0x2e) {
      if (digits === 0 || n === 4) return false;
      buf[pos + n++] = part;
      part = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      part = part * 10 + (c - 0x30);
      if (++digits > 3 || part > 255) return false;
    } else {
      return false;
    }
  }
  return n === 4;
}

const v6groups = new Array<number>(10);
/** Parses colon-separated hex groups (optionally ending in dotted IPv4) into v6groups from `at`; returns the count or -1. */
function v6parts(s: string, at: number, allowV4: boolean): number {
  if (s === '') return 0;
  let n = 0;
  let start = 0;
  for (;;) {
    let end = s.indexOf(':', start);
    if (end < 0) end = s.length;
    const g = s.slice(start, end);
    if (end === s.length && allowV4 && g.includes('.')) {
      const tmp = Buffer.allocUnsafe(4);
      if (!putIPv4(tmp, 0, g) || at + n + 2 > 8) return -1;
      v6groups[at + n++] = (tmp[0] << 8) | tmp[1];
      v6groups[at + n++] = (tmp[2] << 8) | tmp[3];
      return n;
    }
    if (!/^[0-9a-fA-F]{1,4}$/.test(g) || at + n >= 8) return -1;
    v6groups[at + n++] = parseInt(g, 16);
    if (end === s.length) return n;
    start = end + 1;
  }
}

/** Parses IPv6 text (RFC 4291 §2.2; a %zone suffix is ignored) into buf[pos..pos+16); false if malformed. */
function putIPv6(buf: Buffer, pos: number, s: string): boolean {
  const pct = s.indexOf('%');
  if (pct >= 0) s = s.slice(0, pct);
  const dbl = s.indexOf('::');
  let groups: number;
  if (dbl < 0) {
    groups = v6parts(s, 0, true);
    if (groups !== 8) return false;
  } else {
    if (s.indexOf('::', dbl + 1) >= 0) return false;
    const head = v6parts(s.slice(0, dbl), 0, false);
    if (head < 0) return false;
    const tail = v6parts(s.slice(dbl + 2), head, true);
    if (tail < 0 || head + tail > 7) return false;
    // Move the tail to the end and zero-fill the gap.
    for (let i = tail - 1; i >= 0; i--) v6groups[8 - tail + i] = v6groups[head + i];
    for (let i = head; i < 8 - tail; i++) v6groups[i] = 0;
  }
  for (let i = 0; i < 8; i++) {
    buf[pos + 2 * i] = v6groups[i] >>> 8;
    buf[pos + 2 * i + 1] = v6groups[i] & 0xff;
  }
  return true;
}

/** Presentation name → label octets (escapes decoded) for the slow path; throws for a bad name. */
function nameLabels(name: string): Buffer[] {
  const b = Buffer.from(name, 'utf8');
  const labels: Buffer[] = [];
  let cur: number[] = [];
  let octets = 1;
  for (let i = 0; i < b.length; i++) {
    let c = b[i];
    if (c === 0x2e) {
      if (cur.length === 0) {
        if (b.length === 1) return labels; // '.' = root
        bad(`empty label in name '${name}'`);
      }
      labels.push(Buffer.from(cur));
      octets += cur.length + 1;
      cur = [];
      continue;
    }
    if (c === 0x5c) {
      if (i + 1 >= b.length) bad(`dangling escape in name '${name}'`);
      const d = b.subarray(i + 1, i + 4).toString('latin1');
      if (/^\d{3}$/.test(d)) {
        c = Number(d);
        if (c > 255) bad(`bad \\DDD escape in name '${name}'`);
        i += 3;
      } else {
        c = b[++i];
      }
    }
    cur.push(c);
    if (cur.length > 63) bad(`label over 63 octets in name '${name}'`);
  }
  if (cur.length > 0) {
    labels.push(Buffer.from(cur));
    octets += cur.length + 1;
  }
  if (octets > MAX_NAME) bad(`name over 255 octets: '${name}'`);
  return labels;
}

/** Is `name` all [a-z0-9_*-] labels separated by dots? Then it is its own compression key. */
function isPlain(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f || c === 0x2a || c === 0x2e)) return false;
  }
  return true;
}

const SCRATCH_SIZE = MAX_MESSAGE + 65535 + 1024; // a full message plus one maximal RR past it

/** How a name is written: what it may point at, and what may point at it. */
const enum NameMode {
  /** An owner name: may point at any earlier name, the question's included. */
  Owner,
  /** A name inside RDATA: may point at earlier owner and RDATA names, never into the question. */
  RData,
  /** Never compressed (SRV target, RFC 2782), but a target for later names. */
  Uncompressed,
  /** The question name: a target for owner names only. */
  Question,
}

/**
 * One message being written. Two compression tables map the lower-case
 * presentation form of every name suffix written at an offset below 0x4000
 * (pointers have 14 bits, RFC 1035 §4.1.4) to that offset: `owners` holds
 * all of them, `rdataNames` all but the question's. Owner names look up the
 * first, RDATA names the second; so owners echo the query's case (RFC 4343
 * §4.1) while RDATA names keep the case they were stored with, and the bytes
 * after the question depend on the question only case-insensitively. A
 * journal of added keys lets a partly written RR set be rolled back.
 */
class Writer {
  readonly buf: Buffer;
  pos = HEADER;
  private owners = new Map<string, number>();
  private rdataNames = new Map<string, number>();
  private readonly journalKeys: string[] = [];
  private readonly journalRData: boolean[] = [];

  /**
   * `canonical`: a writer for RFC 4034 §6.2 canonical forms (DNSSEC
   * signing input), not messages: every name uncompressed and in lower case.
   */
  constructor(private readonly canonical = false, size = SCRATCH_SIZE) {
    this.buf = Buffer.allocUnsafe(size);
  }

  reset(): void {
    this.pos = HEADER;
    // New tables, not clear(): V8 allocates the tables of a Map that has reached the old generation (this
    // writer lives as long as the process) in the old generation too, at every clear() and growth, keys
    // kept alive with them: per message, garbage only a full GC frees, which grew the heap by hundreds of
    // MiB under an NXDOMAIN flood (issue 14, memory). A fresh Map per message dies young.
    this.owners = new Map();
    this.rdataNames = new Map();
    this.journalKeys.length = 0;
    this.journalRData.length = 0;
  }

  /** A restore point for {@link rollback}. */
  mark(): number {
    return this.journalKeys.length;
  }

  rollback(pos: number, mark: number): void {
    this.pos = pos;
    while (this.journalKeys.length > mark) {
      const key = this.journalKeys.pop() as string;
      (this.journalRData.pop() ? this.rdataNames : this.owners).delete(key);
    }
  }

  private find(key: string, mode: NameMode): number | undefined {
    return mode === NameMode.Owner ? this.owners.get(key) : mode === NameMode.RData ? this.rdataNames.get(key) : undefined;
  }

  private remember(key: string, at: number, mode: NameMode): void {
    if (at >= 0x4000) return;
    if (!this.owners.has(key)) {
      this.owners.set(key, at);
      this.journalKeys.push(key);
      this.journalRData.push(false);
    }
    if (mode !== NameMode.Question && !this.rdataNames.has(key)) {
      this.rdataNames.set(key, at);
      this.journalKeys.push(key);
      this.journalRData.push(true);
    }
  }

  u8(v: number): void {
    this.buf[this.pos++] = v;
  }

  u16(v: number): void {
    const b = this.buf;
    b[this.pos] = v >>> 8;
    b[this.pos + 1] = v;
    this.pos += 2;
  }

  u32(v: number): void {
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
  }

  bytes(b: Buffer): void {
    b.copy(this.buf, this.pos);
    this.pos += b.length;
  }

  /** A <character-string> (RFC 1035 §3.3): at most 255 octets. */
  charString(b: Buffer, what: string): void {
    if (b.length > 255) throw new RangeError(`dns wire: ${what} of ${b.length} octets exceeds 255 (RFC 1035 §3.3)`);
    this.u8(b.length);
    this.bytes(b);
  }

  /** Writes a name, compressed as `mode` allows; in canonical mode never compressed and in lower case. */
  name(name: string, mode: NameMode): void {
    if (this.canonical) {
      this.canonicalName(name);
      return;
    }
    if (!isPlain(name)) {
      this.slowName(name, mode);
      return;
    }
    if (name.length > 0 && name.charCodeAt(name.length - 1) === 0x2e) name = name.slice(0, -1); // one trailing dot
    if (name === '') {
      this.u8(0);
      return;
    }
    if (name.length > MAX_NAME - 2) bad(`name over 255 octets: '${name}'`);
    const buf = this.buf;
    let i = 0;
    for (;;) {
      const key = i === 0 ? name : name.slice(i);
      const at = this.find(key, mode);
      if (at !== undefined) {
        this.u16(0xc000 | at);
        return;
      }
      this.remember(key, this.pos, mode);
      const dot = name.indexOf('.', i);
      const end = dot < 0 ? name.length : dot;
      const len = end - i;
      if (len === 0) bad(`empty label in name '${name}'`);
      if (len > 63) bad(`label over 63 octets in name '${name}'`);
      let p = this.pos;
      buf[p++] = len;
      for (let k = i; k < end; k++) buf[p++] = name.charCodeAt(k);
      this.pos = p;
      if (dot < 0) break;
      i = dot + 1;
    }
    this.u8(0);
  }

  /** Names with upper case, escapes or other characters: parse, then write label by label. */
  private slowName(name: string, mode: NameMode): void {
    const labels = nameLabels(name);
    const keys = suffixKeys(labels);
    for (let j = 0; j < labels.length; j++) {
      const at = this.find(keys[j], mode);
      if (at !== undefined) {
        this.u16(0xc000 | at);
        return;
      }
      this.remember(keys[j], this.pos, mode);
      this.u8(labels[j].length);
      this.bytes(labels[j]);
    }
    this.u8(0);
  }

  /**
   * RFC 4034 §6.2 items 2–3: the name's labels uncompressed, US-ASCII upper
   * case letters made lower case. Length octets are at most 63, below 'A'
   * (0x41), so only label octets can change.
   */
  private canonicalName(name: string): void {
    const start = this.pos;
    if (isPlain(name)) {
      if (name.length > 0 && name.charCodeAt(name.length - 1) === 0x2e) name = name.slice(0, -1);
      if (name.length > MAX_NAME - 2) bad(`name over 255 octets: '${name}'`);
      if (name !== '') {
        for (let i = 0; ; ) {
          const dot = name.indexOf('.', i);
          const end = dot < 0 ? name.length : dot;
          if (end === i) bad(`empty label in name '${name}'`);
          if (end - i > 63) bad(`label over 63 octets in name '${name}'`);
          this.u8(end - i);
          for (let k = i; k < end; k++) this.buf[this.pos++] = name.charCodeAt(k);
          if (dot < 0) break;
          i = dot + 1;
        }
      }
    } else {
      for (const l of nameLabels(name)) {
        this.u8(l.length);
        this.bytes(l);
      }
    }
    this.u8(0);
    for (let i = start; i < this.pos; i++) if (this.buf[i] >= 0x41 && this.buf[i] <= 0x5a) this.buf[i] |= 0x20;
  }

  /** In canonical mode: an RR's RDATA alone (RFC 4034 §6.2), a copy. */
  rdataOnly(d: RData, owner: string): Buffer {
    this.pos = 0;
    this.rdata(d, owner);
    return copyOf(this.buf, 0, this.pos);
  }

  /** In canonical mode: a name alone (RFC 4034 §6.2), a copy. */
  nameOnly(name: string): Buffer {
    this.pos = 0;
    this.canonicalName(name);
    return copyOf(this.buf, 0, this.pos);
  }

  /** Copies an uncompressed question section and makes its name a compression target. */
  questionWire(q: Buffer): void {
    let p = 0;
    for (;;) {
      if (p >= q.length) bad('questionWire ends inside the name');
      const len = q[p];
      if (len === 0) break;
      if (len > 63) bad('questionWire holds a compressed or malformed name');
      p += len + 1;
    }
    if (p + 5 !== q.length || p + 1 > MAX_NAME) bad('questionWire is not one question');
    const text = plainText(q, 0, true);
    if (text !== undefined) {
      // The key of the suffix whose length octet is at q[o] starts at text[o] (each length octet became a dot before its label).
      for (let o = 0; o < p; o += q[o] + 1) this.remember(o === 0 ? text : text.slice(o), this.pos + o, NameMode.Question);
    } else {
      const labels: Buffer[] = [];
      for (let o = 0; o < p; o += q[o] + 1) labels.push(q.subarray(o + 1, o + 1 + q[o]));
      const keys = suffixKeys(labels);
      let at = this.pos;
      for (let j = 0; j < labels.length; j++) {
        this.remember(keys[j], at, NameMode.Question);
        at += labels[j].length + 1;
      }
    }
    this.bytes(q);
  }

  /** Writes one RR (class IN). */
  rr(rr: RR): void {
    const ttl = rr.ttl;
    if (!Number.isInteger(ttl) || ttl < 0 || ttl > 0xffffffff) bad(`bad TTL ${ttl} for '${rr.name}'`);
    this.name(rr.name, NameMode.Owner);
    const d = rr.rdata;
    this.u16(d.type);
    this.u16(CLASS_IN);
    this.u32(ttl);
    const lenAt = this.pos;
    this.pos += 2;
    this.rdata(d, rr.name);
    const rdlen = this.pos - lenAt - 2;
    this.buf[lenAt] = rdlen >>> 8;
    this.buf[lenAt + 1] = rdlen;
  }

  private rdata(d: RData, owner: string): void {
    const limit = (n: number, what: string): void => {
      if (n > 65535) throw new RangeError(`dns wire: ${what} RDATA of '${owner}' is ${n} octets, over 65535 (RFC 1035 §3.2.1)`);
    };
    switch (d.type) {
      case 1:
        if (!putIPv4(this.buf, this.pos, d.address)) bad(`bad IPv4 address '${d.address}'`);
        this.pos += 4;
        return;
      case 28:
        if (!putIPv6(this.buf, this.pos, d.address)) bad(`bad IPv6 address '${d.address}'`);
        this.pos += 16;
        return;
      case 2:
      case 5:
      case 12:
        this.name(d.target, NameMode.RData);
        return;
      case 15:
        this.u16(d.preference);
        this.name(d.exchange, NameMode.RData);
        return;
      case 16: {
        // records.ts already splits into <= 255-octet strings; longer ones are split here too (RFC 1035 §3.3.14).
        let total = 0;
        for (const s of d.strings) total += s.length + Math.max(1, Math.ceil(s.length / 255));
        limit(Math.max(total, 1), 'TXT');
        if (d.strings.length === 0) this.u8(0); // a TXT RDATA holds at least one string
        for (const s of d.strings) {
          if (s.length <= 255) {
            this.u8(s.length);
            this.bytes(s);
          } else {
            for (let i = 0; i < s.length; i += 255) {
              const part = s.subarray(i, i + 255);
              this.u8(part.length);
              this.bytes(part);
            }
          }
        }
        return;
      }
      case 33:
        this.u16(d.priority);
        this.u16(d.weight);
        this.u16(d.port);
        this.name(d.target, NameMode.Uncompressed); // RFC 2782: the target is never compressed
        return;
      case 257: {
        // RFC 8659 §4.1: flags, tag length, tag, value.
        const tag = Buffer.from(d.tag, 'latin1');
        if (tag.length < 1 || tag.length > 255) bad(`bad CAA tag '${d.tag}'`);
        limit(2 + tag.length + d.value.length, 'CAA');
        this.u8(d.flags);
        this.u8(tag.length);
        this.bytes(tag);
        this.bytes(d.value);
        return;
      }
      case 6:
        this.name(d.mname, NameMode.RData);
        this.name(d.rname, NameMode.RData);
        this.u32(d.serial);
        this.u32(d.refresh);
        this.u32(d.retry);
        this.u32(d.expire);
        this.u32(d.minimum);
        return;
      case 13:
        this.charString(d.cpu, 'HINFO CPU');
        this.charString(d.os, 'HINFO OS');
        return;
      case 44:
        limit(2 + d.fingerprint.length, 'SSHFP');
        this.u8(d.algorithm);
        this.u8(d.fptype);
        this.bytes(d.fingerprint);
        return;
      case 52:
        limit(3 + d.data.length, 'TLSA');
        this.u8(d.usage);
        this.u8(d.selector);
        this.u8(d.matching);
        this.bytes(d.data);
        return;
      case 43:
      case 59:
        // RFC 4034 §5.1; CDS has the same RDATA (RFC 7344 §3.1).
        limit(4 + d.digest.length, 'DS');
        this.u16(d.keyTag);
        this.u8(d.algorithm);
        this.u8(d.digestType);
        this.bytes(d.digest);
        return;
      case 48:
      case 60:
        // RFC 4034 §2.1; CDNSKEY has the same RDATA (RFC 7344 §3.2).
        limit(4 + d.publicKey.length, 'DNSKEY');
        this.u16(d.flags);
        this.u8(d.protocol);
        this.u8(d.algorithm);
        this.bytes(d.publicKey);
        return;
      case 46:
        // RFC 4034 §3.1; the signer's name is not compressed (§3.1.7).
        limit(18 + 255 + d.signature.length, 'RRSIG');
        this.u16(d.typeCovered);
        this.u8(d.algorithm);
        this.u8(d.labels);
        this.u32(d.originalTtl);
        this.u32(d.expiration);
        this.u32(d.inception);
        this.u16(d.keyTag);
        this.name(d.signer, NameMode.Uncompressed);
        this.bytes(d.signature);
        return;
      case 47: {
        // RFC 4034 §4.1: the next name, not compressed (§4.1.1), then the type bitmap (§4.1.2).
        this.name(d.next, NameMode.Uncompressed);
        const bitmap = typeBitmap(d.types);
        this.bytes(bitmap);
        return;
      }
      default:
        bad(`unsupported RDATA type ${(d as { type: number }).type}`);
    }
  }

  /** The OPT pseudo-RR (RFC 6891 §6.1.2–6.1.3): version 0, extended rcode in the TTL's top byte. */
  opt(udpSize: number, extRcode: number, dnssecOk: boolean, compactOk = false): void {
    this.u8(0);
    this.u16(TYPE_OPT);
    this.u16(Math.min(MAX_MESSAGE, Math.max(512, udpSize | 0)));
    this.u32(((extRcode & 0xff) << 24) | (dnssecOk ? 0x8000 : 0) | (compactOk ? 0x4000 : 0));
    this.u16(0);
  }

  header(id: number, flags: number, qd: number, an: number, ns: number, ar: number): void {
    const b = this.buf;
    b.writeUInt16BE(id & 0xffff, 0);
    b.writeUInt16BE(flags & 0xffff, 2);
    b.writeUInt16BE(qd, 4);
    b.writeUInt16BE(an, 6);
    b.writeUInt16BE(ns, 8);
    b.writeUInt16BE(ar, 10);
  }

  /** A copy of the finished message. */
  take(): Buffer {
    return copyOf(this.buf, 0, this.pos);
  }
}

/** Lower-case presentation keys of every suffix of a label list (keys[j] = labels j..end). */
function suffixKeys(labels: Buffer[]): string[] {
  const keys = new Array<string>(labels.length);
  let key = '';
  for (let j = labels.length - 1; j >= 0; j--) {
    const t = labelText(labels[j], 0, labels[j].length).toLowerCase(); // pure ASCII: only A–Z change
    key = key === '' ? t : t + '.' + key;
    keys[j] = key;
  }
  return keys;
}

const writer = new Writer();
/** One RDATA is at most 65535 octets (RFC 1035 §3.2.1); a little more room for the overrun check. */
const canonicalWriter = new Writer(true, 65535 + 1024);

/**
 * A name in canonical wire form (RFC 4034 §6.2): uncompressed labels, lower
 * case, the root label last. Throws TypeError for a bad name.
 */
export function canonicalName(name: string): Buffer {
  return canonicalWriter.nameOnly(name);
}

/**
 * An RR's RDATA in canonical wire form (RFC 4034 §6.2 items 2–3): names
 * uncompressed and in lower case (for every type; the names dcmx signs are
 * lower case already, so RFC 6840 §5.1's NSEC exception changes nothing),
 * the rest as on the wire. Throws as {@link encodeResponse} does for bad RDATA.
 */
export function canonicalRData(d: RData, owner: string): Buffer {
  return canonicalWriter.rdataOnly(d, owner);
}

/** Writes the question (wire preferred) and returns QDCOUNT. */
function writeQuestion(w: Writer, question: Question | undefined, questionWire: Buffer | undefined): number {
  if (questionWire) {
    w.questionWire(questionWire);
    return 1;
  }
  if (question) {
    w.name(question.name, NameMode.Question);
    w.u16(question.type);
    w.u16(question.class);
    return 1;
  }
  return 0;
}

/**
 * Encodes a response to at most `limit` bytes: RFC 1035 §4.2.1's 512 without
 * EDNS, the client's payload size with it (RFC 6891 §6.2.5, at least 512),
 * 65535 for TCP; `limit` must be an integer ≥ 512 and is capped at 65535.
 *
 * Header: QR=1, RA=0 (authoritative only), AD=0; opcode, AA, RD, CD as
 * given; the low 4 bits of `rcode` in the header, the upper 8 in the OPT TTL
 * (RFC 6891 §6.1.3).
 *
 * Names are compressed (RFC 1035 §4.1.4), matching case-insensitively. Owner
 * names may point into the question, so an owner equal to the question name
 * or one of its suffixes shows the case the client sent (RFC 4343 §4.1);
 * names inside RDATA never point into the question and keep their stored
 * case; SRV targets are never compressed (RFC 2782). So everything after the
 * question depends on the question only case-insensitively: an encoded
 * answer may be reused for the same question in another case by overwriting
 * the question bytes (same length).
 *
 * If the message does not fit, additional RR sets (runs of RRs with the same
 * owner and type) that do not fit are left out whole, without TC (RFC 2181
 * §9); the OPT RR is always kept. If the answer and authority sections do
 * not fit, TC is set and only the header, question and OPT are sent
 * (RFC 2181 §9).
 *
 * Never throws for RR sets records.ts builds within wire limits; throws
 * TypeError/RangeError for programming errors (bad names or addresses,
 * rcode > 15 without `edns`, limit < 512) and RangeError for an RDATA over
 * 65535 octets or an HINFO string over 255 (records.ts does not bound those).
 */
export function encodeResponse(r: Response, limit: number): Buffer {
  if (!Number.isInteger(limit) || limit < 512) throw new RangeError(`dns wire: limit ${limit} is below 512 (RFC 1035 §4.2.1)`);
  if (limit > MAX_MESSAGE) limit = MAX_MESSAGE;
  const rcode = r.rcode;
  if (!Number.isInteger(rcode) || rcode < 0 || rcode > 0xfff) throw new RangeError(`dns wire: bad rcode ${rcode}`);
  if (rcode > 15 && !r.edns) throw new RangeError(`dns wire: rcode ${rcode} needs EDNS (RFC 6891 §6.1.3)`);
  const w = writer;
  w.reset();
  const qd = writeQuestion(w, r.question, r.questionWire);
  const afterQuestion = w.pos;
  const room = limit - (r.edns ? OPT_RR_SIZE : 0);
  let an = 0;
  let ns = 0;
  let ar = 0;
  let tc = false;
  if (afterQuestion > room) bad('question does not fit the limit');
  for (const rr of r.answer) {
    w.rr(rr);
    if (w.pos > room) break;
    an++;
  }
  if (an === r.answer.length) {
    for (const rr of r.authority) {
      w.rr(rr);
      if (w.pos > room) break;
      ns++;
    }
  }
  if (an < r.answer.length || ns < r.authority.length) {
    // RFC 2181 §9: required data does not fit — TC with header, question and OPT only.
    tc = true;
    w.rollback(afterQuestion, 0);
    an = ns = 0;
  } else {
    const add = r.additional;
    for (let i = 0; i < add.length; ) {
      // One RR set: consecutive RRs with the same owner and type.
      let j = i + 1;
      while (j < add.length && add[j].name === add[i].name && add[j].rdata.type === add[i].rdata.type) j++;
      const pos = w.pos;
      const mark = w.mark();
      let k = i;
      for (; k < j; k++) {
        w.rr(add[k]);
        if (w.pos > room) break;
      }
      if (k < j) w.rollback(pos, mark); // RFC 2181 §9: omit the whole RR set, no TC
      else ar += j - i;
      i = j;
    }
  }
  if (r.edns) {
    w.opt(r.edns.udpSize, rcode >>> 4, r.edns.do === true, r.edns.co === true);
    ar++;
  }
  const flags = QR | ((r.opcode & 0xf) << 11) | (r.aa ? AA : 0) | (tc ? TC : 0) | (r.rd ? RD : 0) | (r.cd ? CD : 0) | (rcode & 0xf);
  w.header(r.id, flags, qd, an, ns, ar);
  return w.take();
}

/**
 * Encodes RRs for AXFR/IXFR over TCP (RFC 5936 §2.2): packs as many whole
 * RRs as fit into each message of at most `targetSize` octets (default
 * 16384, clamped to 512..65535; an RR that alone exceeds the target gets a
 * message of its own, up to 65535), in order. Every message has QR=1, AA=1,
 * rcode 0 and the given id; the question (wire preferred) is in the first
 * message only (RFC 5936 §2.2.1 allows it there and makes it optional
 * after). Each message is compressed on its own. With no RRs one message
 * with just the question is returned. Returns message bodies without the
 * TCP length prefix. Throws as {@link encodeResponse} does for bad RRs.
 */
export function encodeTransfer(id: number, question: Question | undefined, questionWire: Buffer | undefined, rrs: RR[], targetSize = 16384): Buffer[] {
  const target = Math.min(MAX_MESSAGE, Math.max(512, Math.floor(targetSize) || 16384));
  const w = writer;
  const out: Buffer[] = [];
  let i = 0;
  do {
    w.reset();
    const qd = out.length === 0 ? writeQuestion(w, question, questionWire) : 0;
    let an = 0;
    while (i < rrs.length) {
      const pos = w.pos;
      const mark = w.mark();
      w.rr(rrs[i]);
      if (w.pos > target && an > 0) {
        w.rollback(pos, mark);
        break;
      }
      if (w.pos > MAX_MESSAGE) throw new RangeError(`dns wire: RR '${rrs[i].name}' does not fit a 65535-octet message`);
      an++;
      i++;
    }
    w.header(id, QR | AA, qd, an, 0, 0);
    out.push(w.take());
  } while (i < rrs.length);
  return out;
}

/**
 * Builds a NOTIFY request (RFC 1996 §3.5–3.7): opcode 4, QR=0, AA=1, RD=0,
 * question `<zone> SOA IN`, and the zone's SOA in the answer section when
 * given (a hint the secondary may use, §3.7). `zone` is a name in
 * presentation form ('' = root).
 */
export function encodeNotify(id: number, zone: string, soa?: RR): Buffer {
  const w = writer;
  w.reset();
  w.name(zone, NameMode.Question);
  w.u16(TYPE_SOA);
  w.u16(CLASS_IN);
  if (soa) w.rr(soa);
  w.header(id, (OPCODE_NOTIFY << 11) | AA, 1, soa ? 1 : 0, 0, 0);
  return w.take();
}

/**
 * Parses a reply to our NOTIFY just enough to check that it acknowledges it
 * (RFC 1996 §4.7): at least a header, QR=1 and opcode 4. Returns its id
 * (the caller matches it to the request) and the header rcode, or
 * undefined for anything else. Never throws.
 */
export function parseNotifyReply(buf: Buffer): { id: number; rcode: number } | undefined {
  if (buf.length < HEADER) return undefined;
  const flags = u16(buf, 2);
  if (!(flags & QR) || ((flags >>> 11) & 0xf) !== OPCODE_NOTIFY) return undefined;
  return { id: u16(buf, 0), rcode: flags & 0xf };
}

// ---------------------------------------------------------------------------
// Generic decoding (tests and tools)

function ipv6Text(buf: Buffer, p: number): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(u16(buf, p + 2 * i));
  // RFC 5952 §5: IPv4-mapped addresses in mixed notation.
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${buf[p + 12]}.${buf[p + 13]}.${buf[p + 14]}.${buf[p + 15]}`;
  }
  // RFC 5952 §4.2: the longest run (first on a tie) of two or more zero groups becomes '::'.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number[]): string => a.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

/**
 * The NSEC type bitmap (RFC 4034 §4.1.2): for each 256-type window in use,
 * in increasing order, the window number, the bitmap length (1–32 octets,
 * trailing zero octets left off) and the bitmap, most significant bit first.
 */
export function typeBitmap(types: readonly number[]): Buffer {
  const sorted = [...new Set(types)].sort((a, b) => a - b);
  const out: number[] = [];
  let i = 0;
  while (i < sorted.length) {
    const window = sorted[i] >>> 8;
    const bits = new Array<number>(32).fill(0);
    let last = 0;
    for (; i < sorted.length && sorted[i] >>> 8 === window; i++) {
      const low = sorted[i] & 0xff;
      bits[low >>> 3] |= 0x80 >>> (low & 7);
      last = low >>> 3;
    }
    out.push(window, last + 1, ...bits.slice(0, last + 1));
  }
  return Buffer.from(out);
}

/** The types of an NSEC type bitmap [s, e), strictly (RFC 4034 §4.1.2); undefined when malformed. */
function bitmapTypes(buf: Buffer, s: number, e: number): number[] | undefined {
  const types: number[] = [];
  let p = s;
  let prev = -1;
  while (p < e) {
    if (p + 2 > e) return undefined;
    const window = buf[p];
    const len = buf[p + 1];
    if (window <= prev || len < 1 || len > 32 || p + 2 + len > e) return undefined;
    for (let o = 0; o < len; o++) {
      const b = buf[p + 2 + o];
      for (let bit = 0; bit < 8; bit++) if (b & (0x80 >>> bit)) types.push(window * 256 + o * 8 + bit);
    }
    prev = window;
    p += 2 + len;
  }
  return types;
}

let rdNameEnd = 0;
/** A name inside RDATA [p, end): its text, with rdNameEnd set after it; undefined if malformed. */
function rdName(buf: Buffer, p: number, end: number): string | undefined {
  const e = skipName(buf, p, end);
  if (e < 0) return undefined;
  rdNameEnd = e;
  return nameText(buf, p);
}

/** RDATA of the types records.ts knows, decoded strictly; undefined when unknown or malformed. */
function decodeRData(buf: Buffer, type: number, s: number, e: number): RData | undefined {
  const len = e - s;
  switch (type) {
    case 1:
      return len === 4 ? { type: 1, address: `${buf[s]}.${buf[s + 1]}.${buf[s + 2]}.${buf[s + 3]}` } : undefined;
    case 28:
      return len === 16 ? { type: 28, address: ipv6Text(buf, s) } : undefined;
    case 2:
    case 5:
    case 12: {
      const target = rdName(buf, s, e);
      return target !== undefined && rdNameEnd === e ? { type, target } : undefined;
    }
    case 15: {
      if (len < 3) return undefined;
      const exchange = rdName(buf, s + 2, e);
      return exchange !== undefined && rdNameEnd === e ? { type: 15, preference: u16(buf, s), exchange } : undefined;
    }
    case 16: {
      if (len < 1) return undefined;
      const strings: Buffer[] = [];
      let p = s;
      while (p < e) {
        const l = buf[p];
        if (p + 1 + l > e) return undefined;
        strings.push(copyOf(buf, p + 1, p + 1 + l));
        p += 1 + l;
      }
      return { type: 16, strings };
    }
    case 33: {
      if (len < 7) return undefined;
      const target = rdName(buf, s + 6, e);
      return target !== undefined && rdNameEnd === e
        ? { type: 33, priority: u16(buf, s), weight: u16(buf, s + 2), port: u16(buf, s + 4), target }
        : undefined;
    }
    case 257: {
      if (len < 2) return undefined;
      const tagLen = buf[s + 1];
      if (tagLen < 1 || s + 2 + tagLen > e) return undefined;
      for (let i = s + 2; i < s + 2 + tagLen; i++) {
        const c = buf[i] | 0x20;
        if (!((c >= 0x61 && c <= 0x7a) || (buf[i] >= 0x30 && buf[i] <= 0x39))) return undefined;
      }
      return { type: 257, flags: buf[s], tag: buf.toString('latin1', s + 2, s + 2 + tagLen), value: copyOf(buf, s + 2 + tagLen, e) };
    }
    case 6: {
      const mname = rdName(buf, s, e);
      if (mname === undefined) return undefined;
      const rname = rdName(buf, rdNameEnd, e);
      if (rname === undefined || rdNameEnd + 20 !== e) return undefined;
      const t = rdNameEnd;
      return {
        type: 6, mname, rname, serial: u32(buf, t), refresh: u32(buf, t + 4), retry: u32(buf, t + 8), expire: u32(buf, t + 12), minimum: u32(buf, t + 16),
      };
    }
    case 13: {
      if (len < 2) return undefined;
      const l1 = buf[s];
      if (s + 1 + l1 >= e) return undefined;
      const l2 = buf[s + 1 + l1];
      if (s + 2 + l1 + l2 !== e) return undefined;
      return { type: 13, cpu: copyOf(buf, s + 1, s + 1 + l1), os: copyOf(buf, s + 2 + l1, e) };
    }
    case 44:
      return len >= 2 ? { type: 44, algorithm: buf[s], fptype: buf[s + 1], fingerprint: copyOf(buf, s + 2, e) } : undefined;
    case 52:
      return len >= 3 ? { type: 52, usage: buf[s], selector: buf[s + 1], matching: buf[s + 2], data: copyOf(buf, s + 3, e) } : undefined;
    case 43:
    case 59:
      return len >= 4 ? { type, keyTag: u16(buf, s), algorithm: buf[s + 2], digestType: buf[s + 3], digest: copyOf(buf, s + 4, e) } : undefined;
    case 48:
    case 60:
      return len >= 4 ? { type, flags: u16(buf, s), protocol: buf[s + 2], algorithm: buf[s + 3], publicKey: copyOf(buf, s + 4, e) } : undefined;
    case 46: {
      if (len < 19) return undefined;
      const signer = rdName(buf, s + 18, e);
      if (signer === undefined) return undefined;
      return {
        type: 46, typeCovered: u16(buf, s), algorithm: buf[s + 2], labels: buf[s + 3], originalTtl: u32(buf, s + 4),
        expiration: u32(buf, s + 8), inception: u32(buf, s + 12), keyTag: u16(buf, s + 16), signer, signature: copyOf(buf, rdNameEnd, e),
      };
    }
    case 47: {
      const next = rdName(buf, s, e);
      if (next === undefined) return undefined;
      const types = bitmapTypes(buf, rdNameEnd, e);
      return types ? { type: 47, next, types } : undefined;
    }
    default:
      return undefined;
  }
}

/** One RR in presentation form (tab-separated like records.ts formatRR). */
function rrText(buf: Buffer, owner: string, type: number, cls: number, ttl: number, s: number, e: number): string {
  if (cls === CLASS_IN) {
    const rdata = decodeRData(buf, type, s, e);
    if (rdata) return formatRR({ name: owner, ttl, rdata });
  }
  // RFC 3597 §5: generic type, class and RDATA.
  const hex = e > s ? ' ' + buf.toString('hex', s, e) : '';
  return `${fqdn(owner)}\t${ttl}\t${cls === CLASS_IN ? 'IN' : `CLASS${cls}`}\tTYPE${type}\t\\# ${e - s}${hex}`;
}

/**
 * A generic DNS message decoder for TESTS and tools (e.g. reading a
 * secondary's answers). Guarded by the same validation as {@link screen}
 * (any QR, opcode and QDCOUNT accepted): returns undefined for a packet
 * under 12 octets or one that fails the walk. Never throws.
 *
 * `flags` is the raw second header word; `rcode` is the full rcode, the
 * header's 4 bits plus the OPT TTL's extended rcode << 4 when there is an
 * OPT (RFC 6891 §6.1.3); `question` is the first question. RRs come in
 * presentation form: class IN and a type records.ts knows, with RDATA that
 * decodes strictly, through records.ts formatRR (owner and RDATA names with
 * case as on the wire, AAAA per RFC 5952); anything else (including OPT and
 * malformed RDATA) as `name ttl IN|CLASSn TYPEn \# len hex` (RFC 3597 §5).
 */
export function decodeMessage(buf: Buffer): {
  id: number; flags: number; rcode: number; qr: boolean; aa: boolean; tc: boolean;
  question?: Question; answer: string[]; authority: string[]; additional: string[];
} | undefined {
  if (buf.length < HEADER) return undefined;
  if (walk(buf) < 0) return undefined;
  const n = buf.length;
  const flags = u16(buf, 2);
  let rcode = flags & 0xf;
  if (wOpt >= 0) rcode |= buf[wOpt + 4] << 4;
  const qd = u16(buf, 4);
  let question: Question | undefined;
  let p = HEADER;
  for (let i = 0; i < qd; i++) {
    const e = skipName(buf, p, n);
    if (i === 0) question = { name: nameText(buf, p), type: u16(buf, e), class: u16(buf, e + 2) };
    p = e + 4;
  }
  const counts = [u16(buf, 6), u16(buf, 8), u16(buf, 10)];
  const sections: string[][] = [[], [], []];
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < counts[s]; i++) {
      const e = skipName(buf, p, n);
      const rdEnd = e + 10 + u16(buf, e + 8);
      sections[s].push(rrText(buf, nameText(buf, p), u16(buf, e), u16(buf, e + 2), u32(buf, e + 4), e + 10, rdEnd));
      p = rdEnd;
    }
  }
  const result: {
    id: number; flags: number; rcode: number; qr: boolean; aa: boolean; tc: boolean;
    question?: Question; answer: string[]; authority: string[]; additional: string[];
  } = {
    id: u16(buf, 0), flags, rcode, qr: (flags & QR) !== 0, aa: (flags & AA) !== 0, tc: (flags & TC) !== 0,
    answer: sections[0], authority: sections[1], additional: sections[2],
  };
  if (question) result.question = question;
  return result;
}
