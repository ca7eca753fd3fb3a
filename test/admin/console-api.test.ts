/**
 * The web console's API over plain HTTP (no browser): what needs a session, the login and its
 * throttle, the cookie's attributes, CSRF (token and Origin) on every change, and access control
 * by the session's identity — the administrator, and a domain manager (an `owner` of the domain's
 * entry, set over LDAP with ldapmodify) who sees and changes its own domain only. The same policy
 * holds on the LDAP door: the manager's ldapadd below its domain's ou=people succeeds, elsewhere
 * it gets insufficientAccessRights (50). The queue's routes over the queue tools: a held domain's
 * message listed, shown, held, released and deleted by the administrator; 403 for a manager.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { ADMIN_PASSWORD, adminArgs, ldapaddAt, ldapResultCode, run, startTestAppliance, type TestAppliance } from '../helpers';
import { Sessions } from '../../server/admin/console/sessions';
import { waitForAsync } from '../fixtures/wait';
import { swaks } from '../mta/fixture';

let t: TestAppliance;
let base: string;
const MANAGER_DN = 'uid=boss,ou=people,dc=x,dc=test,o=internet';
const MANAGER_PASSWORD = 'boss-secret-1';

before(async () => {
  t = await startTestAppliance({ DCMX_AUTH_FAILURES: '4' });
  base = `http://127.0.0.1:${t.app.ports.http}`;
  t.app.provisioner.provisionDomain('x.test');
  t.app.provisioner.provisionDomain('y.test');
  const add = await ldapaddAt(t.app.ports.ldap, `dn: ${MANAGER_DN}\nobjectClass: inetOrgPerson\nuid: boss\ncn: Boss\nsn: Boss\nmail: boss@x.test\nuserPassword: ${MANAGER_PASSWORD}\n`);
  assert.equal(add.code, 0, add.stderr);
  const owner = await run('ldapmodify', adminArgs(t), `dn: dc=x,dc=test,o=internet\nchangetype: modify\nadd: owner\nowner: ${MANAGER_DN}\n`);
  assert.equal(owner.code, 0, owner.stderr);
  const plain = await ldapaddAt(t.app.ports.ldap, 'dn: uid=plain,ou=people,dc=x,dc=test,o=internet\nobjectClass: inetOrgPerson\nuid: plain\ncn: P\nsn: P\nmail: plain@x.test\nuserPassword: plain-secret-1\n');
  assert.equal(plain.code, 0, plain.stderr);
});
after(async () => t.close());

interface Reply {
  status: number;
  body: Record<string, unknown> & { error?: string };
  headers: Headers;
}

/** A request to the console; `cookie` and `csrf` as a logged-in browser sends them; Origin ours unless given. */
async function call(method: string, path: string, opts: { body?: unknown; cookie?: string; csrf?: string; origin?: string | null } = {}): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (opts.cookie) headers.cookie = opts.cookie;
  if (opts.csrf) headers['x-csrf-token'] = opts.csrf;
  if (opts.origin !== null && method !== 'GET') headers.origin = opts.origin ?? base;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(base + path, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body), redirect: 'manual' });
  const text = await r.text();
  let body: Reply['body'] = {};
  try {
    body = JSON.parse(text) as Reply['body'];
  } catch {
    body = { text } as Reply['body'];
  }
  return { status: r.status, body, headers: r.headers };
}

