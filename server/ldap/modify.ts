/** Modify (RFC 4511 §4.6), including Modify-Increment (RFC 4525). */
import type { OperationHandler } from './context';
import { replyMalformed, replyResult, RESULT_CODES } from './results';
import { valueFromBytes } from '../directory/entry';
import type { Modification } from '../directory/directory';
import { decodeUpdateRequest, OPERATIONS } from './request-decode';

/** Answers a ModifyRequest; the entry DN is parsed by the directory (34 when invalid), values are kept as bytes; an unknown operation is a protocolError. */
export const answerModify: OperationHandler = (ctx, req) => {
  const call = decodeUpdateRequest(req.pdu);
  if (call?.op !== 'modify') return replyMalformed(req, OPERATIONS.modify.responseTag);
  const mods: Modification[] = call.changes.map((c) => ({ op: c.operation, type: c.type, values: c.values.map(valueFromBytes) }));
  ctx.writer.execute({ kind: 'modify', who: req.session.identity, dn: call.entry, mods }).then(
    () => replyResult(req.reply, call, RESULT_CODES.success),
    (err) => replyResult(req.reply, call, err, req.session.log),
  );
};
