/**
 * Search behaviour end to end with ldapsearch: the size limit across paged
 * results (RFC 2696 §3), filter evaluation details of RFC 4511 §4.5.1.7
 * (Undefined, extensible match, operational attributes), the subordinate
 * ("children") scope and `@objectClass` attribute lists (RFC 4529).
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { adminArgs, run, startTestAppliance, type TestAppliance } from '../helpers';
import { decodeCookie, encodeCookie } from '../../server/ldap/search';
import type { SearchCall } from '../../server/ldap/search-decode';
import { ANONYMOUS } from '../../server/directory/access';
import { silentLogger } from '../../server/log';

const SERVER_SIZE_LIMIT = 7;
const PEOPLE = 'ou=people,o=internet';
const USER = `uid=alice,${PEOPLE}`;

let t: TestAppliance;
before(async () => {
  t = await startTestAppliance({ DCMX_LDAP_SIZE_LIMIT: String(SERVER_SIZE_LIMIT) });
  let ldif = `dn: ${PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n`;
  ldif += `dn: ${USER}\nobjectClass: inetOrgPerson\nuid: alice\ncn: Smith, John\nsn: Smith\ngivenName: John\nmail: alice@example.org\nuserPassword: alice-pw\n\n`;
  for (let i = 0; i < 12; i++) ldif += `dn: cn=r${i},o=internet\nobjectClass: organizationalRole\ncn: r${i}\n\n`;
  const r = await run('ldapadd', adminArgs(t), ldif);
  assert.equal(r.code, 0, r.stderr);
});
after(async () => {
  await t.close();
});

const userArgs = () => ['-x', '-H', t.ldapUrl, '-D', USER, '-w', 'alice-pw'];

/** ldapsearch as the admin (or `auth`), returning the DNs and the exit code (the result code). */
async function search(args: string[], auth = adminArgs(t)): Promise<{ dns: string[]; code: number; out: string }> {
  const r = await run('ldapsearch', [...auth, '-LLL', '-o', 'ldif-wrap=no', ...args]);
  return { dns: [...r.stdout.matchAll(/^dn: (.*)$/gm)].map((m) => m[1]), code: r.code, out: r.stdout + r.stderr };
}

describe('size limit and paged results (RFC 2696 §3, RFC 4511 §4.5.1.5)', () => {
  test('ldapsearch -z 5 -E pr=2/noprompt stops at 5 entries with sizeLimitExceeded', async () => {
    const r = await search(['-b', 'o=internet', '-s', 'one', '-z', '5', '-E', 'pr=2/noprompt', '(objectClass=organizationalRole)', '1.1']);
    assert.equal(r.dns.length, 5, r.out);
    assert.equal(r.code, 4, r.out);
    const all = await search(['-b', 'o=internet', '-s', 'one', '-E', 'pr=2/noprompt', '(objectClass=organizationalRole)', '1.1']);
    assert.equal(all.code, 0, all.out);
    assert.equal(all.dns.length, 13, 'the admin pages through everything without a limit');
  });

  test("paging does not lift the server's limit for users", async () => {
    const plain = await search(['-b', 'o=internet', '-s', 'one', '(objectClass=organizationalRole)', '1.1'], userArgs());
    assert.equal(plain.code, 4);
    assert.equal(plain.dns.length, SERVER_SIZE_LIMIT);
    const paged = await search(['-b', 'o=internet', '-s', 'one', '-E', 'pr=3/noprompt', '(objectClass=organizationalRole)', '1.1'], userArgs());
    assert.equal(paged.dns.length, SERVER_SIZE_LIMIT, paged.out);
    assert.equal(paged.code, 4, paged.out);
  });

  test('the cookie carries the count under a MAC: altered, foreign or other-search cookies are refused', () => {
    const session = { id: 1, identity: ANONYMOUS, log: silentLogger() };
    const call: SearchCall = {
      messageId: 1, base: 'o=internet', scope: 2, sizeLimit: 0, timeLimit: 0, typesOnly: false,
      filter: { type: 'present', attr: 'cn' }, attributes: [], controls: [],
    };
    const cookie = encodeCookie(session, call, { afterId: 40, sent: 6 });
    assert.deepEqual(decodeCookie(session, call, cookie), { afterId: 40, sent: 6 });
    assert.equal(decodeCookie(session, call, Buffer.alloc(0)), undefined);
    const reset = Buffer.from(cookie.toString('latin1').replace(/^40\.6\./, '40.0.'), 'latin1');
    assert.equal(decodeCookie(session, call, reset), null, 'resetting the count is detected');
    assert.equal(decodeCookie(session, { ...call, filter: { type: 'present', attr: 'sn' } }, cookie), null, 'bound to the search');
    const other = { ...session, identity: { dn: USER, ndn: USER, anonymous: false, admin: false } };
    assert.equal(decodeCookie(other, call, cookie), null, 'bound to the identity');
    assert.equal(decodeCookie(session, call, Buffer.from('40')), null);
  });
});

