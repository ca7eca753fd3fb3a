/**
 * mailMessageStore computed on read (DirectoryOptions.dataDir): the Maildir
 * delivery uses for an entry's first `mail`, for searches that name it and
 * for filters, never for '*'; refused in writes. The end-to-end path
 * (ldapsearch, Dovecot's userdb) is test/mta/dovecot.test.ts.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { openDirectory } from '../../server/directory/open';
import { mailboxPath } from '../../server/directory/mailbox';
import type { FilterInput } from '../../server/directory/filter';
import { DirectoryError } from '../../server/directory/errors';
import { ADMIN, attrs, CHEAP_PASSWORDS, SUFFIX } from './fixture';

const DATA = '/srv/dcmx-data';
const PEOPLE = 'ou=people,o=internet';

async function setup(opts: { dataDir?: string } = { dataDir: DATA }) {
  const { directory: dir } = openDirectory({ file: ':memory:', suffix: SUFFIX, adminDN: ADMIN, passwords: CHEAP_PASSWORDS, dataDir: opts.dataDir });
  await dir.bootstrap({ kind: 'configured', password: 'secret-admin' });
  const admin = dir.systemIdentity();
  await dir.add(admin, PEOPLE, attrs({ objectClass: ['top', 'organizationalUnit'], ou: 'people' }));
  const user = (uid: string, mail?: string) => dir.add(admin, `uid=${uid},${PEOPLE}`, attrs({
    objectClass: ['top', 'inetOrgPerson', 'inetMailUser'], uid, cn: uid, sn: uid, ...(mail ? { mail } : {}),
  }));
  const search = (filter: FilterInput, attributes: string[]) => {
    const out: Record<string, Record<string, string[]>> = {};
    dir.search(admin, { base: PEOPLE, scope: 'one', filter, attributes, typesOnly: false, sizeLimit: 0, timeLimit: 0 }, (e) => {
      out[e.dn] = Object.fromEntries(e.attrs.map(([k, v]) => [k, v.map(String)]));
    });
    return out;
  };
  return { dir, admin, user, search };
}

test('named in a search: the Maildir of the first mail value, as delivery names it, encoded names included', async () => {
  const { user, search } = await setup();
  await user('alice', 'Alice@Example.ORG');
  await user('jose', 'Jo!se+tag@example.org');
  await user('quote', "o'neil@example.org");
  await user('nomail');
  await user('bad', 'no-at-sign');
  const got = search({ type: 'present', attr: 'objectClass' }, ['mailMessageStore']);
  assert.deepEqual(got[`uid=alice,${PEOPLE}`].mailMessageStore, [mailboxPath(DATA, 'alice@example.org')]);
  assert.deepEqual(got[`uid=alice,${PEOPLE}`].mailMessageStore, [`${DATA}/mail/example.org/alice`]);
  assert.deepEqual(got[`uid=jose,${PEOPLE}`].mailMessageStore, [`${DATA}/mail/example.org/jo%21se+tag`]);
  assert.deepEqual(got[`uid=quote,${PEOPLE}`].mailMessageStore, [`${DATA}/mail/example.org/o%27neil`]);
  assert.equal(got[`uid=nomail,${PEOPLE}`].mailMessageStore, undefined, 'no mail, no mailbox');
  assert.equal(got[`uid=bad,${PEOPLE}`].mailMessageStore, undefined, 'an address that names no mailbox');
  // '*' keeps to stored attributes; a filter tests the computed value.
  assert.equal(search({ type: 'present', attr: 'objectClass' }, ['*'])[`uid=alice,${PEOPLE}`].mailMessageStore, undefined);
  assert.deepEqual(Object.keys(search({ type: 'equal', attr: 'mailMessageStore', value: `${DATA}/mail/example.org/o%27neil` }, ['uid'])), [`uid=quote,${PEOPLE}`]);
  assert.deepEqual(Object.keys(search({ type: 'present', attr: 'mailMessageStore' }, ['1.1'])).sort(),
    ['alice', 'jose', 'quote'].map((u) => `uid=${u},${PEOPLE}`).sort());
});

test('a changed mail moves mailMessageStore with it', async () => {
  const { dir, admin, user, search } = await setup();
  await user('bob', 'bob@example.org');
  await dir.modify(admin, `uid=bob,${PEOPLE}`, [{ op: 'replace', type: 'mail', values: ['robert@example.net'] }]);
  assert.deepEqual(search({ type: 'equal', attr: 'uid', value: 'bob' }, ['mailMessageStore'])[`uid=bob,${PEOPLE}`].mailMessageStore, [`${DATA}/mail/example.net/robert`]);
});

test('written, it is refused (constraintViolation) for add and modify; a stored one may be deleted', async () => {
  const { dir, admin, user } = await setup();
  const refused = (e: unknown) => e instanceof DirectoryError && e.result === 'constraintViolation' && /computed/.test(e.message);
  await assert.rejects(dir.add(admin, `uid=carol,${PEOPLE}`, attrs({
    objectClass: ['top', 'inetOrgPerson', 'inetMailUser'], uid: 'carol', cn: 'c', sn: 'c', mail: 'carol@example.org', mailMessageStore: '/tmp/x',
  })), refused);
  await user('dave', 'dave@example.org');
  for (const op of ['add', 'replace'] as const) {
    await assert.rejects(dir.modify(admin, `uid=dave,${PEOPLE}`, [{ op, type: 'mailMessageStore', values: ['/tmp/x'] }]), refused);
  }
});

test('without a data dir it is an ordinary stored attribute', async () => {
  const { dir, admin, search } = await setup({});
  await dir.add(admin, `uid=erin,${PEOPLE}`, attrs({
    objectClass: ['top', 'inetOrgPerson', 'inetMailUser'], uid: 'erin', cn: 'e', sn: 'e', mail: 'erin@example.org', mailMessageStore: 'store1',
  }));
  assert.deepEqual(search({ type: 'equal', attr: 'uid', value: 'erin' }, ['mailMessageStore'])[`uid=erin,${PEOPLE}`].mailMessageStore, ['store1']);
});
