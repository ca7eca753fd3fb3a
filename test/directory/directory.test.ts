import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { memoryDirectory, attrs } from './fixture';
import { DirectoryError } from '../../server/directory/errors';
import { ANONYMOUS } from '../../server/directory/access';
import type { PageCursor, SearchEntry, SearchRequest } from '../../server/directory/directory';
import type { FilterInput } from '../../server/directory/filter';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof DirectoryError) return e.result;
    throw e;
  }
  return 'success';
}

async function acode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof DirectoryError) return e.result;
    throw e;
  }
  return 'success';
}

function search(dir: Awaited<ReturnType<typeof memoryDirectory>>['dir'], who: typeof ANONYMOUS, req: Partial<SearchRequest>): SearchEntry[] {
  const out: SearchEntry[] = [];
  dir.search(who, {
    base: 'o=internet', scope: 'sub', filter: { type: 'present', attr: 'objectClass' }, attributes: [], typesOnly: false,
    sizeLimit: 0, timeLimit: 0, ...req,
  }, (e) => out.push(e));
  return out;
}

test('bootstrap creates the suffix and the admin entry, and the admin can bind', async () => {
  const { dir } = await memoryDirectory();
  assert.ok(dir.getByNdn('o=internet'));
  assert.ok(dir.getByNdn('cn=admin,o=internet'));
  const id = await dir.bind('CN=Admin, O=Internet', 'secret-admin');
  assert.equal(id.admin, true);
  assert.equal(await acode(dir.bind('cn=admin,o=internet', 'wrong')), 'invalidCredentials');
  assert.equal(await acode(dir.bind('cn=nobody,o=internet', 'secret-admin')), 'invalidCredentials');
  assert.equal(await acode(dir.bind('cn=admin,o=internet', '')), 'unwillingToPerform');
});

test('add validates against the schema and reports RFC 4511 result names', async () => {
  const { dir, admin } = await memoryDirectory();
  const ok = await dir.add(admin, 'dc=org,o=internet', attrs({ objectClass: ['top', 'domain'], dc: 'org' }));
  assert.ok(ok > 0);
  assert.equal(await acode(dir.add(admin, 'dc=org,o=internet', attrs({ objectClass: ['domain'], dc: 'org' }))), 'entryAlreadyExists');
  assert.equal(await acode(dir.add(admin, 'dc=x,dc=nowhere,o=internet', attrs({ objectClass: 'domain', dc: 'x' }))), 'noSuchObject');
  assert.equal(await acode(dir.add(admin, 'dc=a,dc=org,o=internet', attrs({ objectClass: 'domain', dc: 'a', bogusAttr: 'x' }))), 'undefinedAttributeType');
  assert.equal(await acode(dir.add(admin, 'dc=a,dc=org,o=internet', attrs({ objectClass: 'domain', dc: 'a', sn: 'x' }))), 'objectClassViolation');
  assert.equal(await acode(dir.add(admin, 'cn=p,dc=org,o=internet', attrs({ objectClass: 'person', cn: 'p' }))), 'objectClassViolation');
  assert.equal(await acode(dir.add(admin, 'dc=a,dc=org,o=internet', attrs({ objectClass: 'domain', dc: 'b' }))), 'namingViolation');
  assert.equal(await acode(dir.add(admin, 'dc=a,dc=org,o=internet', attrs({ objectClass: 'domain', dc: ['a', 'b'] }))), 'constraintViolation');
  assert.equal(await acode(dir.add(admin, 'dc=a,dc=org,o=internet', attrs({ objectClass: 'nosuchclass', dc: 'a' }))), 'invalidAttributeSyntax');
  assert.equal(await acode(dir.add(admin, 'dc=a,dc=org,o=internet', attrs({ objectClass: 'domain', dc: 'a', entryUUID: '00000000-0000-0000-0000-000000000000' }))), 'constraintViolation');
  assert.equal(await acode(dir.add(admin, 'dc=a,dc=org,o=internet', attrs({ objectClass: ['domain', 'organization'], dc: 'a', o: 'x' }))), 'objectClassViolation');
  assert.equal(await acode(dir.add(admin, 'cn=x,dc=org,o=internet', attrs({ objectClass: ['person'], cn: 'x', sn: ['a', 'A'] }))), 'attributeOrValueExists');
  assert.equal(await acode(dir.add(ANONYMOUS, 'dc=b,dc=org,o=internet', attrs({ objectClass: 'domain', dc: 'b' }))), 'insufficientAccessRights');
  assert.equal(await acode(dir.add(admin, 'not a dn', attrs({ objectClass: 'domain', dc: 'b' }))), 'invalidDNSyntax');
});

