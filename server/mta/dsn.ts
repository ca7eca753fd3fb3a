/**
 * Delivery status notifications: the bounce (and delay warning) the
 * transfer unit sends back to a message's sender.
 *
 * Format: RFC 3464 (message/delivery-status) inside RFC 3462 (RFC 6522)
 * multipart/report; report-type=delivery-status, with the three parts in
 * the order RFC 3462 §2 prescribes: a human-readable text/plain part, the
 * machine-readable message/delivery-status part, and the original
 * message's header section as text/rfc822-headers (RFC 3462 §3: we return
 * headers only, never the body — the spool file may be tens of MB and RFC
 * 3461 §4.3 RET=HDRS is the conservative choice without DSN extensions).
 *
 * Built with nodemailer's MimeNode (`nodemailer/lib/mime-node`), the MIME
 * tree builder MailComposer itself is made of, rather than with MailComposer:
 * MailComposer decides the root type itself (multipart/mixed as soon as
 * there is text plus attachments) and gives every non-text part a
 * Content-Disposition: attachment and a generated file name. MimeNode lets
 * the root be `multipart/report; report-type=delivery-status` directly and
 * still does what is easy to get wrong by hand: CRLF line ends, boundary
 * parameters, header folding, RFC 2047 words and a transfer encoding
 * chosen per part (7bit when the text allows it, quoted-printable
 * otherwise). The message/delivery-status body is composed here as pure
 * ASCII with fields folded at 78 characters (RFC 3464 §2.1 uses RFC 822
 * header syntax), so it travels 7bit as RFC 2046 §5.2 requires of message/*.
 */
import * as crypto from 'node:crypto';
import type MimeNodeClass = require('nodemailer/lib/mime-node');
import { lazily } from '../lazy';

/** nodemailer's MIME writer, loaded at the first DSN made (lazy.ts). */
const mimeNode = lazily(() => require('nodemailer/lib/mime-node') as typeof MimeNodeClass); // eslint-disable-line @typescript-eslint/no-require-imports
import { Readable } from 'node:stream';
import type { QueuedMessage } from './types';
import { parseFields, readHeaderSection } from './headers';
import { newQueueId, type Spool } from './spool';
import type { QueueMessageRow } from '../../storage/queue';

/** One recipient a DSN reports on. */
export interface FailedRecipient {
  /** Envelope recipient address (Final-Recipient). */
  recipient: string;
  /** RFC 3463 enhanced status code: 5.x.x (or 4.4.7 when the message expired) for 'failed', 4.x.x for 'delayed' (RFC 3464 §2.3.4). */
  status: string;
  /** RFC 3464 §2.3.6 Diagnostic-Code value, `type; text`, e.g. 'smtp; 550 5.1.1 no such user'. */
  diagnostic: string;
  /** RFC 3464 §2.3.5 Remote-MTA value, e.g. 'dns; mx.example.org', when an MTA answered. */
  remoteMta?: string;
  /** RFC 3464 §2.3.3 Action. */
  action: 'failed' | 'delayed';
}

/** Largest original header section returned in the text/rfc822-headers part. */
export const MAX_RETURNED_HEADERS = 64 * 1024;

/** The original's header section and what it says about itself. */
interface OriginalHeaders {
  /** Header section, CRLF line ends, without the empty line; undefined when the spool file cannot be read. */
  raw?: Buffer;
  /** The message is itself a DSN (top-level multipart/report; report-type=delivery-status). */
  isDsn: boolean;
  /** Auto-Submitted is present with a value other than 'no' (RFC 3834 §5). */
  autoSubmitted: boolean;
}

/** Reads the original's header section (headers.ts) and what it says about itself. */
async function readOriginalHeaders(message: QueuedMessage): Promise<OriginalHeaders> {
  const raw = await readHeaderSection(message, MAX_RETURNED_HEADERS);
  if (raw === undefined) return { isDsn: false, autoSubmitted: false };
  const fields = parseFields(raw.toString('latin1'));
  const valueOf = (name: string) => fields.find((f) => f.name.toLowerCase() === name)?.value;
  const contentType = valueOf('content-type') ?? '';
  const isDsn =
    /^\s*multipart\s*\/\s*report\s*(;|$)/i.test(contentType) &&
    /;\s*report-type\s*=\s*"?\s*delivery-status\s*"?\s*(;|$)/i.test(contentType);
  // RFC 3834 §5: "no" is the only value that means a human sent it; comments may follow.
  const autoSubmitted = fields.some(
    (f) => f.name.toLowerCase() === 'auto-submitted' && f.value.replace(/\([^)]*\)/g, ' ').trim().split(/[\s;]/)[0].toLowerCase() !== 'no',
  );
  return { raw, isDsn, autoSubmitted };
}

