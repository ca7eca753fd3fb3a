/**
 * A Content Sync consumer for tests: the directory client's SyncConsumer with
 * a SyncedCopy of every entry below `base`, a log of its reports ("begin
 * full", "add <dn>"...), when each DN was last reported, its cookie and
 * connection state. Quick to reconnect (50 ms back-off doubling to 400 ms).
 * Every consumer made here is stopped after the test file (a test that
 * fails half-way would otherwise leave it reconnecting, its timers keeping
 * the file's process alive).
 */
import { after } from 'node:test';
import { SyncConsumer, type SyncEntry, type SyncHandler } from '../../server/directory-client/sync';
import { SyncedCopy } from '../../server/directory-client/replica';
import type { ClientOptions } from '../../server/directory-client/client';
import { silentLogger } from '../../server/log';
import { waitFor } from '../fixtures/wait';

export interface RecordingOptions {
  url: string;
  bindDn: string;
  password: string;
  base: string;
  cookie?: string;
  tls?: ClientOptions['tls'];
}

const made: { stop(): void }[] = [];
after(() => {
  for (const s of made) s.stop();
});

/** A consumer of everything below `o.base` (attributes `*` and `+`), not started. */
export function recordingConsumer(o: RecordingOptions) {
  const copy = new SyncedCopy(() => true);
  const events: string[] = [];
  /** `seen`: lower-case DN → the index in `events` of its last report, and when it came. */
  const state = { up: false, cookie: o.cookie, refreshed: 0, seen: new Map<string, { event: number; at: number }>() };
  const handler: SyncHandler = {
    refreshBegin: (full) => (events.push(`begin ${full ? 'full' : 'from cookie'}`), copy.refreshBegin()),
    entry: (e: SyncEntry) => {
      events.push(`${e.state} ${e.dn}`);
      state.seen.set(e.dn.toLowerCase(), { event: events.length - 1, at: Date.now() });
      copy.entry(e);
    },
    ids: (u, d) => (events.push(`${d ? 'deleted' : 'present'} ${u.length} uuids`), copy.ids(u, d)),
    unreportedGone: () => copy.unreportedGone(),
    refreshed: () => state.refreshed++,
    cookie: (c) => (state.cookie = c),
    connection: (up) => (state.up = up),
  };
  const sync = new SyncConsumer({
    client: { url: o.url, tls: o.tls },
    bindDn: o.bindDn,
    password: o.password,
    search: { base: o.base, scope: 2, filter: { type: 'present', attr: 'objectClass' }, attributes: ['*', '+'] },
    cookie: o.cookie,
    minBackoffMs: 50,
    maxBackoffMs: 400,
    log: silentLogger(),
  }, handler);
  made.push(sync);
  /** The DNs of the copy, lower case, sorted. */
  const dns = () => [...copy.entries.values()].map((e) => e.dn.toLowerCase()).sort();
  /**
   * Runs `write`, then waits for a report of `dn` that came after it began
   * (counted in reports, not milliseconds: a report of the previous change in
   * the same millisecond is not taken for this one); resolves with the delay
   * in ms from the start of `write`.
   */
  const lag = async (dn: string, write: () => Promise<void>): Promise<number> => {
    const from = events.length;
    const t0 = Date.now();
    await write();
    const key = dn.toLowerCase();
    const seen = await waitFor(`the change of ${dn} reported`, () => {
      const s = state.seen.get(key);
      return s && s.event >= from ? s : undefined;
    }, 5000, 5);
    return seen.at - t0;
  };
  return { sync, copy, events, state, dns, lag };
}
