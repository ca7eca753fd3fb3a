/**
 * Decoding the update requests ourselves (RFC 4511 §4.6 Modify, §4.7 Add,
 * §4.8 Delete, §4.9 ModifyDN, §4.10 Compare) and the Password Modify
 * extended operation (RFC 3062), as search-decode.ts does for searches.
 *
 * ldapjs turns every LDAPDN of these requests into its own DN object while
 * parsing: a DN it cannot parse throws inside its parser (the connection
 * was dropped instead of answering invalidDNSyntax), and its unescaping
 * reads `\+e` as the hex pair `+e` (`parseInt('+e', 16)` is 14). Here the
 * DNs stay the strings the client sent; the directory parses them with
 * schema/dn.ts (RFC 4514) and answers 34 for a bad one. The PDU has been
 * validated by framing.ts; anything unexpected returns undefined and the PDU
 * goes to ldapjs as before.
 */
import { children, readTlv, type Tlv } from './ber';
import { decodeControls, type RequestControl } from './search-decode';

/** RFC 3062 §2. */
export const PASSWORD_MODIFY_OID = '1.3.6.1.4.1.4203.1.11.1';

/** RFC 4511 §4.14.1. */
export const START_TLS_OID = '1.3.6.1.4.1.1466.20037';

interface Common {
  messageId: number;
  controls: RequestControl[];
}

/** RFC 4511 §4.6 operation, and RFC 4525 §2 increment, by their ENUMERATED values. */
const MODIFY_OPERATIONS = ['add', 'delete', 'replace', 'increment'] as const;

/** One change of a ModifyRequest: its operation and PartialAttribute, values as bytes. */
export interface ModifyChange {
  operation: (typeof MODIFY_OPERATIONS)[number];
  type: string;
  values: Buffer[];
}

/** A decoded request of one of the operations answered without ldapjs. */
export type UpdateCall = Common & (
  | { op: 'modify'; entry: string; changes: ModifyChange[] }
  | { op: 'add'; entry: string; attributes: { type: string; values: Buffer[] }[] }
  | { op: 'delete'; entry: string }
  | { op: 'modifyDN'; entry: string; newRdn: string; deleteOldRdn: boolean; newSuperior?: string }
  | { op: 'compare'; entry: string; attribute: string; value: Buffer }
  /** `malformed` is set when the request value is not a PasswdModifyRequestValue (protocolError). */
  | { op: 'passwordModify'; userIdentity?: string; oldPassword?: Buffer; newPassword?: Buffer; malformed?: boolean }
  /** The connection layer answers it (it changes the transport); a request value is a protocolError (§4.14.1). */
  | { op: 'startTLS'; malformed: boolean }
);

/**
 * Every LDAP request by its protocolOp tag (RFC 4511 §4.2 ff.): its name as
 * controls.ts knows it, and the tag of its response (none for unbind and abandon).
 */
export const REQUESTS: Record<number, { name: string; responseTag?: number }> = {
  0x60: { name: 'BindRequest', responseTag: 0x61 },
  0x42: { name: 'UnbindRequest' },
  0x63: { name: 'SearchRequest', responseTag: 0x65 },
  0x66: { name: 'ModifyRequest', responseTag: 0x67 },
  0x68: { name: 'AddRequest', responseTag: 0x69 },
  0x4a: { name: 'DeleteRequest', responseTag: 0x6b },
  0x6c: { name: 'ModifyDnRequest', responseTag: 0x6d },
  0x6e: { name: 'CompareRequest', responseTag: 0x6f },
  0x50: { name: 'AbandonRequest' },
  0x77: { name: 'ExtendedRequest', responseTag: 0x78 },
};

/** The request tag of each operation decoded here. */
const TAG_OF: Record<UpdateCall['op'], number> = { modify: 0x66, add: 0x68, delete: 0x4a, modifyDN: 0x6c, compare: 0x6e, passwordModify: 0x77, startTLS: 0x77 };

