/**
 * Search (RFC 4511 §4.5), with simple paged results (RFC 2696).
 *
 * The request is decoded by search-decode.ts; entries and the
 * SearchResultDone are written with our encoder (ber.ts), one write per
 * slice (cork). A search runs in slices of SEARCH_SLICE_MS (slices.ts,
 * Directory.startSearch), the event loop going on between two, so that a
 * costly one (a filter of thousands of terms, a large subtree) delays neither
 * the other connections nor DNS and SMTP.
 */
import type { LdapContext, OperationHandler } from './context';
import type { Session } from './session';
import { replyMalformed, RESULT_CODES, resultOf, type ResultFields } from './results';
import { encodeControl, encodeLdapResult, encodeMessage, encodePagedValue, encodeSearchEntry, encodeSearchEntryOp } from '../ber';
import { PAGED_RESULTS_OID, SYNC_REQUEST_OID } from './controls';
import { answerSync } from './sync';
import { decodePagedValue, decodeSearchRequest, SCOPES, type SearchCall } from './search-decode';
import { inSlices } from './slices';
import { REQUESTS } from './request-decode';
import { wireAttributes } from '../directory/entry';
import type { PageCursor, SearchEntry, SearchRun } from '../directory/directory';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** The SearchResultEntry of each view the directory keeps (SearchEntry.kept), encoded once for every search that returns it. */
const keptOps = new WeakMap<SearchEntry, Buffer>();

/** The SearchResultEntry message of `e` (RFC 4511 §4.5.2) for message `messageId`. */
function encodeEntry(messageId: number, e: SearchEntry): Buffer {
  if (!e.kept) return encodeSearchEntry(messageId, e.dn, wireAttributes(e.attrs));
  let op = keptOps.get(e);
  if (!op) {
    op = encodeSearchEntryOp(e.dn, wireAttributes(e.attrs));
    keptOps.set(e, op);
  }
  return encodeMessage(messageId, op);
}

/** Per-process key of the paging cookies' MAC: cookies are valid for the life of the process. */
const COOKIE_KEY = randomBytes(32);

/** What a cookie is bound to: who searches, and the search (RFC 2696 §3: later pages repeat the request). */
function cookieScope(session: Session, call: SearchCall): string {
  return JSON.stringify([session.identity.ndn, call.base, call.scope, call.filter]);
}

function cookieMac(scope: string, payload: string): string {
  return createHmac('sha256', COOKIE_KEY).update(scope).update('\0').update(payload).digest('base64url').slice(0, 22);
}

/**
 * The paging cookie (opaque to the client, RFC 2696 §2): the id of the last
 * entry sent and the count sent so far, under a MAC so that a client can
 * neither reset the count (the size limit spans the whole search) nor skip
 * ahead.
 */
export function encodeCookie(session: Session, call: SearchCall, c: PageCursor): Buffer {
  const payload = `${c.afterId}.${c.sent}`;
  return Buffer.from(`${payload}.${cookieMac(cookieScope(session, call), payload)}`, 'latin1');
}

/** The cursor of a cookie; undefined for the empty cookie (first page), null when forged or foreign. */
export function decodeCookie(session: Session, call: SearchCall, cookie: Buffer): PageCursor | undefined | null {
  if (cookie.length === 0) return undefined;
  const m = /^(\d{1,15})\.(\d{1,15})\.([A-Za-z0-9_-]{22})$/.exec(cookie.toString('latin1'));
  if (!m) return null;
  const mac = Buffer.from(cookieMac(cookieScope(session, call), `${m[1]}.${m[2]}`));
  if (!timingSafeEqual(mac, Buffer.from(m[3]))) return null;
  return { afterId: Number(m[1]), sent: Number(m[2]) };
}

/** The result of a search and, when paging was asked for, the cookie to return. */
export interface SearchOutcomeFields extends ResultFields {
  pagedCookie?: Buffer;
}

