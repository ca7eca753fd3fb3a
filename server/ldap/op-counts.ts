/**
 * LDAP operations counted by kind and result code, and their latency, for
 * GET /metrics. Every response goes through the connection's write
 * (connection.ts), which hands each PDU here: a few octets are peeked at,
 * nothing is decoded or allocated. A final response (RFC 4511 §4.1.9: an
 * LDAPResult) counts its operation with its result code; its latency is the
 * time from the request's dispatch to that response. Unbind and Abandon
 * have no response (§4.3, §4.11): they count with the result `none`. An
 * operation that goes on after its request is done (Content Sync's persist
 * phase, RFC 4533 §3.4, announced by an IntermediateResponse) counts its
 * final result but no latency.
 */
import { performance } from 'node:perf_hooks';
import { CountTable, LatencyHistograms, type HistogramFigures } from '../tally';
import { REQUESTS } from './request-decode';
import { RESULT_CODES } from './results';

/** The operations counted, by the `op` names of request-decode.ts. */
const OPS = Object.values(REQUESTS).map((r) => r.op);

/** The index in OPS of each request tag, and of each response tag. */
const OP_OF_REQUEST = new Map<number, number>(Object.keys(REQUESTS).map((tag, i) => [Number(tag), i]));
const OP_OF_RESPONSE = new Map<number, number>(
  Object.values(REQUESTS).flatMap((r, i) => (r.responseTag === undefined ? [] : [[r.responseTag, i] as [number, number]])),
);

/** Result names: RESULT_CODES', then `other` (a code not among them) and `none` (no response). */
const RESULTS = [...Object.keys(RESULT_CODES), 'other', 'none'];
const RESULT_INDEX = new Map<number, number>(Object.values(RESULT_CODES).map((code, i) => [code, i]));
const OTHER = RESULTS.length - 2;
const NONE = RESULTS.length - 1;

/** Upper bounds of the latency buckets, in seconds. */
export const LDAP_LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** RFC 4511 §4.13: IntermediateResponse ::= [APPLICATION 25]. */
const INTERMEDIATE_RESPONSE = 0x79;

/** Operations by result, `{search: {success: 3}}`, and latency histograms by operation. */
export interface LdapOperationFigures {
  results: Record<string, Record<string, number>>;
  latency: Record<string, HistogramFigures>;
}

/** Every operation counted in `f`, whatever its kind and result. */
export function operationsTotal(f: LdapOperationFigures): number {
  let n = 0;
  for (const byResult of Object.values(f.results)) for (const v of Object.values(byResult)) n += v;
  return n;
}

/** The offset of the contents of the BER TLV at `off` (definite length, RFC 4511 §5.1). */
function contents(b: Buffer, off: number): number {
  const l = b[off + 1];
  return l < 0x80 ? off + 2 : off + 2 + (l & 0x7f);
}

/** The unsigned big-endian integer of the primitive TLV at `off` (a message ID, a result code). */
function smallInt(b: Buffer, off: number): number {
  const len = b[off + 1];
  let n = 0;
  for (let k = 0; k < len && k < 6; k++) n = n * 256 + b[off + 2 + k];
  return n;
}

/** One endpoint's operation counts (every connection of a thread's LDAP endpoint adds to it). */
export class LdapOperationCounts {
  private readonly results = new CountTable([OPS, RESULTS]);
  private readonly latency = new LatencyHistograms(OPS, LDAP_LATENCY_BUCKETS);

  /** Counts a request that has no response (Unbind, Abandon) by its protocolOp tag. */
  unanswered(tag: number): void {
    const op = OP_OF_REQUEST.get(tag);
    if (op !== undefined) this.results.add(op, NONE);
  }

  /**
   * Looks at one response PDU written for a request. Returns false when it
   * ends the timing of request `messageId` (it answered it, or began its
   * persist phase), true when that request is still running.
   */
  response(pdu: Buffer, messageId: number, startedAt: number): boolean {
    if (pdu.length < 8 || pdu[0] !== 0x30) return true;
    const id = contents(pdu, 0);
    if (pdu[id] !== 0x02) return true;
    const msgid = smallInt(pdu, id);
    const opAt = id + 2 + pdu[id + 1];
    const tag = pdu[opAt];
    if (tag === INTERMEDIATE_RESPONSE) return msgid !== messageId;
    const op = OP_OF_RESPONSE.get(tag);
    if (op === undefined) return true;
    const code = contents(pdu, opAt);
    if (pdu[code] !== 0x0a) return true;
    this.results.add(op, RESULT_INDEX.get(smallInt(pdu, code)) ?? OTHER);
    if (msgid !== messageId) return true;
    this.latency.observe(op, (performance.now() - startedAt) / 1000);
    return false;
  }

  figures(): LdapOperationFigures {
    return { results: this.results.figures() as LdapOperationFigures['results'], latency: this.latency.figures() };
  }
}
