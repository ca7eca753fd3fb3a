/**
 * Per-connection state: dcmx decides access from the identity stored here
 * by the bind handler only.
 */
import { ANONYMOUS, type Identity } from '../directory/access';
import type { Logger } from '../log';

/** What dcmx keeps on each LDAP connection. */
export interface Session {
  id: number;
  identity: Identity;
  log: Logger;
  /** The client's address (the guessing throttle counts by it). */
  remote?: string;
}

let nextId = 1;

/** A new anonymous session for a connection from `remote`, with its own child logger (`sid`). */
export function newSession(remote: string, log: Logger): Session {
  const id = nextId++;
  return { id, identity: ANONYMOUS, log: log.child({ sid: id }), remote };
}
