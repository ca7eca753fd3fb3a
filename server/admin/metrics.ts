/**
 * GET /metrics: the process's figures in the Prometheus text exposition
 * format, written by prom-client (its registry, counters, gauges and the
 * default process metrics), valid under `promtool check metrics`.
 *
 * The figures are those of GET /stats, gathered the same way: each serving
 * thread reports its own (threads/stats.ts threadFigures), the main thread
 * adds the queue, delivery and change log. A remote transfer unit
 * (remote-unit.ts) gives the part of them it has: intake, cache, queue and
 * delivery, and its directory's synchronization. Counters come from CounterTotals,
 * so they never go back when a serving thread dies and is replaced; gauges
 * are read from the threads that answered now. Scrapes are taken one at a
 * time (a scrape's figures are never older than the previous one's).
 *
 * Labels are bounded: operations, result codes, question types, RCODEs,
 * transports, channels, outcomes, queue states, thread slots and
 * follower ordinals; never a domain, an address or a DN (the README lists
 * every series).
 */
import type * as PromClient from 'prom-client';
import type { Counter, Gauge, Metric, Registry } from 'prom-client';
import { CounterTotals, sumFigures, type ThreadFigures } from '../threads/stats';
import type { HistogramFigures } from '../tally';
import type { PasswordStats } from '../directory/passwords';
import { CHANNELS, type Delivery } from '../mta/delivery';
import { MESSAGE_STATUSES, type QueueAdmin, type QueueDepth } from '../mta/queue-admin';
import { LDAP_LATENCY_BUCKETS } from '../ldap/op-counts';
import { lazily } from '../lazy';

/** prom-client (with @opentelemetry/api, ~15 MB of RSS), loaded at the first scrape (lazy.ts). */
const promClient = lazily(() => require('prom-client') as typeof PromClient); // eslint-disable-line @typescript-eslint/no-require-imports

/**
 * A serving thread's figures as the metrics read them: a thread of the
 * appliance gives all of ThreadFigures; a remote transfer unit has no LDAP
 * or DNS endpoint, checks no password itself and follows no change clock.
 */
export type ServingFigures = Pick<ThreadFigures, 'thread' | 'restarts' | 'intake' | 'cache' | 'provisioning'>
  & Partial<Pick<ThreadFigures, 'ldap' | 'dns' | 'passwords' | 'applied' | 'followers'>>;

/** A remote transfer unit's view of its directory (directory-client/remote-source.ts). */
export interface UnitDirectoryFigures {
  reachable: boolean;
  /** Changes applied from the Content Sync feed, full reloads, connections made. */
  changes: number;
  reloads: number;
  connects: number;
}

/** What the metrics are read from. */
export interface MetricsSources {
  /** The serving threads' figures (those that answered; threads/host.ts stats), or the one thread's. */
  threads(): Promise<ServingFigures[]>;
  /** The queue (main thread), as the operator's queue tools see it. */
  queue: Pick<QueueAdmin, 'depth'>;
  /** Delivery's counters (main thread). */
  delivery: Delivery['stats'];
  /** The last change number committed (the appliance; a unit does not know it). */
  lastChange?: () => number;
  /** The main thread's own password checks, when it does not serve. */
  mainPasswords?: () => PasswordStats;
  /** A remote transfer unit's directory. */
  directory?: () => UnitDirectoryFigures;
}

/**
 * One scrape's figures, as the series are made from them (also what a
 * console's charts may poll, admin/http.ts's callers): `totals` holds the
 * threads' counters, monotonic; `live` the threads' figures summed now
 * (its gauges: open connections, cache sizes); `threads` each thread's.
 */
export interface MetricsFigures {
  /** When they were gathered (ms since the epoch). */
  at: number;
  totals: ServingFigures | undefined;
  live: ServingFigures | undefined;
  threads: ServingFigures[];
  queue: QueueDepth;
  delivery: Delivery['stats'];
  lastChange: number | undefined;
  mainPasswords: PasswordStats | undefined;
  directory: UnitDirectoryFigures | undefined;
}

type Labels = Record<string, string>;
type Sample = readonly [Labels, number];

