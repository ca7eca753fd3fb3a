/**
 * The change feed: every change-log row carries its entry's UUID (RFC 4530)
 * and its modifications as data, whatever their length or bytes; LDIF is
 * only the `changes` attribute of the cn=changelog entries, made from that
 * data; a store written before the feed was data (migration 006) is
 * converted when opened, nothing lost.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { attrs, memoryDirectory, ADMIN, SUFFIX } from './fixture';
import { openDirectory } from '../../server/directory/open';
import { entryUuidOf, valueToBytes } from '../../server/directory/entry';
import { ChangeFollower, changedDns, valuesAdded, type ChangeRecord } from '../../server/directory/changes';
import { formatLdifAttributes, formatLdifModifications, parseLdifText } from '../../schema/ldif';
import type { Directory } from '../../server/directory/directory';
import { tempDirs } from '../helpers';

const newDir = tempDirs('dcmx-feed-');
const O = SUFFIX;
const LONG = `${'l'.repeat(62)}@example.org`;
const UNICODE = `Ünïcödé ${'ß'.repeat(40)} ✓`;
const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10]);

function uuidOf(dir: Directory, dn: string): string {
  const e = dir.getByNdn(dir.normalize(dn));
  assert.ok(e, dn);
  return entryUuidOf(e.attrs)!;
}

/** The changes after `from`, as the feed gives them. */
function feed(dir: Directory, from: number): ChangeRecord[] {
  return [...dir.changesSince(from + 1)];
}

