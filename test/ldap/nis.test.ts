/**
 * The RFC 2307 nis schema over LDAP, with the real clients: cn=Subschema
 * defines every attribute type and object class of the nis.schema OpenLDAP
 * ships (/etc/ldap/schema/nis.schema, and uidNumber/gidNumber, which slapd
 * has built in) as OpenLDAP does; a Unix account as phpLDAPadmin's and LAM's
 * templates make it (inetOrgPerson + posixAccount + shadowAccount) and a
 * posixGroup with memberUid are added with ldapadd and found by uidNumber,
 * gidNumber and memberUid, as NSS clients look them up; the schema is
 * enforced on them. (That these lookups are answered from the index is
 * test/storage/indexes.test.ts.)
 * Needs: slapd (for OpenLDAP's schema files).
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { adminArgs, ldapResultCode, run, startTestAppliance, type TestAppliance } from '../helpers';
import { parseDescription, schemaFileDescriptions, type Description } from '../fixtures/rfc4512';

const PEOPLE = 'ou=people,o=internet';
const GROUPS = 'ou=groups,o=internet';
const ALICE = `uid=alice,${PEOPLE}`;
const BOB = `uid=bob,${PEOPLE}`;
const STAFF = `cn=staff,${GROUPS}`;

let t: TestAppliance;
before(async () => {
  t = await startTestAppliance();
  const r = await run('ldapadd', adminArgs(t), [
    `dn: ${PEOPLE}\nobjectClass: organizationalUnit\nou: people\n`,
    `dn: ${GROUPS}\nobjectClass: organizationalUnit\nou: groups\n`,
    // phpLDAPadmin's "Generic: User Account" and LAM's default user: inetOrgPerson with posixAccount (and shadowAccount).
    `dn: ${ALICE}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\nobjectClass: shadowAccount\nuid: alice\ncn: Alice Liddell\n` +
      'sn: Liddell\ngivenName: Alice\nuidNumber: 10001\ngidNumber: 10000\nhomeDirectory: /home/alice\nloginShell: /bin/bash\n' +
      'gecos: Alice Liddell\nshadowLastChange: 19876\nshadowMax: 99999\nshadowWarning: 7\nuserPassword: alice-secret-1\n',
    // nslcd's classic form: account + posixAccount.
    `dn: ${BOB}\nobjectClass: account\nobjectClass: posixAccount\nuid: bob\ncn: bob\nuidNumber: 10002\ngidNumber: 10002\n` +
      'homeDirectory: /home/bob\n',
    `dn: ${STAFF}\nobjectClass: posixGroup\ncn: staff\ngidNumber: 10000\nmemberUid: alice\nmemberUid: bob\ndescription: Staff\n`,
  ].join('\n'));
  assert.equal(r.code, 0, r.stderr);
});
after(async () => t.close());

/**
 * uidNumber and gidNumber are built into slapd (nis.schema holds them commented out): as slapd 2.5
 * publishes them in its cn=Subschema.
 */
const SLAPD_BUILTIN = [
  "( 1.3.6.1.1.1.1.0 NAME 'uidNumber' DESC 'RFC2307: An integer uniquely identifying a user in an administrative domain' " +
    'EQUALITY integerMatch ORDERING integerOrderingMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )',
  "( 1.3.6.1.1.1.1.1 NAME 'gidNumber' DESC 'RFC2307: An integer uniquely identifying a group in an administrative domain' " +
    'EQUALITY integerMatch ORDERING integerOrderingMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )',
];

async function dns(filter: string, auth = adminArgs(t)): Promise<string[]> {
  const r = await run('ldapsearch', [...auth, '-LLL', '-o', 'ldif-wrap=no', '-b', 'o=internet', filter, '1.1']);
  assert.equal(r.code, 0, `${filter}: ${r.stderr}`);
  return [...r.stdout.matchAll(/^dn: (.*)$/gm)].map((m) => m[1]).sort();
}

