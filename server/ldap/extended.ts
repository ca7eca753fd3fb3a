/**
 * Extended operations (RFC 4511 §4.12): Who am I? (RFC 4532) and Password
 * Modify (RFC 3062, answered without ldapjs: request-decode.ts). Unknown request names get protocolError (2) from
 * ldapjs's fallback, as §4.12 requires.
 */
import type { Handler, LdapContext, Reply } from './context';
import { sessionOf, type Session } from './session';
import { endWithError, resultOf, RESULT_CODES } from './results';
import { encodeExtendedResponse, tlv } from './ber';
import { randomInt } from 'node:crypto';
import { PASSWORD_MODIFY_OID, type UpdateCall } from './request-decode';
import { DCMX_EXT } from '../../schema/definitions/dcmx';
import type { Provisioner } from '../directory/provision';
import { InsufficientAccessError } from '../directory/errors';

export const WHOAMI_OID = '1.3.6.1.4.1.4203.1.11.3';
export { PASSWORD_MODIFY_OID };
/** dcmx: provision a mail domain (request value: the domain name, UTF-8). */
export const PROVISION_DOMAIN_OID = `${DCMX_EXT}.1`;

/** RFC 4532 §2: the authzId, "dn:<DN>" or empty for anonymous. */
export function whoAmIHandler(): Handler {
  return (req, res) => {
    const id = sessionOf(req).identity;
    res.responseValue = id.anonymous ? '' : `dn:${id.dn}`;
    res.end(RESULT_CODES.success);
  };
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
export function answerPasswordModify(ctx: LdapContext, session: Session, call: Extract<UpdateCall, { op: 'passwordModify' }>, reply: Reply): void {
  const done = (code: number, diagnostic = '', value?: Buffer) => reply(encodeExtendedResponse(call.messageId, code, diagnostic, undefined, value));
  if (call.malformed) return done(RESULT_CODES.protocolError, 'malformed PasswdModifyRequestValue');
  const who = session.identity;
  if (who.anonymous) return done(RESULT_CODES.insufficientAccessRights, 'password modify requires a bound user');
  const generated = call.newPassword === undefined ? generatePassword() : undefined;
  const newPassword = generated ?? call.newPassword!.toString('utf8');
  if (newPassword === '') return done(RESULT_CODES.unwillingToPerform, 'newPasswd is empty');
  const target = call.userIdentity ? call.userIdentity.replace(/^dn:/, '') : who.dn;
  (async () => {
    if (!who.admin && ctx.directory.normalize(target) !== who.ndn) {
      throw new InsufficientAccessError('a user may change its own password only');
    }
    if (call.oldPassword !== undefined) await ctx.directory.bind(target, call.oldPassword.toString('utf8'), session.remote ?? '');
    await ctx.directory.setPassword(who, target, newPassword);
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
 * Provision a mail domain over LDAP (ours, OID PROVISION_DOMAIN_OID), admin
 * only: `ldapexop -D <admin> ... '1.3.6.1.4.1.32473.1.3.1:new.example.org'`.
 * The response value lists the created DNs, one per line (empty when the
 * domain existed), then `zone <name> serial <n>`.
 */
export function provisionHandler(provisioner: Provisioner): Handler {
  return (req, res) => {
    const session = sessionOf(req);
    if (!session.identity.admin) {
      res.diagnosticMessage = 'only the administrator may provision domains';
      res.end(RESULT_CODES.insufficientAccessRights);
      return;
    }
    const name = typeof req.requestValue === 'string' ? req.requestValue : Buffer.isBuffer(req.requestValue) ? req.requestValue.toString('utf8') : '';
    try {
      const r = provisioner.provisionDomain(name);
      res.responseName = PROVISION_DOMAIN_OID;
      res.responseValue = [...r.created, `zone ${r.zone} serial ${r.serial}${r.existed ? ' (existed)' : ''}`].join('\n');
      res.end(RESULT_CODES.success);
    } catch (err) {
      endWithError(res, err, session.log);
    }
  };
}