test('modify: add, delete, replace, increment and their errors', async () => {
  const { dir, admin } = await memoryDirectory();
  await dir.add(admin, 'cn=Jo Smith,o=internet', attrs({ objectClass: ['inetOrgPerson'], cn: 'Jo Smith', sn: 'Smith', mail: 'jo@example.org' }));
  const dn = 'cn=jo smith,o=internet';
  assert.equal(await acode(dir.modify(admin, dn, [{ op: 'add', type: 'mail', values: ['JO@example.org'] }])), 'attributeOrValueExists');
  assert.equal(await acode(dir.modify(admin, dn, [{ op: 'delete', type: 'telephoneNumber', values: [] }])), 'noSuchAttribute');
  assert.equal(await acode(dir.modify(admin, dn, [{ op: 'delete', type: 'mail', values: ['other@x'] }])), 'noSuchAttribute');
  assert.equal(await acode(dir.modify(admin, dn, [{ op: 'replace', type: 'nonsense', values: ['x'] }])), 'undefinedAttributeType');
  assert.equal(await acode(dir.modify(admin, dn, [{ op: 'delete', type: 'sn', values: [] }])), 'objectClassViolation');
  assert.equal(await acode(dir.modify(admin, dn, [{ op: 'replace', type: 'cn', values: ['Other'] }])), 'notAllowedOnRDN');
  assert.equal(await acode(dir.modify(admin, dn, [{ op: 'replace', type: 'createTimestamp', values: ['20200101000000Z'] }])), 'constraintViolation');
  assert.equal(await acode(dir.modify(admin, dn, [{ op: 'replace', type: 'objectClass', values: ['account'] }])), 'objectClassModsProhibited');
  assert.equal(await acode(dir.modify(admin, dn, [{ op: 'replace', type: 'employeeNumber', values: ['1', '2'] }])), 'constraintViolation'); // RFC 2798: SINGLE-VALUE
  assert.equal(await acode(dir.modify(admin, 'cn=ghost,o=internet', [{ op: 'replace', type: 'sn', values: ['x'] }])), 'noSuchObject');
  assert.equal(await acode(dir.modify(admin, dn, [
    { op: 'replace', type: 'mail', values: ['a@x.org', 'b@x.org'] },
    { op: 'delete', type: 'mail', values: ['A@X.ORG'] },
    { op: 'add', type: 'description', values: ['hello'] },
  ])), 'success');
  const e = dir.getByNdn('cn=jo smith,o=internet')!;
  assert.deepEqual(e.attrs.mail, ['b@x.org']);
  assert.deepEqual(e.attrs.description, ['hello']);
});

test('single-valued attributes refuse a second value (constraintViolation)', async () => {
  const { dir, admin } = await memoryDirectory();
  await dir.add(admin, 'dc=org,o=internet', attrs({ objectClass: ['domain'], dc: 'org' }));
  assert.equal(await acode(dir.modify(admin, 'dc=org,o=internet', [{ op: 'add', type: 'dc', values: ['net'] }])), 'constraintViolation');
});

