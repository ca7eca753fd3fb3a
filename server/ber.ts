/**
 * The LDAP BER codec (RFC 4511 §5.1: definite lengths only), shared by the
 * LDAP endpoint (server/ldap) and the directory client of remote transfer units.
 *
 * Writing: SearchResultEntry (§4.5.2), the one message on the search hot
 * path, in two passes (sizes, then one buffer) so that a search response is
 * one allocation; LDAPResult under any response tag (§4.1.9: BindResponse,
 * SearchResultDone, ModifyResponse...), ExtendedResponse with responseName
 * and responseValue (§4.12), controls. Reading: a TLV walker for PDUs that
 * ldap-framing.ts has validated (search-decode.ts and request-decode.ts use it).
 */

type Value = string | Buffer;

const TAG_SEQUENCE = 0x30;
const TAG_SET = 0x31;
const TAG_OCTET_STRING = 0x04;
const TAG_INTEGER = 0x02;
const TAG_ENUMERATED = 0x0a;
const TAG_SEARCH_RESULT_ENTRY = 0x64; // [APPLICATION 4] constructed

function lenOfLen(n: number): number {
  return n < 0x80 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x1000000 ? 4 : 5;
}

function tlvSize(contentLen: number): number {
  return 1 + lenOfLen(contentLen) + contentLen;
}

function byteLen(v: Value): number {
  return typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : v.length;
}

function intContentLen(n: number): number {
  // Two's complement, minimal (RFC 4511 messageID is 0..2^31-1).
  if (n < 0x80) return 1;
  if (n < 0x8000) return 2;
  if (n < 0x800000) return 3;
  return n < 0x80000000 ? 4 : 5;
}

class Writer {
  off = 0;
  constructor(readonly buf: Buffer) {}

  header(tag: number, len: number): void {
    const b = this.buf;
    b[this.off++] = tag;
    if (len < 0x80) {
      b[this.off++] = len;
      return;
    }
    const k = lenOfLen(len) - 1;
    b[this.off++] = 0x80 | k;
    for (let i = k - 1; i >= 0; i--) b[this.off++] = (len >>> (8 * i)) & 0xff;
  }

  octets(v: Value, len: number): void {
    this.header(TAG_OCTET_STRING, len);
    if (typeof v === 'string') this.buf.write(v, this.off, 'utf8');
    else v.copy(this.buf, this.off);
    this.off += len;
  }

  integer(n: number, tag = TAG_INTEGER): void {
    const len = intContentLen(n);
    this.header(tag, len);
    for (let i = len - 1; i >= 0; i--) this.buf[this.off++] = i >= 4 ? 0 : (n >>> (8 * i)) & 0xff;
  }
}

/**
 * Scratch for encodeSearchEntry's first pass: per attribute its type's,
 * value set's and PartialAttribute's content lengths, and each value's
 * length. The encoder runs to its end without yielding, so one is enough.
 */
let attrLens = new Int32Array(3 * 64);
let valueLens = new Int32Array(256);

/** The sizes of a SearchResultEntry's parts (the per-attribute ones in attrLens and valueLens). */
interface EntrySizes {
  dnLen: number;
  attrsContent: number;
  opContent: number;
}

/** encodeSearchEntry's first pass: the sizes of the protocolOp, and of each attribute and value into the scratch arrays. */
function entrySizes(dn: string, attrs: readonly (readonly [string, readonly Value[]])[]): EntrySizes {
  const dnLen = byteLen(dn);
  let valueCount = 0;
  for (let i = 0; i < attrs.length; i++) valueCount += attrs[i][1].length;
  if (attrLens.length < 3 * attrs.length) attrLens = new Int32Array(6 * attrs.length);
  if (valueLens.length < valueCount) valueLens = new Int32Array(2 * valueCount);
  const a = attrLens;
  const v = valueLens;
  let attrsContent = 0;
  for (let i = 0, k = 0; i < attrs.length; i++) {
    const [type, values] = attrs[i];
    const typeLen = byteLen(type);
    let set = 0;
    for (let j = 0; j < values.length; j++, k++) {
      v[k] = byteLen(values[j]);
      set += tlvSize(v[k]);
    }
    const partial = tlvSize(typeLen) + tlvSize(set);
    a[3 * i] = typeLen;
    a[3 * i + 1] = set;
    a[3 * i + 2] = partial;
    attrsContent += tlvSize(partial);
  }
  return { dnLen, attrsContent, opContent: tlvSize(dnLen) + tlvSize(attrsContent) };
}

/** encodeSearchEntry's second pass: the protocolOp's bytes, sized by entrySizes just before. */
function writeEntryOp(w: Writer, dn: string, attrs: readonly (readonly [string, readonly Value[]])[], sizes: EntrySizes): void {
  const a = attrLens;
  const v = valueLens;
  w.header(TAG_SEARCH_RESULT_ENTRY, sizes.opContent);
  w.octets(dn, sizes.dnLen);
  w.header(TAG_SEQUENCE, sizes.attrsContent);
  for (let i = 0, k = 0; i < attrs.length; i++) {
    const [type, values] = attrs[i];
    w.header(TAG_SEQUENCE, a[3 * i + 2]);
    w.octets(type, a[3 * i]);
    w.header(TAG_SET, a[3 * i + 1]);
    for (let j = 0; j < values.length; j++, k++) w.octets(values[j], v[k]);
  }
}

