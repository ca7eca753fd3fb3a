/** Modify (RFC 4511 §4.6), including Modify-Increment (RFC 4525). */
import type { LdapContext, Reply } from './context';
import type { Session } from './session';
import { replyResult, RESULT_CODES } from './results';
import { valueFromBytes } from '../directory/entry';
import type { Modification } from '../directory/directory';
import type { UpdateCall } from './request-decode';

/** Answers a decoded ModifyRequest; the entry DN is parsed by the directory (34 when invalid), values are kept as bytes. */
export function answerModify(ctx: LdapContext, session: Session, call: Extract<UpdateCall, { op: 'modify' }>, reply: Reply): void {
  const mods: Modification[] = call.changes.map((c) => ({ op: c.operation, type: c.type, values: c.values.map(valueFromBytes) }));
  ctx.directory.modify(session.identity, call.entry, mods).then(
    () => replyResult(reply, call, RESULT_CODES.success),
    (err) => replyResult(reply, call, err, session.log),
  );
}
