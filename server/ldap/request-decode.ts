/**
 * Decoding the requests other than search (search-decode.ts): RFC 4511 §4.2
 * Bind, §4.6 Modify, §4.7 Add, §4.8 Delete, §4.9 ModifyDN, §4.10 Compare,
 * §4.12 Extended (with RFC 3062 Password Modify's request value), and the
 * table of every request by its protocolOp tag, which the connection
 * (connection.ts) dispatches from.
 *
 * The DNs stay the strings the client sent; the directory parses them with
 * schema/dn.ts (RFC 4514) and answers 34 for a bad one. (ldapjs, which once
 * decoded these, turned every LDAPDN into its own DN object: `\+e` was read as
 * the hex pair `+e`, and a DN it could not parse dropped the connection.) The
 * PDU has been validated by ldap-framing.ts; anything unexpected returns undefined
 * and the operation's handler answers protocolError.
 */
import { children, readInt, readTlv, type Tlv } from '../ber';
import { decodeControls, type RequestControl } from './search-decode';

/** RFC 3062 §2. */
export const PASSWORD_MODIFY_OID = '1.3.6.1.4.1.4203.1.11.1';

/** RFC 4511 §4.14.1. */
export { START_TLS_OID } from '../ldap-framing';

interface Common {
  messageId: number;
  controls: RequestControl[];
}

/**
 * Every LDAP request by its protocolOp tag (RFC 4511 §4.2 ff.): its name as
 * controls.ts knows it, its name in the operation log, and the tag of its
 * response (none for unbind and abandon). A protocolOp not in this table is
 * not a request (RFC 4511 §4.1.1).
 */
export const REQUESTS = {
  0x60: { name: 'BindRequest', op: 'bind', responseTag: 0x61 },
  0x42: { name: 'UnbindRequest', op: 'unbind', responseTag: undefined },
  0x63: { name: 'SearchRequest', op: 'search', responseTag: 0x65 },
  0x66: { name: 'ModifyRequest', op: 'modify', responseTag: 0x67 },
  0x68: { name: 'AddRequest', op: 'add', responseTag: 0x69 },
  0x4a: { name: 'DeleteRequest', op: 'delete', responseTag: 0x6b },
  0x6c: { name: 'ModifyDnRequest', op: 'modDN', responseTag: 0x6d },
  0x6e: { name: 'CompareRequest', op: 'compare', responseTag: 0x6f },
  0x50: { name: 'AbandonRequest', op: 'abandon', responseTag: undefined },
  0x77: { name: 'ExtendedRequest', op: 'extended', responseTag: 0x78 },
} as const satisfies Record<number, { name: string; op: string; responseTag: number | undefined }>;

/** The protocolOp tag of a request. */
export type RequestTag = keyof typeof REQUESTS;

/** The table entry of a protocolOp tag; undefined when it is not a request. */
export function requestKind(tag: number): (typeof REQUESTS)[RequestTag] | undefined {
  return Object.prototype.hasOwnProperty.call(REQUESTS, tag) ? REQUESTS[tag as RequestTag] : undefined;
}

/** RFC 4511 §4.6 operation, and RFC 4525 §2 increment, by their ENUMERATED values. */
const MODIFY_OPERATIONS = ['add', 'delete', 'replace', 'increment'] as const;

/** One change of a ModifyRequest: its operation and PartialAttribute, values as bytes. */
export interface ModifyChange {
  operation: (typeof MODIFY_OPERATIONS)[number];
  type: string;
  values: Buffer[];
}

/** A decoded update or compare request. */
export type UpdateCall = Common & (
  | { op: 'modify'; entry: string; changes: ModifyChange[] }
  | { op: 'add'; entry: string; attributes: { type: string; values: Buffer[] }[] }
  | { op: 'delete'; entry: string }
  | { op: 'modifyDN'; entry: string; newRdn: string; deleteOldRdn: boolean; newSuperior?: string }
  | { op: 'compare'; entry: string; attribute: string; value: Buffer }
);

/** The request tag of each operation decoded by decodeUpdateRequest. */
const TAG_OF = { modify: 0x66, add: 0x68, delete: 0x4a, modifyDN: 0x6c, compare: 0x6e } as const satisfies Record<UpdateCall['op'], RequestTag>;

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

/**
 * The messageID, protocolOp and controls of a validated LDAPMessage (RFC 4511
 * §4.1.1); `controls` is undefined when they are malformed. A component after
 * the protocolOp that is not Controls [0] is ignored, as are any after the
 * controls (§4: trailing components whose tags are not recognised).
 */
