/**
 * A signed zone as a whole, for AXFR/IXFR (transfer.ts) and `dcmx zone
 * export`: the zone's records (Zones.zoneContents, which holds DNSKEY, CDS
 * and CDNSKEY at the apex and DS at cuts), a classic NSEC chain (RFC 4034 §4,
 * RFC 4035 §2.3) and RRSIGs over every authoritative RRset (RFC 4035 §2.2).
 *
 * Online answers (answers.ts) deny with compact NSEC records ("black lies",
 * RFC 9824) made per query; a secondary cannot make those, so what it is
 * given is a full chain in canonical order that it serves as a pre-signed
 * zone.
 */
import { RRTYPE, type RR } from '../directory/records';
import { signRRset, type SignerKey } from './dnssec-sign';

/** Makes the RRSIG over one RRset: signRRset (dnssec-sign.ts), or a SignCache's sign to reuse the signatures of unchanged RRsets. */
export type RRsetSigner = (rrs: readonly RR[], key: SignerKey, zone: string, now: number) => RR;

/** Lower-cases ASCII letters only (RFC 4034 §6.1: case is folded as US-ASCII; other octets are compared as they are). */
function lowerAscii(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
}

/** Compares two labels as left-justified unsigned octet strings, ASCII case folded; a label that is a prefix of the other sorts first. */
function compareLabels(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = lowerAscii(a.charCodeAt(i)) - lowerAscii(b.charCodeAt(i));
    if (d) return d;
  }
  return a.length - b.length;
}

/** Labels of a name (dcmx form: no trailing dot, '' is the root), rightmost first. */
function reversedLabels(name: string): string[] {
  return name === '' ? [] : name.split('.').reverse();
}

/**
 * Canonical DNS name order (RFC 4034 §6.1): names are compared label by
 * label from the right, each label as an octet string with ASCII letters
 * in lower case; a name sorts after the names it ends with (`example` <
 * `a.example`). Negative, zero or positive as for Array.prototype.sort.
 * Names are in dcmx form (records.ts): no trailing dot, no escapes.
 */
export function compareCanonical(a: string, b: string): number {
  return compareReversed(reversedLabels(a), reversedLabels(b));
}

function compareReversed(a: readonly string[], b: readonly string[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = compareLabels(a[i], b[i]);
    if (d) return d;
  }
  return a.length - b.length;
}

/** `names` sorted in canonical order (RFC 4034 §6.1), each split once rather than per comparison. */
export function sortCanonical(names: Iterable<string>): string[] {
  return [...names]
    .map((name) => ({ name, key: reversedLabels(name) }))
    .sort((x, y) => compareReversed(x.key, y.key))
    .map((x) => x.name);
}

/** Is `name` equal to `ancestor` or below it? (dcmx form, lower case.) */
function atOrBelow(name: string, ancestor: string): boolean {
  return ancestor === '' || name === ancestor || name.endsWith('.' + ancestor);
}

/** The records of a zone grouped by owner, each owner's RRsets by type, with what the zone is authoritative for. */
interface ZoneNames {
  /** Every owner name with its RRsets by type, in the order the records came. */
  owners: Map<string, Map<number, RR[]>>;
  /** Delegation points: names other than the apex that hold NS (RFC 1034 §4.2.1). */
  cuts: Set<string>;
  /** The names of the NSEC chain in canonical order: the apex, authoritative names and cuts (not glue nor data below a cut, RFC 4035 §2.3). */
  chain: string[];
  /** Owners outside the chain, in canonical order: glue and occluded data below a cut. */
  occluded: string[];
}

/** Groups `rrs` (a zone's records, apex `zone`) by owner and type and classifies the owners. */
function zoneNames(rrs: readonly RR[], zone: string): ZoneNames {
  const owners = new Map<string, Map<number, RR[]>>();
  for (const rr of rrs) {
    let sets = owners.get(rr.name);
    if (!sets) owners.set(rr.name, (sets = new Map()));
    const set = sets.get(rr.rdata.type);
    if (set) set.push(rr);
    else sets.set(rr.rdata.type, [rr]);
  }
  const cuts = new Set<string>();
  for (const [name, sets] of owners) if (name !== zone && sets.has(RRTYPE.NS)) cuts.add(name);
  const below = (name: string): boolean => {
    if (!atOrBelow(name, zone)) return true; // not this zone's (zoneContents gives none)
    for (let n = name; n !== zone && n.includes('.');) {
      n = n.slice(n.indexOf('.') + 1);
      if (cuts.has(n)) return true;
    }
    return false;
  };
  const chain: string[] = [];
  const occluded: string[] = [];
  for (const name of sortCanonical(owners.keys())) (below(name) ? occluded : chain).push(name);
  return { owners, cuts, chain, occluded };
}

