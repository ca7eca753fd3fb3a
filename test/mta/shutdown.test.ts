/**
 * Shutting down while a delivery is under way: the appliance's close waits
 * for the attempt to end and record its outcome before the store closes, so
 * the message is neither lost nor sent twice after the restart. And a
 * session that had only just begun when the close began is let run to its
 * end (a reload's old process finishes its sessions), not answered 421.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { adminArgs, run, startTestAppliance, tempDirs } from '../helpers';
import { RawSmtp, USER, addUser, mailbox, startNextHop, swaks, waitFor } from './fixture';

const tempDir = tempDirs('dcmx-shutdown-');

test('close during a relay attempt: the attempt ends and is recorded first; the restarted appliance sends nothing again', async () => {
  let release: () => void = () => undefined;
  let inData = false;
  const hop = await startNextHop({
    // The next hop takes the message but holds its reply until the appliance is closing.
    onData(stream, _session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        inData = true;
        release = () => {
          hop.received.push({ mailFrom: '', mailArgs: {}, rcptTo: [], body: Buffer.concat(chunks).toString('utf8') });
          cb(null);
        };
      });
    },
  });
  const dir = tempDir();
  const env = { DCMX_SMTP_RELAY_PORT: String(hop.port) };
  try {
    const t = await startTestAppliance(env, dir);
    let closing: Promise<void> | undefined;
    try {
      const ldif = 'dn: dc=org,o=internet\nobjectClass: domain\ndc: org\n\n'
        + 'dn: dc=relayed,dc=org,o=internet\nobjectClass: domain\nobjectClass: mailDomain\ndc: relayed\nmailRoutingSmartHost: 127.0.0.1\n';
      const added = await run('ldapadd', adminArgs(t), ldif);
      assert.equal(added.code, 0, added.stderr);
      const sent = await swaks(t.app.ports.smtp, { to: 'x@relayed.org', from: 'sender@client.test', subject: 'in flight at shutdown' });
      assert.match(sent.replyTo('.') ?? sent.out, /^250 /);
      await waitFor('the message to reach the next hop', () => inData);
      closing = t.app.close();
      release();
      await closing;
    } finally {
      if (!closing) await t.app.close();
    }
    assert.equal(hop.received.length, 1);
    // Restarted on the same data dir: the attempt was recorded as delivered, so nothing is due.
    const again = await startTestAppliance(env, dir);
    try {
      await again.app.mta.delivery.whenIdle();
      assert.equal(again.app.mta.queue.counts().messages, 0, 'the queue is empty');
      assert.equal(hop.received.length, 1, 'not sent a second time');
    } finally {
      await again.close();
    }
  } finally {
    await hop.close();
  }
});

test('a session greeted before the close began runs a whole transaction after it, then QUIT; new connections are refused', async () => {
  const t = await startTestAppliance({}, tempDir());
  let closing: Promise<void> | undefined;
  try {
    await addUser(t.app.ports.ldap);
    const { client, greeting } = await RawSmtp.connect(t.app.ports.smtp);
    assert.equal(greeting.code, 220);
    closing = t.app.close();
    // smtp-server's own close would answer this EHLO 421.
    await client.expect('EHLO late.test', 250);
    await client.expect('MAIL FROM:<sender@elsewhere.test>', 250);
    await client.expect(`RCPT TO:<${USER}>`, 250);
    await client.expect('DATA', 354);
    const r = await client.cmd('Subject: begun before the close\r\n\r\nbody\r\n.');
    assert.equal(r.code, 250, r.raw);
    await client.expect('QUIT', 221);
    const late = await RawSmtp.connect(t.app.ports.smtp, 2000).then(() => 'accepted', (e: Error) => e.message);
    assert.notEqual(late, 'accepted', 'no new session once the close began');
    await closing;
  } finally {
    if (!closing) await t.app.close();
  }
  // Accepted with 250: queued durably, delivered by the next start.
  const again = await startTestAppliance({}, t.dataDir);
  try {
    await waitFor('delivered after the restart', () => mailbox(t.dataDir, USER).some((m) => m.includes('Subject: begun before the close')), 20_000);
  } finally {
    await again.close();
  }
});
