/**
 * An LDAP Content Synchronization consumer (RFC 4533), refreshAndPersist
 * over one connection it keeps: connect, bind, sync search with the last
 * cookie; on any failure wait (exponential back-off with jitter) and do it
 * again from the cookie it has. The consumer keeps no copy of the content:
 * it reports what the provider says, in order, to a {@link SyncHandler}
 * that keeps the copy it needs.
 *
 * What the handler must do with the reports (RFC 4533 §3):
 *  - `entry`: an entry's state, add/modify (with its attributes), delete
 *    (with its DN), present (unchanged: DN only);
 *  - `ids`: syncIdSet (§2.5): deleted entries (deletes) or present ones;
 *  - `unreportedGone`: the present phase ended (§3.3.1), or a refresh
 *    without a cookie did: every entry not reported since `refreshBegin`
 *    (as add, modify or present) is gone;
 *  - `refreshBegin(full)`: a refresh starts; `full` when no cookie was
 *    sent, so that everything comes again (also after
 *    e-syncRefreshRequired, §2.5: the cookie can no longer be served);
 *  - `refreshed`: the refresh phase is over; persist reports follow;
 *  - `cookie`: the state the reports so far have reached (to persist, so a
 *    restart resumes from it).
 * Handler calls are synchronous and in order; a handler that throws ends the
 * connection (which is made again, from the last cookie).
 */
import type { Logger } from '../log';
import { LdapClient, type ClientOptions } from './client';
import {
  decodeEntry,
  decodeIntermediate,
  decodeResult,
  decodeSyncDone,
  decodeSyncInfo,
  decodeSyncState,
  encodeSearch,
  encodeSyncRequest,
  LdapResultError,
  ProtocolError,
  RESULT,
  SYNC_DONE_OID,
  SYNC_INFO_OID,
  SYNC_STATE_OID,
  type SearchRequest,
  type SyncState,
} from './protocol';

/** One entry as Content Sync reports it (RFC 4533 §2.3). */
export interface SyncEntry {
  state: SyncState;
  /** entryUUID (RFC 4530), RFC 4122 text. */
  uuid: string;
  dn: string;
  /** Attributes for add and modify (names as the server spelled them); empty for present and delete. */
  attrs: Record<string, string[]>;
}

/** Receives the consumer's reports (see the module comment for the contract). */
export interface SyncHandler {
  refreshBegin(full: boolean): void;
  entry(e: SyncEntry): void;
  ids(uuids: string[], deletes: boolean): void;
  unreportedGone(): void;
  refreshed(): void;
  cookie(cookie: string): void;
  /** The connection went up (`up`: bound, sync search sent) or down (with the reason); not called for the close stop() makes. */
  connection(up: boolean, error?: Error): void;
}

/** How the consumer connects and what it synchronizes. */
export interface SyncOptions {
  client: ClientOptions;
  /** Bind identity; anonymous when bindDn is empty. */
  bindDn: string;
  password: string;
  /** The sync search (its size and time limits are ignored). */
  search: Omit<SearchRequest, 'sizeLimit' | 'timeLimit'>;
  /** The cookie to resume from (RFC 4533 §3.5), if any. */
  cookie?: string;
  /** First back-off delay after a failure, ms (doubling, with jitter, up to maxBackoffMs). Default 100. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  log: Logger;
}

/** Runs one refreshAndPersist Content Sync, reconnecting as needed. */
export class SyncConsumer {
  private current: LdapClient | undefined;
  private stopped = false;
  /** Bumped by start() and stop(): a connection attempt of an earlier run, still in flight, gives up. */
  private run = 0;
  private backoffMs: number;
  private retryTimer: NodeJS.Timeout | undefined;
  private cookieNow: string | undefined;
  private readonly minBackoff: number;
  private readonly maxBackoff: number;

  constructor(private readonly opts: SyncOptions, private readonly handler: SyncHandler) {
    this.cookieNow = opts.cookie;
    this.minBackoff = opts.minBackoffMs ?? 100;
    this.maxBackoff = opts.maxBackoffMs ?? 30_000;
    this.backoffMs = this.minBackoff;
  }

  /** Starts connecting (returns at once; reports follow). */
  start(): void {
    this.stopped = false;
    clearTimeout(this.retryTimer);
    void this.connect(++this.run);
  }

  /** The cookie of the last state reported. */
  get cookie(): string | undefined {
    return this.cookieNow;
  }

  /** The connection while it is up and bound, to run other operations over the same connection. */
  get client(): LdapClient | undefined {
    return this.current?.open ? this.current : undefined;
  }

  /** Stops: ends the connection and any retry. */
  stop(): void {
    this.stopped = true;
    this.run++;
    clearTimeout(this.retryTimer);
    this.current?.close();
    this.current = undefined;
  }

