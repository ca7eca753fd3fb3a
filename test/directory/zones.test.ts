/**
 * The zone hooks on the write path: a dc chain under the suffix must spell a
 * DNS name (RFC 1035 §2.3.4, §3.1), whichever way the entry is written.
 */
import { before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { attrs, memoryDirectory, SUFFIX } from './fixture';
import { escapeDnValue } from '../../schema/dn';
import type { Directory } from '../../server/directory/directory';
import type { Identity } from '../../server/directory/access';
import { DirectoryError } from '../../server/directory/errors';
import { dnsLabelProblem } from '../../server/directory/zones';

let dir: Directory;
let admin: Identity;
const ZONE = `dc=example,dc=com,${SUFFIX}`;

before(async () => {
  ({ dir, admin } = await memoryDirectory());
  dir.addSync(admin, `dc=com,${SUFFIX}`, attrs({ objectClass: 'domain', dc: 'com' }));
  dir.addSync(admin, ZONE, attrs({
    objectClass: ['dNSDomain2', 'domain'], dc: 'example', sOARecord: 'ns1.example.com. hostmaster.example.com. 1 3600 900 604800 60',
  }));
});

const addLabel = (dc: string, parent = ZONE) =>
  dir.addSync(admin, `dc=${escapeDnValue(dc)},${parent}`, attrs({ objectClass: ['dNSDomain2', 'domain'], dc, aRecord: '192.0.2.1' }));

const refusedAs = (result: string) => (e: unknown) => e instanceof DirectoryError && e.result === result;

describe('dc values under the suffix are DNS labels', () => {
  const LEGAL = ['_dmarc', '*', 'xn--bcher-kva', 'Mixed-Case9', '_sip', 'a'.repeat(63), 'a+b'];
  for (const dc of LEGAL) {
    test(`accepted: ${JSON.stringify(dc)}`, () => {
      assert.equal(dnsLabelProblem(dc), undefined);
      addLabel(dc);
    });
  }

  const ILLEGAL: [string, string, string?][] = [
    ['a'.repeat(64), 'over 63 octets'],
    ['a'.repeat(70), 'over 63 octets'],
    ['a.b', 'a dot would make two labels'],
    ['sp ace', 'white space'],
    ['tab\tx', 'a control character'],
    ['nl\nx', 'a line break'],
    ['bücher', 'non-ASCII: A-labels only; dc is an IA5 string (RFC 4519), so the schema refuses it first', 'invalidDNSyntax'],
    ['back\\slash', 'the presentation escape'],
    ['semi;colon', 'a master-file comment'],
    ['paren(', 'a master-file grouping'],
  ];
  for (const [dc, why, result = 'namingViolation'] of ILLEGAL) {
    test(`refused with ${result}: ${JSON.stringify(dc)} (${why})`, () => {
      assert.ok(dnsLabelProblem(dc));
      assert.throws(() => addLabel(dc), refusedAs(result));
    });
  }

  test('a name over 255 octets is refused even when every label is fine', () => {
    let parent = ZONE;
    // example.com (13 octets on the wire) + 3 × 64 = 205; a fourth 63-octet label makes 269.
    for (const c of ['b', 'c', 'd']) {
      addLabel(c.repeat(63), parent);
      parent = `dc=${c.repeat(63)},${parent}`;
    }
    assert.throws(() => addLabel('e'.repeat(63), parent), refusedAs('namingViolation'));
    addLabel('e'.repeat(40), parent); // 246 octets: fine
  });

  test('renames are checked, moved descendants included; a modify of an old entry is not', () => {
    addLabel('old');
    addLabel('child', `dc=old,${ZONE}`);
    assert.throws(() => dir.modifyDN(admin, `dc=old,${ZONE}`, 'dc=o l d', true), refusedAs('namingViolation'));
    // Moving the subtree under a long name: old.<deep> has 250 octets, child.old.<deep> 256.
    let deep = ZONE;
    for (const l of ['p'.repeat(63), 'q'.repeat(63), 'r'.repeat(63), 's'.repeat(40)]) {
      addLabel(l, deep);
      deep = `dc=${l},${deep}`;
    }
    assert.throws(() => dir.modifyDN(admin, `dc=old,${ZONE}`, 'dc=old', true, deep), refusedAs('namingViolation'));
    dir.modifyDN(admin, `dc=old,${ZONE}`, 'dc=new', true);
    dir.modifySync(admin, `dc=new,${ZONE}`, [{ op: 'replace', type: 'aRecord', values: ['192.0.2.2'] }]);
  });

  test('outside a dc chain the rule does not apply', () => {
    dir.addSync(admin, `ou=people,${ZONE}`, attrs({ objectClass: 'organizationalUnit', ou: 'people' }));
    dir.addSync(admin, `dc=sp ace,ou=people,${ZONE}`, attrs({ objectClass: 'domain', dc: 'sp ace' }));
  });
});
