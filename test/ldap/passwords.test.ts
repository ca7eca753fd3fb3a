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
