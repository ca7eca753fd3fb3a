/**
 * Abandon (RFC 4511 §4.11): no response. A connection answers its requests
 * one after the other (flow.ts), so by the time an AbandonRequest is handled
 * the operation it names has been answered, unless it outlives its request
 * (a Content Sync persistent search, sync.ts): that one stops, answering
 * nothing more.
 */
import type { OperationHandler } from './context';
import { messageHead, readInt } from '../ber';

/** Stops the long operation named, if any; completes at once, answering nothing (§4.11: "there is no response"). */
export const answerAbandon: OperationHandler = (_ctx, req) => {
  let id: number | undefined;
  try {
    id = readInt(req.pdu, messageHead(req.pdu).op);
  } catch {
    // A malformed MessageID names no operation.
  }
  if (id !== undefined) req.conn.longOperations.get(id)?.stop('abandon');
  req.done();
};
