/**
 * What dcmx DKIM-signs (RFC 6376 §5, RFC 8463), end to end over real
 * sockets, each message checked by dkimpy resolving keys on our DNS port:
 * mail of our users leaving through a next hop carries an rsa-sha256 and an
 * ed25519-sha256 signature, each verifying, also by OpenDKIM's
 * opendkim-testmsg (each algorithm alone too); the Maildir copy of mail to
 * another local domain is signed; the key is chosen by the From: domain when
 * we host it, else by the envelope sender's; a DSN we generate is signed
 * with the key of its From: domain (the hosted parent of DCMX_HOSTNAME);
 * mail from outside that names a hosted domain is not signed.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { startTestAppliance, type TestAppliance } from '../helpers';
import { mailbox, startNextHop, swaks, waitFor, type NextHop } from './fixture';
import { adminAdd, crlf, dkimVerify, opendkimVerify, RELAYED_ORG, signatures } from './dkim-fixture';

const SUFFIX = 'o=internet';
const ALICE = 'alice@signed.example.org';
const CAROL = 'carol@second.example.net';

/** `message` (CRLF) without the DKIM-Signature fields for which `drop` holds (given the whole field, folded). */
function withoutSignatures(message: string, drop: (field: string) => boolean): string {
  const end = message.indexOf('\r\n\r\n');
  const fields = message.slice(0, end + 2).split(/\r\n(?![ \t])/).filter((f) => f !== '');
  const kept = fields.filter((f) => !(/^DKIM-Signature:/i.test(f) && drop(f)));
  return kept.map((f) => `${f}\r\n`).join('') + message.slice(end + 2);
}

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
    await adminAdd(t, [...user(ALICE), ...user(CAROL), ...RELAYED_ORG]);
  });
  after(async () => {
    await t?.close();
    await hop?.close();
  });

  /** The dual-signed message of the first test, as the next hop received it. */
  let dual = '';
  const received = (subject: string) => waitFor(`the next hop receives "${subject}"`, () => hop.received.find((m) => m.body.includes(`Subject: ${subject}`)), 30_000);

  test('relayed mail carries an rsa-sha256 and an ed25519-sha256 signature (RFC 8463 §4), each verified by dkimpy', { timeout: 60_000 }, async () => {
    const sw = await swaks(t.app.ports.smtp, { to: 'x@relayed.org', from: ALICE, subject: 'dual signed', body: 'a body to hash' });
    assert.equal(sw.code, 0, sw.out);
    const msg = dual = (await received('dual signed')).body;
    const sigs = signatures(msg);
    assert.deepEqual(sigs.map((s) => s.a).sort(), ['ed25519-sha256', 'rsa-sha256'], msg.slice(0, 3000));
    for (const s of sigs) {
      assert.equal(s.c, 'relaxed/relaxed');
      assert.equal(s.d, 'signed.example.org');
      assert.ok(s.s.endsWith(s.a.split('-')[0]), `the ${s.a} signature names its key's selector: ${s.s}`);
      const h = s.h.toLowerCase().split(':');
      for (const f of ['from', 'to', 'subject', 'date', 'message-id']) assert.ok(h.includes(f), `h= covers ${f}: ${s.h}`);
      assert.equal(h.filter((f) => f === 'from').length, 2, `From is oversigned (RFC 6376 §5.4.2): ${s.h}`);
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
    // Oversigned: a second From: put in front after signing fails both signatures.
    const added = await dkimVerify(t.app.ports.dns, msg.replace(/^From:/m, 'From: <ceo@elsewhere.example>\r\nFrom:'));
    assert.equal(added.code, 1, added.out);
    assert.doesNotMatch(added.out, / pass$/m);
  });

  test('OpenDKIM (opendkim-testmsg) verifies the message as sent, resolving our DNS port, and fails it once altered', { timeout: 60_000 }, async () => {
    assert.ok(dual, 'the message of the test before');
    const good = await opendkimVerify(t.app.ports.dns, dual);
    assert.equal(good.code, 0, good.out);
    assert.equal(good.out, '', 'opendkim-testmsg prints nothing for a message that verifies');
    const body = await opendkimVerify(t.app.ports.dns, dual.replace('a body to hash', 'a body to hash, altered'));
    assert.notEqual(body.code, 0, body.out);
    assert.match(body.out, /Bad signature/);
    const header = await opendkimVerify(t.app.ports.dns, dual.replace('Subject: dual signed', 'Subject: not what was signed'));
    assert.notEqual(header.code, 0, header.out);
    assert.match(header.out, /Bad signature/);
    const added = await opendkimVerify(t.app.ports.dns, dual.replace(/^From:/m, 'From: <ceo@elsewhere.example>\r\nFrom:'));
    assert.notEqual(added.code, 0, `a From: added after signing: ${added.out}`);
    // Each algorithm alone: the message with only its own signature field.
    for (const drop of ['rsa-sha256', 'ed25519-sha256']) {
      const other = withoutSignatures(dual, (f) => f.replace(/\s+/g, '').includes(`a=${drop};`));
      assert.equal(signatures(other).length, 1, `the ${drop} signature field is dropped`);
      const v = await opendkimVerify(t.app.ports.dns, other);
      assert.equal(v.code, 0, `opendkim verifies the ${signatures(other)[0].a} signature alone: ${v.out}`);
    }
    const unsigned = await opendkimVerify(t.app.ports.dns, withoutSignatures(dual, () => true));
    assert.match(unsigned.out, /No signature/, 'without the fields there is nothing to verify');
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
