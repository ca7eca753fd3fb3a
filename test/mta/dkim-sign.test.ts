/**
 * What dcmx DKIM-signs (RFC 6376 §5, RFC 8463), end to end over real
 * sockets, each message checked by dkimpy resolving keys on our DNS port:
 * mail of our users leaving through a next hop carries an rsa-sha256 and an
 * ed25519-sha256 signature, each verifying; the Maildir copy of mail to
 * another local domain is signed; the key is chosen by the From: domain when
 * we host it, else by the envelope sender's; a DSN we generate is signed
 * with the key of its From: domain (the hosted parent of DCMX_HOSTNAME);
 * mail from outside that names a hosted domain is not signed.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { adminArgs, caughtUp, run, startTestAppliance, type TestAppliance } from '../helpers';
import { mailbox, startNextHop, swaks, waitFor, type NextHop } from './fixture';
import { crlf, dkimVerify, signatures } from './dkim-fixture';

const SUFFIX = 'o=internet';
const ALICE = 'alice@signed.example.org';
const CAROL = 'carol@second.example.net';
const dn = (name: string): string => name.split('.').map((l) => `dc=${l}`).join(',') + `,${SUFFIX}`;

describe('DKIM signing of our users\' mail', () => {
  let t: TestAppliance;
  let hop: NextHop;

  before(async () => {
    hop = await startNextHop();
    hop.rcpt = (a) => (a.startsWith('refused@') ? { code: 550, text: '5.1.1 no such user' } : undefined);
    // 127.0.0.1 is a relay client (our users' submission); 127.0.0.2 is the outside.
    t = await startTestAppliance({ DCMX_NEW_DOMAIN_DKIM: 'rsa,ed25519', DCMX_SMTP_RELAY_PORT: String(hop.port), DCMX_RELAY_NETWORKS: '127.0.0.1/32' });
    for (const d of ['signed.example.org', 'second.example.net']) t.app.provisioner.provisionDomain(d);
    // The zone of our own host name (DCMX_HOSTNAME mx.dcmx.test, whose address records are not the test's): the operator's --force.
    t.app.provisioner.provisionDomain('dcmx.test', { force: true });
    const user = (address: string) => {
      const [uid, domain] = address.split('@');
      return [`dn: uid=${uid},ou=people,${dn(domain)}`, 'objectClass: inetOrgPerson', `uid: ${uid}`, `cn: ${uid}`, `sn: ${uid}`, `mail: ${address}`, ''];
    };
    // A hosted domain whose mail goes to the next hop: mail to it leaves through the relay channel.
    const r = await run('ldapadd', adminArgs(t), [
      ...user(ALICE), ...user(CAROL),
      `dn: dc=relayed,dc=org,${SUFFIX}`, 'objectClass: domain', 'objectClass: mailDomain', 'dc: relayed', 'mailRoutingSmartHost: 127.0.0.1', '',
    ].join('\n'));
    assert.equal(r.code, 0, r.stderr);
    await caughtUp(t);
  });
  after(async () => {
    await t?.close();
    await hop?.close();
  });

  const received = (subject: string) => waitFor(`the next hop receives "${subject}"`, () => hop.received.find((m) => m.body.includes(`Subject: ${subject}`)), 30_000);

  test('relayed mail carries an rsa-sha256 and an ed25519-sha256 signature (RFC 8463 §4), each verified by dkimpy', { timeout: 60_000 }, async () => {
    const sw = await swaks(t.app.ports.smtp, { to: 'x@relayed.org', from: ALICE, subject: 'dual signed', body: 'a body to hash' });
    assert.equal(sw.code, 0, sw.out);
    const msg = (await received('dual signed')).body;
    const sigs = signatures(msg);
    assert.deepEqual(sigs.map((s) => s.a).sort(), ['ed25519-sha256', 'rsa-sha256'], msg.slice(0, 3000));
    for (const s of sigs) {
      assert.equal(s.c, 'relaxed/relaxed');
      assert.equal(s.d, 'signed.example.org');
      assert.ok(s.s.endsWith(s.a.split('-')[0]), `the ${s.a} signature names its key's selector: ${s.s}`);
      const h = s.h.toLowerCase().split(':');
      for (const f of ['from', 'to', 'subject', 'date', 'message-id']) assert.ok(h.includes(f), `h= covers ${f}: ${s.h}`);
      assert.ok(!h.includes('received'), 'Received changes in transit: not signed');
    }
    const good = await dkimVerify(t.app.ports.dns, msg);
    assert.equal(good.code, 0, good.out);
    assert.match(good.out, /^rsa-sha256 signed\.example\.org \S+ pass$/m);
    assert.match(good.out, /^ed25519-sha256 signed\.example\.org \S+ pass$/m);
    const altered = await dkimVerify(t.app.ports.dns, msg.replace('a body to hash', 'a body to hash, altered'));
    assert.equal(altered.code, 1, altered.out);
    assert.match(altered.out, /^rsa-sha256 \S+ \S+ fail$/m);
    assert.match(altered.out, /^ed25519-sha256 \S+ \S+ fail$/m);
  });

  test('mail to another local domain: the Maildir copy carries the signatures, and they verify', { timeout: 60_000 }, async () => {
    const sw = await swaks(t.app.ports.smtp, { to: CAROL, from: ALICE, subject: 'local to local', body: 'kept here' });
    assert.equal(sw.code, 0, sw.out);
    const msg = await waitFor('carol gets the message', () => mailbox(t.dataDir, CAROL).find((m) => m.includes('Subject: local to local')), 30_000);
    assert.deepEqual(signatures(msg).map((s) => `${s.a} ${s.d}`).sort(), ['ed25519-sha256 signed.example.org', 'rsa-sha256 signed.example.org']);
    const v = await dkimVerify(t.app.ports.dns, crlf(msg));
    assert.equal(v.code, 0, v.out);
    assert.equal((await dkimVerify(t.app.ports.dns, crlf(msg.replace('kept here', 'changed here')))).code, 1);
  });

  test('the key is that of the From: domain when we host it (DMARC alignment), else the envelope sender\'s', { timeout: 60_000 }, async () => {
    const a = await swaks(t.app.ports.smtp, { to: 'y@relayed.org', from: ALICE, subject: 'from carol', body: 'b1', extra: ['--header', `From: Carol <${CAROL}>`] });
    assert.equal(a.code, 0, a.out);
    const b = await swaks(t.app.ports.smtp, { to: 'y@relayed.org', from: ALICE, subject: 'from outside', body: 'b2', extra: ['--header', 'From: <someone@not-hosted.example>'] });
    assert.equal(b.code, 0, b.out);
    const byFrom = (await received('from carol')).body;
    assert.deepEqual([...new Set(signatures(byFrom).map((s) => s.d))], ['second.example.net'], byFrom.slice(0, 3000));
    assert.equal((await dkimVerify(t.app.ports.dns, byFrom)).code, 0);
    const bySender = (await received('from outside')).body;
    assert.deepEqual([...new Set(signatures(bySender).map((s) => s.d))], ['signed.example.org']);
    assert.equal((await dkimVerify(t.app.ports.dns, bySender)).code, 0);
  });

  test('a DSN we generate is signed with the key of its From: domain (dcmx.test, the hosted parent of mx.dcmx.test)', { timeout: 60_000 }, async () => {
    const sw = await swaks(t.app.ports.smtp, { to: 'refused@relayed.org', from: ALICE, subject: 'will bounce', body: 'b3' });
    assert.equal(sw.code, 0, sw.out);
    const dsn = await waitFor('alice gets the bounce', () => mailbox(t.dataDir, ALICE).find((m) => m.includes('Undelivered Mail Returned to Sender')), 30_000);
    assert.match(dsn, /^From: .*MAILER-DAEMON@mx\.dcmx\.test/m);
    assert.deepEqual(signatures(dsn).map((s) => `${s.a} ${s.d}`).sort(), ['ed25519-sha256 dcmx.test', 'rsa-sha256 dcmx.test']);
    const v = await dkimVerify(t.app.ports.dns, crlf(dsn));
    assert.equal(v.code, 0, v.out);
  });

  test('mail from outside that names a hosted domain is not signed', { timeout: 60_000 }, async () => {
    const sw = await swaks(t.app.ports.smtp, { to: 'z@relayed.org', from: ALICE, subject: 'forged from outside', body: 'b4', extra: ['--local-interface', '127.0.0.2'] });
    assert.equal(sw.code, 0, sw.out);
    const msg = (await received('forged from outside')).body;
    assert.deepEqual(signatures(msg), [], msg.slice(0, 2000));
  });
});
