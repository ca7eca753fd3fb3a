/**
 * The operator's queue tools, after Postfix's postqueue/postsuper/postcat:
 * list, show, retry, hold and release, delete, bounce. The one
 * implementation behind `dcmx queue` (server/admin/cli.ts, another process
 * than the appliance) and the console's Queue page (in the appliance).
 *
 * Every change is one IMMEDIATE transaction on the queue's store, so it is
 * serialised with delivery's own writes whichever process makes it. The
 * running appliance notices another process's commit within
 * queue-side.ts QUEUE_WATCH_MS (Store.watchOtherCommits) and looks for
 * due work at once; in the appliance, `onChange` does the same.
 *
 * Attempts under way: delivery takes a message's lease before an attempt
 * (QueueStore.claim, migration 008), and does not take a held or removed
 * one — its re-check of the queue's state before it acts. While a lease
 * holds, delete and bounce are refused (MessageActiveError): the attempt
 * may be delivering it right now, so neither a bounce for a delivered
 * message nor an attempt settling a deleted one can happen. Hold is
 * accepted at any time: the attempt under way ends as it ends (what it
 * delivers is gone), and whatever it leaves in the queue stays on hold.
 */
import type { QueueMessageRow, QueueRecipientRow, QueueStore } from '../../storage/queue';
import { buildDsn, spoolDsn } from './dsn';
import { parseFields, readHeaderSection, type HeaderField } from './headers';
import { queuedMessage, type Spool } from './spool';

/**
 * How long an attempt's lease holds at most: past it, a lease left by a
 * process that died is no longer honoured (a new run clears them all at
 * once). Longer than any attempt (RFC 5321 §4.5.3.2 timeouts add up to
 * minutes, not an hour).
 */
export const ACTIVE_LEASE_MS = 60 * 60 * 1000;

/** Largest header section `show` returns. */
export const MAX_SHOWN_HEADERS = 256 * 1024;

/**
 * A message's place in the queue, as Postfix names its queues:
 * - `active`: a delivery attempt is under way (its lease holds);
 * - `hold`: the operator put it on hold; delivery never takes it;
 * - `deferred`: some recipient was tried and is waiting for its next
 *   attempt, or waits for its domain to leave hold;
 * - `queued`: waiting for its first attempt.
 * A held message is `hold` even while an attempt started before the hold
 * is under way.
 */
export type MessageStatus = 'active' | 'hold' | 'deferred' | 'queued';

/** The queue by message status (QueueAdmin.depth): messages, their recipients, the oldest's arrival (ms). */
export type QueueDepth = Record<MessageStatus, { messages: number; recipients: number; oldest: number | undefined }>;

/** The statuses, for validating a filter. */
export const MESSAGE_STATUSES: readonly MessageStatus[] = ['active', 'hold', 'deferred', 'queued'];

/** One recipient of a queued message. */
export interface QueueRecipientView {
  /** The envelope forward-path as accepted. */
  address: string;
  /** `queued`: waiting for its next attempt; `domain-hold`: waiting for its domain to leave hold (domain status). */
  state: 'queued' | 'domain-hold';
  /** Attempts made so far. */
  attempts: number;
  /** When the last attempt ended (ms since the epoch); null before the first. */
  lastAttempt: number | null;
  /** What the last attempt answered (an enhanced status code and diagnostic), or why it waits; null before the first. */
  lastError: string | null;
  /** When it is due next (ms since the epoch); a held message is not tried whatever this says. */
  nextAttempt: number;
}

/** One message of the queue, as `list` gives it. */
export interface QueueMessageView {
  /** Queue id (letters and digits). */
  id: string;
  status: MessageStatus;
  /** Envelope reverse-path; '' for the null sender (a bounce). */
  sender: string;
  /** When it was accepted (ms since the epoch). */
  receivedAt: number;
  /** Bytes stored. */
  size: number;
  /** When the operator put it on hold (ms); null when not held. */
  heldAt: number | null;
  /** When the attempt under way began (ms); null when none is. */
  deliveringSince: number | null;
  /** Its recipients still in the queue. */
  recipients: QueueRecipientView[];
}

