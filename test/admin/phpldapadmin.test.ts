/**
 * phpLDAPadmin against the appliance, as an administrator uses it: Debian's phpLDAPadmin 1.2.6
 * served by `php -S` on loopback with its config pointed at our LDAP port
 * (fixtures/phpldapadmin.ts), driven in Debian's headless Chromium with playwright-core
 * (fixtures/browser.ts). One browser session, step by step: log in as the administrator; open
 * the tree and a user; open every schema page, Matching Rules among them; set a user's password
 * with phpLDAPadmin's {MD5} hash; create a user from the "Generic: User Account" template (RFC
 * 2307 posixAccount) with the default hash. Each password then binds through ldapwhoami.
 *
 * Every page is checked for what PHP or phpLDAPadmin report as a problem (see `errorReports`).
 * A screenshot and the HTML of each step go to dist/screenshots/phpldapadmin/ (emptied at each
 * run); the tests print their paths.
 */
import { after, before, test, type TestContext } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { ADMIN_PASSWORD, adminArgs, run, startTestAppliance, type TestAppliance } from '../helpers';
import { startPhpLdapAdmin, type PhpLdapAdmin } from '../fixtures/phpldapadmin';
import { startChromium, type HeadlessChromium } from '../fixtures/browser';

const SHOTS = path.resolve(__dirname, '..', '..', 'screenshots', 'phpldapadmin');
const DOMAIN_DN = 'dc=example,dc=org,o=internet';
const PEOPLE = `ou=people,${DOMAIN_DN}`;
const ALICE = `uid=alice,${PEOPLE}`;
const BOB = `cn=Bob Builder,${PEOPLE}`;
/** RFC 2307 object classes the "Generic: User Account" and "Posix Group" templates need. */
const RFC2307_CLASSES = ['posixAccount', 'posixGroup', 'shadowAccount'];

let t: TestAppliance;
let pla: PhpLdapAdmin | undefined;
let chrome: HeadlessChromium | undefined;
let page: Page;
let loggedIn = false;
let shotNo = 0;
/** Object classes phpLDAPadmin said it removed from its templates because the server's schema lacks them. */
const removedClasses = new Set<string>();
/** JavaScript alerts the pages raised since the last check (phpLDAPadmin alerts when an AJAX request fails). */
let dialogs: string[] = [];
/** Requests the browser saw fail (for a failing step's diagnostics: one cut short by a navigation is no problem). */
const failedRequests: string[] = [];
/** How much of PHP's log the checks have read. */
let logSeen = 0;

