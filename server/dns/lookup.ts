/**
 * The authoritative answer as a pure function of the zone view and the
 * question, after NSD's answer_query (answer_authoritative → answer_domain |
 * answer_nodata | answer_nxdomain | answer_delegation) and CoreDNS's
 * Zone.Lookup. The server maps `result` to RCODE and AA; one encoder writes
 * the sections.
 */
import type { ZoneNode, ZoneView, Zone } from '../directory/zones';
import { RRTYPE, type RR } from '../directory/records';

export type LookupResult = 'success' | 'nodata' | 'nxdomain' | 'delegation' | 'refused';

export interface Answer {
  result: LookupResult;
  /** Authoritative: false for refusals and plain referrals; true for a referral reached through a CNAME of ours. */
  aa: boolean;
  answer: RR[];
  authority: RR[];
  additional: RR[];
  /** The zone that answered, when there is one. */
  zone?: string;
  /**
   * What a negative answer denies, for its signed form (RFC 4035 §3.1.3,
   * RFC 9824 §3): set whenever the authority section holds the negative
   * SOA. `name` is the name with no data (the last of a CNAME chain);
   * `node` its node when the name exists (NODATA; the wildcard's node for
   * a synthesized name), absent for a name that does not exist.
   */
  denied?: { name: string; node?: ZoneNode };
  /** A referral's cut (the node with the NS): a signed referral carries its DS or the proof that it has none (RFC 4035 §3.1.4). */
  cut?: ZoneNode;
  /**
   * Names this answer synthesized from a wildcard (RFC 4592 §3.3.1), as
   * many as clients care to invent: their signatures are made per answer,
   * not kept (dnssec-answer.ts).
   */
  synthesized?: string[];
}

/** A question in lookup terms: a lower-case name without trailing dot, a type, a class. */
export interface LookupQuestion {
  name: string;
  type: number;
  class: number;
}

const CLASS_IN = 1;
/** CNAME chains followed inside the zone before giving up (loops included). */
const MAX_CNAME_CHAIN = 8;

const REFUSED: Answer = { result: 'refused', aa: false, answer: [], authority: [], additional: [] };

/** The labels of `name` strictly below `zone`, from the zone down: a.b.example.org in example.org → [b.example.org, a.b.example.org]. */
function pathBelow(zone: string, name: string): string[] {
  if (name === zone) return [];
  // Suffixes of `name` (slices, not new concatenations: the view's lookups hash them as they are).
  const out: string[] = [];
  for (let i = name.length - zone.length - 2; i >= 0; i--) if (name.charCodeAt(i) === 46) out.push(name.slice(i + 1));
  out.push(name);
  return out;
}

/** RFC 2308 §5: negative answers carry the SOA with TTL min(SOA TTL, SOA minimum). */
function negativeSoa(zone: Zone): RR {
  return { ...zone.soa, ttl: Math.min(zone.soa.ttl, zone.soa.rdata.minimum) };
}

/**
 * RFC 4592 §3.3.1: for a name strictly below the apex that has no node, the
 * wildcard child of its closest encloser, if there is one.
 */
function wildcardFor(view: ZoneView, zone: Zone, name: string): ZoneNode | undefined {
  if (name === zone.name || !name.endsWith('.' + zone.name)) return undefined;
  let encloser = name;
  do {
    encloser = encloser.slice(encloser.indexOf('.') + 1);
  } while (encloser !== zone.name && !view.node(encloser));
  return view.node(`*.${encloser}`);
}

/**
 * Is `name` (in `zone`, below its apex) at or below a zone cut: a name of
 * the path down to it holding NS (a delegation) or SOA (the apex of a child
 * zone hosted here)? Its addresses are then glue or another zone's data,
 * not this zone's authoritative data (RFC 1034 §4.2.1, RFC 4035 §2.2).
 */
function atOrBelowCut(view: ZoneView, zone: Zone, name: string): boolean {
  for (const n of pathBelow(zone.name, name)) {
    const node = view.node(n);
    if (!node) return false;
    if (node.rrsets.has(RRTYPE.NS) || node.rrsets.has(RRTYPE.SOA)) return true;
  }
  return false;
}