describe('nis schema (RFC 2307)', () => {
  test('cn=Subschema defines the nis schema as OpenLDAP ships it', async () => {
    const file = (name: string) => fs.readFileSync(`/etc/ldap/schema/${name}`, 'utf8');
    const wantTypes = [...SLAPD_BUILTIN.map(parseDescription), ...schemaFileDescriptions(file('nis.schema'), 'attributetype')];
    const wantClasses = schemaFileDescriptions(file('nis.schema'), 'objectclass');
    assert.ok(wantTypes.length >= 27 && wantClasses.length >= 13, `${wantTypes.length} types, ${wantClasses.length} classes`);
    const r = await run('ldapsearch', ['-x', '-H', t.ldapUrl, '-LLL', '-o', 'ldif-wrap=no', '-b', 'cn=Subschema', '-s', 'base', '(objectClass=*)',
      'attributeTypes', 'objectClasses', 'ldapSyntaxes']);
    assert.equal(r.code, 0, r.stderr);
    const published = (attr: string) => new Map([...r.stdout.matchAll(new RegExp(`^${attr}: (.*)$`, 'gm'))]
      .map((m) => parseDescription(m[1])).map((d) => [d.oid, d] as [string, Description]));
    const types = published('attributeTypes');
    const classes = published('objectClasses');
    const syntaxes = published('ldapSyntaxes');
    // Fields compared case-insensitively where names are (NAME, SUP, MUST, MAY, rule names).
    const norm = (d: Description) => Object.fromEntries([...d.fields].map(([k, vs]) => [k, k === 'DESC' || k === 'SYNTAX' ? vs : vs.map((v) => v.toLowerCase())]));
    for (const want of [...wantTypes, ...wantClasses]) {
      const got = (types.get(want.oid) ?? classes.get(want.oid));
      assert.ok(got, `${want.oid} (${want.fields.get('NAME')}) is published`);
      const g = norm(got);
      const w = norm(want);
      // RFC 4512 §4.1.1: the SUP of a class is top when none is given; MUST/MAY as sets.
      for (const k of ['MUST', 'MAY']) {
        if (w[k]) w[k] = [...new Set(w[k])].sort();
        if (g[k]) g[k] = [...new Set(g[k])].sort();
      }
      assert.deepEqual(g, w, `${want.oid} ${want.fields.get('NAME')}`);
      const syntax = want.fields.get('SYNTAX')?.[0].replace(/\{\d+\}$/, '');
      if (syntax) assert.ok(syntaxes.has(syntax), `syntax ${syntax} is described`);
    }
  });

  test('accounts and groups are found by uidNumber, gidNumber and memberUid, as NSS clients ask', async () => {
    assert.deepEqual(await dns('(&(objectClass=posixAccount)(uidNumber=10001))'), [ALICE]);
    assert.deepEqual(await dns('(&(objectClass=posixAccount)(uid=bob))'), [BOB]);
    assert.deepEqual(await dns('(uidNumber=10002)'), [BOB]);
    assert.deepEqual(await dns('(&(objectClass=posixGroup)(gidNumber=10000))'), [STAFF]);
    assert.deepEqual(await dns('(gidNumber=10000)'), [STAFF, ALICE].sort());
    assert.deepEqual(await dns('(&(objectClass=posixGroup)(memberUid=bob))'), [STAFF]);
    assert.deepEqual(await dns('(memberUid=Bob)'), [], 'memberUid is caseExactIA5Match');
    assert.deepEqual(await dns('(&(objectClass=shadowAccount)(uid=alice))'), [ALICE]);
    assert.deepEqual(await dns('(&(objectClass=posixAccount)(uidNumber>=10002))'), [BOB]);
    assert.deepEqual(await dns('(memberUid=al*)'), [STAFF]);
    // A bound user (as nslcd binds) reads them too.
    const asAlice = ['-x', '-H', t.ldapUrl, '-D', ALICE, '-w', 'alice-secret-1'];
    assert.deepEqual(await dns('(&(objectClass=posixGroup)(memberUid=alice))', asAlice), [STAFF]);
    assert.deepEqual(await dns('(&(objectClass=posixAccount)(uidNumber=10002))', asAlice), [BOB]);
    const r = await run('ldapsearch', [...asAlice, '-LLL', '-b', ALICE, '-s', 'base', '(objectClass=*)', 'uidNumber', 'homeDirectory', 'loginShell']);
    assert.match(r.stdout, /^uidNumber: 10001$/m);
    assert.match(r.stdout, /^homeDirectory: \/home\/alice$/m);
    assert.match(r.stdout, /^loginShell: \/bin\/bash$/m);
  });

  test('the schema holds: MUST, single values, syntaxes, one structural class', async () => {
    const add = (ldif: string) => run('ldapadd', adminArgs(t), ldif).then(ldapResultCode);
    const user = (extra: string, classes = 'objectClass: inetOrgPerson\nobjectClass: posixAccount\n') =>
      `dn: uid=eve,${PEOPLE}\n${classes}uid: eve\ncn: eve\nsn: eve\n${extra}`;
    assert.equal(await add(user('gidNumber: 1\nhomeDirectory: /home/eve\n')), 65, 'posixAccount MUST uidNumber');
    assert.equal(await add(user('uidNumber: x1\ngidNumber: 1\nhomeDirectory: /home/eve\n')), 21, 'uidNumber is an INTEGER');
    assert.equal(await add(user('uidNumber: 1\nuidNumber: 2\ngidNumber: 1\nhomeDirectory: /home/eve\n')), 19, 'uidNumber is SINGLE-VALUE');
    assert.equal(await add(user('uidNumber: 1\ngidNumber: 1\nhomeDirectory: /home/\u00e9ve\n')), 21, 'homeDirectory is IA5');
    assert.equal(await add(user('uidNumber: 1\ngidNumber: 1\nhomeDirectory: /home/eve\nshadowMax: 9\n')), 65, 'shadowMax needs shadowAccount');
    assert.equal(await add(`dn: cn=g,${GROUPS}\nobjectClass: posixGroup\nobjectClass: organizationalUnit\ncn: g\nou: g\ngidNumber: 5\n`), 65,
      'posixGroup is structural');
    // nisNetgroupTriple and bootParameter have the syntaxes of RFC 2307 §2.4.
    assert.equal(await add(`dn: cn=ng,o=internet\nobjectClass: nisNetgroup\ncn: ng\nnisNetgroupTriple: (host.example.org,alice,)\nnisNetgroupTriple: (-,bob,example)\n`), 0);
    assert.equal(await add(`dn: cn=ng2,o=internet\nobjectClass: nisNetgroup\ncn: ng2\nnisNetgroupTriple: host,alice,example\n`), 21);
    assert.equal(await add(`dn: cn=pc,o=internet\nobjectClass: device\nobjectClass: bootableDevice\nobjectClass: ieee802Device\ncn: pc\n` +
      'bootParameter: root=boot.example.org:/export/root/pc\nmacAddress: 0:0:5e:0:53:1\n'), 0);
    assert.equal(await add(`dn: cn=pc2,o=internet\nobjectClass: device\nobjectClass: bootableDevice\ncn: pc2\nbootParameter: /export/root\n`), 21);
  });
});
