/**
 * Mail routing lookups (RFC 5321 §5.1): MX targets with their addresses,
 * implicit MX, null MX (RFC 7505), and a reverse lookup for smtp-server.
 *
 * Our own zones answer only for the names we hold. A question (MX, A or
 * AAAA) about a name inside a zone this appliance serves is answered from our
 * own view (the data the DNS endpoint serves) when that name, or the
 * wildcard that covers it (RFC 4592), has records of the asked type there, or
 * a CNAME (followed, with the same rule for its target). Everything else goes
 * to DCMX_UPSTREAM_DNS (or the system resolvers when that is empty) through a
 * node:dns Resolver of our own, so a lookup never hangs longer than the
 * configured timeout and tries: a name at or below a delegation to other
 * name servers, a name our zone does not have (it would be NXDOMAIN here),
 * and a name without records of that type (NODATA here). A zone made here
 * because a domain's MX points at us may be only a corner of its owner's
 * DNS, so our silence about a name proves nothing; when we are the real
 * authority, the upstream answers what we would.
 */
import { promises as dnsPromises } from 'node:dns';
import * as net from 'node:net';
import { domainToASCII } from 'node:url';
import type { HostPort } from '../config';
import { ipv6Groups } from '../net';
import { RRTYPE, type RR } from '../directory/records';
import type { Zone, ZoneNode } from '../directory/zones';

/** One next hop for a domain: an MX host, its preference and its addresses (IPv4 first). */
export interface MxTarget {
  host: string;
  preference: number;
  addresses: string[];
}

/** What the resolver needs of our own authoritative data (a subset of `Zones`). */
export interface ZonesLike {
  /** The closest zone apex at or above `name`, if we serve one. */
  zoneOf(name: string): Zone | undefined;
  /** The node at `name`, if an entry spells it. */
  node(name: string): ZoneNode | undefined;
}

/** Why a mail domain cannot be routed. */
export type MailResolveErrorKind = 'nxdomain' | 'nullmx' | 'loop' | 'temporary';

/**
 * A routing lookup failed. `nxdomain` (the domain, or every MX host, does not
 * exist, or the domain has neither MX nor address), `nullmx` (RFC 7505) and
 * `loop` (this appliance is the best MX: the mail would come back to us) are
 * permanent; `temporary` (timeout, SERVFAIL, refused, unreachable resolver)
 * is worth retrying later.
 */
export class MailResolveError extends Error {
  readonly permanent: boolean;
  constructor(readonly kind: MailResolveErrorKind, message: string) {
    super(message);
    this.name = 'MailResolveError';
    this.permanent = kind !== 'temporary';
  }
}

/** What the resolver needs to know of this appliance to find itself in an MX list (server/mta/self.ts). */
export interface SelfTest {
  /** `host` is our host name. */
  isSelfName(host: string): boolean;
  /** An MX target with this address is us. */
  isSelfAddress(ip: string): boolean;
}

/** Outcome of one question: records (possibly none, NODATA) or NXDOMAIN. */
type Answer<T> = { kind: 'records'; records: T[] } | { kind: 'nxdomain' };

/** The record types the resolver asks: A, AAAA, MX, TXT. */
type QueryType = 1 | 28 | 15 | 16;

/** Longest CNAME chain we follow inside our own zones. */
const MAX_CNAME = 8;

/** Normalises a mail domain or host name: IDNA A-labels, lower case, no trailing dot. */
function normalizeDomain(name: string): string {
  let n = name.trim();
  if (n.endsWith('.')) n = n.slice(0, -1);
  const ascii = /^[\x21-\x7e]*$/.test(n) ? n : domainToASCII(n);
  return (ascii || n).toLowerCase();
}

/** A server address for Resolver.setServers: `ip:port` or `[v6]:port`. */
function serverString(hp: HostPort): string {
  if (net.isIPv6(hp.host)) return `[${hp.host}]:${hp.port}`;
  if (net.isIPv4(hp.host)) return `${hp.host}:${hp.port}`;
  throw new TypeError(`upstream DNS server '${hp.host}' is not an IP address`);
}

/** The in-addr.arpa / ip6.arpa name of an address (RFC 1035 §3.5, RFC 3596 §2.5). */
function reverseName(ip: string): string | undefined {
  if (net.isIPv4(ip)) return ip.split('.').reverse().join('.') + '.in-addr.arpa';
  const groups = ipv6Groups(ip);
  return groups && groups.join('').split('').reverse().join('.') + '.ip6.arpa';
}

