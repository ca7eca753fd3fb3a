/**
 * The hand-over between two appliances on one data dir (server/succession.ts),
 * the part of a reload that does not depend on pm2 (test/pm2.test.ts reloads
 * under pm2): the successor shares the running appliance's ports, serves at
 * once, delivers nothing while that one runs, and takes over delivery
 * (mail the first accepted included) once it has ended, however it ends.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import { claimDataDir } from '../server/succession';
import { ConfigError } from '../server/config';
import { silentLogger } from '../server/log';
import { startSpawned, startTestAppliance, stopChild, tempDirs, type SpawnedAppliance, type TestAppliance } from './helpers';
import { freeDualPort } from './dns/knot';
import { USER, addUser, allMail, domainStatus, swaks, waitFor } from './mta/fixture';

const tempDir = tempDirs('dcmx-succession-');
let first: SpawnedAppliance | undefined;
let second: TestAppliance | undefined;
after(async () => {
  if (first) await stopChild(first.child, 'SIGKILL');
  await second?.close();
});

/** Fixed ports (a successor binds its predecessor's), one appliance thread each. */
async function fixedPorts(): Promise<Record<string, string>> {
  return {
    DCMX_LDAP_PORT: String(await freeDualPort()), DCMX_DNS_PORT: String(await freeDualPort()),
    DCMX_SMTP_PORT: String(await freeDualPort()), DCMX_HTTP_PORT: String(await freeDualPort()),
    DCMX_HTTPS_PORT: String(await freeDualPort()), DCMX_THREADS: '1',
  };
}

/**
 * GET /health over the admin HTTPS port, trusting the certificate both appliances serve
 * (the one generated in their shared data dir; its name is the host name, not 127.0.0.1).
 */
function healthOverTls(port: number, dataDir: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ca = fs.readFileSync(path.join(dataDir, 'tls', 'smtp-cert.pem'));
    const req = https.get({ host: '127.0.0.1', port, path: '/health', ca, checkServerIdentity: () => undefined, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
  });
}

const subjects = (dataDir: string) => allMail(dataDir).map((m) => /^Subject: (.*)$/m.exec(m.text)?.[1] ?? '?').sort();

test('a successor shares the running appliance\'s ports, delivers nothing before it ends, then delivers what both accepted', { timeout: 120_000 }, async () => {
  const dataDir = tempDir();
  const ports = await fixedPorts();
  first = await startSpawned(dataDir, ports);
  const smtp = first.ports.smtp;
  await addUser(first.ports.ldap);
  // The second, in this process: it finds the data dir held, binds the same ports beside the first.
  second = await startTestAppliance(ports, dataDir);
  const app = second.app;
  assert.equal(app.ownership.first, false, 'a successor');
  assert.equal(app.ownership.owns(), false);
  assert.equal(app.ports.smtp, smtp);
  // The admin HTTPS listener too: shared, both answer (each connection reaches one of them).
  assert.equal(app.ports.https, first.ports.https);
  for (let i = 0; i < 8; i++) assert.equal(await healthOverTls(app.ports.https!, dataDir), 200);

  // Both take mail (the kernel spreads the connections); only the first delivers it.
  const sent: string[] = [];
  for (let i = 0; i < 24; i++) {
    const r = await swaks(smtp, { to: USER, subject: `both-${i}` });
    assert.match(r.replyTo('.') ?? r.out, /^250 /);
    sent.push(`both-${i}`);
  }
  assert.ok(app.mta.intake.stats.messages > 0, 'the successor took some of the sessions');
  assert.ok(app.mta.intake.stats.messages < 24, 'the first took some of the sessions');
  await waitFor('all delivered', () => subjects(dataDir).length >= sent.length, 30_000);
  assert.deepEqual(subjects(dataDir), [...sent].sort(), 'delivered once each');
  assert.equal(app.mta.delivery.stats.attempts, 0, 'the successor delivered nothing while the first ran');

  // Mail for a held domain stays queued; the first then ends, with it still queued. The LDAP
  // connection may reach either process: the other follows the write within 100 ms (its watch of
  // other writers), so the messages are spread over a few seconds; those the first took before it
  // saw the hold it delivers at once.
  await domainStatus(first.ports.ldap, 'hold');
  await waitFor('the successor sees the hold', () => app.mta.routing.lookup('example.org')?.kind === 'hold', 10_000);
  const takenBefore = app.mta.intake.stats.messages;
  for (let i = 0; i < 12; i++) {
    const r = await swaks(smtp, { to: USER, subject: `held-${i}` });
    assert.match(r.replyTo('.') ?? r.out, /^250 /);
    sent.push(`held-${i}`);
    await new Promise((res) => setTimeout(res, 200));
  }
  const takenHere = app.mta.intake.stats.messages - takenBefore;
  assert.equal(await stopChild(first.child, 'SIGINT'), 0);
  first = undefined;
  await app.ownership.owned;
  assert.equal(app.ownership.owns(), true, 'the successor owns the data dir once the first has ended');
  assert.equal(await healthOverTls(app.ports.https!, dataDir), 200, 'the successor alone serves the HTTPS port');
  const left = app.mta.queue.counts();
  // More held than the successor took: the first's held mail is left to it.
  assert.ok(left.held > takenHere, `mail held when the first ended: ${JSON.stringify(left)}, ${takenHere} of it taken by the successor`);

  // Released, the held mail (the first's among it) is delivered by the successor, once.
  await domainStatus(app.ports.ldap, 'active');
  await waitFor('held mail delivered by the successor', () => app.mta.delivery.stats.delivered >= left.held, 30_000);
  assert.deepEqual(subjects(dataDir), [...sent].sort());
  await second.close();
  second = undefined;
});

test('the data dir passes to a successor when its owner is killed; a successor whose owner does not end gives up', { timeout: 60_000 }, async () => {
  const dataDir = tempDir();
  first = await startSpawned(dataDir, await fixedPorts());
  const impatient = claimDataDir(dataDir, silentLogger(), { timeoutMs: 300 });
  assert.equal(impatient.first, false);
  await assert.rejects(impatient.owned, (e: Error) => e instanceof ConfigError && /^DCMX_DATA_DIR: another dcmx appliance still runs on .* after 0 s/.test(e.message));
  impatient.release();
  const patient = claimDataDir(dataDir, silentLogger());
  assert.equal(patient.owns(), false);
  // SIGKILL: no shutdown code runs; the kernel lets the lock go with the process.
  await stopChild(first.child, 'SIGKILL');
  first = undefined;
  await patient.owned;
  assert.equal(patient.owns(), true);
  // Held now: a third finds it held.
  const third = claimDataDir(dataDir, silentLogger(), { timeoutMs: 100 });
  assert.equal(third.first, false);
  await assert.rejects(third.owned, ConfigError);
  third.release();
  patient.release();
  const fourth = claimDataDir(dataDir, silentLogger());
  assert.equal(fourth.first, true, 'released: the next one owns it at once');
  fourth.release();
});
