/**
 * Extended operations (RFC 4511 §4.12), by request name: StartTLS (RFC 4511
 * §4.14, starttls.ts), Password Modify (RFC 3062), Who am I? (RFC 4532),
 * Cancel (RFC 3909, of a persistent search) and
 * dcmx's domain provisioning. An unknown request name gets protocolError
 * with the LDAPResult fields only, as §4.12 requires.
 */
import type { LdapContext, LdapRequest, OperationHandler } from './context';
import { replyMalformed, resultOf, RESULT_CODES } from './results';
import { children, encodeExtendedResponse, readInt, readTlv, tlv } from '../ber';
import { randomInt } from 'node:crypto';
import { decodeExtendedRequest, decodePasswdModifyValue, PASSWORD_MODIFY_OID, REQUESTS, START_TLS_OID, type ExtendedCall } from './request-decode';
import { PROVISION_DOMAIN_OID } from '../../schema/definitions/dcmx';
import { InsufficientAccessError } from '../directory/errors';
import { answerStartTls } from './starttls';

export const WHOAMI_OID = '1.3.6.1.4.1.4203.1.11.3';
/** RFC 3909: Cancel. */
export const CANCEL_OID = '1.3.6.1.1.8';
export { PASSWORD_MODIFY_OID };
/** dcmx: provision a mail domain (request value: the domain name, UTF-8). */
export { PROVISION_DOMAIN_OID };

/** Answers an ExtendedRequest by its request name. */
export const answerExtended: OperationHandler = (ctx, req) => {
  const call = decodeExtendedRequest(req.pdu);
  if (!call) return replyMalformed(req, REQUESTS[0x77].responseTag);
  switch (call.name) {
    case START_TLS_OID:
      return answerStartTls(ctx, req, call.value !== undefined);
    case PASSWORD_MODIFY_OID:
      return answerPasswordModify(ctx, req, call);
    case WHOAMI_OID:
      return answerWhoAmI(req);
    case CANCEL_OID:
      return answerCancel(req, call);
    case PROVISION_DOMAIN_OID:
      if (ctx.provisioning) return answerProvision(ctx, req, call);
      break;
  }
  // RFC 4511 §4.12: "If the server does not recognize the request name, it MUST return only the
  // response fields from LDAPResult, containing the protocolError (2) result code."
  req.reply(encodeExtendedResponse(req.messageId, { code: RESULT_CODES.protocolError, diagnostic: `${call.name} not supported` }));
};

/** RFC 4532 §2: the authzId, "dn:<DN>" or empty for anonymous; no responseName. */
function answerWhoAmI(req: LdapRequest): void {
  const id = req.session.identity;
  req.reply(encodeExtendedResponse(req.messageId, { code: RESULT_CODES.success }, undefined, Buffer.from(id.anonymous ? '' : `dn:${id.dn}`, 'utf8')));
}

/**
 * RFC 3909 §2: cancelRequestValue ::= SEQUENCE { cancelID MessageID }. The
 * only operations still running when a Cancel is handled are those that
 * outlive their request (a persistent search): that one ends with canceled
 * (118), then the Cancel succeeds; any other ID gets noSuchOperation (119).
 */
function answerCancel(req: LdapRequest, call: ExtendedCall): void {
  let id: number | undefined;
  try {
    const v = call.value!;
    const seq = readTlv(v, 0);
    const [cancelId] = children(v, seq);
    if (seq.tag === 0x30 && cancelId?.tag === 0x02) id = readInt(v, cancelId);
  } catch {
    // malformed: protocolError below
  }
  if (id === undefined) {
    req.reply(encodeExtendedResponse(req.messageId, { code: RESULT_CODES.protocolError, diagnostic: 'malformed cancelRequestValue' }));
    return;
  }
  const op = req.conn.longOperations.get(id);
  if (!op) {
    req.reply(encodeExtendedResponse(req.messageId, { code: RESULT_CODES.noSuchOperation, diagnostic: `no operation ${id} to cancel` }));
    return;
  }
  op.stop('cancel');
  req.reply(encodeExtendedResponse(req.messageId, { code: RESULT_CODES.success }));
}

