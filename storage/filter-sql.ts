/**
 * Turns a compiled directory filter into a SQL condition on `entries e`, with
 * bound parameters only. Where the attribute index can answer a clause the
 * condition is exact; elsewhere it widens to "any entry" and the directory
 * evaluates the filter in code on the candidates (it always does, so a
 * superset is always safe).
 */
import type { Filter } from '../server/directory/filter';
import type { AttributeType } from '../schema/registry';

/** A SQL condition and its parameters. `exact` means no false positives. */
export interface SqlCondition {
  sql: string;
  params: string[];
  exact: boolean;
}

/**
 * Bound parameters a condition may carry. SQLite refuses a statement with
 * more than SQLITE_MAX_VARIABLE_NUMBER (32766 since 3.32); the scope and the
 * paging cursor of the candidate query need a few more.
 */
export const MAX_SQL_PARAMS = 30_000;

/**
 * Index scans a condition may hold: a substring (GLOB) or presence test is a
 * scan of the attribute's index rows, which SQLite runs to completion in one
 * call, however long it takes (a filter of 14,000 substring terms over 2,000
 * entries held the event loop for 25 s). Past this many, the filter is left
 * to the directory's code, which can yield between candidates. Equalities
 * are index lookups (one probe per value) and do not count.
 */
export const MAX_SQL_SCANS = 8;

/**
 * Nesting a condition may reach, in expression-tree levels. SQLite refuses
 * trees deeper than SQLITE_MAX_EXPR_DEPTH (1000); this keeps well clear of
 * it whatever the estimate below misses.
 */
export const MAX_SQL_DEPTH = 200;

/** A condition being built, with its estimated expression-tree depth and the index scans it holds. */
interface Part extends SqlCondition {
  depth: number;
  scans: number;
}

/** What a condition may still use: bound parameters and index scans. */
interface Budget {
  params: number;
  scans: number;
}

const ANY: Part = { sql: '1', params: [], exact: false, depth: 1, scans: 0 };
const TRUE_SQL: Part = { sql: '1', params: [], exact: true, depth: 1, scans: 0 };
const FALSE_SQL: Part = { sql: '0', params: [], exact: true, depth: 1, scans: 0 };
// SQL's NULL follows the same three-valued logic as RFC 4511 §4.5.1.7
// (NOT NULL is NULL, NULL AND 0 is 0, NULL OR 1 is 1) and WHERE keeps only true rows.
const NULL_SQL: Part = { sql: 'NULL', params: [], exact: true, depth: 1, scans: 0 };

/** Depth of `e.id IN (SELECT entry_id FROM attr_index WHERE attr ... AND norm ...)`. */
const LEAF_DEPTH = 5;

/** Longest `norm IN (?, ?, ...)` list; longer ones are one JSON array parameter read with json_each. */
const IN_LIST_MAX = 256;

/** Up to this many terms are joined flat (`a OR b OR c`, which SQLite nests left-deep); more are split in halves. */
const FLAT_JOIN = 8;

/**
 * Compiles `f` for the given set of indexed attribute names (lower-case).
 * Returns a condition that is true for at least every matching entry, with
 * at most MAX_SQL_PARAMS parameters, MAX_SQL_SCANS index scans and a tree
 * SQLite accepts: an OR of
 * equalities on one attribute becomes one `norm IN (...)` probe, longer
 * AND/OR chains are joined as balanced trees, and what is still too deep or
 * too large or too costly widens (to "any entry" inside an OR or NOT, to
 * nothing inside an AND), for the caller to evaluate in code.
 */
export function filterToSql(f: Filter, indexed: ReadonlySet<string>): SqlCondition {
  const { sql, params, exact } = compile(f, indexed, { params: MAX_SQL_PARAMS, scans: MAX_SQL_SCANS });
  return { sql, params, exact };
}

/**
 * `filterToSql` within a budget: the result never carries more parameters or
 * index scans than `budget` allows. `level` is the nesting of `f` in the
 * whole filter: below MAX_SQL_DEPTH levels nothing could fit in the tree
 * SQLite accepts, so the rest is left to the code without being looked at.
 */
function compile(f: Filter, indexed: ReadonlySet<string>, budget: Budget, level = 0): Part {
  if (level > MAX_SQL_DEPTH) return ANY;
  const p = compileNode(f, indexed, budget, level + 1);
  return p.depth > MAX_SQL_DEPTH || p.params.length > budget.params || p.scans > budget.scans ? ANY : p;
}

