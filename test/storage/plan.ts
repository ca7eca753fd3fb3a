/**
 * What SQLite does with the store's candidate query: the statement a search
 * really prepares, captured with the parameters it binds, and its
 * EXPLAIN QUERY PLAN.
 */
import * as assert from 'node:assert/strict';
import type { Directory } from '../../server/directory/directory';

/** The candidate query a search ran: its SQL, its parameters, and the details of its EXPLAIN QUERY PLAN. */
export interface CandidateQuery {
  sql: string;
  params: unknown[];
  plan: string[];
}

/**
 * Runs `search` (which must search `dir`) and returns the candidate query it
 * ran first (the statement over `entries e`: the store's, or the search
 * cache's for an indexed equality, Store.equalityEntries), with SQLite's plan for it.
 */
export function candidateQuery(dir: Directory, search: () => void): CandidateQuery {
  // The store keeps prepared statements: forget them, so the search prepares its own again; and the
  // search cache what earlier searches found, so that this one asks the store.
  (dir.store as unknown as { stmts: Map<string, unknown> }).stmts.clear();
  (dir as unknown as { searchCache: { clear(): void } }).searchCache.clear();
  const db = dir.store.db as unknown as { prepare(sql: string): unknown };
  const prepare = db.prepare.bind(db);
  let captured: { sql: string; params: unknown[] } | undefined;
  db.prepare = (text: string) => {
    const stmt = prepare(text) as Record<'iterate' | 'all', (...a: unknown[]) => unknown>;
    if (/\bentries e\b/.test(text)) {
      // An index-driven search reads its first candidates with all(), the rest (if any) with iterate().
      for (const run of ['iterate', 'all'] as const) {
        const original = stmt[run].bind(stmt);
        stmt[run] = (...params: unknown[]) => {
          captured ??= { sql: text, params };
          return original(...params);
        };
      }
    }
    return stmt;
  };
  try {
    search();
  } finally {
    delete (db as { prepare?: unknown }).prepare; // back to the prototype's method
  }
  assert.ok(captured, 'the candidate query was prepared during the search');
  const plan = (dir.store.db.prepare(`EXPLAIN QUERY PLAN ${captured.sql}`).all(...captured.params) as { detail: string }[]).map((r) => r.detail);
  return { ...captured, plan };
}

/**
 * The attribute whose index drives the candidate query (the probe of
 * attr_index by attribute and value that opens its WHERE clause, see
 * indexDriverText), undefined when entries are read by scope.
 */
export function drivingAttribute(q: CandidateQuery): unknown {
  return /\bFROM entries e WHERE e\.id IN \(SELECT entry_id FROM attr_index WHERE attr (=|IN)/.test(q.sql) ? q.params[0] : undefined;
}

/** Asserts that a plan looks the candidates up in attr_index by its primary key and fetches entries by id, scanning none. */
export function assertIndexLookup(plan: string[]): void {
  const text = plan.join('\n');
  assert.ok(plan.some((d) => /^SEARCH (attr_index|a) USING PRIMARY KEY \(attr=\? AND norm=\?\)/.test(d)), `attr_index PK not used:\n${text}`);
  assert.ok(plan.some((d) => /^SEARCH e USING INTEGER PRIMARY KEY/.test(d)), `entries not fetched by id:\n${text}`);
  assert.ok(!plan.some((d) => /^SCAN (e|entries)\b/.test(d)), `entries scanned:\n${text}`);
  assert.ok(!plan.some((d) => /^SEARCH e USING INDEX .*rpath/.test(d)), `entries range-scanned by rpath:\n${text}`);
}
