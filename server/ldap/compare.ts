/** Compare (RFC 4511 §4.10): compareTrue (6) or compareFalse (5). */
import type { LdapContext, Reply } from './context';
import type { Session } from './session';
import { replyResult, RESULT_CODES } from './results';
import { valueFromBytes } from '../directory/entry';
import type { UpdateCall } from './request-decode';

/** Answers a decoded CompareRequest. */
export function answerCompare(ctx: LdapContext, session: Session, call: Extract<UpdateCall, { op: 'compare' }>, reply: Reply): void {
  try {
    const ok = ctx.directory.compare(session.identity, call.entry, call.attribute, valueFromBytes(call.value));
    replyResult(reply, call, ok ? RESULT_CODES.compareTrue : RESULT_CODES.compareFalse);
  } catch (err) {
    replyResult(reply, call, err, session.log);
  }
}