/** What is left of `b` once `p` is spent. */
const spend = (b: Budget, p: Part): Budget => ({ params: b.params - p.params.length, scans: b.scans - p.scans });

function compileNode(f: Filter, indexed: ReadonlySet<string>, budget: Budget, level: number): Part {
  switch (f.type) {
    case 'const':
      return f.value ? TRUE_SQL : FALSE_SQL;
    case 'undefined':
      return NULL_SQL;
    case 'and': {
      // Every term that does not fit (too deep, too many parameters) is left to the code.
      let exact = true;
      let left = budget;
      const narrowing: Part[] = [];
      for (const s of f.filters) {
        const p = compile(s, indexed, left, level);
        exact &&= p.exact;
        if (p.sql === '1') continue;
        narrowing.push(p);
        left = spend(left, p);
      }
      if (narrowing.length === 0) return exact ? TRUE_SQL : ANY;
      return { ...join(narrowing, 'AND'), exact };
    }
    case 'or': {
      // The equalities on one indexed attribute (and its subtypes) become one
      // index probe per value: `attr = ? AND norm IN (?, ?, ...)`.
      const groups = new Map<AttributeType, { names: string[]; norms: Set<string>; at: number } | undefined>();
      const rest: { f: Filter; at: number }[] = [];
      f.filters.forEach((s, at) => {
        if (s.type === 'eq') {
          let g = groups.get(s.attr);
          if (!groups.has(s.attr)) {
            const names = indexedNames(s.attr, indexed);
            groups.set(s.attr, (g = names && { names, norms: new Set(), at }));
          }
          if (g) {
            g.norms.add(s.norm);
            return;
          }
        }
        rest.push({ f: s, at });
      });
      const terms: { p: Part; at: number }[] = [];
      let left = budget;
      for (const g of groups.values()) {
        if (!g) continue;
        const p = indexProbe(g.names, [...g.norms]);
        if (p.params.length > left.params) return ANY;
        left = spend(left, p);
        terms.push({ p, at: g.at });
      }
      for (const r of rest) {
        // Past the budget the whole OR is left to the code: stop before compiling the rest.
        if (left.scans < 0 || left.params < 0) return ANY;
        const p = compile(r.f, indexed, left, level);
        if (p.sql === '1') return ANY; // TRUE or widened: the whole OR is
        left = spend(left, p);
        terms.push({ p, at: r.at });
      }
      terms.sort((a, b) => a.at - b.at); // keep the filter's order
      const parts = terms.map((t) => t.p);
      return { ...join(parts, 'OR'), exact: parts.every((p) => p.exact) };
    }
    case 'not': {
      const inner = compile(f.filter, indexed, budget, level);
      if (!inner.exact) return ANY;
      return { sql: `NOT (${inner.sql})`, params: inner.params, exact: true, depth: inner.depth + 1, scans: inner.scans };
    }
    case 'eq': {
      const names = indexedNames(f.attr, indexed);
      if (!names) return ANY;
      return indexProbe(names, [f.norm]);
    }
    case 'present': {
      const names = indexedNames(f.attr, indexed);
      if (!names) return ANY;
      return { sql: `e.id IN (SELECT entry_id FROM attr_index WHERE ${attrIn(names.length)})`, params: names, exact: true, depth: LEAF_DEPTH, scans: 1 };
    }
    case 'sub': {
      const names = indexedNames(f.attr, indexed);
      if (!names) return ANY;
      const pattern = globEscape(f.initial ?? '') + '*' + f.any.map((a) => globEscape(a) + '*').join('') + globEscape(f.final ?? '');
      return {
        sql: `e.id IN (SELECT entry_id FROM attr_index WHERE ${attrIn(names.length)} AND norm GLOB ?)`,
        params: [...names, pattern],
        exact: false, // GLOB may match overlapping pieces that substringMatch rejects
        depth: LEAF_DEPTH,
        scans: 1,
      };
    }
    case 'ge':
    case 'le':
    case 'ext':
    case 'approx':
      return ANY;
  }
}

/**
 * Entries holding one of `norms` in one of the attributes `names`: one
 * primary-key probe per value. A long list travels as one JSON array
 * parameter, so its size does not count against the parameter limit.
 */
