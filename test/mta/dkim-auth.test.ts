/**
 * Whose key signs an authenticated user's mail (RFC 6376 §1.1: the signer
 * vouches for the message), over real SMTP AUTH sessions (swaks, STARTTLS
 * then AUTH PLAIN), each signature checked by dkimpy against our DNS port:
 * a user is signed for by the domain its entry lives under and by the
 * domains it manages (`owner` of the domain's entry), never by another
 * hosted domain it names in From: or MAIL FROM.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { adminArgs, run, startTestAppliance, type TestAppliance } from '../helpers';
import { startNextHop, swaks, waitFor, type NextHop } from './fixture';
import { adminAdd, dkimVerify, RELAYED_ORG, signatures } from './dkim-fixture';

const SUFFIX = 'o=internet';
const A = 'signed.example.org';
const B = 'second.example.net';
const ALICE = `alice@${A}`; // a user of A
const BOB = `bob@${B}`; // a user of B
const MGR = `mgr@${A}`; // a user of A who manages B
const PASSWORD = 'user-secret-1';

const dn = (name: string): string => name.split('.').map((l) => `dc=${l}`).join(',') + `,${SUFFIX}`;
const userDn = (address: string): string => `uid=${address.split('@')[0]},ou=people,${dn(address.split('@')[1])}`;

describe('DKIM signing of SMTP AUTH users\' mail: only with a domain the user may send as', () => {
  let t: TestAppliance;
  let hop: NextHop;

  before(async () => {
    hop = await startNextHop();
    // No relay networks: only SMTP AUTH lets a client relay.
    t = await startTestAppliance({ DCMX_NEW_DOMAIN_DKIM: 'rsa,ed25519', DCMX_SMTP_RELAY_PORT: String(hop.port) });
    for (const d of [A, B]) t.app.provisioner.provisionDomain(d);
    const user = (address: string) => {
      const uid = address.split('@')[0];
      return [`dn: ${userDn(address)}`, 'objectClass: inetOrgPerson', `uid: ${uid}`, `cn: ${uid}`, `sn: ${uid}`, `mail: ${address}`, `userPassword: ${PASSWORD}`, ''];
    };
    await adminAdd(t, [...user(ALICE), ...user(BOB), ...user(MGR), ...RELAYED_ORG]);
    // mgr manages B: an owner of B's domain entry.
    const r = await run('ldapmodify', adminArgs(t), [`dn: ${dn(B)}`, 'changetype: modify', 'add: owner', `owner: ${userDn(MGR)}`, ''].join('\n'));
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await t?.close();
    await hop?.close();
  });

  /** Sends as `login` over STARTTLS + AUTH PLAIN, envelope sender `sender`, header From: `from`; the message as the next hop got it. */
  async function send(login: string, sender: string, from: string, subject: string): Promise<string> {
    const sw = await swaks(t.app.ports.smtp, {
      to: 'x@relayed.org', from: sender, subject, body: `body of ${subject}`,
      extra: ['--tls', '--auth', 'PLAIN', '--auth-user', login, '--auth-password', PASSWORD, '--header', `From: <${from}>`],
    });
    assert.equal(sw.code, 0, sw.out);
    assert.match(sw.out, /^ *<~ +235 /m, 'authenticated (over TLS: swaks marks the lines ~)');
    return (await waitFor(`the next hop receives "${subject}"`, () => hop.received.find((m) => m.body.includes(`Subject: ${subject}`)), 30_000)).body;
  }
  const domains = (msg: string): string[] => [...new Set(signatures(msg).map((s) => s.d))];

  test('a user of A writing as A: signed by A, and it verifies', { timeout: 60_000 }, async () => {
    const msg = await send(ALICE, ALICE, ALICE, 'own domain');
    assert.deepEqual(domains(msg), [A], msg.slice(0, 3000));
    const v = await dkimVerify(t.app.ports.dns, msg);
    assert.equal(v.code, 0, v.out);
  });

  test('a user of A with From: of hosted domain B: no signature by B (the envelope sender\'s A signs)', { timeout: 60_000 }, async () => {
    const msg = await send(ALICE, ALICE, BOB, 'from b by a');
    assert.deepEqual(domains(msg), [A], msg.slice(0, 3000));
    assert.equal((await dkimVerify(t.app.ports.dns, msg)).code, 0);
  });

  test('a user of A with From: and envelope sender of B: left unsigned', { timeout: 60_000 }, async () => {
    const msg = await send(ALICE, BOB, BOB, 'all b by a');
    assert.deepEqual(signatures(msg), [], msg.slice(0, 3000));
  });

  test('a user of B writing as A: no signature by A', { timeout: 60_000 }, async () => {
    const msg = await send(BOB, BOB, ALICE, 'from a by b');
    assert.deepEqual(domains(msg), [B], msg.slice(0, 3000));
  });

  test('a manager of B (a user of A, owner of B\'s entry) writing as B: signed by B, and it verifies', { timeout: 60_000 }, async () => {
    const msg = await send(MGR, MGR, BOB, 'from b by its manager');
    assert.deepEqual(domains(msg), [B], msg.slice(0, 3000));
    const v = await dkimVerify(t.app.ports.dns, msg);
    assert.equal(v.code, 0, v.out);
    assert.match(v.out, new RegExp(`^rsa-sha256 ${B.replace(/\./g, '\\.')} \\S+ pass$`, 'm'));
  });
});
