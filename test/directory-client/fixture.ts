/**
 * A Content Sync consumer for tests: the directory client's SyncConsumer with
 * a SyncedCopy of every entry below `base`, a log of its reports ("begin
 * full", "add <dn>"...), when each DN was last reported, its cookie and
 * connection state. Quick to reconnect (50 ms back-off doubling to 400 ms).
 * Every consumer made is stopped by {@link stopConsumers}, which a test file
 * runs after its tests: a consumer a failed assertion left running would
 * otherwise retry forever against the stopped server, its back-off timer
 * keeping the test process alive (the file hangs instead of failing).
 */
import { SyncConsumer, type SyncEntry, type SyncHandler } from '../../server/directory-client/sync';
import { SyncedCopy } from '../../server/directory-client/replica';
import type { ClientOptions } from '../../server/directory-client/client';
import { silentLogger } from '../../server/log';

export interface RecordingOptions {
  url: string;
  bindDn: string;
  password: string;
  base: string;
  cookie?: string;
  tls?: ClientOptions['tls'];
}

const made = new Set<SyncConsumer>();

/** Stops every consumer {@link recordingConsumer} made (stopping one twice is harmless). */
export function stopConsumers(): void {
  for (const c of made) c.stop();
  made.clear();
}

/** A consumer of everything below `o.base` (attributes `*` and `+`), not started. */
export function recordingConsumer(o: RecordingOptions) {
  const copy = new SyncedCopy(() => true);
  const events: string[] = [];
  const state = { up: false, cookie: o.cookie, refreshed: 0, seen: new Map<string, number>() };
  const handler: SyncHandler = {
    refreshBegin: (full) => (events.push(`begin ${full ? 'full' : 'from cookie'}`), copy.refreshBegin()),
    entry: (e: SyncEntry) => {
      events.push(`${e.state} ${e.dn}`);
      state.seen.set(e.dn.toLowerCase(), Date.now());
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
  made.add(sync);
  /** The DNs of the copy, lower case, sorted. */
  const dns = () => [...copy.entries.values()].map((e) => e.dn.toLowerCase()).sort();
  return { sync, copy, events, state, dns };
}
