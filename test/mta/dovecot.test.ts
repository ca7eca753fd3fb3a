/**
 * IMAP users: a real Dovecot (dovecot-imapd, dovecot-ldap) reads the Maildirs
 * the spawned appliance delivers into, as the README's recipe sets it up:
 * - dcmx runs as root with DCMX_MAIL_GROUP=mail; Dovecot's mail processes run
 *   as the system user `mail` (in that group), never as root;
 * - Dovecot's userdb takes each mailbox's path from the directory
 *   (`mailMessageStore`), odd local parts (percent-encoded on disk) included;
 * - both ways of checking passwords: auth_bind (any scheme, PBKDF2-SHA512
 *   included) and the password lookup with the auth cache, as a replication
 *   identity that reads userPassword; an ordinary user still reads no one
 *   else's hash;
 * - the catch-all mailbox `domain add` names has an entry, which logs in once
 *   the administrator gives it a password (ldappasswd).
 * A message sent with swaks is fetched over IMAP with the directory password
 * and compared with what was sent.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ADMIN_PASSWORD, ldapaddAt, ldapResultCode, run, runDcmx, startSpawned, stopChild, tempDirs, testEnv, type SpawnedAppliance } from '../helpers';
import { PROVISION_DOMAIN_OID } from '../../schema/definitions/dcmx';
import { mailboxPath } from '../../server/directory/mailbox';
import { GROUP_DIR_MODE, GROUP_FILE_MODE } from '../../server/mta/maildir';
import { groupMembers, imapFetchAll, startDovecot, type DovecotAuth } from '../fixtures/dovecot';
import { swaks, waitFor } from './fixture';

const SUFFIX = 'o=internet';
const ADMIN = `cn=admin,${SUFFIX}`;
const DOMAIN = 'example.org';
const PEOPLE = `ou=people,dc=example,dc=org,${SUFFIX}`;
/** The system user and group Dovecot's mail processes run as (Debian's base-passwd has both, uid and gid 8). */
const MAIL_USER = 'mail';
const MAIL_GID = 8;
/** Dovecot's identity for the password lookup: a replication identity (DCMX_REPLICATOR_DNS). */
const LOOKUP_DN = `uid=dovecot,ou=services,${SUFFIX}`;
const LOOKUP_PW = 'dovecot-lookup-secret';
/** Dovecot's identity for auth_bind: an ordinary entry (it finds users' DNs; it reads no password). */
const SEARCH_DN = `uid=imap-search,ou=services,${SUFFIX}`;
const SEARCH_PW = 'imap-search-secret';

const USERS = [
  { uid: 'alice', mail: `alice@${DOMAIN}`, password: 'alice-imap-pw-1' },
  // "'" is kept in an address but percent-encoded on disk: o%27neil.
  { uid: 'oneil', mail: `o'neil@${DOMAIN}`, password: 'oneil-imap-pw-1' },
];
const CATCHALL = `catchall@${DOMAIN}`;
const CATCHALL_DN = `uid=catchall,${PEOPLE}`;
const CATCHALL_PW = 'catchall-imap-pw-1';
/** An address of the domain with no entry: its mail goes to the catch-all. */
const UNKNOWN = `nobody-here@${DOMAIN}`;

const tmp = tempDirs('dcmx-dovecot-data-');

const ldapArgs = (a: SpawnedAppliance, dn = ADMIN, pw = ADMIN_PASSWORD) => ['-x', '-H', `ldap://127.0.0.1:${a.ports.ldap}`, '-D', dn, '-w', pw];

function servicesLdif(): string {
  return [
    `dn: ou=services,${SUFFIX}`, 'objectClass: organizationalUnit', 'ou: services', '',
    `dn: ${LOOKUP_DN}`, 'objectClass: account', 'objectClass: simpleSecurityObject', 'uid: dovecot', `userPassword: ${LOOKUP_PW}`, '',
    `dn: ${SEARCH_DN}`, 'objectClass: account', 'objectClass: simpleSecurityObject', 'uid: imap-search', `userPassword: ${SEARCH_PW}`, '',
  ].join('\n');
}

function userLdif(u: { uid: string; mail: string; password: string }): string {
  return [
    `dn: uid=${u.uid},${PEOPLE}`, 'objectClass: inetOrgPerson', 'objectClass: inetMailUser',
    `uid: ${u.uid}`, `cn: ${u.uid}`, `sn: ${u.uid}`, `mail: ${u.mail}`, `userPassword: ${u.password}`, '',
  ].join('\n');
}