/** The threads' counters of a scrape (monotonic). */
const t = (f: MetricsFigures) => f.totals;

/** One sample without labels, none when the figure is absent. */
const one = (v: number | undefined): Sample[] => (v === undefined ? [] : [[{}, v]]);

/** Entries of a nested record two levels deep as samples labelled by `a` and `b`. */
function nested2(rec: Record<string, Record<string, number>> | undefined, a: string, b: string): Sample[] {
  return Object.entries(rec ?? {}).flatMap(([x, inner]) => Object.entries(inner).map(([y, n]) => [{ [a]: x, [b]: y }, n] as const));
}

/**
 * A histogram whose buckets are counted elsewhere (the serving threads,
 * tally.ts): prom-client's Histogram only counts its own observations, so
 * this gives the registry the same metric object a Histogram gives (its
 * `get()`), and prom-client writes the exposition.
 */
class FiguresHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelName: string,
    private readonly bounds: readonly number[],
    private readonly read: () => Record<string, HistogramFigures>,
  ) {}

  async get() {
    const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = [];
    for (const [label, h] of Object.entries(this.read())) {
      for (const b of this.bounds) values.push({ metricName: `${this.name}_bucket`, labels: { [this.labelName]: label, le: b }, value: h.buckets[String(b)] ?? 0 });
      values.push({ metricName: `${this.name}_bucket`, labels: { [this.labelName]: label, le: '+Inf' }, value: h.count });
      values.push({ metricName: `${this.name}_sum`, labels: { [this.labelName]: label }, value: h.sum });
      values.push({ metricName: `${this.name}_count`, labels: { [this.labelName]: label }, value: h.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

/** A process's metrics registry: the appliance's, or a remote transfer unit's (see the module comment). */
export class ApplianceMetrics {
  private made: Registry | undefined;
  private readonly totals = new CounterTotals<ServingFigures>();
  /** The figures the collectors read: set just before the registry is read, in the same turn. */
  private current: MetricsFigures | undefined;
  /** The scrape under way: the next waits for it. */
  private last: Promise<unknown> = Promise.resolve();

  constructor(private readonly sources: MetricsSources) {}

  /**
   * prom-client's registry of every series, made at the first scrape, not
   * at start (prom-client is lazy): the default process metrics that count
   * events (GC durations, event loop lag) count from then.
   */
  get registry(): Registry {
    if (this.made) return this.made;
    const prom = promClient();
    this.made = new prom.Registry();
    prom.collectDefaultMetrics({ register: this.made, prefix: 'dcmx_' });
    // Three of prom-client's gauges end in _total, which `promtool check metrics` refuses for a gauge;
    // each is the sum of its by-type gauge beside it (dcmx_nodejs_active_handles{type}...).
    for (const name of ['handles', 'requests', 'resources']) this.made.removeSingleMetric(`dcmx_nodejs_active_${name}_total`);
    this.define();
    return this.made;
  }

  /** The exposition: content type and body. */
  render(): Promise<{ contentType: string; body: string }> {
    return this.oneAtATime(async () => {
      this.current = await this.gather();
      // Every collector runs synchronously within metrics()'s first turn, reading `current`.
      const body = this.registry.metrics();
      return { contentType: this.registry.contentType, body: await body };
    });
  }

  /** The figures of a scrape (see MetricsFigures), taken like one. */
  figures(): Promise<MetricsFigures> {
    return this.oneAtATime(() => this.gather());
  }

  private oneAtATime<T>(f: () => Promise<T>): Promise<T> {
    const run = this.last.then(f, f);
    this.last = run.catch(() => undefined);
    return run;
  }

  private async gather(): Promise<MetricsFigures> {
    const threads = await this.sources.threads();
    return {
      at: Date.now(),
      totals: this.totals.add(threads),
      live: threads.length ? sumFigures(threads) : undefined,
      threads,
      queue: this.sources.queue.depth(),
      delivery: this.sources.delivery,
      lastChange: this.sources.lastChange?.(),
      mainPasswords: this.sources.mainPasswords?.(),
      directory: this.sources.directory?.(),
    };
  }

  /** A counter whose samples are read from the current figures at each scrape. */
  private counter(name: string, help: string, labelNames: string[], read: (f: MetricsFigures) => Sample[]): void {
    this.series('counter', name, help, labelNames, read);
  }

  /** A gauge whose samples are read from the current figures at each scrape. */
  private gauge(name: string, help: string, labelNames: string[], read: (f: MetricsFigures) => Sample[]): void {
    this.series('gauge', name, help, labelNames, read);
  }

  private series(type: 'counter' | 'gauge', name: string, help: string, labelNames: string[], read: (f: MetricsFigures) => Sample[]): void {
    const self = this;
    const { Counter, Gauge } = promClient();
    const kind: typeof Counter | typeof Gauge = type === 'counter' ? Counter : Gauge;
    new kind({
      name, help, labelNames, registers: [this.registry],
      collect(this: Counter | Gauge) {
        this.reset();
        if (!self.current) return;
        // A counter's value is its total so far: set by adding it to the reset counter.
        for (const [labels, v] of read(self.current)) {
          if (this instanceof Counter) this.inc(labels, v);
          else this.set(labels, v);
        }
      },
    });
  }

  /**
   * The series: the transfer unit's everywhere (intake, delivery, queue,
   * directory cache, provisioning); the appliance's LDAP, DNS, password
   * checks, change log and serving threads where there are (`lastChange`
   * given); a remote unit's directory where there is one (`directory`).
   */
  private define(): void {
    const appliance = this.sources.lastChange !== undefined;
    if (appliance) this.defineEndpoints();
    this.defineMail();
    if (appliance) this.defineDirectory();
    if (this.sources.directory) this.defineUnit();
  }

  /** LDAP and DNS. */
  private defineEndpoints(): void {
    // ---- LDAP
    this.counter('dcmx_ldap_operations_total', 'LDAP operations answered, by operation and result code (none: unbind, abandon)', ['op', 'result'],
      (f) => nested2(t(f)?.ldap?.operations?.results, 'op', 'result'));
    this.registry.registerMetric(new FiguresHistogram('dcmx_ldap_operation_duration_seconds', 'Time from an LDAP request to its result, by operation',
      'op', LDAP_LATENCY_BUCKETS, () => this.current?.totals?.ldap?.operations?.latency ?? {}) as unknown as Metric);
    this.counter('dcmx_ldap_connections_total', 'LDAP connections accepted', [], (f) => one(t(f)?.ldap?.accepted));
    this.counter('dcmx_ldap_connections_refused_total', 'LDAP connections refused: too many in all (limit) or from one client (client)', ['reason'],
      (f) => {
        const l = t(f)?.ldap;
        return l ? [[{ reason: 'limit' }, l.refused], [{ reason: 'client' }, l.refusedPerClient]] : [];
      });
    this.gauge('dcmx_ldap_connections', 'LDAP connections open', [], (f) => one(f.live?.ldap?.connections));

    // ---- DNS
    this.counter('dcmx_dns_queries_total', 'DNS queries answered, by transport, question type and RCODE', ['transport', 'qtype', 'rcode'],
      (f) => Object.entries(t(f)?.dns?.answered ?? {}).flatMap(([transport, byType]) =>
        Object.entries(byType).flatMap(([qtype, byRcode]) => Object.entries(byRcode).map(([rcode, n]) => [{ transport, qtype, rcode }, n] as const))));
    this.counter('dcmx_dns_packets_dropped_total', 'DNS packets dropped unanswered (too short, or a response)', [], (f) => one(t(f)?.dns?.dropped));
    this.counter('dcmx_dns_answer_cache_hits_total', 'DNS answers taken from the answer cache', [], (f) => one(t(f)?.dns?.cacheHits));
    this.counter('dcmx_dns_rrl_total', 'UDP responses held back by response rate limiting: dropped, or slipped (truncated)', ['action'],
      (f) => {
        const rrl = t(f)?.dns?.rrl;
        return rrl ? [[{ action: 'dropped' }, rrl.dropped], [{ action: 'slipped' }, rrl.slipped]] : [];
      });
    this.gauge('dcmx_dns_tcp_connections', 'DNS TCP connections open', [], (f) => one(f.live?.dns?.tcpConnections));
    this.gauge('dcmx_dns_answer_cache_entries', 'Answers in the DNS answer caches', [], (f) => one(f.live?.dns?.cacheSize));
  }

  /** SMTP intake, delivery and the queue, the directory cache, provisioning at RCPT. */
  private defineMail(): void {
    // ---- SMTP intake
    this.counter('dcmx_smtp_sessions_total', 'SMTP sessions admitted', [], (f) => one(t(f)?.intake.sessionsAccepted));
    this.counter('dcmx_smtp_sessions_refused_total', 'SMTP connections refused (too many, in all or from one client)', [], (f) => one(t(f)?.intake.refusedConnections));
    this.gauge('dcmx_smtp_sessions', 'SMTP sessions open', [], (f) => one(f.live?.intake.sessions));
    this.counter('dcmx_smtp_auth_failures_total', 'SMTP AUTH attempts refused (bad credentials, or a client throttled)', [], (f) => one(t(f)?.intake.authFailures));
    this.counter('dcmx_smtp_recipients_total', 'RCPT TO answered: accepted, rejected (5xx) or deferred (4xx)', ['outcome'],
      (f) => (t(f) ? [[{ outcome: 'accepted' }, t(f)!.intake.accepted], [{ outcome: 'rejected' }, t(f)!.intake.rejectedRcpt], [{ outcome: 'deferred' }, t(f)!.intake.deferredRcpt]] : []));
    this.counter('dcmx_smtp_relay_denied_total', 'Recipients refused because the client may not relay (550 5.7.1)', [], (f) => one(t(f)?.intake.relayDenied));
    this.counter('dcmx_smtp_messages_total', 'Messages at DATA: accepted (queued) or refused', ['outcome'],
      (f) => (t(f) ? [[{ outcome: 'accepted' }, t(f)!.intake.messages], [{ outcome: 'refused' }, t(f)!.intake.refusedMessages]] : []));
    this.counter('dcmx_smtp_received_bytes_total', 'Bytes of the messages queued', [], (f) => one(t(f)?.intake.bytes));

    // ---- Delivery and queue (main thread)
    this.counter('dcmx_deliveries_total', 'Recipients by delivery outcome and channel (none: no route could be chosen)', ['channel', 'outcome'],
      (f) => CHANNELS.flatMap((channel) => (['delivered', 'deferred', 'bounced'] as const).map((outcome) => [{ channel, outcome }, f.delivery.channels[channel][outcome]] as const)));
    this.counter('dcmx_delivery_held_total', 'Recipients held (their domain on hold) when their delivery was due', [], (f) => one(f.delivery.held));
    this.counter('dcmx_delivery_attempts_total', 'Delivery attempts (one per message tried)', [], (f) => one(f.delivery.attempts));
    const states = MESSAGE_STATUSES;
    this.gauge('dcmx_queue_messages', 'Messages in the queue, by status (queued, deferred, active, hold: as dcmx queue list shows them)', ['status'],
      (f) => states.map((s) => [{ status: s }, f.queue[s].messages] as const));
    this.gauge('dcmx_queue_recipients', 'Recipients in the queue, by their message\'s status', ['status'], (f) => states.map((s) => [{ status: s }, f.queue[s].recipients] as const));
    this.gauge('dcmx_queue_oldest_message_age_seconds', 'Age of the oldest message of that status (0: none)', ['status'],
      (f) => states.map((s) => [{ status: s }, f.queue[s].oldest === undefined ? 0 : Math.max(0, (f.at - f.queue[s].oldest!) / 1000)] as const));

    // ---- The transfer unit's directory cache
    this.counter('dcmx_directory_cache_hits_total', 'Directory cache lookups answered from the cache: an entry (positive) or a cached absence (negative)', ['kind'],
      (f) => (t(f) ? [[{ kind: 'positive' }, t(f)!.cache.hits], [{ kind: 'negative' }, t(f)!.cache.negativeHits]] : []));
    this.counter('dcmx_directory_cache_misses_total', 'Directory cache lookups that read the directory', [], (f) => one(t(f)?.cache.misses));
    this.counter('dcmx_directory_cache_invalidations_total', 'Directory cache entries dropped because the change log changed them', [], (f) => one(t(f)?.cache.invalidations));
    this.counter('dcmx_directory_cache_flushes_total', 'Whole directory cache flushes (a gap in the change log)', [], (f) => one(t(f)?.cache.flushes));
    this.gauge('dcmx_directory_cache_entries', 'Entries in the directory caches', [], (f) => one(f.live?.cache.size));

    // ---- Provisioning at RCPT
    this.counter('dcmx_provisioning_total', 'New domains at RCPT by outcome: provisioned, refused, deferred (4xx), limited (rate limit)', ['outcome'],
      (f) => Object.entries(t(f)?.provisioning ?? {}).map(([outcome, n]) => [{ outcome }, n as number] as const));
  }

  /** Password checks, the change log and its followers, the serving threads. */
  private defineDirectory(): void {
    // ---- Password checks
    this.counter('dcmx_password_checks_total', 'Password checks computed, by scheme (failed binds\' dummy checks included)', ['scheme'], (f) => {
      const sum: Record<string, number> = {};
      for (const p of [t(f)?.passwords, f.mainPasswords]) for (const [k, n] of Object.entries(p?.verified ?? {})) sum[k] = (sum[k] ?? 0) + n;
      return Object.entries(sum).map(([scheme, n]) => [{ scheme }, n] as const);
    });

    // ---- Change log and its followers
    this.gauge('dcmx_changelog_last_change_number', 'The last change number committed', [], (f) => one(f.lastChange));
    this.gauge('dcmx_changelog_follower_lag', 'Changes committed that a follower has not followed yet: a serving thread\'s views (kind thread), '
      + 'a Content Sync consumer in its persist phase (unit: a transfer unit identity, replica: a replication identity, consumer: another), '
      + 'by thread slot and ordinal among that thread\'s followers', ['kind', 'thread', 'ordinal'], (f) => this.followers(f, (x) => x.lag));
    this.gauge('dcmx_changelog_follower_backlog_bytes', 'Bytes sent to a Content Sync consumer that it has not taken yet', ['kind', 'thread', 'ordinal'],
      (f) => this.followers(f, (x) => x.backlog).filter(([l]) => l.kind !== 'thread'));

    // ---- Serving threads
    this.gauge('dcmx_serving_threads', 'Serving threads that answered this scrape', [], (f) => one(f.threads.length));
    this.counter('dcmx_serving_thread_restarts_total', 'Times a serving thread was replaced after it died, by slot', ['thread'],
      (f) => f.threads.map((x) => [{ thread: String(x.thread) }, x.restarts] as const));
  }

  /** A remote transfer unit's directory. */
  private defineUnit(): void {
    this.gauge('dcmx_unit_directory_reachable', 'A remote transfer unit: 1 while its directory is connected and synchronized', [],
      (f) => one(f.directory && (f.directory.reachable ? 1 : 0)));
    this.counter('dcmx_unit_directory_sync_total', 'A remote transfer unit\'s Content Sync with its directory: changes applied, full reloads, connections made', ['event'],
      (f) => (f.directory ? [[{ event: 'change' }, f.directory.changes], [{ event: 'reload' }, f.directory.reloads], [{ event: 'connect' }, f.directory.connects]] : []));
  }

  /** Every follower of the change log, labelled by kind, thread slot and ordinal, with `value` of it. */
  private followers(f: MetricsFigures, value: (x: { lag: number; backlog: number }) => number): Sample[] {
    const out: Sample[] = [];
    const last = f.lastChange;
    if (last === undefined) return out;
    for (const th of f.threads) {
      if (th.applied === undefined) continue;
      const thread = String(th.thread);
      out.push([{ kind: 'thread', thread, ordinal: '0' }, value({ lag: Math.max(0, last - th.applied), backlog: 0 })]);
      const ordinals: Record<string, number> = {};
      for (const c of [...(th.followers ?? [])].sort((a, b) => a.since - b.since)) {
        const ordinal = String(ordinals[c.kind] = (ordinals[c.kind] ?? -1) + 1);
        out.push([{ kind: c.kind, thread, ordinal }, value({ lag: Math.max(0, last - c.position), backlog: c.backlog })]);
      }
    }
    return out;
  }
}