/** One message in full, as `show` gives it. */
export interface QueueMessageDetail extends QueueMessageView {
  /** MAIL FROM carried SMTPUTF8 (RFC 6531) / BODY=8BITMIME (RFC 6152). */
  smtpUtf8: boolean;
  eightBitMime: boolean;
  /** Where its bytes are: the spool file's path, or '' when they are inline in its queue row. */
  spoolFile: string;
  /**
   * Its header fields in order, unfolded (RFC 5322 §2.2.3), values as
   * stored (RFC 2047 encoded words are not decoded; 8-bit bytes read as
   * UTF-8); at most MAX_SHOWN_HEADERS bytes of whole fields. Null when its
   * bytes cannot be read (the spool file is gone).
   */
  headers: HeaderField[] | null;
}

/** What `list` selects; every criterion given must hold. */
export interface QueueFilter {
  /** Messages with at least one recipient in this domain (exactly, not its subdomains; case-insensitive; a final dot is ignored). */
  domain?: string;
  status?: MessageStatus;
}

/** A queue tool's refusal. Its message is one line, for the operator. */
export class QueueAdminError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** No message with this id is in the queue (never was, or delivered, bounced or deleted since). */
export class NoSuchMessageError extends QueueAdminError {
  constructor(readonly id: string) {
    super(`no message ${id} in the queue`);
  }
}

/** A delivery attempt owns the message now: delete or bounce must wait until it ends (seconds, usually). */
export class MessageActiveError extends QueueAdminError {
  constructor(readonly id: string) {
    super(`message ${id} is being delivered now; try again when the attempt has ended`);
  }
}

/** The message is on hold: `retry` does nothing to it until it is released. */
export class MessageHeldError extends QueueAdminError {
  constructor(readonly id: string) {
    super(`message ${id} is on hold; release it first`);
  }
}

/** A bad filter (an unknown status, a malformed domain). */
export class BadQueueFilterError extends QueueAdminError {}

export interface QueueAdminDeps {
  queue: QueueStore;
  spool: Spool;
  /** This host's name, for the DSNs `bounce` makes (Reporting-MTA, MAILER-DAEMON@). */
  hostname: string;
  /** Called after each change, in the process that made it (the appliance: look for due work now). */
  onChange?: () => void;
  /** The clock (ms since the epoch). */
  now?: () => number;
}

/** The outcome of `hold`. */
export interface HoldResult {
  /** It was on hold already (nothing changed). */
  wasHeld: boolean;
  /** An attempt is under way: what it delivers is gone, the rest stays on hold. */
  active: boolean;
}

/** The outcome of `bounce`. */
export interface BounceResult {
  /** The queue id of the DSN sent to the sender; undefined when none is sent (null sender, or the message is itself a DSN or an auto-reply: RFC 3464 §2, RFC 3834 §2). */
  dsn: string | undefined;
  /** The recipients the DSN reports as failed. */
  recipients: string[];
}

/** The queue tools over one queue store (see the module comment). */
export class QueueAdmin {
  private readonly now: () => number;

