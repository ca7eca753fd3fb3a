/**
 * Bind (RFC 4511 §4.2): simple and anonymous; SASL is not offered. Simple
 * binds go through the guessing throttle by the client's address: a failure
 * is answered after a growing delay, and while the account or the client is
 * refused the answer is unwillingToPerform (53) without a password check.
 */
import type { Handler, LdapContext } from './context';
import { sessionOf } from './session';
import { endWithError, RESULT_CODES } from './results';
import { ANONYMOUS } from '../directory/access';
import { InvalidCredentialsError, TooManyFailuresError } from '../directory/errors';

export function bindHandler(ctx: LdapContext): Handler {
  return (req, res) => {
    const session = sessionOf(req);
    // RFC 4511 §4.2.1: a failed or new bind leaves the session anonymous.
    session.identity = ANONYMOUS;
    if (req.version !== 3) {
      res.diagnosticMessage = 'only LDAP version 3 is supported';
      res.end(RESULT_CODES.protocolError);
      return;
    }
    // ldapjs parses only simple binds; a SASL BindRequest fails in its parser
    // and is answered with protocolError before it gets here.
    const dn = String(req.name ?? req.dn ?? '');
    const password = String(req.credentials ?? '');
    ctx.directory.bind(dn, password, session.remote ?? '').then(
      (identity) => {
        session.identity = identity;
        res.end(RESULT_CODES.success);
      },
      (err) => {
        // Logged with the client's address, for the operator (and fail2ban) to see guessing.
        if (err instanceof TooManyFailuresError) session.log.warn({ remote: session.remote, dn }, 'bind refused: too many failed attempts');
        else if (err instanceof InvalidCredentialsError) session.log.info({ remote: session.remote, dn }, 'bind failed: invalid credentials');
        endWithError(res, err, session.log);
      },
    );
  };
}
