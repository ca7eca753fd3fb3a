/**
 * Zone transfers over TCP: AXFR (RFC 5936) and IXFR (RFC 1995), to clients
 * in DCMX_AXFR_ALLOW only.
 *
 * AXFR sends the SOA, every record, and the SOA again. IXFR is answered from
 * the zone journal when it covers the client's serial (deltas: old SOA,
 * removed records, new SOA, added records), with the single current SOA when
 * the client is up to date or newer (RFC 1995 §2), and otherwise with the
 * whole zone in AXFR form, which RFC 1995 §4 allows. An IXFR without the
 * client's SOA never gets here: answers.ts answers it FORMERR (RFC 1995 §3).
 */
import type { BlockList } from 'node:net';
import { inCidrList } from '../net';
import { serialGreater, type Zones } from '../directory/zones';
import type { Logger } from '../log';
import { parseRRLine, RDataError, type RR } from '../directory/records';
import { encodeResponse, encodeTransfer } from './wire';
import { OUR_UDP_SIZE, RCODE, type TransferRequest } from './answers';

/**
 * The messages that answer a transfer request (bodies, without TCP length
 * prefixes). Entries whose dc chain is not a DNS name (old data) are left
 * out and logged. Throws if the zone cannot be encoded; the transport
 * answers SERVFAIL then.
 */
export function transferMessages(zones: Zones, allow: BlockList, remote: string, req: TransferRequest, log?: Logger): Buffer[] {
  const q = req.query;
  const refuse = () => [encodeResponse({
    id: q.id, opcode: q.opcode, aa: false, rd: q.rd, cd: q.cd, rcode: RCODE.REFUSED, question: q.question,
    questionWire: q.questionWire, answer: [], authority: [], additional: [], edns: q.edns ? { udpSize: OUR_UDP_SIZE, do: q.edns.do } : undefined,
  }, 65535)];
  if (!inCidrList(allow, remote)) return refuse();
  const contents = zones.zoneContents(req.zone);
  if (!contents) return refuse();
  const all = contents.rrs;
  for (const s of contents.skipped) log?.warn({ zone: req.zone, dn: s.dn, problem: s.problem }, 'dns transfer: entry left out, not a DNS name');
  const soa = all[0];
  const current = soa.rdata.type === 6 ? soa.rdata.serial : 0;
  let rrs: RR[];
  if (req.kind === 'ixfr' && q.authoritySoaSerial !== undefined) {
    if (q.authoritySoaSerial === current || serialGreater(q.authoritySoaSerial, current)) {
      // RFC 1995 §2: a client at the same or a newer version (RFC 1982 order) gets the single current SOA.
      rrs = [soa];
    } else {
      rrs = incremental(zones, req.zone, soa, q.authoritySoaSerial) ?? [...all, soa];
    }
  } else {
    rrs = [...all, soa];
  }
  return encodeTransfer(q.id, q.question, q.questionWire, rrs);
}

/** The IXFR answer from the journal, or undefined when the journal does not reach back to `from`. */
function incremental(zones: Zones, zone: string, soa: RR, from: number): RR[] | undefined {
  if (soa.rdata.type !== 6) return undefined;
  const rows = zones.directory.store.journal(zone);
  const start = rows.findIndex((r) => r.serialFrom === from);
  if (start < 0) return undefined;
  const chain = rows.slice(start);
  for (let i = 1; i < chain.length; i++) if (chain[i].serialFrom !== chain[i - 1].serialTo) return undefined;
  if (chain[chain.length - 1].serialTo !== soa.rdata.serial) return undefined;
  const soaAt = (serial: number): RR => ({ ...soa, rdata: { ...(soa.rdata as Extract<RR['rdata'], { type: 6 }>), serial } });
  const out: RR[] = [soa];
  try {
    for (const r of chain) {
      out.push(soaAt(r.serialFrom), ...r.removed.map(parseRRLine), soaAt(r.serialTo), ...r.added.map(parseRRLine));
    }
  } catch (err) {
    if (err instanceof RDataError) return undefined; // a journal line we cannot read: the whole zone (RFC 1995 §4)
    throw err;
  }
  out.push(soa);
  return out;
}
