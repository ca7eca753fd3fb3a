/**
 * Following the change feed (the change log, draft-good-ldap-changelog, as
 * data: see ChangeRecord in storage/store.ts) from a known change number:
 * what keeps derived views — the routing table, the transfer unit's cache —
 * in step with the directory.
 *
 * A follower catches up whenever its thread's directory syncs with the
 * change clock (Directory.sync: at every DNS answer, LDAP operation and SMTP
 * lookup, and after each commit on the writer's thread), so a write is
 * followed before any read issued after its reply is answered, whichever
 * thread made it. Other processes' commits (the CLI) are published on the
 * clock by the writer's watch (writes.ts watchOtherWriters); the optional
 * poll also reads the log directly. If the log no longer holds the rows
 * after our position (trimmed), `onGap` is called and the follower jumps to
 * the end: the view must rebuild or flush.
 */
import type { ChangeRecord } from '../../storage/store';
import type { Directory } from './directory';

export type { ChangeRecord, FeedModification } from '../../storage/store';

/** The DNs a change concerns: its target and, for modrdn, the entry's new DN (given normalised, as dn and ndn alike). */
export function changedDns(c: ChangeRecord): { dn: string; ndn: string }[] {
  const out = [{ dn: c.targetDN, ndn: c.targetNdn }];
  if (c.changeType === 'modrdn') out.push({ dn: c.newNdn, ndn: c.newNdn });
  return out;
}

/**
 * The values a change puts into its entry, by attribute (canonical name):
 * every attribute of an add, the values of a modify's add and replace
 * modifications. What a cache may hold as a negative answer and must forget.
 */
export function* valuesAdded(c: ChangeRecord): Generator<[type: string, values: string[]]> {
  if (c.changeType === 'add') yield* Object.entries(c.attributes);
  if (c.changeType === 'modify') for (const m of c.modifications) if (m.op === 'add' || m.op === 'replace') yield [m.type, m.values];
}

export interface ChangeSink {
  /** Rows after the follower's position, in order. */
  onChanges(rows: ChangeRecord[]): void;
  /** The rows after our position are gone: rebuild everything. */
  onGap(): void;
}

export class ChangeFollower {
  /** The last change number applied. */
  position: number;
  private timer: NodeJS.Timeout | undefined;
  private readonly unsubscribe: () => void;

  constructor(private readonly directory: Directory, private readonly sink: ChangeSink, opts: { pollMs?: number; from?: number } = {}) {
    this.position = opts.from ?? directory.changeRange().last;
    this.unsubscribe = directory.onSync(() => this.catchUp());
    if (opts.pollMs) {
      this.timer = setInterval(() => this.catchUp(), opts.pollMs);
      this.timer.unref();
    }
  }

  /** Applies every change committed since our position. Cheap when there is none. */
  catchUp(): void {
    const { first, last } = this.directory.changeRange();
    if (last <= this.position) return;
    if (first > this.position + 1) {
      this.position = last;
      this.sink.onGap();
      return;
    }
    const rows = [...this.directory.changesSince(this.position + 1)];
    if (rows.length === 0) return;
    this.position = rows[rows.length - 1].changeNumber;
    this.sink.onChanges(rows);
  }

  stop(): void {
    this.unsubscribe();
    if (this.timer) clearInterval(this.timer);
  }
}

/** How often a thread holding followClock looks at the change clock (one atomic load) when nothing else made it sync. */
export const CLOCK_FOLLOW_MS = 10;

const clockHolders = new WeakMap<Directory, { holders: number; timer: NodeJS.Timeout }>();

/**
 * Keeps this thread's views following the change clock although no request
 * makes the directory sync: a persistent Content Sync search (RFC 4533
 * refreshAndPersist) on an otherwise idle thread must see each commit of
 * the writer's promptly. While at least one holder, `directory.sync()` runs
 * every CLOCK_FOLLOW_MS (nothing but an atomic load when the clock has not
 * moved). Returns the release; the timer never keeps the process alive.
 */
export function followClock(directory: Directory): () => void {
  let h = clockHolders.get(directory);
  if (!h) {
    const timer = setInterval(() => directory.sync(), CLOCK_FOLLOW_MS);
    timer.unref();
    h = { holders: 0, timer };
    clockHolders.set(directory, h);
  }
  h.holders++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--h.holders === 0) {
      clearInterval(h.timer);
      clockHolders.delete(directory);
    }
  };
}
