/**
 * Hostile input against the running LDAP endpoint: the PDUs that kill or hang
 * stock ldapjs, truncated and random bytes, deep filters, huge declared
 * lengths, mid-PDU disconnects. After each, another connection must still get
 * a search answered.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import * as fs from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { ADMIN_PASSWORD, run, startSpawned, stopChild, tempDir } from '../helpers';
import { searchPdu as searchPduOf, str, tlv } from '../fixtures/ber';
import { within } from '../fixtures/wait';

// The appliance runs in its own process, so that a crash shows as a dead
// process here instead of an exception swallowed by the test runner.
let child: ChildProcess;
let port = 0;
let dataDir = '';
before(async () => {
  dataDir = tempDir();
  const a = await startSpawned(dataDir);
  child = a.child;
  port = a.ports.ldap;
});
after(async () => {
  await stopChild(child);
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const NOTICE_OID = Buffer.from('1.3.6.1.4.1.1466.20036');

/** The reply is a Notice of Disconnection (RFC 4511 §4.4.1) with protocolError (2). */
function assertNotice(reply: Buffer): void {
  assert.ok(reply.includes(NOTICE_OID), `expected a notice of disconnection, got ${reply.toString('hex')}`);
  assert.ok(reply.includes(Buffer.from([0x0a, 0x01, 0x02])), 'resultCode protocolError');
}

/**
 * Sends bytes on a fresh connection; resolves with what came back once the server has closed it
 * (`end`: after this side has ended it too; `closeAfter`: this side closes at once), or once
 * `until` holds for what came back. The bound only guards against a hang.
 */
function send(bytes: Buffer | Buffer[], opts: { until?: (got: Buffer) => boolean; end?: boolean; closeAfter?: boolean; from?: string } = {}): Promise<Buffer> {
  return within('the server to close the connection or answer', new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1', localAddress: opts.from });
    const got: Buffer[] = [];
    const done = () => {
      sock.destroy();
      resolve(Buffer.concat(got));
    };
    sock.on('data', (d) => {
      got.push(d);
      if (opts.until?.(Buffer.concat(got))) done();
    });
    sock.on('error', done);
    sock.on('close', done);
    sock.on('connect', () => {
      for (const b of Array.isArray(bytes) ? bytes : [bytes]) sock.write(b);
      if (opts.closeAfter) sock.destroy();
      else if (opts.end) sock.end();
    });
  }), 20_000);
}

/** A search from another connection still works. */
async function stillAnswers(): Promise<void> {
  assert.equal(child.exitCode, null, 'the appliance is still running');
  const auth = ['-x', '-H', `ldap://127.0.0.1:${port}`, '-D', 'cn=admin,o=internet', '-w', ADMIN_PASSWORD];
  const r = await run('ldapsearch', [...auth, '-LLL', '-b', 'o=internet', '-s', 'base', 'dn']);
  assert.equal(r.code, 0, `server stopped answering: ${r.stderr}`);
  assert.match(r.stdout, /^dn: o=internet$/m);
}

/** A SearchRequest PDU for o=internet (base scope) with the given filter bytes. */
const searchPdu = (filter: Buffer, id = 2): Buffer => searchPduOf(id, 'o=internet', 0, [], filter);

test('the 6-byte PDU 30 84 ff ff ff ff', async () => {
  assertNotice(await send(Buffer.from('3084ffffffff', 'hex')));
  await stillAnswers();
});

test('a declared 2 GiB PDU and a length above the limit', async () => {
  assertNotice(await send(Buffer.concat([Buffer.from([0x30, 0x84, 0x80, 0x00, 0x00, 0x00]), Buffer.alloc(64 * 1024, 0x41)])));
  assertNotice(await send(Buffer.concat([Buffer.from([0x30, 0x83, 0x20, 0x00, 0x00]), Buffer.alloc(1000, 0x41)])));
  await stillAnswers();
});

