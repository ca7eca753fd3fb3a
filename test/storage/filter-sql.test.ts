/**
 * storage/filter-sql.ts and the store's candidate query: user values only
 * ever travel as bound parameters, exactness flags are right (a widened
 * condition is never claimed exact), GLOB metacharacters in substring pieces
 * match literally, hostile filters and base DNs against a real in-memory
 * directory find nothing and change nothing, and an indexed equality search
 * is answered through the attr_index primary key. Filters far larger or
 * deeper than one SQLite expression may hold (SQLITE_MAX_EXPR_DEPTH,
 * SQLITE_MAX_VARIABLE_NUMBER) still give exactly the matching entries.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { filterToSql, MAX_SQL_PARAMS, MAX_SQL_SCANS, type SqlCondition } from '../../storage/filter-sql';
import { compileFilter, type Filter, type FilterInput } from '../../server/directory/filter';
import { loadSchema } from '../../server/directory/open';
import { DEFAULT_INDEXES, type Directory, type SearchRequest } from '../../server/directory/directory';
import { DirectoryError } from '../../server/directory/errors';
import { ANONYMOUS, type Identity } from '../../server/directory/access';
import { attrs, memoryDirectory } from '../directory/fixture';
import { assertIndexLookup, candidateQuery } from './plan';

const schema = loadSchema();
const INDEXED: ReadonlySet<string> = new Set(DEFAULT_INDEXES);

const HOSTILE = [
  "x') OR 1=1 --",
  "'; DROP TABLE entries; --",
  "' OR ''='",
  '" OR ""="',
  "x'/*",
  "*/ OR 1=1",
  "1); DELETE FROM attr_index WHERE (1",
  "\\'; SELECT sqlite_version(); --",
  "a\u0000b' --",
];

const compile = (f: FilterInput): Filter => compileFilter(schema, f);
const sql = (f: FilterInput, indexed = INDEXED): SqlCondition => filterToSql(compile(f), indexed);
const eq = (attr: string, value: string): FilterInput => ({ type: 'equal', attr, value });
const sub = (attr: string, initial: string | undefined, any: string[], final?: string): FilterInput =>
  ({ type: 'substrings', attr, initial, any, final });

