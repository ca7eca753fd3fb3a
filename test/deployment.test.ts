/**
 * The whole picture of "growing past one machine" (issue 11 §3), on
 * loopback, every part a real process speaking its standard protocol:
 * - a dcmx appliance (127.0.0.1): the directory, the zone example.org, the
 *   mailboxes;
 * - two remote transfer units (DCMX_ROLE=mta, 127.0.0.2 and 127.0.0.3),
 *   their caches kept by LDAP Content Sync over StartTLS, bound as a
 *   transfer unit identity (DCMX_UNIT_DNS), not the administrator;
 * - an OpenLDAP slapd replica (syncrepl, the exported schema, a replication
 *   identity);
 * - Knot and NSD secondaries of example.org (AXFR/IXFR, NOTIFY).
 * Every host listens for SMTP on one port, as all would on 25, and reaches
 * the others on it. Mail to users added through the appliance's LDAP
 * arrives through either unit, in the Maildir of the host their mailHost
 * names (none: the appliance); a domain provisioned at RCPT on a unit is
 * answered by both secondaries after NOTIFY (and is in the replica); a user
 * deleted on the appliance is refused by both units within 1 s (and leaves
 * the replica); kill -9 of a unit under load loses nothing it acknowledged;
 * with the appliance down the units take what they know, defer the rest
 * (451 4.4.3) and say they are degraded, and are back in step once it
 * restarts; a third unit that reads its directory from the slapd replica
 * (which runs syncprov in turn: cascaded Content Sync) follows the
 * appliance's changes within 1 s; at the end the replica is identical to the
 * appliance.
 * Needs: slapd, knot, nsd, ldap-utils, swaks, knot-dnsutils.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import selfsigned from 'selfsigned';
import { ADMIN_PASSWORD, run, runDcmx, startSpawned, stopChild, tempDirs, testEnv, type SpawnedAppliance } from './helpers';
import { freePort, replicaCaughtUp, replicaLines, SLAPD_ADMIN, SLAPD_PASSWORD, startSlapd, type Slapd } from './fixtures/slapd';
import { waitFor, waitForAsync } from './fixtures/wait';
import { rcptTo } from './fixtures/smtp';
import { freeDualPort, startKnot, type Knot } from './dns/knot';
import { startNsd, type Nsd } from './dns/nsd';
import { kdigRunner, section, soaSerial, status } from './dns/fixture';
import { StubDns } from './mta/stub-dns';
import { allMail, mailbox, swaks } from './mta/fixture';
import { MaildirLedger, sendLedger } from './mta/ledger';
import { spawnUnit, UNIT_IDENTITY, unitHealth, type Unit } from './mta/unit';

const ZONE = 'example.org';
const SUFFIX = 'o=internet';
const PEOPLE = `ou=people,dc=example,dc=org,${SUFFIX}`;
const REPLICATOR = `uid=replica1,ou=services,${SUFFIX}`;
const REPLICATOR_PW = 'replica1-secret';
const UNITS = ['127.0.0.2', '127.0.0.3'];
const UNIT_NAMES = ['unit1.dcmx.test', 'unit2.dcmx.test'];
const TAG = 'deployment.test';

const newDir = tempDirs('dcmx-deployment-');
let dns: StubDns;
let ports: { ldap: number; smtp: number; dns: number; knot: number; nsd: number };
let applianceDir: string;
let appliance: SpawnedAppliance;
let units: Unit[] = [];
let slapd: Slapd;
let knot: Knot;
let nsd: Nsd;
let replicaTls: { cert: string; key: string };

const adminArgs = () => ['-x', '-H', `ldap://127.0.0.1:${ports.ldap}`, '-D', `cn=admin,${SUFFIX}`, '-w', ADMIN_PASSWORD];
const applianceEnv = () => ({
  DCMX_LDAP_PORT: String(ports.ldap), DCMX_SMTP_PORT: String(ports.smtp), DCMX_DNS_PORT: String(ports.dns),
  DCMX_UPSTREAM_DNS: dns.address, DCMX_AXFR_ALLOW: '127.0.0.1/32', DCMX_NOTIFY: `127.0.0.1:${ports.knot},127.0.0.1:${ports.nsd}`,
  DCMX_REPLICATOR_DNS: REPLICATOR,
  ...UNIT_IDENTITY.env,
});
const kdig = (port: number, name: string, type: string) => kdigRunner(port)(name, type);
const rcpt = (u: Unit, address: string) => rcptTo(u.smtp, address, { host: u.address });

async function ldap(tool: 'ldapadd' | 'ldapmodify' | 'ldapdelete', input: string): Promise<void> {
  const r = await run(tool, adminArgs(), input);
  assert.equal(r.code, 0, `${tool}: ${r.stderr}\n${input}`);
}

function startUnit(i: number, dir = newDir()): Promise<Unit> {
  return spawnUnit({
    dir, address: UNITS[i], hostname: UNIT_NAMES[i], smtpPort: ports.smtp,
    appliance: { dir: applianceDir, ldap: ports.ldap, smtp: ports.smtp }, upstreamDns: dns.address, provisionAllow: ZONE,
    bind: UNIT_IDENTITY,
  });
}

const userLdif = (uid: string, mailHost?: string) =>
  `dn: uid=${uid},${PEOPLE}\nobjectClass: inetOrgPerson\nobjectClass: inetMailUser\nuid: ${uid}\ncn: ${uid}\nsn: ${uid}\nmail: ${uid}@${ZONE}\n${mailHost ? `mailHost: ${mailHost}\n` : ''}`;

/** The hosts (the appliance 'mx', or a unit's name) whose Maildir for `address` holds a message with `subject`. */
function holders(address: string, subject: string): string[] {
  const dirs: [string, string][] = [['mx', applianceDir], ...units.map((u, i): [string, string] => [UNIT_NAMES[i], u.dir])];
  return dirs.filter(([, dir]) => mailbox(dir, address).some((m) => m.split(/\r?\n/).includes(`Subject: ${subject}`))).map(([h]) => h);
}