function indexProbe(names: string[], norms: string[]): Part {
  const long = norms.length > IN_LIST_MAX;
  const normIn = norms.length === 1 ? 'norm = ?'
    : long ? 'norm IN (SELECT value FROM json_each(?))' : `norm IN (${placeholders(norms.length)})`;
  return {
    sql: `e.id IN (SELECT entry_id FROM attr_index WHERE ${attrIn(names.length)} AND ${normIn})`,
    params: long ? [...names, JSON.stringify(norms)] : [...names, ...norms],
    exact: true,
    depth: LEAF_DEPTH,
    scans: 0,
  };
}

/**
 * Joins conditions with AND or OR (associative in SQL's three-valued logic
 * as in RFC 4511's). SQLite parses `a OR b OR c` left-deep, one tree level
 * per term, so long chains are split into halves: the depth grows with the
 * logarithm of the number of terms.
 */
function join(parts: Part[], op: 'AND' | 'OR'): Part {
  if (parts.length === 1) return parts[0];
  if (parts.length > FLAT_JOIN) {
    const mid = parts.length >>> 1;
    return join([join(parts.slice(0, mid), op), join(parts.slice(mid), op)], op);
  }
  const params: string[] = [];
  for (const p of parts) for (const v of p.params) params.push(v);
  return {
    sql: parts.map((p) => `(${p.sql})`).join(` ${op} `),
    params,
    exact: parts.every((p) => p.exact),
    depth: Math.max(...parts.map((p) => p.depth)) + parts.length,
    scans: parts.reduce((n, p) => n + p.scans, 0),
  };
}

function placeholders(n: number): string {
  return n === 1 ? '?' : '?' + ', ?'.repeat(n - 1);
}

/** The index names for an attribute and its subtypes, or undefined if any is not indexed. */
function indexedNames(attr: AttributeType, indexed: ReadonlySet<string>): string[] | undefined {
  const names = [attr.lname, ...attr.subtypes.map((s) => s.lname)];
  return names.every((n) => indexed.has(n)) ? names : undefined;
}

/** The condition on attr_index.attr for `names` index names (an attribute and its subtypes), as parameters. */
function attrIn(names: number): string {
  return names === 1 ? 'attr = ?' : `attr IN (${placeholders(names)})`;
}

/** Escapes GLOB metacharacters so the piece matches literally. */
function globEscape(s: string): string {
  return s.replace(/[*?[]/g, (c) => `[${c}]`);
}

/** An indexed equality that can drive a search from the index (`mail=x`, or one term of an AND). */
export interface IndexDriver {
  /** Index names of the attribute and its subtypes. */
  names: string[];
  norm: string;
  /** What remains of the filter besides the driver (undefined: nothing). */
  rest: Filter | undefined;
}

/**
 * The driver's condition on `entries e`, for a driver of `names` index names
 * (the parameters are the names, then the value): the probe as a list of
 * rowids (`e.id IN (SELECT entry_id ...)`), which SQLite reads from the
 * index then looks up by rowid. Not a join of attr_index: better-sqlite3's
 * SQLite is built with STAT4, under which the join form is re-prepared at
 * every run (its bound values might change the plan); this form is prepared once.
 */
export function indexDriverText(names: number): string {
  return `e.id IN (SELECT entry_id FROM attr_index WHERE ${attrIn(names)} AND norm = ?)`;
}

/**
 * Picks an indexed equality at the top of the filter (alone, or a term of an
 * AND) to drive the query from attr_index (indexDriverText): one index probe
 * then the entries by rowid, before any other condition. In an AND, a term on
 * another attribute than objectClass is preferred: an objectClass value is
 * shared by every entry of its kind (`(&(objectClass=posixAccount)(uidNumber=1000))`,
 * as NSS clients ask, is driven by uidNumber).
 */
export function indexDriver(f: Filter, indexed: ReadonlySet<string>): IndexDriver | undefined {
  if (f.type === 'eq') {
    const names = indexedNames(f.attr, indexed);
    return names && { names, norm: f.norm, rest: undefined };
  }
  if (f.type === 'and') {
    let pick: { i: number; names: string[]; norm: string } | undefined;
    for (let i = 0; i < f.filters.length; i++) {
      const c = f.filters[i];
      if (c.type !== 'eq') continue;
      const names = indexedNames(c.attr, indexed);
      if (!names) continue;
      if (!pick || pick.names[0] === 'objectclass') pick = { i, names, norm: c.norm };
      if (names[0] !== 'objectclass') break;
    }
    if (pick) {
      const others = f.filters.filter((_, j) => j !== pick.i);
      return { names: pick.names, norm: pick.norm, rest: others.length === 1 ? others[0] : { type: 'and', filters: others } };
    }
  }
  return undefined;
}