/**
 * The types an NSEC at `name` lists (RFC 4034 §4.1.2), NSEC and RRSIG
 * included (every name of the chain has both). At a delegation point only
 * the types the parent is authoritative for: NS, DS (RFC 4035 §2.3), as
 * BIND's dnssec-verify and Knot expect; glue addresses at the cut are left out.
 */
function nsecTypes(sets: Map<number, RR[]>, cut: boolean): number[] {
  const types = new Set<number>([RRTYPE.NSEC, RRTYPE.RRSIG]);
  for (const t of sets.keys()) if (!cut || t === RRTYPE.NS || t === RRTYPE.DS) types.add(t);
  return [...types].sort((a, b) => a - b);
}

/**
 * The NSEC TTL: the lesser of the SOA MINIMUM field and the SOA's own TTL
 * (RFC 9077 §3, updating RFC 4035 §2.3).
 */
export function nsecTtl(soa: RR): number {
  return soa.rdata.type === RRTYPE.SOA ? Math.min(soa.rdata.minimum, soa.ttl) : soa.ttl;
}

/**
 * The classic NSEC chain of a zone (RFC 4035 §2.3): one NSEC at every name
 * the zone is authoritative for and at every delegation point, none at glue
 * or occluded names, none at empty non-terminals (they have no records),
 * in canonical order (RFC 4034 §6.1), the last one pointing back to the
 * apex. `rrs` are the zone's records with the apex SOA among them.
 */
export function nsecChain(rrs: readonly RR[], zone: string): RR[] {
  return chainOf(zoneNames(rrs, zone), zone);
}

function chainOf(z: ZoneNames, zone: string): RR[] {
  const soa = z.owners.get(zone)?.get(RRTYPE.SOA)?.[0];
  if (!soa) throw new Error(`nsecChain: no SOA at the apex of ${zone || '.'}`);
  const ttl = nsecTtl(soa);
  const names = z.chain;
  return names.map((name, i): RR => ({
    name,
    ttl,
    rdata: { type: RRTYPE.NSEC, next: names[(i + 1) % names.length], types: nsecTypes(z.owners.get(name)!, z.cuts.has(name)) },
  }));
}

/**
 * The signed form of a zone: `rrs` (its records, apex SOA among them, as
 * Zones.zoneContents gives them), its NSEC chain, and an RRSIG by each of
 * `keys` at `now` (seconds since the epoch) over every RRset the zone is
 * authoritative for (RFC 4035 §2.2): every RRset at the apex and at names
 * inside the zone, NSEC included; at a delegation point only DS and NSEC
 * (the NS there is the child's, RFC 4035 §2.2); nothing at glue. The SOA
 * comes first, then the names of the chain in canonical order, each RRset
 * followed by its signatures and the name's NSEC last, then glue.
 * `sign` makes each signature (signRRset unless told otherwise).
 */
export function signedZone(rrs: readonly RR[], zone: string, keys: readonly SignerKey[], now: number, sign: RRsetSigner = signRRset): RR[] {
  const z = zoneNames(rrs, zone);
  const chain = chainOf(z, zone);
  const out: RR[] = [];
  const emit = (set: RR[], signed: boolean) => {
    out.push(...set);
    if (signed) for (const key of keys) out.push(sign(set, key, zone, now));
  };
  emit(z.owners.get(zone)!.get(RRTYPE.SOA)!, true);
  z.chain.forEach((name, i) => {
    const cut = z.cuts.has(name);
    for (const [type, set] of z.owners.get(name)!) {
      if (name === zone && type === RRTYPE.SOA) continue;
      emit(set, !cut || type === RRTYPE.DS);
    }
    emit([chain[i]], true);
  });
  for (const name of z.occluded) for (const set of z.owners.get(name)!.values()) emit(set, false);
  return out;
}