/** Operation names as controls.ts knows them, and the response tag of each. */
export const OPERATIONS = Object.fromEntries(
  Object.entries(TAG_OF).map(([op, tag]) => [op, REQUESTS[tag] as { name: string; responseTag: number }]),
) as Record<UpdateCall['op'], { name: string; responseTag: number }>;

const utf8 = (buf: Buffer, t: Tlv) => buf.toString('utf8', t.start, t.end);
const bytes = (buf: Buffer, t: Tlv) => Buffer.from(buf.subarray(t.start, t.end));

function expect(t: Tlv | undefined, tag: number): Tlv {
  if (!t || t.tag !== tag) throw new RangeError(`expected tag 0x${tag.toString(16)}`);
  return t;
}

/** Decodes a validated PDU when it is one of the requests above; undefined otherwise. */
export function decodeUpdateRequest(pdu: Buffer): UpdateCall | undefined {
  try {
    const msg = readTlv(pdu, 0);
    const [id, op, ctl, ...extra] = children(pdu, msg);
    if (!id || !op || id.tag !== 0x02 || extra.length) return undefined;
    const controls = decodeControls(pdu, ctl);
    if (!controls) return undefined;
    const n = id.end - id.start;
    if (n < 1 || n > 4) return undefined;
    const common: Common = { messageId: pdu.readIntBE(id.start, n), controls };
    switch (op.tag) {
      case 0x66: {
        // ModifyRequest ::= [APPLICATION 6] SEQUENCE { object LDAPDN, changes SEQUENCE OF change SEQUENCE {
        //   operation ENUMERATED { add (0), delete (1), replace (2), ..., increment (3) (RFC 4525) }, modification PartialAttribute } }
        const [object, list, ...rest] = children(pdu, op);
        if (rest.length) return undefined;
        const changes = children(pdu, expect(list, 0x30)).map((c): ModifyChange => {
          const [operation, attr, ...more] = children(pdu, expect(c, 0x30));
          const e = expect(operation, 0x0a);
          const n = e.end - e.start;
          const kind = n === 1 ? MODIFY_OPERATIONS[pdu[e.start]] : undefined;
          if (!kind || more.length) throw new RangeError('bad change');
          const [type, vals, ...extra] = children(pdu, expect(attr, 0x30));
          if (extra.length) throw new RangeError('bad modification');
          return { operation: kind, type: utf8(pdu, expect(type, 0x04)), values: children(pdu, expect(vals, 0x31)).map((v) => bytes(pdu, expect(v, 0x04))) };
        });
        return { ...common, op: 'modify', entry: utf8(pdu, expect(object, 0x04)), changes };
      }
      case 0x68: {
        // AddRequest ::= [APPLICATION 8] SEQUENCE { entry LDAPDN, attributes AttributeList }
        const [entry, list, ...rest] = children(pdu, op);
        if (rest.length) return undefined;
        const attributes = children(pdu, expect(list, 0x30)).map((a) => {
          const [type, vals, ...more] = children(pdu, expect(a, 0x30));
          if (more.length) throw new RangeError('bad attribute');
          return { type: utf8(pdu, expect(type, 0x04)), values: children(pdu, expect(vals, 0x31)).map((v) => bytes(pdu, expect(v, 0x04))) };
        });
        return { ...common, op: 'add', entry: utf8(pdu, expect(entry, 0x04)), attributes };
      }
      case 0x4a:
        // DelRequest ::= [APPLICATION 10] LDAPDN
        return { ...common, op: 'delete', entry: utf8(pdu, op) };
      case 0x6c: {
        // ModifyDNRequest ::= [APPLICATION 12] SEQUENCE { entry, newrdn, deleteoldrdn BOOLEAN, newSuperior [0] LDAPDN OPTIONAL }
        const [entry, newRdn, del, sup, ...rest] = children(pdu, op);
        if (rest.length) return undefined;
        const d = expect(del, 0x01);
        return {
          ...common, op: 'modifyDN', entry: utf8(pdu, expect(entry, 0x04)), newRdn: utf8(pdu, expect(newRdn, 0x04)),
          deleteOldRdn: d.end > d.start && pdu[d.start] !== 0, newSuperior: sup ? utf8(pdu, expect(sup, 0x80)) : undefined,
        };
      }
      case 0x6e: {
        // CompareRequest ::= [APPLICATION 14] SEQUENCE { entry LDAPDN, ava AttributeValueAssertion }
        const [entry, ava, ...rest] = children(pdu, op);
        if (rest.length) return undefined;
        const [desc, value, ...more] = children(pdu, expect(ava, 0x30));
        if (more.length) return undefined;
        return { ...common, op: 'compare', entry: utf8(pdu, expect(entry, 0x04)), attribute: utf8(pdu, expect(desc, 0x04)), value: bytes(pdu, expect(value, 0x04)) };
      }
      case 0x77: {
        // ExtendedRequest ::= [APPLICATION 23] SEQUENCE { requestName [0], requestValue [1] OPTIONAL }
        const [name, value] = children(pdu, op);
        if (!name || name.tag !== 0x80) return undefined;
        const oid = utf8(pdu, name);
        if (oid === START_TLS_OID) return { ...common, op: 'startTLS', malformed: value !== undefined };
        if (oid !== PASSWORD_MODIFY_OID) return undefined;
        return { ...common, op: 'passwordModify', ...decodePasswdModifyValue(pdu, value) };
      }
      default:
        return undefined;
    }
  } catch {
    return undefined;
  }
}

