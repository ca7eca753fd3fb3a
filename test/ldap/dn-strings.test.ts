/**
 * DN strings in add, delete, modifyDN and compare reach the directory as the
 * client sent them: a DN that is not RFC 4514 gets invalidDNSyntax (34) on a
 * connection that stays up, and escaped specials round-trip exactly
 * (ldapjs misread `\+e` as the hex pair `+e`, and dropped the connection on
 * a DN its own parser rejected).
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { adminArgs, run, startTestAppliance, ldapResultCode as resultCode, type TestAppliance } from '../helpers';

let t: TestAppliance;
before(async () => {
  t = await startTestAppliance();
});
after(async () => {
  await t.close();
});


const ldapadd = (ldif: string) => run('ldapadd', adminArgs(t), ldif);

/** The DNs one level under o=internet, decoded from ldapsearch's LDIF (base64 for non-ASCII). */
async function childDns(): Promise<string[]> {
  const s = await run('ldapsearch', [...adminArgs(t), '-LLL', '-o', 'ldif-wrap=no', '-b', 'o=internet', '-s', 'one', '(objectClass=*)', '1.1']);
  assert.equal(s.code, 0, s.stderr);
  return [...s.stdout.matchAll(/^dn(::?) (.*)$/gm)].map(([, sep, v]) => (sep === '::' ? Buffer.from(v, 'base64').toString('utf8') : v));
}

describe('invalid DNs get invalidDNSyntax (34), not a dropped connection', () => {
  test('ldapdelete, ldapcompare, ldapmodrdn and ldapadd', async () => {
    const cases: [string, Promise<{ code: number; stdout: string; stderr: string }>][] = [
      ['ldapdelete garbage', run('ldapdelete', [...adminArgs(t), 'garbage'])],
      ['ldapcompare with a quote', run('ldapcompare', [...adminArgs(t), 'cn=a"b,o=internet', 'sn:x'])],
      ['ldapmodrdn garbage', run('ldapmodrdn', [...adminArgs(t), 'garbage', 'cn=x'])],
      ['ldapmodrdn bad newrdn', run('ldapmodrdn', [...adminArgs(t), 'cn=admin,o=internet', 'garbage'])],
      ['ldapmodrdn bad newSuperior', run('ldapmodrdn', [...adminArgs(t), '-s', 'x=', 'cn=admin,o=internet', 'cn=admin'])],
      ['ldapadd dn: garbage', ldapadd('dn: garbage\nobjectClass: organizationalRole\ncn: garbage\n')],
      // RFC 4514 §3: '\' must be followed by a special character or two hex digits.
      ['ldapadd bad escape', ldapadd('dn: cn=ab\\zz,o=internet\nobjectClass: organizationalRole\ncn: abzz\n')],
    ];
    for (const [name, p] of cases) {
      const r = await p;
      assert.doesNotMatch(r.stderr, /Can't contact LDAP server/, `${name}: connection dropped`);
      assert.equal(resultCode(r), 34, `${name}: ${r.stderr}`);
    }
    assert.ok(!(await childDns()).some((d) => /abzz/i.test(d)), 'cn=ab\\zz was not accepted as cn=abzz');
  });
});

describe('escaped specials round-trip (RFC 4514 §2.4, §3)', () => {
  test('ldapadd cn=x\\+e: the RDN value is x+e', async () => {
    const r = await ldapadd('dn: cn=x\\+e,o=internet\nobjectClass: organizationalRole\ncn: x+e\n');
    assert.equal(r.code, 0, r.stderr);
    assert.ok((await childDns()).includes('cn=x\\+e,o=internet'));
    const c = await run('ldapcompare', [...adminArgs(t), 'cn=x\\2Be,o=internet', 'cn:x+e']);
    assert.equal(c.code, 6, 'the hex-escaped form names the same entry');
    const d = await run('ldapdelete', [...adminArgs(t), 'cn=x\\+e,o=internet']);
    assert.equal(d.code, 0, d.stderr);
  });

  test('ldapmodrdn to cn=Dö\\+e\\, J\\"r\\3B keeps every character', async () => {
    let r = await ldapadd('dn: cn=plain,o=internet\nobjectClass: organizationalRole\ncn: plain\n');
    assert.equal(r.code, 0, r.stderr);
    r = await run('ldapmodrdn', [...adminArgs(t), '-r', 'cn=plain,o=internet', 'cn=Dö\\+e\\, J\\"r\\3B']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok((await childDns()).includes('cn=Dö\\+e\\, J\\"r\\;,o=internet'), String(await childDns()));
    const c = await run('ldapcompare', [...adminArgs(t), 'cn=D\\C3\\B6\\2Be\\2C J\\22r\\3B,o=internet', 'cn:Dö+e, J"r;']);
    assert.equal(c.code, 6, c.stdout + c.stderr);
    const s = await run('ldapsearch', [...adminArgs(t), '-LLL', '-b', 'o=internet', '(cn=Dö+e, J"r;)', 'cn']);
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stdout, /^dn/m, 'the value was stored unescaped');
  });
});
