/**
 * The DNS view of the directory (domain logic; wire format lives in server/dns).
 *
 * Names map to entries through the DC tree: `www.example.com` is
 * `dc=www,dc=example,dc=com,<suffix>`. An entry with an `sOARecord` is a
 * zone apex; an `nSRecord` below an apex is a delegation. Records come from
 * the record attributes in master-file syntax (records.ts).
 *
 * Hooks on the write path (registered by `attachZones`):
 * - every record value is checked as it is written (invalidAttributeSyntax);
 * - once per transaction, each zone touched gets its SOA serial bumped
 *   (RFC 1982 arithmetic, never decreasing) and a journal row with the
 *   records removed and added, for IXFR (RFC 1995). A zone above a child
 *   zone hosted here is touched when its copy of the cut (the child's NS,
 *   their glue) changes; its journal is dropped then.
 * - with DNSSEC on (DCMX_DNSSEC), a zone born in a transaction gets its
 *   signing key in it (dnssec-state.ts keyBirth).
 *
 * A signed zone (dnssec-keys.ts) shows, computed from its key as it is read:
 * DNSKEY, CDS and CDNSKEY at its apex, and, when its parent zone is served
 * here too and holds the cut, the DS at the cut for that parent.
 */
import type { Schema } from '../../schema/registry';
import { escapeDnValue, parseDn } from '../../schema/dn';
import type { StoredEntry } from '../../storage/store';
import { addListener, generalizedTimeNow, type AppliedChange, type Directory } from './directory';
import type { DirEntry } from './entry';
import { entryUuidOf, indexRows } from './entry';
import { DirectoryError } from './errors';
import { formatRR, parseRData, RDataError, RECORD_ATTRIBUTES, RRTYPE, type RData, type RR } from './records';
import { ChangeFollower, type ChangeRecord } from './changes';
import { ALL_DNS_CHANGED, dnsChangeOf, type DnsChange } from './dns-change';
import { bumpZoneSetSerial, catalogContents, zoneSetSerial, type CatalogContents } from './catalog';
import {
  apexKeyRecords, childDsRecords, KEY_ATTRIBUTE, signingKeyOf, WITHDRAWAL_ATTRIBUTE, zoneSigningOf, type SigningKey, type ZoneSigning,
} from './dnssec-keys';
import { keyBirth } from './dnssec-state';
import { ZoneIndex, type IndexedNode } from './zone-index';

/** TTL when neither the entry nor the zone apex sets dNSTTL. */
export const DEFAULT_TTL = 3600;

/** A node of the DNS tree: the entry at a name and its records, grouped by type. */
export interface ZoneNode {
  name: string;
  rrsets: Map<number, RR[]>;
}

/** A zone: its apex name and SOA record. */
export interface Zone {
  name: string;
  soa: RR & { rdata: Extract<RData, { type: 6 }> };
}

/** What `lookup` needs from the directory: read-only, current as of the call. */
export interface ZoneView {
  /** The closest zone apex at or above `name`, if any. */
  zoneOf(name: string): Zone | undefined;
  /** The node at `name`, if an entry spells it. */
  node(name: string): ZoneNode | undefined;
}

/** Serial arithmetic (RFC 1982 §3.1, SERIAL_BITS = 32): s + 1. */
export function serialNext(s: number): number {
  return (s + 1) % 0x100000000;
}

/** RFC 1982 §3.2: is a greater than b? */
export function serialGreater(a: number, b: number): boolean {
  return (a < b && b - a > 0x80000000) || (a > b && a - b < 0x80000000);
}

/** Maps names to DC-tree DNs and back. */
export class DnsNames {
  constructor(private readonly suffixNdn: string) {}

  /** Normalised DN of the entry that spells `name` (lower case, no trailing dot). */
  toNdn(name: string): string | undefined {
    if (name === '') return undefined;
    let out = '';
    for (const label of name.split('.')) {
      // eslint-disable-next-line no-control-regex
      if (label === '' || !/^[\x21-\x7e]+$/.test(label)) return undefined;
      out += 'dc=' + escapeDnValue(label.toLowerCase()) + ',';
    }
    return out + this.suffixNdn;
  }

  /**
   * The name whose entry (toNdn) is the one with normalised DN `ndn`, if
   * any: what a view keyed by name holds that entry under. `dn` is read only
   * when `ndn` has escapes (a plain `dc=a,dc=b,<suffix>` is read as is).
   */
  nameOfEntry(dn: string, ndn: string): string | undefined {
    if (!ndn.startsWith('dc=') || !ndn.endsWith(',' + this.suffixNdn)) return undefined;
    const head = ndn.slice(0, ndn.length - this.suffixNdn.length - 1);
    let name: string | undefined;
    if (!head.includes('\\') && !head.includes('+') && !head.includes('"')) {
      // No escape and no multi-valued RDN: every ',' separates RDNs, and each must be dc= (a ',' left is another type).
      name = head.slice(3).split(',dc=').join('.');
      if (name.includes(',')) name = undefined;
    } else {
      name = this.fromDn(dn, ndn);
    }
    // Only the entry toNdn finds for the name (a dc value holding a '.' spells another name's DN).
    return name !== undefined && this.toNdn(name) === ndn ? name : undefined;
  }

  /** The name an entry spells, when its DN below the suffix is a pure dc chain. */
  fromDn(dn: string, ndn: string): string | undefined {
    return this.labelsOf(dn, ndn)?.map((l) => l.toLowerCase()).join('.');
  }