test('delete refuses non-leaf entries; modifyDN moves a subtree and keeps the index right', async () => {
  const { dir, admin } = await memoryDirectory();
  await dir.add(admin, 'dc=org,o=internet', attrs({ objectClass: ['domain'], dc: 'org' }));
  await dir.add(admin, 'dc=example,dc=org,o=internet', attrs({ objectClass: ['domain'], dc: 'example' }));
  await dir.add(admin, 'ou=people,dc=example,dc=org,o=internet', attrs({ objectClass: ['organizationalUnit'], ou: 'people' }));
  await dir.add(admin, 'uid=ann,ou=people,dc=example,dc=org,o=internet', attrs({ objectClass: ['inetOrgPerson'], uid: 'ann', cn: 'Ann', sn: 'A', mail: 'ann@example.org' }));
  await dir.add(admin, 'dc=net,o=internet', attrs({ objectClass: ['domain'], dc: 'net' }));
  assert.equal(code(() => dir.delete(admin, 'dc=example,dc=org,o=internet')), 'notAllowedOnNonLeaf');
  assert.equal(code(() => dir.delete(admin, 'dc=nothere,dc=org,o=internet')), 'noSuchObject');
  assert.equal(code(() => dir.modifyDN(admin, 'dc=example,dc=org,o=internet', 'dc=sample', true, 'dc=net,o=internet')), 'success');
  assert.equal(code(() => dir.modifyDN(admin, 'dc=net,o=internet', 'dc=net', false, 'dc=sample,dc=net,o=internet')), 'unwillingToPerform');
  assert.equal(code(() => dir.modifyDN(admin, 'dc=org,o=internet', 'dc=net', true)), 'entryAlreadyExists');
  assert.equal(code(() => dir.modifyDN(admin, 'dc=org,o=internet', 'dc=x', true, 'dc=nope,o=internet')), 'noSuchObject');
  const moved = dir.getByNdn('uid=ann,ou=people,dc=sample,dc=net,o=internet');
  assert.ok(moved, 'descendant moved');
  assert.equal(moved!.dn, 'uid=ann,ou=people,dc=sample,dc=net,o=internet');
  const sample = dir.getByNdn('dc=sample,dc=net,o=internet')!;
  assert.deepEqual(sample.attrs.dc, ['sample']);
  const found = search(dir, admin, { base: 'dc=net,o=internet', filter: { type: 'equal', attr: 'mail', value: 'ANN@example.org' } });
  assert.deepEqual(found.map((e) => e.dn), ['uid=ann,ou=people,dc=sample,dc=net,o=internet']);
  assert.equal(search(dir, admin, { base: 'dc=org,o=internet' }).length, 1);
});

