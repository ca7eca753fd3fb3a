/**
 * Ready wire answers, each kept with what it was built from, so that a
 * change to DNS data drops the answers it can change and no others.
 *
 * While an answer is built, a recording zone view (recordingView) notes
 * what the lookup read:
 * - `node` every name whose node it asked for, found or not: a name that
 *   did not exist is how a negative answer (and a wildcard probe `*.p`)
 *   learns that a name added there turns it positive;
 * - `zone` every zone apex zoneOf gave it: the zone's default TTL, signing
 *   state, cuts and apex set reach every answer of the zone;
 * - `none` every name from a name zoneOf found no zone for up to the root:
 *   an apex added there gives it one;
 * - `soa` the zone whose SOA the answer carries (negative answers, signed
 *   denials and referrals). Every write to a zone bumps its serial in the
 *   same transaction (zones.ts bumpSerials), so an NXDOMAIN without a CNAME
 *   chain needs no `node` dependencies: all it read is the path down to the
 *   name and the wildcard probes, names of its zone (the closest apex) whose
 *   every change moves the SOA. An NXDOMAIN flood of random names then adds
 *   no index entry per name.
 * A change (dns-change.ts) then drops: `node` of each name it touches;
 * for an SOA replaced (a serial bump) `soa` of the apex, `none` of it and
 * `zone` of the zones above it (the entry may just have become an apex,
 * carving a child zone out of its parent); for a change that reaches its
 * whole zone (an apex or cut added or removed, the default TTL, the signing
 * state), `zone` of it and every zone above (every answer carrying a
 * zone's SOA read the zone), and `none` of it. A serial bump thus keeps
 * the zone's positive answers, but for those of the apex node itself.
 *
 * The index from dependencies to cache keys is bounded with the LRU: an
 * entry that leaves the cache (evicted, dropped, replaced) leaves the index.
 *
 * Admission: while the cache has room every answer goes in; once it is
 * full, an answer goes in on the second miss of its key that the admission
 * filter remembers (a doorkeeper, as in TinyLFU: one 32-bit hash per slot
 * of a fixed table, so a key seen once is forgotten when another key takes
 * its slot). A flood of names asked once (random NXDOMAIN names) then costs
 * a lookup each, not an insertion, an eviction of an answer that is asked
 * again, and garbage: the working set stays cached.
 */
import { LRUCache } from 'lru-cache';
import type { DnsChange } from '../directory/dns-change';
import type { ZoneView } from '../directory/zones';

/**
 * The answers that depend on one dependency (`dep`): a doubly linked list
 * of links, one per answer. A link leaves it in O(1) without hashing: a
 * dependency most answers share (their zone) would otherwise be one huge
 * Set churned by every insertion and eviction, which V8 keeps rehashing.
 */
class Dependents {
  head: Link | undefined;
  size = 0;
  /** `name` in `map`: where the index keeps this list. */
  constructor(readonly map: Map<string, Dependents>, readonly name: string) {}
}

/** One answer (`key`) in one dependency's list. */
interface Link {
  list: Dependents;
  key: string;
  prev: Link | undefined;
  next: Link | undefined;
}

/**
 * One kept answer. Compact, since the cache holds tens of thousands: the
 * octets as a Latin-1 string (one V8 object, where a Buffer costs a
 * typed array, an ArrayBuffer and a native allocation: ~400 bytes more),
 * no float field (V8 boxes each in a heap number of its own), the links
 * array at its exact length.
 */
interface Cached {
  /** The answer's octets, one char (0-255) each. */
  octets: string;
  /** Time (ms) after which the answer is not served (a signed answer's signatures age); 0 for none. */
  until: number;
  /** This answer's links, one per dependency. */
  links: Link[];
}

/** The kinds of dependency (see the module comment), each indexed by name. */
type Kind = 'node' | 'zone' | 'soa' | 'none';

