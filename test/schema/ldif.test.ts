import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  LdifError,
  LdifRecord,
  LdifValue,
  formatLdifAttributes,
  formatLdifChange,
  formatLdifEntry,
  formatLdifModifications,
  parseLdif,
  parseLdifText,
} from '../../schema/ldif';
import { prng } from '../prng';

async function parseAll(
  input: string | Iterable<string> | AsyncIterable<string>,
  options?: { fileUrls?: boolean },
): Promise<LdifRecord[]> {
  const out: LdifRecord[] = [];
  for await (const rec of parseLdif(typeof input === 'string' ? [input] : input, options)) out.push(rec);
  return out;
}

/** Parses until the expected LdifError; returns it with the records yielded before it. */
async function parseError(input: string, options?: { fileUrls?: boolean }): Promise<{ err: LdifError; records: LdifRecord[] }> {
  const records: LdifRecord[] = [];
  try {
    for await (const rec of parseLdif([input], options)) records.push(rec);
  } catch (err) {
    assert.ok(err instanceof LdifError, `expected LdifError, got ${String(err)}`);
    return { err, records };
  }
  assert.fail('expected an LdifError');
}

const lf = (lines: string[]): string => lines.join('\n') + '\n';

function entry(rec: LdifRecord): Extract<LdifRecord, { kind: 'entry' }> {
  assert.equal(rec.kind, 'entry');
  return rec as Extract<LdifRecord, { kind: 'entry' }>;
}

let tmp: string;
const PHOTO = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x80, 0xfe]);
let photoUrl: string;

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dcmx-ldif-'));
  const photo = path.join(tmp, 'photo.jpg');
  fs.writeFileSync(photo, PHOTO);
  photoUrl = pathToFileURL(photo).href;
});

after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------
// RFC 2849 §3 examples, written out from the RFC.

const EXAMPLE_1 = lf([
  'version: 1',
  'dn: cn=Barbara Jensen, ou=Product Development, dc=airius, dc=com',
  'objectclass: top',
  'objectclass: person',
  'objectclass: organizationalPerson',
  'cn: Barbara Jensen',
  'cn: Barbara J Jensen',
  'cn: Babs Jensen',
  'sn: Jensen',
  'uid: bjensen',
  'telephonenumber: +1 408 555 1212',
  'description: A big sailing fan.',
  '',
  'dn: cn=Bjorn Jensen, ou=Accounting, dc=airius, dc=com',
  'objectclass: top',
  'objectclass: person',
  'objectclass: organizationalPerson',
  'cn: Bjorn Jensen',
  'sn: Jensen',
  'telephonenumber: +1 408 555 1212',
]);

const EXAMPLE_2 = lf([
  'version: 1',
  'dn:cn=Barbara Jensen, ou=Product Development, dc=airius, dc=com',
  'objectclass:top',
  'objectclass:person',
  'objectclass:organizationalPerson',
  'cn:Barbara Jensen',
  'cn:Barbara J Jensen',
  'cn:Babs Jensen',
  'sn:Jensen',
  'uid:bjensen',
  'telephonenumber:+1 408 555 1212',
  'description:Babs is a big sailing fan, and travels extensively in sea',
  ' rch of perfect sailing conditions.',
  'title:Product Manager, Rod and Reel Division',
]);

const EXAMPLE_3 = lf([
  'version: 1',
  'dn: cn=Gern Jensen, ou=Product Testing, dc=airius, dc=com',
  'objectclass: top',
  'objectclass: person',
  'objectclass: organizationalPerson',
  'cn: Gern Jensen',
  'cn: Gern O Jensen',
  'sn: Jensen',
  'uid: gernj',
  'telephonenumber: +1 408 555 1212',
  'description:: V2hhdCBhIGNhcmVmdWwgcmVhZGVyIHlvdSBhcmUhICBUaGlzIHZhbHVl',
  ' IGlzIGJhc2UtNjQtZW5jb2RlZCBiZWNhdXNlIGl0IGhhcyBhIGNvbnRyb2wgY2hhcmFjdG',
  ' VyIGluIGl0IChhIENSKS4NICBCeSB0aGUgd2F5LCB5b3Ugc2hvdWxkIHJlYWxseSBnZXQg',
  ' b3V0IG1vcmUu',
]);

