/**
 * SMTP AUTH failures: a session is closed with 421 after DCMX_SMTP_AUTH_FAILURES
 * failed AUTH commands (as Postfix's smtpd_hard_error_limit), and the guessing
 * throttle shared with LDAP refuses an account that failed too often (454 4.7.0).
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { adminArgs, run, startTestAppliance, type TestAppliance } from '../helpers';
import { RawSmtp, USER, USER_LDIF } from './fixture';

let t: TestAppliance;
before(async () => {
  t = await startTestAppliance({ DCMX_SMTP_AUTH_FAILURES: '3', DCMX_AUTH_FAILURES: '5', DCMX_AUTH_DELAY: '0' });
  const r = await run('ldapadd', adminArgs(t), `${USER_LDIF}userPassword: user-pw\n`);
  assert.equal(r.code, 0, r.stderr);
});
after(async () => t.close());

const plain = (user: string, pw: string) => `AUTH PLAIN ${Buffer.from(`\0${user}\0${pw}`).toString('base64')}`;

/** A session over TLS, after EHLO: ready for AUTH. */
async function session(): Promise<RawSmtp> {
  const { client, greeting } = await RawSmtp.connect(t.app.ports.smtp);
  assert.equal(greeting.code, 220);
  assert.equal((await client.cmd('EHLO client.test')).code, 250);
  await client.starttls();
  assert.equal((await client.cmd('EHLO client.test')).code, 250);
  return client;
}

/** True once the server has closed the connection (reply() throws on a closed connection). */
async function closedByServer(c: RawSmtp): Promise<boolean> {
  try {
    await c.reply(10_000);
    return false;
  } catch (e) {
    return /connection closed/.test((e as Error).message);
  }
}

test('the third failed AUTH of a session is answered 421 and the connection closed', async () => {
  const c = await session();
  try {
    assert.equal((await c.cmd(plain(USER, 'wrong-1'))).code, 535);
    assert.equal((await c.cmd(plain(USER, 'wrong-2'))).code, 535);
    const third = await c.cmd(plain('nobody@example.org', 'wrong-3'));
    assert.equal(third.code, 421, third.raw);
    assert.ok(await closedByServer(c), 'the server closed the session');
  } finally {
    await c.quit();
  }
  // Not a lockout: a new session logs in with the right password.
  const ok = await session();
  try {
    assert.equal((await ok.cmd(plain(USER, 'user-pw'))).code, 235);
  } finally {
    await ok.quit();
  }
});

test('an account that failed too often is refused for a while (454 4.7.0), its right password too', async () => {
  const a = await session();
  try {
    for (let i = 0; i < 2; i++) assert.equal((await a.cmd(plain(USER, `again-${i}`))).code, 535);
  } finally {
    await a.quit();
  }
  const b = await session();
  try {
    // The first test's success cleared the account: these are failures 3 to 5 of the limit of 5.
    assert.equal((await b.cmd(plain(USER, 'again-2'))).code, 535);
    assert.equal((await b.cmd(plain(USER, 'again-3'))).code, 535);
  } finally {
    await b.quit();
  }
  const c = await session();
  try {
    assert.equal((await c.cmd(plain(USER, 'again-4'))).code, 535);
    const refused = await c.cmd(plain(USER, 'user-pw'));
    assert.equal(refused.code, 454, refused.raw);
    assert.match(refused.raw, /^454 4\.7\.0 Too many failed authentications/m);
  } finally {
    await c.quit();
  }
});
