/**
 * The entry store: rows of `entries`, `attr_index`, `changelog` and `meta`.
 *
 * It stores what the directory computed (normalised DN, path, index rows,
 * the change feed's rows) and knows nothing of LDAP semantics. Every write
 * runs inside `transaction`, which the directory's one write path opens.
 */
import type { Statement } from 'better-sqlite3';
import { openDatabase, openReadOnlyDatabase, StorageError, StoreFileGuard, type Db, type StoreFileState } from './db';
import { filterToSql, indexDriver, indexDriverText, type IndexDriver, type SqlCondition } from './filter-sql';
import type { Filter } from '../server/directory/filter';

/** Attribute values by canonical attribute name, as stored. */
export type AttrMap = Record<string, string[]>;

/** One entry row. */
export interface StoredEntry {
  id: number;
  dn: string;
  ndn: string;
  rpath: string;
  parentId: number | null;
  attrs: AttrMap;
}

/** One attribute-index row of an entry: lower-case attribute name and normalised value. */
export interface IndexRow {
  attr: string;
  norm: string;
}

/** One modification in the change feed: an RFC 4511 §4.6 operation (increment: RFC 4525) on one attribute. */
export interface FeedModification {
  op: 'add' | 'delete' | 'replace' | 'increment';
  /** The attribute's canonical name (the schema's first name for it). */
  type: string;
  /** Values in stored form, as in AttrMap (binary values as server/directory/entry.ts encodes them). */
  values: string[];
}

/** What every change carries besides its type and body. */
export interface ChangeHead {
  /** Position in the feed: increasing, never reused (draft-good-ldap-changelog §3 changeNumber). */
  changeNumber: number;
  /** GeneralizedTime of the change. */
  changeTime: string;
  /** The entry's DN when the change was made (before it, for modrdn), and its normalised form. */
  targetDN: string;
  targetNdn: string;
  /**
   * RFC 4530 entryUUID of the entry changed: for a delete, of the entry
   * deleted; for modrdn, of the entry renamed (the UUID never changes). Null
   * only on rows written before the feed carried UUIDs whose entry was gone
   * when the store was converted (migration 006).
   */
  entryUUID: string | null;
  /** DN of the writer. */
  actor: string | null;
  /**
   * The change's CSN (server/directory/csn.ts, migration 007): increases with
   * changeNumber; what Content Sync cookies and entryCSN carry.
   */
  csn: string;
}

/** The body of a change, by type. */
export type ChangeBody =
  /** The entry's user attributes as stored (operational ones — entryUUID, timestamps — are not repeated). */
  | { changeType: 'add'; attributes: AttrMap }
  | { changeType: 'delete' }
  /** The modifications in the order they were applied. */
  | { changeType: 'modify'; modifications: FeedModification[] }
  /** draft-good-ldap-changelog's newRDN / deleteOldRDN / newSuperior, and the normalised DN after the change. */
  | { changeType: 'modrdn'; newRDN: string; deleteOldRDN: boolean; newSuperior: string | null; newNdn: string };

/**
 * One change of the directory as the change feed delivers it: a change-log
 * row (draft-good-ldap-changelog §3) with the entry's UUID and its
 * modifications as data. This, not LDIF, is what views of the directory read
 * to stay in step (the routing table, the transfer unit's cache, Content
 * Sync); LDIF is made from it only where a change is shown (the `changes`
 * attribute of `changeNumber=N,cn=changelog`). Read it with `Store.changes`
 * or `ChangeFollower` (server/directory/changes.ts).
 */
export type ChangeRecord = ChangeHead & ChangeBody;

/** A change to append: a ChangeRecord before it has a number. */
export type NewChange = Omit<ChangeHead, 'changeNumber'> & ChangeBody;