/** RFC 5322 §3.3 date-time, always in UTC: 'Tue, 05 Mar 2024 12:00:00 +0000'. */
function rfc5322Date(d: Date): string {
  return d.toUTCString().replace(/GMT$/, '+0000');
}

/** Printable ASCII only, one line, at most 900 characters: the delivery-status part is 7bit text (RFC 3464 §2.1). */
function asciiValue(s: string): string {
  const flat = s.replace(/[\r\n\t]+/g, ' ').replace(/[^\x20-\x7e]/g, '?').trim();
  return flat.length > 900 ? flat.slice(0, 897) + '...' : flat;
}

/** A `Name: value` field folded at whitespace to lines of at most 78 characters (RFC 5322 §2.2.3). */
function foldField(name: string, value: string): string {
  const words = value.split(' ').filter((w) => w !== '');
  const lines: string[] = [];
  let line = `${name}:`;
  for (const w of words) {
    if (line.length + 1 + w.length > 78 && line.trim() !== `${name}:` && line.trim() !== '') {
      lines.push(line);
      line = ` ${w}`; // continuation starts with whitespace
    } else {
      line += ` ${w}`;
    }
  }
  lines.push(line);
  return lines.join('\r\n');
}

/**
 * An address for Final-Recipient. ASCII addresses are `rfc822; addr`
 * (RFC 3464 §2.3.2). A non-ASCII address cannot appear in the ASCII
 * message/delivery-status, so it is `utf-8; ` with every character outside
 * the xtext-safe set written as `\x{HEX}` (RFC 6533 §3, utf-8-addr-xtext).
 */
function addressField(address: string): string {
  if (/^[\x21-\x7e]*$/.test(address)) return `rfc822; ${address}`;
  let out = '';
  for (const ch of address) {
    const cp = ch.codePointAt(0)!;
    const qchar = cp >= 0x21 && cp <= 0x7e && ch !== '+' && ch !== '=' && ch !== '\\';
    out += qchar ? ch : `\\x{${cp.toString(16).toUpperCase().padStart(2, '0')}}`;
  }
  return `utf-8; ${out}`;
}

/** `type; text` as RFC 3464 wants it; a value without a type is given 'x-dcmx'. */
function typedValue(value: string, defaultType: string): string {
  const v = asciiValue(value);
  return /^[A-Za-z0-9-]+\s*;/.test(v) ? v : `${defaultType}; ${v}`;
}

/** RFC 3463 §3.5 X.4.7 "Delivery time expired": a transient status that is final once the queue lifetime is over. */
const EXPIRED = '4.4.7';

/**
 * A valid RFC 3463 status for the action: a malformed or contradictory one
 * becomes X.0.0 of the right class. The one 4.x.x status a failure keeps is
 * 4.4.7: an expired message fails with it (RFC 3463 §3.5 "useful only as a
 * persistent transient error"; RFC 3464 §2.3.4 reports the status as is).
 */
function statusFor(r: FailedRecipient): string {
  if (r.action === 'failed' && r.status === EXPIRED) return EXPIRED;
  const cls = r.action === 'delayed' ? '4' : '5';
  return /^[245]\.\d{1,3}\.\d{1,3}$/.test(r.status) && r.status[0] === cls ? r.status : `${cls}.0.0`;
}