export function envelope(pdu: Buffer): { messageId: number; op: Tlv; controls: RequestControl[] | undefined } {
  const [id, op, ctl] = children(pdu, readTlv(pdu, 0));
  if (!id || !op || id.tag !== 0x02) throw new RangeError('not an LDAPMessage');
  return { messageId: readInt(pdu, id), op, controls: decodeControls(pdu, ctl) };
}

/** Decodes a validated PDU when it is a modify, add, delete, modifyDN or compare request; undefined otherwise. */
export function decodeUpdateRequest(pdu: Buffer): UpdateCall | undefined {
  try {
    const { messageId, op, controls } = envelope(pdu);
    if (!controls) return undefined;
    const common: Common = { messageId, controls };
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
      default:
        return undefined;
    }
  } catch {
    return undefined;
  }
}

/** A decoded BindRequest (RFC 4511 §4.2): a simple bind's password, or a SASL bind's mechanism (never offered). */
export type BindCall = Common & { version: number; name: string } & (
  | { simple: Buffer; sasl?: undefined }
  | { simple?: undefined; sasl: { mechanism: string } }
);

/**
 * Decodes a validated PDU when it is a BindRequest: BindRequest ::=
 * [APPLICATION 0] SEQUENCE { version INTEGER (1..127), name LDAPDN,
 * authentication AuthenticationChoice { simple [0] OCTET STRING, sasl [3]
 * SaslCredentials } }. undefined otherwise.
 */
export function decodeBindRequest(pdu: Buffer): BindCall | undefined {
  try {
    const { messageId, op, controls } = envelope(pdu);
    if (!controls || op.tag !== 0x60) return undefined;
    const [version, name, auth, ...rest] = children(pdu, op);
    if (rest.length || !auth) return undefined;
    const common = { messageId, controls, version: readInt(pdu, expect(version, 0x02)), name: utf8(pdu, expect(name, 0x04)) };
    if (auth.tag === 0x80) return { ...common, simple: bytes(pdu, auth) };
    if (auth.tag === 0xa3) {
      // SaslCredentials ::= SEQUENCE { mechanism LDAPString, credentials OCTET STRING OPTIONAL }
      const [mechanism] = children(pdu, auth);
      return { ...common, sasl: { mechanism: utf8(pdu, expect(mechanism, 0x04)) } };
    }
    return undefined;
  } catch {
    return undefined;
  }
}

/** A decoded ExtendedRequest (RFC 4511 §4.12). */
export type ExtendedCall = Common & { name: string; value?: Buffer };

/**
 * Decodes a validated PDU when it is an ExtendedRequest ::= [APPLICATION 23]
 * SEQUENCE { requestName [0] LDAPOID, requestValue [1] OCTET STRING OPTIONAL };
 * undefined otherwise.
 */
export function decodeExtendedRequest(pdu: Buffer): ExtendedCall | undefined {
  try {
    const { messageId, op, controls } = envelope(pdu);
    if (!controls || op.tag !== 0x77) return undefined;
    const [name, value, ...rest] = children(pdu, op);
    if (rest.length || (value && value.tag !== 0x81)) return undefined;
    return { messageId, controls, name: utf8(pdu, expect(name, 0x80)), value: value ? bytes(pdu, value) : undefined };
  } catch {
    return undefined;
  }
}

/** The fields of a PasswdModifyRequestValue, or `malformed` when the value is not one. */
export type PasswdModifyFields = { userIdentity?: string; oldPassword?: Buffer; newPassword?: Buffer; malformed?: true };

/**
 * RFC 3062 §2: PasswdModifyRequestValue ::= SEQUENCE { userIdentity [0]
 * OPTIONAL, oldPasswd [1] OPTIONAL, newPasswd [2] OPTIONAL }; the value
 * itself may be absent (change the bound user's password to a generated one).
 */
export function decodePasswdModifyValue(value: Buffer | undefined): PasswdModifyFields {
  if (!value) return {};
  try {
    const seq = readTlv(value, 0);
    if (seq.tag !== 0x30 || seq.end !== value.length) return { malformed: true };
    const out: PasswdModifyFields = {};
    let last = -1;
    for (const c of children(value, seq)) {
      const k = c.tag - 0x80;
      if (k < 0 || k > 2 || k <= last) return { malformed: true };
      last = k;
      if (k === 0) out.userIdentity = utf8(value, c);
      else if (k === 1) out.oldPassword = bytes(value, c);
      else out.newPassword = bytes(value, c);
    }
    return out;
  } catch {
    return { malformed: true };
  }
}
