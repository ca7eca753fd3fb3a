/**
 * The guessing throttle at the LDAP door (server/directory/auth-throttle.ts):
 * growing delays on failures, a temporary refusal (53) past the limit that
 * ends with the window, another account unaffected; attempts in parallel
 * count before they are checked; a client spraying many accounts is refused.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { adminArgs, run, startTestAppliance, ldapResultCode as resultCode, type TestAppliance } from '../helpers';
import { waitFor, within } from '../mta/fixture';

const user = (uid: string) => `uid=${uid},o=internet`;

async function addUsers(t: TestAppliance, uids: string[]): Promise<void> {
  const ldif = uids.map((u) => `dn: ${user(u)}\nobjectClass: inetOrgPerson\nuid: ${u}\ncn: ${u}\nsn: ${u}\nuserPassword: ${u}-pw\n`).join('\n');
  const r = await run('ldapadd', adminArgs(t), ldif);
  assert.equal(r.code, 0, r.stderr);
}

const whoami = (t: TestAppliance, dn: string, pw: string) => run('ldapwhoami', ['-x', '-H', t.ldapUrl, '-D', dn, '-w', pw]);

describe('one account guessed from one client', () => {
  const WINDOW = 6; // seconds
  let t: TestAppliance;
  before(async () => {
    t = await startTestAppliance({
      DCMX_AUTH_WINDOW: String(WINDOW), DCMX_AUTH_FAILURES: '4', DCMX_AUTH_DELAY: '1500', DCMX_AUTH_DELAY_MAX: '1500',
    });
    await addUsers(t, ['amy', 'bo']);
  });
  after(async () => t.close());

  test('failures get slower, then the account is refused; another account binds meanwhile; the window ends the refusal', async () => {
    const throttle = t.app.directory.throttle;
    // Two failures are answered at once (a typo or two).
    for (const guess of ['guess-1', 'guess-2']) assert.equal(resultCode(await whoami(t, user('amy'), guess)), 49);
    assert.equal(throttle.stats.delayed, 0);
    // The third is held back: while it waits, another account's correct bind is answered.
    const order: string[] = [];
    const third = whoami(t, user('amy'), 'guess-3').then((r) => {
      order.push('amy');
      return r;
    });
    await waitFor('the third failure to be held back', () => throttle.stats.delayed === 1);
    const bo = await whoami(t, user('bo'), 'bo-pw');
    order.push('bo');
    assert.equal(bo.code, 0, bo.stderr);
    assert.equal(resultCode(await third), 49);
    assert.deepEqual(order, ['bo', 'amy'], 'the correct bind was answered while the failure waited');
    assert.equal(resultCode(await whoami(t, user('amy'), 'guess-4')), 49);
    assert.equal(throttle.stats.delayed, 2);
    // Four failures in the window: refused without a check, the right password too.
    const refused = await whoami(t, user('amy'), 'guess-5');
    assert.equal(resultCode(refused), 53, refused.stderr);
    assert.match(refused.stderr, /too many failed authentication attempts/);
    assert.equal(resultCode(await whoami(t, user('amy'), 'amy-pw')), 53);
    assert.equal((await whoami(t, user('bo'), 'bo-pw')).code, 0, 'another account is not refused');
    // The failures age out of the window: the right password works again, and clears the count.
    await within('the refusal to end', (async () => {
      for (;;) {
        const r = await whoami(t, user('amy'), 'amy-pw');
        if (r.code === 0) return;
        assert.equal(resultCode(r), 53, r.stderr);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    })(), (WINDOW + 20) * 1000);
    assert.equal(resultCode(await whoami(t, user('amy'), 'guess-6')), 49, 'a success cleared the failures');
    assert.equal(resultCode(await whoami(t, user('amy'), 'guess-7')), 49);
    assert.equal((await whoami(t, user('amy'), 'amy-pw')).code, 0);
  });
});

describe('many attempts at once, and many accounts from one client', () => {
  let t: TestAppliance;
  before(async () => {
    t = await startTestAppliance({ DCMX_AUTH_FAILURES: '4', DCMX_AUTH_CLIENT_FAILURES: '8', DCMX_AUTH_DELAY: '0' });
    await addUsers(t, ['cy', 'di', 'ed', 'fay', 'gus']);
  });
  after(async () => t.close());

  test('parallel wrong binds count before they are checked: at most the limit are checked', async () => {
    const codes = (await Promise.all(Array.from({ length: 12 }, (_, i) => whoami(t, user('cy'), `parallel-${i}`)))).map(resultCode);
    const checked = codes.filter((c) => c === 49).length;
    assert.ok(checked <= 4, `${checked} checked: ${codes}`);
    assert.equal(codes.filter((c) => c === 53).length, 12 - checked, `${codes}`);
  });

  test('a client that fails on many accounts is refused for all of them', async () => {
    // cy's failures count for the client too: four more on other accounts reach its limit of 8.
    for (const u of ['di', 'ed']) {
      for (const guess of ['a', 'b']) assert.equal(resultCode(await whoami(t, user(u), guess)), 49);
    }
    const r = await whoami(t, user('fay'), 'fay-pw');
    assert.equal(resultCode(r), 53, `even a correct password: ${r.stderr}`);
    assert.equal(resultCode(await whoami(t, 'uid=nobody,o=internet', 'x')), 53);
  });
});
