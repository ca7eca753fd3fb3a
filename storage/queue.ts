/**
 * The durable mail queue's rows (migrations 003-005, 008, 010, 011). Delivered and bounced
 * recipients are removed; a message row goes when its last recipient does.
 * Commits are fsynced (synchronous=FULL), so a message acknowledged with 250
 * after `enqueue` returns survives a crash.
 */
import type { Statement } from 'better-sqlite3';
import type { Store } from './store';

export interface QueueMessageRow {
  id: string;
  receivedAt: number;
  sender: string;
  size: number;
  /** Spool file path, or '' when the bytes are inline. */
  spool: string;
  /** The message bytes, for small messages kept in the row. */
  body?: Buffer | null;
  /** MAIL FROM carried SMTPUTF8 (RFC 6531); absent = false (migration 005). */
  smtpUtf8?: boolean;
  /** MAIL FROM carried BODY=8BITMIME (RFC 6152); absent = false (migration 005). */
  eightBitMime?: boolean;
  /** Mail of our own users: from a client that may relay, or made here (a DSN); absent = false (migration 010). */
  submitted?: boolean;
  /** The DN an SMTP AUTH client of a submitted message authenticated as; null or absent = none (migration 011). */
  submitter?: string | null;
  /** When the operator put the message on hold (ms); null or absent = not held (migration 008). */
  heldAt?: number | null;
  /** When a delivery attempt took the message (its lease, ms); null or absent = none (migration 008). */
  deliveringSince?: number | null;
}

/** A message with its recipients, as the queue tools list it. */
export interface QueueEntryRow {
  message: QueueMessageRow;
  recipients: QueueRecipientRow[];
}

export interface QueueRecipientRow {
  messageId: string;
  rcpt: string;
  state: 'queued' | 'held';
  attempts: number;
  nextAttempt: number;
  lastError: string | null;
  /** When its last attempt ended (ms); null before the first (migration 008). */
  lastAttempt: number | null;
}

/**
 * Group commit: operations submitted while the event loop is busy run in one
 * transaction (one fsync) on the next turn, and each caller's promise settles
 * only after that commit. If the batch fails, its operations are retried one
 * by one so one bad operation cannot fail the others.
 */
class GroupCommit {
  private ops: { run: () => unknown; resolve: (v: unknown) => void; reject: (e: unknown) => void }[] = [];
  private scheduled = false;

  constructor(private readonly store: Store) {}

