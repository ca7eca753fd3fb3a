/**
 * A remote transfer unit's MailSource (RemoteMailSource) with the unit's own
 * cache and routing table, over the real OpenLDAP slapd (dcmx's schema, the
 * syncprov overlay) as the remote directory: the routing table holds the
 * mail domains from Content Sync; recipients are read on a miss and then
 * answered from the cache; a user added, changed or deleted with the
 * OpenLDAP tools reaches the cache within 1 s; slapd killed: the source is
 * unreachable, the cache still answers what it holds, a miss rejects with
 * DirectoryUnavailableError; back after a restart, from the cookie; a new
 * source over the same data dir starts from the saved cookie and copy.
 * Needs: slapd, ldap-utils.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { RemoteMailSource } from '../../server/directory-client/remote-source';
import { DirectoryCache } from '../../server/mta/cache';
import { RoutingTable } from '../../server/directory/routing';
import { DirectoryUnavailableError } from '../../server/directory/errors';
import { silentLogger } from '../../server/log';
import { tempDirs } from '../helpers';
import { SLAPD_ADMIN, SLAPD_PASSWORD, SLAPD_SUFFIX, startSlapd, type Slapd } from '../fixtures/slapd';
import { waitFor, waitForAsync } from '../fixtures/wait';

const newDir = tempDirs('dcmx-remote-source-');
const EX = `dc=example,dc=org,${SLAPD_SUFFIX}`;
let slapd: Slapd;

before(async () => {
  slapd = await startSlapd({ syncprov: {} });
  await slapd.ldap('ldapadd', [
    `dn: dc=org,${SLAPD_SUFFIX}\nobjectClass: domain\ndc: org\n`,
    `dn: ${EX}\nobjectClass: dNSDomain2\nobjectClass: mailDomain\nobjectClass: domainRelatedObject\ndc: example\nmXRecord: 10 mx.dcmx.test.\nassociatedDomain: example.net\n`,
    `dn: ou=people,${EX}\nobjectClass: organizationalUnit\nou: people\n`,
    user('ann'),
  ].join('\n'));
});
after(() => slapd?.stop());

function user(uid: string, extra = ''): string {
  return `dn: uid=${uid},ou=people,${EX}\nobjectClass: inetOrgPerson\nobjectClass: inetMailUser\nuid: ${uid}\ncn: ${uid}\nsn: ${uid}\nmail: ${uid}@example.org\n${extra}`;
}

function unit(dataDir: string) {
  const source = new RemoteMailSource({
    directory: { url: slapd.url, host: 'mx.dcmx.test', startTls: false, ca: undefined, bindDn: SLAPD_ADMIN, password: SLAPD_PASSWORD },
    suffix: SLAPD_SUFFIX, dataDir, log: silentLogger(), timeoutMs: 2000,
  });
  const routing = new RoutingTable('mx.dcmx.test');
  const cache = new DirectoryCache(source, { max: 100 });
  source.start({ cache, routing });
  return { source, routing, cache };
}

test('a RemoteMailSource over slapd: routing from Content Sync, recipients cached and kept in step, degraded while slapd is down', async () => {
  const dir = newDir();
  const u = unit(dir);
  await u.source.whenSynced();
  assert.equal(u.routing.resolve('example.org')?.route.kind, 'local');
  assert.equal(u.routing.resolve('example.net')?.domain, 'example.org', 'aliases from associatedDomain');
  const domain = (await u.cache.domain('example.org'))!;
  assert.match(domain.uuid ?? '', /^[0-9a-f-]{36}$/);

  const ann = await u.cache.recipient(domain, 'ann@example.org');
  assert.equal(ann?.address, 'ann@example.org');
  assert.equal(await u.cache.recipient(domain, 'bob@example.org'), undefined);
  const reads = u.source.stats.searches;
  for (let i = 0; i < 50; i++) {
    assert.ok(await u.cache.recipient(domain, 'ann@example.org'));
    assert.equal(await u.cache.recipient(domain, 'bob@example.org'), undefined);
  }
  assert.equal(u.source.stats.searches, reads, 'hits, positive and negative, read nothing');

  // Changes with the OpenLDAP tools reach the cache (the negative answer for bob included) within 1 s.
  const lag = async (what: string, write: () => Promise<void>, check: () => Promise<boolean>) => {
    const t0 = Date.now();
    await write();
    await waitForAsync(what, check, 5000, 5);
    return Date.now() - t0;
  };
  const lags = [
    await lag('bob added', () => slapd.ldap('ldapadd', user('bob')), async () => (await u.cache.recipient(domain, 'bob@example.org')) !== undefined),
    await lag('ann gets a mailHost', () => slapd.ldap('ldapmodify', `dn: uid=ann,ou=people,${EX}\nchangetype: modify\nadd: mailHost\nmailHost: unit2.dcmx.test\n`),
      async () => (await u.cache.recipient(domain, 'ann@example.org'))?.mailHost === 'unit2.dcmx.test'),
    await lag('bob deleted', () => slapd.ldap('ldapdelete', `uid=bob,ou=people,${EX}\n`), async () => (await u.cache.recipient(domain, 'bob@example.org')) === undefined),
    await lag('example.org on hold', () => slapd.ldap('ldapmodify', `dn: ${EX}\nchangetype: modify\nadd: mailDomainStatus\nmailDomainStatus: hold\n`),
      async () => u.routing.resolve('example.org')?.route.kind === 'hold'),
  ];
  assert.ok(Math.max(...lags) < 1000, `every change within 1 s: ${lags.join(', ')} ms`);

  // slapd down: what the cache holds still answers; a miss cannot be answered.
  await slapd.kill();
  await waitFor('the source notices', () => !u.source.reachable);
  assert.ok(await u.cache.recipient(domain, 'ann@example.org'));
  await assert.rejects(u.cache.recipient(domain, 'carl@example.org'), DirectoryUnavailableError);
  assert.equal(u.routing.resolve('example.org')?.route.kind, 'hold', 'the routing table stays');
  // A change made while the unit is away: a delete, found by the refresh from the cookie (present phase).
  await slapd.restart();
  await slapd.ldap('ldapdelete', `uid=ann,ou=people,${EX}\n`);
  await waitFor('the source is back', () => u.source.reachable, 15_000);
  await waitForAsync('ann gone from the cache', async () => (await u.cache.recipient(domain, 'ann@example.org')) === undefined, 5000);
  u.source.stop();

  // A new source over the same data dir: the saved copy routes at once, before any connection.
  await slapd.kill();
  const again = unit(dir);
  assert.equal(again.routing.resolve('example.org')?.route.kind, 'hold');
  assert.equal(again.source.reachable, false);
  await slapd.restart();
  await again.source.whenSynced();
  assert.equal(again.source.stats.reloads, 0, 'it resumed from its cookie: no full reload');
  again.source.stop();
});