const EXAMPLE_4 = lf([
  'version: 1',
  'dn:: b3U95Za25qWt6YOoLG89QWlyaXVz',
  '# dn:: ou=<JapaneseOU>,o=Airius',
  'objectclass: top',
  'objectclass: organizationalUnit',
  'ou:: 5Za25qWt6YOo',
  '# ou:: <JapaneseOU>',
  'ou;lang-ja:: 5Za25qWt6YOo',
  '# ou;lang-ja:: <JapaneseOU>',
  'ou;lang-ja;phonetic:: 44GI44GE44GO44KH44GG44G2',
  '# ou;lang-ja:: <JapaneseOU_in_phonetic_representation>',
  'ou;lang-en: Sales',
  'description: Japanese office',
  '',
  'dn:: dWlkPXJvZ2FzYXdhcmEsb3U95Za25qWt6YOoLG89QWlyaXVz',
  '# dn:: uid=<uid>,ou=<JapaneseOU>,o=Airius',
  'userpassword: {SHA}O3HSv1MusyL4kTjP+HKI5uxuNoM=',
  'objectclass: top',
  'objectclass: person',
  'objectclass: organizationalPerson',
  'objectclass: inetOrgPerson',
  'uid: rogasawara',
  'mail: rogasawara@airius.co.jp',
  'givenname;lang-ja:: 44Ot44OJ44OL44O8',
  '# givenname;lang-ja:: <JapaneseGivenname>',
  'sn;lang-ja:: 5bCP56yg5Y6f',
  '# sn;lang-ja:: <JapaneseSn>',
  'cn;lang-ja:: 5bCP56yg5Y6fIOODreODieODi+ODvA==',
  '# cn;lang-ja:: <JapaneseCn>',
  'title;lang-ja:: 5Za25qWt6YOoIOmDqOmVtw==',
  '# title;lang-ja:: <JapaneseTitle>',
  'preferredlanguage: ja',
  'givenname:: 44Ot44OJ44OL44O8',
  '# givenname:: <JapaneseGivenname>',
  'sn:: 5bCP56yg5Y6f',
  '# sn:: <JapaneseSn>',
  'cn:: 5bCP56yg5Y6fIOODreODieODi+ODvA==',
  '# cn:: <JapaneseCn>',
  'title:: 5Za25qWt6YOoIOmDqOmVtw==',
  '# title:: <JapaneseTitle>',
  'givenname;lang-ja;phonetic:: 44KN44Gp44Gr44O8',
  '# givenname;lang-ja;phonetic::',
  ' <JapaneseGivenname_in_phonetic_representation_kana>',
  'sn;lang-ja;phonetic:: 44GK44GM44GV44KP44KJ',
  '# sn;lang-ja;phonetic:: <JapaneseSn_in_phonetic_representation_kana>',
  'cn;lang-ja;phonetic:: 44GK44GM44GV44KP44KJIOOCjeOBqeOBq+ODvA==',
  '# cn;lang-ja;phonetic:: <JapaneseCn_in_phonetic_representation_kana>',
  'title;lang-ja;phonetic:: 44GI44GE44GO44KH44GG44G2IOOBtuOBoeOCh+OBhg==',
  '# title;lang-ja;phonetic::',
  '# <JapaneseTitle_in_phonetic_representation_kana>',
  'givenname;lang-en: Rodney',
  'sn;lang-en: Ogasawara',
  'cn;lang-en: Rodney Ogasawara',
  'title;lang-en: Sales, Director',
]);

const EXAMPLE_5 = lf([
  'version: 1',
  'dn: cn=Horatio Jensen, ou=Product Testing, dc=airius, dc=com',
  'objectclass: top',
  'objectclass: person',
  'objectclass: organizationalPerson',
  'cn: Horatio Jensen',
  'cn: Horatio N Jensen',
  'sn: Jensen',
  'uid: hjensen',
  'telephonenumber: +1 408 555 1212',
  'jpegphoto:< file:///usr/local/directory/photos/hjensen.jpg',
]);

const EXAMPLE_6 = lf([
  'version: 1',
  '# Add a new entry',
  'dn: cn=Fiona Jensen, ou=Marketing, dc=airius, dc=com',
  'changetype: add',
  'objectclass: top',
  'objectclass: person',
  'objectclass: organizationalPerson',
  'cn: Fiona Jensen',
  'sn: Jensen',
  'uid: fiona',
  'telephonenumber: +1 408 555 1212',
  'jpegphoto:< file:///usr/local/directory/photos/fiona.jpg',
  '',
  '# Delete an existing entry',
  'dn: cn=Robert Jensen, ou=Marketing, dc=airius, dc=com',
  'changetype: delete',
  '',
  "# Modify an entry's relative distinguished name",
  'dn: cn=Paul Jensen, ou=Product Development, dc=airius, dc=com',
  'changetype: modrdn',
  'newrdn: cn=Paula Jensen',
  'deleteoldrdn: 1',
  '',
  '# Rename an entry and move all of its children to a new location in',
  '# the directory tree (only implemented by LDAPv3 servers).',
  'dn: ou=PD Accountants, ou=Product Development, dc=airius, dc=com',
  'changetype: modrdn',
  'newrdn: ou=Product Development Accountants',
  'deleteoldrdn: 0',
  'newsuperior: ou=Accounting, dc=airius, dc=com',
  '',
  '# Modify an entry: add an additional value to the postaladdress',
  '# attribute, completely delete the description attribute, replace',
  '# the telephonenumber attribute with two values, and delete a specific',
  '# value from the facsimiletelephonenumber attribute',
  'dn: cn=Paula Jensen, ou=Product Development, dc=airius, dc=com',
  'changetype: modify',
  'add: postaladdress',
  'postaladdress: 123 Anystreet $ Sunnyvale, CA $ 94086',
  '-',
  'delete: description',
  '-',
  'replace: telephonenumber',
  'telephonenumber: +1 408 555 1234',
  'telephonenumber: +1 408 555 5678',
  '-',
  'delete: facsimiletelephonenumber',
  'facsimiletelephonenumber: +1 408 555 9876',
  '-',
  '',
  '# Modify an entry: replace the postaladdress attribute with an empty',
  '# set of values (which will cause the attribute to be removed), and',
  '# delete the entire description attribute. Note that the first will',
  '# always succeed, while the second will only succeed if at least',
  '# one value for the description attribute is present.',
  'dn: cn=Ingrid Jensen, ou=Product Support, dc=airius, dc=com',
  'changetype: modify',
  'replace: postaladdress',
  '-',
  'delete: description',
  '-',
]);

