/**
 * Per-connection state. ldapjs keeps its own notion of the bind DN (and
 * calls anonymous "cn=anonymous"); dcmx decides access from the identity
 * stored here by our bind handler only.
 */
import { ANONYMOUS, type Identity } from '../directory/access';
import type { Logger } from '../log';

/** What dcmx keeps on each LDAP connection. */
export interface Session {
  id: number;
  identity: Identity;
  log: Logger;
  /** The client's address, set by attachSession (the guessing throttle counts by it). */
  remote?: string;
}

/** The socket-like object ldapjs hands to handlers as `req.connection`. */
export interface LdapConnection {
  dcmx?: Session;
  remoteAddress?: string;
  write(b: Buffer): boolean;
  end(b?: Buffer): void;
  destroy(): void;
}

let nextId = 1;

/** Attaches a new anonymous session to a connection. */
export function attachSession(conn: LdapConnection, log: Logger): Session {
  const id = nextId++;
  const s: Session = { id, identity: ANONYMOUS, log: log.child({ sid: id }), remote: conn.remoteAddress ?? '' };
  conn.dcmx = s;
  return s;
}

/** The session of a request's connection. */
export function sessionOf(req: { connection: LdapConnection }): Session {
  const s = req.connection.dcmx;
  if (!s) throw new Error('connection without session');
  return s;
}
