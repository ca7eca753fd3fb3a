/**
 * Content Sync (RFC 4533) across a restore: consumers that were AHEAD of
 * the backup (their cookie names a change the restored log never had) get
 * e-syncRefreshRequired and reload, and end with exactly the restored
 * content, not a silent mix of the old and the restored directory:
 * - ldapsearch -E sync with the consumer's cookie: result 4096;
 * - the directory client's SyncConsumer that stays running across the
 *   restore (it reconnects on its own) and its copy;
 * - a remote transfer unit (RemoteMailSource with its MRU cache and
 *   routing table) that stays running: its cache forgets the recipients it
 *   held (a positive answer for an address gone, a negative one for an
 *   address back), its routing table the domain added after the backup;
 * - a remote transfer unit started after the restore from its saved
 *   directory-sync.json (cookie ahead): a full reload, same end state.
 * Needs: ldap-utils.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ADMIN_PASSWORD, ldapaddAt, run, runDcmx, startSpawned, stopChild, tempDirs, testEnv, type SpawnedAppliance } from '../helpers';
import { RemoteMailSource } from '../../server/directory-client/remote-source';
import { DirectoryCache } from '../../server/mta/cache';
import { RoutingTable } from '../../server/directory/routing';
import { silentLogger } from '../../server/log';
import { recordingConsumer } from '../directory-client/fixture';
import { addUser, USER } from '../mta/fixture';
import { waitFor, waitForAsync } from '../fixtures/wait';

const newDir = tempDirs('dcmx-restore-sync-');
const PEOPLE = 'ou=people,dc=example,dc=org,o=internet';
const person = (uid: string) =>
  `dn: uid=${uid},${PEOPLE}\nobjectClass: inetOrgPerson\nobjectClass: inetMailUser\nuid: ${uid}\ncn: ${uid}\nsn: ${uid}\nmail: ${uid}@example.org\n`;
const EXAMPLE_COM = 'dn: dc=com,o=internet\nobjectClass: domain\ndc: com\n\n' +
  'dn: dc=example,dc=com,o=internet\nobjectClass: dNSDomain2\nobjectClass: mailDomain\ndc: example\nmXRecord: 10 mx.dcmx.test.\n';

/** A remote transfer unit's directory side over `dataDir`, following the appliance at `url`. */
function unit(url: string, dataDir: string) {
  const source = new RemoteMailSource({
    directory: { url, host: 'mx.dcmx.test', startTls: false, ca: undefined, bindDn: 'cn=admin,o=internet', password: ADMIN_PASSWORD },
    suffix: 'o=internet', dataDir, log: silentLogger(), timeoutMs: 2000,
  });
  const routing = new RoutingTable('mx.dcmx.test');
  const cache = new DirectoryCache(source, { max: 100 });
  source.start({ cache, routing });
  return { source, routing, cache };
}

async function ldap(a: SpawnedAppliance, tool: 'ldapadd' | 'ldapdelete' | 'ldapmodify', input: string): Promise<void> {
  const r = tool === 'ldapadd' ? await ldapaddAt(a.ports.ldap, input)
    : await run(tool, ['-x', '-H', `ldap://127.0.0.1:${a.ports.ldap}`, '-D', 'cn=admin,o=internet', '-w', ADMIN_PASSWORD], input);
  assert.equal(r.code, 0, `${tool}: ${r.stderr}`);
}

/** Every DN below o=internet as ldapsearch lists it, lower case, sorted. */
async function directoryDns(a: SpawnedAppliance): Promise<string[]> {
  const r = await run('ldapsearch', ['-x', '-H', `ldap://127.0.0.1:${a.ports.ldap}`, '-D', 'cn=admin,o=internet', '-w', ADMIN_PASSWORD,
    '-LLL', '-o', 'ldif-wrap=no', '-b', 'o=internet', '1.1']);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split('\n').filter((l) => l.startsWith('dn: ')).map((l) => l.slice(4).toLowerCase()).sort();
}

