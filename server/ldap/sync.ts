/**
 * LDAP Content Synchronization, provider side (RFC 4533): a SearchRequest
 * with the Sync Request control (search.ts hands it here).
 *
 * - refreshOnly (§3.3): the refresh, then a SearchResultDone with the Sync
 *   Done control (its cookie; refreshDeletes for a delete phase).
 * - refreshAndPersist (§3.4): the refresh ends with a Sync Info message
 *   (refreshPresent or refreshDelete, refreshDone), then every committed
 *   change is sent as it comes (content-sync.ts persist), each with a
 *   cookie (a Sync Info newcookie when the changes followed at once sent
 *   nothing that carries the last one's), until the client abandons
 *   (RFC 4511 §4.11) or cancels (RFC 3909) the search, binds again
 *   (§4.2.1, bind.ts), or closes the connection. The request is done once the
 *   refresh is written, so that the connection reads further requests.
 * - The refresh is full without a cookie (a present phase: every entry of
 *   the search with state add, then refreshDeletes FALSE: what the consumer
 *   has and we did not send is gone), incremental from a cookie the change
 *   log still reaches (for an identity that may read every entry; anonymous
 *   always gets a full one, content-sync.ts) (a delete phase: the entries changed since with state
 *   add, the deleted ones as UUIDs in syncIdSet messages, then
 *   refreshDeletes TRUE). A cookie the log no longer reaches gets a full
 *   refresh when the client set reloadHint (slapd's syncrepl does), and
 *   e-syncRefreshRequired (4096, §2.7) otherwise.
 *
 * Cookies are OpenLDAP's (slapd's syncrepl parses them):
 * `rid=NNN,csn=<CSN>`, the rid echoed from the client's cookie (000 when it
 * sent none), the CSN that of the last change the cookie covers
 * (server/directory/csn.ts). Entries are named by their entryUUID, sent as
 * 16 octets (§2.3). The search is a search: base, scope, filter, attributes
 * and access control apply as they do to any other (Directory.syncMatcher).
 *
 * A full refresh waits while more than `syncBacklog` bytes wait for the
 * consumer; a consumer that does not read what the persist phase sends is
 * disconnected once more than that wait for it: the provider's memory
 * stays bounded.
 */
import type { LdapContext, LdapRequest, SyncFollower } from './context';
import type { SearchCall } from './search-decode';
import { SCOPES } from './search-decode';
import { PAGED_RESULTS_OID, SYNC_REQUEST_OID } from './controls';
import { RESULT_CODES, resultOf } from './results';
import { inSlices } from './slices';
import {
  BOOLEAN_TRUE, children, encodeControl, encodeIntermediateResponse, encodeLdapResult, encodeOctets, encodeSearchEntry,
  integerContent, readInt, readTlv, tlv, withControls,
} from '../ber';
import { wireAttributes } from '../directory/entry';
import type { SearchRequest, SyncMatcher } from '../directory/directory';
import { planRefresh, SyncChanges, type SyncState, type SyncUpdate } from '../directory/content-sync';
import { ChangeFollower, followClock } from '../directory/changes';
import { CSN_PATTERN, SERVER_ID } from '../directory/csn';
import { SYNC_DONE_OID, SYNC_INFO_OID, SYNC_STATE_OID } from '../ldap-framing';

export { SYNC_DONE_OID, SYNC_INFO_OID, SYNC_STATE_OID };


/** Bytes a persist phase may leave unsent before its consumer is disconnected (LdapContext.syncBacklog). */
export const DEFAULT_SYNC_BACKLOG = 16 * 1024 * 1024;

/** UUIDs per syncIdSet message. */
const ID_SET_CHUNK = 1000;

const STATES: Record<SyncState, number> = { present: 0, add: 1, modify: 2, delete: 3 };

/** The Sync Request control's value (§2.2). */
export interface SyncRequestValue {
  /** 1 refreshOnly, 3 refreshAndPersist. */
  mode: 1 | 3;
  cookie?: Buffer;
  reloadHint: boolean;
}

/**
 * Decodes syncRequestValue ::= SEQUENCE { mode ENUMERATED { refreshOnly (1),
 * refreshAndPersist (3) }, cookie syncCookie OPTIONAL, reloadHint BOOLEAN
 * DEFAULT FALSE }; undefined when malformed.
 */
