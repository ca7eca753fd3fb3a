/**
 * DKIM signing at delivery (RFC 6376 §5, RFC 8463): the signatures a
 * message of our own users gets before it leaves through any channel — the
 * smtp and relay channels send them in front of the message, the Maildir
 * copy of mail to another local domain carries them too. Computed once per
 * attempt, off the SMTP intake path.
 *
 * Which mail: only messages marked `submitted` (sent by a client that may
 * relay — SMTP AUTH or DCMX_RELAY_NETWORKS — or DSNs made here); mail from
 * outside is never signed, whatever domain it names.
 *
 * Which key (RFC 7489 §3.1.1, DMARC alignment): the domain of the From:
 * header field when we host it (or the nearest hosted parent of it, which
 * aligns under relaxed alignment), else the envelope sender's domain (or
 * its nearest hosted parent); never a domain we do not host. Every key the
 * chosen domain has signs (RSA and Ed25519: RFC 8463 §4 dual signing).
 *
 * Whose domain (RFC 6376 §1.1: the signer takes responsibility for the
 * message): mail an SMTP AUTH user submitted (`submitter`) is signed only
 * with the key of a domain that identity may send as (MailSource.maySendAs:
 * the domain its entry lives under, a domain it manages, any for the
 * administrator). A From: domain it may not send as is passed over for the
 * envelope sender's domain, under the same rule; failing both the message
 * goes unsigned and the reason is logged. Clients of DCMX_RELAY_NETWORKS and
 * DSNs made here have no submitter: they are trusted with any hosted domain.
 *
 * The signer is mailauth's (postalsys): it signs rsa-sha256 and
 * ed25519-sha256 alike, several signatures in one pass over the message.
 */
import * as fs from 'node:fs';
import { domainToASCII } from 'node:url';
import addressparser = require('nodemailer/lib/addressparser');
import type { DkimSigningKey } from '../directory/dkim';
import { parseFields, readHeaderSection } from './headers';
import type { QueuedMessage } from './types';
import { lazily } from '../lazy';

/** mailauth's signer (and its dependencies: joi, libmime, tldts), loaded at the first message signed (lazy.ts). */
const mailauthSign = lazily(() => require('mailauth/lib/dkim/sign') as typeof import('mailauth/lib/dkim/sign')); // eslint-disable-line @typescript-eslint/no-require-imports

/**
 * The header fields signed (RFC 6376 §5.4.1: those that carry the message's
 * meaning, its list of them Resent-* and List-* included; Received and the
 * like change in transit). mailauth lists each field present, every instance
 * of it. From is listed twice: oversigned (RFC 6376 §5.4.2, §8.15), h= names
 * it once more than the message has it, so a From: field added after signing
 * breaks the signature (mailauth does this with dcmx's patch,
 * patches/mailauth+7.1.0.patch). RFC 8058 §4: one-click unsubscribe counts
 * only when List-Unsubscribe and List-Unsubscribe-Post are signed.
 */
export const SIGNED_HEADERS = [
  'From', 'From', 'Sender', 'Reply-To', 'To', 'Cc', 'Subject', 'Date', 'Message-ID', 'In-Reply-To', 'References',
  'Resent-Date', 'Resent-From', 'Resent-Sender', 'Resent-To', 'Resent-Cc', 'Resent-Message-ID',
  'List-Id', 'List-Help', 'List-Unsubscribe', 'List-Unsubscribe-Post', 'List-Subscribe', 'List-Post', 'List-Owner', 'List-Archive',
  'MIME-Version', 'Content-Type', 'Content-Transfer-Encoding', 'Content-ID', 'Content-Description',
  'Auto-Submitted',
];

/** How much of the header section is read to find From: (whole fields, as dsn.ts reads it). */
const HEADER_CAP = 64 * 1024;

/** The DKIM keys of a hosted domain (MailSource.dkimKeys): none when it is not hosted or has none published. */
export type DkimKeyLookup = (domain: string) => DkimSigningKey[];

/** May the SMTP AUTH identity `dn` send as hosted domain `domain` (MailSource.maySendAs)? */
export type SendAsCheck = (dn: string, domain: string) => boolean;

/** Where the signer says why a submitted message goes unsigned. */
export type SignerLog = (fields: Record<string, unknown>, msg: string) => void;

