/**
 * The web console in a real browser: Debian's headless Chromium driven by playwright-core
 * (fixtures/browser.ts) against the running appliance, step by step as an operator uses it.
 * Without a session only the login page shows; a wrong password is refused; the administrator
 * logs in, adds a domain and a mailbox; a message sent with swaks to that mailbox is counted as
 * delivered on the dashboard; a message whose next hop is down is deferred, then retried from the
 * queue page once the hop is up; a manager of one domain cannot see or change another through
 * the API (fetch from its logged-in page, with and without the CSRF token: 403); a change without
 * the CSRF token is refused (403).
 *
 * A screenshot of each step goes to test-output/console/ under the repository (emptied at each
 * run, git-ignored); the tests print their paths.
 */
import { after, before, test, type TestContext } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { ADMIN_PASSWORD, adminArgs, run, startTestAppliance, type TestAppliance } from '../helpers';
import { startChromium, type HeadlessChromium } from '../fixtures/browser';
import { waitFor } from '../fixtures/wait';
import { startNextHop, swaks, type NextHop } from '../mta/fixture';

const SHOTS = path.resolve(__dirname, '..', '..', '..', 'test-output', 'console');
const DOMAIN = 'shop.test';
const USER = `alice@${DOMAIN}`;
/** Markup in a message's header: the queue page must show it as text. */
const MARKUP = '<img src=x onerror="document.title=1">';

let t: TestAppliance;
let hop: NextHop;
let chrome: HeadlessChromium | undefined;
let page: Page;
let origin: string;
let shotNo = 0;
/** Errors the page's scripts raised (any fails the test at the next shot). */
const pageErrors: string[] = [];

before(async () => {
  fs.rmSync(SHOTS, { recursive: true, force: true });
  fs.mkdirSync(SHOTS, { recursive: true });
  hop = await startNextHop();
  // The next hop refuses for now: a message relayed there is deferred; no retry comes by itself within the test.
  hop.rcpt = () => ({ code: 451, text: '4.3.2 down for maintenance' });
  t = await startTestAppliance({ DCMX_SMTP_RELAY_PORT: String(hop.port), DCMX_QUEUE_RETRY_BASE: '3600' });
  origin = `http://localhost:${t.app.ports.http}`;
  chrome = await startChromium();
  page = await newPage(chrome.context);
});

after(async () => {
  const failed: unknown[] = [];
  for (const stop of [() => chrome?.stop(), () => t?.close(), () => hop?.close()]) await stop()?.catch((e: unknown) => failed.push(e));
  if (failed.length) throw failed[0];
});

async function newPage(context: BrowserContext): Promise<Page> {
  const p = await context.newPage();
  p.setDefaultTimeout(20_000);
  p.on('pageerror', (e) => pageErrors.push(e.message));
  p.on('dialog', (d) => void d.accept());
  return p;
}

/** Saves a screenshot of `p` as the next step and prints its path; fails on a script error of the page. */
async function shoot(tc: TestContext, name: string, p: Page = page): Promise<void> {
  const file = path.join(SHOTS, `${String(++shotNo).padStart(2, '0')}-${name}.png`);
  await p.screenshot({ path: file, fullPage: true });
  tc.diagnostic(`screenshot: ${file}`);
  assert.deepEqual(pageErrors, [], 'no script error on the page');
}

/** The number a dashboard tile shows. */
async function tile(id: string): Promise<number> {
  return Number(await page.locator(`#${id} .n`).textContent());
}

/** Logs in on the login page of `p`. */
async function logIn(p: Page, user: string, password: string): Promise<void> {
  await p.goto(`${origin}/login`);
  await p.fill('#user', user);
  await p.fill('#password', password);
  await p.click('#submit');
}

test('without a session only the login page shows', async (tc) => {
  await page.goto(`${origin}/`);
  assert.equal(new URL(page.url()).pathname, '/login');
  assert.equal(await page.locator('#login').count(), 1);
  assert.equal(await page.locator('#main').count(), 0, 'no console on the login page');
  await page.goto(`${origin}/domains`);
  assert.equal(new URL(page.url()).pathname, '/login');
  const api = await page.evaluate(async () => (await fetch('/api/domains')).status);
  assert.equal(api, 401);
  await shoot(tc, 'login-page');
});

test('a wrong password is refused', async (tc) => {
  await logIn(page, t.adminDN, 'not-the-password');
  await page.locator('#error:not(:empty)').waitFor();
  assert.match(await page.locator('#error').textContent() ?? '', /wrong user name or password/);
  assert.equal(new URL(page.url()).pathname, '/login');
  assert.deepEqual(await chrome!.context.cookies(), [], 'no session cookie');
  await shoot(tc, 'wrong-password');
});