  /** The dc values of an entry's DN below the suffix, leaf first, as written (case kept), when it is a pure dc chain. */
  labelsOf(dn: string, ndn: string): string[] | undefined {
    if (!ndn.endsWith(',' + this.suffixNdn)) return undefined;
    if (!ndn.startsWith('dc=')) return undefined;
    try {
      const rdns = parseDn(dn);
      const below = rdns.length - parseDn(this.suffixNdn).length;
      const labels: string[] = [];
      for (let i = 0; i < below; i++) {
        const r = rdns[i];
        if (r.length !== 1 || r[0].type.toLowerCase() !== 'dc' && r[0].type.toLowerCase() !== 'domaincomponent' &&
          r[0].type !== '0.9.2342.19200300.100.1.25') return undefined;
        labels.push(r[0].value);
      }
      return labels;
    } catch {
      return undefined;
    }
  }
}

/** Longest name in presentation form without the trailing dot: 255 octets on the wire (RFC 1035 §3.1). */
export const MAX_NAME_TEXT = 253;

/**
 * Why `label` (a dc value) cannot be a label of a DNS name, or undefined when
 * it can. RFC 1035 §2.3.4: 1–63 octets. RFC 2181 §11 allows any octet on the
 * wire, but names travel through dcmx (lookups, the encoder, master files,
 * the IXFR journal) in presentation form (RFC 1035 §5.1), so a label must be
 * its own presentation form: printable ASCII (0x21–0x7E), and none of the
 * characters that form escapes ('.', '\', '"', '(', ')', ';', '@', '$').
 * '_' (RFC 8552 underscored labels such as `_dmarc`) and '*' (the RFC 4592
 * wildcard label) are fine.
 */
