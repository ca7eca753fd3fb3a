/**
 * The signed form of an answer (RFC 4035 §3.1), for a query with DO set to
 * a signed zone: online signing as PowerDNS and Knot do it, with compact
 * denial of existence ("black lies", RFC 9824).
 *
 * - Every authoritative RRset in the answer, authority and additional
 *   sections is followed by its RRSIGs, one per key (RFC 4035 §3.1.1);
 *   synthesized wildcard answers are signed under the query name, as if it
 *   existed (RFC 9824 §3: no wildcard proof needed). A negative answer's SOA
 *   is signed with its TTL in the zone and served with the negative TTL.
 * - Denial (RFC 9824 §3.1-3.2): one NSEC at the name denied, next name
 *   `\000.<name>` (its immediate successor, so it covers no other name and
 *   no zone walking is possible), whose bitmap holds the types at the name,
 *   RRSIG and NSEC; for a name that does not exist, RRSIG, NSEC and NXNAME,
 *   with RCODE NOERROR, or NXDOMAIN when the query sets CO (RFC 9824 §4).
 * - Referrals (RFC 4035 §3.1.4): the NS is not signed (the child owns it),
 *   glue neither; the DS at the cut with its RRSIG, or a signed NSEC at the
 *   cut with bitmap NS, RRSIG, NSEC proving there is none (an unsigned
 *   delegation).
 */
import { RRTYPE, type RR } from '../directory/records';
import type { Zone, ZoneNode } from '../directory/zones';
import { signRRset, type SignCache, type SignerKey } from './dnssec-sign';
import type { Answer } from './lookup';

/** An answer's sections in signed form, and whether its RCODE is NXDOMAIN. */
export interface SignedSections {
  answer: RR[];
  authority: RR[];
  additional: RR[];
  nxdomain: boolean;
}

/** What signing an answer needs: the zone's keys, the sign cache, the time (seconds since the epoch). */
export interface AnswerSigner {
  keys: readonly SignerKey[];
  cache: SignCache;
  now: number;
}

/** `\000.<name>`: the immediate successor of `name` in canonical order (RFC 9824 §3.1, RFC 4034 §6.1). */
function successor(name: string): string {
  return name === '' ? '\\000' : `\\000.${name}`;
}

/**
 * The RRSIGs over one RRset, one per key; `originalTtl` when the RRs' TTL is
 * not the zone's (a negative SOA). `cached`: whether they go through the sign
 * cache; not for names a client may invent (a name that does not exist, one
 * a wildcard synthesizes), which would evict the signatures of real RRsets.
 */
function signatures(rrs: RR[], zone: string, s: AnswerSigner, originalTtl?: number, cached = true): RR[] {
  return s.keys.map((k) => (cached ? s.cache.sign(rrs, k, zone, s.now, originalTtl) : signRRset(rrs, k, zone, s.now, originalTtl)));
}

/**
 * A section with each RRset (a run of RRs with one owner and type) followed
 * by its RRSIGs; those of RRsets owned by a name in `synthesized` (RFC 4592
 * §3.3.1) are not cached.
 */
function withSignatures(section: RR[], zone: Zone, s: AnswerSigner, synthesized?: readonly string[]): RR[] {
  if (section.length === 0) return section;
  const out: RR[] = [];
  for (let i = 0; i < section.length; ) {
    let j = i + 1;
    while (j < section.length && section[j].name === section[i].name && section[j].rdata.type === section[i].rdata.type) j++;
    const rrs = section.slice(i, j);
    out.push(...rrs);
    // RFC 2308 §5: the negative SOA's TTL is lowered; the signature covers the SOA as the zone holds it.
    const soa = rrs[0].rdata.type === RRTYPE.SOA && rrs[0].ttl !== zone.soa.ttl ? zone.soa.ttl : undefined;
    out.push(...signatures(rrs, zone.name, s, soa, !synthesized?.includes(rrs[0].name)));
    i = j;
  }
  return out;
}

/**
 * The types an NSEC at `node` lists for compact denial: those present,
 * without the DS a hosted child's apex carries for its parent (B's zone view
 * puts it there; it is the parent's, RFC 4035 §2.4), and only NS at a cut
 * below the apex, where the zone has nothing else (RFC 4035 §2.3).
 */
function typesAt(node: ZoneNode, zone: string): number[] {
  if (node.name !== zone && node.rrsets.has(RRTYPE.NS)) return [RRTYPE.NS, RRTYPE.RRSIG, RRTYPE.NSEC];
  const types = [RRTYPE.RRSIG, RRTYPE.NSEC] as number[];
  for (const t of node.rrsets.keys()) if (!(t === RRTYPE.DS && node.name === zone)) types.push(t);
  return types;
}

/**
 * The NSEC (and its RRSIGs) that denies `types`' complement at `name`, with
 * the negative TTL (RFC 9077 §3.3). `cached`: whether its signatures go
 * through the sign cache (see signatures).
 */
function denial(name: string, types: number[], zone: Zone, s: AnswerSigner, cached = true): RR[] {
  const ttl = Math.min(zone.soa.ttl, zone.soa.rdata.minimum);
  const nsec: RR = { name, ttl, rdata: { type: 47, next: successor(name), types: types.sort((a, b) => a - b) } };
  return [nsec, ...signatures([nsec], zone.name, s, undefined, cached)];
}

/**
 * The signed sections of `a`, an answer from `zone` (a.zone), for a query
 * with DO; `compactOk`: the query's CO flag. Throws as the signer does (a
 * key that is not P-256, an RRset the encoder cannot write).
 */
export function signAnswer(a: Answer, zone: Zone, s: AnswerSigner, compactOk: boolean): SignedSections {
  const answer = withSignatures(a.answer, zone, s, a.synthesized);
  if (a.result === 'delegation') {
    const cut = a.cut!;
    const ds = cut.rrsets.get(RRTYPE.DS);
    const proof = ds?.length ? [...ds, ...signatures(ds, zone.name, s)] : denial(cut.name, [RRTYPE.NS, RRTYPE.RRSIG, RRTYPE.NSEC], zone, s);
    return { answer, authority: [...a.authority, ...proof], additional: a.additional, nxdomain: false };
  }
  const authority = withSignatures(a.authority, zone, s);
  if (a.denied) {
    const node = a.denied.node;
    authority.push(...(node
      ? denial(a.denied.name, typesAt(node, zone.name), zone, s, !a.synthesized?.includes(a.denied.name))
      : denial(a.denied.name, [RRTYPE.RRSIG, RRTYPE.NSEC, RRTYPE.NXNAME], zone, s, false)));
  }
  return { answer, authority, additional: withSignatures(a.additional, zone, s), nxdomain: a.result === 'nxdomain' && compactOk };
}
