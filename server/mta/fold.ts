/**
 * Folding of over-long lines in a message as it is received, as Postfix's
 * SMTP client does with smtp_line_length_limit: a line longer than 998
 * octets (RFC 5322 §2.1.1, RFC 5321 §4.5.3.1.6, both without the CRLF) is
 * broken by inserting CRLF SPACE, so a header line becomes a folded header
 * (§2.2.3) and MIME boundaries and base64 lines are least disturbed. Lines
 * of 998 octets or fewer are left exactly as they are.
 */

/** RFC 5322 §2.1.1: at most 998 characters on a line, CRLF excluded. */
export const MAX_LINE = 998;

const LF = 0x0a;
const CR = 0x0d;
const FOLD = Buffer.from('\r\n ');
const EMPTY = Buffer.alloc(0);
/** The octets of a line before MAX_LINE that are held until the line is known to end in time (a CR, then up to 3 octets of a UTF-8 character). */
const HOLD = 3;
/** Up to here a line's octets go out as they come. */
const SAFE = MAX_LINE - HOLD;

/** A UTF-8 continuation octet (10xxxxxx): no fold before it, so a character is never split. */
function continuation(b: number): boolean {
  return (b & 0xc0) === 0x80;
}

/**
 * A streaming folder: `push` takes the message's chunks in order and returns
 * the bytes to keep, `end` what is still held at the end. Memory is bounded
 * whatever the line length: the last few octets of the current line are held
 * (to see whether it ends in time, and not to split a UTF-8 character), the
 * rest goes out at once. Lines may end in CRLF or a bare LF; a CR counts as a
 * character unless an LF follows it. The returned buffers may share the
 * chunk's memory.
 */
export class LineFolder {
  /** Octets of the current line already given out (a fold's SPACE counts). */
  private col = 0;
  /** Octets of the current line past SAFE, held back. */
  private held: number[] = [];

  push(chunk: Buffer): Buffer {
    const out: Buffer[] = [];
    let i = 0;
    const n = chunk.length;
    /** Where the chunk's octets not yet in `out` (nor held) begin: they go out in one piece, so a chunk without a fold is returned whole. */
    let run = 0;
    while (i < n) {
      if (this.held.length === 0) {
        // Fast path: up to the next LF, or up to SAFE octets of this line.
        const lf = chunk.indexOf(LF, i);
        const end = lf < 0 ? n : lf;
        const room = SAFE - this.col;
        if (end - i <= room) {
          const stop = lf < 0 ? n : lf + 1;
          this.col = lf < 0 ? this.col + (n - i) : 0;
          i = stop;
          continue;
        }
        this.col += room;
        i += room;
        if (i > run) out.push(chunk.subarray(run, i));
      }
      // The line is at SAFE: one octet at a time until it ends or must be folded.
      const b = chunk[i++];
      run = i;
      if (b === LF) {
        out.push(Buffer.from(this.held));
        this.held = [];
        this.col = 0;
        run = i - 1; // the LF begins the next piece
        continue;
      }
      this.held.push(b);
      const length = this.col + this.held.length;
      // A CR as the 999th octet may be the line's CRLF: wait for the next octet.
      if (length <= MAX_LINE || (length === MAX_LINE + 1 && b === CR)) continue;
      // Too long: fold before the character that crosses the limit.
      let k = MAX_LINE - this.col;
      while (k > 0 && continuation(this.held[k])) k--;
      if (k === 0 && continuation(this.held[0])) k = MAX_LINE - this.col; // not UTF-8 after all: a plain cut
      const rest = this.held.slice(k);
      out.push(Buffer.from(this.held.slice(0, k)), FOLD, Buffer.from(rest));
      this.held = [];
      this.col = 1 + rest.length;
    }
    if (run === 0 && out.length === 0) return chunk; // nothing folded or held: the chunk as it came
    if (run < n) out.push(chunk.subarray(run));
    if (out.length === 0) return EMPTY;
    return out.length === 1 ? out[0] : Buffer.concat(out);
  }

  /** What is still held at the end of the input (the end of a last line without a line break). */
  end(): Buffer {
    const held = Buffer.from(this.held);
    this.held = [];
    this.col = 0;
    return held;
  }
}
