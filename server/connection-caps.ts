/**
 * Connection caps shared by the SMTP and LDAP endpoints: a cap on all
 * connections, a cap on those of one client (as Postfix's
 * smtpd_client_connection_count_limit), and a "busy" state once more than
 * 3/4 of the total are open, in which the endpoints close idle connections
 * sooner, as the DNS TCP server does (RFC 7766 §6.2.3) and Postfix's stress
 * mode does (smtpd_timeout of 10 s). One client can then hold only its share
 * of the slots, and idle ones cannot hold the rest for long.
 */
import type { BlockList } from 'node:net';
import { clientKey, inCidrList } from './net';

/** Past this share of the total cap an endpoint is busy. */
export const BUSY_SHARE = 0.75;

/** Why a connection was not admitted: the total cap, or its client's. */
export type Refusal = 'total' | 'client';

/** The connections of one endpoint, counted in all and per client (clientKey). */
export class ConnectionCaps {
  private open = 0;
  private readonly perKey = new Map<string, number>();

  constructor(private readonly opts: {
    /** Connections in all. */
    max: number;
    /** Connections of one client. */
    perClient: number;
    /** Clients not held to `perClient` (they count in the total). */
    exempt?: BlockList;
  }) {}

  /** Connections open now (admitted, not yet released). */
  get total(): number {
    return this.open;
  }

  /** More than 3/4 of `max` are open: idle connections are to be closed sooner. */
  get busy(): boolean {
    return this.open > this.opts.max * BUSY_SHARE;
  }

  /** Connections `address`'s client has open now. */
  of(address: string): number {
    return this.perKey.get(clientKey(address)) ?? 0;
  }

  /**
   * Admits a connection from `address`, or says which cap it would pass.
   * Each admitted connection must be released once, when it closes.
   */
  admit(address: string): Refusal | undefined {
    if (this.open >= this.opts.max) return 'total';
    const key = clientKey(address);
    const n = this.perKey.get(key) ?? 0;
    if (n >= this.opts.perClient && !(this.opts.exempt && inCidrList(this.opts.exempt, address))) return 'client';
    this.perKey.set(key, n + 1);
    this.open++;
    return undefined;
  }

  /** Releases a connection admitted for `address`. */
  release(address: string): void {
    const key = clientKey(address);
    const n = this.perKey.get(key) ?? 0;
    if (n <= 1) this.perKey.delete(key);
    else this.perKey.set(key, n - 1);
    if (this.open > 0) this.open--;
  }
}