/**
 * A/AAAA of `targets` that are authoritative data of `zone`, for the
 * additional section of an answer; a target with no node of its own gets
 * the addresses a wildcard synthesizes for it (RFC 4592 §3.3.1), owned by
 * the target. Targets at or below a cut are left out, as NSD leaves glue out
 * of an MX answer: the section is the zone's to vouch for (and to sign,
 * RFC 4035 §3.1.1); referrals carry their glue through glueFor.
 */
function addressesFor(view: ZoneView, zone: Zone, targets: string[]): RR[] {
  const out: RR[] = [];
  if (targets.length === 0) return out;
  const seen = new Set<string>();
  for (const t of targets) {
    if (seen.has(t)) continue;
    seen.add(t);
    if (t !== zone.name && !t.endsWith('.' + zone.name)) continue;
    if (atOrBelowCut(view, zone, t)) continue;
    const own = view.node(t);
    const n = own ?? wildcardFor(view, zone, t);
    if (!n) continue;
    const rrs = [...(n.rrsets.get(RRTYPE.A) ?? []), ...(n.rrsets.get(RRTYPE.AAAA) ?? [])];
    out.push(...(own ? rrs : withOwner(rrs, t)));
  }
  return out;
}

/** Glue for a referral at `cut`: addresses of its name servers in the zone (RFC 1034 §4.2.1, §4.3.2 step 3b). */
function glueFor(view: ZoneView, zone: Zone, cut: string, ns: RR[]): RR[] {
  const glue: RR[] = [];
  for (const t of targetsOf(ns)) {
    if (t === cut || t.endsWith('.' + cut) || t.endsWith('.' + zone.name)) {
      const g = view.node(t);
      if (g) glue.push(...(g.rrsets.get(RRTYPE.A) ?? []), ...(g.rrsets.get(RRTYPE.AAAA) ?? []));
    }
  }
  return glue;
}

/** Names an RRset points at, whose addresses belong in the additional section (RFC 1035 §3.3.9, §3.3.11; RFC 2782). */
function targetsOf(rrs: RR[]): string[] {
  const out: string[] = [];
  for (const rr of rrs) {
    const d = rr.rdata;
    if (d.type === RRTYPE.MX) out.push(d.exchange);
    else if (d.type === RRTYPE.NS) out.push(d.target);
    else if (d.type === RRTYPE.SRV) out.push(d.target);
  }
  return out;
}

/** Re-owns synthesized wildcard records (RFC 4592 §3.3.1). */
function withOwner(rrs: RR[], name: string): RR[] {
  return rrs.map((rr) => ({ ...rr, name }));
}

/**
 * The zone that answers DS at `name`. RFC 4035 §3.1.4.1: DS lives on the
 * parent side of a cut, so at the apex of a child zone whose parent zone we
 * serve too, and whose cut that parent holds (no delegation of it in
 * between), the parent answers; everywhere else the closest apex does.
 */
function dsZone(view: ZoneView, closest: Zone, name: string): Zone {
  if (name !== closest.name || name.indexOf('.') < 0) return closest;
  const parent = view.zoneOf(name.slice(name.indexOf('.') + 1));
  if (!parent) return closest;
  const between = pathBelow(parent.name, name).slice(0, -1);
  return between.some((n) => view.node(n)?.rrsets.has(RRTYPE.NS)) ? closest : parent;
}

/** `a`, with the names it synthesized from a wildcard, if any. */
function done(a: Answer, synthesized: string[] | undefined): Answer {
  return synthesized ? { ...a, synthesized } : a;
}

/**
 * Answers one question from the zone view. Never throws for a view that
 * behaves; the server wraps it in one try/catch that answers SERVFAIL.
 */
