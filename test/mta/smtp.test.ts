/**
 * The transfer unit end to end with real clients: a mail domain written over
 * LDAP (ldapadd/ldapmodify/ldapdelete), mail sent with swaks, nodemailer and
 * a raw socket, delivered into Maildirs under the data dir or relayed to a
 * next-hop smtp-server on loopback. Covers local delivery and its headers,
 * STARTTLS + AUTH, directory changes seen on the very next RCPT, open-relay
 * refusals, the relay channel with retry and DSN, domain status, aliases and
 * catch-all, and the directory cache's read savings.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import nodemailer from 'nodemailer';
import { adminArgs, run, startTestAppliance, type TestAppliance } from '../helpers';
import { allMail, mailbox, RawSmtp, startNextHop, swaks, waitFor, within, type NextHop } from './fixture';
import { waitForAsync } from '../fixtures/wait';
import { describeRoute } from '../../server/directory/routing';

let t: TestAppliance;
let hop: NextHop;
let port = 0;
let S = '';

const ALICE_PW = 'alice-pw-1';

function user(uid: string, domain: string, mail: string, alternates: string[] = [], password = `${uid}-pw-1`): string {
  return [
    `dn: uid=${uid},ou=people,${domain}`,
    'objectClass: inetOrgPerson',
    'objectClass: inetMailUser',
    `uid: ${uid}`,
    `cn: ${uid}`,
    `sn: ${uid}`,
    `mail: ${mail}`,
    ...alternates.map((a) => `mailAlternateAddress: ${a}`),
    `userPassword: ${password}`,
    '',
  ].join('\n');
}

function base(): string {
  const ex = `dc=example,dc=org,${S}`;
  const pa = `dc=paused,dc=org,${S}`;
  return `dn: dc=org,${S}
objectClass: domain
dc: org

dn: ${ex}
objectClass: dNSDomain2
objectClass: mailDomain
dc: example
sOARecord: mx.dcmx.test. hostmaster.example.org. 1 3600 900 604800 60
nSRecord: mx.dcmx.test.
mXRecord: 10 mx.dcmx.test.

dn: ou=people,${ex}
objectClass: organizationalUnit
ou: people

${user('alice', ex, 'alice@example.org', ['alice.smith@example.org'], ALICE_PW)}
${user('bob', ex, 'bob@example.org')}
${user('carol', ex, 'carol@example.org', ['c.c@example.org'])}
dn: dc=relayed,dc=org,${S}
objectClass: domain
objectClass: mailDomain
dc: relayed
mailRoutingSmartHost: 127.0.0.1

dn: ${pa}
objectClass: dNSDomain2
objectClass: mailDomain
dc: paused
sOARecord: mx.dcmx.test. hostmaster.paused.org. 1 3600 900 604800 60
mXRecord: 10 mx.dcmx.test.

dn: ou=people,${pa}
objectClass: organizationalUnit
ou: people

${user('dave', pa, 'dave@paused.org')}`;
}

async function ldap(tool: 'ldapadd' | 'ldapmodify' | 'ldapdelete', input: string): Promise<void> {
  const r = tool === 'ldapdelete' ? await run(tool, [...adminArgs(t), input]) : await run(tool, adminArgs(t), input);
  assert.equal(r.code, 0, `${tool} failed: ${r.stderr}`);
}

const idle = () => within('delivery.whenIdle()', t.app.mta.delivery.whenIdle());

/** The RCPT reply swaks saw for `to` (quitting after RCPT). */
async function rcptReply(to: string, from = 'sender@client.test'): Promise<string> {
  const r = await swaks(port, { to, from, quitAfter: 'RCPT' });
  const reply = r.replyTo('RCPT TO');
  assert.ok(reply, `no RCPT reply in swaks output:\n${r.out}`);
  return reply;
}

/** Sends one message with swaks and asserts the 250 after DATA. */
async function send(to: string, marker: string, from = 'sender@client.test'): Promise<void> {
  const r = await swaks(port, { to, from, subject: marker, body: `body of ${marker}` });
  assert.equal(r.code, 0, `swaks to ${to} failed:\n${r.out}`);
  assert.match(r.replyTo('RCPT TO') ?? '', /^250/, r.out);
}

before(async () => {
  hop = await startNextHop();
  // Provisioning off: unknown domains are a relay question here, not an MX check (policy.ts has its own tests).
  t = await startTestAppliance({ DCMX_SMTP_RELAY_PORT: String(hop.port), DCMX_PROVISIONING: 'off' });
  port = t.app.ports.smtp;
  S = t.config.suffix;
  await ldap('ldapadd', base());
});

after(async () => {
  await t?.close();
  await hop?.close();
});

