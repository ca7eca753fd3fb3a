/**
 * Directory.startSearch: a search run in steps (the LDAP endpoint runs one
 * step per turn of the event loop) finds what search() finds, however small
 * the steps; it resumes after the last candidate considered, so an entry
 * added between two steps is found when its id comes after them; paging and
 * the size limit count across steps.
 */
import { before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { attrs, memoryDirectory } from './fixture';
import type { Directory, SearchEntry, SearchOutcome, SearchRequest, SearchRun } from '../../server/directory/directory';
import type { Identity } from '../../server/directory/access';
import type { FilterInput } from '../../server/directory/filter';
import { SizeLimitError } from '../../server/directory/errors';

let dir: Directory;
let admin: Identity;
const PEOPLE = 'ou=people,o=internet';

before(async () => {
  ({ dir, admin } = await memoryDirectory());
  dir.addSync(admin, PEOPLE, attrs({ objectClass: 'organizationalUnit', ou: 'people' }));
  for (let i = 0; i < 60; i++) dir.addSync(admin, `uid=u${i},${PEOPLE}`, attrs({ objectClass: 'inetOrgPerson', uid: `u${i}`, cn: `user ${i}`, sn: `S${i % 4}` }));
});

const request = (filter: FilterInput, more: Partial<SearchRequest> = {}): SearchRequest => ({
  base: PEOPLE, scope: 'sub', filter, attributes: ['uid'], typesOnly: false, sizeLimit: 0, timeLimit: 0, ...more,
});

/** Runs `run` to its end, `per` candidates a step; the outcome and the number of steps. */
function steps(run: SearchRun, per: number): { outcome: SearchOutcome; n: number } {
  for (let n = 1; ; n++) {
    let left = per;
    const outcome = run.step(() => --left <= 0);
    if (outcome) return { outcome, n };
  }
}

/** (|(sn=S1)(cn=*er 1*)...) with 40 substring terms: more than SQL takes, so the code tries every entry. */
const wide: FilterInput = {
  type: 'or',
  filters: [{ type: 'equal', attr: 'sn', value: 'S1' }, ...Array.from({ length: 40 }, (_, i) => ({ type: 'substrings' as const, attr: 'cn', any: [`er ${i}0`] }))],
};

test('one candidate a step finds what search() finds, in the same order', () => {
  for (const f of [wide, { type: 'equal', attr: 'sn', value: 'S2' } as FilterInput, { type: 'present', attr: 'objectClass' } as FilterInput]) {
    const whole: string[] = [];
    dir.search(admin, request(f), (e) => whole.push(e.dn));
    const stepped: string[] = [];
    const { outcome, n } = steps(dir.startSearch(admin, request(f), (e) => stepped.push(e.dn)), 1);
    assert.deepEqual(stepped, whole);
    assert.equal(outcome.count, whole.length);
    assert.ok(n > whole.length / 2, `${n} steps`);
  }
  const found: string[] = [];
  dir.search(admin, request(wide), (e) => found.push(e.dn));
  // sn S1 (u1, u5, ... u57), and cn 'user 10' ... 'user 50' through the pieces 'er 10' ... 'er 50'.
  const want = [...Array.from({ length: 15 }, (_, i) => 4 * i + 1), 10, 20, 30, 40, 50].sort((x, y) => x - y).map((i) => `uid=u${i},${PEOPLE}`);
  assert.deepEqual(found, want);
});

test('an entry added between two steps is found when it comes after them; none is delivered twice', () => {
  const got: SearchEntry[] = [];
  const run = dir.startSearch(admin, request({ type: 'equal', attr: 'sn', value: 'S3' }), (e) => got.push(e));
  let left = 5;
  assert.equal(run.step(() => --left <= 0), undefined, 'not over after five candidates');
  const before = got.length;
  dir.addSync(admin, `uid=late,${PEOPLE}`, attrs({ objectClass: 'inetOrgPerson', uid: 'late', cn: 'late', sn: 'S3' }));
  const { outcome } = steps(run, 3);
  const dns = got.map((e) => e.dn);
  assert.ok(before > 0);
  assert.equal(dns[dns.length - 1], `uid=late,${PEOPLE}`);
  assert.equal(new Set(dns).size, dns.length);
  assert.equal(outcome.count, dns.length);
  dir.delete(admin, `uid=late,${PEOPLE}`);
});

test('paging and the size limit count across steps', () => {
  const page: string[] = [];
  const { outcome } = steps(dir.startSearch(admin, request(wide, { page: { size: 4 } }), (e) => page.push(e.dn)), 1);
  assert.equal(page.length, 4);
  assert.ok(outcome.nextCursor && outcome.nextCursor.sent === 4);
  const next: string[] = [];
  steps(dir.startSearch(admin, request(wide, { page: { size: 4, cursor: outcome.nextCursor } }), (e) => next.push(e.dn)), 1);
  const whole: string[] = [];
  dir.search(admin, request(wide), (e) => whole.push(e.dn));
  assert.deepEqual([...page, ...next], whole.slice(0, 8));

  const limited: string[] = [];
  const run = dir.startSearch(admin, request(wide, { sizeLimit: 3 }), (e) => limited.push(e.dn));
  assert.throws(() => steps(run, 1), SizeLimitError);
  assert.deepEqual(limited, whole.slice(0, 3));
});