test('the administrator logs in: the dashboard, its health and change feed', async (tc) => {
  await logIn(page, t.adminDN, ADMIN_PASSWORD);
  await page.waitForURL(`${origin}/`);
  const [cookie] = await chrome!.context.cookies();
  assert.equal(cookie.name, 'dcmx_session');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.secure, true);
  assert.equal(cookie.sameSite, 'Strict');
  await page.locator('#health-smtp.up').waitFor();
  for (const ep of ['store', 'ldap', 'dns', 'smtp']) assert.ok(await page.locator(`#health-${ep}.up`).count(), ep);
  await page.locator('#changes li').first().waitFor();
  // The charts are drawn by uPlot (two polls make the first point).
  await page.locator('#chart-mail canvas').waitFor();
  assert.equal(await page.locator('.uplot').count(), 4);
  assert.equal(await tile('total-delivered'), 0);
  await shoot(tc, 'dashboard');
});

test('add a domain: its records are served', async (tc) => {
  await page.click('a[data-page="domains"]');
  await page.waitForURL(`${origin}/domains`);
  await page.fill('#add-domain input[name="name"]', DOMAIN);
  await page.click('#add-domain button');
  await page.locator(`#domain[data-domain="${DOMAIN}"]`).waitFor();
  const records = await page.locator('#records').textContent() ?? '';
  assert.match(records, /shop\.test\.\s+\d+\s+IN\s+MX\s+10 mx\.dcmx\.test\./);
  assert.match(await page.locator('#domain-route').textContent() ?? '', /local/);
  // As served: dig asks our DNS port.
  const dig = await run('dig', ['@127.0.0.1', '-p', String(t.app.ports.dns), '+short', DOMAIN, 'MX']);
  assert.equal(dig.stdout.trim(), '10 mx.dcmx.test.');
  await shoot(tc, 'domain-added');
});

test('add a mailbox; a message to it is counted as delivered on the dashboard', async (tc) => {
  await page.fill('#add-user input[name="uid"]', 'alice');
  await page.fill('#add-user input[name="name"]', 'Alice Shop');
  await page.fill('#add-user input[name="password"]', 'alice-secret-1');
  await page.click('#add-user button');
  await page.locator('tr[data-user="alice"]').waitFor();
  assert.equal((await run('ldapwhoami', ['-x', '-H', t.ldapUrl, '-D', `uid=alice,ou=people,dc=shop,dc=test,o=internet`, '-w', 'alice-secret-1'])).code, 0);
  await shoot(tc, 'mailbox-added');
  const sw = await swaks(t.app.ports.smtp, { to: USER, subject: 'hello from the console test', body: 'counted' });
  assert.equal(sw.code, 0, sw.out);
  await page.click('a[data-page="dashboard"]');
  await page.waitForURL(`${origin}/`);
  await waitFor('the message delivered', () => t.app.mta.delivery.stats.delivered >= 1, 15_000);
  await page.locator('#total-delivered .n', { hasText: /^[1-9]/ }).waitFor();
  assert.ok(await tile('total-delivered') >= 1);
  assert.ok(await tile('total-messagesIn') >= 1);
  await page.locator('#changes li', { hasText: 'uid=alice' }).first().waitFor();
  // A few live points on the charts (one every 2 s) before the picture.
  const points = Number(await page.locator('#charts').getAttribute('data-points'));
  await page.locator(`#charts[data-points="${points + 2}"]`).waitFor();
  await shoot(tc, 'delivered-counted');
});

test('a change without the CSRF token is refused (403), with it accepted', async (tc) => {
  const r = await page.evaluate(async () => {
    const post = (headers: Record<string, string>) => fetch('/api/domains', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ name: 'nocsrf.test' }) });
    const without = await post({});
    const { csrf } = await (await fetch('/api/session')).json() as { csrf: string };
    const wrong = await post({ 'x-csrf-token': csrf.slice(1) + 'x' });
    return { without: without.status, wrong: wrong.status };
  });
  assert.deepEqual(r, { without: 403, wrong: 403 });
  assert.equal(t.app.directory.getByNdn('dc=nocsrf,dc=test,o=internet'), undefined);
  await shoot(tc, 'csrf-refused');
});