before(async () => {
  dns = await StubDns.start();
  dns.a('mx.dcmx.test', '127.0.0.1');
  for (const [i, name] of UNIT_NAMES.entries()) dns.a(name, UNITS[i]);
  ports = { ldap: await freePort(), smtp: await freePort(), dns: await freeDualPort(), knot: await freeDualPort(), nsd: await freeDualPort() };
  applianceDir = newDir();
  appliance = await startSpawned(applianceDir, applianceEnv());
  // The zone, as dcmx provisions a domain; its people; the replica's identity and the units' (DCMX_UNIT_DNS).
  const p = await runDcmx(testEnv(applianceDir, applianceEnv()), ['domain', 'add', ZONE]);
  assert.equal(p.code, 0, p.stderr);
  await ldap('ldapadd', [
    `dn: ou=services,${SUFFIX}\nobjectClass: organizationalUnit\nou: services\n`,
    `dn: ${REPLICATOR}\nobjectClass: account\nobjectClass: simpleSecurityObject\nuid: replica1\nuserPassword: ${REPLICATOR_PW}\n`,
    UNIT_IDENTITY.ldif,
    userLdif('ann'),
    userLdif('cy'),
    // Mailboxes kept on the units.
    userLdif('dee', UNIT_NAMES[0]),
    userLdif('eve', UNIT_NAMES[1]),
    userLdif('dot', UNIT_NAMES[0]),
  ].join('\n'));
  // No catch-all (dcmx domain add gives one): an unknown user of the domain is refused, not caught.
  await ldap('ldapmodify', `dn: dc=example,dc=org,${SUFFIX}\nchangetype: modify\ndelete: mailDomainCatchallAddress\n`);
  const serial = soaSerial((await kdig(ports.dns, ZONE, 'SOA')).stdout);
  knot = await startKnot({ port: ports.knot, primaryPort: ports.dns, zone: ZONE, dirPrefix: 'dcmx-knot-deploy-' });
  nsd = await startNsd({ port: ports.nsd, primaryPort: ports.dns, zone: ZONE });
  // The replica is a provider in turn (syncprov, StartTLS with a certificate for mx.dcmx.test): a unit can read from it.
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'mx.dcmx.test' }], { keySize: 2048, algorithm: 'sha256' });
  const tlsDir = newDir();
  replicaTls = { cert: path.join(tlsDir, 'cert.pem'), key: path.join(tlsDir, 'key.pem') };
  fs.writeFileSync(replicaTls.cert, pems.cert);
  fs.writeFileSync(replicaTls.key, pems.private);
  slapd = await startSlapd({
    suffixEntry: false, syncprov: {}, tls: replicaTls,
    lines: replicaLines({ ldapPort: ports.ldap, bindDn: REPLICATOR, password: REPLICATOR_PW }),
  });
  units = await Promise.all(UNITS.map((_, i) => startUnit(i)));
  await knot.waitReady(20_000, async () => {
    const soa = (await kdig(ports.knot, ZONE, 'SOA')).stdout;
    return soaSerial(soa) >= serial ? undefined : `knot serves ${status(soa)} serial ${soaSerial(soa)}, not yet ${serial}`;
  });
  await waitForAsync(`nsd serving ${ZONE} serial ${serial}`, async () => soaSerial((await kdig(ports.nsd, ZONE, 'SOA')).stdout) >= serial, 20_000, 100)
    .catch((e: Error) => assert.fail(`${e.message}; nsd's log:\n${nsd.log}`));
  for (const u of units) await waitForAsync(`unit ${u.address} synchronized`, async () => (await unitHealth(u)).status === 200, 20_000);
  await replicaCaughtUp('the replica\'s first refresh', adminArgs(), slapd);
});
after(async () => {
  await Promise.all(units.map((u) => stopChild(u.child)));
  await slapd?.stop();
  await knot?.stop();
  await nsd?.stop();
  if (appliance) await stopChild(appliance.child);
  await dns?.close();
});