export function decodeSyncRequestValue(v: Buffer | undefined): SyncRequestValue | undefined {
  if (!v) return undefined;
  try {
    const seq = readTlv(v, 0);
    if (seq.tag !== 0x30 || seq.end !== v.length) return undefined;
    const [mode, ...rest] = children(v, seq);
    if (!mode || mode.tag !== 0x0a) return undefined;
    const m = readInt(v, mode);
    if (m !== 1 && m !== 3) return undefined;
    const out: SyncRequestValue = { mode: m, reloadHint: false };
    for (const c of rest) {
      if (c.tag === 0x04 && out.cookie === undefined && !out.reloadHint) out.cookie = v.subarray(c.start, c.end);
      else if (c.tag === 0x01 && c.end - c.start === 1) out.reloadHint = v[c.start] !== 0;
      else return undefined;
    }
    return out;
  } catch {
    return undefined;
  }
}

/** A consumer's cookie, as slapd writes it: `rid=NNN[,sid=SSS][,csn=CSN[;CSN...]]`. */
export interface SyncCookie {
  /** The consumer's replica id (three digits), echoed in our cookies. */
  rid?: string;
  /** The CSN of our server id, or else the first one given: the state to start from; absent for none. */
  csn?: string;
}

/** Parses a cookie; undefined when it is not one of the form above. */
export function parseSyncCookie(text: string): SyncCookie | undefined {
  const out: SyncCookie = {};
  let csns: string[] = [];
  for (const field of text.split(',')) {
    const eq = field.indexOf('=');
    const [key, value] = eq < 0 ? [field, ''] : [field.slice(0, eq), field.slice(eq + 1)];
    if (key === 'rid' && /^\d{1,3}$/.test(value)) out.rid = value.padStart(3, '0');
    else if (key === 'sid' && /^[0-9a-fA-F]{1,3}$/.test(value)) continue;
    else if (key === 'csn' && value.split(';').every((c) => CSN_PATTERN.test(c))) csns = value.split(';');
    else if (key === 'delcsn' && CSN_PATTERN.test(value)) continue;
    else return undefined;
  }
  if (csns.length) out.csn = csns.find((c) => CSN_PATTERN.exec(c)![4] === SERVER_ID) ?? csns[0];
  return out;
}

/** Our cookie for state `csn`. */
export function formatSyncCookie(rid: string | undefined, csn: string): Buffer {
  return Buffer.from(`rid=${rid ?? '000'},csn=${csn}`, 'latin1');
}

/** An entryUUID as the 16 octets of RFC 4533 §2.1 syncUUID. */
export function uuidOctets(uuid: string): Buffer {
  const b = Buffer.from(uuid.replace(/-/g, ''), 'hex');
  if (b.length !== 16) throw new RangeError(`not a UUID: ${uuid}`);
  return b;
}

/** syncStateValue ::= SEQUENCE { state ENUMERATED, entryUUID syncUUID, cookie syncCookie OPTIONAL } (§2.3). */
export function syncStateControl(state: SyncState, uuid: string, cookie?: Buffer): Buffer {
  const parts = [tlv(0x0a, integerContent(STATES[state])), encodeOctets(uuidOctets(uuid))];
  if (cookie) parts.push(encodeOctets(cookie));
  return encodeControl(SYNC_STATE_OID, false, tlv(0x30, Buffer.concat(parts)));
}

/** syncDoneValue ::= SEQUENCE { cookie syncCookie OPTIONAL, refreshDeletes BOOLEAN DEFAULT FALSE } (§2.4). */
export function syncDoneControl(cookie: Buffer, refreshDeletes: boolean): Buffer {
  const parts = [encodeOctets(cookie)];
  if (refreshDeletes) parts.push(BOOLEAN_TRUE);
  return encodeControl(SYNC_DONE_OID, false, tlv(0x30, Buffer.concat(parts)));
}

/**
 * A Sync Info message (§2.5): an IntermediateResponse whose value is
 * refreshDelete [1] or refreshPresent [2] (cookie, refreshDone DEFAULT TRUE),
 * or syncIdSet [3] (cookie OPTIONAL, refreshDeletes, syncUUIDs).
 */
