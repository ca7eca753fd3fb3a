/**
 * The store's file removed or replaced under a running appliance (its own
 * process, on a temp data dir): every write is refused with a temporary
 * error — SMTP 451 4.3.0 at RCPT, LDAP unavailable (52) for an add and for
 * provisioning — /health fails, and the appliance says so at error level,
 * once per change of state. Before, mail got 250 and LDAP adds succeeded
 * into a file that was gone, and the restart found an empty store.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ADMIN_PASSWORD, ldapaddAt, ldapResultCode, run, startSpawned, stopChild, tempDir, type SpawnedAppliance } from '../helpers';
import { addUser, swaks, USER } from '../mta/fixture';

let a: SpawnedAppliance;
let dataDir = '';
const store = () => path.join(dataDir, 'dcmx.sqlite');

before(async () => {
  dataDir = tempDir('dcmx-store-file-');
  a = await startSpawned(dataDir);
  await addUser(a.ports.ldap);
});
after(async () => {
  if (a) await stopChild(a.child);
  fs.rmSync(dataDir, { recursive: true, force: true });
});

async function health(): Promise<{ status: number; body: { status: string } }> {
  const r = await fetch(`http://127.0.0.1:${a.ports.http}/health`);
  return { status: r.status, body: (await r.json()) as { status: string } };
}

const entry = (uid: string) => `dn: uid=${uid},ou=people,dc=example,dc=org,o=internet
objectClass: inetOrgPerson
uid: ${uid}
cn: ${uid}
sn: ${uid}
`;

/** The appliance's error-level lines about the store file. */
const storeErrors = () => a.output().split('\n').filter((l) => l.includes('"level":50') && l.includes('the store file was'));

/** Every door that writes refuses, temporarily. */
async function writesRefused(label: string): Promise<void> {
  const h = await health();
  assert.equal(h.status, 503, `${label}: /health ${JSON.stringify(h.body)}`);
  const mail = await swaks(a.ports.smtp, { to: USER, subject: `while the store is ${label}` });
  assert.match(mail.replyTo('RCPT TO') ?? mail.out, /^451 4\.3\.0 /, `${label}: RCPT`);
  const add = await ldapaddAt(a.ports.ldap, entry(`new-${label}`));
  assert.equal(ldapResultCode(add), 52, `${label}: ldapadd ${add.stderr}`);
  const exop = await run('ldapexop', ['-x', '-H', `ldap://127.0.0.1:${a.ports.ldap}`, '-D', 'cn=admin,o=internet', '-w', ADMIN_PASSWORD, `1.3.6.1.4.1.32473.1.3.1:new-${label}.example.net`]);
  assert.equal(ldapResultCode(exop), 52, `${label}: provisioning ${exop.stderr}`);
}

test('all is well while the store is in place', async () => {
  const h = await health();
  assert.equal(h.status, 200);
  assert.equal(h.body.status, 'ok');
  const mail = await swaks(a.ports.smtp, { to: USER, subject: 'store in place' });
  assert.match(mail.replyTo('.') ?? mail.out, /^250 /);
  assert.deepEqual(storeErrors(), []);
});

test('a removed store: writes refused with temporary errors, /health 503, one error line', async () => {
  fs.rmSync(store());
  await writesRefused('removed');
  assert.equal((await health()).body.status, 'store removed');
  assert.equal(storeErrors().length, 1, `one error line for the change, not one per refusal:\n${storeErrors().join('\n')}`);
  assert.match(storeErrors()[0], /removed/);
});

test('another file put in its place: still refused, and said once more', async () => {
  fs.writeFileSync(store(), 'not the store that is open');
  await writesRefused('replaced');
  assert.equal((await health()).body.status, 'store replaced');
  assert.equal(storeErrors().length, 2, storeErrors().join('\n'));
  assert.match(storeErrors()[1], /replaced/);
  assert.equal(a.child.exitCode, null, 'the appliance is still running');
});
