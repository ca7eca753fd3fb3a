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

/** The kinds of dependency (see the module comment), each indexed by name: an index into AnswerCache's maps. */
const NODE = 0, ZONE = 1, SOA = 2, NONE = 3;
type Kind = typeof NODE | typeof ZONE | typeof SOA | typeof NONE;

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

/** No link, list or slot: the end of a chain. */
const NIL = -1;

/** A link record's fields, `LINK` int32s per record (see AnswerCache). */
const ANSWER = 0, LIST = 1, PREV = 2, NEXT = 3, SIB = 4, LINK = 5;

/** The capacity a record array grows to when `used` fills it (by half: at most a third of it unused). */
function grown(used: number): number {
  return Math.max(64, Math.ceil(used * 1.5));
}

/**
 * The dependency-tracked answer cache (see the module comment).
 *
 * Laid out for tens of thousands of answers: some 150 bytes each beside
 * its key and octets, where objects per answer and per link (a header and
 * tagged fields each, an array of links) cost some 310. Each kept answer
 * has a slot, a small integer: lru-cache maps its key to the slot (the LRU
 * order is lru-cache's), and arrays indexed by slot hold its key, its
 * octets (a Latin-1 string: one V8 object, where a Buffer costs a typed
 * array, an ArrayBuffer and a native allocation), its `until` and its
 * first link. Each dependency name is a list (an integer, in a map per
 * kind); each answer is on the list of every dependency it has, through a
 * link record of five int32s in one array: the answer's slot, the list,
 * the previous and next links of the list (doubly linked: an answer leaves
 * every list in O(1), without hashing, though the list of a zone holds
 * most answers), and the answer's next link. Links, lists and slots freed
 * are reused.
 */
export class AnswerCache {
  /** Key → slot, in the order of use; evicting or deleting a key releases its slot (dispose). */
  private readonly lru: LRUCache<string, number>;
  /** By kind, dependency name → its list. */
  private readonly index: readonly Map<string, number>[] = [new Map(), new Map(), new Map(), new Map()];
  readonly stats: AnswerCacheStats = { invalidated: 0, flushes: 0, notAdmitted: 0 };
  /** The admission filter: the hash of a key that missed once while the cache was full, by slot. */
  private readonly door = new Uint32Array(DOOR_SLOTS);

  // By answer slot: max + 1 of them, since an answer is given its slot before lru-cache evicts another.
  private readonly keys: (string | undefined)[];
  /** The answer's octets, one char (0-255) each. */
  private readonly octets: (string | undefined)[];
  /** Time (ms) after which the answer is not served (a signed answer's signatures age); 0 for none. */
  private readonly until: Float64Array;
  /** The answer's first link (then SIB). */
  private readonly firstLink: Int32Array;
  /** The slots not in use, a stack of `freeSlotCount`. */
  private readonly freeSlots: Int32Array;
  private freeSlotCount: number;

  // By list: its first link (NIL for a list free) and its kind, and its name.
  private listHead = new Int32Array(64);
  private listKind = new Uint8Array(64);
  private readonly listName: (string | undefined)[] = [];
  /** Lists freed (emptied), to reuse. */
  private readonly freeLists: number[] = [];

  /** The link records, `LINK` int32s each (ANSWER, LIST, PREV, NEXT, SIB); `linkCount` ever used. */
  private links: Int32Array;
  private linkCount = 0;
  /** The links freed, chained by SIB. */
  private freeLink = NIL;

  /** `max`: answers kept at most. `catalog`: the catalog zone's name (its contents are the set of apexes), if one is served. */
  constructor(private readonly max: number, private readonly catalog?: string) {
    this.lru = new LRUCache<string, number>({ max, dispose: (slot) => this.release(slot) });
    const slots = max + 1;
    this.keys = new Array<string | undefined>(slots).fill(undefined);
    this.octets = new Array<string | undefined>(slots).fill(undefined);
    this.until = new Float64Array(slots);
    this.firstLink = new Int32Array(slots).fill(NIL);
    this.freeSlots = new Int32Array(slots);
    for (let i = 0; i < slots; i++) this.freeSlots[i] = slots - 1 - i;
    this.freeSlotCount = slots;
    this.links = new Int32Array(Math.min(grown(0), slots) * LINK);
  }

  /** Answers kept now. */
  get size(): number {
    return this.lru.size;
  }

  /** Dependencies indexed now (for tests: bounded with the cache). */
  get indexSize(): number {
    return this.index[NODE].size + this.index[ZONE].size + this.index[SOA].size + this.index[NONE].size;
  }

  /** The octets of the answer kept under `key` (one char each, as Buffer's 'latin1'), if it is still fresh. */
  get(key: string): string | undefined {
    const slot = this.lru.get(key);
    if (slot === undefined) return undefined;
    const until = this.until[slot];
    if (until !== 0 && until <= Date.now()) return undefined;
    return this.octets[slot];
  }

