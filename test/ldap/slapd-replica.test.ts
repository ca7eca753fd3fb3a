/**
 * A real OpenLDAP slapd as a read replica of dcmx: slapd's syncrepl
 * (type=refreshAndPersist, back-mdb, dcmx's schema from `dcmx schema
 * export`) against dcmx's Content Sync provider (RFC 4533), bound as a
 * replication identity (DCMX_REPLICATOR_DNS) over StartTLS. It replicates the whole DIT;
 * it follows adds, modifies, renames and deletes within 1 s; it resumes from
 * its cookie after it restarts (an incremental refresh: a delete phase with
 * only what changed); it catches up after dcmx restarts (changes made
 * meanwhile with the `dcmx` CLI); and after the change log was trimmed past
 * its cookie (DCMX_CHANGELOG_KEEP) the full refresh leaves it identical to
 * dcmx, with no ghost entries. "Identical" compares both servers' whole
 * subtrees, user attributes and entryUUID, entryCSN, timestamps and
 * creators/modifiers, read with ldapsearch. The replica is a read replica:
 * users bind on it with their dcmx passwords, and their writes are referred
 * to dcmx (updateref).
 * Needs: slapd, ldap-utils.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ldapResultCode, run, runDcmx, startSpawned, stopChild, tempDirs, testEnv, ADMIN_PASSWORD, type SpawnedAppliance } from '../helpers';
import { freePort, replicaCaughtUp, replicaLines, startSlapd, type Slapd, type TreeContents } from '../fixtures/slapd';
import { waitForAsync } from '../fixtures/wait';
import selfsigned from 'selfsigned';

const SUFFIX = 'o=internet';
const ADMIN_DN = `cn=admin,${SUFFIX}`;
const REPLICATOR = `uid=replica1,ou=services,${SUFFIX}`;
const REPLICATOR_PW = 'replica1-secret';
const DOMAIN = `dc=example,dc=org,${SUFFIX}`;
const PEOPLE = `ou=people,${DOMAIN}`;
/** Change-log rows dcmx keeps: enough for the restarts' few changes, few enough for the trimming test to pass them. */
const KEEP = 30;
/** What both sides are compared on: the user attributes and the operational ones a replica carries over. */
const COMPARED = ['*', 'entryUUID', 'entryCSN', 'createTimestamp', 'modifyTimestamp', 'creatorsName', 'modifiersName'];

const tmp = tempDirs('dcmx-replica-');
const dataDir = tmp();
let ldapPort: number;
let dcmx: SpawnedAppliance;
let slapd: Slapd;

let tls: { cert: string; key: string };

const env = () => ({
  DCMX_LDAP_PORT: String(ldapPort), DCMX_REPLICATOR_DNS: REPLICATOR, DCMX_CHANGELOG_KEEP: String(KEEP),
  DCMX_TLS_CERT: tls.cert, DCMX_TLS_KEY: tls.key,
});
const dcmxArgs = () => ['-x', '-H', `ldap://127.0.0.1:${ldapPort}`, '-D', ADMIN_DN, '-w', ADMIN_PASSWORD];

/** ldapmodify (or ldapadd) against dcmx as its administrator; fails the test when the tool fails. */
async function onDcmx(ldif: string, tool: 'ldapmodify' | 'ldapadd' = 'ldapmodify'): Promise<void> {
  const r = await run(tool, dcmxArgs(), ldif);
  assert.equal(r.code, 0, `${tool} on dcmx: ${r.stderr}\n${ldif}`);
}

/** The `dcmx` CLI over dcmx's data dir (dcmx running or not): an LDIF file of change records through its write path. */
async function dcmxImport(ldif: string): Promise<void> {
  const file = path.join(tmp(), 'changes.ldif');
  fs.writeFileSync(file, ldif);
  const r = await runDcmx(testEnv(dataDir, env()), ['ldif', 'import', file]);
  assert.equal(r.code, 0, r.stderr);
}