test('a manager of one domain cannot see or change another', async (tc) => {
  // other.test, and a manager of shop.test: an owner of its entry (set over LDAP).
  const ldif = `dn: uid=manager,ou=people,dc=shop,dc=test,o=internet\nobjectClass: inetOrgPerson\nuid: manager\ncn: M\nsn: M\nmail: manager@${DOMAIN}\nuserPassword: manager-secret-1\n`;
  t.app.provisioner.provisionDomain('other.test');
  assert.equal((await run('ldapadd', adminArgs(t), ldif)).code, 0);
  const owner = await run('ldapmodify', adminArgs(t), `dn: dc=shop,dc=test,o=internet\nchangetype: modify\nadd: owner\nowner: uid=manager,ou=people,dc=shop,dc=test,o=internet\n`);
  assert.equal(owner.code, 0, owner.stderr);
  const context = await chrome!.browser.newContext({ viewport: { width: 1280, height: 900 } });
  try {
    const p = await newPage(context);
    await logIn(p, `manager@${DOMAIN}`, 'manager-secret-1');
    await p.waitForURL(`${origin}/`);
    await p.goto(`${origin}/domains`);
    await p.locator(`tr[data-domain="${DOMAIN}"]`).waitFor();
    assert.equal(await p.locator('tr[data-domain="other.test"]').count(), 0, 'the other domain is not listed');
    assert.equal(await p.locator('#add-domain').count(), 0, 'no domain form for a manager');
    const r = await p.evaluate(async () => {
      const { csrf } = await (await fetch('/api/session')).json() as { csrf: string };
      const add = (headers: Record<string, string>) => fetch('/api/domains/other.test/users', {
        method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ uid: 'eve', password: 'eve-secret-1' }),
      });
      return {
        see: (await fetch('/api/domains/other.test')).status,
        withToken: (await add({ 'x-csrf-token': csrf })).status,
        withoutToken: (await add({})).status,
        own: (await fetch('/api/domains/shop.test')).status,
      };
    });
    assert.deepEqual(r, { see: 403, withToken: 403, withoutToken: 403, own: 200 });
    assert.equal(t.app.directory.getByNdn('uid=eve,ou=people,dc=other,dc=test,o=internet'), undefined);
    await p.goto(`${origin}/domains?d=other.test`);
    await p.locator('#message.error').waitFor();
    await shoot(tc, 'manager-refused', p);
  } finally {
    await context.close();
  }
});

test('a deferred message (next hop down) is retried from the queue page once the hop is up', async (tc) => {
  // relay.test: relayed to a smart host on loopback (the next hop, DCMX_SMTP_RELAY_PORT), which answers 451 for now.
  const ldif = 'dn: dc=relay,dc=test,o=internet\nobjectClass: domain\nobjectClass: mailDomain\ndc: relay\nmailRoutingSmartHost: 127.0.0.1\n';
  const add = await run('ldapadd', adminArgs(t), ldif);
  assert.equal(add.code, 0, add.stderr);
  const sw = await swaks(t.app.ports.smtp, { to: 'bob@relay.test', from: USER, subject: `waiting for the hop ${MARKUP}`, body: 'deferred first' });
  assert.equal(sw.code, 0, sw.out);
  await waitFor('the message deferred', () => t.app.mta.delivery.stats.deferred >= 1, 15_000);
  await page.goto(`${origin}/queue`);
  const row = page.locator('#queue-list tr[data-status="deferred"]');
  await row.waitFor();
  const id = await row.getAttribute('data-id');
  assert.ok(id);
  assert.match(await row.textContent() ?? '', /bob@relay\.test \(1 attempt\).*451/s);
  // Filtered by domain and status, it is there; under another domain it is not.
  await page.fill('#queue-filter input[name="domain"]', 'relay.test');
  await page.selectOption('#queue-filter select[name="status"]', 'deferred');
  await page.click('#queue-filter button[type="submit"]');
  await page.waitForURL(/status=deferred/);
  await page.locator(`#queue-list tr[data-id="${id}"]`).waitFor();
  await row.locator('a').click();
  await page.locator(`#message[data-id="${id}"]`).waitFor();
  // A header field is shown as text, never as markup.
  assert.ok((await page.locator('#message-headers').textContent() ?? '').includes(`Subjectwaiting for the hop ${MARKUP}`));
  assert.equal(await page.locator('#message-headers img').count(), 0);
  await shoot(tc, 'queue-deferred');
  // Hold, then release: the status follows (any status shown now).
  await page.selectOption('#queue-filter select[name="status"]', '');
  await page.click('#queue-filter button[type="submit"]');
  await page.waitForURL(`${origin}/queue?domain=relay.test`);
  await row.locator('button.hold').click();
  await page.locator(`#queue-list tr[data-id="${id}"][data-status="hold"]`).waitFor();
  await page.locator(`#queue-list tr[data-id="${id}"] button.release`).click();
  await page.locator(`#queue-list tr[data-id="${id}"][data-status="deferred"]`).waitFor();
  // The hop comes back; "Retry now" delivers at once (the next retry by itself is an hour away).
  hop.rcpt = () => undefined;
  await page.locator(`#queue-list tr[data-id="${id}"] button.retry`).click();
  await waitFor('the message at the next hop', () => hop.received.find((m) => m.rcptTo.includes('bob@relay.test')), 15_000);
  await waitFor('the queue empty', () => t.app.mta.queue.counts().messages === 0 || undefined, 15_000);
  await page.click('#queue-filter button[type="submit"]');
  await page.locator('#queue-list p', { hasText: /^0 messages$/ }).waitFor();
  await shoot(tc, 'queue-retried');
});
