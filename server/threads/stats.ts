/**
 * The figures of GET /stats, per process: each serving thread reports its
 * own (threadFigures, over the endpoints it runs), and the process sums
 * them (sumFigures) beside the main thread's own (queue, delivery, history).
 * With one thread, that thread's figures are the sums.
 */
import type { FollowerFigures, LdapEndpoint, LdapStats } from '../ldap/server';
import type { DnsQueryFigures } from '../dns/query-counts';
import type { DnsEndpoint } from '../dns/server';
import type { IntakeSide, MailViews } from '../mta';
import type { CacheStats } from '../mta/cache';
import type { PolicyStats } from '../mta/policy';
import type { PasswordStats } from '../directory/passwords';
import type { Directory } from '../directory/directory';

/** One serving thread's figures (also the one thread's, with DCMX_THREADS=1). */
export interface ThreadFigures {
  /** The thread's slot: 1..DCMX_THREADS (0: the main thread, serving alone). */
  thread: number;
  /** Times this slot's thread was replaced after it died. */
  restarts: number;
  ldap: LdapStats;
  dns: {
    /** Packets received. */
    queries: number;
    /** Queries answered, by transport, question type and RCODE (query-counts.ts). */
    answered: DnsQueryFigures;
    cacheHits: number;
    dropped: number;
    formerr: number;
    servfail: number;
    /** Entries in the thread's answer cache. */
    cacheSize: number;
    /** Cached answers dropped because a write could change them (answer-cache.ts). */
    cacheDropped: number;
    /** Whole answer-cache drops (a gap in the change log, a rename). */
    cacheFlushes: number;
    /** Answers not cached: the cache was full and their key missed for the first time (answer-cache.ts, Admission). */
    cacheNotAdmitted: number;
    rrl: { dropped: number; slipped: number } | null;
    tcpConnections: number;
    /**
     * The UDP socket (udp-batch.ts): nativeSockets is 1 where native/udpbatch serves it, 0 on
     * dgram (summed: the threads served natively); batches counts recvmmsg batches; sendDropped
     * the replies the kernel would not take (send buffer full).
     */
    udp: { nativeSockets: number; datagrams: number; batches: number; replies: number; sendDropped: number; sendErrors: number };
  };
  /** Intake's counters (Intake.stats), and `sessions` open now. */
  intake: IntakeSide['intake']['stats'] & { sessions: number };
  cache: CacheStats & { size: number };
  routing: { builds: number; domainReads: number; version: number };
  provisioning: PolicyStats | null;
  /** Password checks computed, by kind of work, and stored values refused over the cost caps. */
  passwords: PasswordStats;
  /** The change number the thread's views have followed (Directory.applied). */
  applied: number;
  /** The Content Sync consumers in their persist phase on the thread's LDAP endpoint. */
  followers: FollowerFigures[];
}

/** The endpoints a thread runs, as threadFigures reads them. */
export interface ThreadEndpoints {
  directory: Directory;
  ldap: LdapEndpoint;
  dns: DnsEndpoint;
  smtp: IntakeSide;
  views: MailViews;
}

/** A thread's figures, read from its endpoints now. */
export function threadFigures(thread: number, restarts: number, e: ThreadEndpoints): ThreadFigures {
  const a = e.dns.answerer;
  return {
    thread,
    restarts,
    ldap: e.ldap.stats(),
    dns: { ...a.stats, answered: a.counts.figures(), cacheSize: a.cacheSize,
      cacheDropped: a.cache?.stats.invalidated ?? 0, cacheFlushes: a.cache?.stats.flushes ?? 0,
      cacheNotAdmitted: a.cache?.stats.notAdmitted ?? 0, rrl: e.dns.rrl ? { ...e.dns.rrl.stats } : null,
      tcpConnections: e.dns.tcpStats().connections, udp: udpFigures(e.dns) },
    ...mailFigures(e.smtp, e.views),
    routing: { ...e.views.routing.stats, version: e.views.routing.version },
    passwords: passwordFigures(e.directory),
    applied: e.directory.applied,
    followers: e.ldap.followers(),
  };
}

/** The DNS endpoint's UDP counters as ThreadFigures has them. */
function udpFigures(dns: DnsEndpoint): ThreadFigures['dns']['udp'] {
  const { native, ...counts } = dns.udpStats();
  return { nativeSockets: native ? 1 : 0, ...counts };
}