/** Signs messages of our own users with the keys of their hosted domain. */
export class MessageSigner {
  /**
   * Without `maySendAs`, no mail of an SMTP AUTH user is signed (nothing
   * says which domains are its); `log` hears why a message goes unsigned.
   */
  constructor(
    private readonly keysOf: DkimKeyLookup,
    private readonly maySendAs?: SendAsCheck,
    private readonly log?: SignerLog,
  ) {}

  /**
   * The DKIM-Signature header fields to put in front of `message` (CRLF
   * line ends, ready to prepend), or undefined when it is not to be signed:
   * not submitted by our users, no hosted domain with a key, or the signer
   * refused (no From: field, RFC 6376 §5.4). Rejects when the message's
   * bytes cannot be read, or when no signature could be made with the keys
   * found (a stored key that is no key), naming each selector and why.
   */
  async signatures(message: QueuedMessage): Promise<Buffer | undefined> {
    if (!message.submitted) return undefined;
    const header = await readHeaderSection(message, HEADER_CAP);
    if (header === undefined) throw new Error(`cannot read message ${message.id} to sign it`);
    const keys = this.permitted(message, this.keysFor(fromDomain(header.toString('utf8'))), 'From:')
      ?? this.permitted(message, this.keysFor(domainOf(message.sender)), 'envelope sender');
    if (!keys) return undefined;
    const input = message.body ?? fs.createReadStream(message.spoolPath);
    const signed = await mailauthSign().dkimSign(input, {
      signingDomain: keys[0].domain, selector: keys[0].selector, privateKey: keys[0].privateKey,
      canonicalization: 'relaxed/relaxed',
      headerList: SIGNED_HEADERS,
      signatureData: keys.map((k) => ({ signingDomain: k.domain, selector: k.selector, privateKey: k.privateKey })),
    });
    if (signed.signatures) return Buffer.from(signed.signatures);
    // RFC 6376 §5.4: no From: field, nothing to sign; anything else (a key that is no key) is an error to report.
    const errors = (signed.errors ?? []).filter((e) => e.err?.code !== 'ENOFROM');
    if (errors.length) throw new Error(`DKIM signing failed for ${keys[0].domain}: ${errors.map((e) => `${e.selector}: ${e.err?.message}`).join('; ')}`);
    return undefined;
  }

  /**
   * `keys` when the message's submitter may send as their domain (or it has
   * no submitter: a relay network client, a DSN); else undefined, logged.
   */
  private permitted(message: QueuedMessage, keys: DkimSigningKey[] | undefined, role: string): DkimSigningKey[] | undefined {
    if (!keys || message.submitter === undefined) return keys;
    const domain = keys[0].domain;
    if (this.maySendAs?.(message.submitter, domain)) return keys;
    this.log?.({ id: message.id, user: message.submitter, domain, role }, `not signed with ${domain}'s key: the authenticated user may not send as ${domain}`);
    return undefined;
  }

  /** The keys of `domain` or of its nearest hosted parent that has keys; undefined when none. */
  private keysFor(domain: string | undefined): DkimSigningKey[] | undefined {
    if (!domain) return undefined;
    const labels = domain.split('.');
    // Up to the parent of the top-level domain's first child (example.org, not org).
    for (let i = 0; i <= labels.length - 2; i++) {
      const keys = this.keysOf(labels.slice(i).join('.'));
      if (keys.length) return keys;
    }
    return undefined;
  }
}

/** The domain (lower case) of the first address of the first From: field of a header section (RFC 5322 §3.6.2), if any. */
export function fromDomain(section: string): string | undefined {
  const from = parseFields(section.replace(/\r?\n/g, '\r\n')).find((f) => f.name.toLowerCase() === 'from');
  if (!from) return undefined;
  const first = flatten(addressparser(from.value))[0];
  return domainOf(first ?? '');
}

/** Addresses of an addressparser result, groups opened. */
function flatten(list: ReturnType<typeof addressparser>): string[] {
  return list.flatMap((a) => ('group' in a ? flatten(a.group) : a.address ? [a.address] : []));
}

/** The domain of an address, lower case, without a trailing dot; undefined for none. */
function domainOf(address: string): string | undefined {
  const at = address.lastIndexOf('@');
  const d = at > 0 ? domainToASCII(address.slice(at + 1).replace(/\.$/, '')) : ''; // lower case, A-labels ('' when invalid)
  return /^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(d) ? d : undefined;
}