describe('growing past one machine: appliance, two units, a slapd replica, Knot and NSD secondaries', () => {
  test('mail to a user added through the appliance\'s LDAP arrives through either unit', async () => {
    await ldap('ldapadd', userLdif('bea'));
    for (const [i, u] of units.entries()) {
      await waitForAsync(`unit${i + 1} accepts bea`, async () => (await rcpt(u, `bea@${ZONE}`)).code === 250, 5_000, 20);
      const r = await swaks(u.smtp, { server: u.address, to: `bea@${ZONE}`, subject: `via unit${i + 1}`, body: `hello through unit${i + 1}` });
      assert.equal(r.code, 0, r.out);
    }
    for (const i of [1, 2]) {
      const got = await waitForAsync(`the message via unit${i} in the appliance's Maildir`,
        async () => allMail(applianceDir).find((m) => m.text.includes(`hello through unit${i}`)), 20_000);
      assert.match(got.text, new RegExp(`unit${i}\\.dcmx\\.test`), `unit${i} is in the trace`);
    }
    const replica = await run('ldapsearch', [...slapd.adminArgs, '-LLL', '-b', SUFFIX, `(mail=bea@${ZONE})`, '1.1']);
    assert.match(replica.stdout, /^dn: uid=bea,/m, 'the replica has her');
  });

  test('through either unit, each mailbox lands on the host its mailHost names', async () => {
    // dee's mailbox is on unit1, eve's on unit2 (bea's, without mailHost, on the appliance: above).
    const homes: [string, string][] = [['dee', UNIT_NAMES[0]], ['eve', UNIT_NAMES[1]]];
    for (const [i, u] of units.entries()) {
      for (const [uid] of homes) {
        const r = await swaks(u.smtp, { server: u.address, to: `${uid}@${ZONE}`, subject: `${uid} via unit${i + 1}`, body: 'placed' });
        assert.match(r.out, /<- {2}250 .*queued as/, r.out);
      }
    }
    for (const i of [1, 2]) {
      for (const [uid, home] of homes) {
        const subject = `${uid} via unit${i}`;
        const at = await waitFor(`${subject} delivered`, () => {
          const h = holders(`${uid}@${ZONE}`, subject);
          return h.length > 0 && h;
        }, 20_000);
        assert.deepEqual(at, [home], `${subject}: in ${home}'s Maildir only`);
      }
    }
  });

  test('a domain provisioned at RCPT on a unit is answered by the Knot and NSD secondaries after NOTIFY', async () => {
    const name = `shop.${ZONE}`;
    assert.equal(status((await kdig(ports.knot, name, 'MX')).stdout), 'NXDOMAIN');
    assert.equal(status((await kdig(ports.nsd, name, 'MX')).stdout), 'NXDOMAIN');
    const t0 = Date.now();
    const r = await rcpt(units[1], `orders@${name}`);
    assert.equal(r.code, 250, r.raw);
    let last = '';
    await waitForAsync(`knotd to serve ${name} MX`, async () => {
      last = (await kdig(ports.knot, name, 'MX')).stdout;
      return section(last, 'ANSWER').some((l) => / MX 10 mx\.dcmx\.test\.$/.test(l));
    }, 20_000, 50).catch(() => assert.fail(`knot never served ${name} MX:\n${last}\n${knot.log.slice(-2000)}`));
    assert.match(knot.log, /notify, incoming/i, 'knot was NOTIFYed');
    console.log(`# ${name}: RCPT on unit2 -> MX served by the Knot secondary in ${Date.now() - t0} ms`);
    await waitForAsync(`nsd to serve ${name} MX`, async () => {
      last = (await kdig(ports.nsd, name, 'MX')).stdout;
      return section(last, 'ANSWER').some((l) => / MX 10 mx\.dcmx\.test\.$/.test(l));
    }, 20_000, 50).catch(() => assert.fail(`nsd never served ${name} MX:\n${last}\n${nsd.log.slice(-2000)}`));
    console.log(`# ${name}: RCPT on unit2 -> MX served by the NSD secondary in ${Date.now() - t0} ms (their refresh timer: an hour)`);
    // The other unit knows the domain too, and so does the replica.
    await waitForAsync('unit1 routes the new domain', async () => {
      const routes = (await (await fetch(`http://${units[0].address}:${units[0].http}/routes`)).json()) as { routes: { domain: string }[] };
      return routes.routes.some((x) => x.domain === name);
    }, 5_000);
    const replica = await run('ldapsearch', [...slapd.adminArgs, '-LLL', '-b', `dc=shop,dc=example,dc=org,${SUFFIX}`, '-s', 'base', 'objectClass']);
    assert.match(replica.stdout, /objectClass: mailDomain/i);
  });

  test('a user deleted on the appliance is refused by both units within 1 s', async () => {
    for (const u of units) assert.equal((await rcpt(u, `ann@${ZONE}`)).code, 250);
    const t0 = Date.now();
    await ldap('ldapdelete', `uid=ann,${PEOPLE}\n`);
    const lags = await Promise.all(units.map(async (u) => {
      let last = '';
      await waitForAsync(`${u.address} refuses ann`, async () => /^550 5\.1\.1/.test(last = (await rcpt(u, `ann@${ZONE}`)).raw), 5_000, 10)
        .catch(() => assert.fail(`${u.address} still answers ${last} 5 s after the delete; its log:\n${u.output().slice(-3000)}`));
      return Date.now() - t0;
    }));
    console.log(`# delete on the appliance -> refused by the units in ${lags.join(' and ')} ms`);
    for (const ms of lags) assert.ok(ms <= 1000, `refused after ${ms} ms`);
  });

  test('kill -9 of a unit under load loses nothing it acknowledged', { timeout: 180_000 }, async (t) => {
    // cy's mailbox is the appliance's (relayed), dot's is unit1's own (its Maildir): both paths under load.
    const ids = Array.from({ length: 300 }, (_, i) => `k${String(i).padStart(3, '0')}`);
    const localIds = Array.from({ length: 200 }, (_, i) => `d${String(i).padStart(3, '0')}`);
    const acked = new Set<string>();
    const localAcked = new Set<string>();
    const victim = units[0];
    let killed: Promise<number | null> | undefined;
    const kill = () => {
      if (!killed && acked.size + localAcked.size >= 100) killed = stopChild(victim.child, 'SIGKILL');
    };
    const sent = await Promise.all([
      sendLedger({ port: victim.smtp, host: victim.address, ids, rcpt: `cy@${ZONE}`, tag: TAG, sessions: 4 }, acked, kill),
      sendLedger({ port: victim.smtp, host: victim.address, ids: localIds, rcpt: `dot@${ZONE}`, tag: TAG, sessions: 2 }, localAcked, kill),
    ]);
    assert.ok(killed, `the unit was not killed: ${acked.size + localAcked.size} acknowledged, ${sent.flatMap((s) => s.failures).join(' | ')}`);
    await killed;
    assert.ok(acked.size < ids.length && localAcked.size < localIds.length, 'killed under load');
    t.diagnostic(`${acked.size}/${ids.length} (relayed) and ${localAcked.size}/${localIds.length} (its own) acknowledged by unit1 before SIGKILL`);
    // Restarted on its data dir, it delivers what it had acknowledged: into its own Maildir, or relayed to the appliance.
    units[0] = await startUnit(0, victim.dir);
    const local = new MaildirLedger(victim.dir, `dot@${ZONE}`, TAG);
    await waitForAsync('every acknowledged message in unit1\'s own Maildir', async () => [...localAcked].every((id) => local.ids().ids.has(id)), 90_000, 250)
      .catch(() => assert.fail(`acknowledged and lost on unit1: ${[...localAcked].filter((id) => !local.ids().ids.has(id)).slice(0, 5).join(', ')}`));
    assert.deepEqual(local.ids().broken, [], 'every message in its Maildir is intact');
    assert.deepEqual([...local.ids().ids].filter(([, n]) => n > 1), [], 'into its own Maildir, each message once (deterministic names)');
    const ledger = new MaildirLedger(applianceDir, `cy@${ZONE}`, TAG);
    await waitForAsync('every acknowledged message in the appliance\'s Maildir', async () => [...acked].every((id) => ledger.ids().ids.has(id)), 90_000, 250)
      .catch(() => {
        const have = ledger.ids().ids;
        const missing = [...acked].filter((id) => !have.has(id));
        assert.fail(`${missing.length} acknowledged message(s) lost, e.g. ${missing.slice(0, 5).join(', ')}\n${units[0].output().slice(-2000)}`);
      });
    const { ids: delivered, broken } = ledger.ids();
    assert.deepEqual(broken, [], 'every delivered message is intact');
    const twice = [...delivered].filter(([, n]) => n > 1).length;
    t.diagnostic(`${delivered.size} distinct messages delivered, ${twice} twice (relayed before the kill, not yet dequeued: RFC 5321 §6.1 allows it)`);
  });

  test('the appliance down: the units take what they know, defer the rest, say they are degraded; back in step after', { timeout: 120_000 }, async () => {
    const known = `bea@${ZONE}`;
    for (const u of units) assert.equal((await rcpt(u, known)).code, 250, `${u.address} takes ${known} (and caches it)`);
    await stopChild(appliance.child, 'SIGKILL');
    for (const u of units) {
      await waitForAsync(`${u.address} degraded`, async () => (await unitHealth(u)).status === 503, 15_000, 50);
      assert.equal((await unitHealth(u)).body.status, 'degraded');
      assert.equal((await rcpt(u, known)).code, 250, `${u.address}: a cached recipient is still accepted`);
      assert.match((await rcpt(u, `fay@${ZONE}`)).raw, /^451 4\.4\.3 /, `${u.address}: an unknown recipient is deferred, never refused`);
      assert.match((await rcpt(u, `postmaster@east.${ZONE}`)).raw, /^451 4\.4\.3 /, `${u.address}: no new domain without the directory`);
    }
    // Mail for the appliance's mailboxes waits in the unit's queue; the secondaries answer from their copies.
    const r = await swaks(units[1].smtp, { server: units[1].address, to: known, subject: 'during the outage', body: 'kept' });
    assert.match(r.out, /<- {2}250 .*queued as/, r.out);
    for (const port of [ports.knot, ports.nsd]) assert.equal(section((await kdig(port, `shop.${ZONE}`, 'MX')).stdout, 'ANSWER').length, 1, `the secondary on ${port} still answers`);

    appliance = await startSpawned(applianceDir, applianceEnv());
    for (const u of units) await waitForAsync(`${u.address} synchronized again`, async () => (await unitHealth(u)).status === 200, 20_000, 100);
    await waitFor('the message taken during the outage in the appliance\'s Maildir', () => holders(known, 'during the outage').length > 0, 30_000);
    assert.deepEqual(holders(known, 'during the outage'), ['mx']);
    await ldap('ldapadd', userLdif('fay'));
    for (const u of units) await waitForAsync(`${u.address} takes fay`, async () => (await rcpt(u, `fay@${ZONE}`)).code === 250, 5_000, 20);
  });

  test('a third unit reading from the slapd replica (cascaded Content Sync) follows the appliance', async () => {
    const third = await spawnUnit({
      dir: newDir(), address: '127.0.0.4', hostname: 'unit3.dcmx.test', smtpPort: ports.smtp,
      appliance: { dir: applianceDir, ldap: ports.ldap, smtp: ports.smtp }, upstreamDns: dns.address, provisionAllow: ZONE,
      directory: { url: slapd.url, bindDn: SLAPD_ADMIN, password: SLAPD_PASSWORD, ca: replicaTls.cert },
    });
    units.push(third);
    await waitForAsync('unit3 synchronized from the replica', async () => (await unitHealth(third)).status === 200, 20_000);
    assert.equal((await rcpt(third, `bea@${ZONE}`)).code, 250);
    const t0 = Date.now();
    await ldap('ldapadd', userLdif('gil'));
    await waitForAsync('unit3 accepts gil', async () => (await rcpt(third, `gil@${ZONE}`)).code === 250, 5_000, 10);
    const added = Date.now() - t0;
    const t1 = Date.now();
    await ldap('ldapdelete', `uid=gil,${PEOPLE}\n`);
    await waitForAsync('unit3 refuses gil', async () => /^550 5\.1\.1/.test((await rcpt(third, `gil@${ZONE}`)).raw), 5_000, 10);
    const deleted = Date.now() - t1;
    console.log(`# appliance -> slapd replica -> unit3: an add in ${added} ms, a delete in ${deleted} ms`);
    for (const ms of [added, deleted]) assert.ok(ms <= 1000, `${ms} ms`);
    // The replica cannot provision (the extended operation is dcmx's): a new domain is deferred, never refused.
    assert.match((await rcpt(third, `x@more.${ZONE}`)).raw, /^451 4\.4\.3/);
    // Its mail for the appliance's mailboxes goes there, like the others'.
    const r = await swaks(third.smtp, { server: third.address, to: `bea@${ZONE}`, subject: 'via unit3', body: 'hello through unit3' });
    assert.equal(r.code, 0, r.out);
    await waitFor('the message via unit3 in the appliance\'s Maildir', () => holders(`bea@${ZONE}`, 'via unit3').length > 0, 20_000);
    assert.deepEqual(holders(`bea@${ZONE}`, 'via unit3'), ['mx']);
  });

  test('the replica ends identical to the appliance', async () => {
    await replicaCaughtUp('the replica after everything', adminArgs(), slapd);
  });
});
