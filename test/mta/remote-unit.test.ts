/**
 * A remote transfer unit (DCMX_ROLE=mta) as a deployment runs it, with real
 * processes, sockets and clients: a dcmx appliance on 127.0.0.1 and a unit
 * on 127.0.0.2 whose directory is the appliance's LDAP (StartTLS, the
 * appliance's certificate checked; Content Sync, RFC 4533), bound as a
 * transfer unit identity (DCMX_UNIT_DNS), not the administrator. Users are
 * written with ldapadd/ldapdelete on the appliance, mail is sent with swaks,
 * nodemailer and raw SMTP to the unit:
 * - mail to an LDAP-added user is accepted by the unit and delivered (the
 *   mailbox has no mailHost: the unit relays it to the appliance; with a
 *   mailHost naming the unit, into the unit's own Maildir);
 * - SMTP AUTH on the unit is checked by a bind on the directory;
 * - a user deleted on the appliance is refused by the unit within 1 s, and a
 *   user added is accepted within 1 s (the change latency is measured);
 * - at steady state the unit reads the directory at most 0.01 times per
 *   message (measured from its /stats);
 * - the appliance killed: cached recipients still accepted, unknown ones 451
 *   4.4.3 (never 550), /health 503 "degraded", the mail accepted meanwhile
 *   delivered; back to normal once the appliance is back;
 * - a new domain at RCPT is provisioned through the unit (the LDAP extended
 *   operation), and the unit knows it before it answers;
 * - the unit identity, over ldapsearch/ldapmodify/ldapexop: sees no
 *   userPassword, writes nothing, is held to no size limit (the appliance's
 *   is 5 here, which the unit's Content Sync goes past), while a plain user
 *   is held to it and may not call the provisioning extended operation;
 * - a restarted unit routes from its saved copy with the directory down, and
 *   resumes from its cookie; one whose cookie fell out of the directory's
 *   change log (DCMX_CHANGELOG_KEEP) reloads everything, with no ghost.
 * Needs: swaks, ldap-utils.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import nodemailer from 'nodemailer';
import { ADMIN_PASSWORD, ldapaddAt, ldapResultCode, run, runDcmx, startSpawned, stopChild, tempDirs, type RunResult, type SpawnedAppliance } from '../helpers';
import { spawnUnit, UNIT_IDENTITY, unitEnv, unitHealth, type Unit, type UnitOptions } from './unit';
import type { QueueMessageView } from '../../server/mta/queue-admin';
import { addUser, allMail, mailbox, swaks, USER, waitFor } from './fixture';
import { rcptTo } from '../fixtures/smtp';
import { waitForAsync } from '../fixtures/wait';
import { freePort } from '../fixtures/slapd';
import { StubDns } from './stub-dns';

const newDir = tempDirs('dcmx-unit-');
const UNIT = '127.0.0.2';
const PEOPLE = 'ou=people,dc=example,dc=org,o=internet';
const PROVISION_OID = '1.3.6.1.4.1.32473.1.3.1';
/** The appliance's size limit for everyone but the administrator, the replicas and the units: fewer entries than the unit follows. */
const SIZE_LIMIT = 5;

let dns: StubDns;
let ports: { ldap: number; smtp: number };
let applianceDir: string;
let appliance: SpawnedAppliance;
let unit: Unit;

function applianceEnv(): Record<string, string> {
  return {
    DCMX_LDAP_PORT: String(ports.ldap), DCMX_SMTP_PORT: String(ports.smtp), DCMX_UPSTREAM_DNS: dns.address,
    // A short change log, so that a unit away for a few changes comes back with a cookie it cannot be served from.
    DCMX_CHANGELOG_KEEP: '20',
    DCMX_LDAP_SIZE_LIMIT: String(SIZE_LIMIT),
    ...UNIT_IDENTITY.env,
  };
}