function shuffle<T>(a: T[]): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/**
 * Resolves mail domains to next hops. Every outside lookup goes through one
 * `node:dns` Resolver bound to the configured upstream; names in our own
 * zones are answered from `zones`.
 */
export class MailResolver {
  private readonly upstream: dnsPromises.Resolver;
  private readonly zones?: ZonesLike;

  /**
   * `upstream` = DCMX_UPSTREAM_DNS (empty: the system resolvers; entries must
   * be IP addresses); `zones` = our own authoritative view, consulted first for
   * names inside zones we serve (never asked upstream); `timeoutMs` per query
   * (default 5000), two tries.
   */
  constructor(opts: { upstream: readonly HostPort[]; zones?: ZonesLike; timeoutMs?: number }) {
    this.upstream = new dnsPromises.Resolver({ timeout: opts.timeoutMs ?? 5000, tries: 2 });
    if (opts.upstream.length) this.upstream.setServers(opts.upstream.map(serverString));
    this.zones = opts.zones;
    // smtp-server calls `resolver.reverse(...)`; keep it usable detached too.
    this.reverse = this.reverse.bind(this);
  }

  /**
   * MX targets of a domain sorted by preference (ties shuffled, RFC 5321
   * §5.1), each with its A/AAAA addresses (IPv4 first); targets without any
   * address are left out. No MX → the domain itself as implicit MX with
   * preference 0 (§5.1), if it has an address. With `self`, this appliance
   * finds itself in the list (RFC 5321 §5.1): the targets that are us, by
   * name or by address, and every target as preferred as us or less, are left
   * out. Throws MailResolveError: 'nullmx' for a null MX (RFC 7505),
   * 'nxdomain' for a domain that does not exist, has neither MX nor address,
   * or whose MX hosts all do not exist; 'loop' when `self` is the best MX,
   * so nothing is left; 'temporary' for timeouts, SERVFAIL and the like.
   */
  async resolveMx(domain: string, self?: SelfTest): Promise<MxTarget[]> {
    const name = normalizeDomain(domain);
    const mx = await this.mxRecords(name);
    const loop = () => new MailResolveError('loop', `mail for ${name} loops back to myself`);
    if (mx.length === 0) {
      // RFC 5321 §5.1: no MX RRs → the domain is its own (implicit) MX, preference 0.
      if (self?.isSelfName(name)) throw loop();
      const addrs = await this.addresses(name);
      if (addrs.kind === 'nxdomain' || addrs.records.length === 0) {
        throw new MailResolveError('nxdomain', `${name}: no MX and no address records`);
      }
      if (self && addrs.records.some((a) => self.isSelfAddress(a))) throw loop();
      return [{ host: name, preference: 0, addresses: addrs.records }];
    }
    // Group by preference, shuffle within a group (§5.1: equal preferences are tried in random order).
    const byPref = new Map<number, { exchange: string; preference: number }[]>();
    for (const r of mx) {
      const g = byPref.get(r.preference);
      if (g) g.push(r);
      else byPref.set(r.preference, [r]);
    }
    let ordered = [...byPref.keys()].sort((a, b) => a - b).flatMap((p) => shuffle(byPref.get(p)!));
    // RFC 5321 §5.1: "it MUST discard" its own MX records and all with an equal or higher preference value.
    const mineByName = self && ordered.find((r) => self.isSelfName(r.exchange));
    if (mineByName) ordered = ordered.filter((r) => r.preference < mineByName.preference);
    let targets = await this.withAddresses(ordered);
    const mineByAddress = self && targets.find((t) => t.addresses.some((a) => self.isSelfAddress(a)));
    if (mineByAddress) targets = targets.filter((t) => t.preference < mineByAddress.preference);
    if ((mineByName || mineByAddress) && targets.length === 0) throw loop();
    const usable = targets.filter((t) => t.addresses.length > 0);
    if (usable.length) return usable.map(({ host, preference, addresses }) => ({ host, preference, addresses }));
    if (targets.some((t) => t.temporary)) throw new MailResolveError('temporary', `${name}: MX host addresses could not be resolved now`);
    throw new MailResolveError('nxdomain', `${name}: no MX host has an address`);
  }

