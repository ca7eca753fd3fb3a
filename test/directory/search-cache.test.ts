/**
 * The search cache (server/directory/search-cache.ts): an index-driven
 * search answered from the kept id lists and entries finds, after every
 * write, what the store finds, on the writer and on a reader following its
 * clock; and what it keeps is shared by every identity without one seeing
 * another's view (access control is decided per search).
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { openDirectory, type Services } from '../../server/directory/open';
import { ChangeClock } from '../../server/directory/change-clock';
import type { Directory, SearchRequest } from '../../server/directory/directory';
import type { Identity } from '../../server/directory/access';
import { ANONYMOUS } from '../../server/directory/access';
import { compileFilter, type FilterInput } from '../../server/directory/filter';
import { SearchCache } from '../../server/directory/search-cache';
import { tempDirs } from '../helpers';
import { prng } from '../prng';
import { ADMIN, attrs, CHEAP_PASSWORDS, SUFFIX } from './fixture';

const newDir = tempDirs('dcmx-search-cache-');
let writer: Services;
let reader: Services;
let admin: Identity;
const PEOPLE = `ou=people,${SUFFIX}`;

before(async () => {
  const file = path.join(newDir(), 'dcmx.sqlite');
  writer = openDirectory({ file, suffix: SUFFIX, adminDN: ADMIN, passwords: CHEAP_PASSWORDS });
  await writer.directory.bootstrap({ kind: 'configured', password: 'secret-admin' });
  admin = writer.directory.systemIdentity();
  reader = openDirectory({
    file, suffix: SUFFIX, adminDN: ADMIN, passwords: CHEAP_PASSWORDS, readOnly: true, clock: new ChangeClock(writer.directory.clock.buffer),
  });
  writer.directory.addSync(admin, PEOPLE, attrs({ objectClass: 'organizationalUnit', ou: 'people' }));
});
after(() => {
  reader?.directory.store.close();
  writer?.directory.store.close();
});

const request = (filter: FilterInput, base = SUFFIX): SearchRequest => ({
  base, scope: 'sub', filter, attributes: ['*'], typesOnly: false, sizeLimit: 0, timeLimit: 0,
});
const eq = (attr: string, value: string): FilterInput => ({ type: 'equal', attr, value });

/** What `who` finds: each entry's DN and attributes, as text. */
function found(dir: Directory, who: Identity, filter: FilterInput, base?: string): string[] {
  dir.sync();
  const out: string[] = [];
  dir.search(who, request(filter, base), (e) => out.push(JSON.stringify([e.dn, e.attrs])));
  return out;
}

/**
 * The same search read from the store: an OR with a value no entry has is
 * not index-driven (Store.indexDriverOf), so it never meets the cache.
 */
function fromStore(dir: Directory, who: Identity, attr: string, value: string, base?: string): string[] {
  return found(dir, who, { type: 'or', filters: [eq(attr, value), eq(attr, 'never-held-by-any-entry')] }, base);
}

test('after each of 400 random writes, cached equality searches find what the store finds, on the writer and on a reader', () => {
  const random = prng(1407);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
  const mails = Array.from({ length: 6 }, (_, i) => `m${i}@x.test`);
  const cns = ['alpha', 'beta', 'gamma'];
  const live = new Set<string>();
  let next = 0;
  const w = writer.directory;
  for (let step = 0; step < 400; step++) {
    const uids = [...live];
    const op = uids.length < 3 ? 0 : Math.floor(random() * 6);
    const uid = uids.length ? pick(uids) : '';
    const dn = `uid=${uid},${PEOPLE}`;
    switch (op) {
      case 0: {
        const u = `u${next++}`;
        w.addSync(admin, `uid=${u},${PEOPLE}`, attrs({ objectClass: 'inetOrgPerson', uid: u, cn: pick(cns), sn: 'S', mail: pick(mails) }));
        live.add(u);
        break;
      }
      case 1:
        w.modifySync(admin, dn, [{ op: 'replace', type: 'mail', values: [pick(mails)] }]);
        break;
      case 2:
        try {
          w.modifySync(admin, dn, [{ op: 'add', type: 'mail', values: [pick(mails)] }]);
        } catch {
          // the entry holds that address already
        }
        break;
      case 3:
        w.modifySync(admin, dn, [{ op: 'replace', type: 'cn', values: [pick(cns)] }, { op: 'replace', type: 'description', values: [`step ${step}`] }]);
        break;
      case 4:
        w.delete(admin, dn);
        live.delete(uid);
        break;
      case 5: {
        const u = `u${next++}`;
        w.modifyDN(admin, dn, `uid=${u}`, true);
        live.delete(uid);
        live.add(u);
        break;
      }
    }
    for (const dir of [w, reader.directory]) {
      for (const [attr, values] of [['mail', mails], ['cn', cns]] as const) {
        for (const v of values) {
          const want = fromStore(dir, admin, attr, v);
          // Twice: the first may fill the cache, the second is answered from it.
          assert.deepEqual(found(dir, admin, eq(attr, v)), want, `step ${step}: (${attr}=${v})`);
          assert.deepEqual(found(dir, admin, eq(attr, v)), want, `step ${step}: (${attr}=${v}) again`);
          assert.deepEqual(found(dir, admin, eq(attr, v), PEOPLE), fromStore(dir, admin, attr, v, PEOPLE), `step ${step}: (${attr}=${v}) under ${PEOPLE}`);
        }
      }
      const any = uids.length ? `uid=${pick(uids)}` : 'uid=none';
      const [type, value] = any.split('=');
      assert.deepEqual(found(dir, admin, { type: 'and', filters: [eq(type, value), eq('objectClass', 'person')] }), fromStore(dir, admin, type, value));
    }
  }
});