/** Resolves once slapd's copy equals dcmx's subtree (COMPARED attributes); fails with the differences after `ms`. */
const identical = (what: string, ms = 15_000): Promise<TreeContents> => replicaCaughtUp(what, dcmxArgs(), slapd, { attrs: COMPARED, ms });

/** Milliseconds from `change` (run against dcmx) until slapd answers `filter` under `base` with `expect` DNs. */
async function lag(change: () => Promise<void>, filter: string, expect: string[]): Promise<number> {
  const started = performance.now();
  await change();
  await waitForAsync(`slapd to answer ${filter} with ${JSON.stringify(expect)}`, async () => {
    const r = await run('ldapsearch', [...slapd.adminArgs, '-LLL', '-o', 'ldif-wrap=no', '-b', SUFFIX, filter, '1.1']);
    const dns = [...r.stdout.matchAll(/^dn: (.*)$/gm)].map((m) => m[1].toLowerCase()).sort();
    return JSON.stringify(dns) === JSON.stringify(expect.map((d) => d.toLowerCase()).sort());
  }, 5_000, 20);
  return performance.now() - started;
}

/** dcmx's root DSE firstChangeNumber or lastChangeNumber. */
async function changeNumber(attr: 'firstChangeNumber' | 'lastChangeNumber'): Promise<number> {
  const r = await run('ldapsearch', [...dcmxArgs(), '-LLL', '-b', '', '-s', 'base', '(objectClass=*)', attr]);
  const n = Number(new RegExp(`^${attr}: (\\d+)$`, 'm').exec(r.stdout)?.[1]);
  assert.ok(n > 0, `${attr}: ${r.stdout}${r.stderr}`);
  return n;
}

/** What slapd logged since `mark` (a length of slapd.log). */
const logSince = (mark: number) => slapd.log.slice(mark);

before(async () => {
  ldapPort = await freePort();
  // dcmx's certificate, for 127.0.0.1 (the provider URL's host), which the replica checks.
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'dcmx.test' }], {
    keySize: 2048, algorithm: 'sha256', extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
  });
  const dir = tmp();
  tls = { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') };
  fs.writeFileSync(tls.cert, pems.cert);
  fs.writeFileSync(tls.key, pems.private);
  dcmx = await startSpawned(dataDir, env());
  // The replication identity, a mail domain as dcmx provisions it, people, a group, DNS records.
  await onDcmx([
    `dn: ou=services,${SUFFIX}\nobjectClass: organizationalUnit\nou: services\n`,
    `dn: ${REPLICATOR}\nobjectClass: account\nobjectClass: simpleSecurityObject\nuid: replica1\nuserPassword: ${REPLICATOR_PW}\n`,
  ].join('\n'), 'ldapadd');
  const p = await runDcmx(testEnv(dataDir, env()), ['domain', 'add', 'example.org']);
  assert.equal(p.code, 0, p.stderr);
  await onDcmx([
    `dn: uid=alice,${PEOPLE}\nobjectClass: inetOrgPerson\nobjectClass: inetMailUser\nuid: alice\ncn: Alice\nsn: Liddell\n` +
      'mail: alice@example.org\nmailAlternateAddress: a@example.org\nmailHost: mx2.example.org\nuserPassword: alice-secret-1\n',
    `dn: uid=bob,${PEOPLE}\nobjectClass: inetOrgPerson\nobjectClass: inetMailUser\nuid: bob\ncn: Bob\nsn: Builder\nmail: bob@example.org\n`,
    `dn: cn=staff,${PEOPLE}\nobjectClass: groupOfUniqueNames\nobjectClass: mailGroup\ncn: staff\nmail: staff@example.org\n` +
      `uniqueMember: uid=alice,${PEOPLE}\nuniqueMember: uid=bob,${PEOPLE}\n`,
    `dn: dc=www,${DOMAIN}\nobjectClass: dNSDomain2\ndc: www\naRecord: 192.0.2.10\naAAARecord: 2001:db8::10\n`,
  ].join('\n'), 'ldapadd');
  slapd = await startSlapd({
    suffixEntry: false,
    lines: replicaLines({ ldapPort, bindDn: REPLICATOR, password: REPLICATOR_PW, cacert: tls.cert }),
    debug: 'sync', // slapd logs the phases and entries it receives
  });
});
after(async () => {
  await slapd?.stop();
  if (dcmx) await stopChild(dcmx.child);
});

