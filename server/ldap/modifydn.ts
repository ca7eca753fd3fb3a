/** Modify DN (RFC 4511 §4.9), with newSuperior. */
import type { OperationHandler } from './context';
import { replyMalformed, replyResult, RESULT_CODES } from './results';
import { decodeUpdateRequest, OPERATIONS } from './request-decode';

/** Answers a ModifyDNRequest; entry, newrdn and newSuperior are parsed by the directory. */
export const answerModifyDn: OperationHandler = (ctx, req) => {
  const call = decodeUpdateRequest(req.pdu);
  if (call?.op !== 'modifyDN') return replyMalformed(req, OPERATIONS.modifyDN.responseTag);
  ctx.writer.execute({
    kind: 'modifyDN', who: req.session.identity, dn: call.entry, newRdn: call.newRdn, deleteOldRdn: call.deleteOldRdn, newSuperior: call.newSuperior,
  }).then(
    () => replyResult(req.reply, call, RESULT_CODES.success),
    (err) => replyResult(req.reply, call, err, req.session.log),
  );
};