  /**
   * The explicit MX records of a domain (no implicit MX): hosts sorted by
   * preference then name, each with its addresses (possibly none), for the
   * provisioning check "does an MX point at this appliance?". A target whose
   * address lookup failed temporarily has no addresses and `temporary` set,
   * so the caller can tell "points elsewhere" from "could not tell now". An
   * empty array means the domain exists but has no MX. Same errors as
   * `resolveMx` ('nxdomain' only when the domain does not exist).
   */
  async lookupMx(domain: string): Promise<(MxTarget & { temporary: boolean })[]> {
    const name = normalizeDomain(domain);
    const mx = await this.mxRecords(name);
    mx.sort((a, b) => a.preference - b.preference || (a.exchange < b.exchange ? -1 : a.exchange > b.exchange ? 1 : 0));
    return this.withAddresses(mx);
  }

  /**
   * The addresses of one host (IPv4 first), for relay hosts given by name.
   * Throws MailResolveError 'nxdomain' when the name does not exist or has no
   * address, 'temporary' otherwise.
   */
  async lookupHost(host: string): Promise<string[]> {
    const name = normalizeDomain(host);
    const r = await this.addresses(name);
    if (r.kind === 'nxdomain' || r.records.length === 0) throw new MailResolveError('nxdomain', `${name}: no address records`);
    return r.records;
  }

  /**
   * The TXT records of `name` (RFC 1035 §3.3.14), each record's strings
   * joined into one text, from our zones or upstream: [] when there are none
   * (NODATA) or the name does not exist. Throws MailResolveError 'temporary'.
   */
  async lookupTxt(name: string): Promise<string[]> {
    const r = await this.query(normalizeDomain(name), RRTYPE.TXT);
    return r.kind === 'nxdomain' ? [] : (r.records as string[]);
  }

  /**
   * A reverse lookup for smtp-server's `resolver` option (callback style like
   * dns.reverse), through the upstream only, with the timeout.
   */
  reverse(ip: string, cb: (err: Error | null, hostnames?: string[]) => void): void {
    // A PTR query of our own: Resolver.reverse() would answer from /etc/hosts first (c-ares "fb" lookups).
    const name = reverseName(ip);
    if (name === undefined) {
      const err: NodeJS.ErrnoException = new Error(`reverse ${ip}: not an IP address`);
      err.code = 'EINVAL';
      setImmediate(() => cb(err));
      return;
    }
    this.upstream.resolvePtr(name).then(
      (names) => cb(null, names),
      (err: Error) => cb(err),
    );
  }

  // ---------------------------------------------------------------- internals

  /** The MX RRset of `name` (CNAMEs followed): [] for NODATA; throws nxdomain/nullmx/temporary. */
  private async mxRecords(name: string): Promise<{ exchange: string; preference: number }[]> {
    const ans = await this.query(name, RRTYPE.MX);
    if (ans.kind === 'nxdomain') throw new MailResolveError('nxdomain', `${name}: no such domain (NXDOMAIN)`);
    const mx = ans.records as { exchange: string; preference: number }[];
    // RFC 7505 §3: a null MX is a single "0 ." record; we honour it alone, and
    // ignore a stray "." among real exchanges rather than refusing the domain.
    const real = mx.filter((r) => normalizeDomain(r.exchange) !== '');
    if (mx.length > 0 && real.length === 0) throw new MailResolveError('nullmx', `${name}: domain does not accept mail (null MX, RFC 7505)`);
    return real.map((r) => ({ exchange: normalizeDomain(r.exchange), preference: r.preference }));
  }

  /** Looks up the addresses of each exchange in parallel, keeping order. */
  private async withAddresses(mx: { exchange: string; preference: number }[]): Promise<(MxTarget & { temporary: boolean })[]> {
    return Promise.all(
      mx.map(async (r) => {
        try {
          const a = await this.addresses(r.exchange);
          return { host: r.exchange, preference: r.preference, addresses: a.kind === 'records' ? a.records : [], temporary: false };
        } catch (err) {
          if (err instanceof MailResolveError && err.kind === 'temporary') {
            return { host: r.exchange, preference: r.preference, addresses: [], temporary: true };
          }
          throw err;
        }
      }),
    );
  }

  /** A and AAAA of `name` (IPv4 first); an IP literal is its own address. */
  private async addresses(name: string): Promise<Answer<string>> {
    if (net.isIP(name)) return { kind: 'records', records: [name] };
    const [v4, v6] = await Promise.allSettled([this.query(name, RRTYPE.A), this.query(name, RRTYPE.AAAA)]);
    if (v4.status === 'rejected' && v6.status === 'rejected') throw v4.reason;
    const records: string[] = [];
    let nx = true;
    for (const r of [v4, v6]) {
      if (r.status !== 'fulfilled') continue;
      if (r.value.kind === 'records') {
        nx = false;
        records.push(...(r.value.records as string[]));
      }
    }
    // One family failing temporarily while the other has nothing is still temporary.
    if (records.length === 0 && (v4.status === 'rejected' || v6.status === 'rejected')) {
      throw (v4.status === 'rejected' ? v4.reason : (v6 as PromiseRejectedResult).reason);
    }
    return nx && records.length === 0 ? { kind: 'nxdomain' } : { kind: 'records', records };
  }

