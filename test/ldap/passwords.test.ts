/**
 * Passwords and who made the first entries: ldappasswd without -s gets a
 * generated password (RFC 3062 §2 genPasswd); a user cannot delete its own
 * userPassword (the admin can); the entries of the first boot name the
 * administrator in creatorsName/modifiersName.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { adminArgs, run, startTestAppliance, ldapResultCode as resultCode, type TestAppliance } from '../helpers';
import { memoryDirectory } from '../directory/fixture';
import { createHash, randomBytes } from 'node:crypto';
import { indexRows } from '../../server/directory/entry';

const USER = 'uid=pat,o=internet';

let t: TestAppliance;
before(async () => {
  t = await startTestAppliance();
  const r = await run('ldapadd', adminArgs(t), `dn: ${USER}\nobjectClass: inetOrgPerson\nuid: pat\ncn: Pat\nsn: Pat\nuserPassword: pat-pw\n`);
  assert.equal(r.code, 0, r.stderr);
});
after(async () => {
  await t.close();
});


const as = (dn: string, pw: string) => ['-x', '-H', t.ldapUrl, '-D', dn, '-w', pw];
const whoami = (dn: string, pw: string) => run('ldapwhoami', as(dn, pw));

describe('Password Modify without newPasswd (RFC 3062 §2)', () => {
  test('ldappasswd without -s sets a generated password and prints it', async () => {
    const r = await run('ldappasswd', as(USER, 'pat-pw'));
    assert.equal(r.code, 0, r.stderr);
    const m = /^New password: (\S+)$/m.exec(r.stdout);
    assert.ok(m, r.stdout);
    assert.ok(m[1].length >= 12, 'a long enough password');
    assert.equal((await whoami(USER, m[1])).code, 0, 'the generated password binds');
    assert.equal(resultCode(await whoami(USER, 'pat-pw')), 49, 'the old one no longer does');
    // The admin resets someone else's password the same way.
    const a = await run('ldappasswd', [...adminArgs(t), USER]);
    assert.equal(a.code, 0, a.stderr);
    const g = /^New password: (\S+)$/m.exec(a.stdout)!;
    assert.notEqual(g[1], m[1]);
    const back = await run('ldappasswd', [...as(USER, g[1]), '-s', 'pat-pw']);
    assert.equal(back.code, 0, back.stderr);
  });
});

describe('self-service cannot remove the password', () => {
  test('delete: userPassword by the user is refused (50), replace and add+delete are allowed', async () => {
    const mod = (auth: string[], ldif: string) => run('ldapmodify', auth, `dn: ${USER}\nchangetype: modify\n${ldif}`);
    let r = await mod(as(USER, 'pat-pw'), 'delete: userPassword\n');
    assert.equal(resultCode(r), 50, r.stderr);
    r = await mod(as(USER, 'pat-pw'), 'replace: userPassword\n');
    assert.equal(resultCode(r), 50, 'replace with no values removes it too');
    assert.equal((await whoami(USER, 'pat-pw')).code, 0, 'still able to bind');
    r = await mod(as(USER, 'pat-pw'), 'replace: userPassword\nuserPassword: pat-pw2\n');
    assert.equal(r.code, 0, r.stderr);
    const search = await run('ldapsearch', [...as(USER, 'pat-pw2'), '-LLL', '-o', 'ldif-wrap=no', '-b', USER, '-s', 'base', 'userPassword']);
    const hash = Buffer.from(/^userPassword:: (.*)$/m.exec(search.stdout)![1], 'base64').toString();
    r = await mod(as(USER, 'pat-pw2'), `delete: userPassword\nuserPassword: ${hash}\n-\nadd: userPassword\nuserPassword: pat-pw\n`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await whoami(USER, 'pat-pw')).code, 0);
    r = await mod(adminArgs(t), 'delete: userPassword\n');
    assert.equal(r.code, 0, 'the admin may remove it');
    assert.equal(resultCode(await whoami(USER, 'pat-pw')), 49);
  });
});

describe('first boot', () => {
  test('the suffix and the admin entry name the administrator as creator and modifier', async () => {
    const r = await run('ldapsearch', [...adminArgs(t), '-LLL', '-b', 'o=internet', '-s', 'base', '(objectClass=*)', 'creatorsName', 'modifiersName']);
    assert.match(r.stdout, /^creatorsName: cn=admin,o=internet$/m, r.stdout);
    assert.match(r.stdout, /^modifiersName: cn=admin,o=internet$/m);
    const a = await run('ldapsearch', [...adminArgs(t), '-LLL', '-b', t.adminDN, '-s', 'base', '(objectClass=*)', 'creatorsName', 'modifiersName']);
    assert.match(a.stdout, /^creatorsName: cn=admin,o=internet$/m, a.stdout);
    assert.match(a.stdout, /^modifiersName: cn=admin,o=internet$/m);
  });

  test('bootstrap repairs an empty creatorsName left by earlier versions', async () => {
    const { dir } = await memoryDirectory();
    const admin = dir.getByNdn(dir.adminNdn)!;
    dir.store.updateAttrs(admin.id, { ...admin.attrs, creatorsName: [''], modifiersName: [''] }, []);
    await dir.bootstrap({ kind: 'configured', password: 'secret-admin' });
    const fixed = dir.getByNdn(dir.adminNdn)!;
    assert.deepEqual(fixed.attrs.creatorsName, ['cn=admin,o=internet']);
    assert.deepEqual(fixed.attrs.modifiersName, ['cn=admin,o=internet']);
    assert.deepEqual(dir.getByNdn(dir.suffixNdn)!.attrs.creatorsName, ['cn=admin,o=internet']);
  });
});

// ---------------------------------------------------------------- who may store what (issue 9: passwords)

const KIM = 'uid=kim,o=internet';
const LEE = 'uid=lee,o=internet';

/** The userPassword values of `dn`, read by the administrator. */
async function storedPasswords(dn: string): Promise<string[]> {
  const r = await run('ldapsearch', [...adminArgs(t), '-LLL', '-o', 'ldif-wrap=no', '-b', dn, '-s', 'base', '(objectClass=*)', 'userPassword']);
  assert.equal(r.code, 0, r.stderr);
  return [...r.stdout.matchAll(/^userPassword(::?) (.*)$/gm)].map((m) => (m[1] === '::' ? Buffer.from(m[2], 'base64').toString() : m[2]));
}

