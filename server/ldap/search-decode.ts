/**
 * Decoding a SearchRequest (RFC 4511 §4.5.1) and the request controls
 * (§4.1.11): the PDU has already been validated by ldap-framing.ts, so this is a
 * straight walk. Searches are most of an LDAP server's traffic; decoding
 * them straight into the directory's FilterInput, with no message or filter
 * objects in between, keeps a search's cost in the search itself (bench/ldap.ts
 * profiles). Anything unexpected returns undefined and the search is answered
 * with protocolError.
 */
import type { FilterInput } from '../directory/filter';
import { children, readInt, readTlv, type Tlv } from '../ber';
import type { Scope } from '../../storage/store';

/** RFC 4511 §4.5.1.2, and 3: subordinateSubtree (draft-sermersheim-ldap-subordinate-scope, OpenLDAP's "children"). */
export const SCOPES: Record<number, Scope> = { 0: 'base', 1: 'one', 2: 'sub', 3: 'children' };

/** A decoded SearchRequest. */
export interface SearchCall {
  messageId: number;
  base: string;
  /** 0 base, 1 one level, 2 subtree. */
  scope: number;
  sizeLimit: number;
  timeLimit: number;
  typesOnly: boolean;
  filter: FilterInput;
  /** Requested attributes, lower-cased. */
  attributes: string[];
  /** Request controls. */
  controls: RequestControl[];
}

const utf8 = (buf: Buffer, t: Tlv) => buf.toString('utf8', t.start, t.end);

/** Filter CHOICE (RFC 4511 §4.5.1.7). */
function decodeFilter(buf: Buffer, t: Tlv): FilterInput {
  switch (t.tag) {
    case 0xa0:
      return { type: 'and', filters: children(buf, t).map((c) => decodeFilter(buf, c)) };
    case 0xa1:
      return { type: 'or', filters: children(buf, t).map((c) => decodeFilter(buf, c)) };
    case 0xa2: {
      const [inner, ...rest] = children(buf, t);
      if (!inner || rest.length) throw new RangeError('not takes one filter');
      return { type: 'not', filter: decodeFilter(buf, inner) };
    }
    case 0xa3:
    case 0xa5:
    case 0xa6:
    case 0xa8: {
      const [attr, value, ...rest] = children(buf, t);
      if (!value || rest.length) throw new RangeError('bad assertion');
      const type = t.tag === 0xa3 ? 'equal' : t.tag === 0xa5 ? 'ge' : t.tag === 0xa6 ? 'le' : 'approx';
      return { type, attr: utf8(buf, attr), value: utf8(buf, value) };
    }
    case 0xa4: {
      const [attr, seq, ...rest] = children(buf, t);
      if (!seq || rest.length || seq.tag !== 0x30) throw new RangeError('bad substrings');
      let initial: string | undefined;
      let final: string | undefined;
      const any: string[] = [];
      for (const c of children(buf, seq)) {
        if (c.tag === 0x80) initial = utf8(buf, c);
        else if (c.tag === 0x81) any.push(utf8(buf, c));
        else if (c.tag === 0x82) final = utf8(buf, c);
        else throw new RangeError('bad substring choice');
      }
      return { type: 'substrings', attr: utf8(buf, attr), initial, any, final };
    }
    case 0x87:
      return { type: 'present', attr: utf8(buf, t) };
    case 0xa9: {
      let rule: string | undefined;
      let attr: string | undefined;
      let value: string | undefined;
      let dnAttributes = false;
      for (const c of children(buf, t)) {
        if (c.tag === 0x81) rule = utf8(buf, c);
        else if (c.tag === 0x82) attr = utf8(buf, c);
        else if (c.tag === 0x83) value = utf8(buf, c);
        else if (c.tag === 0x84) dnAttributes = buf[c.start] !== 0;
        else throw new RangeError('bad extensible match');
      }
      if (value === undefined) throw new RangeError('extensible match without value');
      return { type: 'extensible', rule, attr, value, dnAttributes };
    }
    default:
      throw new RangeError(`unknown filter tag 0x${t.tag.toString(16)}`);
  }
}

/** Decodes a validated PDU when it is a SearchRequest; undefined otherwise (or when anything looks odd). */
export function decodeSearchRequest(pdu: Buffer): SearchCall | undefined {
  try {
    const msg = readTlv(pdu, 0);
    const [id, op, ctl] = children(pdu, msg);
    if (!id || !op || op.tag !== 0x63 || id.tag !== 0x02) return undefined;
    const f = children(pdu, op);
    if (f.length !== 8) return undefined;
    const [base, scope, , size, time, typesOnly, filter, attrs] = f;
    const controls = decodeControls(pdu, ctl);
    if (!controls) return undefined;
    return {
      messageId: readInt(pdu, id),
      base: utf8(pdu, base),
      scope: readInt(pdu, scope),
      sizeLimit: readInt(pdu, size),
      timeLimit: readInt(pdu, time),
      typesOnly: pdu[typesOnly.start] !== 0,
      filter: decodeFilter(pdu, filter),
      attributes: children(pdu, attrs).map((a) => utf8(pdu, a).toLowerCase()),
      controls,
    };
  } catch {
    return undefined;
  }
}

/** A request control (RFC 4511 §4.1.11). */
export type RequestControl = { type: string; critical: boolean; value?: Buffer };

/**
 * The Controls of an LDAPMessage, given the component after its protocolOp
 * (none, or one that is not Controls [0], stands for no controls: RFC 4511 §4
 * ignores trailing components whose tags are not recognised); undefined when
 * malformed.
 */
export function decodeControls(pdu: Buffer, ctl: Tlv | undefined): RequestControl[] | undefined {
  const controls: RequestControl[] = [];
  if (!ctl || ctl.tag !== 0xa0) return controls;
  for (const c of children(pdu, ctl)) {
    const parts = children(pdu, c);
    if (!parts.length || parts[0].tag !== 0x04) return undefined;
    let critical = false;
    let value: Buffer | undefined;
    for (const p of parts.slice(1)) {
      if (p.tag === 0x01) critical = pdu[p.start] !== 0;
      else if (p.tag === 0x04) value = pdu.subarray(p.start, p.end);
      else return undefined;
    }
    controls.push({ type: utf8(pdu, parts[0]), critical, value });
  }
  return controls;
}

/** RFC 2696: the value of a paged results request control. */
export function decodePagedValue(v: Buffer | undefined): { size: number; cookie: Buffer } | undefined {
  if (!v) return undefined;
  try {
    const seq = readTlv(v, 0);
    const [size, cookie] = children(v, seq);
    if (!size || !cookie || size.tag !== 0x02 || cookie.tag !== 0x04) return undefined;
    return { size: readInt(v, size), cookie: v.subarray(cookie.start, cookie.end) };
  } catch {
    return undefined;
  }
}