function unitOptions(): UnitOptions {
  return {
    dir: unit?.dir ?? newDir(), address: UNIT, hostname: 'unit1.dcmx.test',
    appliance: { dir: applianceDir, ldap: ports.ldap, smtp: ports.smtp }, upstreamDns: dns.address, bind: UNIT_IDENTITY,
    // dcmx.test: allowed here, refused by the directory (a new zone holding the appliance's own name).
    provisionAllow: 'new.test dcmx.test',
    httpsPort: 0,
  };
}

async function startUnit(): Promise<void> {
  unit = await spawnUnit(unitOptions());
}

/** `dcmx queue ARGS...` on the unit's data dir, with its environment: the unit's own queue. */
function unitQueue(...args: string[]): Promise<RunResult> {
  return runDcmx(unitEnv(unitOptions()), ['queue', ...args]);
}

const health = () => unitHealth(unit);

interface UnitStats {
  directory: { searches: number; reloads: number };
  cache: { hits: number };
}

async function unitStats(): Promise<UnitStats> {
  return (await (await fetch(`http://${UNIT}:${unit.http}/stats`)).json()) as UnitStats;
}

const rcpt = (address: string) => rcptTo(unit.smtp, address, { host: UNIT });

function userLdif(uid: string): string {
  return `dn: uid=${uid},${PEOPLE}\nobjectClass: inetOrgPerson\nobjectClass: inetMailUser\nuid: ${uid}\ncn: ${uid}\nsn: ${uid}\nmail: ${uid}@example.org\n`;
}

before(async () => {
  dns = await StubDns.start();
  dns.a('mx.dcmx.test', '127.0.0.1');
  dns.mx('shop.new.test', 10, 'mx.dcmx.test');
  ports = { ldap: await freePort(), smtp: await freePort() };
  applianceDir = newDir();
  appliance = await startSpawned(applianceDir, applianceEnv());
  await addUser(ports.ldap);
  const id = await ldapaddAt(ports.ldap, 'dn: ou=services,o=internet\nobjectClass: organizationalUnit\nou: services\n\n' + UNIT_IDENTITY.ldif);
  assert.equal(id.code, 0, id.stderr);
  await startUnit();
  await waitForAsync('the unit synchronized', async () => (await health()).status === 200);
});
after(async () => {
  if (unit) await stopChild(unit.child);
  if (appliance) await stopChild(appliance.child);
  await dns?.close();
});