const modifyAs = (auth: string[], dn: string, ldif: string) => run('ldapmodify', auth, `dn: ${dn}\nchangetype: modify\n${ldif}`);

/** A {PBKDF2-SHA512} value with `iterations` (its key is random: no password matches it). */
function pbkdf2Value(iterations: number): string {
  const ab64 = (b: Buffer) => b.toString('base64').replace(/\+/g, '.').replace(/=+$/, '');
  return `{PBKDF2-SHA512}${iterations}$${ab64(randomBytes(16))}$${ab64(randomBytes(64))}`;
}

describe('a user gives the password, the server hashes it', () => {
  before(async () => {
    const r = await run('ldapadd', adminArgs(t), [KIM, LEE].map((dn) => {
      const uid = /^uid=(\w+)/.exec(dn)![1];
      return `dn: ${dn}\nobjectClass: inetOrgPerson\nuid: ${uid}\ncn: ${uid}\nsn: ${uid}\nuserPassword: ${uid}-pw\n`;
    }).join('\n'));
    assert.equal(r.code, 0, r.stderr);
  });

  test('clear text in, the configured hash out: {CRYPT}$6$ (SHA-512 crypt)', async () => {
    const r = await modifyAs(as(KIM, 'kim-pw'), KIM, 'replace: userPassword\nuserPassword: kim-pw2\n');
    assert.equal(r.code, 0, r.stderr);
    const [v, ...more] = await storedPasswords(KIM);
    assert.deepEqual(more, []);
    assert.match(v, /^\{CRYPT\}\$6\$rounds=1000\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/);
    assert.equal((await whoami(KIM, 'kim-pw2')).code, 0);
    assert.equal(resultCode(await whoami(KIM, v)), 49, 'the hash is not a password');
  });

  test('a user cannot store a pre-hashed value, in any scheme (50)', async () => {
    const ssha = `{SSHA}${Buffer.concat([createHash('sha1').update('weak').update('salt').digest(), Buffer.from('salt')]).toString('base64')}`;
    for (const value of [
      pbkdf2Value(10_000_000), '{CLEARTEXT}weak', `{SHA}${createHash('sha1').update('weak').digest('base64')}`,
      `{MD5}${createHash('md5').update('weak').digest('base64')}`, ssha, '{NOSUCH}weak',
    ]) {
      const r = await modifyAs(as(KIM, 'kim-pw2'), KIM, `replace: userPassword\nuserPassword: ${value}\n`);
      assert.equal(resultCode(r), 50, `${value}: ${r.stderr}`);
      assert.match(r.stderr, /administrator/);
    }
    assert.equal((await whoami(KIM, 'kim-pw2')).code, 0, 'the password is unchanged');
  });

  test('one password value per entry: a user cannot add a second one (19)', async () => {
    let r = await modifyAs(as(KIM, 'kim-pw2'), KIM, 'add: userPassword\nuserPassword: second-pw\n');
    assert.equal(resultCode(r), 19, r.stderr);
    r = await modifyAs(as(KIM, 'kim-pw2'), KIM, 'replace: userPassword\nuserPassword: one-pw\nuserPassword: two-pw\n');
    assert.equal(resultCode(r), 19, r.stderr);
    assert.equal((await storedPasswords(KIM)).length, 1);
    assert.equal(resultCode(await whoami(KIM, 'second-pw')), 49);
  });

  test('the administrator may store several values, pre-hashed ones among them', async () => {
    const ssha = `{SSHA}${Buffer.concat([createHash('sha1').update('old-kim').update('NaCl').digest(), Buffer.from('NaCl')]).toString('base64')}`;
    const r = await modifyAs(adminArgs(t), KIM, `replace: userPassword\nuserPassword: ${ssha}\nuserPassword: kim-pw3\n`);
    assert.equal(r.code, 0, r.stderr);
    const stored = await storedPasswords(KIM);
    assert.equal(stored.length, 2);
    assert.ok(stored.includes(ssha), 'the pre-hashed value is stored as given');
    assert.equal((await whoami(KIM, 'old-kim')).code, 0);
    assert.equal((await whoami(KIM, 'kim-pw3')).code, 0);
  });

  test('pre-hashed values over the work caps are refused on write (19)', async () => {
    const salt = 'abcdefghijklmnop';
    for (const value of [
      pbkdf2Value(10_000_000),
      `{CRYPT}$6$rounds=5000000$${salt}$${'a'.repeat(86)}`,
      `{CRYPT}$2b$14$${'a'.repeat(53)}`,
      `{ARGON2}$argon2id$v=19$m=1048576,t=3,p=1$${Buffer.from(salt).toString('base64').replace(/=+$/, '')}$${'A'.repeat(43)}`,
    ]) {
      const r = await modifyAs(adminArgs(t), LEE, `replace: userPassword\nuserPassword: ${value}\n`);
      assert.equal(resultCode(r), 19, `${value}: ${r.stderr}`);
      assert.match(r.stderr, /cap/);
    }
    assert.equal((await whoami(LEE, 'lee-pw')).code, 0);
  });

  test('a stored value over the caps (written before them) fails at once, without being computed', async () => {
    const dir = t.app.directory;
    const e = dir.getByNdn(LEE)!;
    const planted = [pbkdf2Value(9_999_999), pbkdf2Value(9_999_999)];
    const put = (attrs: Record<string, string[]>) => dir.store.updateAttrs(e.id, attrs, indexRows(dir.schema, attrs, dir.store.indexedAttributes));
    put({ ...e.attrs, userPassword: planted });
    try {
      // The process's figures (GET /stats): the bind is checked by whichever serving thread took the connection.
      const before = (await t.app.stats()).passwords;
      assert.equal(resultCode(await whoami(LEE, 'lee-pw')), 49);
      const after = (await t.app.stats()).passwords;
      assert.equal(after.overCap, before.overCap + 2, 'both values were judged over the cap');
      assert.equal(after.verified['pbkdf2-sha512'] ?? 0, before.verified['pbkdf2-sha512'] ?? 0, 'no PBKDF2 was computed');
      assert.equal(after.verified['sha512-crypt'], (before.verified['sha512-crypt'] ?? 0) + 1, 'the failure cost one check of the configured scheme');
    } finally {
      put(e.attrs);
    }
  });

  test('an unknown {SCHEME} is refused with invalidAttributeSyntax (21) naming it, never hashed as clear text', async () => {
    for (const value of ['{NOSUCH}secret', '{CRYPT}$7$CU..../....abcdefgh$' + 'a'.repeat(43), '{SHA512-CRYPT}$1$abcdefgh$' + 'a'.repeat(22)]) {
      const scheme = /^\{([^}]+)\}/.exec(value)![1];
      const r = await modifyAs(adminArgs(t), LEE, `replace: userPassword\nuserPassword: ${value}\n`);
      assert.equal(resultCode(r), 21, `${value}: ${r.stderr}`);
      assert.ok(r.stderr.includes(`{${scheme}}`), r.stderr);
      const uid = `x-${scheme.toLowerCase()}`;
      const add = await run('ldapadd', adminArgs(t), `dn: uid=${uid},o=internet\nobjectClass: inetOrgPerson\nuid: ${uid}\ncn: x\nsn: x\nuserPassword: ${value}\n`);
      assert.equal(resultCode(add), 21, add.stderr);
      assert.equal(resultCode(await whoami(LEE, value)), 49, 'the literal value is no password');
    }
  });

  test('Password Modify hashes what it is given, even a {SCHEME}-looking password from the administrator', async () => {
    const r = await run('ldappasswd', [...adminArgs(t), '-s', '{SSHA}not-a-hash', LEE]);
    assert.equal(r.code, 0, r.stderr);
    const [v] = await storedPasswords(LEE);
    assert.match(v, /^\{CRYPT\}\$6\$/);
    assert.equal((await whoami(LEE, '{SSHA}not-a-hash')).code, 0);
    assert.equal((await run('ldappasswd', [...as(LEE, '{SSHA}not-a-hash'), '-s', 'lee-pw'])).code, 0);
  });

  test('Password Modify: a user cannot test another user\'s password through oldPasswd (50 either way)', async () => {
    for (const guess of ['lee-pw', 'wrong-guess']) {
      const r = await run('ldappasswd', [...as(KIM, 'kim-pw3'), '-a', guess, '-s', 'taken-over', LEE]);
      assert.equal(resultCode(r), 50, `${guess}: ${r.stderr}`);
    }
    assert.equal((await whoami(LEE, 'lee-pw')).code, 0);
  });
});

