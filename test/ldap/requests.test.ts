/**
 * Requests as the connection dispatches them (connection.ts), sent raw:
 * binds (LDAPv3 only, a name that is not a DN), the critical-control check
 * before every operation with a response (StartTLS too), extended requests
 * by name (an unknown one gets the LDAPResult fields only, RFC 4511 §4.12),
 * abandon and unbind, a trailing component after the protocolOp (ignored,
 * §4), and a response PDU sent by the client (a Notice of Disconnection,
 * §4.1.1).
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { ADMIN_PASSWORD, adminArgs, ldapResultCode, run, startTestAppliance, type TestAppliance } from '../helpers';
import { bindPdu, control, extendedRequest, int, message, octets, searchPdu, seq, str, tlv, unbindRequest } from '../fixtures/ber';
import { connect, Responses } from '../fixtures/ldap';
import { children, readTlv } from '../../server/ber';

let t: TestAppliance;
before(async () => {
  t = await startTestAppliance();
});
after(async () => t.close());

const WHOAMI = '1.3.6.1.4.1.4203.1.11.3';
const START_TLS = '1.3.6.1.4.1.1466.20037';
const NOTICE_OF_DISCONNECTION = '1.3.6.1.4.1.1466.20036';

/** A raw connection and its responses. */
async function open(): Promise<Responses> {
  return new Responses(await connect(t.app.ports.ldap));
}

/** The components of a response's protocolOp: [resultCode, matchedDN, diagnosticMessage, ...] as raw TLVs with their bytes. */
function fields(raw: Buffer): { tag: number; value: Buffer }[] {
  const [, op] = children(raw, readTlv(raw, 0));
  return children(raw, op).map((c) => ({ tag: c.tag, value: raw.subarray(c.start, c.end) }));
}

/** The authzId a Who am I? response carries ('' for anonymous). */
function authzId(raw: Buffer): string {
  return fields(raw).find((f) => f.tag === 0x8b)?.value.toString('utf8') ?? '';
}

test('anonymous and simple binds are LDAPv3 only: version 2 is protocolError and leaves the session anonymous', async () => {
  const r = await open();
  r.sock.write(message(1, tlv(0x60, int(3), octets(''), str(0x80, ''))));
  assert.equal((await r.result(1)).code, 0, 'anonymous LDAPv3 bind');
  r.sock.write(message(2, tlv(0x60, int(2), octets(''), str(0x80, ''))));
  assert.equal((await r.result(2)).code, 2, 'anonymous LDAPv2 bind');
  r.sock.write(message(3, tlv(0x60, int(2), octets(t.adminDN), str(0x80, ADMIN_PASSWORD))));
  const v2 = await r.result(3);
  assert.deepEqual([v2.tag, v2.code], [0x61, 2], 'an LDAPv2 bind of the administrator');
  assert.match(fields(v2.raw)[2].value.toString(), /only LDAP version 3/);
  r.sock.write(message(4, extendedRequest(WHOAMI)));
  assert.equal(authzId((await r.result(4)).raw), '', 'still anonymous');
  r.sock.write(bindPdu(5, t.adminDN, ADMIN_PASSWORD));
  assert.equal((await r.result(5)).code, 0);
  r.sock.write(message(6, extendedRequest(WHOAMI)));
  assert.equal(authzId((await r.result(6)).raw), `dn:${t.adminDN}`);
  r.sock.destroy();
});

test('a bind name that is not a DN is invalidDNSyntax (34), and the connection stays up', async () => {
  const w = await run('ldapwhoami', ['-x', '-H', t.ldapUrl, '-D', 'not a dn', '-w', 'x']);
  assert.equal(ldapResultCode(w), 34, w.stderr);
  const r = await open();
  r.sock.write(bindPdu(1, 'cn=a,,o=internet', 'x'));
  assert.equal((await r.result(1)).code, 34);
  r.sock.write(bindPdu(2, t.adminDN, ADMIN_PASSWORD));
  assert.equal((await r.result(2)).code, 0);
  r.sock.destroy();
});