describe('SMTP intake and local delivery', { timeout: 60_000 }, () => {
  test('swaks to alice: 250, Maildir has Return-Path, Delivered-To, our Received:, the body; the alternate address lands there too', async () => {
    await send('alice@example.org', 'first-message', 'sender@client.test');
    await idle();
    const box = mailbox(t.dataDir, 'alice@example.org');
    const msg = box.find((m) => m.includes('Subject: first-message'));
    assert.ok(msg, `message not in alice's Maildir (${box.length} files)`);
    const lines = msg.split(/\r?\n/);
    assert.equal(lines[0], 'Return-Path: <sender@client.test>');
    assert.equal(lines[1], 'Delivered-To: alice@example.org');
    assert.match(msg, /^Received: from client\.test \(.*\[127\.0\.0\.1\]\)\r?\n\s+by mx\.dcmx\.test \(dcmx\) with ESMTP id [A-Z0-9]+/m);
    assert.match(msg, /for <alice@example\.org>;/);
    assert.match(msg, /\r?\n\r?\nbody of first-message/);

    await send('alice.smith@example.org', 'to-alternate');
    await idle();
    const alt = mailbox(t.dataDir, 'alice@example.org').find((m) => m.includes('Subject: to-alternate'));
    assert.ok(alt, 'mail to the mailAlternateAddress is in alice@example.org\'s Maildir');
    assert.match(alt, /^Delivered-To: alice\.smith@example\.org$/m);
    assert.deepEqual(mailbox(t.dataDir, 'alice.smith@example.org'), [], 'no separate Maildir for the alternate address');
  });

  test('nodemailer: STARTTLS + AUTH PLAIN as alice delivers to bob; AUTH before STARTTLS refused; wrong password 535', async () => {
    const transport = nodemailer.createTransport({
      host: '127.0.0.1', port, secure: false, requireTLS: true, name: 'client.test',
      tls: { rejectUnauthorized: false },
      auth: { user: 'alice@example.org', pass: ALICE_PW }, authMethod: 'PLAIN',
      connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 10_000,
    });
    try {
      const info = await transport.sendMail({ from: 'alice@example.org', to: 'bob@example.org', subject: 'nodemailer-tls', text: 'sent over TLS' });
      assert.deepEqual(info.accepted, ['bob@example.org']);
    } finally {
      transport.close();
    }
    await idle();
    const msg = mailbox(t.dataDir, 'bob@example.org').find((m) => m.includes('Subject: nodemailer-tls'));
    assert.ok(msg, 'delivered to bob');
    assert.match(msg, /^Return-Path: <alice@example\.org>/);
    assert.match(msg, /with ESMTPSA id/, 'RFC 3848: TLS and AUTH in the Received: protocol');
    assert.match(msg, /sent over TLS/);

    // AUTH in clear text: refused (RFC 4954 §4) and not advertised.
    const { client } = await RawSmtp.connect(port);
    try {
      const ehlo = await client.cmd('EHLO client.test');
      assert.equal(ehlo.code, 250);
      const auth = await client.cmd(`AUTH PLAIN ${Buffer.from(`\0alice@example.org\0${ALICE_PW}`).toString('base64')}`);
      assert.ok(auth.code >= 500 && auth.code < 600, `AUTH before STARTTLS: ${auth.raw}`);
    } finally {
      await client.quit();
    }

    const wrong = nodemailer.createTransport({
      host: '127.0.0.1', port, secure: false, requireTLS: true, name: 'client.test',
      tls: { rejectUnauthorized: false }, auth: { user: 'alice@example.org', pass: 'not-her-password' }, authMethod: 'PLAIN',
      connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 10_000,
    });
    try {
      await assert.rejects(
        wrong.sendMail({ from: 'alice@example.org', to: 'bob@example.org', subject: 'x', text: 'x' }),
        (err: Error & { responseCode?: number }) => {
          assert.equal(err.responseCode, 535, err.message);
          return true;
        },
      );
    } finally {
      wrong.close();
    }
  });

  test('a user added with ldapadd is accepted on the very next RCPT; deleted with ldapdelete, refused 550 5.1.1 on the next', async () => {
    // Cached as unknown first, so the change must invalidate a negative answer.
    assert.match(await rcptReply('erin@example.org'), /^550 5\.1\.1/);
    await ldap('ldapadd', user('erin', `dc=example,dc=org,${S}`, 'erin@example.org'));
    assert.match(await rcptReply('erin@example.org'), /^250/);
    await ldap('ldapdelete', `uid=erin,ou=people,dc=example,dc=org,${S}`);
    assert.match(await rcptReply('erin@example.org'), /^550 5\.1\.1/);
  });
});