describe('a wrong bind costs the same whether the DN exists or not', () => {
  /** Runs `bind` and returns how many checks of each kind the process computed meanwhile (GET /stats: every thread's). */
  async function work(bind: () => Promise<unknown>): Promise<Record<string, number>> {
    const before = (await t.app.stats()).passwords.verified;
    await bind();
    const after = (await t.app.stats()).passwords.verified;
    return Object.fromEntries(Object.entries(after).filter(([k, n]) => n !== (before[k] ?? 0)).map(([k, n]) => [k, n - (before[k] ?? 0)]));
  }
  const oneCheck = { 'sha512-crypt': 1 };

  test('LDAP: an existing user, a DN that does not exist, an entry without a password, a DN of an unknown attribute type', async () => {
    assert.deepEqual(await work(async () => assert.equal(resultCode(await whoami(LEE, 'wrong')), 49)), oneCheck, 'a user whose hash is in the configured scheme');
    assert.deepEqual(await work(async () => assert.equal(resultCode(await whoami('uid=nobody,o=internet', 'wrong')), 49)), oneCheck);
    assert.deepEqual(await work(async () => assert.equal(resultCode(await whoami('o=internet', 'wrong')), 49)), oneCheck);
    assert.deepEqual(await work(async () => assert.equal(resultCode(await whoami('noSuchType=x,o=internet', 'wrong')), 49)), oneCheck);
  });

  test('SMTP AUTH: an unknown login name costs a check too', async () => {
    const mail = t.app.mta.source;
    assert.deepEqual(await work(async () => assert.equal(await mail.authenticate('nobody@nowhere.test', 'wrong', '127.0.0.1'), undefined)), oneCheck);
  });
});