test('an unsupported critical control fails Who am I? and StartTLS with 12; the connection goes on in the clear', async () => {
  const r = await open();
  const critical = control('1.2.3.4.5', true);
  r.sock.write(message(1, extendedRequest(WHOAMI), [critical]));
  const who = await r.result(1);
  assert.deepEqual([who.tag, who.code], [0x78, 12]);
  r.sock.write(message(2, extendedRequest(START_TLS), [critical]));
  const tls = await r.result(2);
  assert.deepEqual([tls.tag, tls.code], [0x78, 12]);
  r.sock.write(message(3, extendedRequest(WHOAMI), [control('1.2.3.4.5', false)]));
  const plain = await r.result(3);
  assert.deepEqual([plain.tag, plain.code], [0x78, 0], 'a non-critical unknown control is ignored; no TLS began');
  r.sock.destroy();
});

test('an unknown extended operation: protocolError with the LDAPResult fields only (RFC 4511 §4.12)', async () => {
  const r = await open();
  r.sock.write(message(1, extendedRequest('1.2.3.4.5.6.7', Buffer.from('value'))));
  const x = await r.result(1);
  assert.deepEqual([x.tag, x.code], [0x78, 2]);
  const f = fields(x.raw);
  assert.deepEqual(f.map((c) => c.tag), [0x0a, 0x04, 0x04], 'no responseName, no responseValue');
  assert.equal(f[2].value.toString(), '1.2.3.4.5.6.7 not supported');
  r.sock.destroy();
});

test('abandon is not answered; the next request is', async () => {
  const r = await open();
  r.sock.write(Buffer.concat([message(1, str(0x50, Buffer.from([7]))), message(2, extendedRequest(WHOAMI))]));
  await r.result(2);
  assert.deepEqual(r.all.map((m) => m.id), [2]);
  r.sock.destroy();
});

test('unbind ends the connection: a search sent behind it is not answered', async () => {
  const r = await open();
  r.sock.write(Buffer.concat([message(1, unbindRequest()), searchPdu(2, 'o=internet', 0)]));
  await r.until(() => r.closed, 'the server to close the connection').catch(() => undefined);
  assert.equal(r.closed, true);
  assert.deepEqual(r.all, []);
});

test('a component after the protocolOp that is not Controls is ignored (RFC 4511 §4)', async () => {
  const r = await open();
  r.sock.write(bindPdu(1, t.adminDN, ADMIN_PASSWORD));
  await r.result(1);
  const compare = tlv(0x6e, octets('o=internet'), seq(octets('objectClass'), octets('organization')));
  r.sock.write(seq(int(2), compare, str(0x85, 'a later extension')));
  assert.equal((await r.result(2)).code, 6, 'compareTrue');
  r.sock.destroy();
});

test('a response sent by the client gets a Notice of Disconnection (protocolError) and the connection is closed (RFC 4511 §4.1.1)', async () => {
  const r = await open();
  const searchDone = tlv(0x65, tlv(0x0a, [0]), octets(''), octets(''));
  r.sock.write(message(1, searchDone));
  await r.until(() => r.closed, 'the server to close the connection').catch(() => undefined);
  assert.equal(r.closed, true);
  assert.equal(r.all.length, 1, 'one message: the notice');
  const [notice] = r.all;
  assert.deepEqual([notice.id, notice.tag, notice.code], [0, 0x78, 2]);
  assert.equal(fields(notice.raw).find((f) => f.tag === 0x8a)?.value.toString(), NOTICE_OF_DISCONNECTION);
  const s = await run('ldapsearch', [...adminArgs(t), '-LLL', '-b', 'o=internet', '-s', 'base', '1.1']);
  assert.equal(s.code, 0, s.stderr);
});
