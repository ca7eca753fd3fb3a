/** Delete (RFC 4511 §4.8). */
import type { LdapContext, Reply } from './context';
import type { Session } from './session';
import { replyResult, RESULT_CODES } from './results';
import type { UpdateCall } from './request-decode';

/** Answers a decoded DelRequest. */
export function answerDelete(ctx: LdapContext, session: Session, call: Extract<UpdateCall, { op: 'delete' }>, reply: Reply): void {
  try {
    ctx.directory.delete(session.identity, call.entry);
    replyResult(reply, call, RESULT_CODES.success);
  } catch (err) {
    replyResult(reply, call, err, session.log);
  }
}