test('search: scopes, filters, subtypes, objectClass inheritance, selection and limits', async () => {
  const { dir, admin } = await memoryDirectory();
  await dir.add(admin, 'dc=org,o=internet', attrs({ objectClass: ['domain'], dc: 'org' }));
  await dir.add(admin, 'dc=example,dc=org,o=internet', attrs({ objectClass: ['dNSDomain2', 'domain'], dc: 'example', mXRecord: '10 mx.example.org.' }));
  for (let i = 0; i < 5; i++) {
    await dir.add(admin, `uid=u${i},dc=example,dc=org,o=internet`, attrs({
      objectClass: ['inetOrgPerson', 'extensibleObject'], uid: `u${i}`, cn: `User ${i}`, sn: `S${i}`, mail: `u${i}@example.org`, dNSTTL: String(i * 10),
    }));
  }
  const dns = (r: SearchEntry[]) => r.map((e) => e.dn).sort();
  assert.equal(search(dir, admin, { base: 'dc=example,dc=org,o=internet', scope: 'one' }).length, 5);
  assert.equal(search(dir, admin, { base: 'dc=example,dc=org,o=internet', scope: 'base' }).length, 1);
  assert.equal(search(dir, admin, { filter: { type: 'equal', attr: 'objectClass', value: 'domain' } }).length, 2, 'dNSDomain2 is a domain');
  assert.equal(search(dir, admin, { filter: { type: 'equal', attr: 'name', value: 'user 3' } }).length, 1, 'name finds cn (subtype)');
  assert.deepEqual(dns(search(dir, admin, { filter: { type: 'substrings', attr: 'mail', initial: 'U', any: [], final: '@EXAMPLE.org' } })).length, 5);
  assert.equal(search(dir, admin, { filter: { type: 'substrings', attr: 'cn', any: ['ser 1'] } }).length, 1);
  assert.equal(search(dir, admin, { filter: { type: 'ge', attr: 'dNSTTL', value: '20' } }).length, 3, 'integer ordering');
  assert.equal(search(dir, admin, { filter: { type: 'le', attr: 'dNSTTL', value: '9' } }).length, 1, 'integer, not string, ordering');
  assert.equal(search(dir, admin, { filter: { type: 'not', filter: { type: 'present', attr: 'mail' } } }).length, 4);
  assert.equal(search(dir, admin, { filter: { type: 'equal', attr: 'noSuchAttr', value: 'x' } }).length, 0);
  assert.equal(search(dir, admin, { filter: { type: 'and', filters: [] } }).length, 9, 'RFC 4526 absolute true');
  assert.equal(search(dir, admin, { filter: { type: 'or', filters: [] } }).length, 0);
  assert.equal(search(dir, admin, { filter: { type: 'extensible', attr: 'uid', rule: 'caseExactMatch', dnAttributes: false, value: 'u1' } }).length, 1);
  assert.equal(search(dir, admin, { filter: { type: 'extensible', rule: 'caseIgnoreIA5Match', dnAttributes: true, value: 'EXAMPLE' } }).length, 6);
  const [one] = search(dir, admin, { filter: { type: 'equal', attr: 'uid', value: 'u2' }, attributes: ['MAIL', 'name'] });
  assert.deepEqual(one.attrs.map(([n]) => n).sort(), ['cn', 'mail', 'sn']);
  const [ops] = search(dir, admin, { filter: { type: 'equal', attr: 'uid', value: 'u2' }, attributes: ['+'] });
  const opNames = ops.attrs.map(([n]) => n);
  for (const n of ['entryUUID', 'createTimestamp', 'modifyTimestamp', 'creatorsName', 'modifiersName', 'hasSubordinates', 'entryDN', 'subschemaSubentry']) {
    assert.ok(opNames.includes(n), `operational ${n}`);
  }
  assert.ok(!opNames.includes('cn'));
  const [none] = search(dir, admin, { filter: { type: 'equal', attr: 'uid', value: 'u2' }, attributes: ['1.1'] });
  assert.deepEqual(none.attrs, []);
  const [typesOnly] = search(dir, admin, { filter: { type: 'equal', attr: 'uid', value: 'u2' }, typesOnly: true });
  assert.ok(typesOnly.attrs.every(([, v]) => v.length === 0));
  const got: SearchEntry[] = [];
  assert.throws(() => dir.search(admin, {
    base: 'o=internet', scope: 'sub', filter: { type: 'present', attr: 'uid' }, attributes: [], typesOnly: false, sizeLimit: 2, timeLimit: 0,
  }, (e) => got.push(e)), (e: unknown) => e instanceof DirectoryError && e.result === 'sizeLimitExceeded');
  assert.equal(got.length, 2);
  assert.equal(code(() => search(dir, admin, { base: 'dc=nothere,dc=example,dc=org,o=internet' })), 'noSuchObject');
});

test('paging returns every entry once across pages', async () => {
  const { dir, admin } = await memoryDirectory();
  for (let i = 0; i < 23; i++) await dir.add(admin, `cn=r${i},o=internet`, attrs({ objectClass: ['organizationalRole'], cn: `r${i}` }));
  const seen: string[] = [];
  let cursor: PageCursor | undefined;
  let pages = 0;
  do {
    const out = dir.search(admin, {
      base: 'o=internet', scope: 'one', filter: { type: 'equal', attr: 'objectClass', value: 'organizationalRole' }, attributes: ['1.1'],
      typesOnly: false, sizeLimit: 0, timeLimit: 0, page: { size: 5, cursor },
    }, (e) => seen.push(e.dn));
    cursor = out.nextCursor;
    pages++;
  } while (cursor !== undefined);
  assert.equal(pages, 5);
  assert.equal(new Set(seen).size, 24); // 23 + cn=admin
});

