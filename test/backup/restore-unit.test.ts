/**
 * `dcmx restore` of a remote transfer unit's data dir (DCMX_ROLE=mta): its
 * queue store (queue.sqlite), spool files and saved directory-sync state
 * come back; the message it held at backup time is delivered from the
 * restored spool file (the path rebased on the new data dir) once its domain
 * is released. An appliance's backup restored with a unit's configuration,
 * and the other way round, is refused with nothing written.
 * Needs: swaks, ldap-utils.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runDcmx, startSpawned, stopChild, tempDirs, testEnv, type SpawnedAppliance } from '../helpers';
import { addUser, domainStatus, mailbox, swaks, USER, waitFor } from '../mta/fixture';
import { spawnUnit, unitEnv, type UnitOptions } from '../mta/unit';
import { StubDns } from '../mta/stub-dns';
import { freePort } from '../fixtures/slapd';
import { waitForAsync } from '../fixtures/wait';

const newDir = tempDirs('dcmx-restore-unit-');
const UNIT = '127.0.0.2';
let dns: StubDns;
let ports: { ldap: number; smtp: number };
let applianceDir: string;
let appliance: SpawnedAppliance;

before(async () => {
  dns = await StubDns.start();
  dns.a('mx.dcmx.test', '127.0.0.1');
  ports = { ldap: await freePort(), smtp: await freePort() };
  applianceDir = newDir();
  appliance = await startSpawned(applianceDir, { DCMX_LDAP_PORT: String(ports.ldap), DCMX_SMTP_PORT: String(ports.smtp), DCMX_UPSTREAM_DNS: dns.address });
  await addUser(ports.ldap);
});
after(async () => {
  if (appliance) await stopChild(appliance.child);
  await dns?.close();
});

const unitOptions = (dir: string): UnitOptions => ({
  dir, address: UNIT, hostname: 'unit1.dcmx.test', appliance: { dir: applianceDir, ldap: ports.ldap, smtp: ports.smtp },
  upstreamDns: dns.address, provisionAllow: 'new.test',
});

test('a remote transfer unit restored: its queued message is delivered from the restored spool file', async () => {
  const dir = newDir();
  let unit = await spawnUnit(unitOptions(dir));
  // Held at the unit (its domain on hold): queued there, with a spool file (over 256 KiB).
  await domainStatus(ports.ldap, 'hold');
  await waitForAsync('the unit holds example.org', async () => {
    const r = (await (await fetch(`http://${UNIT}:${unit.http}/routes`)).json()) as { routes: { domain: string; route: string }[] };
    return r.routes.some((x) => x.domain === 'example.org' && /hold/.test(x.route));
  });
  const body = path.join(newDir(), 'big-body.txt');
  fs.writeFileSync(body, `${'y'.repeat(76)}\n`.repeat(4000));
  const sent = await swaks(unit.smtp, { to: USER, subject: 'held at the unit', body, server: UNIT });
  assert.equal(sent.code, 0, sent.out);
  assert.equal(fs.readdirSync(path.join(dir, 'spool')).length, 1);
  const tree = path.join(newDir(), 'unit-backup');
  const b = await runDcmx(unitEnv(unitOptions(dir)), ['backup', tree]);
  assert.equal(b.code, 0, b.stderr);
  await stopChild(unit.child);
  fs.rmSync(dir, { recursive: true });

  // An appliance's backup is not a unit's, nor the other way round: refused, nothing written.
  const applianceTree = path.join(newDir(), 'appliance-backup');
  assert.equal((await runDcmx(testEnv(applianceDir), ['backup', applianceTree])).code, 0);
  let r = await runDcmx(unitEnv(unitOptions(dir)), ['restore', applianceTree]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /is an appliance's backup \(dcmx\.sqlite\), and this is a remote transfer unit's configuration/);
  assert.ok(!fs.existsSync(dir));
  const other = path.join(newDir(), 'data');
  r = await runDcmx(testEnv(other), ['restore', tree]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /holds no dcmx\.sqlite: a remote transfer unit's backup is restored with its configuration \(DCMX_ROLE=mta\)/);
  assert.ok(!fs.existsSync(other));

  r = await runDcmx(unitEnv(unitOptions(dir)), ['restore', tree]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^queue: 1 message, 1 recipient \(1 spool file now under /m);
  assert.doesNotMatch(r.stdout, /zone serials/, 'a unit holds no zone');
  assert.ok(fs.existsSync(path.join(dir, 'directory-sync.json')), 'the unit\'s saved directory state came back');
  const v = await runDcmx(unitEnv(unitOptions(dir)), ['verify']);
  assert.equal(v.code, 0, v.stdout + v.stderr);

  unit = await spawnUnit(unitOptions(dir));
  try {
    await domainStatus(ports.ldap, 'active');
    // The unit relays it to the appliance (mailboxes without mailHost are the appliance's).
    await waitFor('the held message delivered', () => mailbox(applianceDir, USER).some((m) => m.includes('held at the unit')), 20_000);
  } finally {
    await stopChild(unit.child);
  }
});