  /**
   * Keeps a copy of `bytes` under `key`, built from `deps`, served until
   * `until` (ms) if given, when it is admitted (a full cache keeps a new
   * key at its second miss, see the module comment). The copy is a string
   * (see the class comment), which shares nothing with `bytes`: a slice of
   * Node's 8 KiB buffer pool would keep its whole slab alive for as long as
   * it is cached.
   */
  set(key: string, bytes: Buffer, deps: AnswerDeps, until = 0): void {
    if (this.lru.size >= this.max && !this.lru.has(key) && !this.admit(key)) {
      this.stats.notAdmitted++;
      return;
    }
    const octets = bytes.toString('latin1');
    this.lru.delete(key); // unindexes an entry it replaces, before this one is indexed
    const slot = this.freeSlots[--this.freeSlotCount];
    this.keys[slot] = key;
    this.octets[slot] = octets;
    this.until[slot] = until;
    if (deps.soaOf !== undefined) this.link(slot, SOA, deps.soaOf);
    if (!deps.soaCovers) for (const n of deps.nodes) this.link(slot, NODE, n);
    for (const z of deps.zones) this.link(slot, ZONE, z);
    for (const name of deps.unzoned) {
      for (let n: string | undefined = name; n !== undefined; n = parentOf(n)) this.link(slot, NONE, n);
    }
    this.lru.set(key, slot); // evicts the least recently used answer when full, releasing its slot
  }

  /** Puts the answer at `slot` first on the list of dependency `name` of `kind`. */
  private link(slot: number, kind: Kind, name: string): void {
    const map = this.index[kind];
    let list = map.get(name);
    if (list === undefined) map.set(name, (list = this.newList(kind, name)));
    let l = this.freeLink;
    if (l !== NIL) this.freeLink = this.links[l * LINK + SIB];
    else {
      l = this.linkCount++;
      if (l * LINK === this.links.length) {
        const links = new Int32Array(grown(l) * LINK);
        links.set(this.links);
        this.links = links;
      }
    }
    const L = this.links;
    const head = this.listHead[list];
    const at = l * LINK;
    L[at + ANSWER] = slot;
    L[at + LIST] = list;
    L[at + PREV] = NIL;
    L[at + NEXT] = head;
    L[at + SIB] = this.firstLink[slot];
    if (head !== NIL) L[head * LINK + PREV] = l;
    this.listHead[list] = l;
    this.firstLink[slot] = l;
  }

  /** A new, empty list for dependency `name` of `kind`. */
  private newList(kind: Kind, name: string): number {
    let list = this.freeLists.pop();
    if (list === undefined) {
      list = this.listName.length;
      if (list === this.listHead.length) {
        const head = new Int32Array(grown(list));
        head.set(this.listHead);
        this.listHead = head;
        const kinds = new Uint8Array(head.length);
        kinds.set(this.listKind);
        this.listKind = kinds;
      }
      this.listName.push(name);
    } else this.listName[list] = name;
    this.listHead[list] = NIL;
    this.listKind[list] = kind;
    return list;
  }

  /** Takes the answer at `slot` (gone from the LRU) out of every list, a list left empty out of the index, and frees the slot. */
  private release(slot: number): void {
    const L = this.links;
    for (let l = this.firstLink[slot]; l !== NIL; ) {
      const at = l * LINK;
      const list = L[at + LIST], prev = L[at + PREV], next = L[at + NEXT], sib = L[at + SIB];
      if (prev !== NIL) L[prev * LINK + NEXT] = next;
      else if (next !== NIL) this.listHead[list] = next;
      else {
        this.listHead[list] = NIL;
        this.index[this.listKind[list]].delete(this.listName[list]!);
        this.listName[list] = undefined;
        this.freeLists.push(list);
      }
      if (next !== NIL) L[next * LINK + PREV] = prev;
      L[at + SIB] = this.freeLink;
      this.freeLink = l;
      l = sib;
    }
    this.firstLink[slot] = NIL;
    this.keys[slot] = undefined;
    this.octets[slot] = undefined;
    this.freeSlots[this.freeSlotCount++] = slot;
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
    for (const n of c.names) this.drop(NODE, n);
    for (const n of c.soa) {
      this.drop(SOA, n);
      this.drop(NONE, n);
      for (let a = parentOf(n); a !== undefined; a = parentOf(a)) this.drop(ZONE, a);
    }
    for (const n of c.zoneWide) {
      this.drop(NONE, n);
      for (let a: string | undefined = n; a !== undefined; a = parentOf(a)) this.drop(ZONE, a);
    }
    // RFC 9432 §4.1: the catalog lists the apexes; an SOA set or removed may add or remove one.
    if (this.catalog !== undefined && (c.soa.size || c.zoneWide.size)) this.drop(ZONE, this.catalog);
  }

  /** Drops everything. */
  clear(): void {
    this.stats.flushes++;
    this.lru.clear(); // releases every slot
  }

  /** Drops every answer on the list of `name` of `kind`. */
  private drop(kind: Kind, name: string): void {
    const list = this.index[kind].get(name);
    if (list === undefined) return;
    // Each answer dropped leaves the list (release), the last one frees it: its head is then NIL.
    for (let l = this.listHead[list]; l !== NIL; l = this.listHead[list]) {
      const key = this.keys[this.links[l * LINK + ANSWER]]!;
      if (!this.lru.delete(key)) throw new Error(`answer cache: the answer ${JSON.stringify(key)} is indexed but not kept`);
      this.stats.invalidated++;
    }
  }
}

/** The name one label up, or undefined at a top-level name. */
function parentOf(name: string): string | undefined {
  const dot = name.indexOf('.');
  return dot < 0 ? undefined : name.slice(dot + 1);
}