test('access control: anonymous sees domain entries only and never passwords; users change only their own password', async () => {
  const { dir, admin } = await memoryDirectory();
  await dir.add(admin, 'dc=org,o=internet', attrs({ objectClass: ['domain'], dc: 'org', userPassword: 'domainsecret' }));
  await dir.add(admin, 'uid=bob,dc=org,o=internet', attrs({ objectClass: ['inetOrgPerson'], uid: 'bob', cn: 'Bob', sn: 'B', userPassword: 'bob-password' }));
  await dir.add(admin, 'uid=eve,dc=org,o=internet', attrs({ objectClass: ['inetOrgPerson'], uid: 'eve', cn: 'Eve', sn: 'E', userPassword: 'eve-password' }));
  const anon = search(dir, ANONYMOUS, {});
  assert.deepEqual(anon.map((e) => e.dn).sort(), ['dc=org,o=internet', 'o=internet']);
  assert.ok(anon.every((e) => e.attrs.every(([n]) => n !== 'userPassword')));
  assert.equal(search(dir, ANONYMOUS, { filter: { type: 'present', attr: 'userPassword' } }).length, 0, 'filters cannot probe hidden attributes');
  const bob = await dir.bind('uid=bob,dc=org,o=internet', 'bob-password');
  const seen = search(dir, bob, {});
  assert.ok(seen.some((e) => e.dn === 'uid=eve,dc=org,o=internet'));
  const eve = seen.find((e) => e.dn === 'uid=eve,dc=org,o=internet')!;
  assert.ok(eve.attrs.every(([n]) => n !== 'userPassword'));
  const self = seen.find((e) => e.dn === 'uid=bob,dc=org,o=internet')!;
  assert.ok(self.attrs.some(([n, v]) => n === 'userPassword' && v[0].startsWith('{CRYPT}$6$')));
  assert.equal(await acode(dir.modify(bob, 'uid=bob,dc=org,o=internet', [{ op: 'replace', type: 'userPassword', values: ['new-password'] }])), 'success');
  await dir.bind('uid=bob,dc=org,o=internet', 'new-password');
  assert.equal(await acode(dir.modify(bob, 'uid=bob,dc=org,o=internet', [{ op: 'replace', type: 'cn', values: ['Bob', 'Robert'] }])), 'insufficientAccessRights');
  assert.equal(await acode(dir.modify(bob, 'uid=eve,dc=org,o=internet', [{ op: 'replace', type: 'userPassword', values: ['x'] }])), 'insufficientAccessRights');
  assert.equal(code(() => dir.delete(bob, 'uid=eve,dc=org,o=internet')), 'insufficientAccessRights');
  assert.equal(code(() => dir.compare(bob, 'uid=eve,dc=org,o=internet', 'userPassword', 'eve-password')), 'insufficientAccessRights');
  assert.equal(dir.compare(bob, 'uid=eve,dc=org,o=internet', 'cn', 'EVE'), true);
  assert.equal(code(() => search(dir, bob, { base: 'cn=changelog' })), 'noSuchObject');
});

