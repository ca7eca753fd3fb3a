/**
 * Mailbox placement (issue 11), as in Sun's messaging server: a recipient's
 * `mailHost` (inetMailUser, 2.16.840.1.113730.3.1.18) names the host that
 * holds its mailbox. A transfer unit delivers into its Maildirs what is its
 * own and relays the rest to the mailbox's host over SMTP (the relay
 * channel).
 *
 * The default: a mailbox without `mailHost` (and a catch-all or RFC 2142
 * role address with no entry of its own) belongs to the appliance that
 * holds the directory: on the appliance it is delivered here; a remote unit
 * relays it to the directory's host (MailSource.directoryHost).
 *
 * "Its own": the host is DCMX_HOSTNAME, or resolves to one of our addresses
 * (SelfIdentity.holder, as for a domain's own mail hosts); a lookup that
 * fails for now leaves the answer open, and the delivery is retried.
 */
import type { Holder } from './self';

/** Where a mailbox is: `here` (this unit's Maildir), at another `host`, or `unknown` for now (the host's address could not be learnt). */
export type Placement = { kind: 'here' } | { kind: 'host'; host: string } | { kind: 'unknown'; host: string };

/**
 * The placement of a mailbox whose entry says `mailHost` (undefined: none,
 * or no entry), with `directoryHost` the host of the appliance holding the
 * directory (undefined: this process), and `holder` telling whether a
 * host is this unit.
 */
export async function placeMailbox(
  mailHost: string | undefined,
  directoryHost: string | undefined,
  holder: (hosts: readonly string[]) => Promise<Holder>,
): Promise<Placement> {
  const host = mailHost ?? directoryHost;
  if (host === undefined) return { kind: 'here' };
  switch (await holder([host])) {
    case 'self':
      return { kind: 'here' };
    case 'unknown':
      return { kind: 'unknown', host };
    default:
      return { kind: 'host', host };
  }
}
