/**
 * The client side of the LDAP wire (RFC 4511) and of Content Sync (RFC 4533):
 * encoders for the requests a directory client sends, decoders for the
 * responses it reads. Every response PDU has passed ldap-framing.ts's
 * validateLdapMessage (BER sound, RFC 4511 shape at the level of tags), so
 * the decoders walk it with server/ber.ts; the control and intermediate
 * values, which framing sees as opaque OCTET STRINGs, are validated here
 * before they are walked. A malformed value is a ProtocolError, never a crash.
 */
import { BOOLEAN_TRUE, children, encodeControl, encodeOctets, integerContent, readInt, readTlv, tlv, type Tlv } from '../ber';
import { NOTICE_OF_DISCONNECTION_OID, START_TLS_OID, SYNC_DONE_OID, SYNC_INFO_OID, SYNC_REQUEST_OID, SYNC_STATE_OID, validateBer } from '../ldap-framing';
import type { FilterInput } from '../directory/filter';

/** A response that does not have the shape its RFC gives it; the connection is closed. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/** A non-success LDAPResult (RFC 4511 §4.1.9), as the directory sent it. */
export class LdapResultError extends Error {
  constructor(readonly code: number, readonly diagnostic: string, readonly matchedDN = '') {
    super(`LDAP result ${code}${diagnostic ? `: ${diagnostic}` : ''}`);
    this.name = 'LdapResultError';
  }
}

/** RFC 4511 result codes the client acts on. */
export const RESULT = {
  success: 0,
  sizeLimitExceeded: 4,
  noSuchObject: 32,
  invalidCredentials: 49,
  busy: 51,
  unavailable: 52,
  unwillingToPerform: 53,
  /** RFC 4533 §2.5: e-syncRefreshRequired. */
  syncRefreshRequired: 4096,
} as const;

export { NOTICE_OF_DISCONNECTION_OID, START_TLS_OID, SYNC_DONE_OID, SYNC_INFO_OID, SYNC_REQUEST_OID, SYNC_STATE_OID };

const octets = (tag: number, v: string | Buffer): Buffer => encodeOctets(v, tag);
const int = (n: number, tag = 0x02): Buffer => tlv(tag, integerContent(n));
/** BOOLEAN FALSE (typesOnly), written out; TRUE is ber.ts's. */
const BOOLEAN_FALSE = Buffer.from([0x01, 0x01, 0x00]);

/** One LDAPMessage (RFC 4511 §4.1.1): messageID, protocolOp, controls [0] when any. */
export function encodeMessage(id: number, op: Buffer, controls: Buffer[] = []): Buffer {
  const parts = [int(id), op];
  if (controls.length) parts.push(tlv(0xa0, Buffer.concat(controls)));
  return tlv(0x30, Buffer.concat(parts));
}

/** BindRequest, simple authentication (RFC 4511 §4.2): version 3. */
export function encodeSimpleBind(dn: string, password: string): Buffer {
  return tlv(0x60, Buffer.concat([int(3), octets(0x04, dn), octets(0x80, password)]));
}

/** UnbindRequest (RFC 4511 §4.3): [APPLICATION 2] NULL. */
export const UNBIND_REQUEST = Buffer.from([0x42, 0x00]);

/** AbandonRequest (RFC 4511 §4.11) of message `id`. */
export function encodeAbandon(id: number): Buffer {
  return tlv(0x50, integerContent(id));
}

/** ExtendedRequest (RFC 4511 §4.12). */
export function encodeExtended(oid: string, value?: Buffer): Buffer {
  const parts = [octets(0x80, oid)];
  if (value) parts.push(octets(0x81, value));
  return tlv(0x77, Buffer.concat(parts));
}

/** What a search asks for (RFC 4511 §4.5.1). */
export interface SearchRequest {
  base: string;
  /** 0 baseObject, 1 singleLevel, 2 wholeSubtree. */
  scope: 0 | 1 | 2;
  filter: FilterInput;
  /** Attribute selection; empty asks for every user attribute. */
  attributes: string[];
  /** Entries the server may return (0: no limit). */
  sizeLimit?: number;
  /** Seconds the server may spend (0: no limit). */
  timeLimit?: number;
}

/** Filter (RFC 4511 §4.5.1.7) for the forms a client of ours builds; others are a TypeError. */
export function encodeFilter(f: FilterInput): Buffer {
  switch (f.type) {
    case 'and':
      return tlv(0xa0, Buffer.concat(f.filters.map(encodeFilter)));
    case 'or':
      return tlv(0xa1, Buffer.concat(f.filters.map(encodeFilter)));
    case 'not':
      return tlv(0xa2, encodeFilter(f.filter));
    case 'equal':
      return tlv(0xa3, Buffer.concat([octets(0x04, f.attr), octets(0x04, f.value)]));
    case 'present':
      return octets(0x87, f.attr);
    default:
      throw new TypeError(`filter type ${f.type} is not encoded by the directory client`);
  }
}

