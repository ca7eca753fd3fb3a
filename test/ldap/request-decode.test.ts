/**
 * request-decode.ts: bind, modify, add, delete, modifyDN, compare and
 * extended requests (Password Modify's value too) decode with their DNs
 * exactly as sent (no unescaping), binary values intact; what does not
 * decode is undefined (the operation's handler answers protocolError), and
 * every request tag is in the table the connection dispatches from.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  decodeBindRequest, decodeExtendedRequest, decodePasswdModifyValue, decodeUpdateRequest, envelope, requestKind,
} from '../../server/ldap/request-decode';
import { validateLdapMessage } from '../../server/ldap-framing';
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
  assert.equal(envelope(unknown).messageId, 8);
  assert.equal(requestKind(envelope(unknown).op.tag)?.responseTag, 0x67, 'answered with a ModifyResponse');
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

test('Password Modify: absent value, fields, malformed value', () => {
  const exop = (value?: Buffer) => message(9, tlv(0x77, Buffer.concat([str(0x80, '1.3.6.1.4.1.4203.1.11.1'), ...(value ? [tlv(0x81, value)] : [])])));
  assert.deepEqual(decodeExtendedRequest(exop()), { messageId: 9, controls: [], name: '1.3.6.1.4.1.4203.1.11.1', value: undefined });
  assert.deepEqual(decodePasswdModifyValue(undefined), {});
  const value = seq(str(0x80, 'dn:uid=a,o=internet'), str(0x82, 'new'));
  assert.deepEqual(decodeExtendedRequest(exop(value))?.value, value);
  assert.deepEqual(decodePasswdModifyValue(value), { userIdentity: 'dn:uid=a,o=internet', newPassword: Buffer.from('new') });
  assert.equal(decodePasswdModifyValue(str(0x04, 'x')).malformed, true);
  assert.equal(decodePasswdModifyValue(seq(str(0x82, 'a'), str(0x80, 'b'))).malformed, true, 'fields out of order');
  assert.equal(decodePasswdModifyValue(Buffer.concat([value, Buffer.from([0])])).malformed, true, 'trailing bytes');
});

test('extended requests: the name, the value as bytes; not an update', () => {
  const whoami = message(4, tlv(0x77, str(0x80, '1.3.6.1.4.1.4203.1.11.3')));
  assert.equal(decodeUpdateRequest(whoami), undefined);
  assert.deepEqual(decodeExtendedRequest(whoami), { messageId: 4, controls: [], name: '1.3.6.1.4.1.4203.1.11.3', value: undefined });
  const provision = message(5, tlv(0x77, Buffer.concat([str(0x80, '1.3.6.1.4.1.32473.1.3.1'), str(0x81, Buffer.from([0x65, 0xff]))])));
  assert.deepEqual(decodeExtendedRequest(provision)?.value, Buffer.from([0x65, 0xff]));
});

test('bind: version, the DN as sent, the simple password as bytes; SASL gives its mechanism only', () => {
  const simple = message(1, tlv(0x60, Buffer.concat([int(3), str(0x04, 'cn=x\\+e,o=internet'), str(0x80, Buffer.from([0xc3, 0x28]))])));
  validateLdapMessage(simple, 32);
  assert.deepEqual(decodeBindRequest(simple), {
    messageId: 1, controls: [], version: 3, name: 'cn=x\\+e,o=internet', simple: Buffer.from([0xc3, 0x28]),
  });
  const v2 = decodeBindRequest(message(2, tlv(0x60, Buffer.concat([int(2), str(0x04, ''), str(0x80, '')]))));
  assert.equal(v2?.version, 2);
  const sasl = message(3, tlv(0x60, Buffer.concat([int(3), str(0x04, ''), tlv(0xa3, Buffer.concat([str(0x04, 'PLAIN'), str(0x04, '\0u\0secret')]))])));
  assert.deepEqual(decodeBindRequest(sasl), { messageId: 3, controls: [], version: 3, name: '', sasl: { mechanism: 'PLAIN' } });
  assert.equal(decodeBindRequest(message(4, tlv(0x60, Buffer.concat([int(3), str(0x04, ''), str(0x81, 'x')])))), undefined, 'an unknown authentication choice');
});

test('an add it cannot decode is undefined; the table knows every request tag, and no response tag', () => {
  const odd = message(7, tlv(0x68, Buffer.concat([str(0x04, 'cn=a,o=internet'), seq(int(1))])));
  assert.equal(decodeUpdateRequest(odd), undefined);
  assert.equal(requestKind(envelope(odd).op.tag)?.name, 'AddRequest');
  assert.deepEqual([0x60, 0x42, 0x63, 0x66, 0x68, 0x4a, 0x6c, 0x6e, 0x50, 0x77].map((t) => requestKind(t)?.op),
    ['bind', 'unbind', 'search', 'modify', 'add', 'delete', 'modDN', 'compare', 'abandon', 'extended']);
  for (const response of [0x61, 0x64, 0x65, 0x67, 0x69, 0x6b, 0x6d, 0x6f, 0x73, 0x78, 0x79]) assert.equal(requestKind(response), undefined);
});

test('controls: after the protocolOp as [0]; a trailing component of another tag is ignored (RFC 4511 §4)', () => {
  const del = tlv(0x4a, Buffer.from('cn=a,o=internet'));
  const ctl = seq(str(0x04, '2.16.840.1.113730.3.4.2'));
  assert.deepEqual(envelope(message(1, del, [ctl])).controls, [{ type: '2.16.840.1.113730.3.4.2', critical: false, value: undefined }]);
  const trailing = seq(int(1), del, str(0x85, 'future'));
  assert.deepEqual(envelope(trailing).controls, []);
  assert.deepEqual(decodeUpdateRequest(trailing), { messageId: 1, controls: [], op: 'delete', entry: 'cn=a,o=internet' });
});