test('every write appends change log rows; listeners hear each commit once', async () => {
  const { dir, admin } = await memoryDirectory();
  const heard: number[][] = [];
  dir.onChange((cs) => heard.push(cs.map((c) => c.changeNumber)));
  const before = dir.changeRange().last;
  await dir.add(admin, 'dc=org,o=internet', attrs({ objectClass: ['domain'], dc: 'org' }));
  await dir.modify(admin, 'dc=org,o=internet', [{ op: 'add', type: 'description', values: ['x'] }]);
  dir.modifyDN(admin, 'dc=org,o=internet', 'dc=net', true);
  dir.delete(admin, 'dc=net,o=internet');
  dir.write(() => {
    dir.addSync(admin, 'dc=com,o=internet', attrs({ objectClass: ['domain'], dc: 'com' }));
    dir.addSync(admin, 'dc=a,dc=com,o=internet', attrs({ objectClass: ['domain'], dc: 'a' }));
  });
  const rows = [...dir.changesSince(before + 1)];
  assert.deepEqual(rows.map((r) => r.changeType), ['add', 'modify', 'modrdn', 'delete', 'add', 'add']);
  assert.deepEqual(rows[0].changeType === 'add' && rows[0].attributes, { objectClass: ['domain'], dc: ['org'] });
  assert.deepEqual(rows[1].changeType === 'modify' && rows[1].modifications, [{ op: 'add', type: 'description', values: ['x'] }]);
  assert.deepEqual(rows[2].changeType === 'modrdn' && [rows[2].newRDN, rows[2].deleteOldRDN], ['dc=net', true]);
  assert.equal(heard.length, 5);
  assert.equal(heard[4].length, 2);
  // a failing write in a batch rolls back the whole batch and notifies nothing
  const lastBefore = dir.changeRange().last;
  assert.throws(() => dir.write(() => {
    dir.addSync(admin, 'dc=b,dc=com,o=internet', attrs({ objectClass: ['domain'], dc: 'b' }));
    dir.addSync(admin, 'dc=b,dc=com,o=internet', attrs({ objectClass: ['domain'], dc: 'b' }));
  }));
  assert.equal(dir.changeRange().last, lastBefore);
  assert.equal(dir.getByNdn('dc=b,dc=com,o=internet'), undefined);
  assert.equal(heard.length, 5);
  // the change log is readable as entries by the admin
  const cl = search(dir, admin, { base: 'cn=changelog', scope: 'one', filter: { type: 'equal', attr: 'changeType', value: 'modrdn' } });
  assert.equal(cl.length, 1);
  assert.ok(cl[0].attrs.some(([n, v]) => n === 'newRDN' && v[0] === 'dc=net'));
});

test('root DSE and subschema are served', async () => {
  const { dir } = await memoryDirectory();
  const [dse] = search(dir, ANONYMOUS, { base: '', scope: 'base', attributes: ['*', '+'] });
  const get = (n: string) => dse.attrs.find(([k]) => k === n)?.[1];
  assert.deepEqual(get('namingContexts'), ['o=internet']);
  assert.deepEqual(get('supportedLDAPVersion'), ['3']);
  assert.deepEqual(get('subschemaSubentry'), ['cn=Subschema']);
  assert.ok(get('lastChangeNumber'));
  const [ss] = search(dir, ANONYMOUS, { base: 'cn=subschema', scope: 'base', attributes: ['attributeTypes', 'objectClasses'] });
  const oc = ss.attrs.find(([k]) => k === 'objectClasses')![1];
  assert.ok(oc.some((d) => /NAME 'dNSDomain2'/.test(d)));
  const at = ss.attrs.find(([k]) => k === 'attributeTypes')![1];
  assert.ok(at.some((d) => /NAME 'mXRecord'/.test(d)));
});

test('userPassword values in {SSHA} import verify', async () => {
  const { dir, admin } = await memoryDirectory();
  // {SSHA} of "secret" with salt "salt" (SHA1("secret"+"salt") + "salt")
  const crypto = await import('node:crypto');
  const digest = crypto.createHash('sha1').update('secret').update('salt').digest();
  const ssha = '{SSHA}' + Buffer.concat([digest, Buffer.from('salt')]).toString('base64');
  await dir.add(admin, 'cn=imp,o=internet', attrs({ objectClass: ['organizationalRole', 'simpleSecurityObject'], cn: 'imp', userPassword: ssha }));
  assert.equal(dir.getByNdn('cn=imp,o=internet')!.attrs.userPassword[0], ssha, 'stored as given');
  await dir.bind('cn=imp,o=internet', 'secret');
  assert.equal(await acode(dir.bind('cn=imp,o=internet', 'Secret')), 'invalidCredentials');
});

