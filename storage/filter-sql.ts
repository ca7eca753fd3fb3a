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

const ANY: SqlCondition = { sql: '1', params: [], exact: false };

/**
 * Compiles `f` for the given set of indexed attribute names (lower-case).
 * Returns a condition that is true for at least every matching entry.
 */
export function filterToSql(f: Filter, indexed: ReadonlySet<string>): SqlCondition {
  switch (f.type) {
    case 'const':
      return f.value ? { sql: '1', params: [], exact: true } : { sql: '0', params: [], exact: true };
    case 'undefined':
      // SQL's NULL follows the same three-valued logic as RFC 4511 §4.5.1.7
      // (NOT NULL is NULL, NULL AND 0 is 0, NULL OR 1 is 1) and WHERE keeps only true rows.
      return { sql: 'NULL', params: [], exact: true };
    case 'and': {
      const parts = f.filters.map((s) => filterToSql(s, indexed));
      const narrowing = parts.filter((p) => p.sql !== '1');
      if (narrowing.length === 0) return { sql: '1', params: [], exact: parts.every((p) => p.exact) };
      return {
        sql: narrowing.map((p) => `(${p.sql})`).join(' AND '),
        params: narrowing.flatMap((p) => p.params),
        exact: parts.every((p) => p.exact),
      };
    }
    case 'or': {
      const parts = f.filters.map((s) => filterToSql(s, indexed));
      if (parts.some((p) => p.sql === '1')) return ANY;
      return {
        sql: parts.map((p) => `(${p.sql})`).join(' OR '),
        params: parts.flatMap((p) => p.params),
        exact: parts.every((p) => p.exact),
      };
    }
    case 'not': {
      const inner = filterToSql(f.filter, indexed);
      if (!inner.exact) return ANY;
      return { sql: `NOT (${inner.sql})`, params: inner.params, exact: true };
    }
    case 'eq': {
      const names = indexedNames(f.attr, indexed);
      if (!names) return ANY;
      return {
        sql: `e.id IN (SELECT entry_id FROM attr_index WHERE ${attrIn(names)} AND norm = ?)`,
        params: [...names, f.norm],
        exact: true,
      };
    }
    case 'present': {
      const names = indexedNames(f.attr, indexed);
      if (!names) return ANY;
      return { sql: `e.id IN (SELECT entry_id FROM attr_index WHERE ${attrIn(names)})`, params: names, exact: true };
    }
    case 'sub': {
      const names = indexedNames(f.attr, indexed);
      if (!names) return ANY;
      const pattern = globEscape(f.initial ?? '') + '*' + f.any.map((a) => globEscape(a) + '*').join('') + globEscape(f.final ?? '');
      return {
        sql: `e.id IN (SELECT entry_id FROM attr_index WHERE ${attrIn(names)} AND norm GLOB ?)`,
        params: [...names, pattern],
        exact: false, // GLOB may match overlapping pieces that substringMatch rejects
      };
    }
    case 'ge':
    case 'le':
    case 'ext':
    case 'approx':
      return ANY;
  }
}

/** The index names for an attribute and its subtypes, or undefined if any is not indexed. */
function indexedNames(attr: AttributeType, indexed: ReadonlySet<string>): string[] | undefined {
  const names = [attr.lname, ...attr.subtypes.map((s) => s.lname)];
  return names.every((n) => indexed.has(n)) ? names : undefined;
}

function attrIn(names: string[]): string {
  return names.length === 1 ? 'attr = ?' : `attr IN (${names.map(() => '?').join(',')})`;
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
 * Picks an indexed equality at the top of the filter (alone, or the first
 * such term of an AND) to drive the query from attr_index: one index probe
 * then the entry by rowid, instead of an IN-subquery over entries.
 */
export function indexDriver(f: Filter, indexed: ReadonlySet<string>): IndexDriver | undefined {
  if (f.type === 'eq') {
    const names = indexedNames(f.attr, indexed);
    return names && { names, norm: f.norm, rest: undefined };
  }
  if (f.type === 'and') {
    for (let i = 0; i < f.filters.length; i++) {
      const c = f.filters[i];
      if (c.type !== 'eq') continue;
      const names = indexedNames(c.attr, indexed);
      if (!names) continue;
      const others = f.filters.filter((_, j) => j !== i);
      return { names, norm: c.norm, rest: others.length === 1 ? others[0] : { type: 'and', filters: others } };
    }
  }
  return undefined;
}
