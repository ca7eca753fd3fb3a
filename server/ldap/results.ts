/**
 * The one place where directory errors become LDAP results (RFC 4511 §4.1.9,
 * Appendix A). Anything that is not a DirectoryError is an operationsError
 * (1) whose detail is logged, not sent.
 */
import { DirectoryError, type ResultName } from '../directory/errors';
import type { Logger } from '../log';
import { encodeLdapResult } from '../ber';
import { OPERATIONS, type UpdateCall } from './request-decode';
import type { LdapRequest } from './context';

/** RFC 4511 Appendix A.1 result codes, and those of the extensions we serve. */
export const RESULT_CODES: Record<
  ResultName | 'success' | 'compareFalse' | 'compareTrue' | 'unavailable' | 'canceled' | 'noSuchOperation' | 'cannotCancel' | 'syncRefreshRequired',
  number
> = {
  success: 0,
  operationsError: 1,
  protocolError: 2,
  timeLimitExceeded: 3,
  sizeLimitExceeded: 4,
  compareFalse: 5,
  compareTrue: 6,
  authMethodNotSupported: 7,
  unavailableCriticalExtension: 12,
  noSuchAttribute: 16,
  undefinedAttributeType: 17,
  inappropriateMatching: 18,
  constraintViolation: 19,
  attributeOrValueExists: 20,
  invalidAttributeSyntax: 21,
  noSuchObject: 32,
  invalidDNSyntax: 34,
  invalidCredentials: 49,
  insufficientAccessRights: 50,
  unavailable: 52,
  unwillingToPerform: 53,
  namingViolation: 64,
  objectClassViolation: 65,
  notAllowedOnNonLeaf: 66,
  notAllowedOnRDN: 67,
  entryAlreadyExists: 68,
  objectClassModsProhibited: 69,
  affectsMultipleDSAs: 71,
  other: 80,
  // RFC 3909 §2 (Cancel).
  canceled: 118,
  noSuchOperation: 119,
  cannotCancel: 121,
  // RFC 4533 §2.7: e-syncRefreshRequired.
  syncRefreshRequired: 4096,
};

/** An LDAP result's three fields. */
export interface ResultFields {
  code: number;
  matchedDN: string;
  diagnostic: string;
}

/** The result for `err` (unexpected errors are logged and become operationsError). */
export function resultOf(err: unknown, log: Logger): ResultFields {
  if (err instanceof DirectoryError) return { code: RESULT_CODES[err.result], matchedDN: err.matchedDN, diagnostic: err.message };
  log.error({ err }, 'ldap operation failed');
  return { code: RESULT_CODES.operationsError, matchedDN: '', diagnostic: 'internal error' };
}

/**
 * Writes the response to a request decoded by request-decode.ts: `outcome`
 * is a result code, or an error converted by resultOf (then `log` is needed).
 */
export function replyResult(reply: (pdu: Buffer) => void, call: Pick<UpdateCall, 'messageId' | 'op'>, outcome: unknown, log?: Logger): void {
  const r: ResultFields = typeof outcome === 'number' ? { code: outcome, matchedDN: '', diagnostic: '' } : resultOf(outcome, log!);
  reply(encodeLdapResult(call.messageId, OPERATIONS[call.op].responseTag, r.code, r.matchedDN, r.diagnostic));
}

/**
 * Answers a request its handler could not decode (the framing lets through
 * some shapes the operation does not take) with protocolError, under the
 * operation's response tag (an ExtendedResponse with neither name nor value
 * is the bare LDAPResult too); the connection stays up.
 */
export function replyMalformed(req: LdapRequest, responseTag: number): void {
  req.reply(encodeLdapResult(req.messageId, responseTag, RESULT_CODES.protocolError, '', 'malformed request'));
}
