/**
 * Ready wire answers, each kept with what it was built from, so that a
 * change to DNS data drops the answers it can change and no others.
 *
 * While an answer is built, a recording zone view (recordingView) notes
 * what the lookup read:
 * - `node:` every name whose node it asked for, found or not: a name that
 *   did not exist is how a negative answer (and a wildcard probe `*.p`)
 *   learns that a name added there turns it positive;
 * - `zone:` every zone apex zoneOf gave it: the zone's default TTL, signing
 *   state, cuts and apex set reach every answer of the zone;
 * - `none:` every name from a name zoneOf found no zone for up to the root:
 *   an apex added there gives it one;
 * - `soa:` the zone whose SOA the answer carries (negative answers, signed
 *   denials and referrals).
 * A change (dns-change.ts) then drops: `node:` of each name it touches;
 * for an SOA replaced (a serial bump) `soa:` of the apex, `none:` of it and
 * `zone:` of the zones above it (the entry may just have become an apex,
 * carving a child zone out of its parent); for a change that reaches its
 * whole zone (an apex or cut added or removed, the default TTL, the signing
 * state), `zone:` of it and every zone above (every answer carrying a
 * zone's SOA read the zone), and `none:` of it. A
 * serial bump thus keeps the zone's positive answers, but for those of the
 * apex node itself.
 *
 * The index from dependencies to cache keys is bounded with the LRU: an
 * entry that leaves the cache (evicted, dropped, replaced) leaves the index.
 */
import { LRUCache } from 'lru-cache';
import type { DnsChange } from '../directory/dns-change';
import type { Zone, ZoneNode, ZoneView } from '../directory/zones';

/** The cache keys of the answers that depend on one dependency (`dep`), shared by them all. */
class Dependents extends Set<string> {
  constructor(readonly dep: string) {
    super();
  }
}

interface Cached {
  bytes: Buffer;
  /** Time (ms) after which the answer is not served (a signed answer's signatures age); Infinity for none. */
  until: number;
  /** The index's sets this answer is in: shared, so an answer holds no dependency strings of its own. */
  deps: Dependents[];
}

/** What one answer read, as dependency keys (see the module comment). */
export class AnswerDeps {
  readonly keys = new Set<string>();

  /** The answer read the node at `name` (it may not exist). */
  node(name: string): void {
    this.keys.add('node:' + name);
  }

  /** The answer read zone `apex` (its apex, default TTL, signing, cuts). */
  zone(apex: string): void {
    this.keys.add('zone:' + apex);
  }

  /** The answer carries the SOA of zone `apex`. */
  soa(apex: string): void {
    this.keys.add('soa:' + apex);
  }

  /** No zone holds `name`: an apex at it or any name above would. */
  noZone(name: string): void {
    for (let n = name; ; n = n.slice(n.indexOf('.') + 1)) {
      this.keys.add('none:' + n);
      if (n.indexOf('.') < 0) break;
    }
  }
}

/**
 * A view over `view` for one answer: reads each zone and node once (a
 * lookup asks for the same apex and nodes several times: delegation walk,
 * wildcard search, additional section) and records them in `deps`.
 */
export function recordingView(view: ZoneView, deps: AnswerDeps): ZoneView {
  const zones = new Map<string, Zone | undefined>();
  const nodes = new Map<string, ZoneNode | undefined>();
  return {
    zoneOf(name) {
      if (zones.has(name)) return zones.get(name);
      const z = view.zoneOf(name);
      zones.set(name, z);
      if (z) deps.zone(z.name);
      else deps.noZone(name);
      return z;
    },
    node(name) {
      if (nodes.has(name)) return nodes.get(name);
      const n = view.node(name);
      nodes.set(name, n);
      deps.node(name);
      return n;
    },
  };
}

/** Counters of the cache, for the admin API and benchmarks. */
export interface AnswerCacheStats {
  /** Entries dropped because a change could alter them. */
  invalidated: number;
  /** Whole-cache drops (a gap in the change log, an entry renamed). */
  flushes: number;
}

/** The dependency-tracked answer cache (see the module comment). */
export class AnswerCache {
  private readonly lru: LRUCache<string, Cached>;
  /** Dependency key → the cache keys of the answers that depend on it. */
  private readonly index = new Map<string, Dependents>();
  readonly stats: AnswerCacheStats = { invalidated: 0, flushes: 0 };

  /** `max`: answers kept at most. `catalog`: the catalog zone's name (its contents are the set of apexes), if one is served. */
  constructor(max: number, private readonly catalog?: string) {
    this.lru = new LRUCache<string, Cached>({ max, dispose: (v, k) => this.unindex(k, v.deps) });
  }

  /** Answers kept now. */
  get size(): number {
    return this.lru.size;
  }

  /** Dependency keys indexed now (for tests: bounded with the cache). */
  get indexSize(): number {
    return this.index.size;
  }

  /** The answer kept under `key`, if it is still fresh. */
  get(key: string): Buffer | undefined {
    const c = this.lru.get(key);
    if (c === undefined) return undefined;
    if (c.until !== Infinity && c.until <= Date.now()) return undefined;
    return c.bytes;
  }

  /**
   * Keeps a copy of `bytes` under `key`, built from `deps`, served until
   * `until` (ms) if given. The copy is unpooled: a slice of Node's shared
   * 8 KiB buffer pool would keep its whole slab (short-lived replies and all)
   * alive for as long as the answer is cached.
   */
  set(key: string, bytes: Buffer, deps: AnswerDeps, until = Infinity): void {
    const copy = Buffer.allocUnsafeSlow(bytes.length);
    bytes.copy(copy);
    this.lru.delete(key); // unindexes an entry it replaces, before this one is indexed
    const sets = Array.from(deps.keys, (d) => {
      let s = this.index.get(d);
      if (!s) this.index.set(d, (s = new Dependents(d)));
      s.add(key);
      return s;
    });
    this.lru.set(key, { bytes: copy, until, deps: sets });
  }

  /** Drops every answer `c` can change (see the module comment). */
  invalidate(c: DnsChange): void {
    if (c.all || c.renamed.size) {
      // A rename moves a whole subtree, child zones and all.
      this.clear();
      return;
    }
    for (const n of c.names) this.drop('node:' + n);
    for (const n of c.soa) {
      this.drop('soa:' + n);
      this.drop('none:' + n);
      for (let a = parentOf(n); a !== undefined; a = parentOf(a)) this.drop('zone:' + a);
    }
    for (const n of c.zoneWide) {
      this.drop('none:' + n);
      for (let a: string | undefined = n; a !== undefined; a = parentOf(a)) this.drop('zone:' + a);
    }
    // RFC 9432 §4.1: the catalog lists the apexes; an SOA set or removed may add or remove one.
    if (this.catalog !== undefined && (c.soa.size || c.zoneWide.size)) this.drop('zone:' + this.catalog);
  }

  /** Drops everything. */
  clear(): void {
    this.stats.flushes++;
    this.index.clear();
    this.lru.clear();
  }

  private drop(dep: string): void {
    const keys = this.index.get(dep);
    if (!keys) return;
    for (const k of [...keys]) {
      if (this.lru.delete(k)) this.stats.invalidated++;
    }
  }

  private unindex(key: string, deps: readonly Dependents[]): void {
    for (const s of deps) {
      s.delete(key);
      if (s.size === 0 && this.index.get(s.dep) === s) this.index.delete(s.dep);
    }
  }
}

/** The name one label up, or undefined at a top-level name. */
function parentOf(name: string): string | undefined {
  const dot = name.indexOf('.');
  return dot < 0 ? undefined : name.slice(dot + 1);
}
