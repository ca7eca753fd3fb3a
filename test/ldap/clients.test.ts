/**
 * End to end with the real OpenLDAP command-line clients against the
 * running LDAP endpoint: every result code the issue names, paging, size
 * limits and access control.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { ADMIN_PASSWORD, adminArgs, run, startTestAppliance, ldapResultCode as resultCode, type TestAppliance } from '../helpers';
import { extendedRequest, int, message, octets, tlv } from '../fixtures/ber';
import { within } from '../fixtures/wait';

let t: TestAppliance;
before(async () => {
  t = await startTestAppliance();
});
after(async () => {
  await t.close();
});


const ldapadd = (ldif: string, auth = adminArgs(t)) => run('ldapadd', [...auth], ldif);
const ldapmodify = (ldif: string, auth = adminArgs(t)) => run('ldapmodify', [...auth], ldif);

describe('with ldap-utils', () => {
  test('ldapadd creates a DC tree and users; ldapsearch finds them', async () => {
    const r = await ldapadd(`dn: dc=org,o=internet
objectClass: domain
dc: org

dn: dc=example,dc=org,o=internet
objectClass: dNSDomain2
objectClass: mailDomain
objectClass: domainRelatedObject
dc: example
mXRecord: 10 mx.example.org.
associatedDomain: example.org

dn: ou=people,dc=example,dc=org,o=internet
objectClass: organizationalUnit
ou: people

dn: uid=alice,ou=people,dc=example,dc=org,o=internet
objectClass: inetOrgPerson
objectClass: inetMailUser
uid: alice
cn: Alice Liddell
sn: Liddell
mail: alice@example.org
mailAlternateAddress: al@example.org
userPassword: alice-password
jpegPhoto:: /9j/4AAQSkZJRgABAQ==
`);
    assert.equal(r.code, 0, r.stderr);
    const s = await run('ldapsearch', [...adminArgs(t), '-LLL', '-b', 'o=internet', '(mail=ALICE@example.org)', 'cn', 'jpegPhoto', 'MailAlternateAddress']);
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stdout, /^dn: uid=alice,ou=people,dc=example,dc=org,o=internet$/m);
    assert.match(s.stdout, /^cn: Alice Liddell$/m);
    assert.match(s.stdout, /^mailAlternateAddress: al@example.org$/m, 'mixed-case requested attribute names are honoured');
    assert.match(s.stdout, /^jpegPhoto:: \/9j\/4AAQSkZJRgABAQ==$/m, 'binary values round-trip');
    assert.doesNotMatch(s.stdout, /userPassword/);
  });

  test('filters with escaped values, substrings and presence', async () => {
    const added = await ldapadd(`dn: cn=a*b (c)\\5c,o=internet
objectClass: organizationalRole
cn: a*b (c)\\
`);
    assert.equal(added.code, 0, added.stderr);
    const s = await run('ldapsearch', [...adminArgs(t), '-LLL', '-b', 'o=internet', '(cn=a\\2ab \\28c\\29\\5c)', 'dn']);
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stdout, /^dn: cn=a\*b \(c\)\\(\\|5c),o=internet$/m);
    const sub = await run('ldapsearch', [...adminArgs(t), '-LLL', '-b', 'o=internet', '(&(objectClass=inetOrgPerson)(cn=al*ce*)(!(sn=x))(mail=*))', 'uid']);
    assert.match(sub.stdout, /^uid: alice$/m);
  });

  test('RFC 4511 §4.7: an add takes the values of its RDN; a single-valued attribute holding another is 64', async () => {
    let r = await ldapadd('dn: cn=from the rdn,o=internet\nobjectClass: person\nsn: only\n');
    assert.equal(r.code, 0, r.stderr);
    r = await ldapadd('dn: cn=Multi+sn=Valued,o=internet\nobjectClass: person\ndescription: both from the rdn\n');
    assert.equal(r.code, 0, r.stderr);
    r = await ldapadd('dn: cn=Kept,o=internet\nobjectClass: person\ncn: kept\ncn: other\nsn: s\n');
    assert.equal(r.code, 0, r.stderr);
    const s = await run('ldapsearch', [...adminArgs(t), '-LLL', '-b', 'o=internet', '-s', 'one', '(objectClass=person)', 'cn', 'sn']);
    assert.equal(s.code, 0, s.stderr);
    const entries = new Map(s.stdout.trim().split(/\n\n/).map((rec) => {
      const [dn, ...values] = rec.split('\n');
      return [dn, values.sort()];
    }));
    assert.deepEqual(entries.get('dn: cn=from the rdn,o=internet'), ['cn: from the rdn', 'sn: only']);
    assert.deepEqual(entries.get('dn: cn=Multi+sn=Valued,o=internet'), ['cn: Multi', 'sn: Valued']);
    assert.deepEqual(entries.get('dn: cn=Kept,o=internet'), ['cn: kept', 'cn: other', 'sn: s'], 'a value equal under the matching rule is not added again');
    r = await ldapadd('dn: dc=other,dc=org,o=internet\nobjectClass: domain\ndc: not-other\n');
    assert.equal(resultCode(r), 64, r.stderr);
  });

  test('add errors: 68 exists, 65 objectClass violation, 17 undefined type, 32 with matchedDN, 50 anonymous', async () => {
    let r = await ldapadd('dn: dc=org,o=internet\nobjectClass: domain\ndc: org\n');
    assert.equal(resultCode(r), 68);
    r = await ldapadd('dn: dc=x,dc=org,o=internet\nobjectClass: domain\ndc: x\nsn: nope\n');
    assert.equal(resultCode(r), 65);
    r = await ldapadd('dn: dc=x,dc=org,o=internet\nobjectClass: domain\ndc: x\nfrobnicate: 1\n');
    assert.equal(resultCode(r), 17);
    r = await ldapadd('dn: dc=a,dc=b,dc=example,dc=org,o=internet\nobjectClass: domain\ndc: a\n');
    assert.equal(resultCode(r), 32);
    assert.match(r.stderr, /matched DN: dc=example,dc=org,o=internet/);
    r = await ldapadd('dn: dc=y,dc=org,o=internet\nobjectClass: domain\ndc: y\n', ['-x', '-H', t.ldapUrl]);
    assert.equal(resultCode(r), 50);
  });

  test('modify errors: 16 no such attribute, 20 value exists, 21 bad syntax, 65; increment works', async () => {
    const dn = 'uid=alice,ou=people,dc=example,dc=org,o=internet';
    let r = await ldapmodify(`dn: ${dn}\nchangetype: modify\ndelete: telephoneNumber\n`);
    assert.equal(resultCode(r), 16);
    r = await ldapmodify(`dn: ${dn}\nchangetype: modify\nadd: mail\nmail: Alice@Example.org\n`);
    assert.equal(resultCode(r), 20);
    r = await ldapmodify(`dn: dc=example,dc=org,o=internet\nchangetype: modify\nreplace: dNSTTL\ndNSTTL: forty\n`);
    assert.equal(resultCode(r), 21);
    r = await ldapmodify(`dn: ${dn}\nchangetype: modify\ndelete: sn\n`);
    assert.equal(resultCode(r), 65);
    r = await ldapmodify(`dn: dc=example,dc=org,o=internet\nchangetype: modify\nreplace: dNSTTL\ndNSTTL: 300\n-\nincrement: dNSTTL\ndNSTTL: 60\n`);
    assert.equal(r.code, 0, r.stderr);
    const s = await run('ldapsearch', [...adminArgs(t), '-LLL', '-b', 'dc=example,dc=org,o=internet', '-s', 'base', 'dNSTTL']);
    assert.match(s.stdout, /^dNSTTL: 360$/m);
  });

  test('ldapdelete: 66 on non-leaf, 32 on missing; ldapmodrdn with newSuperior', async () => {
    let r = await run('ldapdelete', [...adminArgs(t), 'dc=example,dc=org,o=internet']);
    assert.equal(resultCode(r), 66);
    r = await run('ldapdelete', [...adminArgs(t), 'dc=missing,o=internet']);
    assert.equal(resultCode(r), 32);
    await ldapadd('dn: dc=net,o=internet\nobjectClass: domain\ndc: net\n');
    r = await run('ldapmodrdn', [...adminArgs(t), '-r', '-s', 'dc=net,o=internet', 'cn=a*b (c)\\5c,o=internet', 'cn=moved']);
    assert.equal(r.code, 0, r.stderr);
    const s = await run('ldapsearch', [...adminArgs(t), '-LLL', '-b', 'dc=net,o=internet', '-s', 'one', 'cn']);
    assert.match(s.stdout, /^dn: cn=moved,dc=net,o=internet$/m);
    assert.match(s.stdout, /^cn: moved$/m);
    assert.doesNotMatch(s.stdout, /a\*b/, 'deleteOldRDN removed the old value');
    r = await run('ldapdelete', [...adminArgs(t), 'cn=moved,dc=net,o=internet']);
    assert.equal(r.code, 0, r.stderr);
  });

  test('ldapcompare true/false, ldapwhoami anonymous and bound, wrong password 49', async () => {
    const dn = 'uid=alice,ou=people,dc=example,dc=org,o=internet';
    let r = await run('ldapcompare', [...adminArgs(t), dn, 'cn:alice liddell']);
    assert.equal(r.code, 6);
    assert.match(r.stdout, /TRUE/);
    r = await run('ldapcompare', [...adminArgs(t), dn, 'cn:bob']);
    assert.equal(r.code, 5);
    r = await run('ldapwhoami', ['-x', '-H', t.ldapUrl]);
    assert.match(r.stdout, /^anonymous$/m);
    r = await run('ldapwhoami', ['-x', '-H', t.ldapUrl, '-D', dn, '-w', 'alice-password']);
    assert.match(r.stdout, new RegExp(`^dn:${dn}$`, 'm'));
    r = await run('ldapwhoami', ['-x', '-H', t.ldapUrl, '-D', dn, '-w', 'wrong']);
    assert.equal(resultCode(r), 49);
    r = await run('ldapwhoami', ['-x', '-H', t.ldapUrl, '-D', 'uid=ghost,o=internet', '-w', 'wrong']);
    assert.equal(resultCode(r), 49);
  });

  test('a user changes its own password with ldappasswd and nothing else', async () => {
    const dn = 'uid=alice,ou=people,dc=example,dc=org,o=internet';
    let r = await run('ldappasswd', ['-x', '-H', t.ldapUrl, '-D', dn, '-w', 'alice-password', '-a', 'alice-password', '-s', 'alice-new-pass']);
    assert.equal(r.code, 0, r.stderr);
    r = await run('ldapwhoami', ['-x', '-H', t.ldapUrl, '-D', dn, '-w', 'alice-new-pass']);
    assert.equal(r.code, 0, r.stderr);
    r = await ldapmodify(`dn: ${dn}\nchangetype: modify\nreplace: cn\ncn: Mallory\ncn: Alice Liddell\n`, ['-x', '-H', t.ldapUrl, '-D', dn, '-w', 'alice-new-pass']);
    assert.equal(resultCode(r), 50);
    const s = await run('ldapsearch', ['-x', '-H', t.ldapUrl, '-D', dn, '-w', 'alice-new-pass', '-LLL', '-b', dn, '-s', 'base', 'userPassword']);
    assert.match(s.stdout, /^userPassword:: /m, 'own password hash is readable by its owner');
  });

  test('anonymous reads the DC tree but not people; root DSE and cn=Subschema', async () => {
    const s = await run('ldapsearch', ['-x', '-H', t.ldapUrl, '-LLL', '-b', 'o=internet', '(objectClass=*)', 'dn']);
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stdout, /^dn: dc=example,dc=org,o=internet$/m);
    assert.doesNotMatch(s.stdout, /uid=alice/);
    const dse = await run('ldapsearch', ['-x', '-H', t.ldapUrl, '-LLL', '-b', '', '-s', 'base', '+']);
    assert.match(dse.stdout, /^namingContexts: o=internet$/m);
    assert.match(dse.stdout, /^supportedControl: 1.2.840.113556.1.4.319$/m);
    assert.match(dse.stdout, /^supportedExtension: 1.3.6.1.4.1.4203.1.11.3$/m);
    assert.match(dse.stdout, /^vendorName: dcmx$/m);
    const ss = await run('ldapsearch', ['-x', '-H', t.ldapUrl, '-LLL', '-b', 'cn=Subschema', '-s', 'base', 'objectClasses', 'attributeTypes']);
    assert.match(ss.stdout, /NAME 'inetOrgPerson'/);
    assert.match(ss.stdout, /NAME 'aAAARecord'/);
  });

  test('cn=Subschema describes every matching rule and syntax it references, and carries its timestamps', async () => {
    const r = await run('ldapsearch', ['-x', '-H', t.ldapUrl, '-LLL', '-o', 'ldif-wrap=no', '-b', 'cn=Subschema', '-s', 'base', '(objectClass=subschema)',
      'attributeTypes', 'matchingRules', 'ldapSyntaxes', 'createTimestamp', 'modifyTimestamp']);
    assert.equal(r.code, 0, r.stderr);
    const values = (attr: string) => [...r.stdout.matchAll(new RegExp(`^${attr}: (.*)$`, 'gm'))].map((m) => m[1]);
    const rules = new Set(values('matchingRules').map((v) => /NAME '([^']+)'/.exec(v)![1]));
    const syntaxes = new Set(values('ldapSyntaxes').map((v) => /^\( (\S+)/.exec(v)![1]));
    const types = values('attributeTypes');
    assert.ok(types.length > 100 && rules.size > 20, `${types.length} types, ${rules.size} rules`);
    for (const a of types) {
      for (const m of a.matchAll(/(?:EQUALITY|ORDERING|SUBSTR) (\S+)/g)) assert.ok(rules.has(m[1]), `${m[1]} (in ${a.slice(0, 60)}) is described`);
      const syn = /SYNTAX ([\d.]+)/.exec(a)?.[1];
      if (syn) assert.ok(syntaxes.has(syn), `syntax ${syn} is described`);
    }
    for (const m of values('matchingRules')) assert.ok(syntaxes.has(/SYNTAX (\S+)/.exec(m)![1]), m);
    assert.match(values('createTimestamp')[0] ?? '', /^\d{14}Z$/);
    assert.match(values('modifyTimestamp')[0] ?? '', /^\d{14}Z$/);
  });

  test('size limit gives 4 with the entries; paging with -E pr returns everything', async () => {
    const people = Array.from({ length: 30 }, (_, i) =>
      `dn: uid=p${i},ou=people,dc=example,dc=org,o=internet\nobjectClass: inetOrgPerson\nuid: p${i}\ncn: P ${i}\nsn: P\n`).join('\n');
    assert.equal((await ldapadd(people)).code, 0);
    const lim = await run('ldapsearch', [...adminArgs(t), '-LLL', '-z', '7', '-b', 'ou=people,dc=example,dc=org,o=internet', '(sn=P)', 'dn']);
    assert.equal(lim.code, 4);
    assert.equal((lim.stdout.match(/^dn: /gm) ?? []).length, 7);
    const paged = await run('ldapsearch', [...adminArgs(t), '-LLL', '-E', 'pr=8/noprompt', '-b', 'ou=people,dc=example,dc=org,o=internet', '(sn=P)', 'dn']);
    assert.equal(paged.code, 0, paged.stderr);
    assert.equal((paged.stdout.match(/^dn: /gm) ?? []).length, 30);
    assert.equal((paged.stdout.match(/^# pagedresults: cookie=/gm) ?? []).length >= 0, true);
  });

  test('an unknown critical control gives 12, an unknown extended operation 2', async () => {
    const r = await run('ldapsearch', [...adminArgs(t), '-b', 'o=internet', '-s', 'base', '-E', '!1.2.3.4.5.6']);
    assert.equal(resultCode(r), 12);
    const x = await run('ldapexop', [...adminArgs(t), '1.2.3.4.5.6.7']);
    assert.equal(resultCode(x), 2);
  });

  test('admin password from the environment binds', async () => {
    const r = await run('ldapwhoami', ['-x', '-H', t.ldapUrl, '-D', 'cn=admin,o=internet', '-w', ADMIN_PASSWORD]);
    assert.equal(r.code, 0, r.stderr);
  });
});

describe('SASL', () => {
  test('a SASL bind gets authMethodNotSupported (7), and the connection stays usable', async () => {
    // BindRequest { version 3, name '', sasl [3] { mechanism 'PLAIN', credentials } }, then a WhoAmI on the same connection.
    const bind = message(1, tlv(0x60, int(3), octets(''), tlv(0xa3, octets('PLAIN'), octets('\0a\0b'))));
    const exop = message(2, extendedRequest('1.3.6.1.4.1.4203.1.11.3'));
    const net = await import('node:net');
    let got = Buffer.alloc(0);
    const reply = await within('the WhoAmI answer on the same connection', new Promise<Buffer>((resolve, reject) => {
      const sock = net.connect(t.app.ports.ldap, '127.0.0.1', () => sock.write(Buffer.concat([bind, exop])));
      sock.on('data', (d) => {
        got = Buffer.concat([got, d]);
        if (got.includes(Buffer.from([0x02, 1, 2, 0x78]))) {
          sock.destroy();
          resolve(got);
        }
      });
      sock.on('error', reject);
    }));
    // BindResponse (0x61) for message 1 with resultCode 7, then the WhoAmI answer (0x78) for message 2 with success.
    assert.ok(reply.includes(Buffer.from([0x02, 1, 1, 0x61])), 'bind response');
    assert.ok(reply.includes(Buffer.from([0x0a, 1, 7])), 'authMethodNotSupported');
    assert.ok(reply.includes(Buffer.from([0x02, 1, 2, 0x78])), 'the connection still answers');
  });
});
