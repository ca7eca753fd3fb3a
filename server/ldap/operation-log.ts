/**
 * The operation log: at DCMX_LOG_LEVEL=debug, one structured line per LDAP
 * operation, as slapd's `stats` log level gives, and one line when a
 * connection is accepted and when it closes (with the client's address).
 *
 * Every request of a connection passes through its RequestFlow handler, and
 * every response through the connection's write; connection.ts hooks the log
 * on those two points only, so no operation's handler can bypass it. The
 * request is described from its PDU, its result read from the response PDUs
 * written for its message id.
 *
 * Never logged: bind credentials, Password Modify values, attribute values
 * of add and modify (types only), the assertion value of a compare, the
 * assertion values of filter items on a password attribute or a private
 * key (DKIM, DNSSEC), and any value
 * of a result (only its code and how many entries a search returned).
 *
 * A connection gets an OperationLog only when its logger has debug enabled;
 * otherwise nothing here runs.
 */
import { performance } from 'node:perf_hooks';
import type { Schema } from '../../schema/registry';
import type { FilterInput } from '../directory/filter';
import { children, messageHead, readInt, readTlv, type Tlv } from '../ber';
import type { RequestHandler } from './flow';
import { decodeSearchRequest } from './search-decode';
import { decodeExtendedRequest, decodePasswdModifyValue, decodeUpdateRequest, envelope, PASSWORD_MODIFY_OID, requestKind, START_TLS_OID } from './request-decode';
import { PROVISION_DOMAIN_OID, WHOAMI_OID } from './extended';
import type { Session } from './session';

/** Tells whether an attribute description names a password attribute, whose values are never logged. */
export type SecretTest = (description: string) => boolean;

/**
 * The password attributes of `schema`: userPassword by any of its names or
 * its OID, with any options; the private keys (dkimPrivateKey,
 * dnssecPrivateKey); and, as a safety net, any description that says
 * "password", "secret" or "privatekey" (authPassword, sambaNTPassword...).
 */
export function passwordAttributes(schema: Schema): SecretTest {
  const userPassword = schema.attr('userPassword');
  return (desc) => {
    if (/password|secret|privatekey/i.test(desc)) return true;
    const semi = desc.indexOf(';');
    return userPassword !== undefined && schema.attr(semi >= 0 ? desc.slice(0, semi) : desc) === userPassword;
  };
}

/** What stands for a value that is never logged. */
const HIDDEN = '<hidden>';

/** Longest filter string logged; a longer one is cut and ends with an ellipsis. */
const MAX_FILTER_CHARS = 4096;

/** RFC 4515 §3: the characters a filter value escapes as `\XX`. */
const FILTER_SPECIALS = /[*()\\\0]/g;

