/**
 * Intake limits that protect other clients and the store, against the
 * appliance in-process on loopback: RCPT commands per transaction (RFC 5321
 * §4.5.3.1.8), postmaster at our address literal (§4.5.1), line length
 * (RFC 5322 §2.1.1).
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { startTestAppliance, type TestAppliance } from '../helpers';
import { addUser, mailbox, RawSmtp, USER, waitFor } from './fixture';

let t: TestAppliance;
let port = 0;

before(async () => {
  t = await startTestAppliance({ DCMX_SMTP_MAX_RECIPIENTS: '100' });
  port = t.app.ports.smtp;
  await addUser(t.app.ports.ldap);
});
after(async () => t.close());

/** A session through MAIL FROM. */
async function transaction(): Promise<RawSmtp> {
  const { client, greeting } = await RawSmtp.connect(port);
  assert.equal(greeting.code, 220, greeting.raw);
  assert.equal((await client.cmd('EHLO limits.test')).code, 250);
  assert.equal((await client.cmd('MAIL FROM:<sender@elsewhere.test>')).code, 250);
  return client;
}

test('every RCPT counts against the recipient limit, the same address repeated too: 452 4.5.3 past 100', async () => {
  const c = await transaction();
  try {
    for (let i = 1; i <= 100; i++) {
      const r = await c.cmd(`RCPT TO:<${USER}>`);
      assert.equal(r.code, 250, `RCPT ${i}: ${r.raw}`);
    }
    for (const rcpt of [USER, 'postmaster@example.org']) {
      const r = await c.cmd(`RCPT TO:<${rcpt}>`);
      assert.equal(r.code, 452, `RCPT 101 (${rcpt}): ${r.raw}`);
      assert.match(r.raw, /^452 4\.5\.3 /);
    }
    // A new transaction starts counting again.
    assert.equal((await c.cmd('RSET')).code, 250);
    assert.equal((await c.cmd('MAIL FROM:<sender@elsewhere.test>')).code, 250);
    assert.equal((await c.cmd(`RCPT TO:<${USER}>`)).code, 250);
  } finally {
    await c.quit();
  }
});

test('postmaster at our address literal is accepted and reaches the postmaster; at another address it is not', async () => {
  const c = await transaction();
  try {
    for (const rcpt of ['postmaster@[127.0.0.1]', 'Postmaster@[IPv6:::1]']) {
      const r = await c.cmd(`RCPT TO:<${rcpt}>`);
      assert.equal(r.code, 250, `${rcpt}: ${r.raw}`);
    }
    assert.equal((await c.cmd('DATA')).code, 354);
    const r = await c.cmd('Subject: to the postmaster literal\r\n\r\nhello postmaster\r\n.');
    assert.equal(r.code, 250, r.raw);
    await waitFor('the postmaster message in the Maildir', () => mailbox(t.dataDir, 'postmaster@mx.dcmx.test').some((m) => m.includes('to the postmaster literal')));
    assert.equal((await c.cmd('MAIL FROM:<sender@elsewhere.test>')).code, 250);
    for (const rcpt of ['postmaster@[192.0.2.77]', 'someone@[127.0.0.1]']) {
      const other = await c.cmd(`RCPT TO:<${rcpt}>`);
      assert.equal(other.code, 550, `${rcpt}: ${other.raw}`);
    }
  } finally {
    await c.quit();
  }
});

test('a 5 MiB line without a line break is folded at 998 octets (CRLF SPACE), not stored as one line', { timeout: 60_000 }, async () => {
  const line = '0123456789abcdef'.repeat(5 * 65536); // 5 MiB
  const c = await transaction();
  try {
    assert.equal((await c.cmd(`RCPT TO:<${USER}>`)).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    const r = await c.cmd(`Subject: one long line\r\n\r\n${line}\r\n.`, 30_000);
    assert.equal(r.code, 250, r.raw);
  } finally {
    await c.quit();
  }
  const stored = await waitFor('the message in the Maildir', () => mailbox(t.dataDir, USER).find((m) => m.includes('Subject: one long line')), 30_000);
  const longest = Math.max(...stored.split('\n').map((l) => Buffer.byteLength(l)));
  assert.ok(longest <= 998, `a stored line of ${longest} octets`);
  const body = stored.slice(stored.indexOf('\n\n') + 2);
  assert.equal(body.replace(/\n /g, '').replace(/\n$/, ''), line, 'unfolding gives the line back');
});