/** SearchRequest (RFC 4511 §4.5.1); derefAliases neverDerefAliases, typesOnly FALSE. */
export function encodeSearch(r: SearchRequest): Buffer {
  return tlv(0x63, Buffer.concat([
    octets(0x04, r.base),
    int(r.scope, 0x0a),
    int(0, 0x0a),
    int(r.sizeLimit ?? 0),
    int(r.timeLimit ?? 0),
    BOOLEAN_FALSE,
    encodeFilter(r.filter),
    tlv(0x30, Buffer.concat(r.attributes.map((a) => octets(0x04, a)))),
  ]));
}

/** RFC 4533 §2.2 Sync Request control: mode refreshOnly (1) or refreshAndPersist (3), cookie, reloadHint. Critical. */
export function encodeSyncRequest(mode: 'refreshOnly' | 'refreshAndPersist', cookie?: string, reloadHint = false): Buffer {
  const parts = [int(mode === 'refreshOnly' ? 1 : 3, 0x0a)];
  if (cookie !== undefined) parts.push(octets(0x04, cookie));
  if (reloadHint) parts.push(BOOLEAN_TRUE);
  return encodeControl(SYNC_REQUEST_OID, true, tlv(0x30, Buffer.concat(parts)));
}

// ---------------------------------------------------------------- responses

/** A response control (RFC 4511 §4.1.11). */
export interface Control {
  type: string;
  critical: boolean;
  value?: Buffer;
}

/** One LDAPMessage from the server, split into its parts. */
export interface Response {
  id: number;
  /** The protocolOp's tag (0x61 BindResponse, 0x64 SearchResultEntry, ...). */
  tag: number;
  pdu: Buffer;
  op: Tlv;
  controls: Control[];
}

/** Splits a validated PDU into messageID, protocolOp and controls. */
export function decodeResponse(pdu: Buffer): Response {
  const msg = readTlv(pdu, 0);
  const [idT, op, ctl] = children(pdu, msg);
  const controls: Control[] = [];
  if (ctl && ctl.tag === 0xa0) {
    for (const c of children(pdu, ctl)) {
      const [t, ...rest] = children(pdu, c);
      const crit = rest.find((x) => x.tag === 0x01);
      const val = rest.find((x) => x.tag === 0x04);
      controls.push({ type: text(pdu, t), critical: crit ? pdu[crit.start] !== 0 : false, value: val ? pdu.subarray(val.start, val.end) : undefined });
    }
  }
  return { id: readInt(pdu, idT), tag: op.tag, pdu, op, controls };
}

function text(buf: Buffer, t: Tlv): string {
  return buf.toString('utf8', t.start, t.end);
}

/** The LDAPResult fields (RFC 4511 §4.1.9) of a response. */
export interface LdapResult {
  code: number;
  matchedDN: string;
  diagnostic: string;
}

/** The LDAPResult of a BindResponse, SearchResultDone, ExtendedResponse... */
export function decodeResult(r: Response): LdapResult {
  const [code, matched, diag] = children(r.pdu, r.op);
  return { code: readInt(r.pdu, code), matchedDN: text(r.pdu, matched), diagnostic: text(r.pdu, diag) };
}

/** responseName [10] and responseValue [11] of an ExtendedResponse (RFC 4511 §4.12). */
export function decodeExtendedResponse(r: Response): LdapResult & { name?: string; value?: Buffer } {
  const out: LdapResult & { name?: string; value?: Buffer } = decodeResult(r);
  for (const c of children(r.pdu, r.op)) {
    if (c.tag === 0x8a) out.name = text(r.pdu, c);
    else if (c.tag === 0x8b) out.value = r.pdu.subarray(c.start, c.end);
  }
  return out;
}

/** responseName [0] and responseValue [1] of an IntermediateResponse (RFC 4511 §4.13). */
export function decodeIntermediate(r: Response): { name?: string; value?: Buffer } {
  const out: { name?: string; value?: Buffer } = {};
  for (const c of children(r.pdu, r.op)) {
    if (c.tag === 0x80) out.name = text(r.pdu, c);
    else if (c.tag === 0x81) out.value = r.pdu.subarray(c.start, c.end);
  }
  return out;
}

/** A SearchResultEntry (RFC 4511 §4.5.2): attribute names as the server spelled them, values as UTF-8 text. */
export interface Entry {
  dn: string;
  attrs: Record<string, string[]>;
}

/** Decodes a SearchResultEntry; attribute names keep the server's spelling (look them up case-insensitively). */
export function decodeEntry(r: Response): Entry {
  const [dnT, list] = children(r.pdu, r.op);
  const attrs: Record<string, string[]> = {};
  for (const pa of children(r.pdu, list)) {
    const [type, vals] = children(r.pdu, pa);
    attrs[text(r.pdu, type)] = children(r.pdu, vals).map((v) => text(r.pdu, v));
  }
  return { dn: text(r.pdu, dnT), attrs };
}

