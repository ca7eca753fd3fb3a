/**
 * What the search path keeps of the store between searches: for an indexed
 * equality (`mail=x`), the ids of the entries whose index rows hold the
 * value, and those entries by id; so that a search that finds few entries
 * asks SQLite nothing (each statement is a read transaction of its own,
 * with its locks: most of such a search's cost).
 *
 * A cache of the store like the other views of the directory, it follows the
 * change log (ChangeFollower, on this thread's Directory.sync):
 * - a change forgets the entry it targets;
 * - an add, and a modify, forget the id lists of every value the entry now
 *   holds in an indexed attribute (an add's from its attributes, a modify's
 *   from the entry as it is now), so that a list never misses an entry
 *   that has its value; a list may keep an id whose entry lost the value or
 *   is gone, since every candidate is judged on the entry as it is (the
 *   caller evaluates the whole filter, and an id without an entry makes the
 *   list be read again);
 * - a rename (which moves a subtree and changes RDN values) or a gap in the
 *   log forgets everything.
 * Only equalities on user attributes are kept: the operational ones
 * (modifyTimestamp...) change with every write without the change saying so. Since every door syncs before it answers, a
 * search issued after a write's reply, on whatever thread, reads the entry
 * as the write left it. The directory asks it only when this thread's views
 * are in step with the change clock and no write transaction is open
 * (Directory.startSearch), and reads the store directly otherwise.
 *
 * It holds the stored entries only: who may read which of them, and what a
 * filter may test, is decided per search as for an entry read from the
 * store (AccessPolicy), so no identity's view is kept here.
 */
import type { AttrMap, EntryQuery, Store, StoredEntry } from '../../storage/store';
import { ChangeFollower, type ChangeRecord } from './changes';
import type { Directory, SearchEntry } from './directory';
import { indexRows, type DirEntry } from './entry';
import type { AttributeType } from '../../schema/registry';

/** Entries kept, and id lists kept, at most each (the oldest go first). */
export const SEARCH_CACHE_ENTRIES = 16_384;

/** Result forms kept per entry, at most (a few identities' and requests' forms, as a rule). */
const VIEWS_PER_ENTRY = 8;

/** An id list standing for more than DRIVEN_MAX ids: such a search reads the store. */
const MANY: readonly number[] = Object.freeze([]);

/** An index-driven search finding more entries than this reads the store directly (Store.candidates). */
const DRIVEN_MAX = 32;

export class SearchCache {
  private readonly entries = new Map<number, StoredEntry>();
  /** The id of each entry kept, by normalised DN: what a change names. */
  private readonly idOfNdn = new Map<string, number>();
  /** Ids of the entries with an index row at a value (idKey), ascending, or MANY. */
  private readonly idLists = new Map<string, readonly number[]>();
  /** The id lists searched once since the doorkeeper was last cleared (driven). */
  private readonly seen = new Set<string>();
  /** The index names of the drivers of more than one name (an attribute and its subtypes) whose lists are kept, by their idKey prefix. */
  private readonly multiNames = new Map<string, readonly string[]>();
  /** Whether equalities on these index names are kept (user attributes only), by names joined. */
  private readonly keptNames = new Map<string, boolean>();
  /** The result forms of the entries kept (view), by entry id, then by hidden set and request (viewKey). */
  private readonly views = new Map<number, Map<string, SearchEntry>>();
  /** A number for each set of hidden attributes (AccessPolicy.hiddenAttributes gives one of a few). */
  private readonly hiddenIds = new Map<ReadonlySet<AttributeType> | undefined, number>();
  private follower: ChangeFollower | undefined;

  constructor(private readonly store: Store, private readonly directory: Directory, private readonly max = SEARCH_CACHE_ENTRIES) {}

  /**
   * The candidates of an index-driven query (an indexed equality alone or
   * in an AND: Store.indexDriverOf), in id order, when it finds at most
   * DRIVEN_MAX entries: the entries in the query's scope, and above its
   * `afterId`, whose index rows hold the driving value. The rest of the
   * filter is the caller's to evaluate, as for Store.candidates. Undefined
   * when the query has no index driver or finds more, and, once the cache
   * is full, at the first search for a value (it is kept from the second
   * on): read them with Store.candidates.
   */
  driven(q: EntryQuery): StoredEntry[] | undefined {
    const driver = this.store.indexDriverOf(q.filter);
    if (!driver) return undefined;
    this.follow();
    const prefix = driver.names.length === 1 ? driver.names[0] : driver.names.join(',');
    const key = idKey(prefix, driver.norm);
    const keep = this.keeps(prefix, driver.names);
    let ids = keep ? this.idLists.get(key) : undefined;
    if (!ids && keep && this.idLists.size >= this.max && !this.seen.has(key)) {
      // Once full, a doorkeeper (as in TinyLFU): a value is kept at its second search, so that values
      // searched once (more of them than the cache holds) do not pay for keeping what is not asked again.
      if (this.seen.size >= 2 * this.max) this.seen.clear();
      this.seen.add(key);
      return undefined;
    }
    if (!ids) {
      // One statement gives the ids and the entries (those kept already are kept as they are: they follow the log).
      const read = this.store.equalityEntries(driver.names, driver.norm, DRIVEN_MAX + 1);
      ids = read.length > DRIVEN_MAX ? MANY : Object.freeze(read.map((e) => this.keep(e).id));
      if (keep) {
        if (this.idLists.size >= this.max) this.idLists.delete(this.idLists.keys().next().value!);
        this.idLists.set(key, ids);
      }
    }
    if (ids === MANY) return undefined;
    const out: StoredEntry[] = [];
    for (const id of ids) {
      if (q.afterId !== undefined && id <= q.afterId) continue;
      const e = this.entry(id);
      // Gone since the list was read: read it again next time.
      if (!e) this.idLists.delete(key);
      else if (inScope(e, q)) out.push(e);
    }
    return out;
  }