describe('filters (RFC 4511 §4.5.1.7)', () => {
  test('NOT of an unknown attribute is Undefined and matches nothing', async () => {
    let r = await search(['-b', 'o=internet', '(!(fooBar=x))', '1.1']);
    assert.equal(r.code, 0, r.out);
    assert.deepEqual(r.dns, []);
    r = await search(['-b', 'o=internet', '(|(fooBar=x)(uid=alice))', '1.1']);
    assert.deepEqual(r.dns, [USER]);
    r = await search(['-b', PEOPLE, '(!(&(fooBar=x)(uid=alice)))', '1.1']);
    assert.deepEqual(r.dns, [PEOPLE], 'NOT(FALSE AND Undefined) is TRUE for the other entry');
  });

  test('extensible match compares under the requested rule (RFC 4511 §4.5.1.7.7)', async () => {
    for (const [f, want] of [
      ['(cn:caseExactMatch:=Smith, John)', [USER]],
      ['(cn:caseExactMatch:=smith, john)', []],
      ['(cn:2.5.13.5:=Smith, John)', [USER]],
      ['(cn:2.5.13.5:=SMITH, JOHN)', []],
      ['(cn:caseIgnoreMatch:=SMITH, JOHN)', [USER]],
      // No attribute type: every attribute that supports the rule.
      ['(:caseIgnoreMatch:=ALICE)', [USER]],
      ['(:caseExactMatch:=Alice)', []],
      ['(:caseExactMatch:=John)', [USER]],
      ['(&(objectClass=organizationalUnit)(:dn:2.5.13.5:=people))', [PEOPLE]],
      ['(&(objectClass=organizationalUnit)(:dn:2.5.13.5:=People))', []],
    ] as [string, string[]][]) {
      const r = await search(['-b', 'o=internet', f, '1.1']);
      assert.equal(r.code, 0, r.out);
      assert.deepEqual(r.dns, want, f);
    }
  });

  test('extensible match under ordering and substrings rules (RFC 4517 §4.2, §3.3.30)', async () => {
    for (const [f, want] of [
      // An ordering rule is TRUE when the value is less than the assertion.
      ['(sn:caseIgnoreOrderingMatch:=T)', [USER]],
      ['(sn:caseIgnoreOrderingMatch:=SMITH)', []],
      ['(&(sn=*)(!(sn:caseIgnoreOrderingMatch:=SMITH)))', [USER]],
      ['(sn:2.5.13.6:=smith)', [USER]],
      // A substrings rule reads its assertion as a Substring Assertion: \2a in the filter string is its `*`.
      ['(cn:caseIgnoreSubstringsMatch:=\\2aSMITH\\2a)', [USER]],
      ['(cn:caseExactSubstringsMatch:=\\2aSMITH\\2a)', []],
      ['(cn:caseExactSubstringsMatch:=Smith\\2aJohn)', [USER]],
      ['(mail:caseIgnoreIA5SubstringsMatch:=ALICE@\\2a)', [USER]],
      ['(:caseExactSubstringsMatch:=\\2aJoh\\2a)', [USER]],
      // No `*`: not a Substring Assertion, so Undefined, and NOT Undefined is Undefined.
      ['(!(cn:caseIgnoreSubstringsMatch:=Smith, John))', []],
    ] as [string, string[]][]) {
      const r = await search(['-b', PEOPLE, f, '1.1']);
      assert.equal(r.code, 0, r.out);
      assert.deepEqual(r.dns, want, f);
    }
  });

  test('approximate match is phonetic, not equality (RFC 4511 §4.5.1.7.6)', async () => {
    for (const [f, want] of [
      ['(cn~=smyth, jon)', [USER]],
      ['(sn~=SMYTHE)', [USER]],
      ['(givenName~=Jön)', [USER]],
      ['(cn~=jon smyth)', []],
      ['(sn~=Jones)', []],
      ['(!(sn~=Smyth))', [PEOPLE]],
    ] as [string, string[]][]) {
      const r = await search(['-b', PEOPLE, f, '1.1']);
      assert.equal(r.code, 0, r.out);
      assert.deepEqual(r.dns, want, f);
    }
  });

  test('operational attributes the server computes are usable in filters', async () => {
    const one = (f: string) => search(['-b', PEOPLE, f, '1.1']).then((r) => r.dns);
    assert.deepEqual(await one('(hasSubordinates=FALSE)'), [USER]);
    assert.deepEqual(await one('(hasSubordinates=TRUE)'), [PEOPLE]);
    assert.deepEqual(await one('(hasSubordinates=*)'), [PEOPLE, USER]);
    assert.deepEqual(await one('(structuralObjectClass=inetOrgPerson)'), [USER]);
    assert.deepEqual(await one('(entryDN=UID=Alice, OU=People, O=Internet)'), [USER]);
    assert.deepEqual(await one('(&(subschemaSubentry=cn=subschema)(!(hasSubordinates=TRUE)))'), [USER]);
    const c = await run('ldapcompare', [...adminArgs(t), USER, 'hasSubordinates:FALSE']);
    assert.equal(c.code, 6, c.stdout + c.stderr);
  });
});