function deliveryStatus(message: QueuedMessage, failed: FailedRecipient[], hostname: string, now: Date): string {
  // RFC 3464 §2.2: per-message fields, then one block per recipient, blank-line separated.
  const blocks: string[] = [
    [foldField('Reporting-MTA', `dns; ${asciiValue(hostname)}`), foldField('Arrival-Date', rfc5322Date(message.receivedAt))].join('\r\n'),
  ];
  for (const r of failed) {
    const fields = [
      foldField('Final-Recipient', addressField(r.recipient)),
      foldField('Action', r.action),
      foldField('Status', statusFor(r)),
    ];
    if (r.remoteMta) fields.push(foldField('Remote-MTA', typedValue(r.remoteMta, 'dns')));
    if (r.diagnostic) fields.push(foldField('Diagnostic-Code', typedValue(r.diagnostic, 'x-dcmx')));
    fields.push(foldField('Last-Attempt-Date', rfc5322Date(now)));
    blocks.push(fields.join('\r\n'));
  }
  return blocks.join('\r\n\r\n') + '\r\n';
}

/** Word-wraps one paragraph to lines of at most 76 characters (so plain ASCII stays 7bit). */
function wrap(text: string, indent: string): string[] {
  const lines: string[] = [];
  let line = '';
  for (const w of text.split(/\s+/).filter((x) => x !== '')) {
    if (line !== '' && indent.length + line.length + 1 + w.length > 76) {
      lines.push(indent + line);
      line = w;
    } else {
      line = line === '' ? w : `${line} ${w}`;
    }
  }
  if (line !== '') lines.push(indent + line);
  return lines;
}

function humanText(message: QueuedMessage, failed: FailedRecipient[], hostname: string, anyFailed: boolean, haveHeaders: boolean): string {
  const lines = [`This is the mail system at host ${hostname}.`, ''];
  if (anyFailed) {
    lines.push(
      'Your message could not be delivered to one or more recipients.',
      'The delivery reports and the headers of your message are attached.',
    );
  } else {
    lines.push(
      'This is a warning only; you do not need to send your message again.',
      '',
      'Your message could not be delivered yet to the recipients below.',
      'The mail system will keep trying to deliver it.',
    );
  }
  if (!haveHeaders) lines.push('(The headers of your message are no longer available.)');
  lines.push('', `Queue id: ${message.id}`, `Received: ${rfc5322Date(message.receivedAt)}`, '');
  for (const r of failed) {
    lines.push(`<${r.recipient}>: ${r.action === 'failed' ? 'delivery failed' : 'delivery delayed'}, status ${statusFor(r)}`);
    if (r.remoteMta) lines.push(...wrap(`remote mail server: ${r.remoteMta}`, '    '));
    if (r.diagnostic) lines.push(...wrap(r.diagnostic, '    '));
    lines.push('');
  }
  return lines.join('\r\n');
}

/** Longest line of a CRLF text, in bytes. */
function longestLine(buf: Buffer): number {
  let longest = 0;
  let start = 0;
  for (let i = buf.indexOf(0x0a); i >= 0; i = buf.indexOf(0x0a, start)) {
    longest = Math.max(longest, i - start - 1);
    start = i + 1;
  }
  return Math.max(longest, buf.length - start);
}

/**
 * Builds the DSN for `message` back to its sender, reporting the
 * recipients in `failed` (RFC 3464, RFC 3462 multipart/report, with the
 * RFC 3461 §6 semantics of Action/Status).
 *
 * Returns undefined — no notification at all — when:
 * - the sender is the null sender '' (never bounce a bounce: RFC 5321
 *   §4.5.5, RFC 3464 §2);
 * - the original is itself a DSN (top-level Content-Type multipart/report
 *   with report-type=delivery-status);
 * - the original carries an Auto-Submitted field whose value is not 'no'
 *   (RFC 3834 §2, §5);
 * - `failed` is empty (nothing to report).
 *
 * Otherwise resolves to the envelope `{from: '', to: [message.sender]}` and
 * the raw message (CRLF line ends): From "Mail Delivery System"
 * <MAILER-DAEMON@hostname>, To the sender, Subject 'Undelivered Mail
 * Returned to Sender' when any recipient failed, else 'Delayed Mail (still
 * being retried)', Date (opts.now, default now), Message-ID,
 * Auto-Submitted: auto-replied, and a multipart/report;
 * report-type=delivery-status body of: text/plain naming each recipient
 * and its diagnostic; message/delivery-status with Reporting-MTA: dns;
 * hostname and Arrival-Date (receivedAt), then per recipient
 * Final-Recipient, Action, Status, Remote-MTA (when known),
 * Diagnostic-Code and Last-Attempt-Date; and text/rfc822-headers holding
 * the original header section (from the spool file up to the first empty
 * line, at most 64 KiB of whole fields, line ends made CRLF; sent 7bit
 * when it is ASCII with lines of at most 998 octets, quoted-printable
 * otherwise). When the spool file cannot be read the DSN is still built,
 * without the third part (RFC 3462 §2 allows two parts).
 */