/**
 * Encodes one SearchResultEntry LDAPMessage. `attrs` are (type, values)
 * pairs; an empty value list is a typesOnly attribute.
 */
export function encodeSearchEntry(messageId: number, dn: string, attrs: readonly (readonly [string, readonly Value[]])[]): Buffer {
  const sizes = entrySizes(dn, attrs);
  const msgContent = tlvSize(intContentLen(messageId)) + tlvSize(sizes.opContent);
  const w = new Writer(Buffer.allocUnsafe(tlvSize(msgContent)));
  w.header(TAG_SEQUENCE, msgContent);
  w.integer(messageId);
  writeEntryOp(w, dn, attrs, sizes);
  return w.buf;
}

/**
 * The protocolOp of encodeSearchEntry alone (the SearchResultEntry, RFC
 * 4511 §4.5.2), to be sent under any message ID with encodeMessage: the
 * same bytes for every search that returns the entry so.
 */
export function encodeSearchEntryOp(dn: string, attrs: readonly (readonly [string, readonly Value[]])[]): Buffer {
  const sizes = entrySizes(dn, attrs);
  const w = new Writer(Buffer.allocUnsafe(tlvSize(sizes.opContent)));
  writeEntryOp(w, dn, attrs, sizes);
  return w.buf;
}

/** An LDAPMessage (RFC 4511 §4.2) of `messageId` around an encoded protocolOp (and no controls). */
export function encodeMessage(messageId: number, op: Buffer): Buffer {
  const msgContent = tlvSize(intContentLen(messageId)) + op.length;
  const w = new Writer(Buffer.allocUnsafe(tlvSize(msgContent)));
  w.header(TAG_SEQUENCE, msgContent);
  w.integer(messageId);
  op.copy(w.buf, w.off);
  return w.buf;
}

// ---------------------------------------------------------------- results and controls

/** One definite-length TLV with a minimal length encoding (X.690 §8.1.3). */
export function tlv(tag: number, content: Buffer): Buffer {
  const len = content.length;
  const head = Buffer.allocUnsafe(1 + lenOfLen(len));
  const w = new Writer(head);
  w.header(tag, len);
  return Buffer.concat([head, content]);
}

function octets(tag: number, v: Value): Buffer {
  return tlv(tag, typeof v === 'string' ? Buffer.from(v, 'utf8') : v);
}

/** Minimal two's-complement content octets of a non-negative integer below 2^32 (X.690 §8.3.2). */
export function integerContent(n: number): Buffer {
  const len = intContentLen(n);
  const b = Buffer.allocUnsafe(len);
  for (let i = len - 1, j = 0; i >= 0; i--, j++) b[j] = i >= 4 ? 0 : (n >>> (8 * i)) & 0xff;
  return b;
}

/** A Control (RFC 4511 §4.1.11) with an optional value. */
export function encodeControl(type: string, critical: boolean, value?: Buffer): Buffer {
  const parts = [octets(TAG_OCTET_STRING, type)];
  if (critical) parts.push(BOOLEAN_TRUE);
  if (value) parts.push(octets(TAG_OCTET_STRING, value));
  return tlv(TAG_SEQUENCE, Buffer.concat(parts));
}

/** The value of a paged results control (RFC 2696 §2): realSearchControlValue ::= SEQUENCE { size INTEGER, cookie OCTET STRING }. */
export function encodePagedValue(size: number, cookie: Buffer): Buffer {
  return tlv(TAG_SEQUENCE, Buffer.concat([tlv(TAG_INTEGER, integerContent(size)), octets(TAG_OCTET_STRING, cookie)]));
}

/**
 * An LDAPMessage carrying an LDAPResult (RFC 4511 §4.1.9) under application
 * tag `opTag` (0x65 SearchResultDone, ...), with response controls.
 */
export function encodeLdapResult(messageId: number, opTag: number, code: number, matchedDN: string, diagnostic: string, controls: Buffer[] = []): Buffer {
  // In two passes, as encodeSearchEntry: every search ends with one.
  const matchedLen = byteLen(matchedDN);
  const diagnosticLen = byteLen(diagnostic);
  const resultContent = tlvSize(intContentLen(code)) + tlvSize(matchedLen) + tlvSize(diagnosticLen);
  let controlsLen = 0;
  for (const c of controls) controlsLen += c.length;
  const msgContent = tlvSize(intContentLen(messageId)) + tlvSize(resultContent) + (controls.length ? tlvSize(controlsLen) : 0);
  const w = new Writer(Buffer.allocUnsafe(tlvSize(msgContent)));
  w.header(TAG_SEQUENCE, msgContent);
  w.integer(messageId);
  w.header(opTag, resultContent);
  w.integer(code, TAG_ENUMERATED);
  w.octets(matchedDN, matchedLen);
  w.octets(diagnostic, diagnosticLen);
  if (controls.length) {
    w.header(0xa0, controlsLen);
    for (const c of controls) {
      c.copy(w.buf, w.off);
      w.off += c.length;
    }
  }
  return w.buf;
}

