/**
 * request-decode.ts: modify, add, delete, modifyDN, compare and Password Modify
 * requests decode with their DNs exactly as sent (no unescaping), binary
 * values intact, and requests it cannot decode are still recognised so the
 * server answers protocolError instead of handing them to ldapjs.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { decodeUpdateRequest, undecodedUpdate } from '../../server/ldap/request-decode';
import { validateLdapMessage } from '../../server/ldap/framing';
import { int, message, seq, str, tlv } from '../fixtures/ber';

test('add: the DN as sent, values as bytes, controls', () => {
  const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xe0]);
  const op = tlv(0x68, Buffer.concat([
    str(0x04, 'cn=x\\+e,o=internet'),
    seq(seq(str(0x04, 'objectClass'), tlv(0x31, str(0x04, 'organizationalRole'))), seq(str(0x04, 'jpegPhoto'), tlv(0x31, str(0x04, jpeg)))),
  ]));
  const ctl = seq(str(0x04, '2.16.840.1.113730.3.4.2'), tlv(0x01, Buffer.from([0xff])));
  const pdu = message(5, op, [ctl]);
  validateLdapMessage(pdu, 32);
  const call = decodeUpdateRequest(pdu);
  assert.ok(call && call.op === 'add');
  assert.equal(call.messageId, 5);
  assert.equal(call.entry, 'cn=x\\+e,o=internet');
  assert.deepEqual(call.attributes.map((a) => a.type), ['objectClass', 'jpegPhoto']);
  assert.deepEqual(call.attributes[1].values, [jpeg]);
  assert.deepEqual(call.controls, [{ type: '2.16.840.1.113730.3.4.2', critical: true, value: undefined }]);
});

test('modify: the DN as sent, every operation (increment too), values as bytes; an unknown operation is ours to refuse', () => {
  const jpeg = Buffer.from([0xff, 0xd8, 0x00, 0x80]);
  const change = (op: number, type: string, ...values: Buffer[]) =>
    seq(tlv(0x0a, Buffer.from([op])), seq(str(0x04, type), tlv(0x31, Buffer.concat(values.map((v) => str(0x04, v))))));
  const op = (...changes: Buffer[]) => tlv(0x66, Buffer.concat([str(0x04, 'cn=x\\+e,o=internet'), seq(...changes)]));
  const pdu = message(7, op(change(0, 'jpegPhoto', jpeg), change(1, 'description'), change(2, 'cn', Buffer.from('a'), Buffer.from('b')), change(3, 'mailMsgQuota', Buffer.from('5'))));
  validateLdapMessage(pdu, 32);
  assert.deepEqual(decodeUpdateRequest(pdu), {
    messageId: 7, controls: [], op: 'modify', entry: 'cn=x\\+e,o=internet', changes: [
      { operation: 'add', type: 'jpegPhoto', values: [jpeg] },
      { operation: 'delete', type: 'description', values: [] },
      { operation: 'replace', type: 'cn', values: [Buffer.from('a'), Buffer.from('b')] },
      { operation: 'increment', type: 'mailMsgQuota', values: [Buffer.from('5')] },
    ],
  });
  const unknown = message(8, op(change(4, 'cn', Buffer.from('a'))));
  assert.equal(decodeUpdateRequest(unknown), undefined);
  assert.deepEqual(undecodedUpdate(unknown), { messageId: 8, op: 'modify' });
});

test('delete, modifyDN and compare keep every DN byte', () => {
  const del = decodeUpdateRequest(message(1, str(0x4a, 'garbage')));
  assert.deepEqual(del, { messageId: 1, controls: [], op: 'delete', entry: 'garbage' });
  const mod = decodeUpdateRequest(message(2, tlv(0x6c, Buffer.concat([
    str(0x04, 'cn=a,o=internet'), str(0x04, 'cn=Dö\\+e\\, J\\"r\\3B'), tlv(0x01, Buffer.from([0xff])), str(0x80, 'dc=net,o=internet'),
  ]))));
  assert.deepEqual(mod, {
    messageId: 2, controls: [], op: 'modifyDN', entry: 'cn=a,o=internet', newRdn: 'cn=Dö\\+e\\, J\\"r\\3B', deleteOldRdn: true, newSuperior: 'dc=net,o=internet',
  });
  const cmp = decodeUpdateRequest(message(3, tlv(0x6e, Buffer.concat([str(0x04, 'cn=a"b,o=internet'), seq(str(0x04, 'sn'), str(0x04, 'x'))]))));
  assert.deepEqual(cmp, { messageId: 3, controls: [], op: 'compare', entry: 'cn=a"b,o=internet', attribute: 'sn', value: Buffer.from('x') });
});

test('Password Modify: absent value, fields, malformed value; other extended ops are not ours', () => {
  const exop = (value?: Buffer) => message(9, tlv(0x77, Buffer.concat([str(0x80, '1.3.6.1.4.1.4203.1.11.1'), ...(value ? [tlv(0x81, value)] : [])])));
  assert.deepEqual(decodeUpdateRequest(exop()), { messageId: 9, controls: [], op: 'passwordModify' });
  assert.deepEqual(decodeUpdateRequest(exop(seq(str(0x80, 'dn:uid=a,o=internet'), str(0x82, 'new')))), {
    messageId: 9, controls: [], op: 'passwordModify', userIdentity: 'dn:uid=a,o=internet', newPassword: Buffer.from('new'),
  });
  assert.equal((decodeUpdateRequest(exop(str(0x04, 'x'))) as { malformed?: boolean }).malformed, true);
  assert.equal((decodeUpdateRequest(exop(seq(str(0x82, 'a'), str(0x80, 'b')))) as { malformed?: boolean }).malformed, true, 'fields out of order');
  const whoami = message(4, tlv(0x77, str(0x80, '1.3.6.1.4.1.4203.1.11.3')));
  assert.equal(decodeUpdateRequest(whoami), undefined);
  assert.equal(undecodedUpdate(whoami), undefined);
});

test('an add it cannot decode is still recognised (answered with protocolError, not by ldapjs)', () => {
  const odd = message(7, tlv(0x68, Buffer.concat([str(0x04, 'cn=a,o=internet'), seq(int(1))])));
  assert.equal(decodeUpdateRequest(odd), undefined);
  assert.deepEqual(undecodedUpdate(odd), { messageId: 7, op: 'add' });
  assert.equal(undecodedUpdate(message(8, tlv(0x42, Buffer.alloc(0)))), undefined, 'unbind is not ours');
});
