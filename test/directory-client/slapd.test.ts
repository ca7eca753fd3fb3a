/**
 * The directory client and its RFC 4533 Content Sync consumer against the
 * real OpenLDAP slapd with the syncprov overlay (loopback, temp dir, killed
 * after): connect (ldap://, ldaps://, StartTLS), simple bind, search, an
 * extended operation (Who am I?, RFC 4532); then a refreshAndPersist sync
 * whose copy follows adds, modifies, renames and deletes within 1 s, resumes
 * from its cookie after the consumer stops (deletes made meanwhile are
 * reported by the present phase: no ghosts), and reconnects by itself after
 * slapd is killed and restarted; with a session log, deletes made while the
 * consumer was away come as syncIdSet UUIDs.
 * Needs: slapd, ldap-utils.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import selfsigned from 'selfsigned';
import { connectClient, LdapClient } from '../../server/directory-client/client';
import { LdapResultError } from '../../server/directory-client/protocol';
import { recordingConsumer } from './fixture';
import { tempDirs } from '../helpers';
import { SLAPD_ADMIN, SLAPD_PASSWORD, SLAPD_SUFFIX, startSlapd, type Slapd } from '../fixtures/slapd';
import { waitFor } from '../fixtures/wait';

const newDir = tempDirs('dcmx-dirclient-');
let slapd: Slapd;
let ca: string;

before(async () => {
  const dir = newDir();
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], { keySize: 2048, algorithm: 'sha256' });
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  fs.writeFileSync(cert, pems.cert);
  fs.writeFileSync(key, pems.private);
  ca = pems.cert;
  slapd = await startSlapd({ tls: { cert, key }, syncprov: {} });
  await slapd.ldap('ldapadd', [
    `dn: ou=people,${SLAPD_SUFFIX}\nobjectClass: organizationalUnit\nou: people\n`,
    `dn: uid=ann,ou=people,${SLAPD_SUFFIX}\nobjectClass: inetOrgPerson\nuid: ann\ncn: Ann\nsn: A\nmail: ann@example.org\n`,
  ].join('\n'));
});
after(() => slapd?.stop());

describe('directory client against slapd', () => {
  test('binds, searches, and runs an extended operation; bad credentials are result 49', async () => {
    const c = await connectClient({ url: slapd.url });
    await c.bind(SLAPD_ADMIN, SLAPD_PASSWORD);
    const r = await c.search({ base: SLAPD_SUFFIX, scope: 2, filter: { type: 'equal', attr: 'mail', value: 'ann@example.org' }, attributes: ['uid', 'mail'] });
    assert.deepEqual(r.entries.map((e) => [e.dn, e.attrs.uid]), [[`uid=ann,ou=people,${SLAPD_SUFFIX}`, ['ann']]]);
    const who = await c.extended('1.3.6.1.4.1.4203.1.11.3');
    assert.equal(who.value?.toString(), `dn:${SLAPD_ADMIN}`);
    const none = await c.search({ base: `ou=nobody,${SLAPD_SUFFIX}`, scope: 2, filter: { type: 'present', attr: 'objectClass' }, attributes: [] });
    assert.equal(none.entries.length, 0, 'noSuchObject is an empty answer');
    await assert.rejects(c.search({ base: SLAPD_SUFFIX, scope: 2, filter: { type: 'present', attr: 'objectClass' }, attributes: [] }, 1), (e: LdapResultError) => e.code === 4);
    c.close();
    const bad = await connectClient({ url: slapd.url });
    await assert.rejects(bad.bind(SLAPD_ADMIN, 'wrong'), (e: LdapResultError) => e.code === 49);
    bad.close();
  });

  test('ldaps:// and StartTLS verify the directory certificate', async () => {
    const tls = { ca, servername: 'localhost' };
    for (const c of [await connectClient({ url: `ldaps://127.0.0.1:${slapd.tlsPort}`, tls }), await connectClient({ url: slapd.url, startTls: true, tls })]) {
      assert.ok(c.secure);
      await c.bind(SLAPD_ADMIN, SLAPD_PASSWORD);
      const r = await c.search({ base: SLAPD_SUFFIX, scope: 0, filter: { type: 'present', attr: 'objectClass' }, attributes: ['o'] });
      assert.deepEqual(r.entries[0].attrs.o, ['internet']);
      c.close();
    }
    // An untrusted certificate fails the connection (no silent fallback to clear text).
    await assert.rejects(connectClient({ url: slapd.url, startTls: true }));
    await assert.rejects(connectClient({ url: `ldaps://127.0.0.1:${slapd.tlsPort}` }));
  });

  test('a dead port and a bad URL fail cleanly', async () => {
    await assert.rejects(connectClient({ url: 'ldap://127.0.0.1:9' }));
    await assert.rejects(connectClient({ url: 'http://127.0.0.1:9' }), /not an ldap/);
    await assert.rejects(connectClient({ url: 'ldap://127.0.0.1:9', connectTimeoutMs: 1 }));
  });
});

/** A recording consumer of slapd's whole DIT. */
const consumer = (cookie?: string) => recordingConsumer({ url: slapd.url, bindDn: SLAPD_ADMIN, password: SLAPD_PASSWORD, base: SLAPD_SUFFIX, cookie });