/** The transfer unit's figures of a thread (or of a remote unit): its intake, its directory cache, its provisioning policy. */
export function mailFigures(smtp: IntakeSide, views: Pick<MailViews, 'cache'>): Pick<ThreadFigures, 'intake' | 'cache' | 'provisioning'> {
  return {
    intake: { ...smtp.intake.stats, sessions: smtp.intake.openSessions },
    cache: { ...views.cache.stats, size: views.cache.size },
    provisioning: smtp.policy ? { ...smtp.policy } : null,
  };
}

/** A copy of `directory`'s password figures. */
export function passwordFigures(directory: Directory): PasswordStats {
  const p = directory.passwords.stats;
  return { verified: { ...p.verified }, overCap: p.overCap };
}

/**
 * The sum of `items`, field by field, for objects of one shape: numbers
 * are added, nested objects summed alike, null stays null unless some item
 * has an object there; any other value is the first item's.
 */
export function sumFigures<T>(items: readonly T[]): T {
  const present = items.filter((i) => i !== null && i !== undefined);
  if (present.length === 0) return items[0];
  const first = present[0];
  if (typeof first === 'number') return present.reduce((s, n) => (s as number) + (n as number), 0) as T;
  if (typeof first !== 'object' || Array.isArray(first)) return first;
  const out: Record<string, unknown> = {};
  for (const key of new Set(present.flatMap((i) => Object.keys(i as object)))) {
    out[key] = sumFigures(present.map((i) => (i as Record<string, unknown>)[key]));
  }
  return out as T;
}

/**
 * The serving threads' counters, summed so that they never go back when a
 * thread dies (GET /metrics: a Prometheus counter only grows). A thread
 * counts from 0; the figures last seen of each slot's earlier threads stay
 * in the sum (`restarts` tells a new thread in the slot), and a slot that
 * did not answer keeps its last figures. What a dead thread counted after
 * it was last asked is lost, never counted twice. Only counter fields of
 * the sum mean anything: the gauges (open connections, cache sizes) are
 * those of the live figures.
 */
export class CounterTotals<T extends { thread: number; restarts: number } = ThreadFigures> {
  private readonly slots = new Map<number, { restarts: number; gone: T[]; last: T }>();

  /** Takes the figures of the threads that answered now; returns every counter's process total (undefined before any thread answered). */
  add(threads: readonly T[]): T | undefined {
    for (const f of threads) {
      const s = this.slots.get(f.thread);
      if (!s) {
        this.slots.set(f.thread, { restarts: f.restarts, gone: [], last: f });
        continue;
      }
      if (f.restarts !== s.restarts) {
        // A new thread in the slot: its predecessor's last figures become part of the slot's base.
        s.gone = [s.gone.length ? sumFigures([...s.gone, s.last]) : s.last];
        s.restarts = f.restarts;
      }
      s.last = f;
    }
    return sumFigures([...this.slots.values()].flatMap((s) => [...s.gone, s.last]));
  }
}

/** What the main thread adds to the threads' sums: the queue, delivery and history are the process's. */
export interface MainFigures<Q, D, H> {
  queue: Q;
  delivery: D;
  /** The routing table's version as the main thread has it. */
  routingVersion: number;
  history: H;
  /** The main thread's own password checks, when it does not serve (it checks some: bootstrap, the tests' direct calls). */
  passwords?: PasswordStats;
}

/** GET /stats: the serving threads' figures summed, the main thread's own, and each thread's (`threads`). */
export interface ProcessStats<Q = unknown, D = unknown, H = unknown> {
  cache: ThreadFigures['cache'];
  queue: Q;
  delivery: D;
  intake: ThreadFigures['intake'];
  routing: ThreadFigures['routing'];
  provisioning: PolicyStats | null;
  dns: ThreadFigures['dns'];
  ldap: LdapStats;
  passwords: PasswordStats;
  history: H;
  threads: ThreadFigures[];
}

/** Sums `threads` (at least one: throws when no thread answered) beside the main thread's figures. */
export function processStats<Q, D, H>(threads: readonly ThreadFigures[], main: MainFigures<Q, D, H>): ProcessStats<Q, D, H> {
  if (threads.length === 0) throw new Error('no serving thread answered');
  const sum = sumFigures(threads);
  return {
    cache: sum.cache,
    queue: main.queue,
    delivery: main.delivery,
    intake: sum.intake,
    routing: { ...sum.routing, version: main.routingVersion },
    provisioning: sum.provisioning,
    dns: sum.dns,
    ldap: sum.ldap,
    passwords: main.passwords ? sumFigures([sum.passwords, main.passwords]) : sum.passwords,
    history: main.history,
    threads: [...threads],
  };
}
