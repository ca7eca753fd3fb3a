/** Compare (RFC 4511 §4.10): compareTrue (6) or compareFalse (5). */
import type { OperationHandler } from './context';
import { replyMalformed, replyResult, RESULT_CODES } from './results';
import { valueFromBytes } from '../directory/entry';
import { decodeUpdateRequest, OPERATIONS } from './request-decode';

/** Answers a CompareRequest. */
export const answerCompare: OperationHandler = (ctx, req) => {
  const call = decodeUpdateRequest(req.pdu);
  if (call?.op !== 'compare') return replyMalformed(req, OPERATIONS.compare.responseTag);
  try {
    const ok = ctx.directory.compare(req.session.identity, call.entry, call.attribute, valueFromBytes(call.value));
    replyResult(req.reply, call, ok ? RESULT_CODES.compareTrue : RESULT_CODES.compareFalse);
  } catch (err) {
    replyResult(req.reply, call, err, req.session.log);
  }
};
