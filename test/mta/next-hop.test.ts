/**
 * Where mail goes when our own names are involved, end to end with swaks,
 * ldapadd, ldapexop and a stub upstream DNS:
 * - outbound lookups answer from our zones only for names we hold: a domain
 *   hosted here does not hide the names below it that live elsewhere;
 * - a hosted domain whose MX names a host that resolves to one of
 *   DCMX_SELF_ADDRESSES is ours, and is delivered into its Maildirs;
 * - a next hop that is this appliance (a smart host on our address and SMTP
 *   port, or on our host name; an MX naming us by name or by address) is a
 *   loop: the sender gets a 5.4.6 DSN at once, and the queue empties.
 *
 * The appliance: provisioning off, DCMX_SELF_ADDRESSES=192.0.2.10 (what the
 * world reaches us by), 127.0.0.2 allowed to relay (our "local users"),
 * every next hop on the loopback sink's port.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { adminArgs, run, startTestAppliance, type TestAppliance } from '../helpers';
import { mailbox, startNextHop, swaks, waitFor, within, type NextHop } from './fixture';
import { StubDns } from './stub-dns';
import { RRTYPE } from '../../server/directory/records';

const HOST = 'mx.dcmx.test';
const SELF = '192.0.2.10';
const PROVISION_OID = '1.3.6.1.4.1.32473.1.3.1';
/** The local user who sends, and gets the bounces. */
const BOB = 'bob@home.test';

let dns: StubDns;
let hop: NextHop;
let t: TestAppliance;
let smtp = 0;

function domain(name: string, lines: string[]): string {
  const [label] = name.split('.');
  return [`dn: dc=${label},dc=test,o=internet`, 'objectClass: dNSDomain2', 'objectClass: mailDomain', `dc: ${label}`, ...lines, ''].join('\n');
}

function user(uid: string, name: string): string {
  const [label] = name.split('.');
  return [
    `dn: ou=people,dc=${label},dc=test,o=internet`, 'objectClass: organizationalUnit', 'ou: people', '',
    `dn: uid=${uid},ou=people,dc=${label},dc=test,o=internet`, 'objectClass: inetOrgPerson', 'objectClass: inetMailUser',
    `uid: ${uid}`, `cn: ${uid}`, `sn: ${uid}`, `mail: ${uid}@${name}`, '',
  ].join('\n');
}

/** Sends one message with swaks as a local user (from 127.0.0.2, allowed to relay) or as the outside world. */
async function send(to: string, subject: string, opts: { local?: boolean; from?: string } = {}): Promise<void> {
  const extra = opts.local === false ? [] : ['--local-interface', '127.0.0.2'];
  const r = await swaks(smtp, { to, from: opts.from ?? BOB, subject, body: `body of ${subject}`, extra });
  assert.equal(r.code, 0, r.out);
  assert.match(r.replyTo('RCPT TO') ?? '', /^250 /, r.out);
  assert.match(r.out, /<- {2}250 .*queued as/, r.out);
}

