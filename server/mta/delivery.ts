/**
 * Delivery workers: take due recipients from the durable queue, route each
 * through the routing table and the directory cache, and open the channel
 * the route names — Maildir for `local`, SMTP for `relay` and `smtp`, none
 * for `hold`. Temporary failures retry with exponential back-off up to the
 * queue lifetime; permanent failures and expiry bounce with a DSN (RFC 3464)
 * to the sender, never for a bounce. Work resumes after a restart because
 * the queue is the state.
 *
 * A message just received is first offered to `accept` (intake hands it
 * over before its 250): each recipient whose mailbox is a Maildir here gets
 * its copy at once — written, fsynced, renamed into new/ and new/ fsynced,
 * so it is on disk before the 250 as a queue row would be — and only the
 * others (other channels, held domains, a Maildir write that failed) are
 * queued. Mail of our own users that is DKIM-signed goes through the queue
 * whole (signing stays off the intake path), as does everything before
 * `start` (a predecessor may still be delivering, succession.ts).
 *
 * An attempt whose outcome cannot be recorded (the store refuses the write:
 * a full disk) leaves its recipients due in the queue; the message then
 * waits in memory with the same back-off (retryBase doubling to retryMax)
 * instead of being tried again at once, its next delivery checks the Maildir
 * for a copy made by the failed attempt, and the error is logged at most
 * once a minute per kind (RepeatLimiter).
 */
import { RepeatLimiter, type Logger } from '../log';
import type { QueueMessageRow, QueueRecipientRow, QueueStore } from '../../storage/queue';
import type { RoutingTable } from '../directory/routing';
import { splitAddress } from '../directory/mail';
import type { DirectoryCache } from './cache';
import { queuedMessage, type Spool } from './spool';
import type { DeliveryResult, QueuedMessage } from './types';
import { deliverToMaildir, mailboxPath } from './maildir';
import { buildDsn, spoolDsn, type FailedRecipient } from './dsn';
import type { Outbound } from './outbound';
import type { MessageSigner } from './dkim-sign';
import type { SelfIdentity } from './self';
import { isOurPostmaster } from './postmaster';
import { placeMailbox } from './placement';
import { ownAddressTest } from '../net';
import type { MessageQueue } from './intake';

export interface DeliveryOptions {
  hostname: string;
  /** The data dir; Maildirs live under <dataDir>/mail (see maildir.ts mailboxPath). */
  dataDir: string;
  /** DCMX_MAIL_GROUP: the gid the Maildirs are shared with (maildir.ts), if any. */
  mailGroup?: number;
  concurrency: number;
  /** Seconds: first retry delay, doubling up to retryMax. */
  retryBase: number;
  retryMax: number;
  /** Seconds a message may stay queued. */
  lifetime: number;
  /** Addresses that are ours besides loopback and the host's interfaces (postmaster@[them] is our postmaster). */
  ownAddresses: readonly string[];
}

export interface DeliveryDeps {
  queue: QueueStore;
  spool: Spool;
  routing: RoutingTable;
  cache: DirectoryCache;
  outbound: Outbound;
  /** Catches the cache and routing table up with the change log. */
  sync: () => void;
  /** DKIM-signs our users' mail before any channel takes it (none: nothing is signed). */
  signer?: MessageSigner;
  log: Logger;
  /** Tells whether a domain's own mail hosts, or a mailbox's host, are this unit (then it is delivered here). */
  self: SelfIdentity;
  /** The host of the appliance holding the directory, which holds mailboxes without mailHost; undefined: this process (placement.ts). */
  directoryHost?: string;
}

/** Where one recipient goes on this attempt. */
type Target =
  | { kind: 'local'; mailbox: string }
  | { kind: 'smtp'; domain: string }
  | { kind: 'relay'; hosts: string[] }
  | { kind: 'hold'; why: string }
  | { kind: 'fail'; result: Extract<DeliveryResult, { ok: false }> };

/** The channels a recipient is delivered through: a Maildir here, SMTP to its domain's MX, a relay host; `none` when no route could be chosen. */
export const CHANNELS = ['local', 'smtp', 'relay', 'none'] as const;
export type Channel = (typeof CHANNELS)[number];

