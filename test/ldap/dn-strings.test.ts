/**
 * DN strings in modify, add, delete, modifyDN and compare reach the directory as the
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

describe('ldapmodify reaches the entry its DN names (RFC 4514 escapes, as for the other updates)', () => {
  // Each DN as ldapmodify sends it, and the cn value the directory must find there.
  const cases: [dn: string, cn: string][] = [
    ['cn=m\\+e,o=internet', 'm+e'],
    ['cn=m\\, comma,o=internet', 'm, comma'],
    ['cn=m\\2C hex,o=internet', 'm, hex'],
    ['cn=m\\"quote\\",o=internet', 'm"quote"'],
    ['cn=\\#hash,o=internet', '#hash'],
    ['cn=\\ space,o=internet', ' space'],
    ['cn=Jöhn Dö,o=internet', 'Jöhn Dö'],
  ];
  const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01]);

  /** The entry at `dn` (base scope), its values decoded from ldapsearch's LDIF. */
  async function read(dn: string): Promise<Map<string, Buffer[]>> {
    const s = await run('ldapsearch', [...adminArgs(t), '-LLL', '-o', 'ldif-wrap=no', '-s', 'base', '-b', dn, '(objectClass=*)']);
    assert.equal(s.code, 0, `${dn}: ${s.stderr}`);
    const out = new Map<string, Buffer[]>();
    for (const [, name, sep, v] of s.stdout.matchAll(/^([\w-]+)(::?) (.*)$/gm)) {
      const list = out.get(name) ?? [];
      list.push(sep === '::' ? Buffer.from(v, 'base64') : Buffer.from(v, 'utf8'));
      out.set(name, list);
    }
    return out;
  }

  for (const [dn, cn] of cases) {
    test(`ldapmodify ${dn}: replace, a binary value (attr:: base64) and increment`, async () => {
      const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
      let r = await ldapadd(`dn:: ${b64(dn)}\nobjectClass: inetOrgPerson\nobjectClass: inetMailUser\ncn:: ${b64(cn)}\nsn: s\nmailMsgQuota: 10\n`);
      assert.equal(r.code, 0, r.stderr);
      r = await run('ldapmodify', adminArgs(t), [
        `dn:: ${b64(dn)}`, 'changetype: modify',
        'replace: description', 'description: changed', '-',
        `add: jpegPhoto`, `jpegPhoto:: ${jpeg.toString('base64')}`, '-',
        'increment: mailMsgQuota', 'mailMsgQuota: 5', '-', '',
      ].join('\n'));
      assert.equal(r.code, 0, `${dn}: ${r.stderr}`);
      const e = await read(dn);
      assert.deepEqual(e.get('cn')?.map((b) => b.toString('utf8')), [cn]);
      assert.deepEqual(e.get('description')?.map(String), ['changed']);
      assert.deepEqual(e.get('jpegPhoto'), [jpeg], 'the binary value is kept byte for byte');
      assert.deepEqual(e.get('mailMsgQuota')?.map(String), ['15']);
      r = await run('ldapdelete', [...adminArgs(t), dn]);
      assert.equal(r.code, 0, r.stderr);
    });
  }

  test('ldapmodify of a missing entry is 32 with the matched DN; of a bad DN 34, on a connection that stays up', async () => {
    const mod = (dn: string) => run('ldapmodify', ['-c', ...adminArgs(t)], `dn: ${dn}\nchangetype: modify\nreplace: description\ndescription: x\n\n` +
      'dn: cn=admin,o=internet\nchangetype: modify\nreplace: description\ndescription: still served\n');
    let r = await mod('cn=no\\+such,o=internet');
    assert.equal(resultCode(r), 32, r.stderr);
    assert.match(r.stderr, /matched DN: o=internet/);
    assert.doesNotMatch(r.stderr, /\\0e|x\u000ee/i, 'the DN was not mangled');
    r = await mod('cn=ab\\zz,o=internet');
    assert.equal(resultCode(r), 34, r.stderr);
    assert.match(r.stdout, /modifying entry "cn=admin,o=internet"/, 'the next request on the connection was answered');
    assert.deepEqual((await read('cn=admin,o=internet')).get('description')?.map(String), ['still served']);
  });
});