test('add, modify, modrdn and delete rows carry the entry\'s UUID; a delete keeps the deleted entry\'s', async () => {
  const { dir, admin } = await memoryDirectory();
  const from = dir.changeRange().last;
  await dir.add(admin, `dc=org,${O}`, attrs({ objectClass: 'domain', dc: 'org' }));
  const uuid = uuidOf(dir, `dc=org,${O}`);
  await dir.modify(admin, `dc=org,${O}`, [{ op: 'add', type: 'description', values: ['x'] }]);
  dir.modifyDN(admin, `dc=org,${O}`, 'dc=net', true);
  dir.delete(admin, `dc=net,${O}`);
  await dir.add(admin, `dc=net,${O}`, attrs({ objectClass: 'domain', dc: 'net' }));
  const again = uuidOf(dir, `dc=net,${O}`);
  assert.notEqual(again, uuid, 'a new entry at the same DN is another entry');
  const rows = feed(dir, from);
  assert.deepEqual(rows.map((r) => [r.changeType, r.entryUUID]), [
    ['add', uuid], ['modify', uuid], ['modrdn', uuid], ['delete', uuid], ['add', again],
  ]);
  assert.match(uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  const rename = rows[2];
  assert.ok(rename.changeType === 'modrdn');
  assert.deepEqual(changedDns(rename).map((d) => d.ndn), [`dc=org,${O}`, `dc=net,${O}`]);
});

test('values are data: a long address, non-ASCII and binary values come out as stored, whatever LDIF would do to them', async () => {
  const { dir, admin } = await memoryDirectory();
  await dir.add(admin, `dc=org,${O}`, attrs({ objectClass: 'domain', dc: 'org' }));
  const from = dir.changeRange().last;
  await dir.add(admin, `uid=u,dc=org,${O}`, attrs({ objectClass: ['inetOrgPerson', 'inetMailUser'], uid: 'u', cn: 'u', sn: 'u', mail: LONG, description: UNICODE }));
  await dir.modify(admin, `uid=u,dc=org,${O}`, [
    { op: 'add', type: 'mailAlternateAddress', values: [LONG.replace('@', '.alt@')] },
    { op: 'replace', type: 'jpegPhoto', values: [`\u0000b64:${JPEG.toString('base64')}`] },
    { op: 'delete', type: 'description', values: [] },
  ]);
  const [add, mod] = feed(dir, from);
  assert.ok(add.changeType === 'add' && mod.changeType === 'modify');
  assert.deepEqual(add.attributes.mail, [LONG]);
  assert.deepEqual(add.attributes.description, [UNICODE]);
  assert.equal(add.attributes.entryUUID, undefined, 'operational attributes are in the row, not repeated in the data');
  assert.deepEqual(mod.modifications, [
    { op: 'add', type: 'mailAlternateAddress', values: [LONG.replace('@', '.alt@')] },
    { op: 'replace', type: 'jpegPhoto', values: [`\u0000b64:${JPEG.toString('base64')}`] },
    { op: 'delete', type: 'description', values: [] },
  ]);
  assert.deepEqual([...valuesAdded(add)].find(([t]) => t === 'mail'), ['mail', [LONG]]);
  assert.deepEqual([...valuesAdded(mod)].map(([t]) => t), ['mailAlternateAddress', 'jpegPhoto'], 'a delete adds nothing');

  // The LDIF view: folded at 76 columns, base64 where RFC 2849 wants it, and it reads back as the data.
  const entry = (n: number) => dir.get(admin, `changeNumber=${n},cn=changelog`)!;
  const addText = entry(add.changeNumber).attrs.changes[0];
  assert.match(addText, /^mail: l{62}@example\n \.org\n/m, 'the long address is folded in LDIF');
  assert.match(addText, /^description:: /m, 'the non-ASCII value is base64 in LDIF');
  const [readBack] = parseLdifText(`dn: cn=x\nchangetype: add\n${addText}`);
  assert.ok(readBack.kind === 'add');
  assert.deepEqual(readBack.attrs.get('mail'), [LONG]);
  assert.deepEqual(readBack.attrs.get('description'), [UNICODE]);
  const modText = entry(mod.changeNumber).attrs.changes[0];
  assert.equal(modText, formatLdifModifications(mod.modifications.map((m) => ({ op: m.op, attr: m.type, values: m.values.map(valueToBytes) }))));
  assert.match(modText, /^jpegPhoto:: \/9j\/4AAQ$/m);
});

test('ChangeFollower delivers the feed in order, in process and after a poll', async () => {
  const { dir, admin } = await memoryDirectory();
  const got: ChangeRecord[][] = [];
  const f = new ChangeFollower(dir, { onChanges: (rows) => got.push(rows), onGap: () => assert.fail('no gap') });
  try {
    await dir.add(admin, `dc=org,${O}`, attrs({ objectClass: 'domain', dc: 'org', description: UNICODE }));
    assert.equal(got.length, 1);
    assert.ok(got[0][0].changeType === 'add');
    assert.deepEqual(got[0][0].attributes.description, [UNICODE]);
    assert.equal(got[0][0].entryUUID, uuidOf(dir, `dc=org,${O}`));
  } finally {
    f.stop();
  }
});

// --------------------------------------------------------------------------- a store from before migration 006

/**
 * Turns a store written by this version back into one written before
 * migration 006, as that version wrote it: the changes of adds and modifies
 * as LDIF (formatLdifAttributes / formatLdifModifications, as directory.ts
 * and zones.ts did), no entry UUIDs, no data column, no CSNs (migration
 * 007), none of the queue columns of migrations 008, 010 and 011, no MTA-STS
 * policy table (009), user_version 5.
 */
function downgrade(dir: Directory): void {
  const db = dir.store.db;
  const ldif = new Map<number, string | null>();
  for (const r of dir.changesSince(0)) {
    if (r.changeType === 'add') ldif.set(r.changeNumber, formatLdifAttributes(Object.entries(r.attributes).map(([k, vs]) => [k, vs.map(valueToBytes)])));
    else if (r.changeType === 'modify') {
      ldif.set(r.changeNumber, formatLdifModifications(r.modifications.map((m) => ({ op: m.op, attr: m.type, values: m.values.map(valueToBytes) }))));
    } else ldif.set(r.changeNumber, null);
  }
  db.transaction(() => {
    const put = db.prepare('UPDATE changelog SET changes = ? WHERE change_number = ?');
    for (const [n, text] of ldif) put.run(text, n);
    db.exec('DROP INDEX changelog_legacy; ALTER TABLE changelog DROP COLUMN entry_uuid; ALTER TABLE changelog DROP COLUMN data;');
    db.exec('DROP INDEX changelog_csn; DROP INDEX entries_uuid; ALTER TABLE changelog DROP COLUMN csn;');
    db.exec('ALTER TABLE queue_messages DROP COLUMN held_at; ALTER TABLE queue_messages DROP COLUMN delivering_since; ALTER TABLE queue_recipients DROP COLUMN last_attempt;');
    db.exec('ALTER TABLE queue_messages DROP COLUMN submitted; ALTER TABLE queue_messages DROP COLUMN submitter;');
    db.exec('DROP TABLE mta_sts_policies;');
    db.pragma('user_version = 5');
  })();
}

test('a store from before migration 006 is converted when opened: data as it was, UUIDs of the entries that still exist', async () => {
  const file = path.join(newDir(), 'dcmx.sqlite');
  const open = () => openDirectory({ file, suffix: SUFFIX, adminDN: ADMIN }).directory;
  let dir = open();
  await dir.bootstrap({ kind: 'configured', password: 'secret-admin' });
  const admin = dir.systemIdentity();
  // A zone (its SOA bumps are rows of their own), people, a rename of a subtree, a delete and a re-add.
  await dir.add(admin, `dc=org,${O}`, attrs({ objectClass: 'domain', dc: 'org' }));
  await dir.add(admin, `dc=example,dc=org,${O}`, attrs({
    objectClass: ['dNSDomain2', 'mailDomain'], dc: 'example', sOARecord: 'ns.example.org. hostmaster.example.org. 1 3600 900 604800 60',
    nSRecord: 'ns.example.org.', mXRecord: '10 mx.example.org.',
  }));
  await dir.add(admin, `ou=people,dc=example,dc=org,${O}`, attrs({ objectClass: 'organizationalUnit', ou: 'people' }));
  await dir.add(admin, `uid=u,ou=people,dc=example,dc=org,${O}`, attrs({
    objectClass: ['inetOrgPerson', 'inetMailUser'], uid: 'u', cn: 'u', sn: 'u', mail: LONG, description: UNICODE,
  }));
  await dir.modify(admin, `uid=u,ou=people,dc=example,dc=org,${O}`, [
    { op: 'replace', type: 'jpegPhoto', values: [`\u0000b64:${JPEG.toString('base64')}`] },
    { op: 'add', type: 'mailAlternateAddress', values: ['a@example.org', 'b@example.org'] },
  ]);
  dir.modifyDN(admin, `ou=people,dc=example,dc=org,${O}`, 'ou=staff', true);
  await dir.modify(admin, `uid=u,ou=staff,dc=example,dc=org,${O}`, [{ op: 'delete', type: 'mailAlternateAddress', values: ['a@example.org'] }]);
  await dir.add(admin, `uid=gone,ou=staff,dc=example,dc=org,${O}`, attrs({ objectClass: 'inetOrgPerson', uid: 'gone', cn: 'g', sn: 'g' }));
  dir.delete(admin, `uid=gone,ou=staff,dc=example,dc=org,${O}`);
  await dir.add(admin, `uid=gone,ou=staff,dc=example,dc=org,${O}`, attrs({ objectClass: 'inetOrgPerson', uid: 'gone', cn: 'g2', sn: 'g2' }));
  await dir.add(admin, `cn=tmp,${O}`, attrs({ objectClass: 'organizationalRole', cn: 'tmp' }));
  await dir.modify(admin, `cn=tmp,${O}`, [{ op: 'add', type: 'description', values: ['soon gone'] }]);
  dir.modifyDN(admin, `cn=tmp,${O}`, 'cn=tmp2', true);
  dir.delete(admin, `cn=tmp2,${O}`);

  const before = feed(dir, 0);
  const top = dir.getByNdn(dir.suffixNdn)!;
  const existing = new Set([top, ...dir.store.descendants(top.rpath)].map((e) => entryUuidOf(e.attrs)));
  assert.ok(before.some((r) => r.changeType === 'modify' && r.modifications.some((m) => m.type === 'sOARecord')), 'SOA bumps are in the log');
  downgrade(dir);
  dir.store.close();

  dir = open();
  try {
    const after = feed(dir, 0);
    // Migration 007 gives the old rows CSNs of their time and number, in order.
    const legacyCsn = (r: ChangeRecord) => `${r.changeTime.slice(0, 14)}.000000Z#${r.changeNumber.toString(16).padStart(6, '0')}#000#000000`;
    const expected = before.map((r) => ({ ...r, entryUUID: existing.has(r.entryUUID) ? r.entryUUID : null, csn: legacyCsn(r) }));
    assert.deepEqual(after, expected);
    assert.ok(after.filter((r) => r.entryUUID === null).length >= 5, 'the rows of deleted entries have no UUID');
    assert.ok(after.filter((r) => r.targetNdn.startsWith('ou=people') && r.entryUUID !== null).length >= 2, 'the renamed entry is followed back');
    assert.equal(dir.store.hasLegacyChanges(), false);
    // New rows carry UUIDs as ever, after the converted ones.
    await dir.modify(dir.systemIdentity(), `uid=u,ou=staff,dc=example,dc=org,${O}`, [{ op: 'replace', type: 'mail', values: ['u@example.org'] }]);
    const [last] = feed(dir, after[after.length - 1].changeNumber);
    assert.equal(last.entryUUID, uuidOf(dir, `uid=u,ou=staff,dc=example,dc=org,${O}`));
  } finally {
    dir.store.close();
  }
  // Opening again converts nothing more and changes nothing.
  dir = open();
  try {
    assert.equal(dir.store.hasLegacyChanges(), false);
  } finally {
    dir.store.close();
  }
});
