/** What every LDAP operation handler is given. */
import type { Directory } from '../directory/directory';
import type { Logger } from '../log';

export interface LdapContext {
  directory: Directory;
  log: Logger;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
/** ldapjs request and response objects are untyped; handlers see them as this. */
export type LdapReq = any;
export type LdapRes = any;
export type Next = (err?: unknown) => void;
export type Handler = (req: LdapReq, res: LdapRes, next: Next) => void;

/** Writes one response PDU to the requesting connection (dropped if it has closed). */
export type Reply = (pdu: Buffer) => void;