// ---------------------------------------------------------------- RFC 4533 values

/** syncUUID (RFC 4533 §2.1): 16 octets, written as RFC 4122 text (lower case), as entryUUID shows it. */
export function uuidText(b: Buffer): string {
  if (b.length !== 16) throw new ProtocolError(`syncUUID of ${b.length} octets (16 expected)`);
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Walks a control or intermediate value after checking it is one sound BER element. */
function valueRoot(v: Buffer | undefined, what: string): Tlv {
  if (!v || v.length === 0) throw new ProtocolError(`${what} without a value`);
  try {
    validateBer(v, 8);
    return readTlv(v, 0);
  } catch (e) {
    throw new ProtocolError(`${what}: ${(e as Error).message}`);
  }
}

const SYNC_STATES = ['present', 'add', 'modify', 'delete'] as const;
/** The state of an entry in a Content Sync (RFC 4533 §2.3). */
export type SyncState = (typeof SYNC_STATES)[number];

/** RFC 4533 §2.3 syncStateValue ::= SEQUENCE { state ENUMERATED, entryUUID syncUUID, cookie syncCookie OPTIONAL }. */
export function decodeSyncState(c: Control): { state: SyncState; uuid: string; cookie?: string } {
  const v = c.value!;
  const root = valueRoot(v, 'Sync State control');
  const [st, id, cookie] = root.tag === 0x30 ? children(v, root) : [];
  if (!st || st.tag !== 0x0a || !id || id.tag !== 0x04 || (cookie && cookie.tag !== 0x04)) throw new ProtocolError('Sync State control: not a syncStateValue');
  const state = SYNC_STATES[readInt(v, st)];
  if (!state) throw new ProtocolError('Sync State control: unknown state');
  return { state, uuid: uuidText(v.subarray(id.start, id.end)), cookie: cookie ? text(v, cookie) : undefined };
}

/** RFC 4533 §2.5 syncDoneValue ::= SEQUENCE { cookie syncCookie OPTIONAL, refreshDeletes BOOLEAN DEFAULT FALSE }. */
export function decodeSyncDone(c: Control): { cookie?: string; refreshDeletes: boolean } {
  const v = c.value;
  if (!v) return { refreshDeletes: false };
  const root = valueRoot(v, 'Sync Done control');
  if (root.tag !== 0x30) throw new ProtocolError('Sync Done control: not a syncDoneValue');
  let cookie: string | undefined;
  let refreshDeletes = false;
  for (const k of children(v, root)) {
    if (k.tag === 0x04) cookie = text(v, k);
    else if (k.tag === 0x01) refreshDeletes = v[k.start] !== 0;
  }
  return { cookie, refreshDeletes };
}

/** RFC 4533 §2.5 syncInfoValue, one of its four choices. */
export type SyncInfo =
  | { kind: 'newcookie'; cookie: string }
  | { kind: 'refreshDelete' | 'refreshPresent'; cookie?: string; refreshDone: boolean }
  | { kind: 'syncIdSet'; cookie?: string; refreshDeletes: boolean; uuids: string[] };

/** Decodes the value of a Sync Info intermediate response (RFC 4533 §2.5). */
export function decodeSyncInfo(v: Buffer | undefined): SyncInfo {
  const root = valueRoot(v, 'Sync Info message');
  const b = v!;
  switch (root.tag) {
    case 0x80: // newcookie [0] syncCookie
      return { kind: 'newcookie', cookie: text(b, root) };
    case 0xa1: // refreshDelete [1] SEQUENCE { cookie OPTIONAL, refreshDone BOOLEAN DEFAULT TRUE }
    case 0xa2: {
      let cookie: string | undefined;
      let refreshDone = true;
      for (const k of children(b, root)) {
        if (k.tag === 0x04) cookie = text(b, k);
        else if (k.tag === 0x01) refreshDone = b[k.start] !== 0;
      }
      return { kind: root.tag === 0xa1 ? 'refreshDelete' : 'refreshPresent', cookie, refreshDone };
    }
    case 0xa3: { // syncIdSet [3] SEQUENCE { cookie OPTIONAL, refreshDeletes BOOLEAN DEFAULT FALSE, syncUUIDs SET OF syncUUID }
      let cookie: string | undefined;
      let refreshDeletes = false;
      let uuids: string[] | undefined;
      for (const k of children(b, root)) {
        if (k.tag === 0x04) cookie = text(b, k);
        else if (k.tag === 0x01) refreshDeletes = b[k.start] !== 0;
        else if (k.tag === 0x31) uuids = children(b, k).map((u) => uuidText(b.subarray(u.start, u.end)));
      }
      if (!uuids) throw new ProtocolError('Sync Info syncIdSet without syncUUIDs');
      return { kind: 'syncIdSet', cookie, refreshDeletes, uuids };
    }
    default:
      throw new ProtocolError(`Sync Info message with tag 0x${root.tag.toString(16)}`);
  }
}