describe('slapd syncrepl consumer of dcmx (refreshAndPersist)', () => {
  test('replicates the whole DIT, userPassword and entryUUID included', async () => {
    const ours = await identical('the first refresh');
    assert.ok(ours.size >= 9, `${ours.size} entries`);
    const alice = ours.get(`uid=alice,${PEOPLE}`.toLowerCase());
    assert.ok(alice?.get('userpassword')?.[0]?.startsWith('{'), 'a hashed userPassword is replicated');
    assert.ok(alice?.get('entryuuid')?.length === 1 && alice.get('entrycsn')?.length === 1);
    // A read replica: alice binds on it with her dcmx password; her writes are referred to dcmx.
    const alicesArgs = ['-x', '-H', slapd.url, '-D', `uid=alice,${PEOPLE}`, '-w', 'alice-secret-1'];
    const who = await run('ldapwhoami', alicesArgs);
    assert.equal(who.code, 0, `alice binds on the replica: ${who.stderr}`);
    const write = await run('ldapmodify', alicesArgs, `dn: uid=alice,${PEOPLE}\nchangetype: modify\nreplace: sn\nsn: X\n`);
    assert.equal(ldapResultCode(write), 10, `a write on the replica is referred: ${write.stdout}${write.stderr}`);
    assert.match(write.stdout + write.stderr, new RegExp(`ldap://127\\.0\\.0\\.1:${ldapPort}`));
  });

  test('follows an add, a modify, a rename and a delete within 1 s each', async () => {
    const carol = `uid=carol,${PEOPLE}`;
    const caroline = `uid=caroline,${PEOPLE}`;
    const lags = [
      await lag(() => onDcmx(`dn: ${carol}\nobjectClass: inetOrgPerson\nobjectClass: inetMailUser\nuid: carol\ncn: Carol\nsn: C\nmail: carol@example.org\n`, 'ldapadd'),
        '(mail=carol@example.org)', [carol]),
      await lag(() => onDcmx(`dn: ${carol}\nchangetype: modify\nreplace: mail\nmail: carol.c@example.org\n`), '(mail=carol.c@example.org)', [carol]),
      await lag(() => onDcmx(`dn: ${carol}\nchangetype: modrdn\nnewrdn: uid=caroline\ndeleteoldrdn: 1\n`), '(uid=carol*)', [caroline]),
      await lag(() => onDcmx(`dn: ${caroline}\nchangetype: delete\n`), '(uid=carol*)', []),
    ];
    for (const [i, ms] of lags.entries()) assert.ok(ms < 1000, `${['add', 'modify', 'rename', 'delete'][i]} reached slapd in ${ms.toFixed(0)} ms`);
    // A rename that moves a subtree: its entries follow with their new DNs.
    await onDcmx(`dn: ${PEOPLE}\nchangetype: modrdn\nnewrdn: ou=staff\ndeleteoldrdn: 1\n`);
    await identical('after the subtree rename');
    await onDcmx(`dn: ou=staff,${DOMAIN}\nchangetype: modrdn\nnewrdn: ou=people\ndeleteoldrdn: 1\n`);
    await identical('after the subtree rename back');
  });

  test('resumes from its cookie after it restarts: an incremental refresh', async () => {
    await slapd.kill('SIGTERM');
    const dan = `uid=dan,${PEOPLE}`;
    await onDcmx(`dn: ${dan}\nobjectClass: inetOrgPerson\nuid: dan\ncn: Dan\nsn: D\n`, 'ldapadd');
    await onDcmx(`dn: uid=bob,${PEOPLE}\nchangetype: modify\nreplace: sn\nsn: Builder-Smith\n`);
    await onDcmx(`dn: cn=staff,${PEOPLE}\nchangetype: modify\ndelete: uniqueMember\nuniqueMember: uid=bob,${PEOPLE}\n`);
    await onDcmx(`dn: dc=www,${DOMAIN}\nchangetype: delete\n`);
    const mark = slapd.log.length;
    await slapd.start();
    await identical('after the replica restarted');
    // slapd -d sync logs each entry it receives: only the changed ones came, in a delete phase.
    const log = logSince(mark);
    assert.match(log, /REFRESH_DELETE/, 'a delete phase (incremental refresh from the cookie)');
    assert.doesNotMatch(log, /REFRESH_PRESENT/, 'no present phase (full refresh)');
    assert.match(log, /uid=dan,ou=people/i);
    assert.doesNotMatch(log, /uid=alice,ou=people/i, 'an entry unchanged since the cookie is not sent again');
  });

  test('catches up after dcmx restarts, with the changes made meanwhile', async () => {
    await stopChild(dcmx.child);
    // While dcmx is down, its CLI writes through the same write path (change log, CSNs).
    await dcmxImport([
      `dn: uid=erin,${PEOPLE}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: erin\ncn: Erin\nsn: E\nmail: erin@example.org\n`,
      `dn: uid=dan,${PEOPLE}\nchangetype: delete\n`,
      `dn: uid=alice,${PEOPLE}\nchangetype: modify\nadd: mailAlternateAddress\nmailAlternateAddress: alice.l@example.org\n-\n`,
    ].join('\n'));
    dcmx = await startSpawned(dataDir, env());
    await identical('after dcmx restarted (slapd retries every second)');
    const erin = `uid=erin,${PEOPLE}`;
    assert.ok(await lag(() => onDcmx(`dn: ${erin}\nchangetype: modify\nreplace: cn\ncn: Erin E\n`), '(cn=Erin E)', [erin]) < 1000,
      'the persist phase runs again');
  });

  test('ends identical to dcmx after a trimmed change log forced a full refresh: no ghost entries', async () => {
    await identical('before the replica stops');
    const replicated = await changeNumber('lastChangeNumber');
    await slapd.kill('SIGTERM');
    // More changes than the change log keeps: the replica's cookie falls off its end. Deletes among
    // them: entries the replica holds and dcmx does not must go (no ghosts).
    const adds = Array.from({ length: KEEP }, (_, i) => `dn: uid=temp${i},${PEOPLE}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: temp${i}\ncn: T${i}\nsn: T\n`);
    await dcmxImport([
      ...adds,
      `dn: uid=erin,${PEOPLE}\nchangetype: delete\n`,
      `dn: cn=staff,${PEOPLE}\nchangetype: delete\n`,
      ...Array.from({ length: KEEP }, (_, i) => `dn: uid=temp${i},${PEOPLE}\nchangetype: ${i % 2 ? 'delete' : 'modify\nreplace: sn\nsn: kept\n-'}\n`),
    ].join('\n'));
    // The appliance trims after every KEEP / 10 of its commits: a few more through LDAP.
    for (let i = 0; i < 3; i++) await onDcmx(`dn: ou=services,${SUFFIX}\nchangetype: modify\nreplace: description\ndescription: round ${i}\n`);
    await waitForAsync('the change log to be trimmed past the replica\'s cookie', async () => (await changeNumber('firstChangeNumber')) > replicated + 1);
    const mark = slapd.log.length;
    await slapd.start();
    const ours = await identical('after the full refresh');
    assert.equal(ours.has(`uid=erin,${PEOPLE}`.toLowerCase()), false);
    assert.equal(ours.has(`uid=temp1,${PEOPLE}`.toLowerCase()), false);
    assert.equal(ours.get(`uid=temp2,${PEOPLE}`.toLowerCase())?.get('sn')?.[0], 'kept');
    assert.match(logSince(mark), /REFRESH_PRESENT/, 'a full refresh (present phase)');
  });
});