test('consumers ahead of the backup get a refresh after the restore, and end with exactly the restored content', async () => {
  const data = newDir();
  let a = await startSpawned(data);
  const ldapPort = String(a.ports.ldap);
  await addUser(a.ports.ldap);
  await ldap(a, 'ldapadd', person('carl'));
  const url = `ldap://127.0.0.1:${ldapPort}`;
  // The backup, taken while the appliance serves: example.org with user and carl.
  const tree = path.join(newDir(), 'backup');
  const b = await runDcmx(testEnv(data), ['backup', tree]);
  assert.equal(b.code, 0, b.stderr);
  const backedUp = await directoryDns(a);

  // Consumers follow the appliance past the backup: bob and example.com added, carl deleted.
  const c = recordingConsumer({ url, bindDn: 'cn=admin,o=internet', password: ADMIN_PASSWORD, base: 'o=internet' });
  c.sync.start();
  const u = unit(url, newDir());
  await u.source.whenSynced();
  await waitFor('the consumer\'s refresh', () => c.state.refreshed === 1);
  const org = (await u.cache.domain('example.org'))!;
  assert.ok(await u.cache.recipient(org, 'carl@example.org'), 'carl, cached');
  await ldap(a, 'ldapadd', person('bob'));
  await ldap(a, 'ldapadd', EXAMPLE_COM);
  await ldap(a, 'ldapdelete', `uid=carl,${PEOPLE}\n`);
  const ahead = await directoryDns(a);
  await waitFor('the consumer has every change', () => JSON.stringify(c.dns()) === JSON.stringify(ahead));
  await waitFor('the unit routes example.com', () => u.routing.resolve('example.com') !== undefined);
  await waitForAsync('the unit caches bob, and carl as unknown', async () =>
    (await u.cache.recipient(org, 'bob@example.org')) !== undefined && (await u.cache.recipient(org, 'carl@example.org')) === undefined);
  const aheadCookie = c.state.cookie!;
  // A second unit's state, saved while ahead (the unit saves within 100 ms of a new cookie).
  const saved = newDir();
  const u2 = unit(url, saved);
  await u2.source.whenSynced();
  await waitFor('the unit routes example.com', () => u2.routing.resolve('example.com') !== undefined);
  u2.source.stop();
  assert.ok(fs.existsSync(path.join(saved, 'directory-sync.json')));

  // The appliance destroyed and restored from the backup, on the same port; the consumer and the unit keep running.
  await stopChild(a.child);
  fs.rmSync(data, { recursive: true });
  const r = await runDcmx(testEnv(data), ['restore', tree]);
  assert.equal(r.code, 0, r.stderr);
  a = await startSpawned(data, { DCMX_LDAP_PORT: ldapPort });
  try {
    assert.deepEqual(await directoryDns(a), backedUp, 'the restored directory is the backup\'s');

    // ldapsearch with the cookie from ahead: the provider cannot serve it incrementally (RFC 4533 §3.3.2, §2.5).
    const s = await run('ldapsearch', ['-x', '-H', url, '-D', 'cn=admin,o=internet', '-w', ADMIN_PASSWORD, '-LLL',
      '-b', 'o=internet', '-E', `!sync=ro/${aheadCookie}`, '1.1']);
    assert.match(s.stderr, /^Content Sync Refresh Required \(4096\)$/m, `e-syncRefreshRequired: ${s.stdout}${s.stderr}`);
    assert.equal(s.stdout, '', 'no entry before it');

    // The running consumer: reconnected from its cookie, told to reload, its copy is the restored directory.
    await waitFor('the consumer reloads', () => c.events.includes('begin full'), 30_000);
    await waitFor('the consumer\'s reload ends', () => c.state.refreshed >= 2);
    assert.deepEqual(c.dns(), backedUp, 'no ghost of bob or example.com, carl back');
    c.sync.stop();

    // The running unit: reloaded, its cache flushed, its routing table the restored one.
    await waitFor('the unit reloads', () => u.source.stats.reloads >= 1 && u.source.reachable, 30_000);
    assert.equal(u.routing.resolve('example.com'), undefined, 'example.com, added after the backup, is no longer routed');
    assert.equal(await u.cache.recipient(org, 'bob@example.org'), undefined, 'bob, added after the backup: not a stale positive');
    assert.ok(await u.cache.recipient(org, 'carl@example.org'), 'carl, back: not a stale negative');
    assert.ok(await u.cache.recipient(org, USER));
    u.source.stop();

    // A unit started over the state it saved while ahead: a full reload, the same end state.
    const again = unit(url, saved);
    assert.ok(again.routing.resolve('example.com'), 'before it connects, it routes from its saved copy');
    await again.source.whenSynced();
    assert.equal(again.source.stats.reloads, 1, 'e-syncRefreshRequired, then a full reload');
    assert.equal(again.routing.resolve('example.com'), undefined);
    assert.equal(await again.cache.recipient(org, 'bob@example.org'), undefined);
    assert.ok(await again.cache.recipient(org, 'carl@example.org'));
    again.source.stop();
    const state = JSON.parse(fs.readFileSync(path.join(saved, 'directory-sync.json'), 'utf8')) as { cookie: string; entries: [string, { dn: string }][] };
    assert.notEqual(state.cookie, aheadCookie, 'the saved cookie is the restored directory\'s');
    assert.ok(!state.entries.some(([, e]) => /dc=example,dc=com/i.test(e.dn)), 'the saved copy has no ghost');
  } finally {
    c.sync.stop();
    u.source.stop();
    await stopChild(a.child);
  }
});