const EXAMPLE_7 = lf([
  'version: 1',
  '# Delete an entry. The operation will attach the LDAPv3',
  '# Tree Delete Control defined in [9]. The criticality',
  '# field is "true" and the controlValue field is',
  '# absent, as required by [9].',
  'dn: ou=Product Development, dc=airius, dc=com',
  'control: 1.2.840.113556.1.4.805 true',
  'changetype: delete',
]);

describe('RFC 2849 examples', () => {
  test('example 1: two entries', async () => {
    const recs = await parseAll(EXAMPLE_1);
    assert.equal(recs.length, 2);
    const [a, b] = recs.map(entry);
    assert.equal(a.dn, 'cn=Barbara Jensen, ou=Product Development, dc=airius, dc=com');
    assert.equal(a.line, 2);
    assert.deepEqual([...a.attrs.keys()], ['objectclass', 'cn', 'sn', 'uid', 'telephonenumber', 'description']);
    assert.deepEqual(a.attrs.get('objectclass'), ['top', 'person', 'organizationalPerson']);
    assert.deepEqual(a.attrs.get('cn'), ['Barbara Jensen', 'Barbara J Jensen', 'Babs Jensen']);
    assert.deepEqual(a.attrs.get('telephonenumber'), ['+1 408 555 1212']);
    assert.deepEqual(a.attrs.get('description'), ['A big sailing fan.']);
    assert.equal(b.dn, 'cn=Bjorn Jensen, ou=Accounting, dc=airius, dc=com');
    assert.equal(b.line, 14);
    assert.deepEqual(b.attrs.get('cn'), ['Bjorn Jensen']);
  });

  test('example 2: no space after the colon, a folded value', async () => {
    const [a] = (await parseAll(EXAMPLE_2)).map(entry);
    assert.equal(a.dn, 'cn=Barbara Jensen, ou=Product Development, dc=airius, dc=com');
    assert.deepEqual(a.attrs.get('objectclass'), ['top', 'person', 'organizationalPerson']);
    assert.deepEqual(a.attrs.get('description'), [
      'Babs is a big sailing fan, and travels extensively in search of perfect sailing conditions.',
    ]);
    assert.deepEqual(a.attrs.get('title'), ['Product Manager, Rod and Reel Division']);
  });

  test('example 3: a folded base64 value (holding a CR)', async () => {
    const [a] = (await parseAll(EXAMPLE_3)).map(entry);
    assert.deepEqual(a.attrs.get('description'), [
      'What a careful reader you are!  This value is base-64-encoded because it has a control character in it (a CR).\r  By the way, you should really get out more.',
    ]);
  });

  test('example 4: UTF-8 DNs and values, language options, folded comments', async () => {
    const [ou, person] = (await parseAll(EXAMPLE_4)).map(entry);
    assert.equal(ou.dn, 'ou=営業部,o=Airius');
    assert.deepEqual(ou.attrs.get('ou'), ['営業部']);
    assert.deepEqual(ou.attrs.get('ou;lang-ja'), ['営業部']);
    assert.deepEqual(ou.attrs.get('ou;lang-ja;phonetic'), ['えいぎょうぶ']);
    assert.deepEqual(ou.attrs.get('ou;lang-en'), ['Sales']);
    assert.equal(person.dn, 'uid=rogasawara,ou=営業部,o=Airius');
    assert.equal(person.line, 15);
    assert.deepEqual(person.attrs.get('cn'), ['小笠原 ロドニー']);
    assert.deepEqual(person.attrs.get('cn;lang-ja'), ['小笠原 ロドニー']);
    assert.deepEqual(person.attrs.get('givenname;lang-ja;phonetic'), ['ろどにー']);
    assert.deepEqual(person.attrs.get('title;lang-ja;phonetic'), ['えいぎょうぶ ぶちょう']);
    assert.deepEqual(person.attrs.get('cn;lang-en'), ['Rodney Ogasawara']);
    assert.deepEqual(person.attrs.get('userpassword'), ['{SHA}O3HSv1MusyL4kTjP+HKI5uxuNoM=']);
    // The folded comment's continuation did not become an attribute.
    assert.ok(![...person.attrs.keys()].some((k) => k.includes('<')));
    assert.equal(person.attrs.size, 21);
  });

  test('example 5: a file:// URL value is read (binary → Buffer)', async () => {
    const [a] = (await parseAll(EXAMPLE_5.replace('file:///usr/local/directory/photos/hjensen.jpg', photoUrl))).map(entry);
    const photo = a.attrs.get('jpegphoto');
    assert.ok(photo && Buffer.isBuffer(photo[0]));
    assert.deepEqual(photo[0], PHOTO);
    // As printed in the RFC the file does not exist here: an error on its line.
    const { err } = await parseError(EXAMPLE_5);
    assert.equal(err.line, 11);
    // And URL reading can be switched off.
    const off = await parseError(EXAMPLE_5.replace('file:///usr/local/directory/photos/hjensen.jpg', photoUrl), {
      fileUrls: false,
    });
    assert.equal(off.err.line, 11);
  });

  test('example 6: change records and comments', async () => {
    const recs = await parseAll(EXAMPLE_6.replace('file:///usr/local/directory/photos/fiona.jpg', photoUrl));
    assert.deepEqual(
      recs.map((r) => r.kind),
      ['add', 'delete', 'modrdn', 'modrdn', 'modify', 'modify'],
    );
    const [add, del, modrdn1, modrdn2, mod1, mod2] = recs;
    assert.ok(add.kind === 'add');
    assert.equal(add.dn, 'cn=Fiona Jensen, ou=Marketing, dc=airius, dc=com');
    assert.equal(add.line, 3);
    assert.deepEqual(add.controls, []);
    assert.deepEqual(add.attrs.get('uid'), ['fiona']);
    assert.deepEqual(add.attrs.get('jpegphoto'), [PHOTO]);
    assert.deepEqual(del, { kind: 'delete', dn: 'cn=Robert Jensen, ou=Marketing, dc=airius, dc=com', controls: [], line: 15 });
    assert.deepEqual(modrdn1, {
      kind: 'modrdn',
      dn: 'cn=Paul Jensen, ou=Product Development, dc=airius, dc=com',
      newRdn: 'cn=Paula Jensen',
      deleteOldRdn: true,
      controls: [],
      line: 19,
    });
    assert.deepEqual(modrdn2, {
      kind: 'modrdn',
      dn: 'ou=PD Accountants, ou=Product Development, dc=airius, dc=com',
      newRdn: 'ou=Product Development Accountants',
      deleteOldRdn: false,
      newSuperior: 'ou=Accounting, dc=airius, dc=com',
      controls: [],
      line: 26,
    });
    assert.ok(mod1.kind === 'modify');
    assert.deepEqual(mod1.changes, [
      { op: 'add', attr: 'postaladdress', values: ['123 Anystreet $ Sunnyvale, CA $ 94086'] },
      { op: 'delete', attr: 'description', values: [] },
      { op: 'replace', attr: 'telephonenumber', values: ['+1 408 555 1234', '+1 408 555 5678'] },
      { op: 'delete', attr: 'facsimiletelephonenumber', values: ['+1 408 555 9876'] },
    ]);
    assert.ok(mod2.kind === 'modify');
    assert.equal(mod2.line, 56);
    assert.deepEqual(mod2.changes, [
      { op: 'replace', attr: 'postaladdress', values: [] },
      { op: 'delete', attr: 'description', values: [] },
    ]);
  });

  test('example 7: a change record with a control', async () => {
    const recs = await parseAll(EXAMPLE_7);
    assert.deepEqual(recs, [
      {
        kind: 'delete',
        dn: 'ou=Product Development, dc=airius, dc=com',
        controls: [{ oid: '1.2.840.113556.1.4.805', critical: true }],
        line: 6,
      },
    ]);
  });

  test('CRLF input parses like LF input', async () => {
    for (const ex of [EXAMPLE_1, EXAMPLE_2, EXAMPLE_3, EXAMPLE_4, EXAMPLE_7]) {
      assert.deepEqual(await parseAll(ex.replace(/\n/g, '\r\n')), await parseAll(ex));
    }
  });
});

