/**
 * Queue lifetime end to end: a relay next hop on loopback that answers 451
 * to every RCPT, DCMX_QUEUE_LIFETIME=1 s; the retry after the lifetime
 * gives up and the DSN in the local sender's Maildir reports Action: failed
 * with Status: 4.4.7 "Delivery time expired" (RFC 3463 §3.5, RFC 3464 §2.3.4).
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import pino from 'pino';
import { adminArgs, run, startTestAppliance, tempDir, type TestAppliance } from '../helpers';
import { mailbox, startNextHop, swaks, USER, USER_LDIF, waitFor, type NextHop } from './fixture';

let t: TestAppliance;
let hop: NextHop;
/** The appliance's log lines at info level, parsed. */
const lines: Record<string, unknown>[] = [];

before(async () => {
  hop = await startNextHop();
  hop.rcpt = () => ({ code: 451, text: '4.7.1 Try again later' });
  const log = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) });
  t = await startTestAppliance({ DCMX_SMTP_RELAY_PORT: String(hop.port), DCMX_QUEUE_LIFETIME: '1', DCMX_QUEUE_RETRY_BASE: '1' }, tempDir(), log);
  const ldif = `${USER_LDIF}
dn: dc=relayed,dc=org,${t.config.suffix}
objectClass: domain
objectClass: mailDomain
dc: relayed
mailRoutingSmartHost: 127.0.0.1
`;
  const r = await run('ldapadd', adminArgs(t), ldif);
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  await t?.close();
  await hop?.close();
});

test('a message still deferred after DCMX_QUEUE_LIFETIME bounces with Action: failed, Status: 4.4.7', { timeout: 60_000 }, async () => {
  const sw = await swaks(t.app.ports.smtp, { to: 'x@relayed.org', from: USER, subject: 'will-expire', body: 'never delivered' });
  assert.equal(sw.code, 0, sw.out);
  const dsn = await waitFor('the expiry DSN in the sender\'s Maildir', () => mailbox(t.dataDir, USER).find((m) => /report-type="?delivery-status/i.test(m)), 20_000);
  assert.ok((hop.rcptAttempts.get('x@relayed.org') ?? 0) >= 2, 'retried before giving up');
  assert.match(dsn, /^Final-Recipient: rfc822; ?x@relayed\.org/mi);
  assert.match(dsn, /^Action: failed/mi);
  assert.match(dsn, /^Status: 4\.4\.7$/m);
  assert.match(dsn, /expired after 1 s/);
  assert.match(dsn, /Subject: will-expire/, 'the original headers are returned');
  // The DSN lands in the Maildir before its own queue row goes and its outcome is logged: wait for both.
  await waitFor('the queue to drain and the DSN\'s delivery to be logged', () =>
    t.app.mta.queue.counts().messages === 0 && lines.some((l) => l.to === USER && l.status === 'sent') ? true : undefined, 20_000);
  assert.equal(t.app.mta.queue.counts().messages, 0, 'nothing left queued');
});

test('the log has one line per recipient and attempt: deferred, then bounced, then the DSN sent', () => {
  const status = (to: string) => lines.filter((l) => l.to === to && typeof l.status === 'string');
  const x = status('x@relayed.org');
  assert.ok(x.length >= 2, JSON.stringify(x));
  assert.equal(x[0].status, 'deferred');
  assert.equal(x[0].dsn, '4.7.1');
  assert.match(String(x[0].reason), /451/);
  assert.equal(x[x.length - 1].status, 'bounced');
  assert.equal(x[x.length - 1].dsn, '4.4.7');
  const dsn = status(USER);
  assert.equal(dsn.length, 1, JSON.stringify(dsn));
  assert.equal(dsn[0].status, 'sent');
  assert.match(String(dsn[0].detail), /delivered as new\//);
  for (const l of [...x, ...dsn]) assert.equal(typeof l.delay, 'number');
});