describe('open relay refusals and EHLO', { timeout: 60_000 }, () => {
  test('EHLO advertises ENHANCEDSTATUSCODES, PIPELINING, 8BITMIME, SMTPUTF8, SIZE', async () => {
    const { client, greeting } = await RawSmtp.connect(port);
    try {
      assert.equal(greeting.code, 220);
      const ehlo = await client.cmd('EHLO client.test');
      assert.equal(ehlo.code, 250);
      const kw = ehlo.lines.map((l) => l.split(' ')[0].toUpperCase());
      for (const k of ['ENHANCEDSTATUSCODES', 'PIPELINING', '8BITMIME', 'SMTPUTF8', 'SIZE']) assert.ok(kw.includes(k), `${k} in ${JSON.stringify(ehlo.lines)}`);
    } finally {
      await client.quit();
    }
  });

  test('relaying refused for unauthenticated clients; relay tricks refused and never queued', async () => {
    assert.match(await rcptReply('someone@elsewhere.test'), /^550 5\.7\.1/);

    const before = { ...t.app.mta.queue.counts() };
    const messages = (await t.app.stats()).intake.messages;
    const { client } = await RawSmtp.connect(port);
    try {
      assert.equal((await client.cmd('EHLO client.test')).code, 250);
      assert.equal((await client.cmd('MAIL FROM:<sender@client.test>')).code, 250);
      for (const rcpt of ['user%elsewhere.test@example.org', 'elsewhere.test!user@example.org', '"user@elsewhere.test"@example.org', '@elsewhere.test:user@example.org']) {
        const r = await client.cmd(`RCPT TO:<${rcpt}>`);
        assert.ok(r.code >= 500 && r.code < 600, `RCPT TO:<${rcpt}> → ${r.raw}`);
      }
      // No recipient was taken, so there is nothing to send.
      const data = await client.cmd('DATA');
      assert.ok(data.code >= 500, `DATA without recipients → ${data.raw}`);
    } finally {
      await client.quit();
    }
    assert.equal((await t.app.stats()).intake.messages, messages, 'nothing queued');
    assert.deepEqual(t.app.mta.queue.counts(), before, 'queue unchanged');
  });

  test('unknown MAIL/RCPT parameter 555; <postmaster>, postmaster@ and abuse@ accepted without such users', async () => {
    const { client } = await RawSmtp.connect(port);
    try {
      assert.equal((await client.cmd('EHLO client.test')).code, 250);
      const bad = await client.cmd('MAIL FROM:<a@b> FOO=BAR');
      assert.equal(bad.code, 555, bad.raw);
      // The parameters of what EHLO advertised are taken (RFC 6152, RFC 6531); RCPT has none (DSN is not offered).
      const ok = await client.cmd('MAIL FROM:<a@b> BODY=8BITMIME SMTPUTF8');
      assert.equal(ok.code, 250, ok.raw);
      const badRcpt = await client.cmd('RCPT TO:<postmaster@example.org> FOO=BAR');
      assert.equal(badRcpt.code, 555, badRcpt.raw);
      for (const rcpt of ['postmaster', 'postmaster@example.org', 'abuse@example.org']) {
        const r = await client.cmd(`RCPT TO:<${rcpt}>`);
        assert.equal(r.code, 250, `RCPT TO:<${rcpt}> → ${r.raw}`);
      }
      assert.equal((await client.cmd('RSET')).code, 250);
    } finally {
      await client.quit();
    }
  });
});

describe('MAIL FROM parameters, SMTPUTF8 and counters', { timeout: 60_000 }, () => {
  test('RFC 4954 §5: after AUTH, MAIL FROM with AUTH=<> or AUTH=xtext mailbox is 250; a bare AUTH 501; unknown parameters still 555', async () => {
    const { client } = await RawSmtp.connect(port);
    try {
      assert.equal((await client.cmd('EHLO client.test')).code, 250);
      await client.starttls();
      assert.match((await client.cmd('EHLO client.test')).raw, /AUTH PLAIN/);
      const auth = await client.cmd(`AUTH PLAIN ${Buffer.from(`\0alice@example.org\0${ALICE_PW}`).toString('base64')}`);
      assert.equal(auth.code, 235, auth.raw);
      const empty = await client.cmd('MAIL FROM:<alice@example.org> AUTH=<>');
      assert.equal(empty.code, 250, empty.raw);
      assert.equal((await client.cmd('RSET')).code, 250);
      const mailbox = await client.cmd('MAIL FROM:<alice@example.org> AUTH=alice+2Bx@example.org');
      assert.equal(mailbox.code, 250, mailbox.raw);
      assert.equal((await client.cmd('RSET')).code, 250);
      const bare = await client.cmd('MAIL FROM:<alice@example.org> AUTH');
      assert.equal(bare.code, 501, bare.raw);
      const unknown = await client.cmd('MAIL FROM:<alice@example.org> AUTH=<> FOO=BAR');
      assert.equal(unknown.code, 555, unknown.raw);
      assert.match(unknown.lines[0], /^5\.5\.4 /, unknown.raw);
    } finally {
      await client.quit();
    }
  });

  test('RFC 6531 §3.4: a non-ASCII mailbox (local part or domain) without SMTPUTF8 is 553 5.6.7 at MAIL and at RCPT; with SMTPUTF8 or in A-labels it is taken', async () => {
    const { client } = await RawSmtp.connect(port);
    try {
      assert.equal((await client.cmd('EHLO client.test')).code, 250);
      const from = await client.cmd('MAIL FROM:<jöhn@client.test>');
      assert.equal(from.code, 553, from.raw);
      assert.match(from.lines[0], /^5\.6\.7 /, from.raw);
      // A-labels need no SMTPUTF8 (smtp-server shows the domain in U-labels: that must not count).
      const alabel = await client.cmd('MAIL FROM:<sender@xn--bcher-kva.example>');
      assert.equal(alabel.code, 250, alabel.raw);
      const rcpt = await client.cmd('RCPT TO:<jöhn@example.org>');
      assert.equal(rcpt.code, 553, rcpt.raw);
      assert.match(rcpt.lines[0], /^5\.6\.7 /, rcpt.raw);
      // A raw UTF-8 domain needs SMTPUTF8 too, even with an ASCII local part.
      const udomain = await client.cmd('RCPT TO:<john@bücher.example>');
      assert.equal(udomain.code, 553, udomain.raw);
      assert.match(udomain.lines[0], /^5\.6\.7 /, udomain.raw);
      assert.equal((await client.cmd('RSET')).code, 250);
      const utf8 = await client.cmd('MAIL FROM:<jöhn@client.test> SMTPUTF8');
      assert.equal(utf8.code, 250, utf8.raw);
      // Past the SMTPUTF8 check, an unknown user is what it is.
      const unknown = await client.cmd('RCPT TO:<jöhn@example.org>');
      assert.equal(unknown.code, 550, unknown.raw);
      assert.match(unknown.lines[0], /^5\.1\.1 /, unknown.raw);
      // Delivered, the message says how it came (RFC 6531 §3.7.3: UTF8SMTP in the Received: protocol).
      assert.equal((await client.cmd('RCPT TO:<alice@example.org>')).code, 250);
      assert.equal((await client.cmd('DATA')).code, 354);
      assert.equal((await client.cmd('Subject: utf8-received\r\n\r\nhej\r\n.')).code, 250);
      const msg = await waitFor('the SMTPUTF8 message in alice\'s Maildir', () => mailbox(t.dataDir, 'alice@example.org').find((m) => m.includes('Subject: utf8-received')));
      assert.match(msg, /^\s+by mx\.dcmx\.test \(dcmx\) with UTF8SMTP id /m);
    } finally {
      await client.quit();
    }
  });

  test('GET /stats counts recipients accepted and refused at RCPT', async () => {
    const stats = async () => {
      const r = await fetch(`http://127.0.0.1:${t.app.ports.http}/stats`);
      assert.equal(r.status, 200);
      return ((await r.json()) as { intake: { accepted: number; rejectedRcpt: number; messages: number } }).intake;
    };
    const before = await stats();
    await send('bob@example.org', 'counted');
    assert.match(await rcptReply('nobody-at-all@example.org'), /^550 5\.1\.1/);
    const after = await stats();
    assert.equal(after.accepted - before.accepted, 1, `accepted ${before.accepted} → ${after.accepted}`);
    assert.equal(after.rejectedRcpt - before.rejectedRcpt, 1, `rejectedRcpt ${before.rejectedRcpt} → ${after.rejectedRcpt}`);
    assert.equal(after.messages - before.messages, 1);
  });
});

