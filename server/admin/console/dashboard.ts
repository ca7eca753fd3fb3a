/**
 * The dashboard's API:
 *   GET /api/stats    the appliance's counters now (the figures of GET /stats):
 *                     messages in, delivered, deferred, bounced, DNS queries,
 *                     LDAP operations, queue depth; the page plots their rates
 *   GET /api/history  the same, sampled every SAMPLE_MS over the last hour
 *                     (kept in memory from the console's start), oldest
 *                     first: what the charts show before their live points
 *   GET /api/changes  the recent change log (?limit=, at most 200), newest
 *                     first: every change for the administrator, a manager's
 *                     domains' own for a manager (the change log is the
 *                     administrator's to read, access.ts)
 *   GET /api/health   the store's health (as GET /health) and whether each
 *                     endpoint accepts a connection now
 */
import * as net from 'node:net';
import type { Directory } from '../../directory/directory';
import type { Health } from '../http';
import type { ApiHandler, ApiRoutes } from './index';
import type { MailDirectory } from '../../directory/mail';

/** The figures the dashboard reads, as GET /stats gives them (threads/stats.ts). */
export interface DashboardFigures {
  intake: { messages: number };
  delivery: { delivered: number; deferred: number; bounced: number };
  dns: { queries: number };
  /** `operations`: LDAP operations of every type and result, in all. */
  ldap: { operations: number };
  queue: { queued: number; held: number };
}

/** The dashboard's dependencies. */
export interface DashboardOptions {
  directory: Directory;
  mail: MailDirectory;
  stats: () => Promise<DashboardFigures>;
  health: () => Health;
  /** The serving endpoints' ports and the address they listen on (probed by /api/health). */
  endpoints: () => { listen: string; ports: { ldap: number; dns: number; smtp: number } };
}

/** Changes shown at most. */
const MAX_CHANGES = 200;

/** How long a health probe waits for a connection, ms. */
const PROBE_MS = 1000;

/** How often the history is sampled, ms, and how many samples it keeps (an hour). */
const SAMPLE_MS = 10_000;
const SAMPLES = 360;

/** One sample of the dashboard's counters (GET /api/stats). */
export interface Sample {
  /** ms since the epoch. */
  time: number;
  messagesIn: number;
  delivered: number;
  deferred: number;
  bounced: number;
  dnsQueries: number;
  /** LDAP operations. */
  ldap: number;
  /** Messages in the queue, held ones included. */
  queue: number;
  queueHeld: number;
}

/** The dashboard's routes (see the module comment); `close` stops the history's sampling. */
export function dashboardRoutes(o: DashboardOptions): ApiRoutes & { close(): void } {
  const sample = async (): Promise<Sample> => {
    const s = await o.stats();
    return {
      time: Date.now(),
      messagesIn: s.intake.messages,
      delivered: s.delivery.delivered,
      deferred: s.delivery.deferred,
      bounced: s.delivery.bounced,
      dnsQueries: s.dns.queries,
      ldap: s.ldap.operations,
      queue: s.queue.queued + s.queue.held,
      queueHeld: s.queue.held,
    };
  };
  const history: Sample[] = [];
  const take = async () => {
    try {
      history.push(await sample());
      if (history.length > SAMPLES) history.shift();
    } catch {
      // a thread that did not answer (restarting): no sample this time
    }
  };
  void take();
  const timer = setInterval(() => void take(), SAMPLE_MS);
  timer.unref();
  const stats: ApiHandler = sample;
  const past: ApiHandler = async () => history;
  const changes: ApiHandler = async ({ query, session }) => {
    const limit = Math.min(MAX_CHANGES, Math.max(1, Number(query.get('limit')) || 50));
    const who = session.identity;
    const mine = who.admin ? undefined : o.mail.managedBy(who).map((n) => o.mail.domain(n)?.ndn).filter((n): n is string => !!n);
    const out: { changeNumber: number; time: string; type: string; dn: string; actor: string | null }[] = [];
    const { first, last } = o.directory.changeRange();
    // Newest first, a window at a time: a manager's changes may be sparse.
    for (let to = last; to >= first && out.length < limit; to -= MAX_CHANGES) {
      const window = [...o.directory.changesSince(Math.max(first, to - MAX_CHANGES + 1), to)].reverse();
      for (const c of window) {
        if (mine && !mine.some((d) => c.targetNdn === d || c.targetNdn.endsWith(',' + d))) continue;
        out.push({ changeNumber: c.changeNumber, time: c.changeTime, type: c.changeType, dn: c.targetDN, actor: c.actor });
        if (out.length >= limit) break;
      }
      if (mine === undefined) break;
    }
    return out;
  };
  const health: ApiHandler = async () => {
    const h = o.health();
    const { listen, ports } = o.endpoints();
    const host = listen === '0.0.0.0' ? '127.0.0.1' : listen === '::' ? '::1' : listen;
    const endpoints = await Promise.all((['ldap', 'dns', 'smtp'] as const).map(async (name) => ({
      name, port: ports[name], up: await accepts(host, ports[name]),
    })));
    return { store: { healthy: h.healthy, ...h.body }, endpoints };
  };
  const routes = new Map<string, ApiHandler>([['stats', stats], ['history', past], ['changes', changes], ['health', health]]);
  return {
    route(method, parts) {
      return method === 'GET' && parts.length === 1 ? routes.get(parts[0]) : undefined;
    },
    close: () => clearInterval(timer),
  };
}

/** Whether `host:port` accepts a TCP connection within PROBE_MS (DNS answers on TCP too). */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (up: boolean) => {
      s.destroy();
      resolve(up);
    };
    s.setTimeout(PROBE_MS, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}