/** Protocol op tags of the requests above that are never handed to ldapjs (Password Modify shares 0x77 with other extended ops). */
const OWN_TAGS: Record<number, UpdateCall['op']> = Object.fromEntries((['modify', 'add', 'delete', 'modifyDN', 'compare'] as const).map((op) => [TAG_OF[op], op]));

/**
 * For a PDU decodeUpdateRequest declined: when it is nevertheless a modify,
 * add, delete, modifyDN or compare (an unknown modify operation, say), its
 * message id and operation, to be answered with protocolError (RFC 4511
 * §4.1.1) rather than by ldapjs.
 */
export function undecodedUpdate(pdu: Buffer): { messageId: number; op: UpdateCall['op'] } | undefined {
  try {
    const [id, op] = children(pdu, readTlv(pdu, 0));
    const kind = op && OWN_TAGS[op.tag];
    const n = id ? id.end - id.start : 0;
    if (!kind || id.tag !== 0x02 || n < 1 || n > 4) return undefined;
    return { messageId: pdu.readIntBE(id.start, n), op: kind };
  } catch {
    return undefined;
  }
}

/**
 * RFC 3062 §2: PasswdModifyRequestValue ::= SEQUENCE { userIdentity [0]
 * OPTIONAL, oldPasswd [1] OPTIONAL, newPasswd [2] OPTIONAL }; the value
 * itself may be absent (change the bound user's password to a generated one).
 */
function decodePasswdModifyValue(pdu: Buffer, value: Tlv | undefined): { userIdentity?: string; oldPassword?: Buffer; newPassword?: Buffer; malformed?: boolean } {
  if (!value) return {};
  if (value.tag !== 0x81) return { malformed: true };
  try {
    const seq = readTlv(pdu, value.start, value.end);
    if (seq.tag !== 0x30 || seq.end !== value.end) return { malformed: true };
    const out: { userIdentity?: string; oldPassword?: Buffer; newPassword?: Buffer } = {};
    let last = -1;
    for (const c of children(pdu, seq)) {
      const k = c.tag - 0x80;
      if (k < 0 || k > 2 || k <= last) return { malformed: true };
      last = k;
      if (k === 0) out.userIdentity = utf8(pdu, c);
      else if (k === 1) out.oldPassword = bytes(pdu, c);
      else out.newPassword = bytes(pdu, c);
    }
    return out;
  } catch {
    return { malformed: true };
  }
}
