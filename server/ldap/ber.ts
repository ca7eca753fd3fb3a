/**
 * A small BER encoder for the one message on the search hot path,
 * SearchResultEntry (RFC 4511 §4.5.2). ldapjs builds an Attribute object per
 * attribute, a BerWriter per value and re-copies on every nested sequence;
 * encoding here in two passes (sizes, then one buffer) keeps a search
 * response to one allocation. Definite lengths only (RFC 4511 §5.1).
 */

type Value = string | Buffer;

const TAG_SEQUENCE = 0x30;
const TAG_SET = 0x31;
const TAG_OCTET_STRING = 0x04;
const TAG_INTEGER = 0x02;
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

  integer(n: number): void {
    const len = intContentLen(n);
    this.header(TAG_INTEGER, len);
    for (let i = len - 1; i >= 0; i--) this.buf[this.off++] = i >= 4 ? 0 : (n >>> (8 * i)) & 0xff;
  }
}

/**
 * Encodes one SearchResultEntry LDAPMessage. `attrs` are (type, values)
 * pairs; an empty value list is a typesOnly attribute.
 */
export function encodeSearchEntry(messageId: number, dn: string, attrs: readonly (readonly [string, readonly Value[]])[]): Buffer {
  const dnLen = byteLen(dn);
  // pass 1: sizes
  const typeLens: number[] = new Array(attrs.length);
  const valueLens: number[][] = new Array(attrs.length);
  const setLens: number[] = new Array(attrs.length);
  const partialLens: number[] = new Array(attrs.length);
  let attrsContent = 0;
  for (let i = 0; i < attrs.length; i++) {
    const [type, values] = attrs[i];
    typeLens[i] = byteLen(type);
    const vl: number[] = new Array(values.length);
    let set = 0;
    for (let j = 0; j < values.length; j++) {
      vl[j] = byteLen(values[j]);
      set += tlvSize(vl[j]);
    }
    valueLens[i] = vl;
    setLens[i] = set;
    partialLens[i] = tlvSize(typeLens[i]) + tlvSize(set);
    attrsContent += tlvSize(partialLens[i]);
  }
  const opContent = tlvSize(dnLen) + tlvSize(attrsContent);
  const msgContent = tlvSize(intContentLen(messageId)) + tlvSize(opContent);
  const w = new Writer(Buffer.allocUnsafe(tlvSize(msgContent)));
  // pass 2: bytes
  w.header(TAG_SEQUENCE, msgContent);
  w.integer(messageId);
  w.header(TAG_SEARCH_RESULT_ENTRY, opContent);
  w.octets(dn, dnLen);
  w.header(TAG_SEQUENCE, attrsContent);
  for (let i = 0; i < attrs.length; i++) {
    const [type, values] = attrs[i];
    w.header(TAG_SEQUENCE, partialLens[i]);
    w.octets(type, typeLens[i]);
    w.header(TAG_SET, setLens[i]);
    for (let j = 0; j < values.length; j++) w.octets(values[j], valueLens[i][j]);
  }
  return w.buf;
}
