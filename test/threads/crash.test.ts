/**
 * kill -9 under SMTP load with two serving threads (DCMX_THREADS=2): many
 * clients, a new connection for each message (so the kernel spreads them
 * over both threads), the appliance process (node dist/server/main.js)
 * killed once both threads have queued mail. The domain is on hold
 * meanwhile, so everything acknowledged is in the queue (nothing delivered
 * yet) at the kill. After a restart on the same data dir and the end of
 * the hold, every message that got its 250 is delivered, exactly once; a
 * message never acknowledged may be there too, but never twice.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { startSpawned, stopChild, tempDir, type SpawnedAppliance } from '../helpers';
import { addUser, domainStatus, RawSmtp, USER as RCPT } from '../mta/fixture';
import { ledgerMessage, MaildirLedger } from '../mta/ledger';
import type { ApplianceStats } from '../../server/appliance';

const TAG = 'crash.threads.test';
const MESSAGES = 600;
const CLIENTS = 24;
/** Acknowledged messages after which the appliance is killed. */
const KILL_AFTER = 150;
const EXTRA = { DCMX_THREADS: '2' };

const dataDir = tempDir('dcmx-threads-crash-');
let current: SpawnedAppliance | undefined;
after(async () => {
  if (current) await stopChild(current.child, 'SIGKILL');
  fs.rmSync(dataDir, { recursive: true, force: true });
});

/** One message in its own session; true once it got its 250. */
async function sendOne(port: number, id: string): Promise<boolean> {
  const { client, greeting } = await RawSmtp.connect(port, 15_000);
  try {
    if (greeting.code !== 220) return false;
    await client.expect('EHLO crash.test', 250, 15_000);
    await client.expect('MAIL FROM:<sender@elsewhere.test>', 250, 15_000);
    await client.expect(`RCPT TO:<${RCPT}>`, 250, 15_000);
    await client.expect('DATA', 354, 15_000);
    return (await client.cmd(`${ledgerMessage(id, RCPT, TAG)}.`, 15_000)).code === 250;
  } finally {
    client.destroy();
  }
}

test('kill -9 of the process under SMTP load on both threads loses no acknowledged message and delivers none twice', { timeout: 240_000 }, async (t) => {
  let app = current = await startSpawned(dataDir, EXTRA);
  await addUser(app.ports.ldap);
  await domainStatus(app.ports.ldap, 'hold');
  const ledger = new MaildirLedger(dataDir, RCPT, TAG);
  const acked = new Set<string>();
  const ids = Array.from({ length: MESSAGES }, (_, i) => `m${String(i).padStart(3, '0')}`);
  let next = 0;
  let killed: Promise<ApplianceStats> | undefined;
  const victim = app;
  const kill = async (): Promise<ApplianceStats> => {
    const stats = (await (await fetch(`http://127.0.0.1:${victim.ports.http}/stats`)).json()) as ApplianceStats;
    await stopChild(victim.child, 'SIGKILL');
    return stats;
  };
  const failures: string[] = [];
  const client = async () => {
    while (next < ids.length) {
      const id = ids[next++];
      try {
        if (!(await sendOne(victim.ports.smtp, id))) break;
      } catch (e) {
        failures.push((e as Error).message);
        break;
      }
      acked.add(id);
      if (!killed && acked.size >= KILL_AFTER) killed = kill();
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, client));
  assert.ok(killed, `the appliance was not killed: ${acked.size} acknowledged; failures: ${failures.slice(0, 3).join(' | ')}`);
  const before = await killed;
  t.diagnostic(`${acked.size}/${MESSAGES} acknowledged before SIGKILL, ${before.queue.messages} queued at the last GET /stats; ${ledger.spoolFiles().length} spool files at the kill`);
  assert.ok(acked.size < MESSAGES, 'the kill landed under load');
  assert.equal(ledger.count(), 0, 'nothing delivered while the domain is on hold');
  for (const th of before.threads) assert.ok(th.intake.messages > 0, `thread ${th.thread} had queued mail before the kill: ${JSON.stringify(th.intake)}`);
  assert.equal(before.threads.length, 2);

  app = current = await startSpawned(dataDir, EXTRA);
  await domainStatus(app.ports.ldap, 'active');
  await ledger.waitDrained(acked, app);
  const r = ledger.assertExactlyOnce(acked, 'after kill -9 under load');
  t.diagnostic(`after restart: ${r.present} distinct messages delivered, ${r.unackedPresent} of them never acknowledged`);
  assert.equal(await stopChild(app.child), 0, `clean shutdown after recovery:\n${app.output()}`);
  current = undefined;
});
