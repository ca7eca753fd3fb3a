/**
 * importLdif over an in-memory directory: clear-text passwords are hashed
 * several records at a time while the records are written in file order
 * through the one write path, and the progress reported counts records
 * written, never records merely read.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { countLdifRecords, importLdif, type ImportProgress } from '../../server/admin/ldif-io';
import { LocalWriter } from '../../server/directory/writes';
import type { AttrInput } from '../../server/directory/entry';
import { memoryDirectory } from '../directory/fixture';
import { tempDirs } from '../helpers';

const newDir = tempDirs('dcmx-ldif-import-');

const USERS = 120;
const user = (i: number) => `uid=u${i},ou=people,o=internet`;

/** ou=people, USERS users with clear-text passwords, then a modify of u3 and a delete of u7. */
function usersLdif(): { text: string; order: string[] } {
  let text = 'version: 1\n\ndn: ou=people,o=internet\nobjectClass: organizationalUnit\nou: people\n';
  const order = ['ou=people,o=internet'];
  for (let i = 0; i < USERS; i++) {
    text += `\ndn: ${user(i)}\nobjectClass: inetOrgPerson\nuid: u${i}\ncn: User ${i}\nsn: U\nuserPassword: clear-pw-${i}\n`;
    order.push(user(i));
  }
  text += `\ndn: ${user(3)}\nchangetype: modify\nreplace: userPassword\nuserPassword: changed-pw-3\n-\n`;
  order.push(user(3));
  text += `\ndn: ${user(7)}\nchangetype: delete\n`;
  order.push(user(7));
  return { text, order };
}

test('clear-text passwords are hashed several records at a time; records are written in file order', async () => {
  const { dir } = await memoryDirectory();
  const { text, order } = usersLdif();
  const file = path.join(newDir(), 'users.ldif');
  fs.writeFileSync(file, text);

  let active = 0;
  let peak = 0;
  const hash = dir.hashPasswords.bind(dir);
  dir.hashPasswords = async (attrs: AttrInput[]) => {
    active++;
    peak = Math.max(peak, active);
    try {
      return await hash(attrs);
    } finally {
      active--;
    }
  };
  const from = dir.store.changeRange().last + 1;
  const r = await importLdif(dir, new LocalWriter(dir), file, { batchSize: 25 });
  assert.deepEqual(r, { records: order.length, failed: 0, skipped: 0 });
  assert.ok(peak > 1, `hashing ran ${peak} at a time`);
  assert.ok(peak <= 16, `at most 16 at a time, was ${peak}`);

  const written = [...dir.store.changes(from)].map((c) => c.targetDN);
  assert.deepEqual(written, order, 'one change per record, in file order');
  assert.equal((await dir.bind(user(0), 'clear-pw-0')).dn, user(0));
  assert.equal((await dir.bind(user(USERS - 1), `clear-pw-${USERS - 1}`)).dn, user(USERS - 1));
  assert.equal((await dir.bind(user(3), 'changed-pw-3')).dn, user(3), 'the modify came after the add');
  await assert.rejects(dir.bind(user(3), 'clear-pw-3'));
  assert.equal(dir.getByNdn(user(7)), undefined, 'the delete came after the add');
  for (const ndn of order.slice(1, -2)) {
    const pw = dir.getByNdn(ndn)?.attrs.userPassword?.[0] ?? '';
    if (ndn !== user(7)) assert.match(pw, /^\{CRYPT\}\$6\$/, `${ndn} stored hashed`);
  }
});

test('progress counts the records written, never the records read ahead', async () => {
  const { dir } = await memoryDirectory();
  const { text, order } = usersLdif();
  const file = path.join(newDir(), 'users.ldif');
  fs.writeFileSync(file, text);
  const from = dir.store.changeRange().last;
  const seen: { p: ImportProgress; written: number }[] = [];
  await importLdif(dir, new LocalWriter(dir), file, {
    batchSize: 10,
    onProgress: (p) => seen.push({ p: { ...p }, written: dir.store.changeRange().last - from }),
  });
  assert.ok(seen.length > 0);
  for (const { p, written } of seen) {
    assert.equal(p.total, order.length, 'the total is the records of the file');
    assert.equal(p.records, written, 'records = records written');
    assert.ok(p.done <= written, `done ${p.done} is not ahead of the ${written} written`);
  }
  const last = seen[seen.length - 1].p;
  assert.equal(last.done, last.total, 'the last report is 100%');
});

test('countLdifRecords counts dn: lines only, across chunk boundaries', async () => {
  const file = path.join(newDir(), 'count.ldif');
  const filler = 'description: ' + 'x'.repeat(70) + '\n';
  let text = 'version: 1\n# dn: a comment is not a record\n\n';
  let n = 0;
  while (text.length < 3 * (1 << 20)) {
    text += `${n % 2 ? 'DN' : 'dn'}: cn=e${n},o=internet\r\nobjectClass: device\ncn: e${n}\n${filler.repeat(n % 7)} dn: a continuation\n\n`;
    n++;
  }
  text += 'dn:: Y249YmFzZTY0LG89aW50ZXJuZXQ=\nobjectClass: device\ncn: base64\n';
  fs.writeFileSync(file, text);
  assert.equal(await countLdifRecords(file), n + 1);
});
