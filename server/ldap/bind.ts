/**
 * Bind (RFC 4511 §4.2): simple and anonymous; SASL is not offered. Simple
 * binds go through the guessing throttle by the client's address: a failure
 * is answered after a growing delay, and while the account or the client is
 * refused the answer is unwillingToPerform (53) without a password check.
 */
import type { OperationHandler } from './context';
import { replyMalformed, resultOf, RESULT_CODES, type ResultFields } from './results';
import { encodeLdapResult } from '../ber';
import { decodeBindRequest, REQUESTS } from './request-decode';
import { ANONYMOUS } from '../directory/access';
import { InvalidCredentialsError, TooManyFailuresError } from '../directory/errors';
import { DnSyntaxError, parseDn } from '../../schema/dn';

const BIND_RESPONSE = REQUESTS[0x60].responseTag;

/** Answers a BindRequest; the session is anonymous until a bind succeeds. */
export const answerBind: OperationHandler = (ctx, req) => {
  const session = req.session;
  // RFC 4511 §4.2.1: a bind, even a failed one, resets the session; a new or failed bind leaves it anonymous.
  session.identity = ANONYMOUS;
  // §4.2.1: "all uncompleted operations MUST either complete or be abandoned" first: a persistent
  // search (sync.ts) ends, and does not go on with the rights of the identity it began with.
  for (const op of [...req.conn.longOperations.values()]) op.stop('abandon');
  const reply = (r: Partial<ResultFields> & { code: number }) => req.reply(encodeLdapResult(req.messageId, BIND_RESPONSE, r.code, r.matchedDN ?? '', r.diagnostic ?? ''));
  const call = decodeBindRequest(req.pdu);
  if (!call) return replyMalformed(req, BIND_RESPONSE);
  if (call.sasl) return reply({ code: RESULT_CODES.authMethodNotSupported, diagnostic: 'SASL is not offered; use a simple bind' });
  if (call.version !== 3) return reply({ code: RESULT_CODES.protocolError, diagnostic: 'only LDAP version 3 is supported' });
  const dn = call.name;
  try {
    if (dn !== '') parseDn(dn);
  } catch (e) {
    if (!(e instanceof DnSyntaxError)) throw e;
    return reply({ code: RESULT_CODES.invalidDNSyntax, diagnostic: e.message });
  }
  ctx.directory.bind(dn, call.simple.toString('utf8'), session.remote ?? '').then(
    (identity) => {
      session.identity = identity;
      reply({ code: RESULT_CODES.success });
    },
    (err) => {
      // Logged with the client's address, for the operator and fail2ban (the README's filter matches `auth_failed`); never the password.
      if (err instanceof TooManyFailuresError) session.log.warn({ event: 'auth_failed', proto: 'ldap', remote: session.remote, dn, reason: 'throttled' }, 'ldap bind refused: too many failed attempts');
      else if (err instanceof InvalidCredentialsError) session.log.info({ event: 'auth_failed', proto: 'ldap', remote: session.remote, dn, reason: 'invalid credentials' }, 'ldap bind failed: invalid credentials');
      reply(resultOf(err, session.log));
    },
  );
};
