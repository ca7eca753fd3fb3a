/**
 * Mailbox placement (server/mta/placement.ts), end to end with ldapadd,
 * ldapmodify and swaks: the inetMailUser `mailHost` names the host holding
 * a mailbox. The appliance (DCMX_HOSTNAME mx.dcmx.test) delivers into its
 * Maildirs what is its own — mailHost its name, or a name resolving to one
 * of DCMX_SELF_ADDRESSES, or no mailHost at all (the appliance holds the
 * directory) — and relays the rest to the mailbox host over SMTP: here
 * store2.dcmx.test, which the stub upstream DNS resolves to 127.0.0.1,
 * where a loopback sink listens on the port next hops are reached on.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { adminArgs, run, startTestAppliance, type TestAppliance } from '../helpers';
import { mailbox, startNextHop, swaks, waitFor, within, type NextHop } from './fixture';
import { StubDns } from './stub-dns';

const HOST = 'mx.dcmx.test';
const SELF = '192.0.2.10';
const STORE2 = 'store2.dcmx.test';
const BASE = 'dc=example,dc=test,o=internet';

let dns: StubDns;
let store2: NextHop;
let t: TestAppliance;
let smtp = 0;

function user(uid: string, mailHost?: string): string {
  return [
    `dn: uid=${uid},ou=people,${BASE}`, 'objectClass: inetOrgPerson', 'objectClass: inetMailUser',
    `uid: ${uid}`, `cn: ${uid}`, `sn: ${uid}`, `mail: ${uid}@example.test`, ...(mailHost ? [`mailHost: ${mailHost}`] : []), '',
  ].join('\n');
}

async function ldap(tool: 'ldapadd' | 'ldapmodify', ldif: string): Promise<void> {
  const r = await run(tool, adminArgs(t), ldif);
  assert.equal(r.code, 0, r.stderr);
}

/** Sends one message from the outside world; RCPT and DATA must be accepted. */
async function send(to: string, subject: string): Promise<void> {
  const r = await swaks(smtp, { to, subject, body: `body of ${subject}` });
  assert.equal(r.code, 0, r.out);
  assert.match(r.replyTo('RCPT TO') ?? '', /^250 /, r.out);
  assert.match(r.out, /<- {2}250 .*queued as/, r.out);
}

const idle = () => within('delivery.whenIdle()', t.app.mta.delivery.whenIdle());

/** The message with `subject` in `address`'s Maildir here, once delivered. */
function delivered(address: string, subject: string): Promise<string> {
  return waitFor(`${subject} in ${address}'s Maildir`, () => mailbox(t.dataDir, address).find((m) => m.includes(`Subject: ${subject}`)), 15_000);
}

/** The message with `subject` as store2 received it, once relayed. */
function relayed(subject: string) {
  return waitFor(`${subject} at ${STORE2}`, () => store2.received.find((m) => m.body.includes(`Subject: ${subject}`)), 15_000);
}

before(async () => {
  dns = await StubDns.start();
  store2 = await startNextHop();
  dns.a(STORE2, '127.0.0.1');
  dns.a('mail.hoster.test', SELF);
  t = await startTestAppliance({
    DCMX_UPSTREAM_DNS: dns.address, DCMX_HOSTNAME: HOST, DCMX_SELF_ADDRESSES: SELF,
    DCMX_SMTP_RELAY_PORT: String(store2.port), DCMX_CHANGE_POLL_MS: '600000',
  });
  smtp = t.app.ports.smtp;
  await ldap('ldapadd', [
    'dn: dc=test,o=internet\nobjectClass: domain\ndc: test\n',
    `dn: ${BASE}\nobjectClass: dNSDomain2\nobjectClass: mailDomain\ndc: example\nmXRecord: 10 ${HOST}.\n`,
    `dn: ou=people,${BASE}\nobjectClass: organizationalUnit\nou: people\n`,
    user('alice', HOST), user('bob', STORE2), user('carol'), user('dave', 'mail.hoster.test.'),
  ].join('\n'));
});

after(async () => {
  await t?.close();
  await store2?.close();
  await dns?.close();
});

describe('mailHost: where a mailbox is', { timeout: 60_000 }, () => {
  test('mailHost naming this appliance: delivered into the Maildir here', async () => {
    await send('alice@example.test', 'to-alice');
    const msg = await delivered('alice@example.test', 'to-alice');
    assert.match(msg, /^Delivered-To: alice@example\.test$/m);
    await idle();
    assert.ok(!store2.received.some((m) => m.body.includes('Subject: to-alice')), 'not relayed');
  });

  test('mailHost naming another host: relayed to it over SMTP, no Maildir here', async () => {
    await send('bob@example.test', 'to-bob');
    const got = await relayed('to-bob');
    assert.deepEqual(got.rcptTo, ['bob@example.test'], 'the envelope recipient is kept');
    await idle();
    assert.deepEqual(mailbox(t.dataDir, 'bob@example.test'), []);
    assert.equal(t.app.mta.queue.counts().messages, 0, 'delivered, queue empty');
  });

  test('no mailHost: the mailbox belongs to the appliance holding the directory, delivered here', async () => {
    await send('carol@example.test', 'to-carol');
    await delivered('carol@example.test', 'to-carol');
    assert.ok(!store2.received.some((m) => m.body.includes('Subject: to-carol')));
  });

  test('mailHost naming a host that resolves to one of our addresses (DCMX_SELF_ADDRESSES): ours, delivered here', async () => {
    await send('dave@example.test', 'to-dave');
    await delivered('dave@example.test', 'to-dave');
    assert.ok(!store2.received.some((m) => m.body.includes('Subject: to-dave')));
  });

  test('one message to mailboxes here and elsewhere: each copy goes where its mailbox is', async () => {
    const r = await swaks(smtp, { to: 'alice@example.test,bob@example.test', subject: 'to-both', body: 'both' });
    assert.match(r.out, /<- {2}250 .*queued as/, r.out);
    await delivered('alice@example.test', 'to-both');
    assert.deepEqual((await relayed('to-both')).rcptTo, ['bob@example.test']);
  });

  test('unknown users are still refused at RCPT', async () => {
    const r = await swaks(smtp, { to: 'nobody@example.test', quitAfter: 'RCPT' });
    assert.match(r.replyTo('RCPT TO') ?? '', /^550 5\.1\.1 /, r.out);
  });

  test('mailHost changed through LDAP takes effect at once (the cache follows the change log)', async () => {
    await ldap('ldapmodify', `dn: uid=carol,ou=people,${BASE}\nchangetype: modify\nadd: mailHost\nmailHost: ${STORE2}\n`);
    await send('carol@example.test', 'carol-moved');
    await relayed('carol-moved');
    await ldap('ldapmodify', `dn: uid=carol,ou=people,${BASE}\nchangetype: modify\nreplace: mailHost\nmailHost: ${HOST}\n`);
    await send('carol@example.test', 'carol-back');
    await delivered('carol@example.test', 'carol-back');
    await ldap('ldapmodify', `dn: uid=carol,ou=people,${BASE}\nchangetype: modify\ndelete: mailHost\n`);
    await send('carol@example.test', 'carol-default');
    await delivered('carol@example.test', 'carol-default');
    await idle();
    assert.deepEqual(mailbox(t.dataDir, 'carol@example.test').filter((m) => m.includes('Subject: carol-moved')), [], 'the moved message is not here');
    assert.equal(store2.received.filter((m) => /Subject: carol-(back|default)/.test(m.body)).length, 0, 'nor did the later ones go there');
  });
});
