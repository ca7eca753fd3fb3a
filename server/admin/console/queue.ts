/**
 * The console's queue API, over the one implementation of the queue tools
 * (server/mta/queue-admin.ts QueueAdmin, which `dcmx queue` uses too): each
 * change kicks delivery at once.
 *
 *   GET    /api/queue?domain=D&status=S   the messages, oldest first (status: active, hold, deferred, queued)
 *   GET    /api/queue/ID                  one message: envelope, attempts, header fields
 *   POST   /api/queue/retry               every message not on hold due now
 *   POST   /api/queue/ID/retry | hold | release | bounce
 *   DELETE /api/queue/ID
 *
 * The queue is the administrator's (the directory's policy has no part of
 * it to give a domain manager: a message may be for several domains), so
 * every route answers 403 to anyone else.
 */
import { QueueAdminError, type MessageStatus, type QueueAdmin } from '../../mta/queue-admin';
import { HttpError } from './http-io';
import type { ApiHandler, ApiRequest, ApiRoutes } from './index';

/** Queue ids as the queue makes them (letters and digits). */
const QUEUE_ID = /^[A-Za-z0-9]{1,64}$/;

/** HTTP status for each refusal of the queue tools, by class name. */
const STATUS: Record<string, number> = {
  NoSuchMessageError: 404,
  MessageActiveError: 409,
  MessageHeldError: 409,
  BadQueueFilterError: 400,
};

/** The queue API (see the module comment). */
export function queueRoutes(admin: QueueAdmin): ApiRoutes {
  /** Runs `fn` for the administrator only, the queue tools' refusals turned into HTTP errors. */
  const adminOnly = (fn: (r: ApiRequest) => Promise<unknown> | unknown): ApiHandler => async (r) => {
    if (!r.session.identity.admin) throw new HttpError(403, 'the queue is the administrator\'s');
    try {
      return await fn(r);
    } catch (e) {
      if (e instanceof QueueAdminError) throw new HttpError(STATUS[e.name] ?? 409, e.message);
      throw e;
    }
  };
  const id = (r: ApiRequest): string => {
    const v = r.parts[1];
    if (!QUEUE_ID.test(v)) throw new HttpError(400, `'${v}' is not a queue id`);
    return v;
  };
  const routes = new Map<string, ApiHandler>([
    ['GET ', adminOnly(({ query }) => admin.list({
      domain: query.get('domain') || undefined, status: (query.get('status') || undefined) as MessageStatus | undefined,
    }))],
    ['POST retry', adminOnly(() => ({ recipients: admin.retryAll() }))],
    ['GET ID', adminOnly((r) => admin.show(id(r)))],
    ['DELETE ID', adminOnly(async (r) => {
      await admin.delete(id(r));
      return { deleted: true };
    })],
    ['POST ID/retry', adminOnly((r) => ({ recipients: admin.retry(id(r)) }))],
    ['POST ID/hold', adminOnly((r) => admin.hold(id(r)))],
    ['POST ID/release', adminOnly((r) => ({ released: admin.release(id(r)) }))],
    ['POST ID/bounce', adminOnly((r) => admin.bounce(id(r)))],
  ]);
  return {
    route(method, parts) {
      if (parts[0] !== 'queue' || parts.length > 3) return undefined;
      const shape = parts.length === 1 ? '' : parts.length === 2 ? (parts[1] === 'retry' && method === 'POST' ? 'retry' : 'ID') : `ID/${parts[2]}`;
      return routes.get(`${method} ${shape}`);
    },
  };
}