export function lookup(view: ZoneView, q: LookupQuestion): Answer {
  // We serve class IN only: other classes, and QCLASS * (255, RFC 1035 §3.2.5) too, are REFUSED. An answer to
  // QCLASS * could never be authoritative (RFC 6895 §3.2) and nothing obliges a server to give one; the places
  // where RFCs use class ANY (RFC 2136 UPDATE prerequisites and deletions) belong to an opcode we answer NOTIMP.
  if (q.class !== CLASS_IN) return REFUSED;
  const closest = view.zoneOf(q.name);
  if (!closest) return REFUSED;
  const zone = q.type === RRTYPE.DS ? dsZone(view, closest, q.name) : closest;
  const answer: RR[] = [];
  let qname = q.name;
  let synthesizedNames: string[] | undefined;

  for (let hop = 0; hop <= MAX_CNAME_CHAIN; hop++) {
    // Delegations: an NS set strictly below the apex, at or above the name (RFC 1034 §4.3.2 step 3b).
    for (const name of pathBelow(zone.name, qname)) {
      const n = view.node(name);
      if (!n) break;
      const ns = n.rrsets.get(RRTYPE.NS);
      if (ns && !(name === qname && q.type === RRTYPE.DS)) {
        // After a CNAME (RFC 1034 §4.3.2 step 3a, then 3b) the chain stays in the answer ahead of the referral,
        // and AA stays set: it speaks for the question name, which is ours (RFC 1035 §4.1.1).
        return done({ result: 'delegation', aa: hop > 0, answer, authority: ns, additional: glueFor(view, zone, name, ns), zone: zone.name, cut: n }, synthesizedNames);
      }
    }

    let node: ZoneNode | undefined = view.node(qname);
    let synthesized = false;
    if (!node) {
      // RFC 4592 §3.3.1: the closest encloser's wildcard child, if any.
      const wild = wildcardFor(view, zone, qname);
      if (wild) {
        node = wild;
        synthesized = true;
        (synthesizedNames ??= []).push(qname);
      } else {
        // After a CNAME into a name that does not exist: the chain so far, with NXDOMAIN (RFC 6604).
        return done({ result: 'nxdomain', aa: true, answer, authority: [negativeSoa(zone)], additional: [], zone: zone.name, denied: { name: qname } }, synthesizedNames);
      }
    }

    const own = (rrs: RR[]) => (synthesized ? withOwner(rrs, qname) : rrs);
    const cname = node.rrsets.get(RRTYPE.CNAME);
    if (cname && q.type !== RRTYPE.CNAME) {
      answer.push(...own(cname));
      const target = cname[0].rdata.type === RRTYPE.CNAME ? cname[0].rdata.target : '';
      // Follow the chain only inside this zone (RFC 1034 §4.3.2 step 3a).
      if (target !== zone.name && !target.endsWith('.' + zone.name)) {
        return done({ result: 'success', aa: true, answer, authority: [], additional: [], zone: zone.name }, synthesizedNames);
      }
      if (answer.some((rr, i) => i < answer.length - 1 && rr.name === target)) break; // loop
      qname = target;
      continue;
    }

    if (q.type === RRTYPE.ANY) {
      // RFC 8482 §4.1: answer ANY with one RRset rather than all of them.
      const first = node.rrsets.values().next().value as RR[] | undefined;
      if (!first) return done(nodata(zone, answer, qname, node), synthesizedNames);
      answer.push(...own(first));
      return done({ result: 'success', aa: true, answer, authority: [], additional: [], zone: zone.name }, synthesizedNames);
    }

    const rrs = node.rrsets.get(q.type);
    if (!rrs || rrs.length === 0) return done(nodata(zone, answer, qname, node), synthesizedNames);
    answer.push(...own(rrs));
    const additional = addressesFor(view, zone, targetsOf(rrs));
    return done({ result: 'success', aa: true, answer, authority: [], additional, zone: zone.name }, synthesizedNames);
  }
  // CNAME chain too long or looping: what we have, as a success (RFC 1034 §3.6.2 leaves it to the resolver).
  return done({ result: 'success', aa: true, answer, authority: [], additional: [], zone: zone.name }, synthesizedNames);
}

function nodata(zone: Zone, answer: RR[], name: string, node: ZoneNode): Answer {
  // RFC 2308 §2.2: NODATA is NOERROR with the SOA in authority; after a CNAME the chain stays in the answer.
  return {
    result: answer.length ? 'success' : 'nodata', aa: true, answer, authority: [negativeSoa(zone)], additional: [], zone: zone.name,
    denied: { name, node },
  };
}
