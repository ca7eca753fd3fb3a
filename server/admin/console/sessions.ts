/**
 * The web console's sessions: who logged in, kept in memory by a random id
 * that the browser holds in a cookie, and the token that every change made
 * in the session must carry (CSRF, see csrf.ts).
 *
 * - The id and the token are 32 random bytes each (base64url): unguessable,
 *   never derived from the identity.
 * - A session ends after `idleMs` without a request, or `maxAgeMs` after
 *   the login whatever happens, or at logout. Ended sessions are forgotten.
 * - At most `max` sessions are kept; beyond, the least recently used ends.
 * - Sessions live in the appliance process (the console runs on its main
 *   thread): a restart logs everyone out.
 */
import * as crypto from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Identity } from '../../directory/access';

/** One logged-in browser. */
export interface Session {
  /** The cookie's value. */
  readonly id: string;
  /** The token every change must carry in the X-CSRF-Token header. */
  readonly csrf: string;
  /** Who logged in: every action is checked against this identity's rights. */
  readonly identity: Identity;
  /** When the login happened (ms since the epoch). */
  readonly created: number;
}

/** DCMX_CONSOLE_IDLE / DCMX_CONSOLE_MAX_AGE, in ms. */
export interface SessionLimits {
  idleMs: number;
  maxAgeMs: number;
}

/** Sessions kept at most. */
const MAX_SESSIONS = 10_000;

/** The session cookie's name. */
export const SESSION_COOKIE = 'dcmx_session';

/** The sessions of one console (see the module comment). */
export class Sessions {
  /** The sessions, and when each was last used. */
  private readonly sessions = new LRUCache<string, { session: Session; seen: number }>({ max: MAX_SESSIONS });

  constructor(readonly limits: SessionLimits, private readonly now: () => number = Date.now) {}

  /** A new session for `identity` (after a successful login). */
  create(identity: Identity): Session {
    const s: Session = {
      id: crypto.randomBytes(32).toString('base64url'),
      csrf: crypto.randomBytes(32).toString('base64url'),
      identity: { dn: identity.dn, ndn: identity.ndn, anonymous: identity.anonymous, admin: identity.admin },
      created: this.now(),
    };
    this.sessions.set(s.id, { session: s, seen: s.created });
    return s;
  }

  /** The live session with this id, its idle clock restarted; undefined when unknown, idle too long or too old. */
  get(id: string | undefined): Session | undefined {
    if (!id) return undefined;
    const kept = this.sessions.get(id);
    if (!kept) return undefined;
    const now = this.now();
    if (now - kept.seen > this.limits.idleMs || now - kept.session.created > this.limits.maxAgeMs) {
      this.sessions.delete(id);
      return undefined;
    }
    kept.seen = now;
    return kept.session;
  }

  /** Ends the session (logout). */
  end(id: string): void {
    this.sessions.delete(id);
  }

}

/**
 * The Set-Cookie value for a session (RFC 6265 §4.1): HttpOnly (no script
 * reads it), Secure (sent over HTTPS only; browsers count http://localhost
 * and loopback addresses as secure, so the console works on the machine
 * itself and through an SSH tunnel), SameSite=Strict (never sent with a
 * request another site starts), Path=/, no Max-Age (gone with the browser).
 * `undefined` clears the cookie.
 */
export function sessionCookie(id: string | undefined): string {
  const attrs = 'Path=/; HttpOnly; Secure; SameSite=Strict';
  return id === undefined ? `${SESSION_COOKIE}=; ${attrs}; Max-Age=0` : `${SESSION_COOKIE}=${id}; ${attrs}`;
}

/** The session id in a request's Cookie header (RFC 6265 §5.4), if any. */
export function sessionIdOf(cookieHeader: string | undefined): string | undefined {
  if (!cookieHeader) return undefined;
  for (const part of cookieHeader.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === SESSION_COOKIE) return part.slice(eq + 1).trim() || undefined;
  }
  return undefined;
}
