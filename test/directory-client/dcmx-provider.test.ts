/**
 * The directory client's Content Sync consumer against dcmx's own provider
 * (server/ldap, RFC 4533) over a real socket: the copy of the whole DIT
 * after the refresh is what ldapsearch lists; adds, modifies, renames and
 * deletes made with the OpenLDAP tools are reported within 1 s; a consumer
 * that resumes from its cookie gets what changed meanwhile (a delete
 * included: no ghost); one whose cookie fell out of the change log
 * (DCMX_CHANGELOG_KEEP) is answered e-syncRefreshRequired and reloads, ending
 * with exactly the directory's content.
 * Needs: ldap-utils.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { adminArgs, ADMIN_PASSWORD, run, startTestAppliance, type TestAppliance } from '../helpers';
import { waitFor } from '../fixtures/wait';
import { recordingConsumer } from './fixture';

const PEOPLE = 'ou=people,o=internet';
let t: TestAppliance;

before(async () => {
  t = await startTestAppliance({ DCMX_CHANGELOG_KEEP: '10' });
  const r = await run('ldapadd', adminArgs(t), `dn: ${PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n${person('ann')}`);
  assert.equal(r.code, 0, r.stderr);
});
after(() => t?.close());

function person(uid: string): string {
  return `dn: uid=${uid},${PEOPLE}\nobjectClass: inetOrgPerson\nuid: ${uid}\ncn: ${uid}\nsn: ${uid}\nmail: ${uid}@example.org\n`;
}

async function ldap(tool: 'ldapadd' | 'ldapmodify' | 'ldapdelete', input: string): Promise<void> {
  const r = await run(tool, adminArgs(t), input);
  assert.equal(r.code, 0, `${tool}: ${r.stderr}`);
}

/** Every DN below o=internet as ldapsearch lists it, lower case, sorted. */
async function directoryDns(): Promise<string[]> {
  const r = await run('ldapsearch', [...adminArgs(t), '-LLL', '-o', 'ldif-wrap=no', '-b', 'o=internet', '1.1']);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split('\n').filter((l) => l.startsWith('dn: ')).map((l) => l.slice(4).toLowerCase()).sort();
}

const consumer = (cookie?: string) => recordingConsumer({ url: t.ldapUrl, bindDn: t.adminDN, password: ADMIN_PASSWORD, base: 'o=internet', cookie });

test('the consumer follows dcmx\'s provider: refresh, persist within 1 s, resume from the cookie, reload after e-syncRefreshRequired', async () => {
  const a = consumer();
  a.sync.start();
  await waitFor('the initial refresh', () => a.state.refreshed === 1);
  assert.deepEqual(a.dns(), await directoryDns());
  assert.match(a.state.cookie ?? '', /^rid=\d{3},csn=\d{14}\.\d{6}Z#\d{6}#\d{3}#\d{6}$/);

  const lag = a.lag;
  const bob = `uid=bob,${PEOPLE}`;
  const rob = `uid=rob,${PEOPLE}`;
  const lags = [
    await lag(bob, () => ldap('ldapadd', person('bob'))),
    await lag(bob, () => ldap('ldapmodify', `dn: ${bob}\nchangetype: modify\nreplace: mail\nmail: robert@example.org\n`)),
    await lag(rob, () => ldap('ldapmodify', `dn: ${bob}\nchangetype: modrdn\nnewrdn: uid=rob\ndeleteoldrdn: 1\n`)),
  ];
  assert.deepEqual([...a.copy.entries.values()].find((e) => e.dn.toLowerCase() === rob)?.attrs.mail, ['robert@example.org']);
  lags.push(await lag(rob, () => ldap('ldapdelete', `${rob}\n`)));
  assert.ok(Math.max(...lags) < 1000, `every change reported within 1 s (${lags.join(', ')} ms)`);
  assert.deepEqual(a.dns(), await directoryDns(), 'a rename leaves no ghost under the old DN');

  // Away for a few changes: resumed from the cookie, only what changed comes.
  a.sync.stop();
  await ldap('ldapadd', person('cy'));
  await ldap('ldapdelete', `uid=ann,${PEOPLE}\n`);
  const b = consumer(a.state.cookie);
  for (const [k, v] of a.copy.entries) b.copy.entries.set(k, v);
  b.sync.start();
  await waitFor('the refresh from the cookie', () => b.state.refreshed === 1);
  assert.equal(b.events[0], 'begin from cookie');
  assert.ok(!b.events.includes(`add ${PEOPLE}`), `unchanged entries are not sent again: ${b.events.join('; ')}`);
  assert.deepEqual(b.dns(), await directoryDns(), 'the delete made meanwhile is applied: no ghost');
  b.sync.stop();

  // Away for more changes than the change log keeps (DCMX_CHANGELOG_KEEP=10): a full reload, no ghost.
  await ldap('ldapdelete', `uid=cy,${PEOPLE}\n`);
  for (let i = 0; i < 12; i++) await ldap('ldapmodify', `dn: ${PEOPLE}\nchangetype: modify\nreplace: description\ndescription: change ${i}\n`);
  const c = consumer(b.state.cookie);
  for (const [k, v] of b.copy.entries) c.copy.entries.set(k, v);
  c.sync.start();
  await waitFor('the reload', () => c.state.refreshed === 1);
  assert.deepEqual(c.events.filter((e) => e.startsWith('begin')), ['begin from cookie', 'begin full'], 'e-syncRefreshRequired, then a full refresh');
  assert.deepEqual(c.dns(), await directoryDns(), 'after the reload the copy is the directory: uid=cy is gone');
  c.sync.stop();
});

test('stop() and start() while a connection is being made: the attempt of the stopped run gives up, one sync runs', async () => {
  const a = consumer();
  a.sync.start();
  a.sync.stop();
  a.sync.start();
  await waitFor('the refresh', () => a.state.refreshed >= 1);
  // A second search would begin right behind the first (same directory, same moment): give it time to show.
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(a.events.filter((e) => e.startsWith('begin')), ['begin full'], a.events.join('; '));
  a.sync.stop();
});
