/**
 * SIGTERM with two serving threads (DCMX_THREADS=2): every thread closes
 * its listeners (new connections are refused), SMTP sessions in the middle
 * of a message finish it and get their 250, LDAP clients get a Notice of
 * Disconnection (unavailable), the process exits 0, and the mail it
 * queued stays queued: after a restart it is there, and delivered once.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { startSpawned, stopChild, tempDir, type SpawnedAppliance } from '../helpers';
import { addUser, domainStatus, RawSmtp, USER as RCPT } from '../mta/fixture';
import { ledgerMessage, MaildirLedger } from '../mta/ledger';
import { connect, Responses } from '../fixtures/ldap';
import { searchPdu } from '../fixtures/ber';
import { waitForAsync } from '../fixtures/wait';

const TAG = 'drain.threads.test';
const SESSIONS = 8;
const EXTRA = { DCMX_THREADS: '2' };

const dataDir = tempDir('dcmx-threads-drain-');
let current: SpawnedAppliance | undefined;
after(async () => {
  if (current) await stopChild(current.child, 'SIGKILL');
  fs.rmSync(dataDir, { recursive: true, force: true });
});

/** Whether a new TCP connection to `port` is refused. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

test('SIGTERM drains both threads: no new connections, messages under way finish with 250, LDAP clients told, queued mail kept', { timeout: 120_000 }, async () => {
  let app = current = await startSpawned(dataDir, EXTRA);
  await addUser(app.ports.ldap);
  await domainStatus(app.ports.ldap, 'hold');
  // SMTP sessions in the middle of DATA, and idle LDAP connections, spread over both threads.
  const ids = Array.from({ length: SESSIONS }, (_, i) => `s${i}`);
  const sessions = await Promise.all(ids.map(async (id) => {
    const { client, greeting } = await RawSmtp.connect(app.ports.smtp);
    assert.equal(greeting.code, 220);
    await client.expect('EHLO drain.test', 250);
    await client.expect('MAIL FROM:<sender@elsewhere.test>', 250);
    await client.expect(`RCPT TO:<${RCPT}>`, 250);
    await client.expect('DATA', 354);
    const text = ledgerMessage(id, RCPT, TAG);
    const cut = text.length >> 1;
    client.sock.write(text.slice(0, cut));
    return { client, rest: text.slice(cut) };
  }));
  const ldap = await Promise.all(Array.from({ length: SESSIONS }, async () => {
    const r = new Responses(await connect(app.ports.ldap));
    // Answered: the connection was accepted by a thread (not still in the kernel's queue when its listener closes).
    r.sock.write(searchPdu(1, '', 0));
    assert.equal((await r.result(1)).code, 0);
    return r;
  }));
  const exited = new Promise<number | null>((resolve) => app.child.once('exit', (code) => resolve(code)));

  app.child.kill('SIGTERM');
  for (const port of [app.ports.smtp, app.ports.ldap]) await waitForAsync(`port ${port} to refuse new connections`, () => refused(port));
  const replies = await Promise.all(sessions.map(async ({ client, rest }) => (await client.cmd(`${rest}.`, 15_000)).code));
  assert.deepEqual(replies, ids.map(() => 250), 'every message under way was taken');
  for (const r of ldap) {
    // RFC 4511 §4.4.1: a Notice of Disconnection (an unsolicited extended response, message id 0), unavailable (52).
    await r.until(() => r.all.some((m) => m.id === 0 && m.tag === 0x78 && m.code === 52), 'the Notice of Disconnection', 20_000);
  }
  for (const { client } of sessions) client.destroy();
  assert.equal(await exited, 0, `clean exit:\n${app.output()}`);

  app = current = await startSpawned(dataDir, EXTRA);
  const stats = (await (await fetch(`http://127.0.0.1:${app.ports.http}/stats`)).json()) as { queue: { messages: number } };
  assert.equal(stats.queue.messages, SESSIONS, 'the messages taken during the shutdown stayed queued');
  await domainStatus(app.ports.ldap, 'active');
  const ledger = new MaildirLedger(dataDir, RCPT, TAG);
  const acked = new Set(ids);
  await ledger.waitDrained(acked, app);
  ledger.assertExactlyOnce(acked, 'after SIGTERM and restart');
  assert.equal(await stopChild(app.child), 0);
  current = undefined;
});
