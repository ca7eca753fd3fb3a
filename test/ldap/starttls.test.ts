/**
 * LDAP StartTLS (RFC 4511 §4.14, RFC 4513 §3) with the OpenLDAP clients
 * (-ZZ: TLS required) and with a raw socket that checks what it negotiated.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { adminArgs, ldapResultCode, run, startTestAppliance, type TestAppliance } from '../helpers';
import { children, readTlv } from '../../server/ber';
import { extendedRequest, message } from '../fixtures/ber';

// The generated certificate names the appliance, not 127.0.0.1: the clients are told not to verify it.
process.env.LDAPTLS_REQCERT = 'never';

let t: TestAppliance;
before(async () => {
  t = await startTestAppliance();
});
after(async () => t.close());

const OID = '1.3.6.1.4.1.1466.20037';

/** An ExtendedRequest PDU for StartTLS (with a request value when `value` is given). */
const startTlsPdu = (id: number, value?: Buffer): Buffer => message(id, extendedRequest(OID, value));

/** WhoAmI (RFC 4532) as a PDU. */
const whoAmIPdu = (id: number): Buffer => message(id, extendedRequest('1.3.6.1.4.1.4203.1.11.3'));

/** Reads one LDAPMessage from `s`; resolves with [messageId, protocolOp tag, resultCode]. */
function readResponse(s: net.Socket | tls.TLSSocket): Promise<[number, number, number]> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      try {
        const msg = readTlv(buf, 0);
        const [id, op] = children(buf, msg);
        const [code] = children(buf, op);
        s.off('data', onData);
        resolve([buf[id.start], op.tag, buf[code.start]]);
      } catch {
        // not complete yet
      }
    };
    s.on('data', onData);
    s.once('error', reject);
    s.once('close', () => reject(new Error('closed')));
  });
}

function connect(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(t.app.ports.ldap, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

test('the root DSE offers StartTLS', async () => {
  const r = await run('ldapsearch', [...adminArgs(t), '-LLL', '-b', '', '-s', 'base', '(objectClass=*)', 'supportedExtension']);
  assert.match(r.stdout, new RegExp(`supportedExtension: ${OID.replace(/\./g, '\\.')}`));
});

test('ldapsearch, ldapmodify, ldapwhoami and ldappasswd with -ZZ (TLS required)', async () => {
  const Z = ['-ZZ', ...adminArgs(t)];
  const add = await run('ldapadd', Z, 'dn: cn=tls user,o=internet\nobjectClass: person\ncn: tls user\nsn: before\n');
  assert.equal(add.code, 0, add.stderr);
  const mod = await run('ldapmodify', Z, 'dn: cn=tls user,o=internet\nchangetype: modify\nreplace: sn\nsn: after\n');
  assert.equal(mod.code, 0, mod.stderr);
  const s = await run('ldapsearch', [...Z, '-LLL', '-b', 'cn=tls user,o=internet', '-s', 'base', 'sn']);
  assert.equal(s.code, 0, s.stderr);
  assert.match(s.stdout, /^sn: after$/m);
  const who = await run('ldapwhoami', Z);
  assert.equal(who.stdout.trim(), `dn:${t.adminDN}`);
  const pw = await run('ldappasswd', [...Z, '-s', 'tls-secret-1', 'cn=tls user,o=internet']);
  assert.equal(pw.code, 0, pw.stderr);
  const bind = await run('ldapwhoami', ['-ZZ', '-x', '-H', t.ldapUrl, '-D', 'cn=tls user,o=internet', '-w', 'tls-secret-1']);
  assert.equal(bind.stdout.trim(), 'dn:cn=tls user,o=internet', bind.stderr);
});

test('a raw client: success in the clear, then TLS with the appliance certificate; a second StartTLS is operationsError', async () => {
  const raw = await connect();
  raw.write(startTlsPdu(1));
  assert.deepEqual(await readResponse(raw), [1, 0x78, 0]);
  const secure = tls.connect({ socket: raw, rejectUnauthorized: false });
  await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
  const cert = secure.getPeerCertificate();
  assert.equal(cert.subject.CN, 'mx.dcmx.test', 'the appliance certificate (DCMX_HOSTNAME)');
  assert.ok(['TLSv1.2', 'TLSv1.3'].includes(secure.getProtocol() ?? ''), secure.getProtocol() ?? '');
  secure.write(whoAmIPdu(2));
  assert.deepEqual(await readResponse(secure), [2, 0x78, 0], 'operations go on over TLS');
  secure.write(startTlsPdu(3));
  assert.deepEqual(await readResponse(secure), [3, 0x78, 1], 'TLS is already established (RFC 4511 §4.14.2)');
  secure.end();
});

test('StartTLS with a request value is protocolError; garbage instead of a TLS hello closes only that connection', async () => {
  const a = await connect();
  a.write(startTlsPdu(1, Buffer.from('x')));
  assert.deepEqual(await readResponse(a), [1, 0x78, 2]);
  a.write(startTlsPdu(2));
  assert.deepEqual(await readResponse(a), [2, 0x78, 0]);
  const closed = new Promise<void>((resolve) => a.once('close', () => resolve()));
  a.write(Buffer.from('this is not a TLS ClientHello\r\n'.repeat(20)));
  await closed;
  const r = await run('ldapsearch', [...adminArgs(t), '-LLL', '-b', 'o=internet', '-s', 'base', '1.1']);
  assert.equal(ldapResultCode(r), 0, r.stderr);
  assert.match(r.stdout, /^dn: o=internet$/m);
});
