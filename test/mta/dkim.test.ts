/**
 * DKIM keys born with the domain (RFC 6376 §3.6, RFC 8463), end to end with
 * real clients: `dcmx domain add` in its own process creates the domain's
 * keys in the domain's transaction; dig sees the key records on our DNS
 * port; ldapsearch shows the private key to the administrator only (not
 * anonymously, not to a user, not in a filter). Mail from the domain that
 * leaves through a next hop is signed with both keys, and dkimpy (Debian python3-dkim,
 * through test/mta/dkim-verify.py, resolving on our DNS port) verifies it;
 * the same message altered after signing fails.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { adminArgs, caughtUp, run, runDcmx, startTestAppliance, testEnv, type TestAppliance } from '../helpers';
import { startNextHop, swaks, waitFor, type NextHop } from './fixture';
import { dkimVerify, signatures, txt } from './dkim-fixture';

const SUFFIX = 'o=internet';
const DOMAIN = 'signed.example.org';
const dn = (name: string): string => name.split('.').map((l) => `dc=${l}`).join(',') + `,${SUFFIX}`;

/** Values of `attr` in `ldapsearch -LLL -o ldif-wrap=no` output (base64 values decoded). */
function values(out: string, attr: string): string[] {
  const re = new RegExp(`^${attr}(::?) ?(.*)$`, 'gim');
  return [...out.matchAll(re)].map((m) => (m[1] === '::' ? Buffer.from(m[2], 'base64').toString('utf8') : m[2]));
}

