/**
 * No loss across kill -9 (RFC 5321 §6.1; ARCHITECTURE: "Mail accepted with a
 * 250 reply is on disk first. A crash never loses it; it is delivered after
 * restart"). The appliance runs as a child process on one data dir:
 *
 * 1. 500 messages, each with a unique Message-ID, go in over 4 parallel
 *    SMTP sessions; the appliance gets SIGKILL once ~200 were acknowledged
 *    (kill during intake). After a restart on the same data dir, every
 *    message that got its 250 is in the Maildir exactly once.
 * 2. 500 more, taken while the domain is on hold (so the queue holds them
 *    all); the domain is made active and the appliance gets SIGKILL once
 *    ~150 of them are in the Maildir (kill during delivery). After a
 *    restart, every acknowledged message of both rounds is in the Maildir
 *    exactly once.
 * Messages that were never acknowledged may or may not be there, but never twice.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startSpawned, stopChild, tempDir, type SpawnedAppliance } from '../helpers';
import { addUser, domainStatus, ls, USER as RCPT, waitFor } from './fixture';
import { MaildirLedger, sendLedger } from './ledger';

const TAG = 'durability.test';
const MESSAGES = 500;
const SESSIONS = 4;

/** Sends `ids` to RCPT over SESSIONS sessions (ledger.ts sendLedger). */
const sendAll = (port: number, ids: string[], acked: Set<string>, onAck: () => void) =>
  sendLedger({ port, ids, rcpt: RCPT, tag: TAG, sessions: SESSIONS }, acked, onAck);

// ------------------------------------------------------------------ the appliance and its disk

type Running = SpawnedAppliance;

const dataDir = tempDir('dcmx-durability-');
let current: Running | undefined;

after(async () => {
  if (current) await stopChild(current.child, 'SIGKILL');
  fs.rmSync(dataDir, { recursive: true, force: true });
});

async function start(): Promise<Running> {
  current = await startSpawned(dataDir);
  return current;
}

async function kill9(r: Running): Promise<void> {
  await stopChild(r.child, 'SIGKILL');
}

function stop(r: Running): Promise<number | null> {
  return stopChild(r.child);
}

const ledger = new MaildirLedger(dataDir, RCPT, TAG);
const mailbox = ledger.mailbox;
const maildirCount = () => ledger.count();
const spoolFiles = () => ledger.spoolFiles();
const waitDrained = (acked: Set<string>, r: Running) => ledger.waitDrained(acked, r);
const assertExactlyOnce = (acked: Set<string>, label: string) => ledger.assertExactlyOnce(acked, label);

// ------------------------------------------------------------------ the test

test('kill -9 during intake and during delivery loses no acknowledged message and duplicates none', { timeout: 240_000 }, async (t) => {
  let app = await start();
  await addUser(app.ports.ldap);

  const acked = new Set<string>();

  // ---- round 1: kill during intake, after ~200 acknowledgements
  const round1 = Array.from({ length: MESSAGES }, (_, i) => `r1-${String(i).padStart(3, '0')}`);
  let killed1: Promise<void> | undefined;
  const victim1 = app;
  const sent1 = await sendAll(app.ports.smtp, round1, acked, () => {
    if (!killed1 && acked.size >= 200) killed1 = kill9(victim1);
  });
  assert.ok(killed1, `the appliance was not killed: only ${acked.size} acknowledged, failures: ${sent1.failures.join(' | ')}`);
  await killed1;
  const acked1 = acked.size;
  const spoolAtKill1 = spoolFiles().length;
  assert.ok(acked1 < MESSAGES, 'the kill landed during intake');
  t.diagnostic(`round 1: ${acked1}/${MESSAGES} acknowledged before SIGKILL; ${maildirCount()} in the Maildir, ${spoolAtKill1} spool files at the kill`);

  app = await start();
  await waitDrained(acked, app);
  const r1 = assertExactlyOnce(acked, 'after kill during intake');
  t.diagnostic(`round 1 after restart: ${r1.present} distinct messages in the Maildir, ${r1.unackedPresent} of them never acknowledged`);
  assert.deepEqual(spoolFiles(), [], 'no spool file left after the queue drained');

  // ---- round 2: kill during delivery, once ~150 of this round are in the Maildir. The round is
  // taken while the domain is on hold, so the queue holds all of it when delivery begins (a
  // backlog made, not raced for), then the domain is made active again.
  const round2 = Array.from({ length: MESSAGES }, (_, i) => `r2-${String(i).padStart(3, '0')}`);
  const base = maildirCount();
  const victim2 = app;
  await domainStatus(app.ports.ldap, 'hold');
  const sent2 = await sendAll(app.ports.smtp, round2, acked, () => undefined);
  assert.equal(maildirCount(), base, 'nothing of round 2 is delivered while the domain is on hold');
  let killed2: Promise<void> | undefined;
  let spoolAtKill2 = -1;
  let ackedAtKill2 = -1;
  let deliveredAtKill2 = -1;
  const watcher = setInterval(() => {
    if (killed2) return;
    if (maildirCount() - base >= 150) {
      ackedAtKill2 = acked.size - acked1;
      deliveredAtKill2 = maildirCount() - base;
      killed2 = kill9(victim2).then(() => {
        spoolAtKill2 = spoolFiles().length;
      });
    }
  }, 5);
  await domainStatus(app.ports.ldap, 'active');
  await waitFor('delivery to reach 150 messages of round 2', () => killed2, 60_000, 10).catch(() => undefined);
  clearInterval(watcher);
  assert.ok(killed2, `delivery never reached 150 messages of round 2 (${maildirCount() - base}); failures: ${sent2.failures.join(' | ')}`);
  await killed2;
  const delivered2 = maildirCount() - base;
  t.diagnostic(`round 2: killed with ${ackedAtKill2} acknowledged, ${delivered2} delivered, ${spoolAtKill2} spool files (queued work) at the kill; ` +
    `${acked.size - acked1} acknowledged in all`);
  // Small messages live in their queue rows (no spool file): queued work is what was acknowledged but not yet delivered.
  assert.ok(ackedAtKill2 > deliveredAtKill2, `the kill landed while the queue still held messages (kill during delivery): ${ackedAtKill2} acknowledged, ${deliveredAtKill2} delivered`);

  app = await start();
  await waitDrained(acked, app);
  const r2 = assertExactlyOnce(acked, 'after kill during delivery');
  t.diagnostic(`round 2 after restart: ${r2.present} distinct messages in the Maildir, ${r2.unackedPresent} never acknowledged`);
  assert.deepEqual(spoolFiles(), [], 'no spool file left after the queue drained');
  const tmpLeft = ls(path.join(mailbox, 'tmp')).length;
  if (tmpLeft) t.diagnostic(`${tmpLeft} file(s) left in the Maildir's tmp/ by the killed deliveries (readers ignore tmp/)`);

  // A clean stop still works on the recovered data dir.
  assert.equal(await stop(app), 0, `clean shutdown after recovery:\n${app.output()}`);
  current = undefined;
});