  private async connect(run: number): Promise<void> {
    let client: LdapClient | undefined;
    try {
      client = await LdapClient.open(this.opts.client);
      if (this.opts.bindDn) await client.bind(this.opts.bindDn, this.opts.password);
    } catch (e) {
      client?.destroy(e as Error);
      return this.retry(e as Error, run);
    }
    if (this.stopped || run !== this.run) return client.close(); // stopped (and maybe started again) meanwhile
    this.current = client;
    client.once('close', (err: Error) => {
      if (this.current === client) this.current = undefined;
      if (this.stopped || run !== this.run) return; // our own stop(): nothing went wrong
      this.handler.connection(false, err);
      this.retry(err, run);
    });
    this.handler.connection(true);
    this.syncSearch(client);
  }

  private retry(err: Error, run: number): void {
    if (this.stopped || run !== this.run) return;
    const delay = Math.round(this.backoffMs * (0.5 + Math.random() / 2));
    this.opts.log.warn({ err: err.message, retryMs: delay }, 'directory sync: connection failed; retrying');
    this.backoffMs = Math.min(this.maxBackoff, this.backoffMs * 2);
    this.retryTimer = setTimeout(() => void this.connect(run), delay);
  }

  private setCookie(c: string | undefined): void {
    if (c === undefined || c === this.cookieNow) return;
    this.cookieNow = c;
    this.handler.cookie(c);
  }

  /** One sync search (RFC 4533 §3.2: refreshAndPersist) from the current cookie. */
  private syncSearch(client: LdapClient): void {
    const h = this.handler;
    const full = this.cookieNow === undefined;
    /** The phase being run: present (entries may be reported present) or delete. */
    let phase: 'present' | 'delete' = 'present';
    let refreshing = true;
    h.refreshBegin(full);
    const endRefresh = (presentEnded: boolean) => {
      if (presentEnded || full) h.unreportedGone();
      refreshing = false;
      this.backoffMs = this.minBackoff; // a refresh got through: the directory works
      h.refreshed();
    };
    client.stream(encodeSearch({ ...this.opts.search, sizeLimit: 0, timeLimit: 0 }), 0x65, {
      message: (r) => {
        if (r.tag === 0x64) {
          const c = r.controls.find((x) => x.type === SYNC_STATE_OID);
          if (!c) throw new ProtocolError('a sync search entry without a Sync State control');
          const s = decodeSyncState(c);
          const e = decodeEntry(r);
          h.entry({ state: s.state, uuid: s.uuid, dn: e.dn, attrs: e.attrs });
          this.setCookie(s.cookie);
        } else if (r.tag === 0x79) {
          const im = decodeIntermediate(r);
          if (im.name !== SYNC_INFO_OID) return;
          const info = decodeSyncInfo(im.value);
          switch (info.kind) {
            case 'newcookie':
              break;
            case 'syncIdSet':
              h.ids(info.uuids, info.refreshDeletes);
              break;
            case 'refreshPresent':
            case 'refreshDelete':
              // RFC 4533 §3.4.2: the message ends the present (refreshPresent) or delete phase;
              // refreshDone FALSE means another phase follows.
              if (!refreshing) break;
              if (info.refreshDone) endRefresh(info.kind === 'refreshPresent');
              else {
                if (info.kind === 'refreshPresent') h.unreportedGone();
                phase = info.kind === 'refreshPresent' ? 'delete' : 'present';
              }
              break;
          }
          this.setCookie(info.cookie);
        }
      },
      done: (r) => {
        const res = decodeResult(r);
        const doneCtl = r.controls.find((x) => x.type === SYNC_DONE_OID);
        if (res.code === RESULT.syncRefreshRequired) {
          // RFC 4533 §2.5, §3.4.2: start over without a cookie (a full reload).
          this.opts.log.warn('directory sync: the cookie can no longer be served; reloading everything');
          this.cookieNow = undefined;
          return this.syncSearch(client);
        }
        if (res.code !== RESULT.success) return client.destroy(new LdapResultError(res.code, `sync search: ${res.diagnostic}`));
        // A refreshAndPersist search ends only when the provider ends it (§3.3.2: as refreshOnly).
        const done = doneCtl ? decodeSyncDone(doneCtl) : { refreshDeletes: false, cookie: undefined };
        if (refreshing) endRefresh(!done.refreshDeletes && phase === 'present');
        this.setCookie(done.cookie);
        client.destroy(new LdapResultError(res.code, 'the directory ended the sync search'));
      },
      error: () => undefined, // the 'close' handler reports it
    }, [encodeSyncRequest('refreshAndPersist', this.cookieNow)], 0);
  }
}
