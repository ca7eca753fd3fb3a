/**
 * Abandon (RFC 4511 §4.11): no response. A connection answers its requests
 * one after the other (flow.ts), so by the time an AbandonRequest is handled
 * the operation it names has been answered; there is nothing left to stop.
 */
import type { OperationHandler } from './context';

/** Completes at once, answering nothing (§4.11: "there is no response"). */
export const answerAbandon: OperationHandler = (_ctx, req) => req.done();
