/**
 * `dcmx dkim rotate` and `dcmx dkim list` (server/admin/dkim-cli.ts), each
 * in its own process against the running appliance: the new dated
 * selectors' TXT is served by our DNS at once, mail is signed with the new
 * keys (dkimpy verifies through our DNS port), the old selectors stay
 * published while they retire, and once DCMX_DKIM_RETIRE_AFTER (a few
 * seconds here) has passed the appliance's duty removes them, key record
 * and private key, so a message signed with an old key no longer verifies.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { adminArgs, caughtUp, run, runDcmx, startTestAppliance, testEnv, type TestAppliance } from '../helpers';
import { startNextHop, swaks, waitFor, type NextHop } from './fixture';
import { waitForAsync } from '../fixtures/wait';
import { adminAdd, dkimVerify, RELAYED_ORG, signatures, txt } from './dkim-fixture';

const DOMAIN = 'rotating.example.org';
const GRACE_S = 10;
const SUFFIX = 'o=internet';

describe('dcmx dkim rotate and list', () => {
  let t: TestAppliance;
  let hop: NextHop;
  let env: Record<string, string>;
  const settings = { DCMX_NEW_DOMAIN_DKIM: 'rsa,ed25519', DCMX_DKIM_RETIRE_AFTER: String(GRACE_S) };

  before(async () => {
    hop = await startNextHop();
    t = await startTestAppliance({ ...settings, DCMX_SMTP_RELAY_PORT: String(hop.port), DCMX_RELAY_NETWORKS: '127.0.0.1/32' });
    env = testEnv(t.dataDir, settings);
    t.app.provisioner.provisionDomain(DOMAIN);
    await adminAdd(t, RELAYED_ORG);
  });
  after(async () => {
    await t?.close();
    await hop?.close();
  });

  const send = async (subject: string) => {
    const sw = await swaks(t.app.ports.smtp, { to: 'x@relayed.org', from: `alice@${DOMAIN}`, subject, body: `body of ${subject}` });
    assert.equal(sw.code, 0, sw.out);
    return (await waitFor(`the next hop receives "${subject}"`, () => hop.received.find((m) => m.body.includes(`Subject: ${subject}`)), 30_000)).body;
  };
  const list = async () => {
    const r = await runDcmx(env, ['dkim', 'list', DOMAIN]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim().split('\n').map((l) => l.split('\t'));
  };
  const day = new Date().toISOString().slice(0, 10).replace(/-/g, '');

  let before1 = '';
  test('rotate publishes new dated selectors at once; new mail is signed with them; list shows the old ones retiring', { timeout: 90_000 }, async () => {
    assert.deepEqual((await list()).map((l) => `${l[0]} ${l[1]} ${l[2]}`).sort(), [`d${day}-ed25519 ed25519 active`, `d${day}-rsa rsa active`]);
    before1 = await send('before rotation');
    assert.deepEqual(signatures(before1).map((s) => s.s).sort(), [`d${day}-ed25519`, `d${day}-rsa`]);

    const rot = await runDcmx(env, ['dkim', 'rotate', DOMAIN]);
    assert.equal(rot.code, 0, rot.stderr);
    assert.match(rot.stdout, new RegExp(`published d${day}a-rsa\\._domainkey\\.${DOMAIN.replace(/\./g, '\\.')}`));
    await caughtUp(t);
    for (const s of [`d${day}a-rsa`, `d${day}a-ed25519`, `d${day}-rsa`, `d${day}-ed25519`]) {
      const r = await txt(t.app.ports.dns, `${s}._domainkey.${DOMAIN}`);
      assert.equal(r.records.length, 1, `${s} is served: ${r.status}`);
    }
    // In the grace period, mail signed with the old keys still verifies.
    const old = await dkimVerify(t.app.ports.dns, before1);
    assert.equal(old.code, 0, old.out);
    const rows = await list();
    const state = Object.fromEntries(rows.map((l) => [l[0], l[2]]));
    assert.equal(state[`d${day}a-rsa`], 'active');
    assert.equal(state[`d${day}a-ed25519`], 'active');
    assert.match(state[`d${day}-rsa`], /^retiring until \d{4}-\d\d-\d\dT/);
    assert.match(state[`d${day}-ed25519`], /^retiring until /);

    const after1 = await send('after rotation');
    assert.deepEqual(signatures(after1).map((s) => s.s).sort(), [`d${day}a-ed25519`, `d${day}a-rsa`]);
    const v = await dkimVerify(t.app.ports.dns, after1);
    assert.equal(v.code, 0, v.out);
  });

  test('after DCMX_DKIM_RETIRE_AFTER the old selectors are gone: TXT and key; mail signed with them no longer verifies', { timeout: 90_000 }, async () => {
    await waitForAsync('the old selectors retire', async () => (await txt(t.app.ports.dns, `d${day}-rsa._domainkey.${DOMAIN}`)).status === 'NXDOMAIN', (GRACE_S + 20) * 1000);
    assert.equal((await txt(t.app.ports.dns, `d${day}-ed25519._domainkey.${DOMAIN}`)).status, 'NXDOMAIN');
    assert.equal((await txt(t.app.ports.dns, `d${day}a-rsa._domainkey.${DOMAIN}`)).records.length, 1, 'the new selector stays');
    assert.deepEqual((await list()).map((l) => `${l[0]} ${l[2]}`).sort(), [`d${day}a-ed25519 active`, `d${day}a-rsa active`]);
    const keys = await run('ldapsearch', [...adminArgs(t), '-LLL', '-b', `dc=_domainkey,dc=rotating,dc=example,dc=org,${SUFFIX}`, '-s', 'one', '(objectClass=dkimKey)', 'dc']);
    assert.equal(keys.code, 0, keys.stderr);
    assert.deepEqual([...keys.stdout.matchAll(/^dc: (.*)$/gm)].map((m) => m[1]).sort(), [`d${day}a-ed25519`, `d${day}a-rsa`], 'the old private keys are gone');
    const old = await dkimVerify(t.app.ports.dns, before1);
    assert.equal(old.code, 1, old.out);
    assert.equal((await dkimVerify(t.app.ports.dns, await send('after retirement'))).code, 0);
  });

  test('bad usage and a domain not hosted get a clear error', async () => {
    const none = await runDcmx(env, ['dkim', 'rotate', 'not-hosted.example']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /not-hosted\.example is not a mail domain in service here/);
    const usage = await runDcmx(env, ['dkim', 'rotate']);
    assert.equal(usage.code, 64, usage.stderr);
    assert.match(usage.stderr, /dkim rotate takes one DOMAIN/);
    const bad = await runDcmx(env, ['dkim', 'list', 'no domain']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /dcmx: /);
  });
});
