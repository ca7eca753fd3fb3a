/** Add (RFC 4511 §4.7). */
import type { OperationHandler } from './context';
import { replyMalformed, replyResult, RESULT_CODES } from './results';
import { valueFromBytes } from '../directory/entry';
import { decodeUpdateRequest, OPERATIONS } from './request-decode';

/** Answers an AddRequest; the entry DN is parsed by the directory (34 when invalid), values are kept as bytes. */
export const answerAdd: OperationHandler = (ctx, req) => {
  const call = decodeUpdateRequest(req.pdu);
  if (call?.op !== 'add') return replyMalformed(req, OPERATIONS.add.responseTag);
  const attrs = call.attributes.map((a) => ({ type: a.type, values: a.values.map(valueFromBytes) }));
  ctx.writer.execute({ kind: 'add', who: req.session.identity, dn: call.entry, attrs }).then(
    () => replyResult(req.reply, call, RESULT_CODES.success),
    (err) => replyResult(req.reply, call, err, req.session.log),
  );
};