/** Starts the appliance as root with DCMX_MAIL_GROUP, provisions example.org over LDAP and adds the services' and users' entries. */
async function applianceWithUsers(extra: Record<string, string> = {}): Promise<{ a: SpawnedAppliance; dataDir: string }> {
  const dataDir = tmp();
  const a = await startSpawned(dataDir, { DCMX_MAIL_GROUP: MAIL_USER, DCMX_REPLICATOR_DNS: LOOKUP_DN, ...extra });
  const x = await run('ldapexop', [...ldapArgs(a), `${PROVISION_DOMAIN_OID}:${DOMAIN}`]);
  assert.equal(x.code, 0, x.stderr);
  const r = await ldapaddAt(a.ports.ldap, [servicesLdif(), ...USERS.map(userLdif)].join('\n'));
  assert.equal(r.code, 0, r.stderr);
  return { a, dataDir };
}

/** Sends one message with swaks; returns its unique body line. */
async function send(a: SpawnedAppliance, to: string, tag: string): Promise<string> {
  const body = `dovecot test ${tag} ${Math.random().toString(36).slice(2)}`;
  const s = await swaks(a.ports.smtp, { to, subject: `for ${to}`, body });
  assert.equal(s.code, 0, s.out);
  return body;
}

/** Waits until `address`'s Maildir (as delivery names it) holds `count` messages in new/ or cur/. */
async function delivered(dataDir: string, address: string, count: number): Promise<string> {
  const box = mailboxPath(dataDir, address);
  await waitFor(`${count} message(s) in ${box}`, () => ['new', 'cur'].flatMap((d) => {
    try {
      return fs.readdirSync(path.join(box, d));
    } catch {
      return [];
    }
  }).length >= count, 15_000);
  return box;
}

/** One attribute's values of one entry, read over LDAP as `bind` (ldapsearch -LLL, unwrapped). */
async function attrValues(a: SpawnedAppliance, dn: string, attr: string, bind: string[] = ldapArgs(a)): Promise<string[]> {
  const r = await run('ldapsearch', [...bind, '-LLL', '-o', 'ldif-wrap=no', '-b', dn, '-s', 'base', '(objectClass=*)', attr]);
  assert.equal(r.code, 0, r.stderr);
  const out: string[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = new RegExp(`^${attr}(:{1,2}) (.*)$`, 'i').exec(line);
    if (m) out.push(m[1] === '::' ? Buffer.from(m[2], 'base64').toString('utf8') : m[2]);
  }
  return out;
}

/**
 * Logs `user` in over IMAP and checks that INBOX holds exactly the messages
 * whose bodies are `bodies`, the copies dcmx delivered for envelope recipient `rcpt`.
 */
async function fetchesBodies(port: number, user: string, password: string, bodies: string[], rcpt = user): Promise<void> {
  const got = await imapFetchAll(port, user, password);
  assert.equal(got.login, 'OK', `${user} logs in over IMAP: ${JSON.stringify(got)}`);
  assert.equal(got.exists, bodies.length, `${user}'s INBOX holds ${bodies.length} message(s)`);
  for (const body of bodies) {
    const m = got.messages!.find((t) => t.includes(body));
    assert.ok(m, `${user} fetched the message with "${body}": ${JSON.stringify(got.messages)}`);
    assert.match(m, new RegExp(`^Delivered-To: ${rcpt.replace(/[.+']/g, '\\$&')}$`, 'mi'), 'the copy dcmx delivered');
  }
}

