/**
 * DNS queries answered, counted by question type, RCODE and transport, for
 * GET /metrics. Bounded labels: the types of RRTYPE (records.ts) and a few
 * more that resolvers ask for (DNSSEC, SVCB/HTTPS), every other type as
 * `other`; the RCODEs of RFC 1035 §4.1.1 and RFC 6891 §9 (BADVERS) by name.
 * A packet dropped at the door (no reply) is not a query answered: the
 * Answerer's `dropped` counts it.
 */
import { CountTable } from '../tally';
import { RRTYPE } from '../directory/records';

/** The question types counted by name (RFC 4034 DNSSEC, RFC 9460 SVCB/HTTPS besides RRTYPE's); anything else is `other`. */
const QTYPES: Record<string, number> = { ...RRTYPE, RRSIG: 46, NSEC: 47, DNSKEY: 48, NSEC3: 50, SVCB: 64, HTTPS: 65 };
const QTYPE_NAMES = [...Object.keys(QTYPES), 'other'];
const QTYPE_INDEX = new Map<number, number>(Object.values(QTYPES).map((t, i) => [t, i]));
const OTHER_QTYPE = QTYPE_NAMES.length - 1;

/** RCODE names by value (RFC 1035 §4.1.1, RFC 2136 §2.2, RFC 6891 §9). */
const RCODE_NAMES = [
  'NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'YXDOMAIN', 'YXRRSET', 'NXRRSET', 'NOTAUTH', 'NOTZONE',
  'RCODE11', 'RCODE12', 'RCODE13', 'RCODE14', 'RCODE15', 'BADVERS',
];

const TRANSPORTS = ['udp', 'tcp'];

/** Queries answered as `{udp: {MX: {NOERROR: 3}}}`. */
export type DnsQueryFigures = Record<string, Record<string, Record<string, number>>>;

/** One thread's DNS queries answered, by transport, question type and RCODE. */
export class DnsQueryCounts {
  private readonly table = new CountTable([TRANSPORTS, QTYPE_NAMES, RCODE_NAMES]);

  /** Counts a query of type `qtype` (undefined: no question) answered with `rcode` (0..16). */
  answered(tcp: boolean, qtype: number | undefined, rcode: number): void {
    const type = qtype === undefined ? OTHER_QTYPE : (QTYPE_INDEX.get(qtype) ?? OTHER_QTYPE);
    this.table.add(tcp ? 1 : 0, type, rcode < RCODE_NAMES.length ? rcode : 0);
  }

  figures(): DnsQueryFigures {
    return this.table.figures() as DnsQueryFigures;
  }
}