/** Recipients by channel and outcome. */
export type ChannelStats = Record<Channel, { delivered: number; deferred: number; bounced: number }>;

function newChannelStats(): ChannelStats {
  return Object.fromEntries(CHANNELS.map((c) => [c, { delivered: 0, deferred: 0, bounced: 0 }])) as ChannelStats;
}

/** The channel of a target (held recipients are not delivered: no channel). */
function channelOf(t: Target): Channel {
  return t.kind === 'local' || t.kind === 'smtp' || t.kind === 'relay' ? t.kind : 'none';
}

export class Delivery implements MessageQueue {
  /** Messages received before this instant may have been delivered by a previous run (or by the previous appliance, succession.ts). */
  private startedAt = Date.now();
  private started = false;
  private readonly inflight = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private again = false;
  private stopped = false;
  private active = 0;
  /** The pass under way (or the last one). */
  private current: Promise<void> | undefined;
  /** Messages being delivered at once (accept), waited for by `stop`. */
  private readonly accepting = new Set<Promise<unknown>>();
  /**
   * Counters for tests, the admin API and benchmarks: recipients delivered,
   * deferred, bounced and held, in all and by the channel they went to
   * (`none`: no route could be chosen); attempts (one per message tried).
   */
  readonly stats = { delivered: 0, deferred: 0, bounced: 0, held: 0, attempts: 0, channels: newChannelStats() };
  /** Resolves waiters when the queue has nothing due and nothing in flight. */
  private idleWaiters: (() => void)[] = [];
  private readonly ours: (ip: string) => boolean;
  /** Messages whose last attempt failed before its outcome was recorded: not tried again before `at`. */
  private readonly failing = new Map<string, { at: number; failures: number }>();
  private readonly errorLog = new RepeatLimiter();

  constructor(private readonly opts: DeliveryOptions, private readonly deps: DeliveryDeps) {
    this.ours = ownAddressTest(opts.ownAddresses);
  }

  /** Starts working the queue (what a previous run left included). Until then a kick does nothing. */
  start(): void {
    this.startedAt = Date.now();
    this.started = true;
    this.kick();
  }

  /** Looks for due work now (after intake queued a message); nothing before `start`. */
  kick(): void {
    if (this.stopped || !this.started) return;
    if (this.running) {
      this.again = true;
      return;
    }
    setImmediate(() => void this.pass());
  }