export function syncInfo(messageId: number, info:
  | { kind: 'refreshDelete' | 'refreshPresent'; cookie: Buffer }
  | { kind: 'syncIdSet'; uuids: readonly string[]; refreshDeletes: boolean }
  | { kind: 'newcookie'; cookie: Buffer }): Buffer {
  let value: Buffer;
  switch (info.kind) {
    case 'newcookie':
      value = encodeOctets(info.cookie, 0x80);
      break;
    case 'refreshDelete':
    case 'refreshPresent':
      value = tlv(info.kind === 'refreshDelete' ? 0xa1 : 0xa2, encodeOctets(info.cookie));
      break;
    case 'syncIdSet':
      value = tlv(0xa3, Buffer.concat([
        ...(info.refreshDeletes ? [BOOLEAN_TRUE] : []),
        tlv(0x31, Buffer.concat(info.uuids.map((u) => encodeOctets(uuidOctets(u))))),
      ]));
      break;
  }
  return encodeIntermediateResponse(messageId, SYNC_INFO_OID, value);
}

/** A SearchResultEntry with its Sync State control. */
function entryMessage(messageId: number, u: SyncUpdate, rid: string | undefined): Buffer {
  const entry = encodeSearchEntry(messageId, u.entry.dn, wireAttributes(u.entry.attrs));
  return withControls(entry, [syncStateControl(u.state, u.uuid, u.csn === undefined ? undefined : formatSyncCookie(rid, u.csn))]);
}

/** Answers a SearchRequest carrying the Sync Request control (see the module comment). */
export function answerSync(ctx: LdapContext, req: LdapRequest, call: SearchCall): void {
  const { conn, session } = req;
  const done = (code: number, diagnostic: string, controls: Buffer[] = [], matchedDN = '') =>
    req.reply(encodeLdapResult(call.messageId, 0x65, code, matchedDN, diagnostic, controls));
  const request = decodeSyncRequestValue(call.controls.find((c) => c.type === SYNC_REQUEST_OID)!.value);
  if (!request) return done(RESULT_CODES.protocolError, 'malformed Sync Request control value');
  if (call.controls.some((c) => c.type === PAGED_RESULTS_OID)) {
    return done(RESULT_CODES.unwillingToPerform, 'the Sync Request control does not combine with paged results');
  }
  let cookie: SyncCookie = {};
  if (request.cookie?.length) {
    const parsed = parseSyncCookie(request.cookie.toString('latin1'));
    if (!parsed) return done(RESULT_CODES.protocolError, 'invalid sync cookie');
    cookie = parsed;
  }
  const scope = SCOPES[call.scope];
  if (!scope) return done(RESULT_CODES.protocolError, `bad scope ${call.scope}`);
  const search: SearchRequest = {
    base: call.base, scope, filter: call.filter, attributes: call.attributes, typesOnly: call.typesOnly,
    sizeLimit: call.sizeLimit, timeLimit: call.timeLimit,
  };
  const directory = ctx.directory;
  const backlog = ctx.syncBacklog ?? DEFAULT_SYNC_BACKLOG;
  const failed = (err: unknown) => {
    const r = resultOf(err, session.log);
    done(r.code, r.diagnostic, [], r.matchedDN);
  };
  let matcher: SyncMatcher;
  try {
    matcher = directory.syncMatcher(session.identity, search);
  } catch (err) {
    return failed(err);
  }
  const plan = planRefresh(directory, matcher, cookie.csn, request.reloadHint);
  const newCookie = formatSyncCookie(cookie.rid, plan.head.csn);
  if (plan.kind === 'refreshRequired') {
    // Trimmed from the log (DCMX_CHANGELOG_KEEP), or never in it: a cookie from ahead of a restored backup.
    return done(RESULT_CODES.syncRefreshRequired, 'the change log does not hold this cookie\'s state (trimmed, or from before a restore): sync again without it');
  }
  const changes = new SyncChanges(matcher, directory, call.filter);
  const refreshed = (phase: 'present' | 'delete') => {
    if (request.mode === 1) return done(RESULT_CODES.success, '', [syncDoneControl(newCookie, phase === 'delete')]);
    conn.write(syncInfo(call.messageId, { kind: phase === 'delete' ? 'refreshDelete' : 'refreshPresent', cookie: newCookie }));
    persist(ctx, req, call.messageId, changes, cookie.rid, plan.head.changeNumber);
  };

  if (plan.kind === 'incremental') {
    // The changed entries in slices; the deleted UUIDs gathered and sent at the end (§3.3.2: the
    // delete phase's messages come in any order before its end).
    const items = changes.refresh(directory.changesSince(plan.after + 1, plan.head.changeNumber));
    const deleted: string[] = [];
    let failure: { err: unknown } | undefined;
    let finished = false;
    inSlices(conn, (stop) => {
      try {
        for (let r = items.next(); !r.done; r = items.next()) {
          if ('deleted' in r.value) deleted.push(r.value.deleted);
          else conn.write(entryMessage(call.messageId, r.value.update, cookie.rid));
          if (stop()) return false;
        }
      } catch (err) {
        failure = { err };
        return true;
      }
      for (let i = 0; i < deleted.length; i += ID_SET_CHUNK) {
        conn.write(syncInfo(call.messageId, { kind: 'syncIdSet', uuids: deleted.slice(i, i + ID_SET_CHUNK), refreshDeletes: true }));
      }
      finished = true;
      refreshed('delete');
      return true;
    }, () => {
      if (failure) failed(failure.err);
      else if (!finished) req.done(); // the connection has gone
    }, backlog);
    return;
  }

  // Full: the search itself, in slices, each entry with state add (a present phase, §3.3.1).
  let outcome: { failed?: unknown } | undefined;
  let run: ReturnType<typeof directory.startSearch>;
  try {
    run = directory.startSearch(session.identity, { ...search, parentsFirst: true }, (e) => {
      if (!e.uuid) return;
      changes.sent(e.uuid);
      conn.write(entryMessage(call.messageId, { state: 'add', uuid: e.uuid, entry: e }, cookie.rid));
    });
  } catch (err) {
    return failed(err);
  }
  inSlices(conn, (stop) => {
    try {
      if (!run.step(stop)) return false;
      outcome = {};
    } catch (err) {
      outcome = { failed: err };
    }
    return true;
  }, () => {
    if (!outcome) return req.done(); // the connection has gone
    if (outcome.failed !== undefined) return failed(outcome.failed);
    refreshed('present');
  }, backlog);
}