// ---------------------------------------------------------------------------

describe('values, round trips and folding', () => {
  const tricky: [string, LdifValue[]][] = [
    ['objectClass', ['top', 'person']],
    ['cn', ['Ångström', 'plain value']],
    ['description', [' leading space', ':leading colon', '<leading less-than', 'trailing space ', 'nul\u0000inside']],
    ['street', ['line one\nline two', 'cr\rhere', 'tab\there', '']],
    ['sn;lang-sv', ['Ångström']],
    ['jpegPhoto', [Buffer.from([0xff, 0xd8, 0x00, 0x80, 0xfe, 0x0a, 0x0d])]],
    ['userCertificate;binary', [Buffer.alloc(300, 0xc3)]], // invalid UTF-8 (lone lead bytes)
    ['info', ['x'.repeat(1000), 'é'.repeat(100)]],
  ];

  test('tricky values are base64-encoded where they must be, and round-trip', async () => {
    const dn = 'cn=Ångström,dc=example,dc=com';
    const text = formatLdifEntry(dn, tricky);
    const lines = text.split('\n');
    assert.ok(lines[0].startsWith('dn:: '), 'a non-ASCII DN is base64');
    assert.ok(text.endsWith('\n\n') && !text.endsWith('\n\n\n'), 'ends with one blank line');
    assert.ok(lines.includes('objectClass: top'));
    assert.ok(lines.includes('cn: plain value'));
    assert.ok(lines.includes(`cn:: ${Buffer.from('Ångström').toString('base64')}`));
    assert.ok(lines.includes(`description:: ${Buffer.from(' leading space').toString('base64')}`));
    assert.ok(lines.includes(`description:: ${Buffer.from(':leading colon').toString('base64')}`));
    assert.ok(lines.includes(`description:: ${Buffer.from('<leading less-than').toString('base64')}`));
    assert.ok(lines.includes(`description:: ${Buffer.from('trailing space ').toString('base64')}`));
    assert.ok(lines.includes(`description:: ${Buffer.from('nul\u0000inside').toString('base64')}`));
    assert.ok(lines.includes('street: tab\there'));
    assert.ok(lines.includes('street:'));
    for (const l of lines) assert.ok(l.length <= 76, `line too long: ${l.length}`);

    const [rec] = (await parseAll(text)).map(entry);
    assert.equal(rec.dn, dn);
    assert.deepEqual([...rec.attrs], tricky);
  });

  test('Buffers holding UTF-8 are written as text and read back as strings', async () => {
    const text = formatLdifEntry('cn=x', [['cn', [Buffer.from('hello')]], ['sn', [Buffer.from('Ø')]]]);
    assert.equal(text, `dn: cn=x\ncn: hello\nsn:: ${Buffer.from('Ø').toString('base64')}\n\n`);
    const [rec] = (await parseAll(text)).map(entry);
    assert.deepEqual(rec.attrs.get('cn'), ['hello']);
    assert.deepEqual(rec.attrs.get('sn'), ['Ø']);
  });

  test('folding happens at exactly 76 columns and parses back', async () => {
    const prefix = 'description: ';
    const exact = 'a'.repeat(76 - prefix.length);
    const over = exact + 'b';
    const text = formatLdifAttributes([['description', [exact, over]]]);
    const lines = text.split('\n');
    assert.equal(lines[0], prefix + exact);
    assert.equal(lines[0].length, 76);
    assert.equal(lines[1], prefix + exact);
    assert.equal(lines[2], ' b');
    // A long value: first line 76 columns, continuations a space + 75.
    const long = 'z'.repeat(500);
    const folded = formatLdifAttributes([['description', [long]]]).split('\n').slice(0, -1);
    assert.equal(folded[0].length, 76);
    for (const l of folded.slice(1, -1)) {
      assert.equal(l.length, 76);
      assert.equal(l[0], ' ');
    }
    assert.equal(folded.join('').replace(/^description: /, '').replace(/ /g, ''), long);
    const [rec] = (await parseAll(`dn: cn=x\n${text}${formatLdifAttributes([['description', [long]]])}`)).map(entry);
    assert.deepEqual(rec.attrs.get('description'), [exact, over, long]);
    // Base64 folds the same way.
    const b64 = formatLdifAttributes([['photo', [Buffer.alloc(200, 0xff)]]]);
    for (const l of b64.split('\n')) assert.ok(l.length <= 76);
    const [rec2] = (await parseAll(`dn: cn=x\n${b64}`)).map(entry);
    assert.deepEqual(rec2.attrs.get('photo'), [Buffer.alloc(200, 0xff)]);
  });

  test('repeated attributes merge (case-insensitively), options stay distinct, order is kept', async () => {
    const [rec] = (await parseAll(lf(['dn: cn=x', 'cn: a', 'sn: s', 'CN: b', 'cn;lang-en: c', 'Cn;Lang-EN: d']))).map(entry);
    assert.deepEqual([...rec.attrs], [
      ['cn', ['a', 'b']],
      ['sn', ['s']],
      ['cn;lang-en', ['c', 'd']],
    ]);
  });

  test('comments, several blank lines, no final newline, BOM, empty input', async () => {
    const text = '\uFEFF# leading comment\n# folded\n  comment\n\n\n\ndn: cn=a\n# inside\ncn: a\n\n\n\ndn: cn=b\ncn: b';
    const recs = (await parseAll(text)).map(entry);
    assert.deepEqual(
      recs.map((r) => [r.dn, r.line]),
      [
        ['cn=a', 7],
        ['cn=b', 13],
      ],
    );
    assert.deepEqual(await parseAll(''), []);
    assert.deepEqual(await parseAll('version: 1\n'), []);
    assert.deepEqual(await parseAll('# nothing\n\n'), []);
  });

  test('a value folded across many lines, and a folded dn', async () => {
    const [rec] = (await parseAll('dn: cn=Ba\n rbara,dc=ex\n ample\ncn:\n  lead\n ing\n')).map(entry);
    assert.equal(rec.dn, 'cn=Barbara,dc=example');
    // The space left after unfolding is FILL, not part of the value (hence base64 for leading spaces).
    assert.deepEqual(rec.attrs.get('cn'), ['leading']);
  });
});

