/**
 * Passwords with the real tools of the trade (issue 9, "the migration trap"):
 * - the hashes dcmx writes are verified by Dovecot (`doveadm pw -t`) and by
 *   the system's crypt(3) called from Perl;
 * - hashes made now by mkpasswd, openssl passwd, slappasswd and doveadm pw,
 *   loaded by the administrator with ldapadd, bind with the user's real
 *   password (ldapwhoami) and never with the hash string itself; the first
 *   bind rehashes them in the configured scheme, through the write path;
 * - the hashes LDAP browsers write ({MD5}, {SMD5}, {SHA384}, {SSHA384},
 *   {CRYPT}$6$), computed as they compute them and set by the administrator
 *   with ldapmodify, bind with the intended password;
 * - an unknown scheme is refused, naming it, over LDAP and by `dcmx ldif import`.
 * Needs: whois (mkpasswd), openssl, slapd (slappasswd), dovecot-core (doveadm), perl, php-cli.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash, pbkdf2Sync, randomBytes } from 'node:crypto';
import { adminArgs, run, runDcmx, startTestAppliance, tempDirs, testEnv, ldapResultCode as resultCode, type TestAppliance } from '../helpers';
import { Passwords } from '../../server/directory/passwords';
import { CHEAP_PASSWORDS } from '../directory/fixture';

const PW = 'Old pass 1';

let t: TestAppliance;
before(async () => {
  // Forty users bind with their hash string: the client is not refused meanwhile.
  t = await startTestAppliance({ DCMX_AUTH_CLIENT_FAILURES: '1000' });
});
after(async () => t.close());

const whoami = (dn: string, pw: string) => run('ldapwhoami', ['-x', '-H', t.ldapUrl, '-D', dn, '-w', pw]);

/** Runs a tool that prints one hash; its output, trimmed. */
async function tool(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  assert.equal(r.code, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
  const out = r.stdout.trim();
  assert.ok(out && !out.includes('\n'), `${cmd}: ${r.stdout}`);
  return out;
}

/** doveadm pw -t: does Dovecot verify `password` against `hash`? */
async function dovecotVerifies(hash: string, password: string): Promise<boolean> {
  const r = await run('doveadm', ['pw', '-t', hash, '-p', password]);
  return r.code === 0 && /\(verified\)/.test(r.stdout + r.stderr);
}

/**
 * crypt(3) of `password` with `setting`, as the system's libxcrypt computes it for
 * another program: Perl's crypt (Python's crypt module is gone from Python 3.13).
 */
async function systemCrypt(password: string, setting: string): Promise<string> {
  const r = await run('perl', ['-e', 'print crypt($ARGV[0], $ARGV[1])', password, setting]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

describe('the hashes dcmx writes verify elsewhere', () => {
  test('the default, {CRYPT}$6$ (SHA-512 crypt), by Dovecot and by the system\'s crypt(3)', async () => {
    const dn = 'uid=dove,o=internet';
    const add = await run('ldapadd', adminArgs(t), `dn: ${dn}\nobjectClass: inetOrgPerson\nuid: dove\ncn: dove\nsn: dove\nuserPassword: ${PW}\n`);
    assert.equal(add.code, 0, add.stderr);
    const r = await run('ldapsearch', [...adminArgs(t), '-LLL', '-o', 'ldif-wrap=no', '-b', dn, '-s', 'base', '(objectClass=*)', 'userPassword']);
    const stored = Buffer.from(/^userPassword:: (.*)$/m.exec(r.stdout)![1], 'base64').toString();
    assert.match(stored, /^\{CRYPT\}\$6\$rounds=1000\$/);
    assert.ok(await dovecotVerifies(stored, PW), `doveadm pw -t ${stored}`);
    assert.ok(!(await dovecotVerifies(stored, 'old pass 1')), 'and Dovecot refuses a wrong password');
    const body = stored.slice('{CRYPT}'.length);
    assert.equal(await systemCrypt(PW, body), body);
  });

  test('Argon2id (DCMX_PASSWORD_SCHEME=ARGON2ID), by Dovecot under its name {ARGON2ID}', async () => {
    const hash = await new Passwords({ ...CHEAP_PASSWORDS, scheme: 'ARGON2ID', argon2: { memory: 4096, time: 2, parallelism: 1 } }).hash(PW);
    assert.match(hash, /^\{ARGON2\}\$argon2id\$v=19\$m=4096,t=2,p=1\$/);
    assert.ok(await dovecotVerifies(hash.replace('{ARGON2}', '{ARGON2ID}'), PW), hash);
  });
});

/** A migration vector: how a tool writes `PW`, as a userPassword value. */
interface Vector {
  label: string;
  make: () => Promise<string>;
}

const crypt = (cmd: string, args: string[]) => async () => `{CRYPT}${await tool(cmd, args)}`;
const asIs = (cmd: string, args: string[]) => () => tool(cmd, args);
const doveadm = (scheme: string) => asIs('doveadm', ['pw', '-s', scheme, '-p', PW]);
const slappasswd = (...args: string[]) => asIs('slappasswd', [...args, '-s', PW]);

const VECTORS: Vector[] = [
  ...['md5crypt', 'sha256crypt', 'sha512crypt', 'bcrypt', 'yescrypt'].map((m) => ({ label: `mkpasswd -m ${m}`, make: crypt('mkpasswd', ['-m', m, PW]) })),
  { label: 'mkpasswd -m sha512crypt -R 20000', make: crypt('mkpasswd', ['-m', 'sha512crypt', '-R', '20000', PW]) },
  { label: 'mkpasswd -m yescrypt -R 7', make: crypt('mkpasswd', ['-m', 'yescrypt', '-R', '7', PW]) },
  ...['-1', '-5', '-6'].map((o) => ({ label: `openssl passwd ${o}`, make: crypt('openssl', ['passwd', o, PW]) })),
  ...['{SSHA}', '{SHA}', '{MD5}', '{SMD5}', '{CRYPT}'].map((h) => ({ label: `slappasswd -h ${h}`, make: slappasswd('-h', h) })),
  { label: "slappasswd -c '$6$rounds=5000$%.16s'", make: slappasswd('-c', '$6$rounds=5000$%.16s') },
  ...['{SHA256}', '{SSHA256}', '{SHA384}', '{SSHA384}', '{SHA512}', '{SSHA512}'].map((h) => ({
    label: `slappasswd pw-sha2 -h ${h}`, make: slappasswd('-o', 'module-load=pw-sha2', '-h', h),
  })),
  { label: 'slappasswd argon2 -h {ARGON2}', make: slappasswd('-o', 'module-load=argon2', '-h', '{ARGON2}') },
  ...['SHA512-CRYPT', 'SHA256-CRYPT', 'MD5-CRYPT', 'BLF-CRYPT', 'CRYPT', 'MD5', 'SSHA', 'SSHA256', 'SSHA512', 'SMD5', 'SHA', 'SHA256',
    'SHA512', 'PLAIN-MD5', 'LDAP-MD5', 'ARGON2I', 'ARGON2ID', 'PBKDF2', 'CLEAR'].map((s) => ({ label: `doveadm pw -s ${s}`, make: doveadm(s) })),
  {
    // OpenLDAP's pw-pbkdf2 (not packaged by Debian) and 389-ds write this form; the key made by node:crypto.
    label: '{PBKDF2-SHA256} in pw-pbkdf2 form',
    make: async () => {
      const ab64 = (b: Buffer) => b.toString('base64').replace(/\+/g, '.').replace(/=+$/, '');
      const salt = randomBytes(16);
      return `{PBKDF2-SHA256}10000$${ab64(salt)}$${ab64(pbkdf2Sync(PW, salt, 10000, 32, 'sha256'))}`;
    },
  },
];

describe('hashes made by other tools, loaded by the administrator, bind with the real password', () => {
  const made: { label: string; dn: string; value: string }[] = [];
  before(async () => {
    for (const [i, v] of VECTORS.entries()) made.push({ label: v.label, dn: `uid=mig${i},o=internet`, value: await v.make() });
    const ldif = made.map((m, i) => `dn: ${m.dn}\nobjectClass: inetOrgPerson\nuid: mig${i}\ncn: mig\nsn: mig\nuserPassword: ${m.value}\n`).join('\n');
    const r = await run('ldapadd', adminArgs(t), ldif);
    assert.equal(r.code, 0, r.stderr);
  });

  for (const [i, v] of VECTORS.entries()) {
    test(v.label, async () => {
      const m = made[i];
      assert.equal(resultCode(await whoami(m.dn, m.value)), 49, `the hash string ${m.value} is not the password`);
      const ok = await whoami(m.dn, PW);
      assert.equal(ok.code, 0, `${m.value}: ${ok.stderr}`);
      assert.equal(resultCode(await whoami(m.dn, PW.toLowerCase())), 49);
    });
  }

  test('the first bind rehashed each of them in the configured scheme, through the write path', async () => {
    const { directory } = t.app;
    for (const m of made) {
      const e = directory.getByNdn(m.dn)!;
      assert.match(e.attrs.userPassword[0], /^\{CRYPT\}\$6\$rounds=1000\$/, m.label);
      // {CLEAR} was hashed when it was written; every other value by its user's first bind.
      const by = m.value.startsWith('{CLEAR}') ? t.adminDN : m.dn;
      assert.equal(e.attrs.modifiersName[0], by, `${m.label}: last modified by ${by}`);
    }
    const r = await run('ldapsearch', [...adminArgs(t), '-LLL', '-b', 'cn=changelog', '-s', 'one', `(&(targetDN=${made[0].dn})(changeType=modify))`, 'changes']);
    assert.match(r.stdout, /^changes::? /m, 'the rehash is in the change log');
    assert.equal((await whoami(made[0].dn, PW)).code, 0);
  });
});

/**
 * The hashes LDAP browsers write when the administrator sets a password:
 * phpLDAPadmin 1.2.6 (`pla_password_hash`, default `md5`) and LDAP Account
 * Manager 8 (`pwd_hash`: SMD5, SHA384, SSHA384, CRYPT-SHA512) compute them
 * in PHP, base64 of the digest followed by the salt; here the same PHP lines
 * run under php-cli, beside the same schemes made by slappasswd, doveadm and
 * openssl. The password holds non-ASCII letters: PHP hashes its UTF-8 bytes.
 */
describe("the LDAP browsers' hashes, set by the administrator with ldapmodify, bind with the intended password", () => {
  const BROWSER_PW = 'Grüße 2024!';
  const php = (code: string) => asIs('php', ['-r', `$pw = $argv[1]; ${code}`, BROWSER_PW]);
  const browserSlappasswd = (...args: string[]) => asIs('slappasswd', [...args, '-s', BROWSER_PW]);
  // LAM's generateSalt: characters of [./0-9A-Za-z]; phpLDAPadmin's random_salt(8) through hex2bin: 4 bytes.
  const lamSalt = "$salt = ''; for ($i = 0; $i < LEN; $i++) $salt .= './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'[random_int(0, 63)];";
  const plaSalt = '$salt = hex2bin(bin2hex(random_bytes(4)));';
  const BROWSER: [string, () => Promise<string>][] = [
    ['{MD5}: phpLDAPadmin md5 (its default)', php("echo sprintf('{MD5}%s', base64_encode(md5($pw, true)));")],
    ['{MD5}: LAM MD5', php("echo '{MD5}' . base64_encode(hex2bin(md5($pw)));")],
    ['{MD5}: slappasswd -h {MD5}', browserSlappasswd('-h', '{MD5}')],
    ['{SMD5}: phpLDAPadmin smd5', php(`${plaSalt} echo sprintf('{SMD5}%s', base64_encode(md5($pw . $salt, true) . $salt));`)],
    ['{SMD5}: LAM SMD5', php(`${lamSalt.replace('LEN', '4')} echo '{SMD5}' . base64_encode(hex2bin(md5($pw . $salt)) . $salt);`)],
    ['{SMD5}: slappasswd -h {SMD5}', browserSlappasswd('-h', '{SMD5}')],
    ['{SMD5}: doveadm pw -s SMD5', asIs('doveadm', ['pw', '-s', 'SMD5', '-p', BROWSER_PW])],
    ['{SHA384}: phpLDAPadmin sha384', php("echo sprintf('{SHA384}%s', base64_encode(hash('sha384', $pw, true)));")],
    ['{SHA384}: LAM SHA384', php("echo '{SHA384}' . base64_encode(hash('sha384', $pw, true));")],
    ['{SHA384}: slappasswd pw-sha2 -h {SHA384}', browserSlappasswd('-o', 'module-load=pw-sha2', '-h', '{SHA384}')],
    ['{SHA384}: openssl dgst -sha384 -binary | base64', async () => {
      const r = await run('bash', ['-c', 'printf %s "$1" | openssl dgst -sha384 -binary | openssl base64 -A', 'sha384', BROWSER_PW]);
      assert.equal(r.code, 0, r.stderr);
      return `{SHA384}${r.stdout.trim()}`;
    }],
    ['{SSHA384}: phpLDAPadmin ssha384', php(`${plaSalt} echo sprintf('{SSHA384}%s', base64_encode(hash('sha384', $pw . $salt, true) . $salt));`)],
    ['{SSHA384}: LAM SSHA384', php(`${lamSalt.replace('LEN', '4')} echo '{SSHA384}' . base64_encode(hash('sha384', $pw . $salt, true) . $salt);`)],
    ['{SSHA384}: slappasswd pw-sha2 -h {SSHA384}', browserSlappasswd('-o', 'module-load=pw-sha2', '-h', '{SSHA384}')],
    ['{CRYPT}$6$: LAM CRYPT-SHA512', php(`${lamSalt.replace('LEN', '16')} echo '{CRYPT}' . crypt($pw, '$6$' . $salt);`)],
    ['{CRYPT}$6$: phpLDAPadmin sha512crypt', php("echo sprintf('{CRYPT}%s', crypt($pw, '$6$' . bin2hex(random_bytes(4))));")],
    ['{CRYPT}$6$: openssl passwd -6', async () => `{CRYPT}${await tool('openssl', ['passwd', '-6', BROWSER_PW])}`],
  ];
  const made: { dn: string; value: string }[] = [];
  before(async () => {
    const ldif = BROWSER.map((_, i) => `dn: uid=browser${i},o=internet\nobjectClass: inetOrgPerson\nuid: browser${i}\ncn: b\nsn: b\nuserPassword: first password ${i}\n`);
    const r = await run('ldapadd', adminArgs(t), ldif.join('\n'));
    assert.equal(r.code, 0, r.stderr);
    for (const [i, [, make]] of BROWSER.entries()) made.push({ dn: `uid=browser${i},o=internet`, value: await make() });
  });

  for (const [i, [label]] of BROWSER.entries()) {
    test(label, async () => {
      const { dn, value } = made[i];
      const scheme = /^\{[^}]+\}/.exec(label)![0];
      assert.ok(value.startsWith(scheme) && (scheme !== '{CRYPT}' || value.startsWith('{CRYPT}$6$')), `${label} made ${value}`);
      // phpLDAPadmin replaces the value; LAM-style clients may delete and add in one modify: both are the administrator's.
      const change = i % 2 === 0 ? `replace: userPassword\nuserPassword: ${value}\n` : `delete: userPassword\n-\nadd: userPassword\nuserPassword: ${value}\n`;
      const m = await run('ldapmodify', adminArgs(t), `dn: ${dn}\nchangetype: modify\n${change}`);
      assert.equal(m.code, 0, m.stderr);
      const e = t.app.directory.getByNdn(dn)!;
      assert.deepEqual(e.attrs.userPassword, [value], 'stored as the administrator gave it, not hashed again');
      assert.equal(resultCode(await whoami(dn, value)), 49, `the hash string ${value} is not the password`);
      assert.equal(resultCode(await whoami(dn, `first password ${i}`)), 49, 'the old password is gone');
      const ok = await whoami(dn, BROWSER_PW);
      assert.equal(ok.code, 0, `${value}: ${ok.stderr}`);
      assert.match(ok.stdout, new RegExp(`^dn:${dn}$`, 'm'));
      assert.equal(resultCode(await whoami(dn, 'grüße 2024!')), 49);
    });
  }
});

describe('an unknown scheme is refused, naming it', () => {
  const UNKNOWN: [string, string][] = [
    ['{NOSUCH}', `{NOSUCH}${PW}`],
    ['$apr1$', ''],
    ['{CRAM-MD5}', ''],
  ];
  before(async () => {
    UNKNOWN[1][1] = `{CRYPT}${await tool('openssl', ['passwd', '-apr1', PW])}`;
    UNKNOWN[2][1] = await tool('doveadm', ['pw', '-s', 'CRAM-MD5', '-p', PW]);
  });

  test('over LDAP: ldapadd by the administrator gets invalidAttributeSyntax (21)', async () => {
    for (const [name, value] of UNKNOWN) {
      const r = await run('ldapadd', adminArgs(t), `dn: uid=unknown,o=internet\nobjectClass: inetOrgPerson\nuid: unknown\ncn: u\nsn: u\nuserPassword: ${value}\n`);
      assert.equal(resultCode(r), 21, `${value}: ${r.stderr}`);
      assert.ok(r.stderr.includes(name), `${name} named in: ${r.stderr}`);
    }
  });

  const dirs = tempDirs('dcmx-pwimport-');
  test('dcmx ldif import: the record fails with its line, the scheme named; the others are imported', async () => {
    const dataDir = dirs();
    const file = path.join(dirs(), 'users.ldif');
    const sha = createHash('sha1').update(PW).digest('base64');
    fs.writeFileSync(file, [
      'dn: uid=good,o=internet\nobjectClass: inetOrgPerson\nuid: good\ncn: g\nsn: g\nuserPassword: {SHA}' + sha + '\n',
      `dn: uid=bad,o=internet\nobjectClass: inetOrgPerson\nuid: bad\ncn: b\nsn: b\nuserPassword: ${UNKNOWN[1][1]}\n`,
      `dn: uid=also,o=internet\nobjectClass: inetOrgPerson\nuid: also\ncn: a\nsn: a\nuserPassword: {CRYPT}${await tool('mkpasswd', ['-m', 'yescrypt', PW])}\n`,
    ].join('\n'));
    const env = testEnv(dataDir);
    // The administrator and suffix exist first (as after the appliance's first boot).
    assert.equal((await runDcmx(env, ['domain', 'list'])).code, 0);
    let r = await runDcmx(env, ['ldif', 'import', file]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /line 8/);
    assert.ok(r.stderr.includes('$apr1$'), r.stderr);
    r = await runDcmx(env, ['ldif', 'import', '--continue', '--skip-existing', file]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /1 failed/);
    const e = await runDcmx(env, ['ldif', 'export']);
    assert.match(e.stdout, /^dn: uid=good,o=internet$/m);
    assert.match(e.stdout, /^dn: uid=also,o=internet$/m);
    assert.doesNotMatch(e.stdout, /uid=bad/);
  });
});
