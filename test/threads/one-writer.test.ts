/**
 * One write path with two serving threads (DCMX_THREADS=2): LDAP adds on
 * many connections (spread over both threads), provisionings at RCPT in
 * many SMTP sessions (both threads too) and `dcmx domain add` in other
 * processes, all at once. Every write is committed, and the change log
 * holds them all with dense change numbers: no write lost, none twice.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { adminArgs, caughtUp, run, runDcmx, startTestAppliance, testEnv, type TestAppliance } from '../helpers';
import { digRunner, section, status } from '../dns/fixture';
import { rcptTo } from '../fixtures/smtp';

/** ldapadd runs at once, each binding as the administrator: below DCMX_AUTH_FAILURES (10), which counts binds under way (auth-throttle.ts). */
const LDAP_WRITES = 8;
const RCPT_WRITES = 12;
const CLI_WRITES = 3;

const EXTRA = {
  // The subject of this file: two serving threads.
  DCMX_THREADS: '2',
  DCMX_PROVISIONING: 'allowlist',
  DCMX_PROVISION_ALLOW: 'prov.test',
  DCMX_PROVISION_CLIENT_RATE: '1000',
  DCMX_PROVISION_RATE: '1000',
  DCMX_PROVISION_HOURLY: '1000',
};

let t: TestAppliance;
const dig = digRunner(() => t.app.ports.dns);

before(async () => {
  t = await startTestAppliance(EXTRA);
  const r = await run('ldapadd', adminArgs(t), 'dn: ou=writes,o=internet\nobjectClass: organizationalUnit\nou: writes\n');
  assert.equal(r.code, 0, r.stderr);
});
after(async () => t?.close());

/** RCPT TO:<postmaster@domain> in a new session: a new domain under the allow-list is provisioned first. */
async function rcpt(domain: string): Promise<string> {
  return (await rcptTo(t.app.ports.smtp, `postmaster@${domain}`)).raw;
}

test('LDAP adds, provisionings at RCPT and the CLI, all at once: every write committed, change numbers dense', { timeout: 180_000 }, async () => {
  const from = t.app.directory.changeRange().last;
  const ldapDns = Array.from({ length: LDAP_WRITES }, (_, i) => `cn=w${i},ou=writes,o=internet`);
  const rcptDomains = Array.from({ length: RCPT_WRITES }, (_, i) => `d${i}.prov.test`);
  const cliDomains = Array.from({ length: CLI_WRITES }, (_, i) => `cli${i}.example.net`);
  const [adds, rcpts, cli] = await Promise.all([
    Promise.all(ldapDns.map((dn) => run('ldapadd', adminArgs(t), `dn: ${dn}\nobjectClass: organizationalRole\ncn: ${dn.slice(3, dn.indexOf(','))}\n`))),
    Promise.all(rcptDomains.map(rcpt)),
    Promise.all(cliDomains.map((d) => runDcmx(testEnv(t.dataDir, EXTRA), ['domain', 'add', d]))),
  ]);
  adds.forEach((r, i) => assert.equal(r.code, 0, `ldapadd ${ldapDns[i]}: ${r.stderr}`));
  rcpts.forEach((r, i) => assert.match(r, /^250 /, `RCPT for ${rcptDomains[i]}`));
  cli.forEach((r, i) => assert.equal(r.code, 0, `dcmx domain add ${cliDomains[i]}: ${r.stderr}`));

  // The CLI committed in its own process: wait until the appliance has published it.
  await caughtUp(t);
  const rows = [...t.app.directory.changesSince(from + 1)];
  const numbers = rows.map((r) => r.changeNumber);
  assert.deepEqual(numbers, Array.from({ length: numbers.length }, (_, i) => from + 1 + i), 'change numbers dense, each once');
  assert.equal(numbers.at(-1), t.app.directory.changeRange().last);
  const targets = new Set(rows.map((r) => r.targetNdn));
  for (const dn of ldapDns) assert.ok(targets.has(dn), `${dn} in the change log`);
  for (const d of [...rcptDomains, ...cliDomains]) {
    const ndn = `${d.split('.').map((l) => `dc=${l}`).join(',')},o=internet`;
    assert.ok(rows.some((r) => r.targetNdn === ndn && r.changeType === 'add'), `${d} created in the change log`);
  }

  // Every write is there for every reader, on whichever thread.
  const found = await run('ldapsearch', [...adminArgs(t), '-LLL', '-b', 'ou=writes,o=internet', '-s', 'one', '(objectClass=*)', 'dn']);
  assert.equal(found.code, 0, found.stderr);
  assert.deepEqual(found.stdout.split('\n').filter((l) => l.startsWith('dn: ')).map((l) => l.slice(4)).sort(), [...ldapDns].sort());
  for (const d of [...rcptDomains, ...cliDomains]) {
    const r = await dig(d, 'MX');
    assert.equal(status(r.stdout), 'NOERROR', `${d} MX: ${r.stdout}`);
    assert.deepEqual(section(r.stdout, 'ANSWER').map((l) => l.split(' ').slice(-2).join(' ')), ['10 mx.dcmx.test.'], d);
  }
  const stats = await t.app.stats();
  assert.equal(stats.provisioning?.provisioned, RCPT_WRITES, 'each domain created once, at its RCPT');
});
