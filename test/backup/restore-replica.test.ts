/**
 * A real OpenLDAP slapd read replica (syncrepl refreshAndPersist, dcmx's
 * schema) across a restore of dcmx: the replica followed dcmx past the
 * backup; dcmx is destroyed and restored from it (same port); slapd, which
 * kept running and retrying, resumes with its cookie from ahead (which the
 * restored change log does not hold), gets a full refresh (RFC 4533 §3.3.1)
 * and ends identical to the restored dcmx: what came after the backup is
 * gone from it too, and what was deleted after the backup is back (slapd
 * ignores an entry whose entryCSN is older than its own state: the restore
 * gives every entry a new one, restore.ts renewEntryCsns).
 * Needs: slapd, ldap-utils.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ADMIN_PASSWORD, run, runDcmx, startSpawned, stopChild, tempDirs, testEnv, type SpawnedAppliance } from '../helpers';
import { freePort, replicaCaughtUp, replicaLines, startSlapd, type Slapd } from '../fixtures/slapd';

const SUFFIX = 'o=internet';
const REPLICATOR = `uid=replica1,ou=services,${SUFFIX}`;
const REPLICATOR_PW = 'replica1-secret';
const PEOPLE = `ou=people,dc=example,dc=org,${SUFFIX}`;
/** Compared on both sides: the user attributes and the operational ones a replica carries over. */
const COMPARED = ['*', 'entryUUID', 'entryCSN', 'modifyTimestamp'];

const tmp = tempDirs('dcmx-restore-replica-');
let dcmx: SpawnedAppliance | undefined;
let slapd: Slapd | undefined;
after(async () => {
  await slapd?.stop();
  if (dcmx) await stopChild(dcmx.child);
});

const person = (uid: string) => `dn: uid=${uid},${PEOPLE}\nobjectClass: inetOrgPerson\nuid: ${uid}\ncn: ${uid}\nsn: ${uid}\nmail: ${uid}@example.org\n`;

test('a slapd replica ahead of the backup reloads from the restored dcmx and ends identical to it', async () => {
  const dataDir = path.join(tmp(), 'data');
  const ldapPort = await freePort();
  const env = { DCMX_LDAP_PORT: String(ldapPort), DCMX_REPLICATOR_DNS: REPLICATOR };
  const args = ['-x', '-H', `ldap://127.0.0.1:${ldapPort}`, '-D', `cn=admin,${SUFFIX}`, '-w', ADMIN_PASSWORD];
  const ldap = async (tool: 'ldapadd' | 'ldapdelete', input: string) => {
    const r = await run(tool, args, input);
    assert.equal(r.code, 0, `${tool}: ${r.stderr}`);
  };
  dcmx = await startSpawned(dataDir, env);
  await ldap('ldapadd', [
    `dn: ou=services,${SUFFIX}\nobjectClass: organizationalUnit\nou: services\n`,
    `dn: ${REPLICATOR}\nobjectClass: account\nobjectClass: simpleSecurityObject\nuid: replica1\nuserPassword: ${REPLICATOR_PW}\n`,
  ].join('\n'));
  assert.equal((await runDcmx(testEnv(dataDir, env), ['domain', 'add', 'example.org'])).code, 0);
  await ldap('ldapadd', [person('alice'), person('bob')].join('\n'));
  slapd = await startSlapd({ suffixEntry: false, lines: replicaLines({ ldapPort, bindDn: REPLICATOR, password: REPLICATOR_PW }), debug: 'sync' });
  const replica = slapd;
  const identical = (what: string) => replicaCaughtUp(what, args, replica, { attrs: COMPARED, ms: 30_000 });
  const backedUp = await identical('the replica has the directory');

  const tree = path.join(tmp(), 'backup');
  const b = await runDcmx(testEnv(dataDir, env), ['backup', tree]);
  assert.equal(b.code, 0, b.stderr);
  // After the backup, lost with the data dir: the replica follows them.
  await ldap('ldapadd', person('carol'));
  await ldap('ldapdelete', `uid=bob,${PEOPLE}\n`);
  const ahead = await identical('the replica is ahead of the backup');
  assert.ok(ahead.has(`uid=carol,${PEOPLE}`) && !ahead.has(`uid=bob,${PEOPLE}`));

  await stopChild(dcmx.child);
  dcmx = undefined;
  fs.rmSync(dataDir, { recursive: true });
  const r = await runDcmx(testEnv(dataDir, env), ['restore', tree]);
  assert.equal(r.code, 0, r.stderr);
  const mark = replica.log.length;
  dcmx = await startSpawned(dataDir, env);
  const restored = await identical('the replica reloaded from the restored dcmx');
  assert.ok(!restored.has(`uid=carol,${PEOPLE}`), 'carol, added after the backup, is gone from the replica');
  assert.ok(restored.has(`uid=bob,${PEOPLE}`), 'bob, deleted after the backup, is back on the replica');
  assert.deepEqual([...restored.keys()].sort(), [...backedUp.keys()].sort(), 'the entries of the backup, no more, no less');
  assert.match(replica.log.slice(mark), /REFRESH_PRESENT/, 'a full refresh (a present phase)');
  assert.doesNotMatch(replica.log.slice(mark), /not new enough, ignored/, 'no entry of the restored directory ignored as old (renewEntryCsns)');
});
