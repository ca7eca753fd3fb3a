/**
 * Extended operations (RFC 4511 §4.12): Who am I? (RFC 4532) and Password
 * Modify (RFC 3062). Unknown request names get protocolError (2) from
 * ldapjs's fallback, as §4.12 requires.
 */
import type { Handler, LdapContext } from './context';
import { sessionOf } from './session';
import { endWithError, RESULT_CODES } from './results';
import { DCMX_EXT } from '../../schema/definitions/dcmx';
import type { Provisioner } from '../directory/provision';

export const WHOAMI_OID = '1.3.6.1.4.1.4203.1.11.3';
export const PASSWORD_MODIFY_OID = '1.3.6.1.4.1.4203.1.11.1';
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

/**
 * RFC 3062: changes the password of the bound user (or, for the admin, of
 * userIdentity). The old password, when given, must verify. A request
 * without newPasswd is refused (we do not generate passwords).
 */
export function passwordModifyHandler(ctx: LdapContext): Handler {
  return (req, res) => {
    const session = sessionOf(req);
    const v = (req.requestValue ?? {}) as { userIdentity?: string; oldPassword?: string; newPassword?: string };
    const who = session.identity;
    if (who.anonymous) {
      res.diagnosticMessage = 'password modify requires a bound user';
      res.end(RESULT_CODES.insufficientAccessRights);
      return;
    }
    if (!v.newPassword) {
      res.diagnosticMessage = 'newPasswd is required';
      res.end(RESULT_CODES.unwillingToPerform);
      return;
    }
    const target = v.userIdentity ? v.userIdentity.replace(/^dn:/, '') : who.dn;
    (async () => {
      if (v.oldPassword !== undefined) await ctx.directory.bind(target, v.oldPassword);
      await ctx.directory.modify(who, target, [{ op: 'replace', type: 'userPassword', values: [v.newPassword!] }]);
    })().then(
      () => res.end(RESULT_CODES.success),
      (err) => endWithError(res, err, session.log),
    );
  };
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