  /** One question, from our own zones when `name` is in one we serve, else upstream. */
  private async query(name: string, type: QueryType): Promise<Answer<string | { exchange: string; preference: number }>> {
    let qname = name;
    for (let hops = 0; hops <= MAX_CNAME; hops++) {
      const local = this.localLookup(qname, type);
      if (local === undefined) return this.upstreamQuery(qname, type);
      if (local.kind !== 'cname') return local;
      qname = local.target;
    }
    throw new MailResolveError('temporary', `${name}: CNAME chain too long`);
  }

  /**
   * Answers from our own authoritative data when we hold the answer (see the
   * module comment): records of `type` at `name` or at the wildcard covering
   * it, or a CNAME. undefined sends the question upstream: not in a zone we
   * serve, at or below a delegation, or nothing of that type here.
   */
  private localLookup(name: string, type: number): Answer<string | { exchange: string; preference: number }> | { kind: 'cname'; target: string } | undefined {
    const zones = this.zones;
    if (!zones) return undefined;
    const zone = zones.zoneOf(name);
    if (!zone) return undefined;
    // A delegation (NS below the apex) between the zone and the name: not ours to answer.
    for (let n = name; n !== zone.name; ) {
      if (zones.node(n)?.rrsets.get(RRTYPE.NS)?.length) return undefined;
      const dot = n.indexOf('.');
      if (dot < 0) break;
      n = n.slice(dot + 1);
    }
    let node = zones.node(name);
    if (!node) {
      // RFC 4592: a wildcard at the closest encloser (every ancestor with descendants is an entry in the DC tree).
      let ce = name;
      do {
        ce = ce.slice(ce.indexOf('.') + 1);
      } while (ce !== zone.name && ce.includes('.') && !zones.node(ce));
      node = zones.node('*.' + ce);
      if (!node) return undefined; // NXDOMAIN here: the owner's own DNS may know the name
    }
    const cname = node.rrsets.get(RRTYPE.CNAME)?.[0];
    if (cname && cname.rdata.type === RRTYPE.CNAME) return { kind: 'cname', target: cname.rdata.target };
    const rrs: RR[] = node.rrsets.get(type) ?? [];
    if (rrs.length === 0) return undefined; // NODATA here: likewise
    const records: (string | { exchange: string; preference: number })[] = [];
    for (const rr of rrs) {
      const d = rr.rdata;
      if (d.type === RRTYPE.A || d.type === RRTYPE.AAAA) records.push(d.address);
      else if (d.type === RRTYPE.MX) records.push({ exchange: d.exchange, preference: d.preference });
      else if (d.type === RRTYPE.TXT) records.push(Buffer.concat(d.strings).toString('utf8'));
    }
    return { kind: 'records', records };
  }

  /** One upstream question, with c-ares error codes mapped to our outcomes. */
  private async upstreamQuery(name: string, type: QueryType): Promise<Answer<string | { exchange: string; preference: number }>> {
    try {
      if (type === RRTYPE.MX) return { kind: 'records', records: (await this.upstream.resolveMx(name)).map((r) => ({ exchange: r.exchange, preference: r.priority })) };
      if (type === RRTYPE.A) return { kind: 'records', records: await this.upstream.resolve4(name) };
      if (type === RRTYPE.TXT) return { kind: 'records', records: (await this.upstream.resolveTxt(name)).map((strings) => strings.join('')) };
      return { kind: 'records', records: await this.upstream.resolve6(name) };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // ENODATA: the name exists, no records of this type (NODATA).
      if (code === 'ENODATA') return { kind: 'records', records: [] };
      // ENOTFOUND: NXDOMAIN (rcode 3).
      if (code === 'ENOTFOUND') return { kind: 'nxdomain' };
      // ESERVFAIL, ETIMEOUT, ECONNREFUSED, EREFUSED, EBADRESP, ... : try again later.
      const what = type === RRTYPE.MX ? 'MX' : type === RRTYPE.A ? 'A' : type === RRTYPE.TXT ? 'TXT' : 'AAAA';
      throw new MailResolveError('temporary', `${name} ${what}: ${code ?? (err as Error).message}`);
    }
  }
}