/**
 * An ExtendedResponse (RFC 4511 §4.12): the LDAPResult components, then
 * responseName [10] and responseValue [11] when given.
 */
export function encodeExtendedResponse(messageId: number, result: { code: number; matchedDN?: string; diagnostic?: string }, name?: string, value?: Buffer): Buffer {
  const parts = [tlv(0x0a, integerContent(result.code)), octets(TAG_OCTET_STRING, result.matchedDN ?? ''), octets(TAG_OCTET_STRING, result.diagnostic ?? '')];
  if (name !== undefined) parts.push(octets(0x8a, name));
  if (value !== undefined) parts.push(octets(0x8b, value));
  return tlv(TAG_SEQUENCE, Buffer.concat([tlv(TAG_INTEGER, integerContent(messageId)), tlv(0x78, Buffer.concat(parts))]));
}

/**
 * An IntermediateResponse (RFC 4511 §4.13): [APPLICATION 25] with
 * responseName [0] and responseValue [1] when given.
 */
export function encodeIntermediateResponse(messageId: number, name?: string, value?: Buffer): Buffer {
  const parts: Buffer[] = [];
  if (name !== undefined) parts.push(octets(0x80, name));
  if (value !== undefined) parts.push(octets(0x81, value));
  return tlv(TAG_SEQUENCE, Buffer.concat([tlv(TAG_INTEGER, integerContent(messageId)), tlv(0x79, Buffer.concat(parts))]));
}

/** The LDAPMessage `message` (one of ours, without controls) with `controls` (RFC 4511 §4.1.11) appended. */
export function withControls(message: Buffer, controls: Buffer[]): Buffer {
  if (!controls.length) return message;
  const msg = readTlv(message, 0);
  return tlv(TAG_SEQUENCE, Buffer.concat([message.subarray(msg.start, msg.end), tlv(0xa0, Buffer.concat(controls))]));
}

/** An OCTET STRING element (or one under an implicit tag). */
export function encodeOctets(v: Value, tag = TAG_OCTET_STRING): Buffer {
  return octets(tag, v);
}

/** A BOOLEAN TRUE element (DER: FALSE is the DEFAULT of the fields we write, and is left out). */
export const BOOLEAN_TRUE = Buffer.from([0x01, 0x01, 0xff]);

// ---------------------------------------------------------------- reading (validated PDUs only)

/** One element of a BER buffer: tag and the content's bounds. */
export interface Tlv {
  tag: number;
  start: number;
  end: number;
}

/**
 * Reads the element at `off`. Meant for PDUs that ldap-framing.ts already
 * validated (lengths consistent, definite, at most 4 length octets); it still
 * throws RangeError rather than read past `limit`.
 */
export function readTlv(buf: Buffer, off: number, limit = buf.length): Tlv {
  if (off + 2 > limit) throw new RangeError('truncated element');
  const tag = buf[off];
  let len = buf[off + 1];
  let start = off + 2;
  if (len & 0x80) {
    const k = len & 0x7f;
    if (k === 0 || k > 4 || start + k > limit) throw new RangeError('bad length');
    len = 0;
    for (let i = 0; i < k; i++) len = len * 256 + buf[start + i];
    start += k;
  }
  if (start + len > limit) throw new RangeError('element overruns its parent');
  return { tag, start, end: start + len };
}

/** The children of a constructed element. */
export function children(buf: Buffer, t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let off = t.start; off < t.end;) {
    const c = readTlv(buf, off, t.end);
    out.push(c);
    off = c.end;
  }
  return out;
}

/** An INTEGER or ENUMERATED content as a number (two's complement, at most 6 octets). */
export function readInt(buf: Buffer, t: Tlv): number {
  const n = t.end - t.start;
  if (n < 1 || n > 6) throw new RangeError('bad integer');
  return buf.readIntBE(t.start, n);
}

/**
 * The messageID and protocolOp of the LDAPMessage at `off` (RFC 4511
 * §4.1.1), and the offset just past it. For messages ldap-framing.ts validated or
 * our own encoders wrote; throws RangeError on anything else.
 */
export function messageHead(buf: Buffer, off = 0): { id: number; op: Tlv; end: number } {
  const msg = readTlv(buf, off);
  const id = readTlv(buf, msg.start, msg.end);
  if (id.tag !== 0x02) throw new RangeError('messageID is not an INTEGER');
  return { id: readInt(buf, id), op: readTlv(buf, id.end, msg.end), end: msg.end };
}