describe('change records: format and parse back', () => {
  const changes: Exclude<LdifRecord, { kind: 'entry' }>[] = [
    {
      kind: 'add',
      dn: 'uid=bob,dc=example,dc=com',
      attrs: new Map<string, LdifValue[]>([
        ['objectClass', ['top', 'person']],
        ['cn', ['Bob', ' spaced']],
        ['jpegPhoto', [Buffer.from([0xff, 0x00, 0xfe])]],
      ]),
      controls: [],
      line: 1,
    },
    { kind: 'delete', dn: 'uid=bob,dc=example,dc=com', controls: [{ oid: '1.2.840.113556.1.4.805', critical: true }], line: 1 },
    {
      kind: 'modify',
      dn: 'uid=bob,dc=example,dc=com',
      changes: [
        { op: 'replace', attr: 'mail', values: ['bob@example.com', 'robert@example.com'] },
        { op: 'delete', attr: 'description', values: [] },
        { op: 'add', attr: 'cn;lang-de', values: ['Bööb'] },
        { op: 'increment', attr: 'uidNumber', values: ['1'] },
      ],
      controls: [
        { oid: '1.3.6.1.1.13.1', critical: false, value: Buffer.from([0x30, 0x00, 0xff]) },
        { oid: '1.2.3.4', critical: true, value: 'plain' },
      ],
      line: 1,
    },
    {
      kind: 'modrdn',
      dn: 'uid=bob,ou=old,dc=example,dc=com',
      newRdn: 'uid=Bøb',
      deleteOldRdn: true,
      newSuperior: 'ou=new,dc=example,dc=com',
      controls: [],
      line: 1,
    },
    { kind: 'modrdn', dn: 'uid=a,dc=example,dc=com', newRdn: 'uid=b', deleteOldRdn: false, controls: [], line: 1 },
  ];

  test('every kind round-trips', async () => {
    const text = changes.map(formatLdifChange).join('');
    const recs = await parseAll(text);
    assert.equal(recs.length, changes.length);
    let line = 1;
    recs.forEach((rec, i) => {
      assert.deepEqual({ ...rec, line: 0 }, { ...changes[i], line: 0 });
      assert.equal(rec.line, line);
      line += formatLdifChange(changes[i]).split('\n').length - 1;
    });
  });

  test('parseLdifText reads the same records synchronously, and refuses file URLs', async () => {
    const text = changes.map(formatLdifChange).join('');
    assert.deepEqual(parseLdifText(text), await parseAll(text));
    assert.throws(() => parseLdifText('dn: cn=x\njpegPhoto:< file:///etc/hostname\n'), (e: unknown) => e instanceof LdifError && e.line === 2);
    assert.throws(() => parseLdifText('dn: cn=x\nchangetype: modify\nadd: cn\ncn: y\n'), LdifError);
  });

  test('exact text of the pieces the changelog stores', () => {
    assert.equal(
      formatLdifModifications([
        { op: 'replace', attr: 'mail', values: ['x'] },
        { op: 'delete', attr: 'description', values: [] },
      ]),
      'replace: mail\nmail: x\n-\ndelete: description\n-\n',
    );
    assert.equal(formatLdifAttributes([['objectClass', ['top']], ['cn', ['x']]]), 'objectClass: top\ncn: x\n');
    assert.equal(
      formatLdifChange(changes[1]),
      'dn: uid=bob,dc=example,dc=com\ncontrol: 1.2.840.113556.1.4.805 true\nchangetype: delete\n\n',
    );
    assert.equal(
      formatLdifChange(changes[4]),
      'dn: uid=a,dc=example,dc=com\nchangetype: modrdn\nnewrdn: uid=b\ndeleteoldrdn: 0\n\n',
    );
    assert.match(formatLdifChange(changes[2]), /\ncontrol: 1\.3\.6\.1\.1\.13\.1:: MAD\/\ncontrol: 1\.2\.3\.4 true: plain\n/);
  });

  test('formatters refuse what cannot be written', () => {
    assert.throws(() => formatLdifAttributes([['bad name', ['x']]]), RangeError);
    assert.throws(() => formatLdifAttributes([['cn:x', ['x']]]), RangeError);
    assert.throws(() => formatLdifModifications([{ op: 'replace', attr: 'a\nb', values: [] }]), RangeError);
    assert.throws(
      () => formatLdifChange({ kind: 'delete', dn: 'cn=x', controls: [{ oid: 'not-an-oid', critical: false }], line: 1 }),
      RangeError,
    );
  });

  test('moddn is read as modrdn; keywords are case-insensitive', async () => {
    const recs = await parseAll(lf(['DN: cn=a', 'ChangeType: MODDN', 'NewRDN: cn=b', 'DeleteOldRDN: 1']));
    assert.deepEqual(recs, [{ kind: 'modrdn', dn: 'cn=a', newRdn: 'cn=b', deleteOldRdn: true, controls: [], line: 1 }]);
  });

  test('control forms: without criticality, with base64 and plain values', async () => {
    const [rec] = await parseAll(
      lf(['dn: cn=a', 'control: 1.2.3', 'control: 1.2.4 false: v', 'control: 1.2.5:: AP8=', 'control: 1.2.6 TRUE', 'changetype: delete']),
    );
    assert.ok(rec.kind === 'delete');
    assert.deepEqual(rec.controls, [
      { oid: '1.2.3', critical: false },
      { oid: '1.2.4', critical: false, value: 'v' },
      { oid: '1.2.5', critical: false, value: Buffer.from([0x00, 0xff]) },
      { oid: '1.2.6', critical: true },
    ]);
  });
});