  constructor(private readonly deps: QueueAdminDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** The messages matching `filter`, oldest first. Throws BadQueueFilterError for a bad filter. */
  list(filter: QueueFilter = {}): QueueMessageView[] {
    if (filter.status !== undefined && !MESSAGE_STATUSES.includes(filter.status)) {
      throw new BadQueueFilterError(`unknown status '${String(filter.status)}' (one of ${MESSAGE_STATUSES.join(', ')})`);
    }
    const domain = filter.domain === undefined ? undefined : domainFilter(filter.domain);
    const now = this.now();
    const out: QueueMessageView[] = [];
    for (const e of this.deps.queue.entries(domain)) {
      const v = view(e.message, e.recipients, now);
      if (filter.status === undefined || v.status === filter.status) out.push(v);
    }
    return out;
  }

  /**
   * The queue's depth by message status (the statuses of `list`), counted in
   * the store without reading the rows: what a metrics scrape asks for, cheap
   * on a queue of any size.
   */
  depth(): QueueDepth {
    const out = Object.fromEntries(MESSAGE_STATUSES.map((s) => [s, { messages: 0, recipients: 0, oldest: undefined }])) as QueueDepth;
    for (const r of this.deps.queue.depth(this.now(), ACTIVE_LEASE_MS)) {
      out[r.status as MessageStatus] = { messages: r.messages, recipients: r.recipients, oldest: r.oldest };
    }
    return out;
  }

  /** One message with its envelope, headers and attempts. Throws NoSuchMessageError. */
  async show(id: string): Promise<QueueMessageDetail> {
    const row = this.mustGet(id);
    const recipients = this.deps.queue.recipients(id);
    const section = await readHeaderSection(queuedMessage(row), MAX_SHOWN_HEADERS);
    return {
      ...view(row, recipients, this.now()),
      smtpUtf8: row.smtpUtf8 === true,
      eightBitMime: row.eightBitMime === true,
      spoolFile: row.spool,
      headers: section === undefined ? null : parseFields(section.toString('utf8')),
    };
  }

  /**
   * Makes every recipient of message `id` due now (Postfix `postqueue -i`),
   * those waiting for their domain to leave hold included (delivery looks
   * at the domain again). Returns how many. Throws NoSuchMessageError, and
   * MessageHeldError for a message on hold.
   */
  retry(id: string): number {
    const n = this.deps.queue.atomically(() => {
      const row = this.mustGet(id);
      if (row.heldAt != null) throw new MessageHeldError(id);
      return this.deps.queue.retryNow(id, this.now());
    });
    this.changed();
    return n;
  }

  /** Makes every recipient of every message not on hold due now (Postfix `postqueue -f`). Returns how many. */
  retryAll(): number {
    const n = this.deps.queue.retryNow(undefined, this.now());
    this.changed();
    return n;
  }

  /**
   * Puts message `id` on hold (Postfix `postsuper -h`): delivery takes it
   * no more until `release`. Throws NoSuchMessageError.
   */
  hold(id: string): HoldResult {
    const r = this.deps.queue.atomically(() => {
      const row = this.mustGet(id);
      const now = this.now();
      const wasHeld = row.heldAt != null;
      if (!wasHeld) this.deps.queue.setHeld(id, now);
      return { wasHeld, active: isActive(row, now) };
    });
    this.changed();
    return r;
  }

  /**
   * Takes message `id` off hold (Postfix `postsuper -H`): its recipients
   * are tried when due (at once when their time has come; `retry` for
   * now). Returns false when it was not on hold. Throws NoSuchMessageError.
   */
  release(id: string): boolean {
    const was = this.deps.queue.atomically(() => {
      const row = this.mustGet(id);
      if (row.heldAt == null) return false;
      this.deps.queue.setHeld(id, null);
      return true;
    });
    this.changed();
    return was;
  }

  /**
   * Removes message `id` from the queue with no notice to anyone (Postfix
   * `postsuper -d`): its rows, then its spool file. Throws
   * NoSuchMessageError, and MessageActiveError while an attempt is under way.
   */
  async delete(id: string): Promise<void> {
    const row = this.deps.queue.atomically(() => {
      const r = this.mustGet(id);
      if (isActive(r, this.now())) throw new MessageActiveError(id);
      this.deps.queue.remove(id);
      return r;
    });
    // After the commit: a crash in between leaves a file no row names, which the next start removes (queue-side.ts).
    if (row.spool) await this.deps.spool.remove(row.spool);
    this.changed();
  }

  /**
   * Returns message `id` to its sender and removes it (Postfix `postsuper
   * -e` then expiry, at once): a DSN (RFC 3464, dsn.ts buildDsn) reporting
   * every recipient left as failed, status 5.0.0, queued to the sender in
   * the same transaction that removes the message; none for the null
   * sender, a DSN or an auto-reply. Throws NoSuchMessageError, and
   * MessageActiveError while an attempt is under way (also when one began
   * while the DSN was being made: the DSN is then dropped).
   */
  async bounce(id: string): Promise<BounceResult> {
    const row = this.mustGet(id);
    if (isActive(row, this.now())) throw new MessageActiveError(id);
    const recipients = this.deps.queue.recipients(id);
    const failed = recipients.map((r) => ({
      recipient: r.rcpt, action: 'failed' as const, status: '5.0.0',
      diagnostic: `x-local; returned to the sender by the mail system's operator${r.lastError ? ` (last attempt: ${r.lastError})` : ''}`,
    }));
    const now = this.now();
    const dsn = await buildDsn(queuedMessage(row), failed, { hostname: this.deps.hostname, now: new Date(now) });
    const spooled = dsn && (await spoolDsn(this.deps.spool, dsn, now));
    try {
      this.deps.queue.atomically(() => {
        const again = this.mustGet(id);
        if (isActive(again, this.now())) throw new MessageActiveError(id);
        // An attempt that began and ended while the DSN was made may have delivered some: report only what is left.
        const left = this.deps.queue.recipients(id).map((r) => r.rcpt).sort();
        if (left.join('\n') !== recipients.map((r) => r.rcpt).sort().join('\n')) {
          throw new QueueAdminError(`message ${id} changed while its bounce was being made; try again`);
        }
        if (spooled) this.deps.queue.enqueue(spooled.row, spooled.rcpts, now);
        this.deps.queue.remove(id);
      });
    } catch (e) {
      if (spooled?.row.spool) await this.deps.spool.remove(spooled.row.spool);
      throw e;
    }
    if (row.spool) await this.deps.spool.remove(row.spool);
    this.changed();
    return { dsn: spooled?.row.id, recipients: failed.map((f) => f.recipient) };
  }

  private mustGet(id: string): QueueMessageRow {
    const row = this.deps.queue.message(id);
    if (!row) throw new NoSuchMessageError(id);
    return row;
  }

  private changed(): void {
    this.deps.onChange?.();
  }
}

/** An attempt's lease holds (ACTIVE_LEASE_MS). */
function isActive(row: QueueMessageRow, now: number): boolean {
  return row.deliveringSince != null && now - row.deliveringSince < ACTIVE_LEASE_MS;
}

/** A message's status. storage/queue.ts `depth` counts by the same rules in SQL (test/storage/queue.test.ts holds the two together). */
function statusOf(row: QueueMessageRow, recipients: QueueRecipientRow[], now: number): MessageStatus {
  if (row.heldAt != null) return 'hold';
  if (isActive(row, now)) return 'active';
  return recipients.some((r) => r.attempts > 0 || r.state === 'held') ? 'deferred' : 'queued';
}

function view(row: QueueMessageRow, recipients: QueueRecipientRow[], now: number): QueueMessageView {
  return {
    id: row.id,
    status: statusOf(row, recipients, now),
    sender: row.sender,
    receivedAt: row.receivedAt,
    size: row.size,
    heldAt: row.heldAt ?? null,
    deliveringSince: isActive(row, now) ? row.deliveringSince ?? null : null,
    recipients: recipients.map((r) => ({
      address: r.rcpt, state: r.state === 'held' ? 'domain-hold' : 'queued', attempts: r.attempts,
      lastAttempt: r.lastAttempt, lastError: r.lastError, nextAttempt: r.nextAttempt,
    })),
  };
}

/** A domain filter as the queue compares it: lower case, no final dot; a name that cannot be a domain is refused. */
function domainFilter(domain: string): string {
  const d = domain.trim().replace(/\.$/, '').toLowerCase();
  if (!/^[^\s@]+$/.test(d) || d.length > 253) throw new BadQueueFilterError(`'${domain}' is not a domain name`);
  return d;
}