test('what one identity had the cache keep is judged afresh for another: rights, hidden attributes, filters on them', async () => {
  const w = writer.directory;
  const dn = `uid=acl1,${PEOPLE}`;
  await w.add(admin, dn, attrs({ objectClass: 'inetOrgPerson', uid: 'acl1', cn: 'acl one', sn: 'A', mail: 'acl1@x.test', userPassword: 'pw-acl-1' }));
  await w.add(admin, `uid=acl2,${PEOPLE}`, attrs({ objectClass: 'inetOrgPerson', uid: 'acl2', cn: 'acl two', sn: 'A', mail: 'acl2@x.test' }));
  const user: Identity = { dn: `uid=acl2,${PEOPLE}`, ndn: `uid=acl2,${PEOPLE}`, anonymous: false, admin: false };
  const self: Identity = { dn, ndn: dn, anonymous: false, admin: false };
  for (const dir of [w, reader.directory]) {
    // The administrator fills the cache with the entry, userPassword included.
    const byAdmin = found(dir, admin, eq('mail', 'acl1@x.test'));
    assert.equal(byAdmin.length, 1);
    assert.match(byAdmin[0], /userPassword/);
    // Anonymous reads no user entry.
    assert.deepEqual(found(dir, ANONYMOUS, eq('mail', 'acl1@x.test')), []);
    assert.deepEqual(found(dir, ANONYMOUS, eq('uid', 'acl1')), []);
    // Another user reads the entry without its password, and cannot test the password in a filter.
    const byUser = found(dir, user, eq('mail', 'acl1@x.test'));
    assert.equal(byUser.length, 1);
    assert.doesNotMatch(byUser[0], /userPassword/);
    const stored = w.getByNdn(dn)!.attrs.userPassword[0];
    assert.deepEqual(found(dir, user, { type: 'and', filters: [eq('mail', 'acl1@x.test'), eq('userPassword', stored)] }), []);
    assert.deepEqual(found(dir, user, { type: 'and', filters: [eq('mail', 'acl1@x.test'), { type: 'present', attr: 'userPassword' }] }), []);
    // The entry itself sees its password; the administrator's filter on it matches.
    assert.match(found(dir, self, eq('mail', 'acl1@x.test'))[0], /userPassword/);
    assert.equal(found(dir, admin, { type: 'and', filters: [eq('mail', 'acl1@x.test'), { type: 'present', attr: 'userPassword' }] }).length, 1);
    // And the administrator again, after the others: still the whole entry.
    assert.deepEqual(found(dir, admin, eq('mail', 'acl1@x.test')), byAdmin);
  }
});

test('once full, the cache keeps a value at its second search, and reads the store at the first', () => {
  const w = writer.directory;
  for (const u of ['door1', 'door2', 'door3']) {
    w.addSync(admin, `uid=${u},${PEOPLE}`, attrs({ objectClass: 'inetOrgPerson', uid: u, cn: u, sn: 'D', mail: `${u}@x.test` }));
  }
  w.sync();
  const cache = new SearchCache(w.store, w, 2);
  const suffix = w.getByNdn(SUFFIX)!;
  const q = (u: string) => ({ base: suffix, scope: 'sub' as const, filter: compileFilter(w.schema, eq('uid', u)) });
  const dns = (r: ReturnType<SearchCache['driven']>) => r?.map((e) => e.dn);
  // Not full: kept at the first search.
  assert.deepEqual(dns(cache.driven(q('door1'))), [`uid=door1,${PEOPLE}`]);
  assert.deepEqual(dns(cache.driven(q('door2'))), [`uid=door2,${PEOPLE}`]);
  assert.equal(cache.size.idLists, 2);
  // Full: the first search of another value is the store's, the second is kept (the oldest list goes).
  assert.equal(cache.driven(q('door3')), undefined);
  assert.deepEqual(dns(cache.driven(q('door3'))), [`uid=door3,${PEOPLE}`]);
  assert.equal(cache.size.idLists, 2);
  assert.deepEqual(dns(cache.driven(q('door3'))), [`uid=door3,${PEOPLE}`]);
});