test('a malformed SearchRequest whose attribute list overruns (the ldapjs infinite loop)', async () => {
  const good = searchPdu(str(0x87, 'objectClass'));
  // Make the attribute SEQUENCE claim more bytes than remain.
  const bad = Buffer.from(good);
  bad[bad.length - 1] = 0x10;
  bad[bad.length - 2] = 0x30;
  assertNotice(await send(bad));
  // a SearchRequest whose inner lengths disagree with the outer one
  const seventySix = Buffer.from(
    '3048020102634504000a01020a0100020100020100010100a02ea30f0403756964040861646d696e6973' +
    'a31b040b6f626a656374436c617373040c696e65744f7267506572736f6e3040', 'hex');
  assertNotice(await send(seventySix));
  await stillAnswers();
});

test('valid BER that makes stock ldapjs loop: attribute list as an OCTET STRING, an UnbindRequest with content', async () => {
  // SearchRequest whose attribute "SEQUENCE" is a primitive OCTET STRING holding 04 7f:
  // structurally valid BER, but @ldapjs/messages steps into it and loops forever.
  const good = searchPdu(str(0x87, 'objectClass'));
  const looping = Buffer.concat([good.subarray(0, good.length - 2), Buffer.from([0x04, 0x02, 0x04, 0x7f])]);
  looping[1] += 2;
  looping[looping.indexOf(0x63, 4) + 1] += 2;
  assertNotice(await send(looping));
  const unbindWithContent = tlv(0x30, tlv(0x02, [1]), tlv(0x42, [0x04, 0x7f]));
  assertNotice(await send(unbindWithContent));
  await stillAnswers();
});

test('a 5,000-deep filter', async () => {
  let f = tlv(0x87, Buffer.from('cn'));
  for (let i = 0; i < 5000; i++) f = tlv(0xa0, f);
  assertNotice(await send(searchPdu(f)));
  await stillAnswers();
});

test('truncated PDUs, then a disconnect mid-PDU', async () => {
  const pdu = searchPdu(str(0x87, 'objectClass'));
  for (const cut of [1, 2, 5, 10, pdu.length - 1]) await send(pdu.subarray(0, cut), { closeAfter: true });
  await stillAnswers();
});

test('random bytes on many connections', async () => {
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
  const jobs: Promise<Buffer>[] = [];
  for (let i = 0; i < 200; i++) {
    const b = Buffer.alloc(1 + (rnd() % 200));
    for (let j = 0; j < b.length; j++) b[j] = rnd();
    if (i % 2 === 0) b[0] = 0x30; // half of them look like a SEQUENCE
    // Then this side ends the connection: the server answers what it read and closes.
    jobs.push(send(b, { end: true, from: `127.0.5.${1 + (i % 8)}` })); // 25 per client, within DCMX_LDAP_CLIENT_CONNECTIONS
  }
  await Promise.all(jobs);
  await stillAnswers();
});

test('a valid request split into single bytes is answered', async () => {
  const pdu = searchPdu(str(0x87, 'objectClass'), 7);
  const done = Buffer.from([0x02, 0x01, 0x07, 0x65]);
  const reply = await send([...pdu].map((b) => Buffer.from([b])), { until: (got) => got.includes(done) });
  // SearchResultEntry (0x64) then SearchResultDone (0x65) for messageID 7
  assert.ok(reply.includes(Buffer.from([0x02, 0x01, 0x07, 0x65])), 'search done received');
  await stillAnswers();
});

test('an unbind ends the connection; garbage after a valid request closes it', async () => {
  const unbind = tlv(0x30, tlv(0x02, [1]), [0x42, 0x00]);
  await send(unbind);
  const mixed = await send(Buffer.concat([searchPdu(str(0x87, 'objectClass')), Buffer.from('GET / HTTP/1.1\r\n\r\n')]));
  assertNotice(mixed);
  await stillAnswers();
});