describe('Content Sync consumer against slapd syncprov', () => {
  test('refreshAndPersist: the copy follows adds, modifies, renames and deletes within 1 s, and resumes from its cookie', async () => {
    const a = consumer();
    a.sync.start();
    await waitFor('the initial refresh', () => a.state.refreshed === 1);
    assert.deepEqual(a.dns(), [SLAPD_SUFFIX, `ou=people,${SLAPD_SUFFIX}`, `uid=ann,ou=people,${SLAPD_SUFFIX}`]);
    assert.match(a.state.cookie ?? '', /csn=\d{14}\.\d{6}Z#/);
    assert.ok(a.sync.client, 'the connection is up');

    const lag = a.lag;
    const bob = `uid=bob,ou=people,${SLAPD_SUFFIX}`;
    const lags = [
      await lag(bob, () => slapd.ldap('ldapadd', `dn: ${bob}\nobjectClass: inetOrgPerson\nuid: bob\ncn: Bob\nsn: B\nmail: bob@example.org\n`)),
      await lag(bob, () => slapd.ldap('ldapmodify', `dn: ${bob}\nchangetype: modify\nreplace: mail\nmail: robert@example.org\n`)),
    ];
    const bobEntry = [...a.copy.entries.values()].find((e) => e.dn === bob);
    assert.deepEqual(bobEntry?.attrs.mail, ['robert@example.org']);
    assert.match(bobEntry?.attrs.entryUUID?.[0] ?? '', /^[0-9a-f-]{36}$/);
    const rob = `uid=rob,ou=people,${SLAPD_SUFFIX}`;
    lags.push(await lag(rob, () => slapd.ldap('ldapmodify', `dn: ${bob}\nchangetype: modrdn\nnewrdn: uid=rob\ndeleteoldrdn: 1\n`)));
    assert.ok(a.dns().includes(rob) && !a.dns().includes(bob), 'a rename keeps one entry, under its new DN');
    lags.push(await lag(rob, () => slapd.ldap('ldapdelete', `${rob}\n`)));
    assert.ok(!a.dns().includes(rob));
    assert.ok(Math.max(...lags) < 1000, `every change reported within 1 s (${lags.join(', ')} ms)`);

    // Stopped: changes made meanwhile come with the refresh from the cookie.
    a.sync.stop();
    const cookie = a.state.cookie!;
    const cy = `uid=cy,ou=people,${SLAPD_SUFFIX}`;
    await slapd.ldap('ldapadd', `dn: ${cy}\nobjectClass: inetOrgPerson\nuid: cy\ncn: Cy\nsn: C\n`);
    await slapd.ldap('ldapdelete', `uid=ann,ou=people,${SLAPD_SUFFIX}\n`);
    const b = consumer(cookie);
    // The resumed consumer starts from the first one's copy (as a unit restarting with its data).
    for (const [k, v] of a.copy.entries) b.copy.entries.set(k, v);
    b.sync.start();
    await waitFor('the refresh from the cookie', () => b.state.refreshed === 1);
    assert.equal(b.events[0], 'begin from cookie');
    assert.ok(!b.events.some((e) => e.startsWith('add ou=people')), `unchanged entries are not sent again: ${b.events.join('; ')}`);
    assert.deepEqual(b.dns(), [SLAPD_SUFFIX, `ou=people,${SLAPD_SUFFIX}`, cy], 'the delete made while stopped is applied: no ghost');
    assert.notEqual(b.state.cookie, cookie);

    // slapd killed: the consumer sees the connection go, and comes back by itself, from its cookie.
    await slapd.kill();
    await waitFor('the consumer notices', () => !b.state.up);
    assert.equal(b.sync.client, undefined);
    await slapd.restart();
    await waitFor('the consumer reconnects and refreshes', () => b.state.refreshed === 2, 10_000);
    const dee = `uid=dee,ou=people,${SLAPD_SUFFIX}`;
    await slapd.ldap('ldapadd', `dn: ${dee}\nobjectClass: inetOrgPerson\nuid: dee\ncn: Dee\nsn: D\n`);
    await waitFor('persist reports after the reconnect', () => b.dns().includes(dee), 5000);
    b.sync.stop();
  });
});

describe('Content Sync consumer against slapd with a session log', () => {
  test('deletes made while away come as a syncIdSet of entryUUIDs and leave the copy', async () => {
    const logged = await startSlapd({ syncprov: { sessionlog: 100 } });
    try {
      const people = `ou=people,${SLAPD_SUFFIX}`;
      await logged.ldap('ldapadd', [
        `dn: ${people}\nobjectClass: organizationalUnit\nou: people\n`,
        ...['eve', 'fay', 'gil'].map((u) => `dn: uid=${u},${people}\nobjectClass: inetOrgPerson\nuid: ${u}\ncn: ${u}\nsn: ${u}\n`),
      ].join('\n'));
      const a = recordingConsumer({ url: logged.url, bindDn: SLAPD_ADMIN, password: SLAPD_PASSWORD, base: SLAPD_SUFFIX });
      a.sync.start();
      await waitFor('the initial refresh', () => a.state.refreshed === 1);
      // A change after the refresh, so the session log covers the cookie.
      await logged.ldap('ldapmodify', `dn: ${people}\nchangetype: modify\nreplace: description\ndescription: x\n`);
      await waitFor('the change reported', () => a.events.includes(`modify ${people}`));
      a.sync.stop();
      await logged.ldap('ldapdelete', `uid=eve,${people}\nuid=fay,${people}\n`);
      const b = recordingConsumer({ url: logged.url, bindDn: SLAPD_ADMIN, password: SLAPD_PASSWORD, base: SLAPD_SUFFIX, cookie: a.state.cookie });
      for (const [k, v] of a.copy.entries) b.copy.entries.set(k, v);
      b.sync.start();
      await waitFor('the refresh from the cookie', () => b.state.refreshed === 1);
      const deleted = b.events.filter((e) => /^deleted \d+ uuids$/.test(e)).reduce((n, e) => n + Number(e.split(' ')[1]), 0);
      assert.equal(deleted, 2, `both deletes come as syncIdSet UUIDs: ${b.events.join('; ')}`);
      assert.deepEqual(b.dns(), [SLAPD_SUFFIX, people, `uid=gil,${people}`]);
      b.sync.stop();
    } finally {
      await logged.stop();
    }
  });
});
