/** Add (RFC 4511 §4.7). */
import type { LdapContext, Reply } from './context';
import type { Session } from './session';
import { replyResult, RESULT_CODES } from './results';
import { valueFromBytes } from '../directory/entry';
import type { UpdateCall } from './request-decode';

/** Answers a decoded AddRequest; the entry DN is parsed by the directory (34 when invalid). */
export function answerAdd(ctx: LdapContext, session: Session, call: Extract<UpdateCall, { op: 'add' }>, reply: Reply): void {
  const attrs = call.attributes.map((a) => ({ type: a.type, values: a.values.map(valueFromBytes) }));
  ctx.directory.add(session.identity, call.entry, attrs).then(
    () => replyResult(reply, call, RESULT_CODES.success),
    (err) => replyResult(reply, call, err, session.log),
  );
}