/** A search under way: each step hands the encoded entries it found to `send`; the last returns the result. */
export interface SearchSteps {
  /** Considers candidates until `stop()` says so (undefined: more to do) or the search is over (its result). Never throws. */
  step(stop: () => boolean): SearchOutcomeFields | undefined;
}

/** Starts a search, handing each encoded SearchResultEntry to `send` as the steps find it. Never throws. */
export function startSearch(ctx: LdapContext, session: Session, call: SearchCall, send: (b: Buffer) => void): SearchSteps {
  const now = (r: SearchOutcomeFields): SearchSteps => ({ step: () => r });
  const fail = (code: number, diagnostic: string): SearchSteps => now({ code, matchedDN: '', diagnostic });
  const scope = SCOPES[call.scope];
  if (!scope) return fail(RESULT_CODES.protocolError, `bad scope ${call.scope}`);
  let page: { size: number; cursor?: PageCursor } | undefined;
  const pagedControl = call.controls.find((c) => c.type === PAGED_RESULTS_OID);
  if (pagedControl) {
    const paged = decodePagedValue(pagedControl.value);
    if (!paged) return fail(RESULT_CODES.protocolError, 'malformed paged results control');
    const cursor = decodeCookie(session, call, paged.cookie);
    if (cursor === null) return fail(RESULT_CODES.unwillingToPerform, 'invalid paged results cookie');
    // RFC 2696 §3: size 0 abandons the paged search.
    if (paged.size === 0) return now({ code: RESULT_CODES.success, matchedDN: '', diagnostic: '', pagedCookie: Buffer.alloc(0) });
    page = { size: paged.size, cursor };
  }
  const failed = (err: unknown): SearchOutcomeFields => {
    const r: SearchOutcomeFields = resultOf(err, session.log);
    if (page) r.pagedCookie = Buffer.alloc(0);
    return r;
  };
  let run: SearchRun;
  try {
    run = ctx.directory.startSearch(session.identity, {
      base: call.base, scope, filter: call.filter, attributes: call.attributes, typesOnly: call.typesOnly,
      sizeLimit: call.sizeLimit, timeLimit: call.timeLimit, page,
    }, (e) => send(encodeEntry(call.messageId, e)));
  } catch (err) {
    return now(failed(err));
  }
  return {
    step: (stop) => {
      try {
        const outcome = run.step(stop);
        if (!outcome) return undefined;
        const done: SearchOutcomeFields = { code: RESULT_CODES.success, matchedDN: '', diagnostic: '' };
        if (page) done.pagedCookie = outcome.nextCursor === undefined ? Buffer.alloc(0) : encodeCookie(session, call, outcome.nextCursor);
        return done;
      } catch (err) {
        return failed(err);
      }
    },
  };
}

/** Encodes the SearchResultDone for an outcome (with the paged results response control when paging). */
export function searchDone(messageId: number, r: SearchOutcomeFields): Buffer {
  const controls = r.pagedCookie ? [encodeControl(PAGED_RESULTS_OID, false, encodePagedValue(0, r.pagedCookie))] : [];
  return encodeLdapResult(messageId, 0x65, r.code, r.matchedDN, r.diagnostic, controls);
}

/**
 * Answers a SearchRequest in slices (inSlices); done once the
 * SearchResultDone is written, or once the connection has gone (the rest is
 * not run). A Content Sync request (RFC 4533) is sync.ts's.
 */
export const answerSearch: OperationHandler = (ctx, req) => {
  const call = decodeSearchRequest(req.pdu);
  if (!call) return replyMalformed(req, REQUESTS[0x63].responseTag);
  if (call.controls.some((c) => c.type === SYNC_REQUEST_OID)) return answerSync(ctx, req, call);
  const conn = req.conn;
  const steps = startSearch(ctx, req.session, call, (b) => conn.write(b));
  inSlices(conn, (stop) => {
    const r = steps.step(stop);
    if (r) conn.write(searchDone(call.messageId, r));
    return r !== undefined;
  }, () => req.done());
};
