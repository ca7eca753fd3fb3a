/**
 * Types the transfer unit's parts share: a queued message as channels see
 * it, and the outcome of one delivery attempt.
 */

/** A message in the durable queue. The spool file holds the full message, our Received: header first. */
export interface QueuedMessage {
  /** Queue id: letters and digits only, unique, safe in file names. */
  id: string;
  /** Envelope sender (RFC 5321 reverse-path); '' for the null sender of bounces. */
  sender: string;
  receivedAt: Date;
  /** Absolute path of the spool file ('' when the bytes are inline in `body`). */
  spoolPath: string;
  /** The whole message, when small enough to live in the queue row (see spool.ts INLINE_MAX). */
  body?: Buffer;
  size: number;
  /** Sent with SMTPUTF8 (RFC 6531): UTF-8 addresses or header fields may go only to a next hop that offers it. */
  smtpUtf8?: boolean;
  /** Sent with BODY=8BITMIME (RFC 6152): 8-bit content may go only to a next hop that offers 8BITMIME. */
  eightBitMime?: boolean;
  /** Mail of our own users (sent by a client that may relay, or a DSN made here): DKIM signs it at delivery (dkim-sign.ts). */
  submitted?: boolean;
  /**
   * The DN the SMTP AUTH client that submitted it authenticated as (RFC 4954);
   * absent for mail from DCMX_RELAY_NETWORKS and DSNs. DKIM signs such mail
   * only for a domain this identity may send as (dkim-sign.ts).
   */
  submitter?: string;
}

/** Outcome of one attempt for one recipient (RFC 3463 enhanced status codes). */
export type DeliveryResult =
  | { ok: true; detail?: string }
  | {
      ok: false;
      /** Permanent (5xx: bounce now) or temporary (4xx, network: retry later). */
      permanent: boolean;
      /** Enhanced status code, e.g. '5.1.1' or '4.4.1'. */
      status: string;
      /** RFC 3464 Diagnostic-Code value, e.g. 'smtp; 550 5.1.1 <a@b>: no such user'. */
      diagnostic: string;
      /** The MTA that answered, for DSN Remote-MTA (e.g. 'dns; mx.example.org'). */
      remoteMta?: string;
    };