describe('DKIM keys born with the domain', () => {
  let t: TestAppliance;
  let hop: NextHop;
  const USER_PW = 'user-secret-1';
  const userDn = `uid=alice,ou=people,${dn(DOMAIN)}`;

  before(async () => {
    hop = await startNextHop();
    // 127.0.0.1 may relay: its mail is our users' (only such mail is signed, dkim-sign.ts).
    t = await startTestAppliance({ DCMX_NEW_DOMAIN_DKIM: 'rsa,ed25519', DCMX_SMTP_RELAY_PORT: String(hop.port), DCMX_RELAY_NETWORKS: '127.0.0.1/32' });
    // A hosted domain whose mail goes to the next hop: mail to it leaves through the relay channel.
    const r = await run('ldapadd', adminArgs(t), [
      `dn: dc=org,${SUFFIX}`, 'objectClass: domain', 'dc: org', '',
      `dn: dc=relayed,dc=org,${SUFFIX}`, 'objectClass: domain', 'objectClass: mailDomain', 'dc: relayed', 'mailRoutingSmartHost: 127.0.0.1', '',
    ].join('\n'));
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await t?.close();
    await hop?.close();
  });

  let selectors: string[] = [];
  test('dcmx domain add publishes an RSA and an Ed25519 key record at dated selectors', async () => {
    const add = await runDcmx(testEnv(t.dataDir, { DCMX_NEW_DOMAIN_DKIM: 'rsa,ed25519' }), ['domain', 'add', DOMAIN], 30_000);
    assert.equal(add.code, 0, add.stderr);
    await caughtUp(t);
    const list = await run('ldapsearch', [...adminArgs(t), '-LLL', '-o', 'ldif-wrap=no', '-b', `dc=_domainkey,${dn(DOMAIN)}`, '-s', 'one', '(objectClass=dkimKey)', 'dc', 'dkimPrivateKey']);
    assert.equal(list.code, 0, list.stderr);
    selectors = values(list.stdout, 'dc').sort();
    const day = new Date().toISOString().slice(0, 10).replace(/-/g, '');
    assert.deepEqual(selectors, [`d${day}-ed25519`, `d${day}-rsa`]);
    const keys = values(list.stdout, 'dkimPrivateKey');
    assert.equal(keys.length, 2, 'the administrator reads both private keys');
    for (const sel of selectors) {
      const r = await txt(t.app.ports.dns, `${sel}._domainkey.${DOMAIN}`);
      assert.equal(r.status, 'NOERROR');
      assert.equal(r.records.length, 1, r.records.join('\n'));
      const m = /^v=DKIM1; k=(rsa|ed25519); p=([A-Za-z0-9+/=]+)$/.exec(r.records[0]);
      assert.ok(m, r.records[0]);
      assert.ok(sel.endsWith(m[1]), `${sel} publishes a ${m[1]} key`);
      // The published key is the public half of one of the stored private keys.
      const published = m[1] === 'rsa'
        ? createPublicKey({ key: Buffer.from(m[2], 'base64'), format: 'der', type: 'spki' })
        : createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(m[2], 'base64').toString('base64url') }, format: 'jwk' });
      if (m[1] === 'rsa') assert.equal(published.asymmetricKeyDetails?.modulusLength, 2048);
      assert.ok(keys.map((k) => createPublicKey(k)).some((k) => k.asymmetricKeyType === published.asymmetricKeyType && k.equals(published)), `the private key of ${sel} is stored`);
    }
  });

  test('the private key is never shown anonymously nor to a user, nor matched in a filter', async () => {
    const add = await run('ldapadd', [...adminArgs(t)], [
      `dn: ${userDn}`, 'objectClass: inetOrgPerson', 'uid: alice', 'cn: alice', 'sn: alice', `mail: alice@${DOMAIN}`, `userPassword: ${USER_PW}`, '',
    ].join('\n'));
    assert.equal(add.code, 0, add.stderr);
    const base = `dc=_domainkey,${dn(DOMAIN)}`;
    for (const [who, args] of [['anonymous', ['-x']], ['a user', ['-x', '-D', userDn, '-w', USER_PW]]] as const) {
      const s = await run('ldapsearch', [...args, '-H', t.ldapUrl, '-LLL', '-o', 'ldif-wrap=no', '-b', base, '-s', 'one', '(objectClass=dkimKey)', '*', 'dkimPrivateKey']);
      assert.equal(s.code, 0, `${who}: ${s.stderr}`);
      assert.equal(values(s.stdout, 'dc').length, 2, `${who} sees the selector entries: ${s.stdout}`);
      assert.equal(values(s.stdout, 'tXTRecord').length, 2, `${who} reads the public key records`);
      assert.deepEqual(values(s.stdout, 'dkimPrivateKey'), [], `${who} reads no private key`);
      const f = await run('ldapsearch', [...args, '-H', t.ldapUrl, '-LLL', '-b', base, '(dkimPrivateKey=*)', 'dn']);
      assert.equal(f.stdout.trim(), '', `${who} cannot test the private key in a filter`);
    }
  });

  test('domain remove withdraws the key records; domain add brings the same keys back', async () => {
    const env = testEnv(t.dataDir, { DCMX_NEW_DOMAIN_DKIM: 'rsa,ed25519' });
    const before = await txt(t.app.ports.dns, `${selectors[1]}._domainkey.${DOMAIN}`);
    assert.equal((await runDcmx(env, ['domain', 'remove', DOMAIN], 30_000)).code, 0);
    await caughtUp(t);
    assert.deepEqual((await txt(t.app.ports.dns, `${selectors[1]}._domainkey.${DOMAIN}`)).records, []);
    assert.equal((await runDcmx(env, ['domain', 'add', DOMAIN], 30_000)).code, 0);
    await caughtUp(t);
    assert.deepEqual((await txt(t.app.ports.dns, `${selectors[1]}._domainkey.${DOMAIN}`)).records, before.records);
  });

  test('mail from the domain leaves signed relaxed/relaxed; dkimpy verifies it through our DNS, and fails it once altered', { timeout: 60_000 }, async () => {
    const sw = await swaks(t.app.ports.smtp, { to: 'x@relayed.org', from: `alice@${DOMAIN}`, subject: 'signed on its way out', body: 'a body to hash' });
    assert.equal(sw.code, 0, sw.out);
    const msg = (await waitFor('the next hop receives the message', () => hop.received.find((m) => m.mailFrom === `alice@${DOMAIN}`), 30_000)).body;
    const sigs = signatures(msg);
    assert.deepEqual(sigs.map((x) => `${x.a} ${x.c} ${x.d} ${x.s}`).sort(), [
      `ed25519-sha256 relaxed/relaxed ${DOMAIN} ${selectors.find((x) => x.endsWith('-ed25519'))}`,
      `rsa-sha256 relaxed/relaxed ${DOMAIN} ${selectors.find((x) => x.endsWith('-rsa'))}`,
    ], msg.slice(0, 3000));
    const good = await dkimVerify(t.app.ports.dns, msg);
    assert.equal(good.last, 'pass', `dkimpy verifies the message as sent: ${good.out}`);
    assert.equal(good.code, 0);
    const altered = msg.replace('a body to hash', 'a body to hash, altered');
    assert.notEqual(altered, msg);
    const bad = await dkimVerify(t.app.ports.dns, altered);
    assert.equal(bad.last, 'fail', `dkimpy fails the altered message: ${bad.out}`);
    assert.equal(bad.code, 1);
    const resubject = msg.replace('Subject: signed on its way out', 'Subject: changed on the way');
    assert.notEqual(resubject, msg);
    assert.equal((await dkimVerify(t.app.ports.dns, resubject)).code, 1, 'a signed header changed: fails');
  });
});