export function dnsLabelProblem(label: string): string | undefined {
  if (label.length === 0) return 'an empty label';
  // eslint-disable-next-line no-control-regex
  if (!/^[\x21-\x7e]*$/.test(label)) return `label ${JSON.stringify(label)} has white space, control or non-ASCII characters`;
  if (/[.\\"();@$]/.test(label)) return `label ${JSON.stringify(label)} has a character DNS names escape (. \\ " ( ) ; @ $)`;
  if (label.length > 63) return `label of ${label.length} octets (at most 63, RFC 1035 §2.3.4)`;
  return undefined;
}

/** Why `labels` cannot spell a DNS name (a bad label, or over 255 octets on the wire), or undefined. */
export function dnsNameProblem(labels: readonly string[]): string | undefined {
  for (const l of labels) {
    const p = dnsLabelProblem(l);
    if (p) return p;
  }
  const text = labels.join('.').length;
  if (text > MAX_NAME_TEXT) return `name of ${text + 2} octets (at most 255, RFC 1035 §3.1)`;
  return undefined;
}

/** Parses the record attributes of an entry into RRs. Bad values are skipped (they are refused on write). */
export function recordsOf(name: string, attrs: Record<string, string[]>, defaultTtl: number): RR[] {
  const ttlValue = attrs.dNSTTL?.[0];
  const ttl = ttlValue !== undefined && /^\d+$/.test(ttlValue) ? Math.min(Number(ttlValue), 0x7fffffff) : defaultTtl;
  const out: RR[] = [];
  for (const k of Object.keys(attrs)) {
    const type = RECORD_ATTRIBUTES[k.toLowerCase()];
    if (type === undefined) continue;
    for (const v of attrs[k]) {
      try {
        out.push({ name, ttl, rdata: parseRData(type, v) });
      } catch {
        /* refused on write; old data is ignored rather than served broken */
      }
    }
  }
  return out;
}

function groupByType(rrs: RR[]): Map<number, RR[]> {
  const m = new Map<number, RR[]>();
  for (const rr of rrs) {
    const l = m.get(rr.rdata.type);
    if (l) l.push(rr);
    else m.set(rr.rdata.type, [rr]);
  }
  return m;
}

/** Default TTL of a zone: the apex's dNSTTL, else DEFAULT_TTL. */
function zoneTtl(apexAttrs: Record<string, string[]>): number {
  const v = apexAttrs.dNSTTL?.[0];
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : DEFAULT_TTL;
}

/** The NS RRset of a child zone's apex entry as its parent holds it at the cut: the child's own records, with its TTL. */
function cutNs(apexName: string, apexAttrs: Record<string, string[]>): RR[] {
  return recordsOf(apexName, { nSRecord: apexAttrs.nSRecord ?? [], ...(apexAttrs.dNSTTL ? { dNSTTL: apexAttrs.dNSTTL } : {}) }, zoneTtl(apexAttrs));
}

/** Targets of a cut's NS RRset at or below the cut: those the parent needs glue for (RFC 1034 §4.2.1). */
function glueTargets(cut: string, ns: RR[]): string[] {
  const out: string[] = [];
  for (const rr of ns) {
    if (rr.rdata.type !== RRTYPE.NS) continue;
    const t = rr.rdata.target;
    if (t === cut || t.endsWith('.' + cut)) out.push(t);
  }
  return out;
}

/** A signed apex as one version of the view sees it: its signing state and the records made from it. */
interface ApexSigning {
  signing: ZoneSigning;
  /** DNSKEY, CDS, CDNSKEY at the apex (dnssec-keys.ts apexKeyRecords). */
  keyRecords: RR[];
  /** The DS its parent zone serves at the cut, when that parent is served here and holds the cut; else empty. */
  ds: RR[];
  /** The apex node with these records, once built from the compiled node (see Zones.node). */
  node?: ZoneNode;
}

/** A change to DNS data followed from the change log (onDnsChange): dns-change.ts. */
export type { DnsChange } from './dns-change';

/** The records of a node with no record attributes: one shared, empty map (never mutated). */
const NO_RRSETS: Map<number, RR[]> = new Map();

/** `n` with the records of its signed apex: DNSKEY, CDS, CDNSKEY, and the DS its parent holds at the cut. */
function withSigning(n: ZoneNode, signed: ApexSigning): ZoneNode {
  const rrsets = new Map(n.rrsets);
  for (const rr of signed.keyRecords) {
    const l = rrsets.get(rr.rdata.type);
    rrsets.set(rr.rdata.type, l ? [...l, rr] : [rr]);
  }
  // RFC 4035 §2.4: the parent's DS for this child (lookup's dsZone sends DS questions at a child apex to the parent).
  if (signed.ds.length) rrsets.set(RRTYPE.DS, signed.ds);
  return { name: n.name, rrsets };
}

/** Is `name` free of upper-case letters (the form the compiled index is keyed by)? */
function isLower(name: string): boolean {
  // A loop, not toLowerCase() === name: that allocates a string per call, and a query asks for a few names.
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) return false;
    if (c > 0x7f) return name.toLowerCase() === name;
  }
  return true;
}

/** Parsed keys kept at most (by PEM): far more than the zones of one appliance re-keyed at once. */
const MAX_PARSED_KEYS = 100_000;

/** Do two images of an apex differ in their signing state (keys or withdrawal)? */
function signingChanged(b: DirEntry | undefined, a: DirEntry | undefined): boolean {
  const state = (e: DirEntry | undefined) =>
    e?.attrs.sOARecord?.length ? `${(e.attrs[KEY_ATTRIBUTE] ?? []).join('\n')}\t${e.attrs[WITHDRAWAL_ATTRIBUTE]?.[0] ?? ''}` : '';
  return state(b) !== state(a);
}

/**
 * The zones of a directory: the read view for DNS, the write-path hooks, and
 * what changed, for NOTIFY (soaChanges), and for the answer and transfer caches (onDnsChange: what
 * each change touched).
 */
export class Zones implements ZoneView {
  readonly names: DnsNames;
  private readonly dataListeners: (() => void)[] = [];
  private readonly changeListeners: ((c: DnsChange) => void)[] = [];
  /** The zones compiled in memory (zone-index.ts): built at the first read outside a write transaction, then followed. */
  private compiled: ZoneIndex | undefined;
  /** version(): the change number of the last change to DNS data followed. */
  private dataVersion: number;
  /** The catalog zone as built for one version of this view (catalog.ts). */
  private catalogBuilt: { version: number; contents: CatalogContents } | undefined;
  /** Keys parsed from their PEM (null: not a usable key), kept across versions: a PEM parse per query would cost. */
  private readonly parsedKeys = new Map<string, SigningKey | null>();
  /** The signing state of the apexes read in one version of this view (null: unsigned). */
  /**
   * The signing state of the apexes read (null: unsigned), kept until a
   * followed change touches the apex or a name above it (forgetSigning):
   * all it is made from is there (the apex's key and NS, the delegations
   * between it and its parent zone, that parent's apex).
   */
  private readonly signingByApex = new Map<string, ApexSigning | null>();

  /**
   * `catalog`: the name of the catalog zone to serve (RFC 9432, catalog.ts;
   * DCMX_DNS_CATALOG), lower case without the trailing dot; none when unset.
   */
  constructor(readonly directory: Directory, readonly catalog?: string) {
    this.names = new DnsNames(directory.suffixNdn);
    this.dataVersion = directory.changeRange().last;
    this.followDnsData();
  }

  private get schema(): Schema {
    return this.directory.schema;
  }

  // ------------------------------------------------------------ read view

  private entryAt(name: string): StoredEntry | undefined {
    const ndn = this.names.toNdn(name);
    return ndn === undefined ? undefined : this.directory.getByNdn(ndn);
  }

  /**
   * The compiled zones, or undefined where the store must be read instead:
   * inside a write transaction (the write hooks see the store as the
   * transaction leaves it, not as the change log had it). A name with
   * upper-case letters is read from the store too (the index is keyed in
   * lower case; the store path keeps such a caller's owner names as given).
   */
  private index(): ZoneIndex | undefined {
    if (this.directory.store.inTransaction) return undefined;
    return (this.compiled ??= this.compile());
  }

  /**
   * Compiles every zone from one scan of the DC tree (zone-index.ts). Called
   * by the first read that needs it; a serving thread may call it at start so
   * that its first queries find it built. The scan's pages leave the store's
   * page cache afterwards (Store.releaseCache): ~10 MiB of a 10,000-name
   * zone's store that DNS answers never read again.
   */
  compile(): ZoneIndex {
    if (this.compiled) return this.compiled;
    this.compiled = this.build();
    this.directory.store.releaseCache();
    return this.compiled;
  }

  private build(): ZoneIndex {
    const names = this.names;
    const directory = this.directory;
    return new ZoneIndex({
      defaultTtl: DEFAULT_TTL,
      all: () => {
        const base = directory.getByNdn(directory.suffixNdn);
        return base ? directory.store.eachDescendant(base.rpath) : [];
      },
      below: (e) => directory.store.descendants(e.rpath),
      entryAt: (name) => this.entryAt(name),
      nameOf: (e) => names.nameOfEntry(e.dn, e.ndn),
      compile: (name, e, ttl) => this.compileNode(name, e, ttl),
    });
  }

  /** The compiled node of entry `e` at `name`: its RRsets with `ttl` as default (an apex: its own), and its zone at an apex. */
  private compileNode(name: string, e: StoredEntry, ttl: number): IndexedNode {
    if (e.attrs.sOARecord?.length) {
      const zone = this.zoneFromEntry(name, e);
      const own = zone ? zoneTtl(e.attrs) : DEFAULT_TTL;
      return { name, rrsets: groupByType(recordsOf(name, e.attrs, own)), apex: { zone, ttl: own, signed: !!e.attrs[KEY_ATTRIBUTE]?.length } };
    }
    const rrs = recordsOf(name, e.attrs, ttl);
    return { name, rrsets: rrs.length ? groupByType(rrs) : NO_RRSETS };
  }

  /** The closest apex at or above `name`. */
  zoneOf(name: string): Zone | undefined {
    if (this.inCatalog(name)) return { name: this.catalog!, soa: this.catalogView().soa };
    const index = isLower(name) ? this.index() : undefined;
    return index ? index.zoneOf(name) : this.storeZoneOf(name);
  }

  /** {@link zoneOf} read from the store (inside a write transaction). */
  private storeZoneOf(name: string): Zone | undefined {
    let n = name;
    for (;;) {
      const e = this.entryAt(n);
      if (e?.attrs.sOARecord?.length) return this.zoneFromEntry(n, e);
      const dot = n.indexOf('.');
      if (dot < 0) return undefined;
      n = n.slice(dot + 1);
    }
  }

  private zoneFromEntry(name: string, e: StoredEntry): Zone | undefined {
    const ttl = zoneTtl(e.attrs);
    const soa = recordsOf(name, { sOARecord: e.attrs.sOARecord, ...(e.attrs.dNSTTL ? { dNSTTL: e.attrs.dNSTTL } : {}) }, ttl)
      .find((r) => r.rdata.type === RRTYPE.SOA);
    return soa ? { name, soa: soa as Zone['soa'] } : undefined;
  }

  /**
   * The node at `name` with its records (TTL default from its zone); at a
   * signed apex, with the records made from its key (and the DS its parent
   * holds for it). The node is shared: callers never mutate it.
   */
  node(name: string): ZoneNode | undefined {
    if (this.inCatalog(name)) {
      const rrs = this.catalogView().nodes.get(name);
      return rrs && { name, rrsets: groupByType(rrs) };
    }
    const index = this.index();
    if (!index) return this.storeNode(name);
    const n = index.node(name);
    // Names are held in lower case: only a miss needs to ask whether the name has upper case.
    if (!n) return isLower(name) ? undefined : this.storeNode(name);
    if (!n.apex?.signed) return n;
    const signed = this.apexSigning(name);
    if (!signed) return n;
    return (signed.node ??= withSigning(n, signed));
  }

  /** {@link node} read from the store (inside a write transaction). */
  private storeNode(name: string): ZoneNode | undefined {
    const e = this.entryAt(name);
    if (!e) return undefined;
    const zone = this.storeZoneOf(name);
    const ttl = zone ? zoneTtl(this.entryAt(zone.name)!.attrs) : DEFAULT_TTL;
    const node = { name, rrsets: groupByType(recordsOf(name, e.attrs, ttl)) };
    const signed = e.attrs[KEY_ATTRIBUTE]?.length ? this.buildApexSigning(name, e) : undefined;
    return signed ? withSigning(node, signed) : node;
  }

  /**
   * The signing state of zone `zone` (its apex name): its keys, parsed, and
   * whether the signing is being withdrawn (DCMX_DNSSEC=off, RFC 8078 §4);
   * undefined for a zone that is not signed (or no zone). Built once, then
   * again only after a change at or above the apex: no PEM is parsed per
   * query.
   */
  signingOf(zone: string): ZoneSigning | undefined {
    return this.apexSigning(zone)?.signing;
  }

  /** {@link signingOf} with the records made from it, cached (signingByApex; read afresh inside a write transaction). */
  private apexSigning(name: string, e?: StoredEntry): ApexSigning | undefined {
    if (this.directory.store.inTransaction) return this.buildApexSigning(name, e ?? this.entryAt(name));
    let s = this.signingByApex.get(name);
    if (s === undefined) {
      s = this.buildApexSigning(name, e ?? this.entryAt(name)) ?? null;
      this.signingByApex.set(name, s);
    }
    return s ?? undefined;
  }

  /** Forgets the signing state of every apex at or below a name of `c` (see signingByApex). */
  private forgetSigning(c: DnsChange): void {
    if (c.all) return this.signingByApex.clear();
    for (const apex of this.signingByApex.keys()) {
      for (let n = apex; ; n = n.slice(n.indexOf('.') + 1)) {
        if (c.names.has(n)) {
          this.signingByApex.delete(apex);
          break;
        }
        if (n.indexOf('.') < 0) break;
      }
    }
  }

  private buildApexSigning(name: string, e: StoredEntry | undefined): ApexSigning | undefined {
    if (!e?.attrs.sOARecord?.length) return undefined;
    const signing = zoneSigningOf(e.attrs, this.parseKey);
    if (!signing) return undefined;
    const ttl = zoneTtl(e.attrs);
    // The DS goes with the cut: only where the parent holds one (an NS RRset, no delegation in between).
    const cut = e.attrs.nSRecord?.length && this.cutParent(name) !== undefined;
    return { signing, keyRecords: apexKeyRecords(name, signing, ttl), ds: cut ? childDsRecords(name, signing, ttl) : [] };
  }

  /** A stored key, parsed once (null when it is not a usable key). */
  private readonly parseKey = (pem: string): SigningKey | undefined => {
    let k = this.parsedKeys.get(pem);
    if (k === undefined) {
      try {
        k = signingKeyOf(pem);
      } catch {
        k = null;
      }
      if (this.parsedKeys.size >= MAX_PARSED_KEYS) this.parsedKeys.clear();
      this.parsedKeys.set(pem, k);
    }
    return k ?? undefined;
  };

  /**
   * Every RR of a zone, apex SOA first (for AXFR and export). Below a
   * delegation: only the addresses (glue). At the apex of a child zone hosted
   * here: the child's NS RRset (the parent's copy at the cut, with the
   * child's TTL), and the addresses of those of its name servers that lie at
   * or below the cut (glue, taken from the zone that holds them); nothing
   * else of the child zone. A child apex without NS makes no cut (there is
   * nothing to delegate with) and its names are left out.
   */
  zoneRecords(zoneName: string): RR[] | undefined {
    return this.zoneContents(zoneName)?.rrs;
  }

  /**
   * {@link zoneRecords}, and the DNs of entries left out because their dc
   * chain is not a DNS name ({@link dnsNameProblem}): data written before
   * the write path refused such names. No query can reach them, and no
   * encoder or master file can hold them.
   */
  zoneContents(zoneName: string): { rrs: RR[]; skipped: { dn: string; problem: string }[] } | undefined {
    if (this.inCatalog(zoneName)) return zoneName === this.catalog ? { rrs: this.catalogView().rrs, skipped: [] } : undefined;
    const apex = this.entryAt(zoneName);
    const zone = apex && this.zoneFromEntry(zoneName, apex);
    if (!apex || !zone) return undefined;
    const ttl = zoneTtl(apex.attrs);
    const out: RR[] = [zone.soa];
    const skipped: { dn: string; problem: string }[] = [];
    const apexRRs = recordsOf(zoneName, apex.attrs, ttl).filter((r) => r.rdata.type !== RRTYPE.SOA);
    out.push(...apexRRs);
    // A signed zone's DNSKEY, CDS and CDNSKEY (RFC 4034 §2, RFC 7344 §4), made from its key.
    out.push(...(this.apexSigning(zoneName, apex)?.keyRecords ?? []));
    const childZones: string[] = []; // apexes of zones below this one: their data is theirs to transfer
    const delegations: string[] = []; // cuts in this zone (nSRecord below the apex)
    const glue = new Set<string>(); // name servers of child zones at or below their cut
    for (const e of this.directory.store.descendants(apex.rpath)) {
      const labels = this.names.labelsOf(e.dn, e.ndn);
      if (labels === undefined) continue;
      const name = labels.join('.').toLowerCase();
      const below = (cuts: string[]) => cuts.some((c) => name.endsWith('.' + c));
      if (below(childZones)) continue;
      const problem = dnsNameProblem(labels);
      if (problem) {
        skipped.push({ dn: e.dn, problem });
        continue;
      }
      if (e.attrs.sOARecord?.length) {
        childZones.push(name);
        if (below(delegations)) continue; // inside a delegation of ours: the cut above is the one we hold
        // RFC 1034 §4.2.1/§4.2.2: the parent zone holds the NS RRset at the cut, even when the child zone
        // is served here too; a secondary of the parent alone must be able to refer to the child.
        const ns = cutNs(name, e.attrs);
        out.push(...ns);
        // RFC 4035 §2.4: with the NS at the cut, the DS of a signed child (none while its signing is withdrawn).
        out.push(...(this.apexSigning(name, e)?.ds ?? []));
        for (const t of glueTargets(name, ns)) glue.add(t);
        continue;
      }
      const rrs = recordsOf(name, e.attrs, ttl);
      const addresses = rrs.filter((r) => r.rdata.type === RRTYPE.A || r.rdata.type === RRTYPE.AAAA);
      if (below(delegations)) {
        // RFC 5936 §3.1: what lies below a cut (glue, occluded data) is part of the zone's contents and
        // goes into the transfer, as BIND and NSD send it. Only addresses can be glue (RFC 1034 §4.2.1),
        // and only they are kept here: nothing else below a cut is this zone's to serve.
        out.push(...addresses);
        continue;
      }
      if (e.attrs.nSRecord?.length) {
        // A delegation: its NS, its DS (RFC 4035 §2.4: the parent's side of the cut), and addresses at the cut (glue
        // when the cut names itself as server).
        delegations.push(name);
        out.push(...rrs.filter((r) => r.rdata.type === RRTYPE.NS || r.rdata.type === RRTYPE.DS), ...addresses);
        continue;
      }
      out.push(...rrs);
    }
    // RFC 1034 §4.2.1: glue for the child cuts, from the node that holds it (the child zone, or one below it).
    for (const t of [...glue].sort()) {
      const n = this.node(t);
      if (n) out.push(...(n.rrsets.get(RRTYPE.A) ?? []), ...(n.rrsets.get(RRTYPE.AAAA) ?? []));
    }
    return { rrs: out, skipped };
  }

  /** Names of all zones served: every zone apex of the directory, and the catalog zone if one is served; sorted. */
  zoneNames(): string[] {
    return this.catalog === undefined ? this.apexNames() : [...this.apexNames(), this.catalog].sort();
  }

  /** Is `name` the catalog zone's or below it? Its names are the catalog's, whatever the store holds. */
  private inCatalog(name: string): boolean {
    const c = this.catalog;
    return c !== undefined && (name === c || name.endsWith('.' + c));
  }

  /**
   * The catalog zone (catalog.ts) as of this view: every zone apex of the
   * directory, at the zone-set serial. Built once per version() (a zone
   * added or removed is a change to DNS data, and its serial bump is in the
   * same transaction).
   */
  catalogView(): CatalogContents {
    const version = this.dataVersion;
    if (this.catalogBuilt?.version !== version) {
      const store = this.directory.store;
      this.catalogBuilt = { version, contents: catalogContents(this.catalog!, zoneSetSerial(store), this.apexNames().filter((n) => !this.inCatalog(n))) };
    }
    return this.catalogBuilt.contents;
  }

  /** The catalog zone's serial, the store's zone-set serial (catalog.ts): one read, without building the catalog. */
  catalogSerial(): number {
    return zoneSetSerial(this.directory.store);
  }

  /** Names of the directory's zone apexes (the catalog zone is none), sorted. */
  apexNames(): string[] {
    const out: string[] = [];
    const base = this.directory.getByNdn(this.directory.suffixNdn);
    if (!base) return out;
    for (const e of this.directory.store.candidates({ base, scope: 'sub', filter: { type: 'present', attr: this.schema.attr('sOARecord')! } })) {
      if (!e.attrs.sOARecord?.length) continue;
      const n = this.names.fromDn(e.dn, e.ndn);
      if (n !== undefined) out.push(n);
    }
    return out.sort();
  }

  /**
   * The zones whose SOA the change-log rows `rows` set, each once, as the
   * store holds it now (zones gone since are left out): an apex added with
   * its sOARecord, or a modify of it (every transaction's serial bump is
   * one, see bumpSerials). What a NOTIFY announces (RFC 1996 §3.7), whichever
   * process made the change: the log holds the CLI's commits too.
   */
  soaChanges(rows: readonly ChangeRecord[]): Zone[] {
    const names = new Set<string>();
    for (const r of rows) {
      const setsSoa = r.changeType === 'add' ? !!r.attributes.sOARecord?.length
        : r.changeType === 'modify' && r.modifications.some((m) => m.type === 'sOARecord');
      const name = setsSoa ? this.names.fromDn(r.targetDN, r.targetNdn) : undefined;
      if (name !== undefined) names.add(name);
    }
    const out: Zone[] = [];
    for (const n of names) {
      // Read from the store: a few names per batch, and no compiled zones built for them on a thread that answers no query.
      const z = this.storeZoneOf(n);
      if (z?.name === n) out.push(z);
    }
    return out;
  }

  /**
   * Calls `l` once this thread has followed (Directory.sync) a change that
   * may alter DNS data (dns-change.ts: an entry whose DN spells a DNS name
   * added, deleted, renamed, or modified in what DNS reads of it), or a gap
   * in the log. Returns an unsubscribe function.
   */
  onDataChange(l: () => void): () => void {
    return addListener(this.dataListeners, l);
  }

  /**
   * Calls `l` with each change to DNS data this thread follows (see
   * DnsChange), from Directory.sync, before any query of this thread
   * proceeds; the compiled zones are up to date with the change when `l`
   * runs. Listeners run in registration order, before those of
   * onDataChange. What an answer cache drops entries on. Returns an
   * unsubscribe function.
   */
  onDnsChange(l: (c: DnsChange) => void): () => void {
    return addListener(this.changeListeners, l);
  }

  /** Follows the change log (for as long as the directory lives): the compiled zones, onDnsChange, onDataChange and version(). */
  private followDnsData(): void {
    new ChangeFollower(this.directory, {
      onChanges: (rows) => {
        const c = dnsChangeOf(rows, this.names);
        if (!c) return;
        // The compiled zones first: the listeners (an answer cache) may read them.
        this.compiled?.apply({ names: c.change.names, subtrees: c.change.renamed });
        this.forgetSigning(c.change);
        this.dataChanged(c.last, c.change);
      },
      onGap: () => {
        this.compiled?.rebuild();
        this.forgetSigning(ALL_DNS_CHANGED);
        this.dataChanged(this.directory.changeRange().last, ALL_DNS_CHANGED);
      },
    });
  }

  private dataChanged(changeNumber: number, c: DnsChange): void {
    this.dataVersion = changeNumber;
    for (const l of [...this.changeListeners]) l(c);
    for (const l of [...this.dataListeners]) l();
  }

  /** Brings this thread's view up to the change clock (Directory.sync): call it before answering a query. */
  sync(): void {
    this.directory.sync();
  }

  /**
   * The version of this zone view: the change number it reflects, that of
   * the last change to DNS data this thread has followed (see onDataChange;
   * the view is the same at every change number from it up to
   * Directory.applied). After `sync`, a query sees every change up to it.
   * Together with a zone's SOA serial, it keys what is built once per
   * version of a zone (transfer.ts).
   */
  version(): number {
    return this.dataVersion;
  }

  // ------------------------------------------------------------ write hooks

  /**
   * Refuses, under the DC-tree suffix, a dc-chain entry added or renamed
   * (moved descendants included) whose name is not a DNS name
   * ({@link dnsNameProblem}; namingViolation, 64); record values that do not
   * parse (invalidAttributeSyntax, 21); and CNAME next to other data
   * (RFC 1034 §3.6.2). A modify leaves the name alone, so old entries with a
   * bad name can still be cleaned up.
   */
  checkRecords = (c: AppliedChange): void => {
    const e = c.after;
    if (!e) return;
    if (c.type === 'add' || c.type === 'modrdn') {
      for (const n of [e, ...(c.moved ?? []).map((m) => m.after)]) {
        const labels = this.names.labelsOf(n.dn, n.ndn);
        const problem = labels && dnsNameProblem(labels);
        if (problem) throw new DirectoryError('namingViolation', `${n.dn}: not a DNS name: ${problem}`);
      }
    }
    let hasCname = false;
    let other = false;
    for (const k of Object.keys(e.attrs)) {
      const type = RECORD_ATTRIBUTES[k.toLowerCase()];
      if (type === undefined) continue;
      if (type === RRTYPE.CNAME) hasCname = true;
      else other = true;
      for (const v of e.attrs[k]) {
        try {
          parseRData(type, v);
        } catch (err) {
          if (err instanceof RDataError) throw new DirectoryError('invalidAttributeSyntax', `${k}: ${err.message}`);
          throw err;
        }
      }
    }
    for (const v of e.attrs[KEY_ATTRIBUTE] ?? []) {
      if (!this.parseKey(v)) throw new DirectoryError('invalidAttributeSyntax', `${KEY_ATTRIBUTE}: not an ECDSA P-256 private key in PKCS#8 PEM (RFC 6605)`);
    }
    if (hasCname && e.attrs.cNAMERecord.length > 1) throw new DirectoryError('constraintViolation', 'cNAMERecord: a name has at most one CNAME');
    if (hasCname && other) throw new DirectoryError('constraintViolation', 'cNAMERecord: a CNAME cannot coexist with other records (RFC 1034 §3.6.2)');
  };

  /** Bumps the serial of every zone the transaction touched, once, and journals the record changes. */
  bumpSerials = (changes: readonly AppliedChange[]): void => {
    const touched = new Map<string, { removed: Set<string>; added: Set<string>; rebuilt: boolean; oldSerial?: number }>();
    const zoneState = (zone: string) => {
      let z = touched.get(zone);
      if (!z) touched.set(zone, (z = { removed: new Set(), added: new Set(), rebuilt: false }));
      return z;
    };
    const lastChange = changes[changes.length - 1].changeNumber;
    const side = (e: DirEntry | undefined, into: 'removed' | 'added') => {
      if (!e) return;
      const name = this.names.fromDn(e.dn, e.ndn);
      if (name === undefined) return;
      const isApex = !!e.attrs.sOARecord?.length;
      // The zone that holds this name: the entry itself if it is an apex, else the closest apex above.
      const zoneName = isApex ? name : this.zoneAbove(name);
      if (zoneName === undefined) return;
      const z = zoneState(zoneName);
      if (isApex && into === 'removed' && z.oldSerial === undefined) {
        const soa = recordsOf(name, { sOARecord: e.attrs.sOARecord }, 0)[0];
        if (soa?.rdata.type === RRTYPE.SOA) z.oldSerial = soa.rdata.serial;
      }
      // A name that is not a DNS name (old data) is in no transfer: keep it out of the journal too.
      if (dnsNameProblem(this.names.labelsOf(e.dn, e.ndn) ?? [])) return;
      const apex = isApex ? e : this.entryAt(zoneName);
      for (const rr of recordsOf(name, e.attrs, apex ? zoneTtl(apex.attrs) : DEFAULT_TTL)) {
        if (rr.rdata.type === RRTYPE.SOA) continue;
        z[into].add(formatRR(rr));
      }
    };
    let zoneSetChanged = false;
    for (const c of changes) {
      const apexBefore = !!c.before?.attrs.sOARecord?.length;
      const apexAfter = !!c.after?.attrs.sOARecord?.length;
      // A zone added, removed or renamed is a new version of the catalog zone (RFC 9432 §4.1, catalog.ts).
      if (apexBefore !== apexAfter || c.type === 'modrdn' && (apexBefore || c.moved?.some((m) => m.before.attrs.sOARecord?.length))) {
        zoneSetChanged = true;
      }
      if (apexBefore !== apexAfter || c.type === 'modrdn' && (apexBefore || c.moved)) {
        // A zone appears, disappears or moves: IXFR history no longer applies.
        for (const e of [c.before, c.after]) {
          const n = e && this.names.fromDn(e.dn, e.ndn);
          if (n !== undefined) {
            const z = this.zoneAbove(n) ?? n;
            zoneState(apexAfter && e === c.after ? n : z).rebuilt = true;
          }
        }
      }
      side(c.before, 'removed');
      side(c.after, 'added');
      for (const m of c.moved ?? []) {
        side(m.before, 'removed');
        side(m.after, 'added');
      }
      for (const [b, a] of [[c.before, c.after], ...(c.moved ?? []).map((m) => [m.before, m.after])]) {
        // RFC 1034 §4.2.1: a zone above a child cut holds the child's NS and their glue (zoneContents), so a change
        // to them is a new version of that zone too. Its journal is dropped rather than written: which addresses
        // are glue depends on NS sets that may change in the same transaction, and an IXFR delta that removes a
        // record the client never had breaks its copy. The next IXFR of that zone gets the whole zone (RFC 1995 §4),
        // as when a zone appears or disappears.
        const was = this.parentSide(b);
        const is = this.parentSide(a);
        for (const k of [...[...was].filter((x) => !is.has(x)), ...[...is].filter((x) => !was.has(x))]) {
          zoneState(k.slice(0, k.indexOf('\t'))).rebuilt = true;
        }
        if (signingChanged(b, a)) {
          // A zone signed, re-keyed, withdrawn or unsigned: its DNSKEY/CDS/CDNSKEY (and every signature) change, which
          // no journal of record values holds. Its next IXFR gets the whole zone (RFC 1995 §4).
          const n = a ?? b!;
          const z = this.names.fromDn(n.dn, n.ndn);
          if (z !== undefined) zoneState(z).rebuilt = true;
        }
        if (b?.attrs.sOARecord?.length && a?.attrs.sOARecord?.length && b.attrs.dNSTTL?.[0] !== a.attrs.dNSTTL?.[0]) {
          // The apex's dNSTTL is the default TTL of every record of the zone (and of glue taken from it above a cut):
          // more changed than the entry's own records, which is all the journal would hold.
          for (let z = this.names.fromDn(a.dn, a.ndn); z !== undefined; z = this.cutParent(z)) zoneState(z).rebuilt = true;
        }
      }
    }
    const store = this.directory.store;
    if (zoneSetChanged) bumpZoneSetSerial(store);
    for (const [zoneName, z] of touched) {
      const ndn = this.names.toNdn(zoneName);
      const apex = ndn === undefined ? undefined : store.getByNdn(ndn);
      const soaValue = apex?.attrs.sOARecord?.[0];
      if (!apex || soaValue === undefined) {
        store.dropJournal(zoneName);
        continue;
      }
      let soa: Extract<RData, { type: 6 }>;
      try {
        soa = parseRData(RRTYPE.SOA, soaValue) as Extract<RData, { type: 6 }>;
      } catch {
        continue;
      }
      const from = z.oldSerial ?? soa.serial;
      // A serial the writer raised stays; otherwise one more than before (RFC 1982: never decrease).
      const serial = serialGreater(soa.serial, from) ? soa.serial : serialNext(from) || 1;
      if (serial !== soa.serial) {
        const next = { ...soa, serial };
        const value = `${next.mname}. ${next.rname}. ${serial} ${next.refresh} ${next.retry} ${next.expire} ${next.minimum}`;
        const now = generalizedTimeNow();
        const actor = this.directory.systemIdentity().dn;
        const csn = this.directory.newCsn();
        const attrs = {
          ...apex.attrs, sOARecord: [value, ...apex.attrs.sOARecord.slice(1)], modifyTimestamp: [now], modifiersName: [actor], entryCSN: [csn],
        };
        store.updateAttrs(apex.id, attrs, indexRows(this.schema, attrs, store.indexedAttributes));
        // The serial is directory data like any other: a change-log row of its own, so that a
        // consumer of the log (a replica, a PowerDNS LDAP backend's cache) sees the new SOA.
        store.appendChange({
          changeTime: now, targetDN: apex.dn, targetNdn: apex.ndn, entryUUID: entryUuidOf(apex.attrs), actor, csn,
          changeType: 'modify', modifications: [{ op: 'replace', type: 'sOARecord', values: attrs.sOARecord }],
        });
      }
      const removed = [...z.removed].filter((l) => !z.added.has(l));
      const added = [...z.added].filter((l) => !z.removed.has(l));
      if (z.rebuilt) store.dropJournal(zoneName);
      else store.appendJournal({ zone: zoneName, serialFrom: from, serialTo: serial, removed, added, changeNumber: lastChange });
    }
  };

  /**
   * The zone that holds the cut at child apex `apexName` (see zoneContents): the closest apex above, unless the
   * child lies inside a delegation of that zone (then the cut it holds is the delegation's).
   */
  private cutParent(apexName: string): string | undefined {
    const p = this.zoneAbove(apexName);
    if (p === undefined) return undefined;
    for (let n = apexName.slice(apexName.indexOf('.') + 1); n !== p; n = n.slice(n.indexOf('.') + 1)) {
      if (this.entryAt(n)?.attrs.nSRecord?.length) return undefined;
    }
    return p;
  }

  /**
   * What an entry image contributes to zones above a child cut, as `zone TAB record` keys (the store as it stands
   * inside the transaction): as a child apex, its NS RRset to the parent; as a name server at or below a child
   * cut (that cut's NS naming it), its addresses, as glue to the zone holding that cut.
   */
  private parentSide(e: DirEntry | undefined): Set<string> {
    const out = new Set<string>();
    if (!e) return out;
    const isApex = !!e.attrs.sOARecord?.length;
    const hasAddress = !!(e.attrs.aRecord?.length || e.attrs.aAAARecord?.length);
    if (!isApex && !hasAddress) return out;
    const name = this.names.fromDn(e.dn, e.ndn);
    if (name === undefined || dnsNameProblem(this.names.labelsOf(e.dn, e.ndn) ?? [])) return out;
    if (isApex) {
      const p = this.cutParent(name);
      const ns = p === undefined ? [] : cutNs(name, e.attrs);
      for (const rr of ns) out.add(`${p}\t${formatRR(rr)}`);
      // The DS of a signed child, at the cut the parent holds (RFC 4035 §2.4).
      const signing = ns.length ? zoneSigningOf(e.attrs, this.parseKey) : undefined;
      if (signing) for (const rr of childDsRecords(name, signing, zoneTtl(e.attrs))) out.add(`${p}\t${formatRR(rr)}`);
    }
    if (!hasAddress) return out;
    const zone = isApex ? name : this.zoneAbove(name);
    if (zone === undefined) return out;
    const ttl = zoneTtl(isApex ? e.attrs : this.entryAt(zone)?.attrs ?? {});
    const addresses = recordsOf(name, e.attrs, ttl).filter((r) => r.rdata.type === RRTYPE.A || r.rdata.type === RRTYPE.AAAA);
    for (let x: string | undefined = zone; x !== undefined; x = this.zoneAbove(x)) {
      const p = this.cutParent(x);
      const cut = p === undefined ? undefined : this.entryAt(x);
      if (cut && glueTargets(x, cutNs(x, cut.attrs)).includes(name)) for (const rr of addresses) out.add(`${p}\t${formatRR(rr)}`);
    }
    return out;
  }

  /** The closest apex strictly above `name` (as the store stands inside the transaction). */
  private zoneAbove(name: string): string | undefined {
    const dot = name.indexOf('.');
    if (dot < 0) return undefined;
    return this.zoneOf(name.slice(dot + 1))?.name;
  }
}

/** What the zone hooks do besides the records and serials. */
export interface ZoneHookOptions {
  /** DCMX_DNSSEC: a zone born in a transaction gets its DNSSEC signing key in it (dnssec-state.ts keyBirth). */
  dnssec?: boolean;
}

/**
 * Creates the zones of a directory (with the catalog zone `catalog`, if
 * named) and registers its hooks on the write path: record checks, key
 * birth (with `opts.dnssec`), then serials.
 */
export function attachZones(directory: Directory, catalog?: string, opts: ZoneHookOptions = {}): Zones {
  const zones = new Zones(directory, catalog);
  directory.addWriteHook(zones.checkRecords);
  // Before bumpSerials: the key is part of the transaction whose serial bump and journal decision it shares.
  if (opts.dnssec) directory.addCommitHook(keyBirth(directory, zones.names));
  directory.addCommitHook(zones.bumpSerials);
  return zones;
}