test('time limit: a search that runs past it ends with timeLimitExceeded after the entries found so far', async () => {
  const { dir, admin } = await memoryDirectory();
  dir.write(() => {
    for (let i = 0; i < 300; i++) dir.addSync(admin, `cn=t${i},o=internet`, attrs({ objectClass: ['organizationalRole'], cn: `t${i}` }));
  });
  const realNow = Date.now;
  let fake = realNow();
  // Each reading of the clock moves it 400 ms (the directory reads it every 64 candidates): the 1 s limit passes part-way.
  Date.now = () => (fake += 400);
  const got: SearchEntry[] = [];
  try {
    assert.throws(() => dir.search(admin, {
      base: 'o=internet', scope: 'one', filter: { type: 'present', attr: 'cn' }, attributes: ['1.1'], typesOnly: false, sizeLimit: 0, timeLimit: 1,
    }, (e) => got.push(e)), (e: unknown) => e instanceof DirectoryError && e.result === 'timeLimitExceeded');
  } finally {
    Date.now = realNow;
  }
  assert.ok(got.length > 0 && got.length < 301, `${got.length} entries before the limit`);
});

test('Undefined filter items follow three-valued logic (RFC 4511 §4.5.1.7), in SQL and in code alike', async () => {
  const { dir, admin } = await memoryDirectory();
  for (let i = 0; i < 3; i++) {
    await dir.add(admin, `uid=u${i},o=internet`, attrs({ objectClass: ['inetOrgPerson'], uid: `u${i}`, cn: `U${i}`, sn: 'S', description: `d${i}` }));
  }
  const unknown: FilterInput = { type: 'equal', attr: 'fooBar', value: 'x' };
  const invalid: FilterInput = { type: 'equal', attr: 'createTimestamp', value: 'not a time' };
  const not = (filter: FilterInput): FilterInput => ({ type: 'not', filter });
  const and = (...filters: FilterInput[]): FilterInput => ({ type: 'and', filters });
  const or = (...filters: FilterInput[]): FilterInput => ({ type: 'or', filters });
  const uids = (filter: FilterInput) => search(dir, admin, { filter }).map((e) => e.dn.split(',')[0]).filter((r) => r.startsWith('uid=')).sort();
  // uid is indexed (answered by SQL), description is not (evaluated in code).
  for (const attr of ['uid', 'description']) {
    const u1: FilterInput = { type: 'equal', attr, value: attr === 'uid' ? 'u1' : 'd1' };
    assert.deepEqual(uids(not(unknown)), [], 'NOT Undefined is Undefined');
    assert.deepEqual(uids(not(invalid)), [], 'an invalid assertion value is Undefined too');
    assert.deepEqual(uids(not({ type: 'present', attr: 'fooBar' })), []);
    assert.deepEqual(uids(or(unknown, u1)), ['uid=u1'], 'TRUE OR Undefined is TRUE');
    assert.deepEqual(uids(and(unknown, u1)), [], 'TRUE AND Undefined is Undefined');
    assert.deepEqual(uids(not(and(unknown, u1))), ['uid=u0', 'uid=u2'], `NOT(FALSE AND Undefined) is TRUE (${attr})`);
    assert.deepEqual(uids(not(or(unknown, u1))), [], `NOT(FALSE OR Undefined) is Undefined (${attr})`);
    assert.deepEqual(uids(not(not(and(unknown, not(u1))))), [], 'double negation keeps Undefined');
  }
  assert.deepEqual(uids(and()).length, 3, 'RFC 4526 absolute true still holds');
});
