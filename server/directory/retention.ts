/**
 * Retention of the store's history: the change log (draft-good-ldap-changelog
 * leaves trimming to the server, as OpenLDAP's accesslog `logpurge` does) and
 * the zones' IXFR journal. Without it both grow with every write forever.
 *
 * - The change log keeps its newest DCMX_CHANGELOG_KEEP rows. Followers in
 *   this process are always past the trimmed rows; one that falls behind
 *   (another process, a consumer over LDAP) sees firstChangeNumber move past
 *   its position and must resynchronise, which `ChangeFollower` does (onGap).
 * - The journal keeps the newest DCMX_ZONE_JOURNAL_KEEP rows per zone; an
 *   IXFR from an older serial gets the whole zone (RFC 1995 §4).
 *
 * Trimming runs after commits, once every `keep / 10` of them, in batches
 * of short transactions spread over event-loop turns, so a large backlog
 * (a store upgraded from a version without retention) never stalls a client.
 *
 * Only the process that owns the data dir trims (server/succession.ts):
 * during a reload the previous appliance's followers must not find their
 * rows gone under them.
 */
import type { Directory } from './directory';
import type { Logger } from '../log';

export interface RetentionOptions {
  /** Change-log rows kept (0 = keep everything). */
  changelogKeep: number;
  /** Journal rows kept per zone (0 = keep everything). */
  journalKeep: number;
}

export interface Retention {
  /** Rows deleted so far: change log and journal. */
  readonly stats: { changelogTrimmed: number; journalTrimmed: number; runs: number };
  /** Trims now; resolves when the backlog is gone (at once, trimming nothing, before `owned`). */
  run(): Promise<void>;
  stop(): void;
}

const BATCH = 5_000;

/**
 * Starts trimming after commits (see the module comment). With `owned`, no
 * trim before it resolves; then one runs at once (the backlog of the
 * commits meanwhile).
 */
export function startRetention(directory: Directory, opts: RetentionOptions, log: Logger, owned?: Promise<void>): Retention {
  const store = directory.store;
  const stats = { changelogTrimmed: 0, journalTrimmed: 0, runs: 0 };
  const limits = [opts.changelogKeep, opts.journalKeep].filter((k) => k > 0);
  const every = Math.max(1, Math.floor(Math.min(...limits) / 10));
  let commits = 0;
  let running: Promise<void> | undefined;
  let stopped = false;
  let allowed = owned === undefined;

  const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
  /** Calls `trimBatch` until it deletes less than a batch, one event-loop turn apart; returns the rows deleted. */
  async function drain(trimBatch: () => number): Promise<number> {
    let total = 0;
    for (let n = BATCH; n === BATCH && !stopped; await turn()) total += n = trimBatch();
    return total;
  }
  async function trim(): Promise<void> {
    stats.runs++;
    if (opts.changelogKeep > 0) stats.changelogTrimmed += await drain(() => store.trimChangelog(opts.changelogKeep, BATCH));
    if (opts.journalKeep > 0) stats.journalTrimmed += await drain(() => store.trimJournal(opts.journalKeep, BATCH));
  }
  const run = (): Promise<void> => {
    if (!allowed) return Promise.resolve();
    running ??= trim()
      .catch((err) => log.error({ err }, 'trimming the change log failed'))
      .finally(() => (running = undefined));
    return running;
  };
  const unsubscribe = limits.length
    ? directory.onChange(() => {
      // After this commit's other listeners (the followers read the new rows first).
      if (++commits % every === 0) setImmediate(() => void run());
    })
    : () => undefined;
  owned?.then(() => {
    allowed = true;
    if (!stopped && limits.length) void run();
  }, () => undefined);
  return {
    stats,
    run,
    stop() {
      stopped = true;
      unsubscribe();
    },
  };
}