// ---------------------------------------------------------------------------

describe('errors carry the offending line', () => {
  const cases: [string, string, number, RegExp][] = [
    ['missing dn', lf(['version: 1', 'cn: x']), 2, /expected "dn:"/],
    ['missing dn in a later record', lf(['dn: cn=a', 'cn: a', '', '', 'cn: b']), 5, /expected "dn:"/],
    ['bad base64', lf(['dn: cn=a', 'cn: a', 'sn:: ab$%', 'uid: a']), 3, /base64/],
    ['bad base64 padding', lf(['dn: cn=a', 'sn:: abc']), 2, /base64/],
    ['unknown changetype', lf(['dn: cn=a', 'changetype: frobnicate']), 2, /unknown changetype/],
    [
      'missing "-" before the next mod-spec',
      lf(['dn: cn=a', 'changetype: modify', 'add: mail', 'mail: a@b', 'replace: cn', 'cn: x', '-']),
      5,
      /expected "-"/,
    ],
    ['missing "-" at the end of the record', lf(['dn: cn=a', 'changetype: modify', 'add: mail', 'mail: a@b', '', 'dn: cn=b', 'cn: b']), 5, /missing "-"/],
    ['continuation with nothing to continue', lf(['dn: cn=a', 'cn: a', '', ' oops']), 4, /continuation/],
    ['unsupported version', lf(['version: 2', 'dn: cn=a', 'cn: a']), 1, /version/],
    ['version not first', lf(['dn: cn=a', 'cn: a', '', 'version: 1']), 4, /expected "dn:"/],
    ['http URL', lf(['dn: cn=a', 'cn: a', 'photo:< http://example.com/x.jpg']), 3, /only file/],
    ['non-UTF-8 dn', lf(['dn:: /w==', 'cn: a']), 1, /UTF-8/],
    ['dn by URL', lf(['dn:< file:///etc/hostname', 'cn: a']), 1, /URL/],
    ['bad attribute description', lf(['dn: cn=a', 'c n: a']), 2, /attribute description/],
    ['no colon', lf(['dn: cn=a', 'cn: a', 'garbage']), 3, /no colon/],
    ['entry without attributes', lf(['dn: cn=a', '', 'dn: cn=b', 'cn: b']), 1, /no attributes/],
    ['control without changetype', lf(['dn: cn=a', 'control: 1.2.3', 'cn: a']), 3, /changetype/],
    ['malformed control', lf(['dn: cn=a', 'control: 1.2.3 maybe', 'changetype: delete']), 2, /control/],
    ['delete with a body', lf(['dn: cn=a', 'changetype: delete', 'cn: a']), 3, /delete/],
    ['deleteoldrdn not 0/1', lf(['dn: cn=a', 'changetype: modrdn', 'newrdn: cn=b', 'deleteoldrdn: yes']), 4, /deleteoldrdn/],
    ['modrdn missing deleteoldrdn', lf(['dn: cn=a', 'changetype: modrdn', 'newrdn: cn=b']), 4, /deleteoldrdn/],
    ['increment with two values', lf(['dn: cn=a', 'changetype: modify', 'increment: n', 'n: 1', 'n: 2', '-']), 3, /increment/],
    ['bad mod-spec', lf(['dn: cn=a', 'changetype: modify', 'frob: mail', '-']), 3, /expected "add:"/],
    ['second dn in a record', lf(['dn: cn=a', 'cn: a', 'dn: cn=b']), 3, /dn/],
    ['changetype after attributes', lf(['dn: cn=a', 'cn: a', 'changetype: add']), 3, /changetype/],
  ];
  for (const [name, input, line, re] of cases) {
    test(name, async () => {
      const { err } = await parseError(input);
      assert.equal(err.line, line, err.message);
      assert.match(err.message, re);
      assert.match(err.message, new RegExp(`^line ${line}: `));
    });
  }

  test('line numbers count CRLF lines, folded lines and comments', async () => {
    const { err } = await parseError(
      ['# c', '#  folded', '  comment', 'dn: cn=a', 'description: fol', ' ded', 'sn:: !!', ''].join('\r\n'),
    );
    assert.equal(err.line, 7);
  });

  test('records before an error are yielded first', async () => {
    const { err, records } = await parseError(lf(['dn: cn=a', 'cn: a', '', 'dn: cn=b', 'cn: b', '', 'bogus']));
    assert.deepEqual(
      records.map((r) => r.dn),
      ['cn=a', 'cn=b'],
    );
    assert.equal(err.line, 7);
  });
});