/** A change-log row written before migration 006, still holding its modifications as LDIF (see convertLegacyChange). */
export interface LegacyChangeRow {
  changeNumber: number;
  changeType: ChangeRecord['changeType'];
  targetNdn: string;
  newNdn: string | null;
  /** The LDIF body: attribute lines for add, mod-specs for modify; empty for delete and modrdn. */
  ldif: string;
}

/** The body of an add or modify change, the types whose modifications are data. */
export type DataBody = Extract<ChangeBody, { changeType: 'add' | 'modify' }>;

/** One zone journal row: the records one serial change removed and added. */
export interface JournalRow {
  id: number;
  zone: string;
  serialFrom: number;
  serialTo: number;
  removed: string[];
  added: string[];
  changeNumber: number;
}

/**
 * Search scope, RFC 4511 §4.5.1.2, plus `children`: the subtree without its
 * base (draft-sermersheim-ldap-subordinate-scope, scope value 3).
 */
export type Scope = 'base' | 'one' | 'sub' | 'children';

export interface EntryQuery {
  /** The base entry (must exist). */
  base: { id: number; rpath: string };
  scope: Scope;
  filter: Filter;
  /** Only entries with an id above this (paging cursor). */
  afterId?: number;
}

interface EntryRow {
  id: number;
  dn: string;
  ndn: string;
  rpath: string;
  parent_id: number | null;
  attrs: string;
}

interface ChangeRow {
  change_number: number;
  change_time: string;
  target_dn: string;
  target_ndn: string;
  change_type: ChangeRecord['changeType'];
  entry_uuid: string | null;
  data: string | null;
  new_rdn: string | null;
  delete_old_rdn: number | null;
  new_superior: string | null;
  new_ndn: string | null;
  actor: string | null;
  csn: string;
}

/** The `data` column of a change (migration 006). */
function changeData(c: ChangeBody): string | null {
  if (c.changeType === 'add') return JSON.stringify({ attributes: c.attributes });
  if (c.changeType === 'modify') return JSON.stringify({ modifications: c.modifications });
  return null;
}

/** The body of a stored change row. */
function changeBody(r: ChangeRow): ChangeBody {
  const data = r.data === null ? {} : (JSON.parse(r.data) as { attributes?: AttrMap; modifications?: FeedModification[] });
  switch (r.change_type) {
    case 'add':
      return { changeType: 'add', attributes: data.attributes ?? {} };
    case 'modify':
      return { changeType: 'modify', modifications: data.modifications ?? [] };
    case 'delete':
      return { changeType: 'delete' };
    case 'modrdn':
      return {
        changeType: 'modrdn', newRDN: r.new_rdn ?? '', deleteOldRDN: r.delete_old_rdn === 1, newSuperior: r.new_superior,
        newNdn: r.new_ndn ?? r.target_ndn,
      };
  }
}

/** Separator after each RDN in `rpath`; the subtree upper bound uses the next code point. */
export const RPATH_SEP = '\u0001';
const RPATH_END = '\u0002';

/** The entries strictly below an rpath, parents before children (descendants, eachDescendant). */
const DESCENDANTS_SQL = 'SELECT id, dn, ndn, rpath, parent_id, attrs FROM entries WHERE rpath > ? AND rpath < ? ORDER BY rpath';

const STATEMENT_CACHE = 256;
/** Statements with more parameters than this (large filters) are prepared for one use, not cached. */
const LARGE_STATEMENT_PARAMS = 64;
/** Candidates of an index-driven search read at once before the rest are iterated (Store.candidates). */
const FIRST_BATCH = 32;

/** SQLite's refusal of a statement for its size: expression depth, parameters, parser stack, compound terms. */
function isLimitError(e: unknown): boolean {
  return e instanceof Error && (e as { code?: string }).code === 'SQLITE_ERROR' &&
    /too large|too many|stack overflow|recursion limit/i.test(e.message);
}

