/**
 * Counting the hops a message has made: the `Received:` fields of its header
 * section (RFC 5321 §6.3: "a simple counting of the number of 'Received'
 * header fields in a message has proven to be an effective, although rarely
 * optimal, method of detecting loops in mail systems"; the server SHOULD
 * treat a count past a large limit, at least 100 by that text, Postfix's
 * hopcount_limit being 50, as a loop).
 *
 * The count is taken as the message streams in, with bounded memory: only
 * the start of the current line is looked at, and counting stops at the
 * empty line that ends the header section (RFC 5322 §2.1).
 */

const FIELD = 'received:';

/** Counts the `Received:` fields of a message's header section, chunk by chunk. */
export class HopCounter {
  /** Received: fields seen so far. */
  count = 0;
  /** The header section has ended (an empty line was seen). */
  private done = false;
  /** Characters of the current line seen so far, up to FIELD's length (lower case). */
  private start = '';
  /** Octets of the current line so far (only whether it is empty matters). */
  private length = 0;

  push(chunk: Buffer): void {
    for (let i = 0; i < chunk.length && !this.done; i++) {
      const b = chunk[i];
      if (b === 0x0a) {
        // An empty line (LF or CRLF alone) ends the header section.
        if (this.length === 0 || (this.length === 1 && this.start === '\r')) this.done = true;
        this.start = '';
        this.length = 0;
        continue;
      }
      this.length++;
      if (this.start.length < FIELD.length) {
        this.start += String.fromCharCode(b).toLowerCase();
        if (this.start === FIELD) this.count++;
      }
    }
  }
}