/** Characters of generated passwords (no look-alikes: 0/O, 1/l/I). */
const GEN_ALPHABET = 'abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';

/** A random password of 16 characters (about 93 bits). */
export function generatePassword(): string {
  let out = '';
  for (let i = 0; i < 16; i++) out += GEN_ALPHABET[randomInt(GEN_ALPHABET.length)];
  return out;
}

/**
 * RFC 3062: changes the password of the bound user (or, for the admin, of
 * userIdentity). A user names no one else: another userIdentity is refused
 * (50) before any password is checked, so oldPasswd tests no one else's
 * password. The old password, when given, must verify. newPasswd is a
 * password, hashed by the server whatever it looks like; without it the
 * server generates one and returns it in genPasswd (§2).
 */
function answerPasswordModify(ctx: LdapContext, req: LdapRequest, call: ExtendedCall): void {
  const session = req.session;
  const done = (code: number, diagnostic = '', value?: Buffer) => req.reply(encodeExtendedResponse(req.messageId, { code, diagnostic }, undefined, value));
  const fields = decodePasswdModifyValue(call.value);
  if (fields.malformed) return done(RESULT_CODES.protocolError, 'malformed PasswdModifyRequestValue');
  const who = session.identity;
  if (who.anonymous) return done(RESULT_CODES.insufficientAccessRights, 'password modify requires a bound user');
  const generated = fields.newPassword === undefined ? generatePassword() : undefined;
  const newPassword = generated ?? fields.newPassword!.toString('utf8');
  if (newPassword === '') return done(RESULT_CODES.unwillingToPerform, 'newPasswd is empty');
  const target = fields.userIdentity ? fields.userIdentity.replace(/^dn:/, '') : who.dn;
  (async () => {
    if (!who.admin && ctx.directory.normalize(target) !== who.ndn) {
      throw new InsufficientAccessError('a user may change its own password only');
    }
    if (fields.oldPassword !== undefined) await ctx.directory.bind(target, fields.oldPassword.toString('utf8'), session.remote ?? '');
    await ctx.writer.execute({ kind: 'setPassword', who, dn: target, password: newPassword });
  })().then(
    // RFC 3062 §2: PasswdModifyResponseValue ::= SEQUENCE { genPasswd [0] OCTET STRING OPTIONAL }; no responseName.
    () => done(RESULT_CODES.success, '', generated === undefined ? undefined : tlv(0x30, tlv(0x80, Buffer.from(generated, 'utf8')))),
    (err) => {
      const r = resultOf(err, session.log);
      done(r.code, r.diagnostic);
    },
  );
}

/**
 * Provision a mail domain over LDAP (ours, OID PROVISION_DOMAIN_OID), for the
 * administrator and the transfer unit identities (DCMX_UNIT_DNS) only:
 * `ldapexop -D <admin> ... '1.3.6.1.4.1.32473.1.3.1:new.example.org'`. The
 * directory refuses what it never provisions (Provisioner.assertProvisionable);
 * the MX or allow-list policy and the rate limits are the calling unit's
 * (server/mta/policy.ts).
 * The response value lists the created DNs, one per line (empty when the
 * domain existed), then `zone <name> serial <n>`.
 */
function answerProvision(ctx: LdapContext, req: LdapRequest, call: ExtendedCall): void {
  const session = req.session;
  if (!ctx.directory.access.mayProvision(session.identity)) {
    req.reply(encodeExtendedResponse(req.messageId, { code: RESULT_CODES.insufficientAccessRights, diagnostic: 'only the administrator and the transfer units may provision domains' }));
    return;
  }
  ctx.writer.execute({ kind: 'provisionDomain', name: call.value?.toString('utf8') ?? '' }).then(
    (r) => {
      const value = [...r.created, `zone ${r.zone} serial ${r.serial}${r.existed ? ' (existed)' : ''}`].join('\n');
      req.reply(encodeExtendedResponse(req.messageId, { code: RESULT_CODES.success }, PROVISION_DOMAIN_OID, Buffer.from(value, 'utf8')));
    },
    (err) => req.reply(encodeExtendedResponse(req.messageId, resultOf(err, session.log))),
  );
}
