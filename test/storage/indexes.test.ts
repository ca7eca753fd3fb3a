/**
 * The default attribute indexes cover what NSS clients (sssd, nslcd) look
 * POSIX accounts and groups up by — uidNumber, gidNumber, memberUid (RFC
 * 2307) — so those searches get their candidates from attr_index, not by
 * reading entries; and a store indexed by an earlier version, whose index
 * set lacked them, is reindexed when it is opened.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { DEFAULT_INDEXES, type Directory } from '../../server/directory/directory';
import { indexRows } from '../../server/directory/entry';
import { loadSchema, openDirectory } from '../../server/directory/open';
import type { FilterInput } from '../../server/directory/filter';
import type { Identity } from '../../server/directory/access';
import { Store } from '../../storage/store';
import { attrs, ADMIN, CHEAP_PASSWORDS, memoryDirectory, SUFFIX } from '../directory/fixture';
import { tempDirs } from '../helpers';
import { assertIndexLookup, candidateQuery, drivingAttribute, type CandidateQuery } from './plan';

const NSS = ['uidnumber', 'gidnumber', 'memberuid'];

/** Three accounts and a group with two members under o=internet. */
async function populate(dir: Directory, admin: Identity): Promise<void> {
  for (const [i, uid] of ['alice', 'bob', 'carol'].entries()) {
    await dir.add(admin, `uid=${uid},${SUFFIX}`, attrs({
      objectClass: ['inetOrgPerson', 'posixAccount', 'shadowAccount'], uid, cn: uid, sn: uid,
      uidNumber: String(10001 + i), gidNumber: '10000', homeDirectory: `/home/${uid}`, shadowLastChange: '19000',
    }));
  }
  await dir.add(admin, `cn=staff,${SUFFIX}`, attrs({ objectClass: 'posixGroup', cn: 'staff', gidNumber: '10000', memberUid: ['alice', 'bob'] }));
}

function found(dir: Directory, admin: Identity, filter: FilterInput): { dns: string[]; query: CandidateQuery } {
  const dns: string[] = [];
  const query = candidateQuery(dir, () => dir.search(admin, {
    base: SUFFIX, scope: 'sub', filter, attributes: ['1.1'], typesOnly: false, sizeLimit: 0, timeLimit: 0,
  }, (e) => dns.push(e.dn)));
  return { dns: dns.sort(), query };
}

/** The NSS attribute a lookup is by (the one that is not objectClass). */
function key(filter: FilterInput): string {
  const terms = filter.type === 'and' ? filter.filters : [filter];
  return terms.map((t) => (t.type === 'equal' ? t.attr.toLowerCase() : '')).find((a) => a && a !== 'objectclass')!;
}

const eq = (attr: string, value: string): FilterInput => ({ type: 'equal', attr, value });
/** The lookups nslcd makes (its default filters: objectClass and the key). */
const LOOKUPS: [FilterInput, string[]][] = [
  [{ type: 'and', filters: [eq('objectClass', 'posixAccount'), eq('uidNumber', '10002')] }, [`uid=bob,${SUFFIX}`]],
  [eq('uidNumber', '10003'), [`uid=carol,${SUFFIX}`]],
  [{ type: 'and', filters: [eq('objectClass', 'posixGroup'), eq('gidNumber', '10000')] }, [`cn=staff,${SUFFIX}`]],
  [eq('gidNumber', '10000'), [`cn=staff,${SUFFIX}`, `uid=alice,${SUFFIX}`, `uid=bob,${SUFFIX}`, `uid=carol,${SUFFIX}`]],
  [{ type: 'and', filters: [eq('objectClass', 'posixGroup'), eq('memberUid', 'bob')] }, [`cn=staff,${SUFFIX}`]],
  [eq('memberUid', 'alice'), [`cn=staff,${SUFFIX}`]],
];

describe('NSS lookups (RFC 2307) go through the index', () => {
  test('uidNumber, gidNumber and memberUid are indexed by default', () => {
    for (const a of NSS) assert.ok(DEFAULT_INDEXES.includes(a), a);
  });

  test('searches by uidNumber, gidNumber and memberUid find the entries from attr_index', async () => {
    const { dir, admin } = await memoryDirectory();
    await populate(dir, admin);
    for (const [filter, want] of LOOKUPS) {
      const r = found(dir, admin, filter);
      assert.deepEqual(r.dns, want, JSON.stringify(filter));
      assertIndexLookup(r.query.plan);
      // Driven by the NSS attribute, not by objectClass (which every entry of a kind shares).
      assert.equal(drivingAttribute(r.query), key(filter), JSON.stringify(filter));
    }
    const rows = dir.store.db.prepare('SELECT attr, count(*) AS n FROM attr_index WHERE attr IN (?, ?, ?) GROUP BY attr ORDER BY attr').all(...NSS);
    assert.deepEqual(rows, [{ attr: 'gidnumber', n: 4 }, { attr: 'memberuid', n: 2 }, { attr: 'uidnumber', n: 3 }]);
  });
});

describe('a store indexed by an earlier version', () => {
  const dirs = tempDirs('dcmx-indexes-');

  test('is reindexed when opened: the new default indexes cover the entries it already holds', async () => {
    const file = path.join(dirs(), 'dcmx.sqlite');
    const opts = { file, suffix: SUFFIX, adminDN: ADMIN, passwords: CHEAP_PASSWORDS };
    let { directory: dir } = openDirectory(opts);
    await dir.bootstrap({ kind: 'configured', password: 'secret-admin' });
    await populate(dir, dir.systemIdentity());
    dir.store.close();

    // What the earlier version left: the index of its own set, and the meta row naming that set.
    const schema = loadSchema();
    const older = new Set(DEFAULT_INDEXES.filter((a) => !NSS.includes(a)));
    const store = Store.open(file, older);
    store.reindex((e) => indexRows(schema, e.attrs, older));
    store.setMeta('indexed', [...older].sort().join(','));
    const count = (s: Store) => (s.db.prepare(`SELECT count(*) AS n FROM attr_index WHERE attr IN (${NSS.map(() => '?').join(',')})`).get(...NSS) as { n: number }).n;
    assert.equal(count(store), 0, 'the earlier index has no rows of the new attributes');
    store.close();

    ({ directory: dir } = openDirectory(opts));
    try {
      assert.equal(count(dir.store), 9);
      assert.equal(dir.store.getMeta('indexed'), [...DEFAULT_INDEXES].sort().join(','));
      for (const [filter, want] of LOOKUPS) {
        const r = found(dir, dir.systemIdentity(), filter);
        assert.deepEqual(r.dns, want, JSON.stringify(filter));
        assertIndexLookup(r.query.plan);
        assert.equal(drivingAttribute(r.query), key(filter), JSON.stringify(filter));
      }
    } finally {
      dir.store.close();
    }
  });
});