/** The DSN in bob's Maildir that reports `rcpt`. */
function dsnFor(rcpt: string): () => string | undefined {
  return () => mailbox(t.dataDir, BOB).find((m) => /report-type="?delivery-status/i.test(m) && m.includes(`Final-Recipient: rfc822; ${rcpt}`));
}

const idle = () => within('delivery.whenIdle()', t.app.mta.delivery.whenIdle());

before(async () => {
  dns = await StubDns.start();
  hop = await startNextHop();
  // x.bigcorp.com lives elsewhere (its MX is the sink), while bigcorp.com itself will be hosted here.
  dns.mx('x.bigcorp.com', 10, 'mail.x.bigcorp.com').a('mail.x.bigcorp.com', '127.0.0.1');
  // A host name of the hosting provider, whose address is ours.
  dns.a('mail.hoster.test', SELF);
  // Domains not hosted here whose MX names us: by name, by address.
  dns.mx('selfmx.test', 10, HOST);
  dns.mx('selfaddr.test', 10, 'mail.hoster.test');
  t = await startTestAppliance({
    DCMX_UPSTREAM_DNS: dns.address, DCMX_HOSTNAME: HOST, DCMX_SELF_ADDRESSES: SELF, DCMX_RELAY_NETWORKS: '127.0.0.2/32',
    DCMX_SMTP_RELAY_PORT: String(hop.port), DCMX_PROVISIONING: 'off', DCMX_CHANGE_POLL_MS: '600000',
  });
  smtp = t.app.ports.smtp;
  const ldif = [
    'dn: dc=test,o=internet\nobjectClass: domain\ndc: test\n',
    domain('home.test', [`mXRecord: 10 ${HOST}.`]), user('bob', 'home.test'),
    // Ours, though its MX names the provider's host: mail.hoster.test resolves to SELF.
    domain('hosted.test', ['mXRecord: 10 mail.hoster.test.']), user('alice', 'hosted.test'),
    // Relayed to a smart host that is this appliance: on our address and SMTP port, or by our name
    // on the port next hops are reached on. (A smart host that is just our name means "local".)
    domain('loop.test', [`mailRoutingSmartHost: 127.0.0.1:${smtp}`]),
    domain('loopname.test', [`mailRoutingSmartHost: ${HOST}:${hop.port}`]),
  ].join('\n');
  const r = await run('ldapadd', adminArgs(t), ldif);
  assert.equal(r.code, 0, r.stderr);
  const x = await run('ldapexop', [...adminArgs(t), `${PROVISION_OID}:bigcorp.com`]);
  assert.equal(x.code, 0, x.stderr);
});

after(async () => {
  await t?.close();
  await hop?.close();
  await dns?.close();
});

describe('outbound lookups: our zones answer only for names we hold', () => {
  test('with bigcorp.com hosted here, mail to x.bigcorp.com (hosted elsewhere) goes to its MX upstream', async () => {
    await send('someone@x.bigcorp.com', 'to-x-bigcorp');
    const got = await waitFor('the message at x.bigcorp.com\'s MX', () => hop.received.find((m) => m.body.includes('Subject: to-x-bigcorp')), 15_000);
    assert.deepEqual(got.rcptTo, ['someone@x.bigcorp.com']);
    assert.ok(dns.count('x.bigcorp.com', RRTYPE.MX) >= 1, 'its MX was asked upstream');
    assert.ok(dns.count('mail.x.bigcorp.com', RRTYPE.A) >= 1, 'and its host\'s address');
    // bigcorp.com itself is still ours: delivered here (its catch-all), never asked upstream.
    await send('anyone@bigcorp.com', 'to-bigcorp');
    await waitFor('bigcorp.com\'s catch-all', () => mailbox(t.dataDir, 'catchall@bigcorp.com').find((m) => m.includes('Subject: to-bigcorp')), 15_000);
    assert.equal(dns.count('bigcorp.com'), 0, 'nothing asked about bigcorp.com');
  });

  test('a name that exists nowhere (here or upstream) bounces 5.1.2, after the upstream said so', async () => {
    await send('someone@nosuch.bigcorp.com', 'to-nosuch');
    const dsn = await waitFor('the DSN for nosuch.bigcorp.com', dsnFor('someone@nosuch.bigcorp.com'), 15_000);
    assert.match(dsn, /^Status: 5\.1\.2/m);
    assert.ok(dns.count('nosuch.bigcorp.com', RRTYPE.MX) >= 1, 'asked upstream');
  });
});

describe('an MX that names us by address', () => {
  test('hosted.test, whose MX mail.hoster.test resolves to one of DCMX_SELF_ADDRESSES, is delivered into its Maildir; unknown users 550 at RCPT', async () => {
    // From the outside world, as the Internet sends to hosted.test.
    const unknown = await swaks(smtp, { to: 'nobody@hosted.test', quitAfter: 'RCPT' });
    assert.match(unknown.replyTo('RCPT TO') ?? '', /^550 5\.1\.1 /, unknown.out);
    await send('alice@hosted.test', 'to-hosted', { local: false, from: 'sender@client.test' });
    const msg = await waitFor('alice@hosted.test\'s Maildir', () => mailbox(t.dataDir, 'alice@hosted.test').find((m) => m.includes('Subject: to-hosted')), 15_000);
    assert.match(msg, /^Delivered-To: alice@hosted\.test$/m);
    await idle();
    assert.equal(t.app.mta.queue.counts().messages, 0, 'queue empty');
    assert.ok(!hop.received.some((m) => m.body.includes('Subject: to-hosted')), 'not relayed');
  });
});

describe('a next hop that is ourselves is a loop: 5.4.6 at once', () => {
  for (const [rcpt, what] of [
    ['x@loop.test', 'a smart host on our address and SMTP port'],
    ['x@loopname.test', 'a smart host named by our host name and the relay port'],
    ['x@selfmx.test', 'an MX naming our host name'],
    ['x@selfaddr.test', 'an MX whose address is one of DCMX_SELF_ADDRESSES'],
  ]) {
    test(`${what} (${rcpt}): a DSN with 5.4.6 "loops back to myself", never retried; the queue empties`, async (ctx) => {
      const deferred = t.app.mta.delivery.stats.deferred;
      await send(rcpt, `loop-${rcpt}`);
      const dsn = await waitFor(`the DSN for ${rcpt}`, dsnFor(rcpt), 15_000);
      ctx.diagnostic(dsn.split(/\r?\n/).filter((l) => /^(Status|Diagnostic-Code):/.test(l)).join(' | '));
      assert.match(dsn, /^Action: failed/m);
      assert.match(dsn, /^Status: 5\.4\.6/m);
      assert.match(dsn, /^Diagnostic-Code: X-dcmx; mail for \S+ loops back to myself/m);
      await idle();
      assert.equal(t.app.mta.queue.counts().messages, 0, 'queue empty');
      assert.equal(t.app.mta.delivery.stats.deferred, deferred, 'never deferred');
    });
  }
});