// ---------------------------------------------------------------------------

const COUNT = 50_000;

function generatedEntry(i: number): string {
  const lines = [
    `dn: uid=user${i},ou=people,dc=example,dc=com`,
    'objectClass: inetOrgPerson',
    `uid: user${i}`,
    `cn: User Number ${i}`,
    `sn:: ${Buffer.from(`Ångström ${i}`).toString('base64')}`,
    `description: ${'long text '.repeat(5)}${i}`,
  ];
  const text = lines.join('\n');
  // Fold some lines, and put a comment in some records.
  return (
    (i % 7 === 0 ? `# entry ${i}\n` : '') +
    text.replace(/^(description: .{50})(.*)$/m, (_, a: string, b: string) => `${a}\n ${b}`)
  );
}

describe('streaming', () => {
  test(`${COUNT.toLocaleString('en')} generated entries in small chunks, CRLF pairs split`, async () => {
    const rnd = prng(2849);
    let splitCrlf = 0;
    // Produce the file lazily and in chunks of 1..97 characters.
    function* chunks(): Generator<string> {
      let pending = 'version: 1\r\n\r\n';
      for (let i = 0; i < COUNT; i++) {
        pending += generatedEntry(i).replace(/\n/g, '\r\n') + '\r\n\r\n';
        while (pending.length > 200) {
          const n = 1 + Math.floor(rnd() * 97);
          const chunk = pending.slice(0, n);
          if (chunk.endsWith('\r') && pending[n] === '\n') splitCrlf++;
          yield chunk;
          pending = pending.slice(n);
        }
      }
      while (pending.length) {
        const n = 1 + Math.floor(rnd() * 97);
        yield pending.slice(0, n);
        pending = pending.slice(n);
      }
    }
    let n = 0;
    for await (const rec of parseLdif(chunks())) {
      if (n % 9973 === 0 || n === COUNT - 1) {
        const e = entry(rec);
        assert.equal(e.dn, `uid=user${n},ou=people,dc=example,dc=com`);
        assert.deepEqual(e.attrs.get('sn'), [`Ångström ${n}`]);
        assert.deepEqual(e.attrs.get('description'), [`${'long text '.repeat(5)}${n}`]);
        assert.deepEqual(e.attrs.get('cn'), [`User Number ${n}`]);
      }
      n++;
    }
    assert.equal(n, COUNT);
    assert.ok(splitCrlf > 100, `CRLF pairs split: ${splitCrlf}`);
  });

  test('a file read with fs.createReadStream, and an async source', async () => {
    const file = path.join(tmp, 'big.ldif');
    const out = fs.createWriteStream(file);
    for (let i = 0; i < 5000; i++) out.write(generatedEntry(i) + '\n\n');
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    let n = 0;
    for await (const rec of parseLdif(fs.createReadStream(file, { encoding: 'utf8', highWaterMark: 333 }))) {
      assert.equal(rec.dn, `uid=user${n},ou=people,dc=example,dc=com`);
      n++;
    }
    assert.equal(n, 5000);
    // Raw Buffer chunks (multi-byte characters split between them) work too.
    n = 0;
    for await (const rec of parseLdif(fs.createReadStream(file, { highWaterMark: 101 }) as AsyncIterable<any>)) {
      assert.equal(entry(rec).attrs.get('sn')?.[0], `Ångström ${n}`);
      n++;
    }
    assert.equal(n, 5000);
  });
});