describe('a remote transfer unit (DCMX_ROLE=mta) against the appliance directory', () => {
  test('its admin endpoint is served over HTTPS too (DCMX_HTTPS_PORT), with the unit\'s own certificate', async () => {
    assert.ok(unit.https !== undefined && unit.https > 0);
    // Its generated certificate names its DCMX_HOSTNAME: curl checks it against that name.
    const r = await run('curl', ['-sS', '--cacert', path.join(unit.dir, 'tls', 'smtp-cert.pem'),
      '--resolve', `unit1.dcmx.test:${unit.https}:${UNIT}`, `https://unit1.dcmx.test:${unit.https}/health`]);
    assert.equal(r.code, 0, r.stderr);
    const body = JSON.parse(r.stdout) as { status: string; role: string };
    assert.equal(body.status, 'ok');
    assert.equal(body.role, 'mta');
  });

  test('mail to an LDAP-added user is accepted by the unit and delivered', async () => {
    const r = await swaks(unit.smtp, { server: UNIT, to: USER, subject: 'via the unit', body: 'hello from unit1' });
    assert.equal(r.code, 0, r.out);
    assert.match(r.replyTo('RCPT TO') ?? '', /^250 /);
    // No mailHost: the mailbox is the appliance's, where the unit relays it.
    const got = await waitFor('the message in the appliance Maildir', () => allMail(applianceDir).find((m) => m.text.includes('hello from unit1')), 20_000);
    assert.match(got.text, /Subject: via the unit/);
    assert.match(got.text, /unit1\.dcmx\.test/, 'the unit is in the trace');

    // mailHost naming the unit: the mailbox is the unit's own, delivered into its Maildir.
    assert.equal((await ldapaddAt(ports.ldap, userLdif('una') + 'mailHost: unit1.dcmx.test\n')).code, 0);
    await waitForAsync('una known to the unit', async () => (await rcpt('una@example.org')).code === 250, 5000);
    const r2 = await swaks(unit.smtp, { server: UNIT, to: 'una@example.org', body: 'kept on unit1' });
    assert.equal(r2.code, 0, r2.out);
    await waitFor('the message in the unit\'s Maildir', () => mailbox(unit.dir, 'una@example.org').find((m) => m.includes('kept on unit1')), 20_000);
    assert.equal(allMail(applianceDir).filter((m) => m.text.includes('kept on unit1')).length, 0, 'not relayed to the appliance');
  });

  test('SMTP AUTH on the unit checks the password with the directory (a bind as the user)', async () => {
    assert.equal((await ldapaddAt(ports.ldap, userLdif('pat') + 'userPassword: pat-secret-1\n')).code, 0);
    // nodemailer: STARTTLS (the unit's own generated certificate), then AUTH PLAIN.
    const auth = async (pass: string) => {
      const transport = nodemailer.createTransport({
        host: UNIT, port: unit.smtp, secure: false, requireTLS: true, name: 'client.test', tls: { rejectUnauthorized: false },
        auth: { user: 'pat@example.org', pass }, authMethod: 'PLAIN', connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 10_000,
      });
      try {
        return await transport.verify();
      } finally {
        transport.close();
      }
    };
    assert.equal(await auth('pat-secret-1'), true);
    await assert.rejects(auth('wrong-password'), (e: Error & { responseCode?: number }) => e.responseCode === 535);
  });

  test('the unit identity reads no userPassword, writes nothing, is held to no size limit; a plain user may not provision', async () => {
    // pat (SMTP AUTH above) has a password; more addresses than the size limit.
    for (let i = 0; i < SIZE_LIMIT; i++) assert.equal((await ldapaddAt(ports.ldap, userLdif(`many${i}`))).code, 0);
    const ldap = (who: { dn: string; password: string }) => ['-x', '-H', `ldap://127.0.0.1:${ports.ldap}`, '-D', who.dn, '-w', who.password];
    const asUnit = ldap(UNIT_IDENTITY);
    const pat = ldap({ dn: `uid=pat,${PEOPLE}`, password: 'pat-secret-1' });

    const all = await run('ldapsearch', [...asUnit, '-LLL', '-b', 'o=internet', '(|(mail=*)(uid=pat))', 'mail', 'userPassword']);
    assert.equal(all.code, 0, all.stderr);
    assert.ok((all.stdout.match(/^dn: /gm) ?? []).length > SIZE_LIMIT, all.stdout);
    assert.match(all.stdout, /^dn: uid=pat,/m);
    assert.doesNotMatch(all.stdout, /userPassword/i, 'no userPassword for the unit');
    const pw = await run('ldapsearch', [...asUnit, '-LLL', '-b', `uid=pat,${PEOPLE}`, '-s', 'base', '(userPassword=*)', '1.1']);
    assert.equal(pw.stdout.trim(), '', 'nor may it test userPassword in a filter');
    // A plain user is held to the size limit (4: sizeLimitExceeded).
    assert.equal(ldapResultCode(await run('ldapsearch', [...pat, '-LLL', '-b', 'o=internet', '(mail=*)', 'mail'])), 4);

    // It writes nothing: not a user's entry, not a domain, not its own password; no add, no delete (50).
    const writes: [string, string][] = [
      ['ldapmodify', `dn: uid=pat,${PEOPLE}\nchangetype: modify\nreplace: userPassword\nuserPassword: taken-over-1\n`],
      ['ldapmodify', 'dn: dc=example,dc=org,o=internet\nchangetype: modify\nreplace: mailDomainStatus\nmailDomainStatus: hold\n'],
      ['ldapmodify', `dn: uid=many0,${PEOPLE}\nchangetype: modify\nreplace: mailHost\nmailHost: unit1.dcmx.test\n`],
      ['ldapadd', userLdif('intruder')],
      ['ldapdelete', `uid=many0,${PEOPLE}`],
    ];
    for (const [tool, input] of writes) {
      const r = tool === 'ldapdelete' ? await run(tool, [...asUnit, input]) : await run(tool, asUnit, input);
      assert.equal(ldapResultCode(r), 50, `${tool}: ${r.stderr}\n${input}`);
    }
    const still = await run('ldapsearch', ['-x', '-LLL', '-H', `ldap://127.0.0.1:${ports.ldap}`, '-D', 'cn=admin,o=internet', '-w', ADMIN_PASSWORD,
      '-b', PEOPLE, '(|(uid=intruder)(uid=many0))', 'uid', 'mailHost']);
    assert.match(still.stdout, /^uid: many0$/m);
    assert.doesNotMatch(still.stdout, /intruder|mailHost/);
    const patStill = await run('ldapwhoami', pat);
    assert.equal(patStill.code, 0, 'pat\'s password unchanged');

    // The provisioning extended operation: a plain user is refused, nothing written; the unit identity may.
    const byPat = await run('ldapexop', [...pat, `${PROVISION_OID}:byuser.new.test`]);
    assert.equal(ldapResultCode(byPat), 50, byPat.stderr);
    const none = await run('ldapsearch', [...asUnit, '-LLL', '-b', 'o=internet', '(dc=byuser)', '1.1']);
    assert.equal(none.stdout.trim(), '');
    const byUnit = await run('ldapexop', [...asUnit, `${PROVISION_OID}:byunit.new.test`]);
    assert.equal(byUnit.code, 0, byUnit.stderr);
    const made = await run('ldapsearch', [...asUnit, '-LLL', '-b', 'dc=byunit,dc=new,dc=test,o=internet', '-s', 'base', 'objectClass']);
    assert.match(made.stdout, /objectClass: mailDomain/i, made.stderr);
    // The directory's own refusal still holds for it (a zone above the appliance's own name).
    assert.equal(ldapResultCode(await run('ldapexop', [...asUnit, `${PROVISION_OID}:dcmx.test`])), 53);
  });

  test('directory changes reach the unit within 1 s; steady state reads the directory at most 0.01 times per message', async () => {
    const lags: number[] = [];
    for (let i = 0; i < 10; i++) {
      const uid = `lag${i}`;
      assert.match((await rcpt(`${uid}@example.org`)).raw, /^550 5\.1\.1/, 'unknown first (and cached as such)');
      const t0 = Date.now();
      assert.equal((await ldapaddAt(ports.ldap, userLdif(uid))).code, 0);
      await waitForAsync(`${uid} accepted by the unit`, async () => (await rcpt(`${uid}@example.org`)).code === 250, 5000, 5);
      const added = Date.now() - t0;
      const t1 = Date.now();
      const del = await run('ldapdelete', ['-x', '-H', `ldap://127.0.0.1:${ports.ldap}`, '-D', 'cn=admin,o=internet', '-w', ADMIN_PASSWORD, `uid=${uid},${PEOPLE}`]);
      assert.equal(del.code, 0, del.stderr);
      await waitForAsync(`${uid} refused by the unit`, async () => /^550 5\.1\.1/.test((await rcpt(`${uid}@example.org`)).raw), 5000, 5);
      lags.push(added, Date.now() - t1);
    }
    lags.sort((a, b) => a - b);
    const p50 = lags[Math.floor(lags.length / 2)];
    const p99 = lags[Math.ceil(lags.length * 0.99) - 1];
    console.log(`# change -> remote unit (ldapadd/ldapdelete until the RCPT answer changes): p50 ${p50} ms, p99 ${p99} ms, n=${lags.length}`);
    assert.ok(p99 <= 1000, `p99 ${p99} ms`);

    // Steady state: the same recipients again and again.
    const N = 200;
    await rcpt(USER);
    const before = await unitStats();
    for (let i = 0; i < N; i++) assert.equal((await rcpt(i % 2 ? USER : 'nobody@example.org')).code, i % 2 ? 250 : 550);
    const reads = (await unitStats()).directory.searches - before.directory.searches;
    console.log(`# directory reads per RCPT at steady state: ${reads}/${N}`);
    assert.ok(reads / N <= 0.01, `${reads} reads for ${N} RCPTs`);
  });

  test('directory down: cached recipients accepted, unknown 451 4.4.3, /health degraded; back to normal after', async () => {
    assert.equal((await rcpt(USER)).code, 250, 'USER is cached');
    await stopChild(appliance.child, 'SIGKILL');
    await waitForAsync('/health degraded', async () => (await health()).status === 503);
    assert.equal((await health()).body.status, 'degraded');
    assert.equal((await rcpt(USER)).code, 250, 'a cached recipient is still accepted');
    const unknown = await rcpt('stranger@example.org');
    assert.match(unknown.raw, /^451 4\.4\.3/, 'an unknown recipient is deferred, never refused');
    assert.match((await rcpt('someone@unknown-domain.test')).raw, /^451 4\.4\.3/, 'an unknown domain too');
    // Accepted during the outage: queued on the unit, delivered once the appliance is back.
    const r = await swaks(unit.smtp, { server: UNIT, to: USER, body: 'sent during the outage' });
    assert.equal(r.code, 0, r.out);
    const id = /<- {2}250 .*queued as (\w+)/.exec(r.out)?.[1];
    assert.ok(id, r.out);
    // `dcmx queue` on the unit's data dir reads and changes the unit's own queue: deferred (the appliance is down), then held.
    const listed = await waitForAsync('the message deferred on the unit', async () => {
      const l = await unitQueue('list', '--json');
      assert.equal(l.code, 0, l.stderr);
      return (JSON.parse(l.stdout) as QueueMessageView[]).find((m) => m.id === id && m.recipients[0].attempts > 0);
    }, 20_000);
    assert.equal(listed.recipients[0].address, USER);
    assert.equal((await unitQueue('hold', id)).code, 0);

    appliance = await startSpawned(applianceDir, applianceEnv());
    await waitForAsync('/health ok again', async () => (await health()).status === 200, 20_000);
    assert.match((await rcpt('stranger@example.org')).raw, /^550 5\.1\.1/);
    assert.match((await unitQueue('show', id)).stdout, /^status: hold$/m, 'still held with the appliance back');
    // Released, it is due (its retry time has passed): the unit tries it at once.
    assert.equal((await unitQueue('release', id)).code, 0);
    await waitFor('the message accepted during the outage delivered', () => allMail(applianceDir).find((m) => m.text.includes('sent during the outage')), 30_000);
  });

  test('a new domain at RCPT is provisioned on the directory through the unit', async () => {
    const reply = await rcpt('anyone@shop.new.test');
    assert.equal(reply.code, 250, reply.raw);
    const s = await run('ldapsearch', ['-x', '-LLL', '-H', `ldap://127.0.0.1:${ports.ldap}`, '-b', 'dc=shop,dc=new,dc=test,o=internet', '-s', 'base', 'objectClass']);
    assert.match(s.stdout, /objectClass: mailDomain/i);
    const routes = (await (await fetch(`http://${UNIT}:${unit.http}/routes`)).json()) as { routes: { domain: string }[] };
    assert.ok(routes.routes.some((r) => r.domain === 'shop.new.test'));
    // Outside the allow-list: refused by the unit's policy, nothing written.
    assert.match((await rcpt('x@other.test')).raw, /^550 5\.1\.2/);
    // Allowed by the unit, refused by the directory's write path: the same 550 5.1.2, with the directory's reason.
    const refused = await rcpt('x@dcmx.test');
    assert.match(refused.raw, /^550 5\.1\.2 Domain dcmx\.test is not served here: .*mx\.dcmx\.test/, refused.raw);
  });

  test('the mx policy on a unit: an MX naming the unit or the appliance holding the directory takes the domain, another is refused', async () => {
    dns.mx('viaappliance.test', 10, 'mx.dcmx.test');
    dns.mx('viaunit.test', 10, 'unit2.dcmx.test');
    dns.mx('elsewhere.test', 10, 'mx.elsewhere.test').a('mx.elsewhere.test', '192.0.2.25');
    const unit2 = await spawnUnit({
      dir: newDir(), address: '127.0.0.3', hostname: 'unit2.dcmx.test', provisioning: 'mx', provisionAllow: '',
      appliance: { dir: applianceDir, ldap: ports.ldap, smtp: ports.smtp }, upstreamDns: dns.address, bind: UNIT_IDENTITY,
    });
    try {
      await waitForAsync('unit2 synchronized', async () => (await unitHealth(unit2)).status === 200);
      const at2 = (address: string) => rcptTo(unit2.smtp, address, { host: '127.0.0.3' });
      assert.equal((await at2('a@viaappliance.test')).code, 250);
      assert.equal((await at2('a@viaunit.test')).code, 250);
      assert.match((await at2('a@elsewhere.test')).raw, /^550 5\.1\.2 .*MX does not point to this server/);
      const s = await run('ldapsearch', ['-x', '-LLL', '-H', `ldap://127.0.0.1:${ports.ldap}`, '-b', 'o=internet', '(|(dc=viaappliance)(dc=viaunit)(dc=elsewhere))', 'dc']);
      assert.deepEqual(s.stdout.match(/^dc: .*$/gm)?.sort(), ['dc: viaappliance', 'dc: viaunit']);
    } finally {
      await stopChild(unit2.child);
    }
  });

  test('the unit restarts from its saved cookie and copy, even with the directory down', async () => {
    await stopChild(unit.child);
    await stopChild(appliance.child, 'SIGKILL');
    await startUnit();
    assert.equal((await health()).status, 503);
    // The domain copy came from the data dir: a known domain's unknown user is deferred, not a relay refusal.
    assert.match((await rcpt('who@example.org')).raw, /^451 4\.4\.3/);
    appliance = await startSpawned(applianceDir, applianceEnv());
    await waitForAsync('/health ok again', async () => (await health()).status === 200, 20_000);
    assert.equal((await rcpt(USER)).code, 250);
    assert.equal((await rcpt('anyone@shop.new.test')).code, 250, 'the domain provisioned before the restart is known');
  });

  test('back after the directory trimmed its change log past the unit\'s cookie: a full reload (e-syncRefreshRequired), no ghost', async () => {
    assert.equal((await ldapaddAt(ports.ldap, userLdif('gone'))).code, 0);
    await waitForAsync('gone accepted', async () => (await rcpt('gone@example.org')).code === 250, 5000);
    await stopChild(unit.child);
    const ldap = ['-x', '-H', `ldap://127.0.0.1:${ports.ldap}`, '-D', 'cn=admin,o=internet', '-w', ADMIN_PASSWORD];
    assert.equal((await run('ldapdelete', [...ldap, `uid=gone,${PEOPLE}`])).code, 0);
    // More changes than the change log keeps (DCMX_CHANGELOG_KEEP=20): the cookie falls out of it.
    for (let i = 0; i < 25; i++) {
      const r = await run('ldapmodify', ldap, `dn: ${PEOPLE}\nchangetype: modify\nreplace: description\ndescription: change ${i}\n`);
      assert.equal(r.code, 0, r.stderr);
    }
    await startUnit();
    await waitForAsync('the unit synchronized', async () => (await health()).status === 200, 20_000);
    assert.match((await rcpt('gone@example.org')).raw, /^550 5\.1\.1/, 'the user deleted while the unit was away is gone');
    assert.equal((await rcpt(USER)).code, 250);
    assert.equal((await unitStats()).directory.reloads, 1, 'one full reload, after e-syncRefreshRequired');
  });
});