/** The SQL text carries no literal at all: no quotes, no statement separator, no comment. */
function assertNoLiterals(c: SqlCondition): void {
  assert.doesNotMatch(c.sql, /['";]|--|\/\*/, `SQL carries a literal: ${c.sql}`);
  assert.equal((c.sql.match(/\?/g) ?? []).length, c.params.length, 'one placeholder per parameter');
}

describe('filterToSql', () => {
  test('every user value is a parameter, never SQL text', () => {
    for (const v of HOSTILE) {
      const norm = schema.attr('mail')!.normalize(v) ?? v;
      for (const f of [
        eq('mail', v), eq('cn', v), eq('uid', v),
        sub('cn', v, [v], v), sub('mail', undefined, [v]),
        { type: 'or', filters: [eq('mail', v), eq('cn', v)] } as FilterInput,
        { type: 'and', filters: [eq('objectClass', 'inetOrgPerson'), { type: 'not', filter: eq('uid', v) }] } as FilterInput,
      ]) {
        const c = sql(f);
        assertNoLiterals(c);
        assert.ok(!c.sql.includes(v) && !c.sql.includes(norm), `value leaked into SQL: ${c.sql}`);
        // Substring patterns carry GLOB-escaped pieces ([*], [?], [[]): compare unescaped.
        const sent = c.params.map((p) => p.replace(/\[([*?[])\]/g, '$1'));
        assert.ok(sent.some((p) => p.includes(norm.trim())), `value missing from params: ${JSON.stringify(c.params)}`);
      }
    }
  });

  test('attribute names are parameters too', () => {
    const c = sql(eq('mail', 'a@b'));
    assert.ok(!/mail/i.test(c.sql), c.sql);
    assert.deepEqual(c.params, ['mail', 'a@b']);
    const p = sql({ type: 'present', attr: 'uid' });
    assert.deepEqual(p.params, ['uid']);
    assertNoLiterals(p);
  });

  test('exactness: NOT over an unindexed attribute widens to 1, NOT over an indexed one is exact', () => {
    let c = sql({ type: 'not', filter: eq('description', 'x') });
    assert.deepEqual(c, { sql: '1', params: [], exact: false });
    c = sql({ type: 'not', filter: eq('mail', 'a@b') });
    assert.equal(c.exact, true);
    assert.match(c.sql, /^NOT \(/);
    assert.deepEqual(c.params, ['mail', 'a@b']);
    // NOT over a substring (never exact) must widen too, or NOT would drop true matches.
    c = sql({ type: 'not', filter: sub('cn', 'a', []) });
    assert.deepEqual(c, { sql: '1', params: [], exact: false });
  });

  test('exactness: OR with an unindexed branch widens; AND keeps the indexed branch but is not exact', () => {
    let c = sql({ type: 'or', filters: [eq('mail', 'a@b'), eq('description', 'x')] });
    assert.deepEqual(c, { sql: '1', params: [], exact: false });
    c = sql({ type: 'or', filters: [eq('mail', 'a@b'), eq('uid', 'a')] });
    assert.equal(c.exact, true);
    assert.deepEqual(c.params, ['mail', 'a@b', 'uid', 'a']);
    c = sql({ type: 'and', filters: [eq('mail', 'a@b'), eq('description', 'x')] });
    assert.equal(c.exact, false);
    assert.deepEqual(c.params, ['mail', 'a@b']);
    c = sql({ type: 'and', filters: [eq('mail', 'a@b'), eq('uid', 'a')] });
    assert.equal(c.exact, true);
    // Indexes configured differently change the answer.
    c = sql(eq('description', 'x'), new Set([...INDEXED, 'description']));
    assert.equal(c.exact, true);
  });

  test('exactness of the other clause types', () => {
    assert.deepEqual(sql(sub('cn', 'a', [])).exact, false);
    assert.deepEqual(sql({ type: 'ge', attr: 'uid', value: 'a' }), { sql: '1', params: [], exact: false });
    assert.deepEqual(filterToSql({ type: 'const', value: false }, INDEXED), { sql: '0', params: [], exact: true });
    assert.deepEqual(filterToSql({ type: 'const', value: true }, INDEXED), { sql: '1', params: [], exact: true });
    // An unknown attribute compiles to Undefined (RFC 4511 §4.5.1.7), SQL's NULL: nothing user-supplied to send to SQLite.
    assert.deepEqual(sql(eq('noSuchAttr', "x' OR 1=1")), { sql: 'NULL', params: [], exact: true });
    assert.deepEqual(sql({ type: 'not', filter: eq('noSuchAttr', 'x') }), { sql: 'NULL', params: [], exact: true }, 'NOT Undefined is Undefined');
    // `name` has unindexed subtypes (sn, ...): not answerable from the index.
    assert.deepEqual(sql(eq('name', 'x')), { sql: '1', params: [], exact: false });
  });

  test('GLOB metacharacters in substring pieces are escaped', () => {
    const c = sql(sub('cn', undefined, ['[a]']));
    assert.deepEqual(c.params, ['cn', '*[[]a]*']);
    assert.deepEqual(sql(sub('cn', 'a?', [], '*z')).params, ['cn', 'a[?]*[*]z']);
  });

  test(`at most ${MAX_SQL_SCANS} index scans (substrings, presence) go to SQL; a wider OR is left to the code`, () => {
    const scans = (c: SqlCondition) => (c.sql.match(/GLOB \?|WHERE attr = \?\)/g) ?? []).length;
    const subs = (n: number) => Array.from({ length: n }, (_, i) => sub('cn', undefined, [`piece ${i}`]));
    const fits = sql({ type: 'or', filters: subs(MAX_SQL_SCANS) });
    assert.equal(scans(fits), MAX_SQL_SCANS);
    // One more and the OR (of any size: 14,000 such terms once took SQLite 25 s in one call) is "any entry".
    for (const n of [MAX_SQL_SCANS + 1, 14_000]) assert.deepEqual(sql({ type: 'or', filters: subs(n) }), { sql: '1', params: [], exact: false });
    assert.deepEqual(sql({ type: 'or', filters: [...subs(MAX_SQL_SCANS), { type: 'present', attr: 'mail' }] }), { sql: '1', params: [], exact: false });
    // Equalities are index lookups: any number of them, in one probe, beside the scans that fit.
    const mixed = sql({ type: 'or', filters: [...Array.from({ length: 3000 }, (_, i) => eq('uid', `u${i}`)), ...subs(MAX_SQL_SCANS)] });
    assert.equal(scans(mixed), MAX_SQL_SCANS);
    assert.equal(mixed.exact, false);
    // In an AND the scans past the budget are left out; the rest still narrows.
    const and = sql({ type: 'and', filters: [eq('uid', 'u1'), ...subs(MAX_SQL_SCANS + 3)] });
    assert.equal(scans(and), MAX_SQL_SCANS);
    assert.deepEqual(and.params.slice(0, 2), ['uid', 'u1']);
  });
});

function collect(dir: Directory, who: Identity, req: Partial<SearchRequest>): string[] {
  const out: string[] = [];
  dir.search(who, {
    base: 'o=internet', scope: 'sub', filter: { type: 'present', attr: 'objectClass' }, attributes: ['1.1'], typesOnly: false,
    sizeLimit: 0, timeLimit: 0, ...req,
  }, (e) => out.push(e.dn.toLowerCase()));
  return out.sort();
}

/** The DNs the store's SQL returns as candidates (before the filter is checked in code). */
function candidates(dir: Directory, f: FilterInput): string[] {
  const base = dir.getByNdn('o=internet')!;
  return [...dir.store.candidates({ base, scope: 'sub', filter: compile(f) })].map((e) => e.dn.toLowerCase()).sort();
}

function result(fn: () => unknown): string {
  try {
    fn();
    return 'success';
  } catch (e) {
    if (e instanceof DirectoryError) return e.result;
    throw e;
  }
}

async function populated(): Promise<{ dir: Directory; admin: Identity }> {
  const { dir, admin } = await memoryDirectory();
  for (const cn of ['a', '[a]', 'x[a]y', '[', 'a?c', 'abc', 'x*y', 'xzy']) {
    await dir.add(admin, `cn=${cn.replace(/[*]/g, '\\2a')},o=internet`, attrs({ objectClass: 'organizationalRole', cn }));
  }
  for (let i = 0; i < 5; i++) {
    await dir.add(admin, `uid=u${i},o=internet`, attrs({
      objectClass: 'inetOrgPerson', uid: `u${i}`, cn: `U ${i}`, sn: 'U', mail: `u${i}@example.org`, description: `user ${i}`,
    }));
  }
  return { dir, admin };
}

describe('the store and the directory', () => {
  test('a search for cn=*[a]* does not match cn=a, in SQL and in the result', async () => {
    const { dir, admin } = await populated();
    const f = sub('cn', undefined, ['[a]']);
    assert.deepEqual(candidates(dir, f), ['cn=[a],o=internet', 'cn=x[a]y,o=internet']);
    assert.deepEqual(collect(dir, admin, { filter: f }), ['cn=[a],o=internet', 'cn=x[a]y,o=internet']);
    // No false negatives either: an unbalanced '[' and a literal '?' or '*' still match.
    assert.deepEqual(candidates(dir, sub('cn', '[', [])), ['cn=[,o=internet', 'cn=[a],o=internet']);
    assert.deepEqual(candidates(dir, sub('cn', 'a?', [])), ['cn=a?c,o=internet']);
    assert.deepEqual(candidates(dir, sub('cn', 'x*', [])), ['cn=x*y,o=internet']);
  });

  test('hostile filter values find nothing and leave the tables intact', async () => {
    const { dir, admin } = await populated();
    const before = dir.store.count();
    const all = collect(dir, admin, {});
    for (const v of HOSTILE) {
      for (const who of [admin, ANONYMOUS]) {
        for (const f of [
          eq('mail', v), eq('cn', v), eq('description', v), eq('objectClass', v),
          sub('cn', undefined, [v]), sub('description', v, []),
          { type: 'or', filters: [eq('mail', v), eq('uid', v), sub('mail', undefined, [v])] } as FilterInput,
          { type: 'extensible', attr: 'cn', dnAttributes: true, value: v } as FilterInput,
        ]) assert.deepEqual(collect(dir, who, { filter: f }), [], `${JSON.stringify(f)} found something`);
      }
      // Negated, the hostile value is a plain literal that matches nothing: everything comes back.
      assert.deepEqual(collect(dir, admin, { filter: { type: 'not', filter: eq('mail', v) } }), all);
    }
    assert.equal(dir.store.count(), before);
    const tables = (dir.store.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name);
    for (const t of ['entries', 'attr_index', 'changelog', 'meta']) assert.ok(tables.includes(t), `${t} still exists`);
    assert.deepEqual(collect(dir, admin, {}), all);
  });

  test('a value that looks like SQL is stored and found as a literal', async () => {
    const { dir, admin } = await populated();
    const v = "x') OR 1=1 --";
    await dir.add(admin, 'cn=hostile,o=internet', attrs({ objectClass: 'inetOrgPerson', cn: 'hostile', sn: v, mail: `${v}@example.org` }));
    assert.deepEqual(collect(dir, admin, { filter: eq('mail', `${v}@example.org`) }), ['cn=hostile,o=internet']);
    assert.deepEqual(collect(dir, admin, { filter: eq('sn', v) }), ['cn=hostile,o=internet']);
    assert.deepEqual(collect(dir, admin, { filter: sub('mail', "x') or 1", []) }), ['cn=hostile,o=internet']);
  });

  test('hostile base DNs give noSuchObject (or invalidDNSyntax) and change nothing', async () => {
    const { dir, admin } = await populated();
    const before = dir.store.count();
    for (const base of [
      "o=internet' OR 1=1 --",
      "cn=x') OR 1=1 --,o=internet",
      "cn=x\\27\\3b DROP TABLE entries\\3b --,o=internet",
      "cn=*,o=internet",
      "cn=%,o=internet",
    ]) {
      for (const who of [admin, ANONYMOUS]) {
        for (const scope of ['base', 'one', 'sub'] as const) {
          assert.equal(result(() => collect(dir, who, { base, scope })), 'noSuchObject', base);
        }
      }
    }
    assert.ok(['noSuchObject', 'invalidDNSyntax'].includes(result(() => collect(dir, admin, { base: "cn=x'); DROP TABLE entries; --,o=internet" }))));
    assert.equal(dir.store.count(), before);
  });

  test('an equality search on mail under the suffix goes through the attr_index primary key', async () => {
    const { dir, admin } = await populated();
    let found: string[] = [];
    const q = candidateQuery(dir, () => {
      found = collect(dir, admin, { filter: eq('mail', 'u3@example.org') });
    });
    assert.deepEqual(found, ['uid=u3,o=internet']);
    assertIndexLookup(q.plan);
  });
});

/** Nesting depth of parentheses in SQL text (a proxy for SQLite's expression tree depth). */
function parenDepth(text: string): number {
  let d = 0;
  let max = 0;
  for (const c of text) {
    if (c === '(') max = Math.max(max, ++d);
    else if (c === ')') d--;
  }
  return max;
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const or = (...filters: FilterInput[]): FilterInput => ({ type: 'or', filters });
const and = (...filters: FilterInput[]): FilterInput => ({ type: 'and', filters });
const not = (filter: FilterInput): FilterInput => ({ type: 'not', filter });

describe('large and deep filters', () => {
  /** uid=u0..u39 under o=internet; sn is S0, S1 or S2 by i mod 3. */
  async function users(): Promise<{ dir: Directory; admin: Identity }> {
    const { dir, admin } = await memoryDirectory();
    for (let i = 0; i < 40; i++) {
      await dir.add(admin, `uid=u${i},o=internet`, attrs({
        objectClass: 'inetOrgPerson', uid: `u${i}`, cn: `User ${i}`, sn: `S${i % 3}`, mail: `u${i}@example.org`,
      }));
    }
    return { dir, admin };
  }
  const dns = (ids: number[]) => ids.map((i) => `uid=u${i},o=internet`).sort();
  const uids = (n: number, from = 0) => range(n).map((i) => eq('uid', `u${from + i}`));

  test('an index-driven search finding more than its first batch gives every entry once, in id order, when stopped after each one', async () => {
    const { dir, admin } = await users();
    const f = and(eq('objectClass', 'inetOrgPerson'), not(eq('sn', 'S1')));
    const want = range(40).filter((i) => i % 3 !== 1).map((i) => `uid=u${i},o=internet`);
    const inOrder = (stopEach: boolean, after?: number): string[] => {
      const base = dir.getByNdn('o=internet')!;
      const out: string[] = [];
      let afterId = after;
      for (;;) {
        let more = false;
        for (const e of dir.store.candidates({ base, scope: 'sub', filter: compile(f), afterId })) {
          if (e.attrs.sn?.[0] !== 'S1' && e.attrs.uid) out.push(e.dn.toLowerCase());
          afterId = e.id;
          more = stopEach;
          if (stopEach) break; // as a search step does when its slice is over: the next one resumes after afterId
        }
        if (!more) return out;
      }
    };
    assert.deepEqual(inOrder(false), want);
    assert.deepEqual(inOrder(true), want);
    const tenth = dir.getByNdn('uid=u9,o=internet')!.id;
    assert.deepEqual(inOrder(false, tenth), want.slice(want.indexOf('uid=u9,o=internet') + 1));
    assert.deepEqual(collect(dir, admin, { filter: f }), [...want].sort());
  });

  test('an OR of 2,000 equalities on uid is one index probe, and the search finds exactly its entries', async () => {
    const { dir, admin } = await users();
    // u0..u1999 holds all forty users; every other one of them: the even ones.
    for (const [f, want] of [
      [or(...uids(2000)), range(40)],
      [or(...uids(1000)), range(40)], // the audit's case: SQLite refused 1,000 nested ORs
      [or(...range(2000).map((i) => eq('uid', `u${2 * i}`))), range(40).filter((i) => i % 2 === 0)],
    ] as [FilterInput, number[]][]) {
      const c = sql(f);
      assertNoLiterals(c);
      assert.equal(c.exact, true);
      assert.ok(c.params.length <= 3, `a long value list travels as one parameter: ${c.params.length}`);
      assert.ok(parenDepth(c.sql) <= 4, c.sql);
      assert.deepEqual(candidates(dir, f), dns(want));
      assert.deepEqual(collect(dir, admin, { filter: f }), dns(want));
    }
    // A short list is `norm IN (?, ?, ...)`; equal values are sent once.
    const c = sql(or(eq('uid', 'a'), eq('uid', 'b'), eq('UID', 'A'), eq('mail', 'x@y')));
    assert.match(c.sql, /attr = \? AND norm IN \(\?, \?\)/);
    assert.deepEqual(c.params, ['uid', 'a', 'b', 'mail', 'x@y']);
  });

  test('a 2,000-term OR of other kinds is a balanced tree, not 2,000 levels', async () => {
    const { dir, admin } = await users();
    // Substrings cannot be grouped: each is its own index probe.
    const f = or(...range(2000).map((i) => sub('cn', `user ${i}`, [], i % 2 ? undefined : '')));
    const c = sql(f);
    assertNoLiterals(c);
    assert.ok(parenDepth(c.sql) < 40, `depth ${parenDepth(c.sql)}`);
    assert.deepEqual(collect(dir, admin, { filter: f }), dns(range(40)));
  });

  test('an AND/OR mix with thousands of terms gives the same entries as the filter read by hand', async () => {
    const { dir, admin } = await users();
    // (&(objectClass=inetOrgPerson)
    //   (|(uid=u0)..(uid=u9) (&(mail=u{i}@example.org)(sn=S{i%3}))*1500 (&(mail=u{i}@example.org)(sn=S{(i+1)%3}))*500 (cn=*er 3*))
    //   (!(sn=S2)))
    const f = and(
      eq('objectClass', 'inetOrgPerson'),
      or(
        ...uids(10),
        ...range(1500).map((i) => and(eq('mail', `u${i}@example.org`), eq('sn', `S${i % 3}`))),
        ...range(500).map((i) => and(eq('mail', `u${1000 + i}@example.org`), eq('sn', `S${(i + 1) % 3}`))),
        sub('cn', undefined, ['er 3']),
      ),
      not(eq('sn', 'S2')),
    );
    // Every user matches the OR (u10..u39 through their own mail and sn); S2 ones are cut by the NOT.
    const want = range(40).filter((i) => i % 3 !== 2);
    assert.deepEqual(candidates(dir, f).filter((d) => d.startsWith('uid=')).length >= want.length, true);
    assert.deepEqual(collect(dir, admin, { filter: f }), dns(want));
    const c = sql(f);
    assertNoLiterals(c);
    assert.ok(c.params.length <= MAX_SQL_PARAMS);
  });

  test('nesting deeper than SQLite accepts widens to code evaluation with the same answer', async () => {
    const { dir, admin } = await users();
    // (|(uid=u{k})(&(sn=*)(|(uid=u{k+1})(&(sn=*)( ... (uid=u0) ... ))))), 990 levels: every user up to u39 is in it.
    let f: FilterInput = eq('uid', 'u0');
    for (let i = 0; i < 990; i++) {
      f = i % 2 ? and({ type: 'present', attr: 'sn' }, f) : or(eq('uid', `u${(i >> 1) % 40}`), f);
    }
    assert.deepEqual(collect(dir, admin, { filter: f }), dns(range(40)));
    // 999 NOTs of (&(mail=*)(...)) around uid=u1: an odd number, so u1 is out; the users without uid=u1 are in, and so
    // is every entry without mail (the AND is FALSE at each level, its NOT TRUE).
    let n: FilterInput = eq('uid', 'u1');
    for (let i = 0; i < 999; i++) n = not(and({ type: 'present', attr: 'mail' }, n));
    assert.deepEqual(collect(dir, admin, { filter: n }), collect(dir, admin, {}).filter((d) => d !== 'uid=u1,o=internet'));
    for (const x of [f, n]) {
      const c = sql(x);
      assertNoLiterals(c);
      assert.ok(parenDepth(c.sql) < 400, `depth ${parenDepth(c.sql)}`);
    }
  });

  test('the parameter count stays within SQLite\'s limit; what does not fit is left to the code', async () => {
    const { dir, admin } = await users();
    // 20,000 substring terms need 40,000 parameters: the OR widens to "any entry".
    const wide = or(...range(20000).map((i) => sub('cn', `user ${i}`, [])));
    const c = sql(wide);
    assert.deepEqual(c, { sql: '1', params: [], exact: false });
    assert.deepEqual(collect(dir, admin, { filter: wide }), dns(range(40)));
    // Inside an AND the other terms still narrow the candidates.
    const f = and(or(eq('uid', 'u1'), eq('uid', 'u4'), eq('uid', 'u7')), wide);
    const a = sql(f);
    assert.equal(a.exact, false);
    assert.deepEqual(a.params, ['uid', 'u1', 'u4', 'u7']);
    assert.deepEqual(candidates(dir, f), dns([1, 4, 7]));
    assert.deepEqual(collect(dir, admin, { filter: f }), dns([1, 4, 7]));
  });

  test('three-valued logic holds for a wide OR, in SQL and in code (RFC 4511 §4.5.1.7)', async () => {
    const { dir, admin } = await users();
    // (|(uid=u0)..(uid=u1999)(noSuchAttr=x)) is TRUE for every user; (!...) is FALSE for them and Undefined elsewhere.
    const withUndef = or(...uids(2000), eq('noSuchAttr', 'x'));
    assert.deepEqual(collect(dir, admin, { filter: withUndef }), dns(range(40)));
    assert.deepEqual(collect(dir, admin, { filter: not(withUndef) }), []);
    // (!(|(uid=u100)..(uid=u2099)(noSuchAttr=x))): Undefined for everyone, so nothing, though no uid is listed.
    assert.deepEqual(collect(dir, admin, { filter: not(or(...uids(2000, 100), eq('noSuchAttr', 'x'))) }), []);
    // Without the Undefined item, the NOT of a list naming nobody is everything.
    assert.ok(collect(dir, admin, { filter: not(or(...uids(2000, 100))) }).length > 40);
  });

  test('hostile values in a long list are one JSON parameter, found only as literals', async () => {
    const { dir, admin } = await users();
    const v = "x') OR 1=1 --";
    await dir.add(admin, 'cn=hostile,o=internet', attrs({ objectClass: 'inetOrgPerson', uid: v, cn: 'hostile', sn: 'h' }));
    const f = or(...HOSTILE.map((h) => eq('uid', h)), ...range(400).map((i) => eq('uid', `${v}${i}"]`)), eq('uid', v));
    const c = sql(f);
    assertNoLiterals(c);
    assert.deepEqual(collect(dir, admin, { filter: f }), ['cn=hostile,o=internet']);
  });
});