before(async () => {
  fs.rmSync(SHOTS, { recursive: true, force: true });
  fs.mkdirSync(SHOTS, { recursive: true });
  t = await startTestAppliance();
  t.app.provisioner.provisionDomain('example.org');
  const alice = await run('ldapadd', adminArgs(t), `dn: ${ALICE}\nobjectClass: inetOrgPerson\nuid: alice\ncn: Alice Example\nsn: Example\nmail: alice@example.org\nuserPassword: alice-secret-1\n`);
  assert.equal(alice.code, 0, alice.stderr);
  pla = await startPhpLdapAdmin({ ldapPort: t.app.ports.ldap, base: t.config.suffix, bindDN: t.adminDN });
  chrome = await startChromium();
  // Every external script marks itself when it has run, or failed to load (see ajaxClick).
  await chrome.context.addInitScript(`document.addEventListener('load', (e) => { if (e.target instanceof HTMLScriptElement) e.target.dataset.ran = 'yes'; }, true);
    document.addEventListener('error', (e) => { if (e.target instanceof HTMLScriptElement) e.target.dataset.ran = 'failed'; }, true);`);
  page = await chrome.context.newPage();
  // Hang guards, not timing assertions: every wait is for an element or an event.
  page.setDefaultTimeout(30_000);
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  page.on('requestfailed', (r) => failedRequests.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
});

after(async () => {
  // Each is stopped even if another fails to.
  const failed: unknown[] = [];
  for (const stop of [() => chrome?.stop(), () => pla?.stop(), () => t?.close()]) await stop()?.catch((e: unknown) => failed.push(e));
  if (failed.length) throw failed[0];
});

/** What phpLDAPadmin says on every login form served over plain HTTP (loopback here), not a problem. */
const UNENCRYPTED = 'Warning: This web connection is unencrypted.';

/**
 * What in a page's HTML is a report of a problem: PHP's own messages (Warning, Notice,
 * Deprecated, Fatal error), phpLDAPadmin's error boxes and its reports of PHP messages
 * ("Error", "Unrecognized error number: 8192: strtolower(): ..."), each with some context.
 * phpLDAPadmin's warnings ("Automatically removed objectClass from template") are not among
 * them; `removedClasses` collects those.
 */
function errorReports(page: string): string[] {
  const html = page.replaceAll(UNENCRYPTED, '');
  // Each report with 100 characters around it; reports close together make one excerpt.
  const spans: [number, number][] = [];
  for (const m of html.matchAll(/\b(?:Error|Warning|Deprecated|Notice|Fatal)\b|strtolower|alt="error"/g)) {
    const [from, to] = [Math.max(0, m.index! - 100), m.index! + m[0].length + 100];
    const last = spans.at(-1);
    if (last && from <= last[1]) last[1] = to;
    else spans.push([from, to]);
  }
  return spans.map(([from, to]) => html.slice(from, to).replace(/\s+/g, ' '));
}

/** Saves a screenshot and the HTML of the page as the next step, prints their paths, returns the HTML. */
async function shoot(tc: TestContext, name: string): Promise<{ html: string; png: string }> {
  const base = path.join(SHOTS, `${String(++shotNo).padStart(2, '0')}-${name}`);
  await page.waitForLoadState('load');
  const html = await page.content();
  fs.writeFileSync(`${base}.html`, html);
  // The whole page, unless it is very long (the schema's attribute types): then what the window shows.
  const height = Number(await page.evaluate('document.documentElement.scrollHeight'));
  await page.screenshot({ path: `${base}.png`, fullPage: height <= 5000 });
  tc.diagnostic(`screenshot: ${base}.png`);
  return { html, png: `${base}.png` };
}

/**
 * Shoots the page as step `name`, then fails if it reports a problem, raised an alert, or PHP
 * logged an error or warning meanwhile (its log also holds the deprecations of phpLDAPadmin's
 * own code under PHP 8.2, which are not ours: those are let through).
 */
async function checkPage(tc: TestContext, name: string): Promise<string> {
  const { html, png } = await shoot(tc, name);
  for (const m of html.matchAll(/<b>([\w-]+)<\/b> removed from template as it is not defined in the schema/g)) removedClasses.add(m[1]);
  const log = pla!.log();
  const logged = log.slice(logSeen).split('\n').filter((l) => /PHP (?:Fatal error|Parse error|Warning|Notice)/.test(l));
  logSeen = log.length;
  const problems = [...errorReports(html), ...dialogs.map((d) => `alert: ${d}`), ...logged];
  dialogs = [];
  assert.deepEqual(problems, [], `the page "${name}" reports a problem (${png})`);
  return html;
}

/**
 * Clicks what phpLDAPadmin answers with AJAX into its body pane, and waits until the answer is
 * shown and the scripts it brings have run. Fails, saying why, if the pane is left empty (what
 * phpLDAPadmin does when its request fails).
 */
async function ajaxClick(selector: string): Promise<void> {
  await page.click(selector);
  // While the request runs, the pane holds phpLDAPadmin's progress image (ajax_functions.js). The answer's
  // external scripts (a form's TemplateRender.js...) load after it is in place: each marks itself once run.
  await page.waitForFunction(`!document.querySelector('#ajBODY img[src$="ajax-progress.gif"]')
    && [...document.querySelectorAll('#ajBODY script[src]')].every((s) => s.dataset.ran)`);
  const body = (await page.innerHTML('#ajBODY')).trim();
  assert.notEqual(body, '', `phpLDAPadmin's request for "${selector}" failed: the pane is empty (alerts: ${JSON.stringify(dialogs)}; failed requests: ${JSON.stringify(failedRequests)})`);
}

/**
 * A step of the browser session, as a test: all but the first need the login the first makes,
 * and a failing one shoots the page as it was.
 */
function step(title: string, fn: (tc: TestContext) => Promise<void>, { first = false } = {}): void {
  test(title, async (tc) => {
    if (!first) assert.ok(loggedIn, 'not logged in (see the login test)');
    try {
      await fn(tc);
    } catch (e) {
      await shoot(tc, 'failed').catch(() => undefined);
      tc.diagnostic(`alerts: ${JSON.stringify(dialogs)}; failed requests: ${JSON.stringify(failedRequests)}`);
      tc.diagnostic("the end of PHP's log:");
      for (const line of pla?.log().trimEnd().split('\n').slice(-15) ?? []) tc.diagnostic(line);
      throw e;
    }
  });
}

/** The {MD5} value phpLDAPadmin makes of `password` (OpenLDAP's: base64 of the MD5 digest). */
const md5Hash = (password: string): string => `{MD5}${crypto.createHash('md5').update(password).digest('base64')}`;

/** ldapwhoami bound as `dn` with `password`. */
const whoami = (dn: string, password: string) => run('ldapwhoami', ['-x', '-H', t.ldapUrl, '-D', dn, '-w', password]);

step('phpLDAPadmin (our config, pointed at the appliance) logs in as the administrator', async (tc) => {
  await page.goto(`${pla!.url}index.php`);
  await checkPage(tc, 'home');
  assert.match(await page.innerText('#ajTREE'), /dcmx/, 'the tree names the server of our config');
  await ajaxClick('#ajTREE a:text-is("login")');
  await page.waitForSelector('#password');
  await page.fill('#login', t.adminDN);
  await page.fill('#password', ADMIN_PASSWORD);
  await checkPage(tc, 'login-form');
  await page.click('input[type=submit][value=Authenticate]');
  await page.waitForSelector('td.logged_in:has-text("Logged in as:")');
  await checkPage(tc, 'logged-in');
  assert.match(await page.innerText('#ajBODY'), /Successfully logged into server/);
  loggedIn = true;
}, { first: true });

step('phpLDAPadmin opens the tree down to a user, and the user', async (tc) => {
  const chain = [t.config.suffix, 'dc=org,o=internet', DOMAIN_DN, PEOPLE];
  for (const [i, dn] of chain.entries()) {
    await page.click(`div.treemenudiv:has(> a[title="${dn}"]) > a[onclick^="return opencloseTreeNode"]`);
    await page.waitForSelector(`a.phplm[title="${chain[i + 1] ?? ALICE}"]`);
  }
  await checkPage(tc, 'tree');
  const tree = await page.innerText('#ajTREE');
  for (const rdn of ['cn=admin', 'dc=example', 'ou=people', 'uid=alice']) assert.ok(tree.includes(rdn), `the tree shows ${rdn}`);
  await ajaxClick(`a.phplm[title="${ALICE}"]`);
  await checkPage(tc, 'user');
  assert.equal((await page.innerText('#ajBODY h3.title')).trim(), 'uid=alice');
  assert.equal(await page.locator('#ajBODY input[value="alice@example.org"]').count(), 1, 'the user page shows her mail');
});

step('phpLDAPadmin shows every schema page: object classes, attribute types, syntaxes, matching rules', async (tc) => {
  await ajaxClick('#ajTREE a[title="View schema for dcmx"]');
  // Object classes is the first view; then the others through the links at the top of the schema pane.
  const views: { view: string; link?: string; shows: string }[] = [
    { view: 'objectclasses', shows: 'inetOrgPerson' },
    { view: 'attributes', link: 'Attribute Types', shows: 'userPassword' },
    { view: 'syntaxes', link: 'Syntaxes', shows: '1.3.6.1.4.1.1466.115.121.1.15' },
    { view: 'matching_rules', link: 'Matching Rules', shows: 'caseIgnoreIA5Match' },
  ];
  for (const v of views) {
    if (v.link) await ajaxClick(`#ajBODY a:text-is("${v.link}")`);
    const html = await checkPage(tc, `schema-${v.view}`);
    assert.ok(html.includes(v.shows), `the ${v.view} page shows ${v.shows}`);
  }
  // Matching Rules lists, for each rule, the attribute types that use it (matchingRuleUse, RFC 4512 §4.1.4).
  const users = await page.locator('#ajBODY #vvcaseignoreia5match option').allInnerTexts();
  assert.ok(users.includes('mail'), `caseIgnoreIA5Match is used by mail (the page lists: ${users.join(', ')})`);
});

step('a password set in phpLDAPadmin with its {MD5} hash binds', async (tc) => {
  const password = 'alice-md5-2';
  await ajaxClick(`a.phplm[title="${ALICE}"]`);
  await page.fill('#new_values_userpassword_0', password);
  await page.selectOption('#enc_userpassword_0', 'md5');
  await checkPage(tc, 'password-md5');
  await page.click('#ajBODY input[type=submit][value="Update Object"]');
  await page.waitForSelector('#update_form');
  await checkPage(tc, 'password-confirm');
  assert.equal(await page.inputValue('#update_form #new_values_userpassword_0'), md5Hash(password), 'phpLDAPadmin sends the {MD5} value');
  await page.click('#update_form input[type=submit][value="Update Object"]');
  await page.waitForSelector('#ajBODY :text("An attribute (userPassword) was modified")');
  await checkPage(tc, 'password-saved');
  const bound = await whoami(ALICE, password);
  assert.equal(bound.code, 0, `ldapwhoami with the password: ${bound.stderr}`);
  assert.equal(bound.stdout.trim(), `dn:${ALICE}`);
  assert.equal((await whoami(ALICE, md5Hash(password))).code, 49, 'the {MD5} value itself is not a password');
});

step('phpLDAPadmin creates a user from its "Generic: User Account" template, with its default hash, and the password binds', async (tc) => {
  const missing = RFC2307_CLASSES.filter((c) => removedClasses.has(c));
  assert.deepEqual(missing, [], `phpLDAPadmin removed RFC 2307 classes from its templates: the appliance's schema lacks ${missing.join(', ')}`);
  // The template picks the group from the posixGroup entries (gidNumber): one is made first, as an administrator would.
  const group = await run('ldapadd', adminArgs(t), `dn: ou=groups,${DOMAIN_DN}\nobjectClass: organizationalUnit\nou: groups\n\ndn: cn=staff,ou=groups,${DOMAIN_DN}\nobjectClass: posixGroup\ncn: staff\ngidNumber: 500\n`);
  assert.equal(group.code, 0, `ldapadd of a posixGroup: ${group.stderr}`);

  await ajaxClick(`#ajTREE a[title="Create new entry here"][href$="container=${encodeURIComponent(PEOPLE)}"]`);
  await checkPage(tc, 'template-chooser');
  await ajaxClick('#ajBODY label:text-is("Generic: User Account")');
  await page.waitForSelector('#new_values_givenname_0');
  await checkPage(tc, 'user-account-form');

  const password = 'bob-md5-1';
  await page.fill('#new_values_givenname_0', 'Bob');
  await page.fill('#new_values_sn_0', 'Builder');
  await page.locator('#new_values_sn_0').blur();
  // The template fills the common name, user ID and home directory from the names.
  assert.equal(await page.inputValue('#new_values_cn_0'), 'Bob Builder');
  assert.equal(await page.inputValue('#new_values_uid_0'), 'bbuilder');
  assert.equal(await page.inputValue('#new_values_homedirectory_0'), '/home/users/bbuilder');
  await page.fill('#new_values_userpassword_0', password);
  await page.fill('#new_values_verify_userpassword_0', password);
  assert.equal(await page.inputValue('#enc_userpassword_0'), 'md5', "phpLDAPadmin's default hash");
  await page.selectOption('#new_values_gidnumber_0', { label: 'staff' });
  await page.selectOption('#new_values_loginshell_0', '/bin/bash');
  await checkPage(tc, 'user-account-filled');

  await page.click('#create_button');
  await page.waitForSelector('#create_form');
  const confirm = await checkPage(tc, 'user-account-confirm');
  assert.ok(confirm.includes(BOB), `the confirmation names ${BOB}`);
  assert.equal(await page.inputValue('#create_form #new_values_userpassword_0'), md5Hash(password), 'phpLDAPadmin sends the {MD5} value');
  await ajaxClick('#create_form input[type=submit][value="Commit"]');
  await page.waitForSelector(`#ajBODY h3.title:text-is("cn=Bob Builder")`);
  await checkPage(tc, 'user-account-created');
  assert.match(await page.innerText('#ajBODY'), /Creation successful/);

  const bound = await whoami(BOB, password);
  assert.equal(bound.code, 0, `ldapwhoami with the password: ${bound.stderr}`);
  assert.equal(bound.stdout.trim(), `dn:${BOB}`);
  const entry = await run('ldapsearch', [...adminArgs(t), '-LLL', '-b', BOB, '-s', 'base', 'objectClass', 'uid', 'uidNumber', 'gidNumber', 'homeDirectory', 'loginShell']);
  assert.equal(entry.code, 0, entry.stderr);
  for (const line of ['objectClass: posixAccount', 'uid: bbuilder', 'uidNumber: 1000', 'gidNumber: 500', 'homeDirectory: /home/users/bbuilder', 'loginShell: /bin/bash']) {
    assert.ok(entry.stdout.split('\n').includes(line), `the entry holds "${line}":\n${entry.stdout}`);
  }
});