  /**
   * The result form of entry `e` for a search (Directory.prepare's view):
   * `make(e)` made once and kept (frozen, `kept` set) while `e` is the
   * entry kept for its id, for each set of attributes hidden from the
   * searcher and each request (`viewKey`: the attributes asked for and
   * typesOnly); for another entry (one read from the store), made afresh.
   * `make` must depend on nothing else: not on who asks besides `hidden`,
   * nor on other entries (hasSubordinates).
   */
  view(e: DirEntry, hidden: ReadonlySet<AttributeType> | undefined, viewKey: string, make: (e: DirEntry) => SearchEntry): SearchEntry {
    if (e.id <= 0 || this.entries.get(e.id) !== e) return make(e);
    let hiddenId = this.hiddenIds.get(hidden);
    if (hiddenId === undefined) {
      hiddenId = this.hiddenIds.size;
      this.hiddenIds.set(hidden, hiddenId);
    }
    const key = `${hiddenId} ${viewKey}`;
    let byKey = this.views.get(e.id);
    let v = byKey?.get(key);
    if (v) return v;
    v = make(e);
    for (const pair of v.attrs) Object.freeze(pair);
    Object.freeze(v.attrs);
    v.kept = true;
    Object.freeze(v);
    if (!byKey) {
      byKey = new Map();
      this.views.set(e.id, byKey);
    }
    if (byKey.size < VIEWS_PER_ENTRY) byKey.set(key, v);
    return v;
  }

  /** Whether the lists of a driver of these index names are kept: user attributes only (see the module comment). */
  private keeps(prefix: string, names: readonly string[]): boolean {
    let kept = this.keptNames.get(prefix);
    if (kept === undefined) {
      kept = names.every((n) => this.directory.schema.attr(n)?.operational === false);
      this.keptNames.set(prefix, kept);
      if (kept && names.length > 1) this.multiNames.set(prefix, names);
    }
    return kept;
  }

  /** Entries and id lists kept now (for tests). */
  get size(): { entries: number; idLists: number } {
    return { entries: this.entries.size, idLists: this.idLists.size };
  }

  /** The entry with this id, kept or read from the store (and then kept). Shared: frozen. */
  private entry(id: number): StoredEntry | undefined {
    const e = this.entries.get(id);
    if (e) return e;
    const read = this.store.getById(id);
    return read && this.keep(read);
  }

  /** The entry kept for `e`'s id: the one kept already, else `e` (then frozen and kept). */
  private keep(e: StoredEntry): StoredEntry {
    const had = this.entries.get(e.id);
    if (had) return had;
    for (const k of Object.keys(e.attrs)) Object.freeze(e.attrs[k]);
    Object.freeze(e.attrs);
    Object.freeze(e);
    if (this.entries.size >= this.max) this.evictOldest();
    this.entries.set(e.id, e);
    this.idOfNdn.set(e.ndn, e.id);
    return e;
  }

  private evictOldest(): void {
    const first = this.entries.values().next().value;
    if (!first) return;
    this.entries.delete(first.id);
    this.idOfNdn.delete(first.ndn);
    this.views.delete(first.id);
  }

  /** Starts following the change log at the first use (a thread that never searches pays nothing per write). */
  private follow(): void {
    if (this.follower) return;
    this.follower = new ChangeFollower(this.directory, {
      onChanges: (rows) => this.forget(rows),
      onGap: () => this.clear(),
    });
  }

  private forget(rows: ChangeRecord[]): void {
    for (const c of rows) {
      if (c.changeType === 'modrdn') {
        // A rename changes the DN and rpath of every entry below it, and the RDN's values.
        this.clear();
        return;
      }
      const id = this.idOfNdn.get(c.targetNdn);
      if (id !== undefined) {
        this.entries.delete(id);
        this.idOfNdn.delete(c.targetNdn);
        this.views.delete(id);
      }
      if (this.idLists.size === 0) continue;
      if (c.changeType === 'add') this.forgetValues(c.attributes);
      else if (c.changeType === 'modify') {
        // The entry as it is now (this change or a later one): every value it holds, however it came.
        const now = this.store.getByNdn(c.targetNdn);
        if (now) this.forgetValues(now.attrs);
      }
    }
  }

  /** Forgets the id lists of the indexed values of `attrs`. */
  private forgetValues(attrs: AttrMap): void {
    for (const row of indexRows(this.directory.schema, attrs, this.store.indexedAttributes)) {
      this.idLists.delete(idKey(row.attr, row.norm));
      for (const [prefix, names] of this.multiNames) if (names.includes(row.attr)) this.idLists.delete(idKey(prefix, row.norm));
    }
  }

  /** Forgets everything kept (a gap in the change log does; tests that watch the store's queries too). */
  clear(): void {
    this.entries.clear();
    this.idOfNdn.clear();
    this.idLists.clear();
    this.views.clear();
  }
}

/** The key of an id list: the driver's index names (joined) and value. */
function idKey(prefix: string, norm: string): string {
  return `${prefix}\u0000${norm}`;
}

/** Whether `e` is within the query's base and scope (the store's condition: SCOPE_SQL). */
function inScope(e: StoredEntry, q: EntryQuery): boolean {
  switch (q.scope) {
    case 'base':
      return e.id === q.base.id;
    case 'one':
      return e.parentId === q.base.id;
    case 'sub':
      return e.rpath.startsWith(q.base.rpath);
    case 'children':
      return e.id !== q.base.id && e.rpath.startsWith(q.base.rpath);
  }
}
