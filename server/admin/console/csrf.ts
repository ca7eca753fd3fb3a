/**
 * Cross-site request forgery checks for the console's changes (OWASP CSRF
 * cheat sheet: a synchronizer token plus a check of the request's origin).
 *
 * A change (any method but GET and HEAD) is accepted only when
 * - its Origin header (RFC 6454 §7; browsers send it with every POST,
 *   PUT and DELETE) names the host the request was sent to (its Host
 *   header, which http.ts has already checked is ours): a page of another
 *   site, even one that rebinds a name to our address, never passes;
 * - and, inside a session, its X-CSRF-Token header equals the session's
 *   token (sessions.ts), which only our own pages can read (GET
 *   /api/session, same-origin). A cross-site form cannot set a header.
 * The login itself has no session yet: it is checked by Origin alone.
 */
import * as crypto from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Session } from './sessions';

/** The header that carries a session's token. */
export const CSRF_HEADER = 'x-csrf-token';

/** Is this request a change (anything but a read)? */
export function isChange(method: string | undefined): boolean {
  return method !== 'GET' && method !== 'HEAD';
}

/**
 * Why the change must be refused (a sentence for the 403's body), or
 * undefined when it may go on. `session` undefined: the login (Origin only).
 */
export function csrfRefusal(req: IncomingMessage, session: Session | undefined): string | undefined {
  const origin = req.headers.origin;
  if (!origin) return 'a change needs an Origin header';
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return 'bad Origin header';
  }
  // URL.host drops a default port (80, 443); so may a browser's Host header.
  if (!req.headers.host || host.toLowerCase() !== hostWithoutDefaultPort(req.headers.host)) return 'cross-origin request refused';
  if (!session) return undefined;
  const token = req.headers[CSRF_HEADER];
  if (typeof token !== 'string' || !sameSecret(token, session.csrf)) return 'missing or wrong CSRF token';
  return undefined;
}

function hostWithoutDefaultPort(host: string): string {
  return host.toLowerCase().replace(/:(80|443)$/, '');
}

/** Compares two secrets in time independent of where they differ. */
function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}