describe('the search cache (server/directory/search-cache.ts) over the wire', () => {
  test('an entry the administrator had encoded and kept is sent to others as their rights allow, and as written after a write', async () => {
    const BOB = `uid=bob,${PEOPLE}`;
    const add = await run('ldapadd', adminArgs(t), `dn: ${BOB}\nobjectClass: inetOrgPerson\nuid: bob\ncn: Bob\nsn: B\nmail: bob@example.org\nuserPassword: bob-pw\n\n`);
    assert.equal(add.code, 0, add.stderr);
    const bob = async (auth: string[], filter = '(mail=bob@example.org)') => {
      const r = await search(['-b', 'o=internet', filter], auth);
      assert.equal(r.code, 0, r.out);
      return r.out;
    };
    for (let round = 0; round < 2; round++) {
      assert.match(await bob(adminArgs(t)), /^userPassword:/m);
      const asAlice = await bob(userArgs());
      assert.match(asAlice, /^dn: uid=bob,/m);
      assert.doesNotMatch(asAlice, /userPassword/);
      assert.doesNotMatch(await bob(userArgs(), '(&(mail=bob@example.org)(userPassword=*))'), /^dn:/m);
      assert.doesNotMatch(await bob(['-x', '-H', t.ldapUrl]), /^dn:/m);
      assert.match(await bob(['-x', '-H', t.ldapUrl, '-D', BOB, '-w', 'bob-pw']), /^userPassword:/m);
    }
    const mod = await run('ldapmodify', adminArgs(t), `dn: ${BOB}\nchangetype: modify\nreplace: mail\nmail: robert@example.org\n-\nreplace: cn\ncn: Robert\n\n`);
    assert.equal(mod.code, 0, mod.stderr);
    assert.doesNotMatch(await bob(adminArgs(t)), /^dn:/m);
    const after = await bob(userArgs(), '(mail=robert@example.org)');
    assert.match(after, /^cn: Robert$/m);
    assert.doesNotMatch(after, /userPassword/);
    const del = await run('ldapdelete', [...adminArgs(t), BOB]);
    assert.equal(del.code, 0, del.stderr);
    assert.doesNotMatch(await bob(adminArgs(t), '(mail=robert@example.org)'), /^dn:/m);
  });
});

describe('subordinate ("children") scope', () => {
  test('-s children returns the subtree without its base, and is announced in the root DSE', async () => {
    let r = await search(['-b', PEOPLE, '-s', 'children', '(objectClass=*)', '1.1']);
    assert.equal(r.code, 0, r.out);
    assert.deepEqual(r.dns, [USER]);
    const sub = await search(['-b', 'o=internet', '-s', 'sub', '(objectClass=*)', '1.1']);
    r = await search(['-b', 'o=internet', '-s', 'children', '(objectClass=*)', '1.1']);
    assert.deepEqual(r.dns, sub.dns.filter((d) => d !== 'o=internet'));
    r = await search(['-b', '', '-s', 'children', '(objectClass=organizationalUnit)', '1.1']);
    assert.deepEqual(r.dns, [PEOPLE], 'the naming context is a child of the root DSE');
    r = await search(['-b', USER, '-s', 'children', '(objectClass=*)', '1.1']);
    assert.deepEqual(r.dns, []);
    assert.equal(r.code, 0);
    const dse = await search(['-b', '', '-s', 'base', '(objectClass=*)', 'supportedFeatures']);
    assert.match(dse.out, /^supportedFeatures: 1\.3\.6\.1\.4\.1\.4203\.666\.8\.1$/m);
    assert.match(dse.out, /^supportedFeatures: 1\.3\.6\.1\.1\.14$/m, 'RFC 4525 §5 Modify-Increment');
  });
});

describe('@objectClass in the attribute list (RFC 4529)', () => {
  test('@inetOrgPerson returns the attributes the class allows, and nothing else', async () => {
    const attrNames = (out: string) => [...new Set([...out.matchAll(/^(\w+):/gm)].map((m) => m[1]))].filter((n) => n !== 'dn').sort();
    let r = await search(['-b', USER, '-s', 'base', '(objectClass=*)', '@inetOrgPerson']);
    assert.equal(r.code, 0, r.out);
    assert.deepEqual(attrNames(r.out), ['cn', 'givenName', 'mail', 'objectClass', 'sn', 'uid', 'userPassword']);
    r = await search(['-b', USER, '-s', 'base', '(objectClass=*)', '@person'], ['-x', '-H', t.ldapUrl]);
    assert.deepEqual(attrNames(r.out), [], 'anonymous cannot read the user at all');
    r = await search(['-b', USER, '-s', 'base', '(objectClass=*)', '@organizationalRole', 'mail']);
    assert.deepEqual(attrNames(r.out), ['cn', 'mail', 'objectClass'], 'only what the class allows and the entry has');
    r = await search(['-b', USER, '-s', 'base', '(objectClass=*)', '@noSuchClass']);
    assert.deepEqual(attrNames(r.out), [], 'an unknown class selects nothing');
  });
});
