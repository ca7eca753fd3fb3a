/** Delete (RFC 4511 §4.8). */
import type { OperationHandler } from './context';
import { replyMalformed, replyResult, RESULT_CODES } from './results';
import { decodeUpdateRequest, OPERATIONS } from './request-decode';

/** Answers a DelRequest; the DN is parsed by the directory (34 when invalid). */
export const answerDelete: OperationHandler = (ctx, req) => {
  const call = decodeUpdateRequest(req.pdu);
  if (call?.op !== 'delete') return replyMalformed(req, OPERATIONS.delete.responseTag);
  ctx.writer.execute({ kind: 'delete', who: req.session.identity, dn: call.entry }).then(
    () => replyResult(req.reply, call, RESULT_CODES.success),
    (err) => replyResult(req.reply, call, err, req.session.log),
  );
};