/** What the text of a candidate query depends on (its values are all bound parameters). */
interface CandidateShape {
  scope: Scope;
  /** Index names of the driving equality (indexDriverText); 0: no driver. */
  probeNames: number;
  /** The SQL of the rest of the filter ('1': none). */
  cond: string;
  /** With a lower bound on the id (a step resuming, a page after the first). */
  after: boolean;
  /** At most this many rows; 0: all. */
  batch: number;
}

/**
 * The candidate query of a shape. Its parameters, in order: the driver's
 * names and value (see indexDriverText), the scope's (the base's id, or its rpath and
 * subtreeEnd), the condition's, then the id to resume after.
 */
function candidateSql(s: CandidateShape): string {
  let sql = 'SELECT e.id, e.dn, e.ndn, e.rpath, e.parent_id, e.attrs FROM entries e WHERE ';
  if (s.probeNames) sql += `${indexDriverText(s.probeNames)} AND `;
  sql += SCOPE_SQL[s.scope];
  if (s.cond !== '1') sql += ` AND (${s.cond})`;
  if (s.after) sql += ' AND e.id > ?';
  return sql + (s.batch ? ` ORDER BY e.id LIMIT ${s.batch}` : ' ORDER BY e.id');
}

/** The condition of each scope on `entries e`. */
const SCOPE_SQL: Record<Scope, string> = {
  base: 'e.id = ?',
  one: 'e.parent_id = ?',
  sub: 'e.rpath >= ? AND e.rpath < ?',
  children: 'e.rpath > ? AND e.rpath < ?',
};

/**
 * The SQLite-backed store: one connection, used by one thread. The writer's
 * (`open`) migrates and writes; a reader's (`openReader`, any thread) only
 * reads, beside it.
 */
export class Store {
  private readonly stmts = new Map<string, Statement>();
  private readonly indexed: Set<string>;
  private readonly plans = new WeakMap<Filter, { driver: IndexDriver | undefined; cond: SqlCondition }>();
  private readonly candidateSqls = new Map<string, string>();

  /** Calls of `transaction` under way (nested ones included). */
  private transactions = 0;

  private constructor(readonly db: Db, indexed: Iterable<string>, private readonly guard?: StoreFileGuard, readonly readOnly = false) {
    this.indexed = new Set([...indexed].map((a) => a.toLowerCase()));
  }

  /**
   * Opens a reader of the store at `file` on a read-only connection of its
   * own (openReadOnlyDatabase: no migration, no write). `indexed` must be
   * the set the writer indexed the file with (the `indexed` meta key):
   * queries are planned by it. Its fileState watches the file it opened, as
   * the writer's does (a serving thread refuses mail while it is removed or
   * replaced).
   */
  static openReader(file: string, indexed: Iterable<string>): Store {
    return new Store(openReadOnlyDatabase(file), indexed, file === ':memory:' ? undefined : new StoreFileGuard(file), true);
  }

  /**
   * Opens the store at `file` (':memory:' for tests). `indexed` is the set of
   * attribute names (lower-case canonical) to index; when it differs from the
   * set the file was indexed with, the caller must `reindex`.
   */
  static open(file: string, indexed: Iterable<string>): Store {
    const db = openDatabase(file);
    return new Store(db, indexed, file === ':memory:' ? undefined : new StoreFileGuard(file));
  }

  /** Whether the store's path still names the open file (StoreFileGuard), checked now; always ok in memory. */
  fileState(): StoreFileState {
    return this.guard?.check() ?? 'ok';
  }

  /** Calls `listener` at each change of fileState (checked by fileState and before every write). */
  onFileState(listener: (state: StoreFileState, previous: StoreFileState) => void): () => void {
    return this.guard?.onChange(listener) ?? (() => undefined);
  }

  /** The indexed attribute names (lower-case). */
  get indexedAttributes(): ReadonlySet<string> {
    return this.indexed;
  }

