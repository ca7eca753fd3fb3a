/**
 * The zones of a directory compiled in memory, for answering without a
 * store read or a record parse per query: one Map from DNS name to its node,
 * whose RRsets are parsed once, with the zone (apex SOA) at each apex.
 *
 * Built from one scan of the DC tree, then kept in step with the change log
 * incrementally (Zones follows it in Directory.sync, before any query of the
 * thread proceeds): only the names a change touches are read again from the
 * store, and the subtree below a name whose zone shape changed (an apex
 * appears or goes, its default TTL changes) or that was renamed. The store
 * stays the one source of truth; this is a view of it, like an answer cache.
 *
 * What a node holds is exactly what Zones would read from the store for its
 * name: the entry whose DN is the DC-tree DN of the name (DnsNames.toNdn),
 * its records in master-file syntax parsed with the TTL of its zone.
 */
import type { StoredEntry } from '../../storage/store';
import type { Zone, ZoneNode } from './zones';

/** What a zone apex brings to the names below it. */
export interface ApexInfo {
  /** The zone, undefined when its SOA does not parse (then no zone is found at or below it, as with the store). */
  zone: Zone | undefined;
  /** The TTL of records without dNSTTL at or below the apex (down to the next apex). */
  ttl: number;
  /** The apex holds a DNSSEC signing key (its key records are added when it is read, Zones.node). */
  signed: boolean;
}

/** A compiled node: a ZoneNode, and at an apex what the apex brings. Shared: callers never mutate it. */
export interface IndexedNode extends ZoneNode {
  apex?: ApexInfo;
}

/** How the index reads and compiles entries (Zones provides it: the DC-tree mapping and the record parser live there). */
export interface IndexSource {
  /** TTL of a name in no zone. */
  readonly defaultTtl: number;
  /** Every entry of the DC tree, parents before children. */
  all(): Iterable<StoredEntry>;
  /** The entries below `e`, parents before children. */
  below(e: StoredEntry): Iterable<StoredEntry>;
  /** The entry for `name` (DnsNames.toNdn), read from the store now. */
  entryAt(name: string): StoredEntry | undefined;
  /** The name `e` is the entry of (the entry `entryAt` finds for it), if any. */
  nameOf(e: StoredEntry): string | undefined;
  /** The node of `e` at `name`; `ttl` is the default TTL from the zone above it (an apex uses its own). */
  compile(name: string, e: StoredEntry, ttl: number): IndexedNode;
}

/** A change to apply: the names whose entries changed, and those renamed (their subtrees moved with them). */
export interface IndexChange {
  names: Iterable<string>;
  subtrees: Iterable<string>;
}

/** Labels in a name: parents (fewer labels) are compiled before their children. */
function depth(name: string): number {
  let n = 1;
  for (let i = name.indexOf('.'); i >= 0; i = name.indexOf('.', i + 1)) n++;
  return n;
}

/** What a node's apex gives the names below it; a change of it recompiles them. */
function shapeOf(n: IndexedNode | undefined): string {
  const a = n?.apex;
  return a ? `${a.zone ? 'z' : '-'}${a.ttl}` : '';
}

/** Compiled nodes by lower-case name (no trailing dot). */
export class ZoneIndex {
  private readonly nodes = new Map<string, IndexedNode>();

  constructor(private readonly src: IndexSource) {
    this.rebuild();
  }

  /** Names held. */
  get size(): number {
    return this.nodes.size;
  }

  /** Compiles everything again from one scan of the store (at start, and after a gap in the change log). */
  rebuild(): void {
    this.nodes.clear();
    for (const e of this.src.all()) this.put(e);
  }

  /** The node at `name` (lower case), if an entry spells it. */
  node(name: string): IndexedNode | undefined {
    return this.nodes.get(name);
  }

  /** The closest zone apex at or above `name` (lower case): its zone, undefined when none or its SOA does not parse. */
  zoneOf(name: string): Zone | undefined {
    let n = name;
    for (;;) {
      const a = this.nodes.get(n)?.apex;
      if (a) return a.zone;
      const dot = n.indexOf('.');
      if (dot < 0) return undefined;
      n = n.slice(dot + 1);
    }
  }

  /**
   * Re-reads from the store the names of `c` (parents first) and recompiles
   * them; below a renamed name, or one whose apex changed what it gives the
   * names below (apex or not, default TTL, SOA usable), the whole subtree.
   */
  apply(c: IndexChange): void {
    const subtrees = new Set(c.subtrees);
    for (const s of subtrees) this.dropBelow(s);
    const todo = [...new Set([...c.names, ...subtrees])].sort((a, b) => depth(a) - depth(b));
    for (const name of todo) {
      const before = this.nodes.get(name);
      const e = this.src.entryAt(name);
      if (!e) {
        // A delete (a leaf: the directory refuses others) or a rename's old name (its subtree dropped above).
        this.nodes.delete(name);
        continue;
      }
      const after = this.src.compile(name, e, this.ttlAbove(name));
      this.nodes.set(name, after);
      if (subtrees.has(name) || shapeOf(before) !== shapeOf(after)) for (const d of this.src.below(e)) this.put(d);
    }
  }

  private put(e: StoredEntry): void {
    const name = this.src.nameOf(e);
    if (name !== undefined) this.nodes.set(name, this.src.compile(name, e, this.ttlAbove(name)));
  }

  /** The default TTL of the closest apex strictly above `name`, as compiled. */
  private ttlAbove(name: string): number {
    for (let dot = name.indexOf('.'); dot >= 0; dot = name.indexOf('.', dot + 1)) {
      const a = this.nodes.get(name.slice(dot + 1))?.apex;
      if (a) return a.ttl;
    }
    return this.src.defaultTtl;
  }

  /** Forgets every name strictly below `name` (a renamed subtree; rare: one pass over the names). */
  private dropBelow(name: string): void {
    const tail = '.' + name;
    for (const k of this.nodes.keys()) if (k.endsWith(tail)) this.nodes.delete(k);
  }
}