/** Logs in; resolves with the cookie to send and the session's CSRF token. */
async function login(user: string, password: string): Promise<{ cookie: string; csrf: string }> {
  const r = await call('POST', '/api/login', { body: { user, password } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const set = r.headers.get('set-cookie') ?? '';
  return { cookie: set.split(';')[0], csrf: r.body.csrf as string };
}

test('without a session: the login page and its assets only; the API answers 401', async () => {
  const root = await call('GET', '/');
  assert.equal(root.status, 303);
  assert.equal(root.headers.get('location'), '/login');
  for (const p of ['/domains', '/queue']) assert.equal((await call('GET', p)).status, 303, p);
  const page = await call('GET', '/login');
  assert.equal(page.status, 200);
  assert.match(String(page.body.text), /<form id="login">/);
  assert.match(page.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
  for (const a of ['/assets/login.js', '/assets/console.js', '/assets/console.css', '/assets/uplot.js']) assert.equal((await call('GET', a)).status, 200, a);
  for (const p of ['/api/session', '/api/stats', '/api/changes', '/api/health', '/api/domains', '/api/domains/x.test']) {
    assert.equal((await call('GET', p)).status, 401, p);
  }
  const add = await call('POST', '/api/domains', { body: { name: 'z.test' } });
  assert.equal(add.status, 401);
  assert.equal(t.app.directory.getByNdn('dc=z,dc=test,o=internet'), undefined);
  // A forged cookie is no session.
  assert.equal((await call('GET', '/api/session', { cookie: 'dcmx_session=forged' })).status, 401);
});

test('login: wrong password refused; Origin required; the cookie is HttpOnly, Secure, SameSite=Strict', async () => {
  const wrong = await call('POST', '/api/login', { body: { user: t.adminDN, password: 'wrong' } });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.headers.get('set-cookie'), null);
  const noOrigin = await call('POST', '/api/login', { body: { user: t.adminDN, password: ADMIN_PASSWORD }, origin: null });
  assert.equal(noOrigin.status, 403);
  const foreign = await call('POST', '/api/login', { body: { user: t.adminDN, password: ADMIN_PASSWORD }, origin: 'http://evil.example' });
  assert.equal(foreign.status, 403);
  assert.equal(foreign.headers.get('set-cookie'), null);
  const ok = await call('POST', '/api/login', { body: { user: t.adminDN, password: ADMIN_PASSWORD } });
  assert.equal(ok.status, 200);
  const cookie = ok.headers.get('set-cookie') ?? '';
  assert.match(cookie, /^dcmx_session=[A-Za-z0-9_-]{43};/);
  for (const attr of ['HttpOnly', 'Secure', 'SameSite=Strict', 'Path=/']) assert.ok(cookie.includes(attr), `${attr} in ${cookie}`);
  // A user who manages no domain has no console.
  const plain = await call('POST', '/api/login', { body: { user: 'plain@x.test', password: 'plain-secret-1' } });
  assert.equal(plain.status, 403);
  assert.match(plain.body.error ?? '', /manages no mail domain/);
});

test('guesses are throttled like LDAP binds: the account is refused after DCMX_AUTH_FAILURES', async () => {
  const account = 'uid=plain,ou=people,dc=x,dc=test,o=internet';
  const codes: number[] = [];
  for (let i = 0; i < 5; i++) codes.push((await call('POST', '/api/login', { body: { user: account, password: `guess-${i}` } })).status);
  assert.deepEqual(codes, [401, 401, 401, 401, 429]);
  // The same throttle: an LDAP bind to that account is refused now too, even with its password.
  const bind = await run('ldapwhoami', ['-x', '-H', t.ldapUrl, '-D', account, '-w', 'plain-secret-1']);
  assert.notEqual(bind.code, 0);
  assert.match(bind.stderr, /too many failed/);
});

test('every change needs the CSRF token and a same-origin Origin (403 otherwise, nothing written)', async () => {
  const s = await login(t.adminDN, ADMIN_PASSWORD);
  const session = await call('GET', '/api/session', { cookie: s.cookie });
  assert.equal(session.status, 200);
  assert.equal(session.body.admin, true);
  assert.equal(session.body.csrf, s.csrf);
  const attempts = [
    { cookie: s.cookie },
    { cookie: s.cookie, csrf: 'wrong-token' },
    { cookie: s.cookie, csrf: s.csrf, origin: 'http://evil.example' },
    { cookie: s.cookie, csrf: s.csrf, origin: null },
  ];
  for (const a of attempts) {
    const r = await call('POST', '/api/domains', { ...a, body: { name: 'csrf.test' } });
    assert.equal(r.status, 403, JSON.stringify(a));
  }
  assert.equal(t.app.directory.getByNdn('dc=csrf,dc=test,o=internet'), undefined);
  // A form post (not JSON) is refused even with the token.
  const form = await fetch(`${base}/api/domains`, {
    method: 'POST', headers: { cookie: s.cookie, 'x-csrf-token': s.csrf, origin: base, 'content-type': 'application/x-www-form-urlencoded' }, body: 'name=csrf.test',
  });
  assert.equal(form.status, 415);
  const ok = await call('POST', '/api/domains', { cookie: s.cookie, csrf: s.csrf, body: { name: 'csrf.test' } });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.equal(ok.body.name, 'csrf.test');
  const d = await call('GET', '/api/domains/csrf.test', { cookie: s.cookie });
  assert.equal(d.status, 200);
  assert.ok((d.body.records as string[]).some((r) => /^csrf\.test\.\s+\d+\s+IN\s+MX\s+\d+ mx\.dcmx\.test\.$/.test(r)), JSON.stringify(d.body.records));
  assert.equal(d.body.route, 'local');
  // Logout ends the session.
  assert.equal((await call('POST', '/api/logout', { cookie: s.cookie, csrf: s.csrf })).status, 200);
  assert.equal((await call('GET', '/api/session', { cookie: s.cookie })).status, 401);
});

test('a domain manager sees and changes its own domain only, through the directory policy', async () => {
  const m = await login('boss@x.test', MANAGER_PASSWORD);
  const session = await call('GET', '/api/session', { cookie: m.cookie });
  assert.equal(session.body.admin, false);
  assert.deepEqual(session.body.domains, ['x.test']);
  const list = await call('GET', '/api/domains', { cookie: m.cookie });
  assert.deepEqual((list.body as unknown as { name: string }[]).map((d) => d.name), ['x.test']);
  assert.equal((await call('GET', '/api/domains/x.test', { cookie: m.cookie })).status, 200);
  assert.equal((await call('GET', '/api/domains/y.test', { cookie: m.cookie })).status, 403);
  // Y: refused with and without the token.
  const user = { uid: 'eve', password: 'eve-secret-1' };
  assert.equal((await call('POST', '/api/domains/y.test/users', { cookie: m.cookie, csrf: m.csrf, body: user })).status, 403);
  assert.equal((await call('POST', '/api/domains/y.test/users', { cookie: m.cookie, body: user })).status, 403);
  assert.equal(t.app.directory.getByNdn('uid=eve,ou=people,dc=y,dc=test,o=internet'), undefined);
  // Domains are the administrator's.
  assert.equal((await call('POST', '/api/domains', { cookie: m.cookie, csrf: m.csrf, body: { name: 'mine.test' } })).status, 403);
  assert.equal((await call('POST', '/api/domains/x.test/hold', { cookie: m.cookie, csrf: m.csrf })).status, 403);
  assert.equal((await call('DELETE', '/api/domains/x.test', { cookie: m.cookie, csrf: m.csrf })).status, 403);
  // The queue is the administrator's.
  assert.equal((await call('GET', '/api/queue', { cookie: m.cookie })).status, 403);
  assert.equal((await call('POST', '/api/queue/retry', { cookie: m.cookie, csrf: m.csrf })).status, 403);
  // X: a mailbox, its password, aliases of X only, the catch-all.
  const add = await call('POST', '/api/domains/x.test/users', { cookie: m.cookie, csrf: m.csrf, body: { uid: 'carol', password: 'carol-secret-1' } });
  assert.equal(add.status, 200, JSON.stringify(add.body));
  const carol = 'uid=carol,ou=people,dc=x,dc=test,o=internet';
  const entry = t.app.directory.getByNdn(carol);
  assert.equal(entry?.attrs.mail?.[0], 'carol@x.test');
  assert.equal(entry?.attrs.creatorsName?.[0], MANAGER_DN, 'written as the manager');
  assert.equal((await run('ldapwhoami', ['-x', '-H', t.ldapUrl, '-D', carol, '-w', 'carol-secret-1'])).code, 0);
  assert.equal((await call('POST', '/api/domains/x.test/users/carol/password', { cookie: m.cookie, csrf: m.csrf, body: { password: 'carol-secret-2' } })).status, 200);
  assert.equal((await run('ldapwhoami', ['-x', '-H', t.ldapUrl, '-D', carol, '-w', 'carol-secret-2'])).code, 0);
  const alias = await call('POST', '/api/domains/x.test/users/carol/aliases', { cookie: m.cookie, csrf: m.csrf, body: { aliases: ['info@x.test'] } });
  assert.equal(alias.status, 200, JSON.stringify(alias.body));
  const foreign = await call('POST', '/api/domains/x.test/users/carol/aliases', { cookie: m.cookie, csrf: m.csrf, body: { aliases: ['postmaster@y.test'] } });
  assert.equal(foreign.status, 403);
  assert.deepEqual(t.app.directory.getByNdn(carol)?.attrs.mailAlternateAddress, ['info@x.test']);
  assert.equal((await call('POST', '/api/domains/x.test/catchall', { cookie: m.cookie, csrf: m.csrf, body: { address: 'carol@x.test' } })).status, 200);
  assert.equal((await call('POST', '/api/domains/x.test/catchall', { cookie: m.cookie, csrf: m.csrf, body: { address: 'all@y.test' } })).status, 403);
  assert.deepEqual(t.app.directory.getByNdn('dc=x,dc=test,o=internet')?.attrs.mailDomainCatchallAddress, ['carol@x.test']);
  // The change feed: the manager's domain's changes only.
  const feed = (await call('GET', '/api/changes?limit=200', { cookie: m.cookie })).body as unknown as { dn: string }[];
  assert.ok(feed.length > 0);
  assert.ok(feed.every((c) => /dc=x,dc=test,o=internet$/i.test(c.dn)), JSON.stringify(feed));
  assert.equal((await call('DELETE', '/api/domains/x.test/users/carol', { cookie: m.cookie, csrf: m.csrf })).status, 200);
  assert.equal(t.app.directory.getByNdn(carol), undefined);
});

test('the same policy on the LDAP door: a manager adds below its own ou=people only', async () => {
  const as = ['-x', '-H', t.ldapUrl, '-D', MANAGER_DN, '-w', MANAGER_PASSWORD];
  const own = await run('ldapadd', as, 'dn: uid=dave,ou=people,dc=x,dc=test,o=internet\nobjectClass: inetOrgPerson\nuid: dave\ncn: D\nsn: D\nmail: dave@x.test\n');
  assert.equal(own.code, 0, own.stderr);
  const other = await run('ldapadd', as, 'dn: uid=dave,ou=people,dc=y,dc=test,o=internet\nobjectClass: inetOrgPerson\nuid: dave\ncn: D\nsn: D\nmail: dave@y.test\n');
  assert.equal(ldapResultCode(other), 50, other.stderr);
  const outside = await run('ldapadd', as, 'dn: dc=sub,dc=x,dc=test,o=internet\nobjectClass: domain\ndc: sub\n');
  assert.equal(ldapResultCode(outside), 50, outside.stderr);
  const foreignMail = await run('ldapadd', as, 'dn: uid=mallory,ou=people,dc=x,dc=test,o=internet\nobjectClass: inetOrgPerson\nuid: mallory\ncn: M\nsn: M\nmail: postmaster@y.test\n');
  assert.equal(ldapResultCode(foreignMail), 50, foreignMail.stderr);
  // Its own domain entry: the catch-all only, not its records nor its owners.
  const mx = await run('ldapmodify', as, 'dn: dc=x,dc=test,o=internet\nchangetype: modify\nadd: mXRecord\nmXRecord: 5 evil.example.\n');
  assert.equal(ldapResultCode(mx), 50, mx.stderr);
  const owners = await run('ldapmodify', as, 'dn: dc=y,dc=test,o=internet\nchangetype: modify\nadd: owner\nowner: ' + MANAGER_DN + '\n');
  assert.equal(ldapResultCode(owners), 50, owners.stderr);
  // A manager whose entry is deleted has no session left.
  const m = await login('boss@x.test', MANAGER_PASSWORD);
  assert.equal((await call('GET', '/api/session', { cookie: m.cookie })).status, 200);
  const del = await run('ldapdelete', [...adminArgs(t), MANAGER_DN]);
  assert.equal(del.code, 0, del.stderr);
  assert.equal((await call('GET', '/api/session', { cookie: m.cookie })).status, 401);
});

test('sessions end when idle and at their longest life', () => {
  let now = 1_000_000;
  const s = new Sessions({ idleMs: 60_000, maxAgeMs: 300_000 }, () => now);
  const who = { dn: 'cn=admin,o=internet', ndn: 'cn=admin,o=internet', anonymous: false, admin: true };
  const a = s.create(who);
  assert.notEqual(a.id, a.csrf);
  now += 59_000;
  assert.equal(s.get(a.id)?.id, a.id, 'used within the idle time');
  now += 59_000;
  assert.equal(s.get(a.id)?.id, a.id, 'each use restarts the idle clock');
  now += 61_000;
  assert.equal(s.get(a.id), undefined, 'idle too long');
  const b = s.create(who);
  for (let i = 0; i < 7; i++) {
    now += 50_000;
    s.get(b.id);
  }
  assert.equal(s.get(b.id), undefined, 'older than maxAge, however busy');
  assert.equal(s.get(undefined), undefined);
});

test('the queue through the API: a held domain\'s message listed, shown, held, released, deleted', async () => {
  const a = await login(t.adminDN, ADMIN_PASSWORD);
  const as = { cookie: a.cookie, csrf: a.csrf };
  assert.equal((await call('POST', '/api/domains', { ...as, body: { name: 'held.test' } })).status, 200);
  assert.equal((await call('POST', '/api/domains/held.test/users', { ...as, body: { uid: 'u', password: 'u-secret-1' } })).status, 200);
  assert.equal((await call('POST', '/api/domains/held.test/hold', as)).status, 200);
  assert.equal((await call('GET', '/api/domains/held.test', as)).body.status, 'hold');
  const sw = await swaks(t.app.ports.smtp, { to: 'u@held.test', subject: 'kept for later', body: 'held' });
  assert.equal(sw.code, 0, sw.out);
  const listed = await waitForAsync('the message in the queue', async () => {
    const r = await call('GET', '/api/queue?domain=held.test', as);
    return (r.body as unknown as { id: string; status: string; recipients: { address: string; state: string }[] }[])[0];
  });
  assert.equal(listed.recipients[0].address, 'u@held.test');
  assert.equal(listed.recipients[0].state, 'domain-hold');
  assert.equal((await call('GET', '/api/queue?domain=other.test', as)).body.length, 0);
  assert.equal((await call('GET', '/api/queue?status=bogus', as)).status, 400);
  const shown = await call('GET', `/api/queue/${listed.id}`, as);
  assert.equal(shown.status, 200);
  assert.ok((shown.body.headers as { name: string; value: string }[]).some((f) => /^subject$/i.test(f.name) && f.value === 'kept for later'));
  assert.equal((await call('GET', '/api/queue/NOSUCHID', as)).status, 404);
  assert.equal((await call('GET', '/api/queue/bad%20id', as)).status, 400);
  // Changes need the token here too.
  assert.equal((await call('POST', `/api/queue/${listed.id}/hold`, { cookie: a.cookie })).status, 403);
  assert.equal((await call('POST', `/api/queue/${listed.id}/hold`, as)).status, 200);
  assert.equal((await call('GET', '/api/queue?status=hold', as)).body.length, 1);
  assert.equal((await call('POST', `/api/queue/${listed.id}/retry`, as)).status, 409, 'a held message is released before a retry');
  assert.equal((await call('POST', `/api/queue/${listed.id}/release`, as)).status, 200);
  assert.equal((await call('DELETE', `/api/queue/${listed.id}`, as)).status, 200);
  assert.equal((await call('GET', `/api/queue/${listed.id}`, as)).status, 404);
  assert.equal(t.app.mta.queue.counts().messages, 0);
});