/** What one answer read (see the module comment): names, by kind. */
export class AnswerDeps {
  readonly nodes: string[] = [];
  readonly zones: string[] = [];
  /** Names zoneOf found no zone for. */
  readonly unzoned: string[] = [];
  /** The zone whose SOA the answer carries, if any. */
  soaOf: string | undefined;
  /** Every node read is a name of zone `soaOf` (see soa). */
  soaCovers = false;

  /** The answer read the node at `name` (it may not exist). */
  node(name: string): void {
    if (!this.nodes.includes(name)) this.nodes.push(name);
  }

  /** The answer read zone `apex` (its apex, default TTL, signing, cuts). */
  zone(apex: string): void {
    if (!this.zones.includes(apex)) this.zones.push(apex);
  }

  /**
   * The answer carries the SOA of zone `apex`; `covers`: every node it read
   * is a name of that zone, whose changes all move the SOA (an NXDOMAIN
   * without a CNAME chain), so its `node` dependencies need no index.
   */
  soa(apex: string, covers = false): void {
    this.soaOf = apex;
    this.soaCovers = covers;
  }

  /** No zone holds `name`: an apex at it or any name above would. */
  noZone(name: string): void {
    this.unzoned.push(name);
  }
}

/**
 * A view over `view` for one answer that records in `deps` what the lookup
 * reads (the compiled zones, zones.ts, make each read a map lookup).
 */
export function recordingView(view: ZoneView, deps: AnswerDeps): ZoneView {
  return {
    zoneOf(name) {
      const z = view.zoneOf(name);
      if (z) deps.zone(z.name);
      else deps.noZone(name);
      return z;
    },
    node(name) {
      deps.node(name);
      return view.node(name);
    },
  };
}

/** Counters of the cache, for the admin API and benchmarks. */
export interface AnswerCacheStats {
  /** Entries dropped because a change could alter them. */
  invalidated: number;
  /** Whole-cache drops (a gap in the change log, an entry renamed). */
  flushes: number;
  /** Answers not kept: the cache was full and their key was a first miss (see Admission in the module comment). */
  notAdmitted: number;
}

/** Slots of the admission filter (a power of two; 256 KiB). */
const DOOR_SLOTS = 1 << 16;

/** FNV-1a over the key's UTF-16 code units (the keys are Latin-1 text), never 0. */
function keyHash(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return (h | 1) >>> 0;
}

/** The dependency-tracked answer cache (see the module comment). */
export class AnswerCache {
  private readonly lru: LRUCache<string, Cached>;
  /** By kind, name → the answers that depend on it. */
  private readonly index: Record<Kind, Map<string, Dependents>> = { node: new Map(), zone: new Map(), soa: new Map(), none: new Map() };
  readonly stats: AnswerCacheStats = { invalidated: 0, flushes: 0, notAdmitted: 0 };
  /** The admission filter: the hash of a key that missed once while the cache was full, by slot. */
  private readonly door = new Uint32Array(DOOR_SLOTS);

  /** `max`: answers kept at most. `catalog`: the catalog zone's name (its contents are the set of apexes), if one is served. */
  constructor(private readonly max: number, private readonly catalog?: string) {
    this.lru = new LRUCache<string, Cached>({ max, dispose: (v) => unlink(v.links) });
  }

  /** Answers kept now. */
  get size(): number {
    return this.lru.size;
  }

  /** Dependencies indexed now (for tests: bounded with the cache). */
  get indexSize(): number {
    return this.index.node.size + this.index.zone.size + this.index.soa.size + this.index.none.size;
  }

  /** The octets of the answer kept under `key` (one char each, as Buffer's 'latin1'), if it is still fresh. */
  get(key: string): string | undefined {
    const c = this.lru.get(key);
    if (c === undefined) return undefined;
    if (c.until !== 0 && c.until <= Date.now()) return undefined;
    return c.octets;
  }

