/**
 * Intake limits that protect other clients and the store, against the
 * appliance in-process on loopback: RCPT commands per transaction (RFC 5321
 * §4.5.3.1.8), postmaster at our address literal (§4.5.1), line length
 * (RFC 5322 §2.1.1), hops (RFC 5321 §6.3), connections per client and idle connections when busy
 * (127.x.y.z source addresses stand for distinct clients).
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { startTestAppliance, type TestAppliance } from '../helpers';
import { addUser, mailbox, RawSmtp, USER, waitFor, type SmtpReply } from './fixture';
import { waitForAsync } from '../fixtures/wait';

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

test('RFC 5321 §6.3: a message with 50 Received: fields is refused at its final dot with 554 5.4.6; 49, and Received: in the body, pass', async () => {
  const received = (n: number) => Array.from({ length: n }, (_, i) => `Received: from hop${i}.test by hop${i + 1}.test; Mon, 7 Dec 2026 01:00:00 +0000\r\n`).join('');
  const send = async (message: string) => {
    const c = await transaction();
    try {
      assert.equal((await c.cmd(`RCPT TO:<${USER}>`)).code, 250);
      assert.equal((await c.cmd('DATA')).code, 354);
      return await c.cmd(`${message}\r\n.`);
    } finally {
      await c.quit();
    }
  };
  const looping = await send(`${received(50)}Subject: looping\r\n\r\nround and round\r\n`);
  assert.equal(looping.code, 554, looping.raw);
  assert.match(looping.raw, /^554 5\.4\.6 .*Too many hops/);
  const fine = await send(`${received(49)}Subject: far-travelled\r\n\r\n${received(10)}`);
  assert.equal(fine.code, 250, fine.raw);
  await waitFor('the far-travelled message in the Maildir', () => mailbox(t.dataDir, USER).some((m) => m.includes('Subject: far-travelled')));
  assert.ok(!mailbox(t.dataDir, USER).some((m) => m.includes('Subject: looping')), 'the looping message was not delivered');
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

describe('connection caps (DCMX_SMTP_MAX_CLIENTS 20, DCMX_SMTP_CLIENT_CONNECTIONS 5, DCMX_SMTP_BUSY_TIMEOUT 1 s)', () => {
  let capped: TestAppliance;
  /** SMTP sessions open in the whole process (GET /stats). */
  const openSessions = async (t: TestAppliance) => (await t.app.stats()).intake.sessions;
  const open: RawSmtp[] = [];
  before(async () => {
    capped = await startTestAppliance({ DCMX_SMTP_MAX_CLIENTS: '20', DCMX_SMTP_CLIENT_CONNECTIONS: '5', DCMX_SMTP_BUSY_TIMEOUT: '1' });
    await addUser(capped.app.ports.ldap);
  });
  after(async () => {
    for (const c of open) await c.quit();
    await capped.close();
  });

  /** A connection from `from` (127.x.y.z stands for a client of its own) and its greeting. */
  async function connect(from: string): Promise<{ client: RawSmtp; greeting: SmtpReply }> {
    const r = await RawSmtp.connect(capped.app.ports.smtp, 10_000, { localAddress: from });
    open.push(r.client);
    return r;
  }

  test('one client gets 5 connections, the 6th 421; another client is still served; a closed slot comes back', async () => {
    const mine: RawSmtp[] = [];
    for (let i = 0; i < 5; i++) {
      const { client, greeting } = await connect('127.0.0.2');
      assert.equal(greeting.code, 220, `connection ${i + 1}: ${greeting.raw}`);
      mine.push(client);
    }
    const sixth = await connect('127.0.0.2');
    assert.equal(sixth.greeting.code, 421, `the 6th connection of one client: ${sixth.greeting.raw}`);
    assert.match(sixth.greeting.raw, /too many connections from 127\.0\.0\.2/);
    await assert.rejects(sixth.client.reply(5000), /closed/, 'the refused connection is closed');
    // Another client is served, mail and all.
    const other = await connect('127.0.0.3');
    assert.equal(other.greeting.code, 220, other.greeting.raw);
    assert.equal((await other.client.cmd('EHLO other.test')).code, 250);
    assert.equal((await other.client.cmd('MAIL FROM:<sender@elsewhere.test>')).code, 250);
    assert.equal((await other.client.cmd(`RCPT TO:<${USER}>`)).code, 250);
    // A connection of the first client goes: once the server has seen the close, its slot is free again.
    const sessions = await openSessions(capped);
    await mine[0].quit();
    await waitForAsync('the closed session to be counted out', async () => (await openSessions(capped)) < sessions);
    const again = (await connect('127.0.0.2')).greeting;
    assert.equal(again.code, 220, again.raw);
    for (const c of open.splice(0)) await c.quit();
    await waitForAsync('every session closed', async () => (await openSessions(capped)) === 0);
  });

  test('past 3/4 of the slots, idle connections are closed after DCMX_SMTP_BUSY_TIMEOUT with 421', { timeout: 60_000 }, async () => {
    // 16 idle connections of 4 clients, 4 each (within their cap): 16 of 20 slots is busy.
    const idle: RawSmtp[] = [];
    for (const from of ['127.0.1.1', '127.0.1.2', '127.0.1.3', '127.0.1.4']) {
      for (let i = 0; i < 4; i++) {
        const { client, greeting } = await connect(from);
        assert.equal(greeting.code, 220, `${from} #${i + 1}: ${greeting.raw}`);
        idle.push(client);
      }
    }
    // DCMX_SMTP_TIMEOUT is 300 s: without the busy timeout none of these would hear from the server for minutes.
    const replies = await Promise.all(idle.map((c) => c.reply(20_000).catch((e: Error) => ({ code: 0, raw: e.message, lines: [] }))));
    for (const [i, r] of replies.entries()) {
      assert.equal(r.code, 421, `idle connection ${i + 1}: ${r.raw}`);
      assert.match(r.raw, /Timeout/);
    }
    await waitForAsync('every session closed', async () => (await openSessions(capped)) === 0);
  });
});

