/**
 * The server's search decoder agrees with ldapjs, an independent
 * implementation: SearchRequests built by ldapjs's own encoder decode to the
 * same base, scope, limits, attributes, controls and filter (as FilterInput)
 * through both.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { eq, searchPdu } from '../fixtures/ber';
import { decodeSearchRequest, decodePagedValue } from '../../server/ldap/search-decode';
import { fromLdapjsFilter } from '../fixtures/ldapjs-filter';
import { validateLdapMessage } from '../../server/ldap-framing';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const messages = require('@ldapjs/messages');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { BerReader } = require('@ldapjs/asn1');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { PagedResultsControl } = require('@ldapjs/controls');

const FILTERS = [
  '(mail=alice@example.org)',
  '(&(objectClass=inetOrgPerson)(|(cn=al*ce*)(!(sn=x)))(mail=*))',
  '(dNSTTL>=300)', '(dNSTTL<=60)', '(cn~=smith)',
  '(uid:caseExactMatch:=Foo)', '(:dn:2.5.13.5:=bar)',
  '(cn=*middle*)', '(cn=start*)', '(cn=*end)',
  '(cn=Ångström)',
];

for (const f of FILTERS) {
  test(`decodes ${f} as ldapjs does`, () => {
    const req = new messages.SearchRequest({
      messageId: 42, baseObject: 'dc=example,dc=org,o=internet', scope: 'sub', sizeLimit: 7, timeLimit: 3, typesOnly: true,
      filter: f, attributes: ['MAIL', 'cn', '+'],
      controls: [new PagedResultsControl({ criticality: true, value: { size: 25, cookie: Buffer.from('1234') } })],
    });
    const pdu: Buffer = req.toBer().buffer;
    validateLdapMessage(pdu, 64);
    const ours = decodeSearchRequest(pdu);
    assert.ok(ours, 'decoded');
    const theirs = messages.LdapMessage.parse(new BerReader(pdu));
    assert.equal(ours.messageId, 42);
    assert.equal(ours.base, 'dc=example,dc=org,o=internet');
    assert.equal(ours.scope, 2);
    assert.equal(ours.sizeLimit, 7);
    assert.equal(ours.timeLimit, 3);
    assert.equal(ours.typesOnly, true);
    assert.deepEqual(ours.attributes, ['mail', 'cn', '+']);
    assert.deepEqual(ours.filter, fromLdapjsFilter(theirs.filter));
    assert.equal(ours.controls.length, 1);
    assert.equal(ours.controls[0].critical, true);
    assert.deepEqual(decodePagedValue(ours.controls[0].value), { size: 25, cookie: Buffer.from('1234') });
  });
}

test('assertion values are raw octets (RFC 4511 §4.1.6): no unescaping on the wire', () => {
  // ldapjs's own encoder writes filter escapes literally, so this one is built by hand, as ldapsearch sends it.
  const pdu = searchPdu(9, '', 2, [], eq('cn', 'a*b (c)\\'));
  validateLdapMessage(pdu, 64);
  assert.deepEqual(decodeSearchRequest(pdu)?.filter, { type: 'equal', attr: 'cn', value: 'a*b (c)\\' });
});

test('other operations are not searches', () => {
  const bind = new messages.BindRequest({ messageId: 1, name: 'cn=admin,o=internet', credentials: 'x' });
  assert.equal(decodeSearchRequest(bind.toBer().buffer), undefined);
});
