/** Unbind (RFC 4511 §4.3): no response; the server ends the connection. */
import type { OperationHandler } from './context';

/** Ends the connection; what the client sent after the UnbindRequest is not answered. */
export const answerUnbind: OperationHandler = (_ctx, req) => {
  req.conn.end();
  req.done();
};
