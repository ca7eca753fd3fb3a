/**
 * The header section of a queued message, read from its stored bytes
 * (inline in the queue row or in its spool file): what a DSN returns
 * (dsn.ts, text/rfc822-headers) and what `dcmx queue show` prints.
 */
import type { QueuedMessage } from './types';
import { openMessage } from './spool';

/** One header field, unfolded (RFC 5322 §2.2.3): its name as written and its value with the folding whitespace made one space. */
export interface HeaderField {
  name: string;
  value: string;
}

/**
 * The header section of `message` (RFC 5322 §2.1: up to the first empty
 * line), CRLF line ends, without the empty line; at most `cap` bytes of
 * whole fields (a longer section is cut before the last field that starts
 * within the cap, so no field is half there). Undefined when the message's
 * bytes cannot be read (its spool file is gone).
 */
export async function readHeaderSection(message: QueuedMessage, cap: number): Promise<Buffer | undefined> {
  let data: Buffer;
  try {
    const fh = await openMessage(message);
    try {
      const buf = Buffer.alloc(cap + 4);
      let filled = 0;
      while (filled < buf.length) {
        const { bytesRead } = await fh.read(buf, filled, buf.length - filled, filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      data = buf.subarray(0, filled);
    } finally {
      await fh.close();
    }
  } catch {
    return undefined;
  }

  let section: Buffer;
  if (data[0] === 0x0a || (data[0] === 0x0d && data[1] === 0x0a)) {
    section = Buffer.alloc(0); // no header section at all
  } else {
    const crlf = data.indexOf('\r\n\r\n');
    const lf = data.indexOf('\n\n');
    const ends = [crlf >= 0 ? crlf + 2 : -1, lf >= 0 ? lf + 1 : -1].filter((n) => n >= 0);
    const end = ends.length > 0 ? Math.min(...ends) : -1;
    if (end >= 0 && end <= cap) {
      section = data.subarray(0, end);
    } else {
      const head = data.subarray(0, Math.min(data.length, cap));
      if (data.length <= cap) {
        section = head; // a message that is all header
      } else {
        let cut = head.lastIndexOf(0x0a);
        while (cut > 0 && (head[cut + 1] === 0x20 || head[cut + 1] === 0x09 || cut + 1 >= head.length)) {
          cut = head.lastIndexOf(0x0a, cut - 1);
        }
        section = cut > 0 ? head.subarray(0, cut + 1) : Buffer.alloc(0);
      }
    }
  }
  // Line ends on the wire are CRLF (RFC 5322 §2.1); a spool in LF form is converted.
  return Buffer.from(section.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n'), 'latin1');
}

/**
 * Unfolds a header section (CRLF line ends) into its fields, in order
 * (RFC 5322 §2.2.3: a line beginning with white space continues the field
 * before). Lines that are not a field (no colon) are skipped.
 */
export function parseFields(section: string): HeaderField[] {
  const out: HeaderField[] = [];
  for (const line of section.split('\r\n')) {
    if (line === '') continue;
    if ((line[0] === ' ' || line[0] === '\t') && out.length > 0) {
      out[out.length - 1].value += ' ' + line.trim();
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    out.push({ name: line.slice(0, colon).trim(), value: line.slice(colon + 1).trim() });
  }
  return out;
}