  /**
   * Keeps a copy of `bytes` under `key`, built from `deps`, served until
   * `until` (ms) if given, when it is admitted (a full cache keeps a new
   * key at its second miss, see the module comment). The copy is a string
   * (see Cached), which shares nothing with `bytes`: a slice of Node's 8 KiB
   * buffer pool would keep its whole slab alive for as long as it is cached.
   */
  set(key: string, bytes: Buffer, deps: AnswerDeps, until = 0): void {
    if (this.lru.size >= this.max && !this.lru.has(key) && !this.admit(key)) {
      this.stats.notAdmitted++;
      return;
    }
    const octets = bytes.toString('latin1');
    this.lru.delete(key); // unindexes an entry it replaces, before this one is indexed
    const links: Link[] = [];
    const add = (map: Map<string, Dependents>, name: string) => {
      let list = map.get(name);
      if (!list) map.set(name, (list = new Dependents(map, name)));
      const link: Link = { list, key, prev: undefined, next: list.head };
      if (list.head) list.head.prev = link;
      list.head = link;
      list.size++;
      links.push(link);
    };
    const ix = this.index;
    if (deps.soaOf !== undefined) add(ix.soa, deps.soaOf);
    if (!deps.soaCovers) for (const n of deps.nodes) add(ix.node, n);
    for (const z of deps.zones) add(ix.zone, z);
    for (const name of deps.unzoned) {
      for (let n: string | undefined = name; n !== undefined; n = parentOf(n)) add(ix.none, n);
    }
    this.lru.set(key, { octets, until, links: links.slice() });
  }

  /** Is `key` seen missing for the second time by the admission filter? Else it is remembered (its slot taken). */
  private admit(key: string): boolean {
    const h = keyHash(key);
    const slot = h & (DOOR_SLOTS - 1);
    if (this.door[slot] === h) {
      this.door[slot] = 0;
      return true;
    }
    this.door[slot] = h;
    return false;
  }

  /** Drops every answer `c` can change (see the module comment). */
  invalidate(c: DnsChange): void {
    if (c.all || c.renamed.size) {
      // A rename moves a whole subtree, child zones and all.
      this.clear();
      return;
    }
    for (const n of c.names) this.drop('node', n);
    for (const n of c.soa) {
      this.drop('soa', n);
      this.drop('none', n);
      for (let a = parentOf(n); a !== undefined; a = parentOf(a)) this.drop('zone', a);
    }
    for (const n of c.zoneWide) {
      this.drop('none', n);
      for (let a: string | undefined = n; a !== undefined; a = parentOf(a)) this.drop('zone', a);
    }
    // RFC 9432 §4.1: the catalog lists the apexes; an SOA set or removed may add or remove one.
    if (this.catalog !== undefined && (c.soa.size || c.zoneWide.size)) this.drop('zone', this.catalog);
  }

  /** Drops everything. */
  clear(): void {
    this.stats.flushes++;
    for (const m of Object.values(this.index)) m.clear();
    this.lru.clear();
  }

  private drop(kind: Kind, name: string): void {
    const list = this.index[kind].get(name);
    if (!list) return;
    const keys: string[] = [];
    for (let l = list.head; l; l = l.next) keys.push(l.key);
    for (const k of keys) {
      if (this.lru.delete(k)) this.stats.invalidated++; // disposes: unlinks it from every list
    }
  }
}

/** Takes an answer's `links` out of their lists, and a list left empty out of the index. */
function unlink(links: readonly Link[]): void {
  for (const l of links) {
    const list = l.list;
    if (l.prev) l.prev.next = l.next;
    else list.head = l.next;
    if (l.next) l.next.prev = l.prev;
    if (--list.size === 0 && list.map.get(list.name) === list) list.map.delete(list.name);
  }
}

/** The name one label up, or undefined at a top-level name. */
function parentOf(name: string): string | undefined {
  const dot = name.indexOf('.');
  return dot < 0 ? undefined : name.slice(dot + 1);
}