describe('Dovecot on the Maildirs of dcmx running as root (DCMX_MAIL_GROUP=mail)', () => {
  let a: SpawnedAppliance;
  let dataDir: string;
  const sent = new Map<string, string[]>();

  before(async () => {
    ({ a, dataDir } = await applianceWithUsers());
    for (const u of USERS) sent.set(u.mail, [await send(a, u.mail, u.uid)]);
    // An unknown address of the domain goes to its catch-all mailbox.
    sent.set(CATCHALL, [await send(a, UNKNOWN, 'catch-all')]);
    for (const [address, bodies] of sent) await delivered(dataDir, address, bodies.length);
  });
  after(async () => {
    if (a) await stopChild(a.child);
  });

  test('the appliance runs as root, and the Maildirs are shared with the mail group: directories 2770, messages 0640', () => {
    assert.equal(process.getuid!(), 0, 'this test runs as root, as the quick start does');
    const top = fs.statSync(dataDir);
    assert.equal(top.gid, MAIL_GID, 'the data dir belongs to the mail group');
    assert.equal(top.mode & 0o7777, 0o710, 'the data dir: the group may pass through it, nothing more');
    const root = fs.statSync(path.join(dataDir, 'mail'));
    assert.deepEqual([root.gid, root.mode & 0o7777], [MAIL_GID, GROUP_DIR_MODE], 'the mail root');
    for (const address of sent.keys()) {
      const box = mailboxPath(dataDir, address);
      for (const dir of [path.dirname(box), box, ...['tmp', 'new', 'cur'].map((d) => path.join(box, d))]) {
        const st = fs.statSync(dir);
        assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [0, MAIL_GID, GROUP_DIR_MODE], `${dir}: root's, the mail group's, 2770`);
      }
      for (const name of fs.readdirSync(path.join(box, 'new'))) {
        const st = fs.statSync(path.join(box, 'new', name));
        assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [0, MAIL_GID, GROUP_FILE_MODE], `${name}: root's, readable by the mail group`);
      }
    }
    // The store and its hashes stay root's alone.
    assert.equal(fs.statSync(path.join(dataDir, 'dcmx.sqlite')).mode & 0o077, 0, 'the store is not shared');
  });

  test('mailMessageStore: each mailbox\'s Maildir as delivery names it, odd local parts included; computed, never written', async (ctx) => {
    for (const u of USERS) {
      const [store] = await attrValues(a, `uid=${u.uid},${PEOPLE}`, 'mailMessageStore');
      assert.equal(store, mailboxPath(dataDir, u.mail), `${u.mail}'s mailMessageStore`);
      assert.ok(fs.existsSync(path.join(store, 'new')), `${store} is the Maildir mail went into`);
      ctx.diagnostic(`${u.mail}: ${store}`);
    }
    const [odd] = await attrValues(a, `uid=oneil,${PEOPLE}`, 'mailMessageStore');
    assert.ok(odd.endsWith(`/mail/${DOMAIN}/o%27neil`), `the encoded name on disk: ${odd}`);
    // A user reads it (Dovecot's auth_bind identity is an ordinary entry), filters see it; '*' keeps to stored attributes.
    const asSearch = ldapArgs(a, SEARCH_DN, SEARCH_PW);
    assert.deepEqual(await attrValues(a, `uid=oneil,${PEOPLE}`, 'mailMessageStore', asSearch), [odd]);
    const star = await run('ldapsearch', [...asSearch, '-LLL', '-o', 'ldif-wrap=no', '-b', PEOPLE, `(mailMessageStore=${odd})`, '*']);
    assert.equal(star.code, 0, star.stderr);
    assert.match(star.stdout, /^dn: uid=oneil,/m, 'a filter on mailMessageStore finds the entry');
    assert.match(star.stdout, /^mail: o'neil@/m);
    assert.doesNotMatch(star.stdout, /^mailMessageStore: /m, "'*' returns stored attributes only");
    // Written, it is refused: the path is delivery's, not the entry's.
    const w = await run('ldapmodify', ldapArgs(a), `dn: uid=alice,${PEOPLE}\nchangetype: modify\nreplace: mailMessageStore\nmailMessageStore: /tmp/elsewhere\n`);
    assert.equal(ldapResultCode(w), 19, `constraintViolation: ${w.stderr}`);
    assert.match(w.stderr, /computed/);
    // The catch-all's entry: created with the domain, its Maildir published, no password yet.
    assert.deepEqual(await attrValues(a, CATCHALL_DN, 'mail'), [CATCHALL]);
    assert.deepEqual(await attrValues(a, CATCHALL_DN, 'mailMessageStore'), [mailboxPath(dataDir, CATCHALL)]);
    assert.deepEqual(await attrValues(a, CATCHALL_DN, 'userPassword'), [], 'no password until the administrator sets one');
  });

  /** Runs Dovecot in `auth` mode over the appliance, and `body` with its IMAP port; stops it after, leaving no process behind. */
  async function withDovecot(auth: DovecotAuth, body: (port: number) => Promise<void>, ctx: { diagnostic(s: string): void }): Promise<void> {
    const dovecot = await startDovecot({
      ldapPort: a.ports.ldap, base: SUFFIX, auth, mailUser: MAIL_USER, mailGroup: MAIL_USER,
      ...(auth === 'bind' ? { serviceDn: SEARCH_DN, servicePassword: SEARCH_PW } : { serviceDn: LOOKUP_DN, servicePassword: LOOKUP_PW }),
    });
    try {
      await body(dovecot.port);
      assert.doesNotMatch(dovecot.log(), /Permission denied|mail processes as root|Error: .*(mkdir|open)/i, 'Dovecot logged no permission problem');
    } catch (e) {
      ctx.diagnostic(`dovecot's log:\n${dovecot.log()}`);
      throw e;
    } finally {
      await dovecot.stop();
      assert.deepEqual(groupMembers(dovecot.pid!), [], 'no Dovecot process left');
    }
  }

  test('auth_bind = yes: users log in with their directory password and fetch what swaks sent; the catch-all once it has a password', async (ctx) => {
    await withDovecot('bind', async (port) => {
      for (const u of USERS) await fetchesBodies(port, u.mail, u.password, sent.get(u.mail)!);
      const wrong = await imapFetchAll(port, USERS[0].mail, 'not-the-password');
      assert.match(wrong.login, /^NO/, 'a wrong password is refused');
      const none = await imapFetchAll(port, CATCHALL, CATCHALL_PW);
      assert.match(none.login, /^NO/, 'the catch-all has no login before the administrator gives it a password');
      const set = await run('ldappasswd', [...ldapArgs(a), '-s', CATCHALL_PW, CATCHALL_DN]);
      assert.equal(set.code, 0, set.stderr);
      await fetchesBodies(port, CATCHALL, CATCHALL_PW, sent.get(CATCHALL)!, UNKNOWN);
    }, ctx);
  });

  test('password lookup (pass_attrs userPassword, auth cache) as a replication identity; an ordinary user still reads no one else\'s hash', async (ctx) => {
    // What the lookup identity reads, and what a user reads of another.
    const [hash] = await attrValues(a, `uid=alice,${PEOPLE}`, 'userPassword', ldapArgs(a, LOOKUP_DN, LOOKUP_PW));
    assert.match(hash, /^\{CRYPT\}\$6\$/, 'DCMX_PASSWORD_SCHEME SHA512-CRYPT: a hash Dovecot verifies');
    assert.deepEqual(await attrValues(a, `uid=alice,${PEOPLE}`, 'userPassword', ldapArgs(a, `uid=oneil,${PEOPLE}`, USERS[1].password)), [],
      "o'neil does not read alice's hash");
    assert.deepEqual(await attrValues(a, `uid=alice,${PEOPLE}`, 'userPassword', ldapArgs(a, SEARCH_DN, SEARCH_PW)), [],
      'nor does the auth_bind identity');
    await withDovecot('lookup', async (port) => {
      for (const u of USERS) await fetchesBodies(port, u.mail, u.password, sent.get(u.mail)!);
      // Twice: the second login is answered from the auth cache.
      await fetchesBodies(port, USERS[0].mail, USERS[0].password, sent.get(USERS[0].mail)!);
      const wrong = await imapFetchAll(port, USERS[0].mail, 'not-the-password');
      assert.match(wrong.login, /^NO/, 'a wrong password is refused');
    }, ctx);
  });

  test('dcmx verify: the Maildirs Dovecot has read, its index files beside tmp/new/cur, are whole', async () => {
    const box = mailboxPath(dataDir, USERS[0].mail);
    assert.ok(fs.readdirSync(box).some((f) => f.startsWith('dovecot')), `Dovecot's files in ${box}: ${fs.readdirSync(box).join(' ')}`);
    const r = await runDcmx(testEnv(dataDir, { DCMX_MAIL_GROUP: MAIL_USER }), ['verify']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^ok: data dir .* 3 mailboxes with \d+ messages$/m);
  });
});