function escapeFilterValue(v: string): string {
  return v.replace(FILTER_SPECIALS, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * The RFC 4515 string form of a filter, values escaped (§3); the values of
 * items on an attribute `secret` accepts are replaced by `<hidden>`.
 */
export function filterString(f: FilterInput, secret: SecretTest): string {
  const value = (attr: string | undefined, v: string) => (attr !== undefined && secret(attr) ? HIDDEN : escapeFilterValue(v));
  switch (f.type) {
    case 'and':
      return `(&${f.filters.map((x) => filterString(x, secret)).join('')})`;
    case 'or':
      return `(|${f.filters.map((x) => filterString(x, secret)).join('')})`;
    case 'not':
      return `(!${filterString(f.filter, secret)})`;
    case 'equal':
      return `(${f.attr}=${value(f.attr, f.value)})`;
    case 'approx':
      return `(${f.attr}~=${value(f.attr, f.value)})`;
    case 'ge':
      return `(${f.attr}>=${value(f.attr, f.value)})`;
    case 'le':
      return `(${f.attr}<=${value(f.attr, f.value)})`;
    case 'present':
      return `(${f.attr}=*)`;
    case 'substrings':
      if (secret(f.attr)) return `(${f.attr}=${HIDDEN})`;
      return `(${f.attr}=${[f.initial ?? '', ...f.any, f.final ?? ''].map(escapeFilterValue).join('*')})`;
    case 'extensible':
      // RFC 4515 §3: extensible = ( attr [dnattrs] [matchingrule] / [dnattrs] matchingrule ) COLON EQUALS assertionvalue
      return `(${f.attr ?? ''}${f.dnAttributes ? ':dn' : ''}${f.rule ? `:${f.rule}` : ''}:=${value(f.attr, f.value)})`;
  }
}

/** Names of the extended operations the log recognises, by OID. */
const EXTENDED_NAMES: Record<string, string> = {
  [START_TLS_OID]: 'startTLS',
  [PASSWORD_MODIFY_OID]: 'passwordModify',
  [WHOAMI_OID]: 'whoAmI',
  [PROVISION_DOMAIN_OID]: 'provisionDomain',
  '1.3.6.1.1.8': 'cancel',
};

/** RFC 4511 §4.5.1.2, and 3 for subordinateSubtree (search.ts). */
const SCOPE_NAMES = ['base', 'one', 'sub', 'children'];

/** A request as logged: its message id and the fields of its line. */
interface RequestDescription {
  msgid: number;
  fields: Record<string, unknown>;
}

/**
 * Describes one framed request PDU for the log: operation, and base, scope,
 * filter and requested attributes of a search, the DN of the others,
 * attribute types of an add or modify, the OID of an extended operation,
 * the OIDs of request controls. Never a credential or an attribute value
 * (see the module comment). Never throws: what cannot be read is left out.
 */
function describeRequest(pdu: Buffer, secret: SecretTest): RequestDescription {
  let head: ReturnType<typeof messageHead>;
  try {
    head = messageHead(pdu);
  } catch {
    return { msgid: -1, fields: { op: 'unknown' } };
  }
  const fields: Record<string, unknown> = { op: requestKind(head.op.tag)?.op ?? `0x${head.op.tag.toString(16)}`, msgid: head.id };
  try {
    describeOperation(pdu, head.op, secret, fields);
    const controls = envelope(pdu).controls;
    if (controls && controls.length) fields.controls = controls.map((c) => c.type);
  } catch {
    // A request our decoders do not take is logged with what was read of it.
  }
  return { msgid: head.id, fields };
}

function describeOperation(pdu: Buffer, op: Tlv, secret: SecretTest, fields: Record<string, unknown>): void {
  const utf8 = (t: Tlv) => pdu.toString('utf8', t.start, t.end);
  switch (op.tag) {
    case 0x60: {
      // BindRequest ::= [APPLICATION 0] SEQUENCE { version, name LDAPDN, authentication AuthenticationChoice }:
      // the name and the kind of authentication only, never its contents (but a SASL mechanism's name).
      const [, name, auth] = children(pdu, op);
      fields.dn = utf8(name);
      fields.method = auth.tag === 0x80 ? 'simple' : auth.tag === 0xa3 ? 'sasl' : `0x${auth.tag.toString(16)}`;
      if (auth.tag === 0xa3) fields.mech = utf8(children(pdu, auth)[0]);
      return;
    }
    case 0x63: {
      const call = decodeSearchRequest(pdu);
      if (!call) return;
      fields.base = call.base;
      fields.scope = SCOPE_NAMES[call.scope] ?? call.scope;
      const filter = filterString(call.filter, secret);
      fields.filter = filter.length > MAX_FILTER_CHARS ? `${filter.slice(0, MAX_FILTER_CHARS)}…` : filter;
      if (call.attributes.length) fields.attrs = call.attributes;
      return;
    }
    case 0x50:
      // AbandonRequest ::= [APPLICATION 16] MessageID
      fields.abandoned = readInt(pdu, op);
      return;
    case 0x77: {
      // ExtendedRequest: the name; of Password Modify, the user it names (RFC 3062 §2), never a password.
      const [name] = children(pdu, op);
      const oid = utf8(name);
      fields.oid = oid;
      if (EXTENDED_NAMES[oid]) fields.ext = EXTENDED_NAMES[oid];
      if (oid !== PASSWORD_MODIFY_OID) return;
      const userIdentity = decodePasswdModifyValue(decodeExtendedRequest(pdu)?.value).userIdentity;
      if (userIdentity !== undefined) fields.dn = userIdentity;
      return;
    }
  }
  const call = decodeUpdateRequest(pdu);
  if (!call) return;
  switch (call.op) {
    case 'modify':
      fields.dn = call.entry;
      fields.mods = call.changes.map((c) => `${c.operation}:${c.type}`);
      return;
    case 'add':
      fields.dn = call.entry;
      fields.attrs = call.attributes.map((a) => a.type);
      return;
    case 'delete':
      fields.dn = call.entry;
      return;
    case 'modifyDN':
      fields.dn = call.entry;
      fields.newrdn = call.newRdn;
      fields.deleteoldrdn = call.deleteOldRdn;
      if (call.newSuperior !== undefined) fields.newSuperior = call.newSuperior;
      return;
    case 'compare':
      fields.dn = call.entry;
      fields.attr = call.attribute;
      return;
  }
}

/** The operation being answered on a connection. */
interface Current {
  msgid: number;
  fields: Record<string, unknown>;
  t0: number;
  entries: number;
  references: number;
  /** IntermediateResponses sent (Content Sync's Sync Info messages). */
  intermediates: number;
  result?: number;
}

/**
 * The operation log of one connection. Logs the accept at construction;
 * `handler` wraps the connection's request handler, `sent` is given every
 * buffer written to the connection, `closed` is called once it has closed.
 */
export class OperationLog {
  private current: Current | undefined;
  private operations = 0;
  private readonly remote: string;

  constructor(private readonly session: Session, private readonly secret: SecretTest, sock: { remoteAddress?: string; remotePort?: number }) {
    this.remote = sock.remoteAddress ?? '';
    session.log.debug({ remote: this.remote, remotePort: sock.remotePort }, 'ldap connection accepted');
  }

  /** `handle`, logging each request with its outcome once it is done. */
  handler(handle: RequestHandler): RequestHandler {
    return (pdu, done) => {
      const { msgid, fields } = describeRequest(pdu, this.secret);
      const op: Current = { msgid, fields, t0: performance.now(), entries: 0, references: 0, intermediates: 0 };
      this.current = op;
      this.operations++;
      handle(pdu, () => {
        this.finish(op);
        done();
      });
    };
  }

  /** Reads the response messages in `buf` that answer the current operation: entries, references, the result code. */
  sent(buf: Buffer): void {
    const op = this.current;
    if (!op) return;
    try {
      for (let off = 0; off < buf.length;) {
        const h = messageHead(buf, off);
        off = h.end;
        if (h.id !== op.msgid) continue;
        if (h.op.tag === 0x64) op.entries++;
        else if (h.op.tag === 0x73) op.references++;
        else if (h.op.tag === 0x79) op.intermediates++;
        else op.result = readInt(buf, readTlv(buf, h.op.start, h.op.end)); // LDAPResult: resultCode first
      }
    } catch {
      // Not whole LDAPMessages: nothing to count.
    }
  }

  /** The connection has closed: an operation still under way is logged (aborted), then the close. */
  closed(): void {
    if (this.current) this.finish(this.current);
    this.session.log.debug({ remote: this.remote, operations: this.operations }, 'ldap connection closed');
  }

  private finish(op: Current): void {
    if (this.current !== op) return;
    this.current = undefined;
    const line: Record<string, unknown> = { ...op.fields, who: this.session.identity.dn };
    if (op.result !== undefined) line.result = op.result;
    if (op.fields.op === 'search') line.entries = op.entries;
    if (op.references) line.references = op.references;
    // A search done without its result, having sent Sync Info: a Content Sync refresh, now persisting (sync.ts).
    if (op.result === undefined && op.fields.op === 'search' && op.intermediates) line.persist = true;
    // No response where one was due: the connection went first.
    else if (op.result === undefined && op.fields.op !== 'unbind' && op.fields.op !== 'abandon') line.aborted = true;
    line.ms = Math.round((performance.now() - op.t0) * 1000) / 1000;
    this.session.log.debug(line, 'ldap operation');
  }
}
