/**
 * The durable mail queue's rows (migrations 003-005). Delivered and bounced
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
}

export interface QueueRecipientRow {
  messageId: string;
  rcpt: string;
  state: 'queued' | 'held';
  attempts: number;
  nextAttempt: number;
  lastError: string | null;
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
      insMsg: db.prepare('INSERT INTO queue_messages (id, received_at, sender, size, spool, body, smtputf8, body_8bitmime) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
      insRcpt: db.prepare('INSERT INTO queue_recipients (message_id, rcpt, state, attempts, next_attempt) VALUES (?, ?, ?, 0, ?)'),
      due: db.prepare(`SELECT message_id, rcpt, state, attempts, next_attempt, last_error FROM queue_recipients
        WHERE state = 'queued' AND next_attempt <= ? ORDER BY next_attempt LIMIT ?`),
      nextDue: db.prepare(`SELECT min(next_attempt) AS t FROM queue_recipients WHERE state = 'queued'`),
      msg: db.prepare('SELECT id, received_at, sender, size, spool, body, smtputf8, body_8bitmime FROM queue_messages WHERE id = ?'),
      rcpts: db.prepare('SELECT message_id, rcpt, state, attempts, next_attempt, last_error FROM queue_recipients WHERE message_id = ?'),
      done: db.prepare('DELETE FROM queue_recipients WHERE message_id = ? AND rcpt = ?'),
      retry: db.prepare('UPDATE queue_recipients SET attempts = attempts + 1, next_attempt = ?, last_error = ? WHERE message_id = ? AND rcpt = ?'),
      hold: db.prepare(`UPDATE queue_recipients SET state = 'held', last_error = ? WHERE message_id = ? AND rcpt = ?`),
      release: db.prepare(`UPDATE queue_recipients SET state = 'queued', next_attempt = ? WHERE state = 'held'`),
      releaseDomain: db.prepare(`UPDATE queue_recipients SET state = 'queued', next_attempt = ?
        WHERE state = 'held' AND lower(rcpt) LIKE ? ESCAPE '\\'`),
      left: db.prepare('SELECT count(*) AS n FROM queue_recipients WHERE message_id = ?'),
      delMsg: db.prepare('DELETE FROM queue_messages WHERE id = ?'),
      counts: db.prepare(`SELECT state, count(*) AS n FROM queue_recipients GROUP BY state`),
      msgCount: db.prepare('SELECT count(*) AS n FROM queue_messages'),
      depth: db.prepare(`SELECT r.state AS state, count(*) AS rcpts, count(DISTINCT r.message_id) AS messages, min(m.received_at) AS oldest
        FROM queue_recipients r JOIN queue_messages m ON m.id = r.message_id GROUP BY r.state`),
      spools: db.prepare(`SELECT spool FROM queue_messages WHERE spool != ''`),
    };
  }

  /** Records an accepted message and its recipients in one fsynced transaction. */
  enqueue(m: QueueMessageRow, rcpts: { rcpt: string; held: boolean }[], now: number): void {
    this.store.transaction(() => {
      this.s.insMsg.run(m.id, m.receivedAt, m.sender, m.size, m.spool, m.body ?? null, m.smtpUtf8 ? 1 : 0, m.eightBitMime ? 1 : 0);
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
    const r = this.s.nextDue.get() as { t: number | null };
    return r.t ?? undefined;
  }

  message(id: string): QueueMessageRow | undefined {
    const r = this.s.msg.get(id) as
      | { id: string; received_at: number; sender: string; size: number; spool: string; body: Buffer | null; smtputf8: number; body_8bitmime: number }
      | undefined;
    return r && {
      id: r.id, receivedAt: r.received_at, sender: r.sender, size: r.size, spool: r.spool, body: r.body,
      smtpUtf8: r.smtputf8 === 1, eightBitMime: r.body_8bitmime === 1,
    };
  }

  recipients(id: string): QueueRecipientRow[] {
    return (this.s.rcpts.all(id) as Record<string, unknown>[]).map(toRcpt);
  }

  /**
   * Applies the outcome of one attempt in one transaction: recipients done
   * (delivered or bounced) are removed, the others rescheduled or held.
   * Returns true when the message has no recipient left (its spool file may go).
   */
  settle(id: string, outcome: { done: string[]; retry: { rcpt: string; at: number; error: string }[]; hold: { rcpt: string; why: string }[] }): boolean {
    return this.store.transaction(() => {
      for (const r of outcome.done) this.s.done.run(id, r);
      for (const r of outcome.retry) this.s.retry.run(r.at, r.error, id, r.rcpt);
      for (const r of outcome.hold) this.s.hold.run(r.why, id, r.rcpt);
      const left = (this.s.left.get(id) as { n: number }).n;
      if (left === 0) this.s.delMsg.run(id);
      return left === 0;
    });
  }

  /** Puts held recipients back in the queue: all of them, or those of the given domains (after they leave hold). */
  releaseHeld(now: number, domains?: readonly string[]): number {
    if (!domains) return this.s.release.run(now).changes;
    let n = 0;
    for (const d of domains) n += this.s.releaseDomain.run(now, '%@' + d.toLowerCase().replace(/[\\%_]/g, (c) => '\\' + c)).changes;
    return n;
  }

  /** Recipient counts by state, and messages. */
  counts(): { queued: number; held: number; messages: number } {
    const out = { queued: 0, held: 0, messages: (this.s.msgCount.get() as { n: number }).n };
    for (const r of this.s.counts.all() as { state: 'queued' | 'held'; n: number }[]) out[r.state] = r.n;
    return out;
  }

  /**
   * The queue by recipient state: recipients, the messages they belong to,
   * and when the oldest of those was received (ms; undefined when none).
   */
  depth(): Record<'queued' | 'held', { recipients: number; messages: number; oldest: number | undefined }> {
    const out = { queued: { recipients: 0, messages: 0, oldest: undefined as number | undefined }, held: { recipients: 0, messages: 0, oldest: undefined as number | undefined } };
    for (const r of this.s.depth.all() as { state: 'queued' | 'held'; rcpts: number; messages: number; oldest: number }[]) {
      out[r.state] = { recipients: r.rcpts, messages: r.messages, oldest: r.oldest };
    }
    return out;
  }

  /** Spool paths of every queued message (for start-up clean-up of orphan files). */
  spoolPaths(): Set<string> {
    return new Set((this.s.spools.all() as { spool: string }[]).map((r) => r.spool));
  }
}

function toRcpt(r: Record<string, unknown>): QueueRecipientRow {
  return {
    messageId: r.message_id as string,
    rcpt: r.rcpt as string,
    state: r.state as 'queued' | 'held',
    attempts: r.attempts as number,
    nextAttempt: r.next_attempt as number,
    lastError: (r.last_error as string | null) ?? null,
  };
}