  /**
   * Frees what this connection's page cache holds (PRAGMA shrink_memory,
   * https://sqlite.org/pragma.html#pragma_shrink_memory): after a scan that
   * read the whole store once (the compiled zones' build), whose pages the
   * next reads need not find cached (the file system cache still has them).
   * Nothing is written; later reads fill the cache again as they need.
   */
  releaseCache(): void {
    this.db.pragma('shrink_memory');
  }

  close(): void {
    this.stmts.clear();
    if (this.db.open) this.db.close();
  }

  private stmt(sql: string): Statement {
    let s = this.stmts.get(sql);
    if (!s) {
      if (this.stmts.size >= STATEMENT_CACHE) this.stmts.delete(this.stmts.keys().next().value!);
      s = this.db.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  /**
   * Runs `fn` in one IMMEDIATE transaction (nested calls become savepoints).
   * Throws StoreFileError, writing nothing, when the store's file was removed
   * or replaced.
   */
  transaction<T>(fn: () => T): T {
    if (this.readOnly) throw new StorageError('a write transaction on a read-only store connection');
    this.transactions++;
    try {
      if (this.db.inTransaction) return this.db.transaction(fn)();
      this.guard?.assertWritable();
      return this.db.transaction(fn).immediate();
    } finally {
      this.transactions--;
    }
  }

  /**
   * Whether a transaction of this connection (`transaction`) is under way:
   * counted here, so that a reader that asks on every DNS query (zones.ts)
   * makes no call into SQLite.
   */
  get inTransaction(): boolean {
    return this.transactions > 0;
  }

  private static toEntry(r: EntryRow): StoredEntry {
    return { id: r.id, dn: r.dn, ndn: r.ndn, rpath: r.rpath, parentId: r.parent_id, attrs: JSON.parse(r.attrs) as AttrMap };
  }

  /** The entry with this normalised DN. */
  getByNdn(ndn: string): StoredEntry | undefined {
    const r = this.stmt('SELECT id, dn, ndn, rpath, parent_id, attrs FROM entries WHERE ndn = ?').get(ndn) as EntryRow | undefined;
    return r && Store.toEntry(r);
  }

  /** The entry whose RFC 4530 entryUUID is `uuid` (index of migration 007). */
  getByUuid(uuid: string): StoredEntry | undefined {
    const r = this.stmt("SELECT id, dn, ndn, rpath, parent_id, attrs FROM entries WHERE json_extract(attrs, '$.entryUUID[0]') = ?")
      .get(uuid) as EntryRow | undefined;
    return r && Store.toEntry(r);
  }

  getById(id: number): StoredEntry | undefined {
    const r = this.stmt('SELECT id, dn, ndn, rpath, parent_id, attrs FROM entries WHERE id = ?').get(id) as EntryRow | undefined;
    return r && Store.toEntry(r);
  }

  /** True when the entry has at least one child. */
  hasChildren(id: number): boolean {
    return this.stmt('SELECT 1 FROM entries WHERE parent_id = ? LIMIT 1').get(id) !== undefined;
  }

  /** Number of entries in the store. */
  count(): number {
    return (this.stmt('SELECT count(*) AS n FROM entries').get() as { n: number }).n;
  }

  /** Inserts an entry with its index rows; returns its id. */
  insert(e: Omit<StoredEntry, 'id'>, index: IndexRow[]): number {
    const info = this.stmt('INSERT INTO entries (dn, ndn, rpath, parent_id, attrs) VALUES (?, ?, ?, ?, ?)').run(
      e.dn, e.ndn, e.rpath, e.parentId, JSON.stringify(e.attrs));
    const id = Number(info.lastInsertRowid);
    this.writeIndex(id, index);
    return id;
  }

  /** Replaces an entry's attributes and index rows. */
  updateAttrs(id: number, attrs: AttrMap, index: IndexRow[]): void {
    this.stmt('UPDATE entries SET attrs = ? WHERE id = ?').run(JSON.stringify(attrs), id);
    this.stmt('DELETE FROM attr_index WHERE entry_id = ?').run(id);
    this.writeIndex(id, index);
  }

  /**
   * Sets the entryCSN of every entry to `csn` (one statement; the index is
   * the caller's business when entryCSN is indexed). Returns the entries.
   */
  setEveryEntryCsn(csn: string): number {
    return this.stmt(`UPDATE entries SET attrs = json_set(attrs, '$.entryCSN', json_array(?))`).run(csn).changes;
  }

  /** Moves or renames one entry (its descendants are moved with `moveSubtree`). */
  rename(id: number, dn: string, ndn: string, rpath: string, parentId: number | null): void {
    this.stmt('UPDATE entries SET dn = ?, ndn = ?, rpath = ?, parent_id = ? WHERE id = ?').run(dn, ndn, rpath, parentId, id);
  }

  /** Descendants of an entry (not the entry itself), parents before children. */
  descendants(rpath: string): StoredEntry[] {
    const rows = this.stmt(DESCENDANTS_SQL).all(rpath, subtreeEnd(rpath)) as EntryRow[];
    return rows.map(Store.toEntry);
  }

  /**
   * The entries below `rpath`, as {@link descendants}, read one at a time:
   * for a caller that keeps little of each (the compiled zones read the
   * whole DC tree at start), no array of every row and entry lives through
   * the young generation's collections into the old one, to be garbage
   * there. A statement of its own (a scan is rare; its preparation costs
   * nothing beside it), so that the caller may read the store meanwhile,
   * descendants included; it must not write until the iteration ends.
   */
  *eachDescendant(rpath: string): Generator<StoredEntry> {
    for (const r of this.db.prepare(DESCENDANTS_SQL).iterate(rpath, subtreeEnd(rpath)) as IterableIterator<EntryRow>) yield Store.toEntry(r);
  }

  /** Deletes an entry and its index rows. */
  delete(id: number): void {
    this.stmt('DELETE FROM attr_index WHERE entry_id = ?').run(id);
    this.stmt('DELETE FROM entries WHERE id = ?').run(id);
  }

  private writeIndex(id: number, index: IndexRow[]): void {
    const ins = this.stmt('INSERT OR IGNORE INTO attr_index (attr, norm, entry_id) VALUES (?, ?, ?)');
    for (const r of index) if (this.indexed.has(r.attr)) ins.run(r.attr, r.norm, id);
  }

  /**
   * Candidate entries for a search, in id order: the scope condition and the
   * SQL-compilable part of the filter. The caller evaluates the full filter.
   */
  *candidates(q: EntryQuery): Generator<StoredEntry> {
    const { driver, cond } = this.plan(q.filter);
    const params: (string | number)[] = driver ? [...driver.names, driver.norm] : [];
    if (q.scope === 'base' || q.scope === 'one') params.push(q.base.id);
    else params.push(q.base.rpath, subtreeEnd(q.base.rpath));
    let c: { sql: string; params: string[] } = cond;
    /** The statement for the candidates above `afterId`, at most `batch` of them (all without). */
    const prepared = (afterId: number | undefined, batch?: number): [Statement, (string | number)[]] => {
      const all = [...params];
      for (const v of c.params) all.push(v);
      if (afterId !== undefined) all.push(afterId);
      const shape: CandidateShape = { scope: q.scope, probeNames: driver?.names.length ?? 0, cond: c.sql, after: afterId !== undefined, batch: batch ?? 0 };
      try {
        // A statement for a large filter is used once: it does not take a place in the cache.
        return [all.length > LARGE_STATEMENT_PARAMS ? this.db.prepare(candidateSql(shape)) : this.stmt(this.candidateSql(shape)), all];
      } catch (e) {
        // filterToSql keeps within SQLite's limits; should one still be hit, the
        // scope alone gives the candidates (a superset, the caller evaluates the filter).
        if (c.sql === '1' || !isLimitError(e)) throw e;
        c = { sql: '1', params: [] };
        return prepared(afterId, batch);
      }
    };
    let afterId = q.afterId;
    if (driver) {
      // An indexed equality finds few entries, as a rule: the first FIRST_BATCH are read in one call, which
      // costs less than an iterator (its set-up is a third of such a search's query); the rest, if any, follow.
      const [stmt, all] = prepared(afterId, FIRST_BATCH);
      const rows = stmt.all(...all) as EntryRow[];
      for (const r of rows) yield Store.toEntry(r);
      if (rows.length < FIRST_BATCH) return;
      afterId = rows[rows.length - 1].id;
    }
    const [stmt, all] = prepared(afterId);
    for (const r of stmt.iterate(...all) as IterableIterator<EntryRow>) yield Store.toEntry(r);
  }

  /**
   * The indexed equality that would drive a search of `filter` from the
   * index (indexDriver: `mail=x` alone or a term of an AND), if any.
   */
  indexDriverOf(filter: Filter): IndexDriver | undefined {
    return this.plans.get(filter)?.driver ?? indexDriver(filter, this.indexed);
  }

  /**
   * The entries with an index row of one of `names` (an attribute and its
   * subtypes, as IndexDriver.names) holding the normalised value `norm`, in
   * id order, at most `limit` of them: one statement, the index probe then
   * the rows by id (indexDriverText).
   */
  equalityEntries(names: readonly string[], norm: string, limit: number): StoredEntry[] {
    const sql = `SELECT e.id, e.dn, e.ndn, e.rpath, e.parent_id, e.attrs FROM entries e WHERE ${indexDriverText(names.length)} ORDER BY e.id LIMIT ${limit}`;
    return (this.stmt(sql).all(...names, norm) as EntryRow[]).map(Store.toEntry);
  }

  /** How a filter is looked up: made once per compiled filter (a search run in steps asks again at each step). */
  private plan(filter: Filter): { driver: IndexDriver | undefined; cond: SqlCondition } {
    let p = this.plans.get(filter);
    if (!p) {
      const driver = indexDriver(filter, this.indexed);
      p = { driver, cond: filterToSql(driver ? driver.rest ?? { type: 'const', value: true } : filter, this.indexed) };
      this.plans.set(filter, p);
    }
    return p;
  }

  /**
   * candidateSql(shape), kept by shape: each search builds its own plan, but
   * the text of its query is one of a few, and the string kept finds its
   * statement (stmt) without being built and hashed again.
   */
  private candidateSql(shape: CandidateShape): string {
    const key = `${shape.scope} ${shape.probeNames} ${shape.after ? 1 : 0} ${shape.batch} ${shape.cond}`;
    let sql = this.candidateSqls.get(key);
    if (sql === undefined) {
      sql = candidateSql(shape);
      if (this.candidateSqls.size >= STATEMENT_CACHE) this.candidateSqls.clear();
      this.candidateSqls.set(key, sql);
    }
    return sql;
  }

  /** Appends a change log row; returns its change number. */
  appendChange(c: NewChange): number {
    const rdn = c.changeType === 'modrdn' ? c : undefined;
    const info = this.stmt(
      `INSERT INTO changelog (change_time, target_dn, target_ndn, change_type, entry_uuid, data, new_rdn, delete_old_rdn, new_superior, new_ndn, actor, csn)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(c.changeTime, c.targetDN, c.targetNdn, c.changeType, c.entryUUID, changeData(c), rdn?.newRDN ?? null,
      rdn ? (rdn.deleteOldRDN ? 1 : 0) : null, rdn?.newSuperior ?? null, rdn?.newNdn ?? null, c.actor, c.csn);
    return Number(info.lastInsertRowid);
  }

  /** True when rows written before migration 006 remain to be converted. */
  hasLegacyChanges(): boolean {
    return this.stmt('SELECT 1 FROM changelog WHERE changes IS NOT NULL LIMIT 1').get() !== undefined;
  }

  /** Rows written before migration 006 and not yet converted, newest first. */
  legacyChanges(): LegacyChangeRow[] {
    const rows = this.stmt(
      'SELECT change_number, change_type, target_ndn, new_ndn, changes FROM changelog WHERE changes IS NOT NULL ORDER BY change_number DESC',
    ).all() as { change_number: number; change_type: ChangeRecord['changeType']; target_ndn: string; new_ndn: string | null; changes: string }[];
    return rows.map((r) => ({ changeNumber: r.change_number, changeType: r.change_type, targetNdn: r.target_ndn, newNdn: r.new_ndn, ldif: r.changes }));
  }

  /**
   * Completes a row written before migration 006: its entry's UUID and, for
   * an add or modify, its modifications as data (`body`, of the row's own
   * type); the LDIF it held is dropped.
   */
  convertLegacyChange(changeNumber: number, entryUUID: string | null, body?: DataBody): void {
    this.stmt('UPDATE changelog SET entry_uuid = ?, data = ?, changes = NULL WHERE change_number = ?')
      .run(entryUUID, body ? changeData(body) : null, changeNumber);
  }

  /** First and last change numbers held (0, 0 when the log is empty). */
  changeRange(): { first: number; last: number } {
    // Two subqueries: SQLite answers a lone min() or max() from the primary key, but scans for both in one SELECT.
    const r = this.stmt('SELECT (SELECT min(change_number) FROM changelog) AS first, (SELECT max(change_number) FROM changelog) AS last').get() as {
      first: number | null; last: number | null;
    };
    return { first: r.first ?? 0, last: r.last ?? 0 };
  }

  /** The number and CSN of the newest change held (undefined when the log is empty). */
  lastChange(): { changeNumber: number; csn: string } | undefined {
    const r = this.stmt('SELECT change_number, csn FROM changelog ORDER BY change_number DESC LIMIT 1').get() as
      { change_number: number; csn: string } | undefined;
    return r && { changeNumber: r.change_number, csn: r.csn };
  }

  /** The number of the change whose CSN is `csn`, if the log still holds it. */
  changeNumberOfCsn(csn: string): number | undefined {
    const r = this.stmt('SELECT change_number FROM changelog WHERE csn = ?').get(csn) as { change_number: number } | undefined;
    return r?.change_number;
  }

  /** The change feed: change log rows with `from <= changeNumber <= to`, ascending. */
  *changes(from: number, to = Number.MAX_SAFE_INTEGER): Generator<ChangeRecord> {
    const rows = this.stmt(
      `SELECT change_number, change_time, target_dn, target_ndn, change_type, entry_uuid, data, new_rdn, delete_old_rdn, new_superior, new_ndn, actor, csn
       FROM changelog WHERE change_number >= ? AND change_number <= ? ORDER BY change_number`)
      .iterate(from, to) as IterableIterator<ChangeRow>;
    for (const r of rows) {
      yield {
        changeNumber: r.change_number,
        changeTime: r.change_time,
        targetDN: r.target_dn,
        targetNdn: r.target_ndn,
        entryUUID: r.entry_uuid,
        actor: r.actor,
        csn: r.csn,
        ...changeBody(r),
      };
    }
  }

  /** Appends a zone journal row (see migration 002). */
  appendJournal(j: Omit<JournalRow, 'id'>): void {
    this.stmt('INSERT INTO zone_journal (zone, serial_from, serial_to, removed, added, change_number) VALUES (?, ?, ?, ?, ?, ?)')
      .run(j.zone, j.serialFrom, j.serialTo, JSON.stringify(j.removed), JSON.stringify(j.added), j.changeNumber);
  }

  /** Journal rows of a zone, oldest first. */
  journal(zone: string): JournalRow[] {
    const rows = this.stmt('SELECT id, serial_from, serial_to, removed, added, change_number FROM zone_journal WHERE zone = ? ORDER BY id')
      .all(zone) as { id: number; serial_from: number; serial_to: number; removed: string; added: string; change_number: number }[];
    return rows.map((r) => ({
      id: r.id, zone, serialFrom: r.serial_from, serialTo: r.serial_to, removed: JSON.parse(r.removed) as string[],
      added: JSON.parse(r.added) as string[], changeNumber: r.change_number,
    }));
  }

  /**
   * Deletes the oldest change-log rows so that the newest `keep` remain, at
   * most `batch` rows per call (one short transaction). Returns how many went.
   * AUTOINCREMENT keeps numbers from being reused (migration 001).
   */
  trimChangelog(keep: number, batch = 10_000): number {
    const { last } = this.changeRange();
    return this.transaction(() => this.stmt(
      'DELETE FROM changelog WHERE change_number IN (SELECT change_number FROM changelog WHERE change_number <= ? ORDER BY change_number LIMIT ?)',
    ).run(last - keep, batch).changes);
  }

  /**
   * Keeps the newest `keep` journal rows of each zone (an IXFR from further
   * back gets the whole zone, RFC 1995 §4), at most `batch` rows per call.
   */
  trimJournal(keep: number, batch = 10_000): number {
    return this.transaction(() => this.stmt(
      `DELETE FROM zone_journal WHERE id IN (
         SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY zone ORDER BY id DESC) AS rn FROM zone_journal) WHERE rn > ? LIMIT ?)`,
    ).run(keep, batch).changes);
  }

  /** Number of journal rows held (all zones). */
  journalSize(): number {
    return this.stmt('SELECT count(*) FROM zone_journal').pluck().get() as number;
  }

  /** Forgets a zone's journal (the zone was created, removed or rebuilt: only full transfers make sense). */
  dropJournal(zone: string): void {
    this.stmt('DELETE FROM zone_journal WHERE zone = ?').run(zone);
  }

  /**
   * A counter that changes whenever ANOTHER connection (another process, e.g.
   * the CLI) commits to the file (https://sqlite.org/pragma.html#pragma_data_version).
   * The writer's watch of other processes' commits reads it
   * (server/directory/writes.ts watchOtherWriters); readers follow the
   * change clock instead.
   */
  dataVersion(): number {
    return this.stmt('PRAGMA data_version').pluck().get() as number;
  }

  /**
   * Calls `onCommit` within `everyMs` of each commit another connection
   * (another process: the `dcmx` CLI) makes to the file, by comparing
   * dataVersion every `everyMs` (one cheap query a tick when nothing
   * happened; nothing once the store is closed). Returns the stop.
   */
  watchOtherCommits(everyMs: number, onCommit: () => void): () => void {
    let seen = this.dataVersion();
    const timer = setInterval(() => {
      if (!this.db.open) return;
      const v = this.dataVersion();
      if (v === seen) return;
      seen = v;
      onCommit();
    }, everyMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  getMeta(key: string): string | undefined {
    return (this.stmt('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
  }

  setMeta(key: string, value: string): void {
    this.stmt('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  /**
   * Rebuilds the attribute index with `rowsOf` for every entry, in one
   * transaction. Used when the indexed set changes.
   */
  reindex(rowsOf: (e: StoredEntry) => IndexRow[]): void {
    this.transaction(() => {
      this.db.exec('DELETE FROM attr_index');
      const all = (this.stmt('SELECT id, dn, ndn, rpath, parent_id, attrs FROM entries').all() as EntryRow[]).map(Store.toEntry);
      for (const e of all) this.writeIndex(e.id, rowsOf(e));
    });
  }
}

/** Exclusive upper bound of the rpath range of a subtree. */
export function subtreeEnd(rpath: string): string {
  return rpath.slice(0, -1) + RPATH_END;
}