export async function buildDsn(
  message: QueuedMessage,
  failed: FailedRecipient[],
  opts: { hostname: string; now?: Date },
): Promise<{ from: ''; to: string[]; raw: Buffer } | undefined> {
  if (message.sender === '' || failed.length === 0) return undefined;
  const original = await readOriginalHeaders(message);
  if (original.isDsn || original.autoSubmitted) return undefined;

  const now = opts.now ?? new Date();
  const hostname = asciiValue(opts.hostname);
  const anyFailed = failed.some((r) => r.action === 'failed');
  const text = humanText(message, failed, hostname, anyFailed, original.raw !== undefined);
  const status = deliveryStatus(message, failed, hostname, now);
  const headers = original.raw;

  // The boundary is `--_NmP-<base>-Part_1`: pick a base that no part contains (RFC 2046 §5.1.1).
  let base: string;
  do {
    base = crypto.randomBytes(12).toString('hex');
  } while (text.includes(base) || status.includes(base) || (headers !== undefined && headers.includes(base)));

  const root = new (mimeNode())('multipart/report; report-type=delivery-status', { baseBoundary: base, hostname });
  root.setHeader('From', `"Mail Delivery System" <MAILER-DAEMON@${hostname}>`);
  root.setHeader('To', message.sender);
  root.setHeader('Subject', anyFailed ? 'Undelivered Mail Returned to Sender' : 'Delayed Mail (still being retried)');
  root.setHeader('Date', rfc5322Date(now));
  root.setHeader('Message-ID', `<${now.getTime().toString(36)}.${crypto.randomBytes(8).toString('hex')}@${hostname}>`);
  // RFC 3834 §5: a DSN is a reply generated automatically to a message.
  root.setHeader('Auto-Submitted', 'auto-replied');

  root.createChild('text/plain; charset=us-ascii').setContent(text);
  root.createChild('message/delivery-status').setHeader('Content-Transfer-Encoding', '7bit').setContent(status);
  if (headers !== undefined) {
    const ascii = !headers.some((b) => b >= 0x80 || b === 0);
    if (ascii && longestLine(headers) <= 998) {
      // Passed through untouched; RFC 5322 §2.1.1 allows lines up to 998 octets.
      const part = new (mimeNode())('text/rfc822-headers');
      part.setRaw(Buffer.concat([Buffer.from('Content-Type: text/rfc822-headers\r\nContent-Transfer-Encoding: 7bit\r\n\r\n'), headers]));
      root.appendChild(part);
    } else {
      // 8-bit (RFC 6532) or over-long header lines: MimeNode picks quoted-printable/base64.
      root.createChild('text/rfc822-headers; charset=utf-8').setContent(headers);
    }
  }
  const raw = await root.build();
  return { from: '', to: [message.sender], raw };
}

/**
 * Spools a DSN made by buildDsn as a new message from the null sender
 * (RFC 5321 §4.5.5): resolves with its queue row and recipients, for
 * QueueStore.enqueue (its bytes are inline or in an fsynced spool file).
 */
export async function spoolDsn(
  spool: Spool, dsn: { to: string[]; raw: Buffer }, now: number,
): Promise<{ row: QueueMessageRow; rcpts: { rcpt: string; held: boolean }[] }> {
  const id = newQueueId();
  const got = await spool.receive(id, '', Readable.from([dsn.raw]), Number.MAX_SAFE_INTEGER);
  return {
    row: { id, receivedAt: now, sender: '', size: got.size, spool: got.file ?? '', body: got.inline, submitted: true },
    rcpts: dsn.to.map((rcpt) => ({ rcpt, held: false })),
  };
}
