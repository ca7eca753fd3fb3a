/** Modify DN (RFC 4511 §4.9), with newSuperior. */
import type { LdapContext, Reply } from './context';
import type { Session } from './session';
import { replyResult, RESULT_CODES } from './results';
import type { UpdateCall } from './request-decode';

/** Answers a decoded ModifyDNRequest; entry, newrdn and newSuperior are parsed by the directory. */
export function answerModifyDn(ctx: LdapContext, session: Session, call: Extract<UpdateCall, { op: 'modifyDN' }>, reply: Reply): void {
  try {
    ctx.directory.modifyDN(session.identity, call.entry, call.newRdn, call.deleteOldRdn, call.newSuperior);
    replyResult(reply, call, RESULT_CODES.success);
  } catch (err) {
    replyResult(reply, call, err, session.log);
  }
}