  /**
   * Stops working the queue: no new attempt starts, and the promise resolves
   * once the attempts under way have ended and recorded their outcome, so
   * the store may be closed after it.
   */
  stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    return Promise.all([this.current, ...[...this.accepting].map((p) => p.catch(() => undefined))]).then(() => undefined);
  }

  /**
   * Takes a message intake has just received (MessageQueue): delivers it at
   * once to every recipient whose mailbox is a Maildir here (see the module
   * comment), queues the recipients left in one group commit
   * (QueueStore.enqueueSoon) and looks for due work; resolves once every
   * recipient's copy is on disk, in its Maildir or in the queue (then, and
   * only then, intake answers 250). Rejects when what is left could not be
   * queued (the caller answers 4xx).
   */
  async accept(m: QueueMessageRow, rcpts: { rcpt: string; held: boolean }[], now: number): Promise<void> {
    let left = rcpts;
    if (this.started && !this.stopped && !(m.submitted && this.deps.signer)) {
      const p = this.deliverAtOnce(m, rcpts);
      this.accepting.add(p);
      try {
        left = await p;
      } finally {
        this.accepting.delete(p);
      }
    }
    if (left.length === 0) {
      // Every copy is in its Maildir; a file the removal leaves goes with the spool sweep at the next start.
      if (m.spool) await this.deps.spool.remove(m.spool).catch((err) => this.deps.log.warn({ err, id: m.id }, 'could not remove a delivered message\'s spool file'));
      return;
    }
    await this.deps.queue.enqueueSoon(m, left, now);
    this.kick();
  }

  /**
   * The first attempt of a message just received, for the recipients whose
   * target is a Maildir here: delivered, counted and logged as an attempt of
   * the queue would be. Returns the recipients left for the queue.
   */
  private async deliverAtOnce(row: QueueMessageRow, rcpts: { rcpt: string; held: boolean }[]): Promise<{ rcpt: string; held: boolean }[]> {
    const local: { rcpt: string; mailbox: string }[] = [];
    for (const r of rcpts) {
      const t = r.held ? undefined : await this.target(r.rcpt);
      if (t?.kind === 'local') local.push({ rcpt: r.rcpt, mailbox: t.mailbox });
    }
    if (local.length === 0) return rcpts;
    const message = queuedMessage(row);
    const results = await Promise.all(local.map((l) => deliverToMaildir({ message, recipient: l.rcpt, mailbox: l.mailbox, checkExisting: false },
      { hostname: this.opts.hostname, group: this.opts.mailGroup })));
    this.stats.attempts++;
    const delay = (Date.now() - row.receivedAt) / 1000;
    const delivered = new Set<string>();
    local.forEach((l, i) => {
      const res = results[i];
      if (!res.ok) return; // the queue's attempt will tell
      delivered.add(l.rcpt);
      this.stats.delivered++;
      this.stats.channels.local.delivered++;
      this.deps.log.info({ id: row.id, to: l.rcpt, delay, status: 'sent', detail: res.detail }, 'delivered');
    });
    return rcpts.filter((r) => !delivered.has(r.rcpt));
  }

  /** Resolves once nothing is due or in flight (tests, benchmarks). */
  whenIdle(): Promise<void> {
    if (!this.running && this.active === 0 && !this.hasDue()) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private hasDue(): boolean {
    const t = this.deps.queue.nextDue();
    return t !== undefined && t <= Date.now();
  }

  private pass(): Promise<void> {
    if (this.running || this.stopped) return Promise.resolve();
    this.current = this.work();
    return this.current;
  }

  /** One pass over the due recipients (again while more came due meanwhile). */
  private async work(): Promise<void> {
    this.running = true;
    try {
      do {
        this.again = false;
        const now = Date.now();
        const due = this.deps.queue.due(now, 1000);
        const byMessage = new Map<string, QueueRecipientRow[]>();
        for (const r of due) {
          if (this.inflight.has(r.messageId)) continue;
          if ((this.failing.get(r.messageId)?.at ?? 0) > now) continue; // waiting out its back-off
          const l = byMessage.get(r.messageId);
          if (l) l.push(r);
          else byMessage.set(r.messageId, [r]);
        }
        const jobs = [...byMessage];
        await new Promise<void>((resolve) => {
          let next = 0;
          const launch = () => {
            while (!this.stopped && this.active < this.opts.concurrency && next < jobs.length) {
              // The leases of the attempts about to begin, in one transaction: a message held or removed since it was found due is skipped.
              const batch = jobs.slice(next, next + this.opts.concurrency - this.active);
              next += batch.length;
              const taken = this.take(batch.map(([id]) => id), Date.now());
              for (const [id, rows] of batch) {
                if (taken && !taken.has(id)) continue;
                this.inflight.add(id);
                this.active++;
                this.deliverMessage(id, rows)
                  .then(() => this.failing.delete(id), (err) => this.attemptFailed(id, err))
                  .finally(() => {
                    this.inflight.delete(id);
                    this.active--;
                    if (next < jobs.length && !this.stopped) launch();
                    else if (this.active === 0) resolve();
                  });
              }
            }
            if (this.active === 0) resolve(); // nothing to do, or stopped before any began
          };
          launch();
        });
        if (due.length >= 1000) this.again = true;
      } while (this.again && !this.stopped);
    } finally {
      this.running = false;
    }
    if (this.stopped) return;
    this.schedule();
    if (this.active === 0 && !this.hasDue()) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const r of w) r();
    }
  }

  /**
   * Takes the lease of each message an attempt is about to start on
   * (QueueStore.claim): the ids still to be tried, or undefined when the
   * store refused the write (a full disk): the pass then goes on without
   * leases, as the queue tools cannot write either.
   */
  private take(ids: string[], now: number): Set<string> | undefined {
    try {
      return this.deps.queue.claim(ids, now);
    } catch (err) {
      const admitted = this.errorLog.admit(`claim:${(err as { code?: unknown })?.code ?? (err as Error)?.message}`);
      if (admitted) this.deps.log.error({ err, suppressed: admitted.suppressed }, 'cannot record the delivery attempts under way; delivering without');
      return undefined;
    }
  }

  /** Puts a message whose attempt threw (its outcome unrecorded) on the back-off, and logs it (rate-limited). */
  private attemptFailed(id: string, err: unknown): void {
    try {
      this.deps.queue.unclaim(id);
    } catch {
      // The store refuses writes: the lease ends with its time (queue-admin.ts ACTIVE_LEASE_MS) or the next run.
    }
    const failures = (this.failing.get(id)?.failures ?? 0) + 1;
    const wait = Math.min(this.opts.retryBase * 2 ** (failures - 1), this.opts.retryMax);
    this.failing.set(id, { at: Date.now() + wait * 1000, failures });
    const code = (err as { code?: unknown })?.code;
    const admitted = this.errorLog.admit(`attempt:${typeof code === 'string' ? code : (err as Error)?.message}`);
    if (admitted) this.deps.log.error({ err, id, retryIn: wait, suppressed: admitted.suppressed }, 'delivery failed unexpectedly; the message waits before its next attempt');
  }

  /**
   * Sets the timer for the next due retry. Recipients still due after a pass
   * belong to messages waiting out a failed attempt's back-off: the timer is
   * then set for the first of those, never for now.
   */
  private schedule(): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    let t = this.deps.queue.nextDue();
    if (t === undefined) return;
    const now = Date.now();
    if (t <= now && this.failing.size) {
      let soonest = Infinity;
      for (const f of this.failing.values()) soonest = Math.min(soonest, f.at);
      t = Math.max(soonest, now + 100);
    }
    this.timer = setTimeout(() => this.kick(), Math.max(0, Math.min(t - now, 60_000)));
    this.timer.unref();
  }

  private async target(rcpt: string): Promise<Target> {
    if (isOurPostmaster(rcpt, this.ours)) return { kind: 'local', mailbox: mailboxPath(this.opts.dataDir, `postmaster@${this.opts.hostname}`) };
    const parts = splitAddress(rcpt);
    if (!parts) return { kind: 'fail', result: { ok: false, permanent: true, status: '5.1.3', diagnostic: 'x-local; bad address syntax' } };
    this.deps.sync();
    const routed = this.deps.routing.resolve(parts.domain);
    if (!routed) return { kind: 'smtp', domain: parts.domain };
    const r = routed.route;
    switch (r.kind) {
      case 'hold':
        return { kind: 'hold', why: `domain ${routed.domain} is on hold` };
      case 'reject':
        return { kind: 'fail', result: { ok: false, permanent: true, status: '5.7.1', diagnostic: `x-local; mail for ${routed.domain} is not accepted` } };
      case 'relay': {
        // The domain's own MX / routing hosts may be this appliance by address: then it is ours.
        const holder = r.ownHosts ? await this.deps.self.holder(r.hosts) : 'other';
        if (holder === 'unknown') {
          return { kind: 'fail', result: { ok: false, permanent: false, status: '4.4.3', diagnostic: `x-local; cannot tell now whether ${r.hosts.join(', ')} is this host` } };
        }
        if (holder === 'other') return { kind: 'relay', hosts: r.hosts };
        return this.localTarget(routed.domain, parts.local);
      }
      case 'smtp':
        return { kind: 'smtp', domain: routed.domain };
      case 'alias':
        return { kind: 'fail', result: { ok: false, permanent: true, status: '5.4.6', diagnostic: 'x-local; alias loop' } };
      case 'local':
        return this.localTarget(routed.domain, parts.local);
    }
  }

  /**
   * Where `local`@`domainName` goes, a domain delivered by this deployment:
   * the user, the catch-all, postmaster/abuse, else 5.1.1; each to its
   * mailbox's host (placement.ts): this unit's Maildir, or relayed there.
   */
  private async localTarget(domainName: string, local: string): Promise<Target> {
    const domain = await this.deps.cache.domain(domainName);
    if (!domain) return { kind: 'fail', result: { ok: false, permanent: false, status: '4.3.0', diagnostic: 'x-local; domain lookup failed' } };
    const address = `${local}@${domainName}`;
    const user = await this.deps.cache.recipient(domain, address);
    if (user) return this.placed(user.address, user.mailHost);
    if (domain.catchall) {
      const c = splitAddress(domain.catchall);
      const cDomain = c && (await this.deps.cache.domain(c.domain));
      const cUser = cDomain && (await this.deps.cache.recipient(cDomain, domain.catchall));
      return cUser ? this.placed(cUser.address, cUser.mailHost) : this.placed(domain.catchall, undefined);
    }
    const lp = local.toLowerCase();
    if (lp === 'postmaster' || lp === 'abuse') return this.placed(`${lp}@${domainName}`, undefined);
    return { kind: 'fail', result: { ok: false, permanent: true, status: '5.1.1', diagnostic: `x-local; <${address}>: user unknown` } };
  }

  /** The mailbox `mailbox` (an address), whose entry names `mailHost`: its Maildir here, or relayed to its host. */
  private async placed(mailbox: string, mailHost: string | undefined): Promise<Target> {
    const p = await placeMailbox(mailHost, this.deps.directoryHost, (hosts) => this.deps.self.holder(hosts));
    switch (p.kind) {
      case 'here':
        return { kind: 'local', mailbox: mailboxPath(this.opts.dataDir, mailbox) };
      case 'host':
        return { kind: 'relay', hosts: [p.host] };
      case 'unknown':
        return { kind: 'fail', result: { ok: false, permanent: false, status: '4.4.3', diagnostic: `x-local; cannot tell now whether ${p.host}, the mailbox's host, is this host` } };
    }
  }

  private async deliverMessage(id: string, rows: QueueRecipientRow[]): Promise<void> {
    const row = this.deps.queue.message(id);
    if (!row) return;
    const message = queuedMessage(row);
    // Signed once for every channel of this attempt: the Maildir copy of mail to another local domain carries it too.
    const signature = await this.sign(message);
    const results = new Map<string, DeliveryResult>();
    const hold: { rcpt: string; why: string }[] = [];
    const smtp = new Map<string, string[]>();
    const relay = new Map<string, { hosts: string[]; rcpts: string[] }>();
    const local: Promise<void>[] = [];
    const channels = new Map<string, Channel>();
    for (const r of rows) {
      const t = await this.target(r.rcpt);
      channels.set(r.rcpt, channelOf(t));
      switch (t.kind) {
        case 'local':
          local.push(deliverToMaildir({
            message, recipient: r.rcpt, mailbox: t.mailbox,
            // A copy may exist from an earlier attempt: a counted one, a previous run's, or one whose outcome the store refused.
            checkExisting: r.attempts > 0 || row.receivedAt < this.startedAt || this.failing.has(id), signature,
          }, { hostname: this.opts.hostname, group: this.opts.mailGroup }).then((res) => {
            results.set(r.rcpt, res);
          }));
          break;
        case 'smtp': {
          const l = smtp.get(t.domain);
          if (l) l.push(r.rcpt);
          else smtp.set(t.domain, [r.rcpt]);
          break;
        }
        case 'relay': {
          const key = t.hosts.join(',');
          const g = relay.get(key);
          if (g) g.rcpts.push(r.rcpt);
          else relay.set(key, { hosts: t.hosts, rcpts: [r.rcpt] });
          break;
        }
        case 'hold':
          hold.push({ rcpt: r.rcpt, why: t.why });
          break;
        case 'fail':
          results.set(r.rcpt, t.result);
          break;
      }
    }
    const remote: Promise<void>[] = [];
    for (const [domain, rcpts] of smtp) {
      remote.push(this.deps.outbound.deliver({ message, recipients: rcpts, route: { kind: 'smtp', domain }, signature }).then((m) => {
        for (const [k, v] of m) results.set(k, v);
      }));
    }
    for (const g of relay.values()) {
      remote.push(this.deps.outbound.deliver({ message, recipients: g.rcpts, route: { kind: 'relay', hosts: g.hosts }, signature }).then((m) => {
        for (const [k, v] of m) results.set(k, v);
      }));
    }
    await Promise.all([...local, ...remote]);
    this.stats.attempts++;

    const now = Date.now();
    const done: string[] = [];
    const retry: { rcpt: string; at: number; error: string }[] = [];
    const failed: FailedRecipient[] = [];
    const expired = now - row.receivedAt > this.opts.lifetime * 1000;
    // One line per recipient and attempt, as an operator greps Postfix's log for status=sent/deferred/bounced.
    const delay = (now - row.receivedAt) / 1000;
    const log = this.deps.log;
    for (const r of rows) {
      const res = results.get(r.rcpt);
      if (!res) continue; // held
      const channel = this.stats.channels[channels.get(r.rcpt) ?? 'none'];
      if (res.ok) {
        done.push(r.rcpt);
        this.stats.delivered++;
        channel.delivered++;
        log.info({ id, to: r.rcpt, delay, status: 'sent', detail: res.detail }, 'delivered');
      } else if (res.permanent || expired) {
        log.info({ id, to: r.rcpt, delay, status: 'bounced', dsn: res.permanent ? res.status : '4.4.7', relay: res.remoteMta, reason: res.diagnostic }, 'undeliverable');
        done.push(r.rcpt);
        failed.push({
          recipient: r.rcpt, action: 'failed', status: res.permanent ? res.status : '4.4.7',
          diagnostic: res.permanent ? res.diagnostic : `${res.diagnostic} (message expired after ${this.opts.lifetime} s)`, remoteMta: res.remoteMta,
        });
        this.stats.bounced++;
        channel.bounced++;
      } else {
        const wait = Math.min(this.opts.retryBase * 2 ** r.attempts, this.opts.retryMax) * 1000;
        retry.push({ rcpt: r.rcpt, at: now + wait, error: `${res.status} ${res.diagnostic}` });
        this.stats.deferred++;
        channel.deferred++;
        log.info({ id, to: r.rcpt, delay, status: 'deferred', dsn: res.status, relay: res.remoteMta, reason: res.diagnostic, retryIn: wait / 1000 }, 'deferred');
      }
    }
    this.stats.held += hold.length;
    for (const h of hold) log.info({ id, to: h.rcpt, delay, status: 'held', reason: h.why }, 'held');
    // The bounce is queued before the failed recipients leave the queue, so a crash in between repeats a bounce rather than losing it.
    if (failed.length) await this.bounce(message, failed);
    const empty = await this.deps.queue.settleSoon(id, { done, retry, hold, attemptedAt: now, stillHeld: (rcpt) => this.onHold(rcpt) });
    if (empty && row.spool) await this.deps.spool.remove(row.spool);
    // A recipient whose domain left hold during the attempt is due now (QueueStore.settle).
    if (hold.length) this.kick();
  }

  /** Whether the routing table holds `rcpt`'s domain now (target's 'hold'), read without waiting: for settle's transaction. */
  private onHold(rcpt: string): boolean {
    const parts = splitAddress(rcpt);
    return parts !== undefined && this.deps.routing.resolve(parts.domain)?.route.kind === 'hold';
  }

  /**
   * The DKIM signature fields for `message` (dkim-sign.ts), or undefined. A
   * signing failure is logged and the message goes unsigned (as a signature
   * a verifier could not check would): delivery never waits on it.
   */
  private async sign(message: QueuedMessage): Promise<Buffer | undefined> {
    if (!this.deps.signer) return undefined;
    try {
      return await this.deps.signer.signatures(message);
    } catch (err) {
      const admitted = this.errorLog.admit(`dkim:${(err as Error)?.message}`);
      if (admitted) this.deps.log.warn({ err, id: message.id, suppressed: admitted.suppressed }, 'could not DKIM-sign a message; it goes unsigned');
      return undefined;
    }
  }

  /** Queues a DSN to the sender (buildDsn declines for null senders and auto-replies). */
  private async bounce(message: QueuedMessage, failed: FailedRecipient[]): Promise<void> {
    const dsn = await buildDsn(message, failed, { hostname: this.opts.hostname });
    if (!dsn) {
      this.deps.log.info({ id: message.id, failed: failed.map((f) => f.recipient) }, 'undeliverable, no bounce sent (null sender or auto-reply)');
      return;
    }
    const now = Date.now();
    const { row, rcpts } = await spoolDsn(this.deps.spool, dsn, now);
    this.deps.queue.enqueue(row, rcpts, now);
    this.deps.log.info({ id: message.id, dsn: row.id, to: dsn.to }, 'bounce queued');
    this.kick();
  }
}