describe('DCMX_PASSWORD_SCHEME=PBKDF2-SHA512: Dovecot logs users in with auth_bind only', () => {
  let a: SpawnedAppliance;
  let dataDir: string;
  let body: string;
  const [alice] = USERS;

  before(async () => {
    ({ a, dataDir } = await applianceWithUsers({ DCMX_PASSWORD_SCHEME: 'PBKDF2-SHA512' }));
    body = await send(a, alice.mail, 'pbkdf2');
    await delivered(dataDir, alice.mail, 1);
  });
  after(async () => {
    if (a) await stopChild(a.child);
  });

  test('auth_bind fetches the message; the password lookup cannot verify {PBKDF2-SHA512} and refuses', async (ctx) => {
    const [hash] = await attrValues(a, `uid=alice,${PEOPLE}`, 'userPassword', ldapArgs(a, LOOKUP_DN, LOOKUP_PW));
    assert.match(hash, /^\{PBKDF2-SHA512\}/);
    for (const auth of ['bind', 'lookup'] as const) {
      const dovecot = await startDovecot({
        ldapPort: a.ports.ldap, base: SUFFIX, auth, mailUser: MAIL_USER, mailGroup: MAIL_USER,
        ...(auth === 'bind' ? { serviceDn: SEARCH_DN, servicePassword: SEARCH_PW } : { serviceDn: LOOKUP_DN, servicePassword: LOOKUP_PW }),
      });
      try {
        if (auth === 'bind') await fetchesBodies(dovecot.port, alice.mail, alice.password, [body]);
        else {
          const r = await imapFetchAll(dovecot.port, alice.mail, alice.password);
          assert.match(r.login, /^NO/, 'the lookup mode cannot log this user in');
          await waitFor('Dovecot logs the unknown scheme', () => /unknown scheme|PBKDF2-SHA512/i.test(dovecot.log()), 5_000);
        }
      } catch (e) {
        ctx.diagnostic(`dovecot (${auth}) log:\n${dovecot.log()}`);
        throw e;
      } finally {
        await dovecot.stop();
      }
    }
  });
});
