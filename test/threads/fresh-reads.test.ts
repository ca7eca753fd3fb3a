/**
 * A read after a write's reply sees the write, on every serving thread
 * (DCMX_THREADS=2). Each round warms both threads' caches with the old
 * answers (the DNS answer cache, the transfer unit's directory cache, their
 * negative answers too), writes over one LDAP connection (a new host, a new
 * user, a moved address), and at once reads it back on many new
 * connections, which the kernel spreads over both threads: dig over UDP and
 * TCP, ldapsearch, SMTP RCPT. No read may give the old answer. The
 * per-thread figures (GET /stats) show that both threads answered each
 * protocol.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { adminArgs, run, startTestAppliance, type TestAppliance } from '../helpers';
import { digRunner, section, status } from '../dns/fixture';
import { rcptTo } from '../fixtures/smtp';

const ROUNDS = 5;
/** Readers of each kind started together after each write. */
const FAN = 8;
/**
 * ldapsearch runs started together (two binds each): the administrator's binds under way together stay
 * below DCMX_AUTH_FAILURES (10), which counts attempts under way as failures (auth-throttle.ts).
 */
const LDAP_FAN = 4;

const S = 'o=internet';
const ZONE = `dc=fresh,dc=test,${S}`;
const BASE = `dn: dc=test,${S}
objectClass: domain
dc: test

dn: ${ZONE}
objectClass: dNSDomain2
objectClass: mailDomain
dc: fresh
dNSTTL: 300
sOARecord: ns1.fresh.test. hostmaster.fresh.test. 1 3600 900 604800 60
nSRecord: ns1.fresh.test.
mXRecord: 10 mx.dcmx.test.

dn: dc=ns1,${ZONE}
objectClass: dNSDomain2
dc: ns1
aRecord: 192.0.2.53

dn: dc=moving,${ZONE}
objectClass: dNSDomain2
dc: moving
aRecord: 198.51.100.0

dn: ou=people,${ZONE}
objectClass: organizationalUnit
ou: people
`;

let t: TestAppliance;
const dig = digRunner(() => t.app.ports.dns);

before(async () => {
  // The subject of this file: two serving threads on every port.
  t = await startTestAppliance({ DCMX_THREADS: '2' });
  const r = await run('ldapadd', adminArgs(t), BASE);
  assert.equal(r.code, 0, r.stderr);
});
after(async () => t?.close());

/** The A records dig (UDP, or TCP with `tcp`) gets for `name`, or its status when it is not NOERROR. */
async function lookup(name: string, tcp: boolean): Promise<string> {
  const r = await dig(...(tcp ? ['+tcp'] : []), name, 'A');
  const s = status(r.stdout);
  if (s !== 'NOERROR') return s;
  return section(r.stdout, 'ANSWER').map((l) => l.split(' ').pop()).sort().join(',');
}

/** The mail and aRecord values ldapsearch finds below the zone for `filter`, or 'none'. */
async function search(filter: string): Promise<string> {
  const r = await run('ldapsearch', [...adminArgs(t), '-LLL', '-b', ZONE, filter, 'mail', 'aRecord']);
  assert.equal(r.code, 0, r.stderr);
  const values = r.stdout.split('\n').filter((l) => /^(mail|aRecord): /.test(l)).sort();
  return values.length ? values.join(',') : 'none';
}

/** The reply code of RCPT TO:<address> in a new SMTP session. */
async function rcpt(address: string): Promise<number> {
  return (await rcptTo(t.app.ports.smtp, address)).code;
}

/** What every reader must see in round `i`, before (`old`) or after its write. */
function expected(i: number, old: boolean) {
  return {
    host: old ? 'NXDOMAIN' : `192.0.2.${100 + i}`,
    moving: `198.51.100.${old ? i : i + 1}`,
    user: old ? 'none' : `mail: u${i}@fresh.test`,
    rcpt: old ? 550 : 250,
  };
}

/** FAN readers of each kind at once; each result must be the expected one. */
async function readAll(i: number, old: boolean): Promise<void> {
  const want = expected(i, old);
  const when = old ? 'before' : 'after';
  const checks: Promise<void>[] = [];
  for (let k = 0; k < FAN; k++) {
    for (const tcp of [false, true]) {
      checks.push(lookup(`h${i}.fresh.test`, tcp).then((v) => assert.equal(v, want.host, `h${i} over ${tcp ? 'TCP' : 'UDP'} ${when} the write`)));
      checks.push(lookup('moving.fresh.test', tcp).then((v) => assert.equal(v, want.moving, `moving over ${tcp ? 'TCP' : 'UDP'} ${when} the write`)));
    }
    if (k < LDAP_FAN) {
      checks.push(search(`(uid=u${i})`).then((v) => assert.equal(v, want.user, `ldapsearch uid=u${i} ${when} the write`)));
      checks.push(search('(dc=moving)').then((v) => assert.equal(v, `aRecord: ${want.moving}`, `ldapsearch dc=moving ${when} the write`)));
    }
    checks.push(rcpt(`u${i}@fresh.test`).then((code) => assert.equal(code, want.rcpt, `RCPT u${i}@fresh.test ${when} the write`)));
  }
  await Promise.all(checks);
}

test('a write answered on one connection is seen at once by DNS (UDP, TCP), LDAP and SMTP on every thread', { timeout: 240_000 }, async () => {
  for (let i = 0; i < ROUNDS; i++) {
    // Both threads' caches hold the old answers, negative ones included.
    await readAll(i, true);
    const write = await run('ldapmodify', adminArgs(t), [
      `dn: dc=h${i},${ZONE}\nchangetype: add\nobjectClass: dNSDomain2\ndc: h${i}\naRecord: 192.0.2.${100 + i}\n`,
      `dn: uid=u${i},ou=people,${ZONE}\nchangetype: add\nobjectClass: inetOrgPerson\nobjectClass: inetMailUser\nuid: u${i}\ncn: U ${i}\nsn: U\nmail: u${i}@fresh.test\n`,
      `dn: dc=moving,${ZONE}\nchangetype: modify\nreplace: aRecord\naRecord: 198.51.100.${i + 1}\n`,
    ].join('\n'));
    assert.equal(write.code, 0, write.stderr);
    // At once: no reader anywhere may answer from before the write.
    await readAll(i, false);
  }
  const stats = await t.app.stats();
  assert.equal(stats.threads.length, 2, 'both threads answered GET /stats');
  for (const th of stats.threads) {
    assert.ok(th.dns.queries > 0, `thread ${th.thread} answered DNS: ${JSON.stringify(th.dns)}`);
    assert.ok(th.ldap.accepted > 0, `thread ${th.thread} served LDAP: ${JSON.stringify(th.ldap)}`);
    assert.ok(th.intake.accepted + th.intake.rejectedRcpt > 0, `thread ${th.thread} served SMTP: ${JSON.stringify(th.intake)}`);
  }
  assert.equal(stats.dns.queries, stats.threads[0].dns.queries + stats.threads[1].dns.queries, 'the process figure is the sum');
});