/**
 * The persist phase (§3.4): from change number `after` on, each committed
 * change's messages, in commit order, as this thread follows the change
 * clock (followClock: promptly, even with no request coming on this
 * thread). Ends on Abandon, Cancel (canceled, 118), the connection's end, a
 * gap in the change log (e-syncRefreshRequired), or a consumer too slow.
 */
function persist(ctx: LdapContext, req: LdapRequest, messageId: number, changes: SyncChanges, rid: string | undefined, after: number): void {
  const { conn, session } = req;
  const limit = ctx.syncBacklog ?? DEFAULT_SYNC_BACKLOG;
  const release = conn.hold();
  const unfollow = followClock(ctx.directory);
  let stopped = false;
  const access = ctx.directory.access;
  const watched: SyncFollower = {
    kind: access.isUnit(session.identity) ? 'unit' : access.isReplicator(session.identity) ? 'replica' : 'consumer',
    since: Date.now(),
    position: () => follower.position,
    backlog: () => conn.backlog,
  };
  const stop = () => {
    if (stopped) return;
    stopped = true;
    ctx.followers.delete(watched);
    follower.stop();
    unfollow();
    release();
    conn.longOperations.delete(messageId);
  };
  const end = (code: number, diagnostic: string) => {
    stop();
    conn.write(encodeLdapResult(messageId, 0x65, code, '', diagnostic));
  };
  const follower = new ChangeFollower(ctx.directory, {
    onChanges(rows) {
      if (stopped) return;
      conn.cork();
      try {
        let carried: string | undefined;
        for (const c of rows) {
          for (const u of changes.persist(c)) {
            conn.write(entryMessage(messageId, u, rid));
            carried = u.csn ?? carried;
          }
        }
        // Changes this search does not see still move the consumer's state (§2.5 newcookie): its
        // cookie stays within the change log however rarely its entries change.
        const last = rows[rows.length - 1].csn;
        if (carried !== last) conn.write(syncInfo(messageId, { kind: 'newcookie', cookie: formatSyncCookie(rid, last) }));
      } catch (err) {
        const r = resultOf(err, session.log);
        end(r.code, r.diagnostic);
      } finally {
        conn.uncork();
      }
      if (!stopped && conn.backlog > limit) {
        session.log.info({ backlog: conn.backlog, limit }, 'ldap sync consumer does not keep up: disconnected');
        stop();
        conn.end();
      }
    },
    onGap() {
      end(RESULT_CODES.syncRefreshRequired, 'the change log was trimmed past this session: sync again');
    },
  }, { from: after });
  conn.longOperations.set(messageId, {
    stop(how) {
      if (how === 'cancel') end(RESULT_CODES.canceled, 'canceled');
      else stop();
    },
  });
  ctx.followers.add(watched);
  req.done();
  // What was committed while the refresh was being written.
  follower.catchUp();
}