  submit<T>(run: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.ops.push({ run, resolve: resolve as (v: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const ops = this.ops;
    this.ops = [];
    let results: unknown[];
    try {
      results = this.store.transaction(() => ops.map((o) => o.run()));
    } catch {
      for (const o of ops) {
        try {
          o.resolve(this.store.transaction(o.run));
        } catch (e) {
          o.reject(e);
        }
      }
      return;
    }
    ops.forEach((o, i) => o.resolve(results[i]));
  }
}

export class QueueStore {
  private readonly s: Record<string, Statement>;
  private readonly group: GroupCommit;

  constructor(private readonly store: Store) {
    this.group = new GroupCommit(store);
    const db = store.db;
    this.s = {
      insMsg: db.prepare('INSERT INTO queue_messages (id, received_at, sender, size, spool, body, smtputf8, body_8bitmime, submitted, submitter) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      insRcpt: db.prepare('INSERT INTO queue_recipients (message_id, rcpt, state, attempts, next_attempt) VALUES (?, ?, ?, 0, ?)'),
      // A message the operator holds is never due (NOT EXISTS: one primary-key probe per row the index gives).
      due: db.prepare(`SELECT ${RCPT_COLUMNS} FROM queue_recipients r
        WHERE state = 'queued' AND next_attempt <= ? AND NOT EXISTS (${HELD}) ORDER BY next_attempt LIMIT ?`),
      nextDue: db.prepare(`SELECT next_attempt AS t FROM queue_recipients r
        WHERE state = 'queued' AND NOT EXISTS (${HELD}) ORDER BY next_attempt LIMIT 1`),
      msg: db.prepare(`SELECT ${MSG_COLUMNS} FROM queue_messages WHERE id = ?`),
      rcpts: db.prepare(`SELECT ${RCPT_COLUMNS} FROM queue_recipients WHERE message_id = ?`),
      done: db.prepare('DELETE FROM queue_recipients WHERE message_id = ? AND rcpt = ?'),
      retry: db.prepare('UPDATE queue_recipients SET attempts = attempts + 1, next_attempt = ?, last_error = ?, last_attempt = ? WHERE message_id = ? AND rcpt = ?'),
      hold: db.prepare(`UPDATE queue_recipients SET state = 'held', last_error = ?, last_attempt = ? WHERE message_id = ? AND rcpt = ?`),
      release: db.prepare(`UPDATE queue_recipients SET state = 'queued', next_attempt = ? WHERE state = 'held'`),
      requeue: db.prepare(`UPDATE queue_recipients SET state = 'queued', next_attempt = ? WHERE message_id = ? AND rcpt = ?`),
      releaseDomain: db.prepare(`UPDATE queue_recipients SET state = 'queued', next_attempt = ?
        WHERE state = 'held' AND lower(rcpt) LIKE ? ESCAPE '\\'`),
      left: db.prepare('SELECT count(*) AS n FROM queue_recipients WHERE message_id = ?'),
      delMsg: db.prepare('DELETE FROM queue_messages WHERE id = ?'),
      counts: db.prepare(`SELECT state, count(*) AS n FROM queue_recipients GROUP BY state`),
      msgCount: db.prepare('SELECT count(*) AS n FROM queue_messages'),
      spools: db.prepare(`SELECT spool FROM queue_messages WHERE spool != ''`),
      spoolRows: db.prepare(`SELECT id, spool, size FROM queue_messages WHERE spool != '' ORDER BY id`),
      setSpool: db.prepare('UPDATE queue_messages SET spool = ? WHERE id = ?'),
      claim: db.prepare('UPDATE queue_messages SET delivering_since = ? WHERE id = ? AND held_at IS NULL'),
      unclaim: db.prepare('UPDATE queue_messages SET delivering_since = NULL WHERE id = ?'),
      unclaimAll: db.prepare('UPDATE queue_messages SET delivering_since = NULL WHERE delivering_since IS NOT NULL'),
      setHeld: db.prepare('UPDATE queue_messages SET held_at = ? WHERE id = ?'),
      retryNow: db.prepare(`UPDATE queue_recipients SET state = 'queued', next_attempt = ? WHERE message_id = ?`),
      retryAllNow: db.prepare(`UPDATE queue_recipients SET state = 'queued', next_attempt = ?
        WHERE message_id IN (SELECT id FROM queue_messages WHERE held_at IS NULL)`),
      delRcpts: db.prepare('DELETE FROM queue_recipients WHERE message_id = ?'),
      all: db.prepare(`SELECT ${LIST_COLUMNS} FROM queue_messages ORDER BY received_at, id`),
      allRcpts: db.prepare(`SELECT ${RCPT_COLUMNS} FROM queue_recipients ORDER BY message_id, rcpt`),
      // One row per message status (QueueAdmin's statusOf, in SQL): a scrape's queue depth without
      // reading every row into JavaScript. Parameters: @now, @lease (the lease's length, ms).
      depth: db.prepare(`SELECT status, count(*) AS messages, sum(n) AS recipients, min(received_at) AS oldest FROM (
        SELECT m.received_at, ifnull(r.n, 0) AS n,
          CASE WHEN m.held_at IS NOT NULL THEN 'hold'
               WHEN m.delivering_since IS NOT NULL AND @now - m.delivering_since < @lease THEN 'active'
               WHEN r.tried > 0 THEN 'deferred'
               ELSE 'queued' END AS status
        FROM queue_messages m LEFT JOIN (
          SELECT message_id, count(*) AS n, sum(attempts > 0 OR state = 'held') AS tried FROM queue_recipients GROUP BY message_id
        ) r ON r.message_id = m.id) GROUP BY status`),
      ofDomain: db.prepare(`SELECT ${LIST_COLUMNS} FROM queue_messages WHERE id IN
        (SELECT message_id FROM queue_recipients WHERE lower(rcpt) LIKE ? ESCAPE '\\') ORDER BY received_at, id`),
    };
  }

  /** Records an accepted message and its recipients in one fsynced transaction. */
  enqueue(m: QueueMessageRow, rcpts: { rcpt: string; held: boolean }[], now: number): void {
    this.store.transaction(() => {
      this.s.insMsg.run(m.id, m.receivedAt, m.sender, m.size, m.spool, m.body ?? null, m.smtpUtf8 ? 1 : 0, m.eightBitMime ? 1 : 0, m.submitted ? 1 : 0, m.submitter ?? null);
      for (const r of rcpts) this.s.insRcpt.run(m.id, r.rcpt, r.held ? 'held' : 'queued', now);
    });
  }

  /**
   * Like enqueue, committed together with the other writes of this event-loop
   * turn; resolves once the commit is on disk (then, and only then, 250).
   */
  enqueueSoon(m: QueueMessageRow, rcpts: { rcpt: string; held: boolean }[], now: number): Promise<void> {
    return this.group.submit(() => this.enqueue(m, rcpts, now));
  }

  /** Like settle, group-committed (see enqueueSoon). */
  settleSoon(id: string, outcome: Parameters<QueueStore['settle']>[1]): Promise<boolean> {
    return this.group.submit(() => this.settle(id, outcome));
  }

  /** Queued recipients whose next attempt is due, oldest first. */
  due(now: number, limit: number): QueueRecipientRow[] {
    return (this.s.due.all(now, limit) as Record<string, unknown>[]).map(toRcpt);
  }

  /** When the earliest queued recipient is due (ms), or undefined when none is queued. */
  nextDue(): number | undefined {
    const r = this.s.nextDue.get() as { t: number } | undefined;
    return r?.t;
  }

  message(id: string): QueueMessageRow | undefined {
    const r = this.s.msg.get(id) as MessageSqlRow | undefined;
    return r && toMessage(r);
  }

  recipients(id: string): QueueRecipientRow[] {
    return (this.s.rcpts.all(id) as Record<string, unknown>[]).map(toRcpt);
  }

  /**
   * Applies the outcome of one attempt in one transaction: recipients done
   * (delivered or bounced) are removed, the others rescheduled or held.
   * `attemptedAt` (default now) is when the attempt ended. Ends the
   * attempt's lease. Returns true when the message has no recipient left
   * (its spool file may go). Recipients removed meanwhile (the operator
   * deleted the message) are left alone. `stillHeld`, when given, is asked
   * inside the transaction for each recipient to hold: false queues it due
   * now instead, since its domain left hold while the attempt ran (the
   * release, releaseHeld, found it still 'queued' and left it).
   */
  settle(id: string, outcome: {
    done: string[]; retry: { rcpt: string; at: number; error: string }[]; hold: { rcpt: string; why: string }[]; attemptedAt?: number;
    stillHeld?: (rcpt: string) => boolean;
  }): boolean {
    const at = outcome.attemptedAt ?? Date.now();
    return this.store.transaction(() => {
      for (const r of outcome.done) this.s.done.run(id, r);
      for (const r of outcome.retry) this.s.retry.run(r.at, r.error, at, id, r.rcpt);
      for (const r of outcome.hold) {
        // Judged here, in the transaction: a release that came during the attempt has found nothing held to release.
        if (outcome.stillHeld && !outcome.stillHeld(r.rcpt)) this.s.requeue.run(Date.now(), id, r.rcpt);
        else this.s.hold.run(r.why, at, id, r.rcpt);
      }
      const left = (this.s.left.get(id) as { n: number }).n;
      if (left === 0) this.s.delMsg.run(id);
      else this.s.unclaim.run(id); // the attempt has ended: its lease goes
      return left === 0;
    });
  }

  /**
   * Takes the messages `ids` for a delivery attempt starting `now` (their
   * lease, migration 008), in one transaction; returns those taken. A
   * message the operator held or removed since it was found due is not
   * taken: this is the attempt's re-check of the queue's state. The lease
   * needs no durability (a new run clears every lease, clearLeases), so its
   * commit is not fsynced (synchronous=NORMAL: in WAL mode it becomes
   * durable with the next fsynced commit; https://sqlite.org/pragma.html#pragma_synchronous).
   */
  claim(ids: readonly string[], now: number): Set<string> {
    const taken = new Set<string>();
    if (ids.length === 0) return taken;
    const db = this.store.db;
    const nested = db.inTransaction;
    if (!nested) db.pragma('synchronous = NORMAL');
    try {
      this.store.transaction(() => {
        for (const id of ids) if (this.s.claim.run(now, id).changes) taken.add(id);
      });
    } finally {
      if (!nested) db.pragma('synchronous = FULL');
    }
    return taken;
  }

  /** Ends the lease of an attempt whose outcome could not be recorded (settle failed). */
  unclaim(id: string): void {
    this.s.unclaim.run(id);
  }

  /** Clears every lease: at start-up, when no attempt of this queue can be under way. Returns how many there were. */
  clearLeases(): number {
    return this.s.unclaimAll.run().changes;
  }

  /**
   * Every message with its recipients, oldest first; with `domain`, only
   * messages with a recipient in that domain (exactly; case-insensitive).
   * The rows carry no inline bytes (`body` null): `message(id)` reads them.
   */
  entries(domain?: string): QueueEntryRow[] {
    const msgs = (domain === undefined
      ? this.s.all.all()
      : this.s.ofDomain.all(domainPattern(domain))) as MessageSqlRow[];
    if (msgs.length === 0) return [];
    const byId = new Map<string, QueueEntryRow>();
    for (const m of msgs) byId.set(m.id, { message: toMessage(m), recipients: [] });
    const rcpts = msgs.length === 1 ? this.s.rcpts.all(msgs[0].id) : this.s.allRcpts.all();
    for (const r of rcpts as Record<string, unknown>[]) byId.get(r.message_id as string)?.recipients.push(toRcpt(r));
    return [...byId.values()];
  }

  /**
   * Sets or clears the operator's hold of a message (`at` null: release);
   * false when there is no such message.
   */
  setHeld(id: string, at: number | null): boolean {
    return this.s.setHeld.run(at, id).changes > 0;
  }

  /**
   * Makes every recipient of `id` due at `now` (those waiting for their
   * domain to leave hold too: delivery looks at the domain again), or of
   * every message not on hold when `id` is undefined. Returns the count.
   */
  retryNow(id: string | undefined, now: number): number {
    return (id === undefined ? this.s.retryAllNow.run(now) : this.s.retryNow.run(now, id)).changes;
  }

  /** Removes a message and its recipients (in the caller's transaction, or one of its own). */
  remove(id: string): void {
    this.store.transaction(() => {
      this.s.delRcpts.run(id);
      this.s.delMsg.run(id);
    });
  }

  /** Runs `fn` in one IMMEDIATE transaction of the queue's store (the queue tools' check-then-change). */
  atomically<T>(fn: () => T): T {
    return this.store.transaction(fn);
  }

  /** Puts held recipients back in the queue: all of them, or those of the given domains (after they leave hold). */
  releaseHeld(now: number, domains?: readonly string[]): number {
    if (!domains) return this.s.release.run(now).changes;
    let n = 0;
    for (const d of domains) n += this.s.releaseDomain.run(now, domainPattern(d)).changes;
    return n;
  }

  /** Recipient counts by state, and messages. */
  counts(): { queued: number; held: number; messages: number } {
    const out = { queued: 0, held: 0, messages: (this.s.msgCount.get() as { n: number }).n };
    for (const r of this.s.counts.all() as { state: 'queued' | 'held'; n: number }[]) out[r.state] = r.n;
    return out;
  }

  /**
   * Messages, their recipients and the oldest arrival (ms), by message status
   * as the queue tools name it (server/mta/queue-admin.ts statusOf: hold,
   * active while a lease younger than `leaseMs` holds, deferred once a
   * recipient was tried or waits for its domain, queued otherwise), counted
   * by SQLite in one statement. Statuses without messages are absent.
   */
  depth(now: number, leaseMs: number): { status: string; messages: number; recipients: number; oldest: number }[] {
    return this.s.depth.all({ now, lease: leaseMs }) as { status: string; messages: number; recipients: number; oldest: number }[];
  }

  /** Every message with a spool file (not inline): its id, the `spool` column as stored, and its size. */
  spoolRows(): { id: string; spool: string; size: number }[] {
    return this.s.spoolRows.all() as { id: string; spool: string; size: number }[];
  }

  /**
   * Sets a message's `spool` column (a backup makes it relative to the tree,
   * `spool/ID.eml`; a restore absolute again in its data dir); false when
   * there is no such message.
   */
  setSpool(id: string, spool: string): boolean {
    return this.s.setSpool.run(spool, id).changes > 0;
  }

  /** Spool paths of every queued message (for start-up clean-up of orphan files). */
  spoolPaths(): Set<string> {
    return new Set((this.s.spools.all() as { spool: string }[]).map((r) => r.spool));
  }
}

/** The message columns every query of a message row reads. */
/** The recipient columns every query of recipient rows reads (toRcpt). */
const RCPT_COLUMNS = 'message_id, rcpt, state, attempts, next_attempt, last_error, last_attempt';
const MSG_COLUMNS = 'id, received_at, sender, size, spool, body, smtputf8, body_8bitmime, held_at, delivering_since, submitted, submitter';
/** The message columns a listing reads: not the inline bytes (up to 256 KiB a message). */
const LIST_COLUMNS = 'id, received_at, sender, size, spool, NULL AS body, smtputf8, body_8bitmime, held_at, delivering_since, submitted, submitter';
/** True in a query over queue_recipients `r` when the operator holds the recipient's message. */
const HELD = 'SELECT 1 FROM queue_messages m WHERE m.id = r.message_id AND m.held_at IS NOT NULL';

/** A LIKE pattern (ESCAPE '\\') matching the addresses of `domain`, lower-cased. */
function domainPattern(domain: string): string {
  return '%@' + domain.toLowerCase().replace(/[\\%_]/g, (c) => '\\' + c);
}

interface MessageSqlRow {
  id: string; received_at: number; sender: string; size: number; spool: string; body: Buffer | null;
  smtputf8: number; body_8bitmime: number; held_at: number | null; delivering_since: number | null; submitted: number; submitter: string | null;
}

function toMessage(r: MessageSqlRow): QueueMessageRow {
  return {
    id: r.id, receivedAt: r.received_at, sender: r.sender, size: r.size, spool: r.spool, body: r.body,
    smtpUtf8: r.smtputf8 === 1, eightBitMime: r.body_8bitmime === 1, heldAt: r.held_at, deliveringSince: r.delivering_since,
    submitted: r.submitted === 1, submitter: r.submitter,
  };
}

function toRcpt(r: Record<string, unknown>): QueueRecipientRow {
  return {
    messageId: r.message_id as string,
    rcpt: r.rcpt as string,
    state: r.state as 'queued' | 'held',
    attempts: r.attempts as number,
    nextAttempt: r.next_attempt as number,
    lastError: (r.last_error as string | null) ?? null,
    lastAttempt: (r.last_attempt as number | null) ?? null,
  };
}