describe('relay domain over SMTP to the smart host', { timeout: 60_000 }, () => {
  test('mail to x@relayed.org arrives at the next hop with its envelope and body', async () => {
    await send('x@relayed.org', 'relayed-1', 'alice@example.org');
    const got = await waitFor('the next hop to receive relayed-1', () => hop.received.find((m) => m.body.includes('Subject: relayed-1')));
    assert.equal(got.mailFrom, 'alice@example.org');
    assert.deepEqual(got.rcptTo, ['x@relayed.org']);
    assert.match(got.body, /by mx\.dcmx\.test \(dcmx\)/, 'our Received: header travels');
    assert.match(got.body, /body of relayed-1/);
    await idle();
    assert.equal(t.app.mta.queue.counts().messages, 0);
  });

  test('objectClass mailRoutingObject (iPlanet) with mailRoutingSmartHost, added by ldapmodify: the route is relay, mail goes to the smart host', async () => {
    const dn = `dc=smarthosted,dc=org,${S}`;
    await ldap('ldapadd', `dn: ${dn}\nobjectClass: dNSDomain2\nobjectClass: mailDomain\ndc: smarthosted\nmXRecord: 10 mx.dcmx.test.\n`);
    assert.equal(describeRoute(t.app.mta.routing.lookup('smarthosted.org')!), 'local');
    await ldap('ldapmodify', `dn: ${dn}\nchangetype: modify\nadd: objectClass\nobjectClass: mailRoutingObject\n-\nadd: mailRoutingSmartHost\nmailRoutingSmartHost: 127.0.0.1\n-\n`);
    const routes = await (await fetch(`http://127.0.0.1:${t.app.ports.http}/routes`)).text();
    assert.match(routes, /smarthosted\.org/);
    assert.equal(describeRoute(t.app.mta.routing.lookup('smarthosted.org')!), 'relay:127.0.0.1');
    await send('anyone@smarthosted.org', 'smarthosted-1', 'alice@example.org');
    const got = await waitFor('the smart host to receive smarthosted-1', () => hop.received.find((m) => m.body.includes('Subject: smarthosted-1')));
    assert.deepEqual(got.rcptTo, ['anyone@smarthosted.org']);
  });

  test('one message to a local and a relayed recipient: the local copy is in the Maildir at the 250, only the relayed one is queued', async () => {
    const local = t.app.mta.delivery.stats.channels.local.delivered;
    hop.rcpt = (a) => (a === 'later@relayed.org' ? { code: 451, text: 'Not now' } : undefined);
    const r = await swaks(port, { to: 'bob@example.org,later@relayed.org', subject: 'split-at-intake', body: 'one copy now, one later' });
    assert.equal(r.code, 0, r.out);
    const id = /^250 .*queued as ([A-Z0-9]+)/.exec(r.replyTo('.') ?? '')?.[1];
    assert.ok(id, `no queue id in the reply to the final dot:\n${r.out}`);
    // No waiting: the 250 came after bob's copy was in new/ (fsynced).
    assert.ok(mailbox(t.dataDir, 'bob@example.org').some((m) => m.includes('Subject: split-at-intake')), 'bob\'s copy is delivered before the 250');
    assert.equal(t.app.mta.delivery.stats.channels.local.delivered, local + 1, 'counted as a local delivery');
    assert.deepEqual(t.app.mta.queue.recipients(id).map((q) => q.rcpt), ['later@relayed.org'], 'only the relayed recipient is queued');
    hop.rcpt = () => undefined;
    const got = await waitFor('the relayed copy', () => hop.received.find((m) => m.body.includes('Subject: split-at-intake')), 15_000);
    assert.deepEqual(got.rcptTo, ['later@relayed.org']);
    await idle();
    assert.equal(t.app.mta.queue.counts().messages, 0);
    assert.equal(mailbox(t.dataDir, 'bob@example.org').filter((m) => m.includes('Subject: split-at-intake')).length, 1, 'bob got one copy');
  });

  test('451 on the first attempt, accepted on the second: delivered after a retry', async () => {
    const deferred = t.app.mta.delivery.stats.deferred;
    hop.rcpt = (a, n) => (a === 'retry@relayed.org' && n === 1 ? { code: 451, text: 'Try again later' } : undefined);
    const started = Date.now();
    await send('retry@relayed.org', 'relayed-retry', 'alice@example.org');
    const got = await waitFor('delivery after a retry', () => hop.received.find((m) => m.body.includes('Subject: relayed-retry')), 15_000);
    assert.deepEqual(got.rcptTo, ['retry@relayed.org']);
    assert.equal(hop.rcptAttempts.get('retry@relayed.org'), 2);
    assert.ok(t.app.mta.delivery.stats.deferred > deferred, 'the first attempt was deferred');
    assert.ok(Date.now() - started >= 900, 'retried after about DCMX_QUEUE_RETRY_BASE=1 s');
  });

  test('550 at the next hop: a DSN lands in the local sender\'s Maildir; none for the null sender', async () => {
    hop.rcpt = (a) => (a.startsWith('gone') ? { code: 550, text: 'No such user here' } : undefined);
    await send('gone@relayed.org', 'relayed-bounce', 'alice@example.org');
    const dsn = await waitFor('a DSN in alice\'s Maildir', () =>
      mailbox(t.dataDir, 'alice@example.org').find((m) => /report-type="?delivery-status/i.test(m) && m.includes('gone@relayed.org')), 15_000);
    assert.match(dsn, /^Return-Path: <>/, 'a DSN has the null sender (RFC 3464 §2, RFC 5321 §4.5.5)');
    assert.match(dsn, /Content-Type: multipart\/report;[\s\S]*report-type="?delivery-status/i);
    assert.match(dsn, /^Final-Recipient: rfc822; ?gone@relayed\.org/mi);
    assert.match(dsn, /^Action: failed/mi);
    assert.match(dsn, /^Status: 5\.\d{1,3}\.\d{1,3}/m);
    assert.match(dsn, /Subject: relayed-bounce/, 'the original headers are returned');
    await idle();

    const mailBefore = allMail(t.dataDir).length;
    const bounced = t.app.mta.delivery.stats.bounced;
    const r = await swaks(port, { to: 'gone2@relayed.org', from: '', subject: 'null-sender', body: 'no bounce for me' });
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /MAIL FROM:<>/, 'swaks sent the null sender');
    await waitFor('the failed attempt for the null sender', () => t.app.mta.delivery.stats.bounced > bounced, 15_000);
    // A bounce would be queued within the failed attempt, and idle means nothing queued is due either.
    await idle();
    const after = allMail(t.dataDir);
    assert.equal(after.length, mailBefore, 'no bounce delivered anywhere');
    assert.ok(!after.some((m) => m.text.includes('gone2@relayed.org')));
    assert.equal(t.app.mta.queue.counts().messages, 0, 'no bounce queued');
    hop.rcpt = () => undefined;
  });
});

describe('SMTPUTF8 and BODY=8BITMIME kept in the queue, honoured on relay', { timeout: 60_000 }, () => {
  let plain: NextHop;

  before(async () => {
    plain = await startNextHop({ hideSMTPUTF8: true, hide8BITMIME: true });
    await ldap('ldapadd', `dn: dc=plainhop,dc=org,${S}\nobjectClass: domain\nobjectClass: mailDomain\ndc: plainhop\nmailRoutingSmartHost: 127.0.0.1:${plain.port}\n`);
  });
  after(async () => plain?.close());

  /** One message over a raw session; the reply to the final dot. */
  async function raw(mailFrom: string, rcpt: string, message: string): Promise<string> {
    const { client } = await RawSmtp.connect(port);
    try {
      assert.equal((await client.cmd('EHLO client.test')).code, 250);
      const m = await client.cmd(mailFrom);
      assert.equal(m.code, 250, m.raw);
      const r = await client.cmd(`RCPT TO:<${rcpt}>`);
      assert.equal(r.code, 250, r.raw);
      assert.equal((await client.cmd('DATA')).code, 354);
      return (await client.cmd(`${message}\r\n.`)).raw;
    } finally {
      await client.quit();
    }
  }

  test('to a next hop offering both, the parameters travel on', async () => {
    const sent = await raw('MAIL FROM:<alice@example.org> SMTPUTF8 BODY=8BITMIME', 'zoë@relayed.org', 'Subject: utf8-both\r\n\r\nGrüße');
    assert.match(sent, /^250 /);
    const got = await waitFor('the next hop to receive utf8-both', () => hop.received.find((m) => m.body.includes('Subject: utf8-both')), 15_000);
    assert.deepEqual(got.rcptTo, ['zoë@relayed.org']);
    assert.equal(got.mailArgs.SMTPUTF8, true, JSON.stringify(got.mailArgs));
    assert.equal(got.mailArgs.BODY, '8BITMIME', JSON.stringify(got.mailArgs));
    assert.match(got.body, /Grüße/);
  });

  test('to a next hop offering neither: BODY=8BITMIME content bounces 5.6.3, SMTPUTF8 header fields bounce 5.6.7, nothing sent raw', async () => {
    assert.match(await raw('MAIL FROM:<alice@example.org> BODY=8BITMIME', 'x@plainhop.org', 'Subject: eight-bit\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße'), /^250 /);
    assert.match(await raw('MAIL FROM:<alice@example.org> SMTPUTF8', 'y@plainhop.org', 'Subject: Grüße utf8-header\r\n\r\nhello'), /^250 /);
    const dsnFor = (rcpt: string) => () => mailbox(t.dataDir, 'alice@example.org').find((m) => /report-type="?delivery-status/i.test(m) && m.includes(`Final-Recipient: rfc822; ${rcpt}`));
    const eight = await waitFor('a 5.6.3 DSN for x@plainhop.org', dsnFor('x@plainhop.org'), 15_000);
    assert.match(eight, /^Action: failed/m);
    assert.match(eight, /^Status: 5\.6\.3$/m);
    const utf8 = await waitFor('a 5.6.7 DSN for y@plainhop.org', dsnFor('y@plainhop.org'), 15_000);
    assert.match(utf8, /^Status: 5\.6\.7$/m);
    assert.equal(plain.received.length, 0, 'nothing was sent to the next hop without the extensions');
    await idle();
  });
});

describe('domain status', { timeout: 60_000 }, () => {
  test('hold: accepted and kept queued; active again over LDAP: delivered without a restart; inactive: RCPT 550', async () => {
    const dn = `dc=paused,dc=org,${S}`;
    await ldap('ldapmodify', `dn: ${dn}\nchangetype: modify\nreplace: mailDomainStatus\nmailDomainStatus: hold\n`);
    await send('dave@paused.org', 'held-message');
    await waitFor('the message to be held', () => t.app.mta.queue.counts().held >= 1);
    await idle();
    assert.equal(t.app.mta.queue.counts().held, 1);
    assert.deepEqual(mailbox(t.dataDir, 'dave@paused.org'), [], 'not delivered while on hold');
    // Held mail will be delivered here: recipients are judged now (no backscatter when the hold ends).
    assert.match(await rcptReply('nobody@paused.org'), /^550 5\.1\.1/);
    assert.match(await rcptReply('postmaster@paused.org'), /^250/);
    await ldap('ldapmodify', `dn: ${dn}\nchangetype: modify\nadd: mailDomainCatchallAddress\nmailDomainCatchallAddress: dave@paused.org\n`);
    assert.match(await rcptReply('nobody@paused.org'), /^250/, 'the catch-all takes unknown local parts');
    await ldap('ldapmodify', `dn: ${dn}\nchangetype: modify\ndelete: mailDomainCatchallAddress\n`);

    await ldap('ldapmodify', `dn: ${dn}\nchangetype: modify\nreplace: mailDomainStatus\nmailDomainStatus: active\n`);
    await waitFor('delivery after the domain left hold', () => mailbox(t.dataDir, 'dave@paused.org').find((m) => m.includes('Subject: held-message')));
    await idle();
    assert.equal(t.app.mta.queue.counts().held, 0);

    await ldap('ldapmodify', `dn: ${dn}\nchangetype: modify\nreplace: mailDomainStatus\nmailDomainStatus: inactive\n`);
    assert.match(await rcptReply('dave@paused.org'), /^550/);
    await ldap('ldapmodify', `dn: ${dn}\nchangetype: modify\nreplace: mailDomainStatus\nmailDomainStatus: active\n`);
    assert.match(await rcptReply('dave@paused.org'), /^250/);
  });
});

describe('a hold that ends while an attempt is under way', { timeout: 60_000 }, () => {
  test('the recipient judged held by the attempt is delivered, not left held', async () => {
    const dn = `dc=pausedrelay,dc=org,${S}`;
    await ldap('ldapadd', `dn: ${dn}\nobjectClass: domain\nobjectClass: mailDomain\ndc: pausedrelay\nmailRoutingSmartHost: 127.0.0.1:${hop.port}\n`);
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    // Attempt 1 defers both; attempt 2 of slow@ waits at the next hop until the hold is over.
    hop.rcpt = (a, n) => {
      if (a === 'x@pausedrelay.org' && n === 1) return { code: 451, text: 'Not yet' };
      if (a === 'slow@relayed.org') return n === 1 ? { code: 451, text: 'Not yet' } : gate.then(() => undefined);
      return undefined;
    };
    try {
      const r = await swaks(port, { to: 'x@pausedrelay.org,slow@relayed.org', from: 'sender@client.test', subject: 'hold-race', body: 'hold-race' });
      assert.equal(r.code, 0, r.out);
      await waitFor('the first attempt deferred', () => hop.rcptAttempts.get('x@pausedrelay.org') === 1 && hop.rcptAttempts.get('slow@relayed.org') === 1, 15_000);
      await ldap('ldapmodify', `dn: ${dn}\nchangetype: modify\nadd: mailDomainStatus\nmailDomainStatus: hold\n`);
      // The retry (DCMX_QUEUE_RETRY_BASE=1 s) judges x@ held and waits on slow@ at the next hop.
      await waitFor('the second attempt at the next hop', () => hop.rcptAttempts.get('slow@relayed.org') === 2, 15_000);
      assert.equal(hop.rcptAttempts.get('x@pausedrelay.org'), 1, 'x@ was not offered while its domain was on hold');
      await ldap('ldapmodify', `dn: ${dn}\nchangetype: modify\ndelete: mailDomainStatus\n`);
      assert.equal(t.app.mta.routing.resolve('pausedrelay.org')?.route.kind, 'relay');
      open();
      await waitFor('x@pausedrelay.org delivered after the hold ended', () => hop.received.find((m) => m.body.includes('hold-race') && m.rcptTo.includes('x@pausedrelay.org')), 15_000);
      await idle();
      assert.equal(t.app.mta.queue.counts().held, 0, 'nothing left held');
    } finally {
      open();
      hop.rcpt = () => undefined;
    }
  });
});

describe('relay domain on hold', { timeout: 60_000 }, () => {
  test('a held relay domain still takes any local part: its users live at the next hop', async () => {
    const dn = `dc=relayed,dc=org,${S}`;
    await ldap('ldapmodify', `dn: ${dn}\nchangetype: modify\nadd: mailDomainStatus\nmailDomainStatus: hold\n`);
    try {
      assert.equal(t.app.mta.routing.resolve('relayed.org')?.route.kind, 'hold');
      assert.match(await rcptReply('anyone@relayed.org'), /^250/);
    } finally {
      await ldap('ldapmodify', `dn: ${dn}\nchangetype: modify\ndelete: mailDomainStatus\n`);
    }
    assert.equal(t.app.mta.routing.resolve('relayed.org')?.route.kind, 'relay');
  });
});

describe('aliases and catch-all', { timeout: 60_000 }, () => {
  test('associatedDomain example.net: alice@example.net lands in alice@example.org\'s Maildir', async () => {
    assert.match(await rcptReply('alice@example.net'), /^550 5\.7\.1/, 'not hosted yet');
    await ldap('ldapmodify', `dn: dc=example,dc=org,${S}\nchangetype: modify\nadd: objectClass\nobjectClass: domainRelatedObject\n-\nadd: associatedDomain\nassociatedDomain: example.net\n`);
    await send('alice@example.net', 'via-alias');
    await idle();
    const msg = mailbox(t.dataDir, 'alice@example.org').find((m) => m.includes('Subject: via-alias'));
    assert.ok(msg, 'delivered to alice@example.org');
    assert.match(msg, /^Delivered-To: alice@example\.net$/m);
    assert.deepEqual(mailbox(t.dataDir, 'alice@example.net'), [], 'no Maildir for the alias domain');
  });

  test('mailDomainCatchallAddress: nobody@example.org accepted and delivered to alice', async () => {
    const dn = `dc=example,dc=org,${S}`;
    assert.match(await rcptReply('nobody@example.org'), /^550 5\.1\.1/);
    await ldap('ldapmodify', `dn: ${dn}\nchangetype: modify\nadd: mailDomainCatchallAddress\nmailDomainCatchallAddress: alice@example.org\n`);
    try {
      await send('nobody@example.org', 'to-catchall');
      await idle();
      const msg = mailbox(t.dataDir, 'alice@example.org').find((m) => m.includes('Subject: to-catchall'));
      assert.ok(msg, 'delivered to the catch-all address');
      assert.match(msg, /^Delivered-To: nobody@example\.org$/m);
      assert.deepEqual(mailbox(t.dataDir, 'nobody@example.org'), []);
    } finally {
      await ldap('ldapmodify', `dn: ${dn}\nchangetype: modify\ndelete: mailDomainCatchallAddress\n`);
    }
    assert.match(await rcptReply('nobody@example.org'), /^550 5\.1\.1/, 'catch-all removed: refused again');
  });
});

describe('directory cache', { timeout: 60_000 }, () => {
  test('100 messages to carol after a warm-up cost at most one directory read; a change is seen at once', async () => {
    const transport = nodemailer.createTransport({
      pool: true, maxConnections: 1, maxMessages: 1000,
      host: '127.0.0.1', port, secure: false, ignoreTLS: true, name: 'client.test',
      connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 10_000,
    });
    try {
      const mail = (i: number) => ({ envelope: { from: 'sender@client.test', to: ['carol@example.org'] }, raw: `Subject: cache-${i}\r\n\r\nmessage ${i}\r\n` });
      await transport.sendMail(mail(0));
      await idle();
      // The serving threads' caches, summed (GET /stats): one pooled connection is served by one thread.
      const reads = (await t.app.stats()).cache.directoryReads;
      for (let i = 1; i <= 100; i++) {
        const info = await transport.sendMail(mail(i));
        assert.deepEqual(info.accepted, ['carol@example.org']);
      }
      await idle();
      const grew = (await t.app.stats()).cache.directoryReads - reads;
      assert.ok(grew <= 1, `directoryReads grew by ${grew} for 100 messages`);
      assert.equal(mailbox(t.dataDir, 'carol@example.org').filter((m) => /Subject: cache-\d+/.test(m)).length, 101);
    } finally {
      transport.close();
    }

    // A negative answer is cached first; the change must reach it at once.
    assert.match(await rcptReply('carol.new@example.org'), /^550 5\.1\.1/);
    const invalidations = (await t.app.stats()).cache.invalidations;
    await ldap('ldapmodify', `dn: uid=carol,ou=people,dc=example,dc=org,${S}\nchangetype: modify\nadd: mailAlternateAddress\nmailAlternateAddress: carol.new@example.org\n`);
    assert.match(await rcptReply('carol.new@example.org'), /^250/);
    // The 250 may come from the other serving thread; the one holding the negative answer drops it
    // when it next syncs (before its next lookup, or at its change poll, DCMX_CHANGE_POLL_MS: 2 s).
    await waitForAsync('the change to invalidate the cached negative answer', async () => (await t.app.stats()).cache.invalidations > invalidations, 15_000, 100);
  });

  // The change feed is data, not LDIF: a `mail` value long enough to be folded in LDIF
  // (76 columns) must still reach the negative answer cached for it.
  test('a user with a 74-character address, added with ldapadd after a 550, is accepted on the very next RCPT', async () => {
    const address = `${'l'.repeat(62)}@example.org`;
    assert.equal(address.length, 74);
    assert.match(await rcptReply(address), /^550 5\.1\.1/, 'unknown first: a negative answer is cached');
    await ldap('ldapadd', user('longaddress', `dc=example,dc=org,${S}`, address));
    assert.match(await rcptReply(address), /^250/, 'the add reached the cached negative answer');
  });

  test('the same for a long SMTPUTF8 address with a U-label domain (stored in A-labels)', async () => {
    const dom = `dc=xn--bcher-kva,dc=org,${S}`;
    await ldap('ldapadd', `dn: ${dom}\nobjectClass: dNSDomain2\nobjectClass: mailDomain\ndc: xn--bcher-kva\nmXRecord: 10 mx.dcmx.test.\n\n` +
      `dn: ou=people,${dom}\nobjectClass: organizationalUnit\nou: people\n`);
    const local = 'b'.repeat(56);
    const stored = `${local}@xn--bcher-kva.org`;
    assert.equal(stored.length, 74);
    const rcpt = async () => {
      const { client } = await RawSmtp.connect(port);
      try {
        assert.equal((await client.cmd('EHLO client.test')).code, 250);
        assert.equal((await client.cmd('MAIL FROM:<jöhn@client.test> SMTPUTF8')).code, 250);
        return await client.cmd(`RCPT TO:<${local}@bücher.org>`);
      } finally {
        await client.quit();
      }
    };
    const before = await rcpt();
    assert.equal(before.code, 550, before.raw);
    assert.match(before.lines[0], /^5\.1\.1 /, before.raw);
    await ldap('ldapadd', user('umlaut', dom, stored));
    const after = await rcpt();
    assert.equal(after.code, 250, after.raw);
  });

  // modrdn of a non-leaf moves its subtree with one change-log row: the cache and the
  // routing table must forget what they hold from the entries below it too.
  test('a domain renamed with ldapmodrdn takes its subdomains along: the old names are refused, the new ones accepted at once', async () => {
    const sales = `dc=sales,dc=example,dc=org,${S}`;
    const eu = `dc=eu,${sales}`;
    await ldap('ldapadd', `dn: ${sales}\nobjectClass: domain\ndc: sales\n\n` +
      `dn: ${eu}\nobjectClass: dNSDomain2\nobjectClass: mailDomain\ndc: eu\nmXRecord: 10 mx.dcmx.test.\n\n` +
      `dn: ou=people,${eu}\nobjectClass: organizationalUnit\nou: people\n\n${user('erin', eu, 'erin@eu.sales.example.org', ['erin@eu.west.example.org'])}`);
    // Warm both: a positive answer for the old name, a negative one for the new.
    assert.match(await rcptReply('erin@eu.sales.example.org'), /^250/);
    assert.match(await rcptReply('erin@eu.west.example.org'), /^550/);
    assert.equal(describeRoute(t.app.mta.routing.lookup('eu.sales.example.org')!), 'local');
    const r = await run('ldapmodrdn', [...adminArgs(t), '-r', sales, 'dc=west']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(t.app.mta.routing.lookup('eu.sales.example.org'), undefined, 'the old subdomain left the routing table');
    assert.equal(describeRoute(t.app.mta.routing.lookup('eu.west.example.org')!), 'local');
    assert.equal(await t.app.mta.cache.domain('eu.sales.example.org'), undefined, 'the cached domain was forgotten');
    assert.equal((await t.app.mta.cache.domain('eu.west.example.org'))?.dn, `dc=eu,dc=west,dc=example,dc=org,${S}`);
    assert.match(await rcptReply('erin@eu.sales.example.org'), /^550 5\.7\.1/, 'no longer hosted: relaying refused');
    assert.match(await rcptReply('erin@eu.west.example.org'), /^250/, 'the moved subdomain is hosted under its new name');
  });
});
