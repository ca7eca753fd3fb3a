/**
 * The directory client facing a directory that misbehaves (a raw TCP server
 * on loopback writing the bytes under test): a PDU with an indefinite or
 * huge length, a Sync State control that is not a syncStateValue, a sync
 * entry without its control, an operation never answered. Each fails the
 * operation with a clear error and closes the connection — never a crash,
 * never a hang — and the consumer reconnects. The RFC 4533 value decoders
 * refuse malformed values the same way.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { connectClient, TimeoutError } from '../../server/directory-client/client';
import { decodeSyncInfo, decodeSyncState, ProtocolError } from '../../server/directory-client/protocol';
import { SyncConsumer } from '../../server/directory-client/sync';
import { messageHead } from '../../server/ber';
import { silentLogger } from '../../server/log';
import { control, enumerated, message, octets, seq, set, tlv } from '../fixtures/ber';
import { waitFor } from '../fixtures/wait';

const servers: net.Server[] = [];
after(() => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))));

const ldapResult = (tag: number, code = 0) => tlv(tag, enumerated(code), octets(''), octets(''));

/** A directory on loopback answering each request (by its protocolOp tag) with `answer`'s bytes; undefined: silence. */
async function directory(answer: (id: number, opTag: number) => Buffer | undefined): Promise<{ url: string; connections: () => number }> {
  let connections = 0;
  const server = net.createServer((s) => {
    connections++;
    s.on('error', () => undefined);
    s.on('data', (chunk) => {
      // The client writes one request per write; tests keep requests small.
      for (let off = 0; off < chunk.length;) {
        const { id, op, end } = messageHead(chunk, off);
        const out = answer(id, op.tag);
        if (out) s.write(out);
        off = end;
      }
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `ldap://127.0.0.1:${(server.address() as net.AddressInfo).port}`, connections: () => connections };
}

test('bad PDUs from the directory fail the operation with a ProtocolError and close the connection', async () => {
  const cases: [string, Buffer][] = [
    ['indefinite length', Buffer.from([0x30, 0x80, 0x02, 0x01, 0x01, 0x61, 0x00, 0x00, 0x00])],
    ['a declared 1 GiB PDU', Buffer.from([0x30, 0x84, 0x40, 0x00, 0x00, 0x00])],
    ['a BindResponse with a primitive where a SEQUENCE belongs', message(1, tlv(0x61, [0x04, 0x02, 0x04, 0x7f]))],
  ];
  for (const [what, bytes] of cases) {
    const d = await directory(() => bytes);
    const c = await connectClient({ url: d.url });
    let closed: Error | undefined;
    c.once('close', (e: Error) => (closed = e));
    await assert.rejects(c.bind('cn=x', 'y'), ProtocolError, what);
    assert.ok(closed instanceof ProtocolError, `${what}: closed with the error`);
    assert.equal(c.open, false);
  }
});

test('an operation never answered times out and closes the connection', async () => {
  const d = await directory(() => undefined);
  const c = await connectClient({ url: d.url, operationTimeoutMs: 200 });
  await assert.rejects(c.bind('cn=x', 'y'), TimeoutError);
  assert.equal(c.open, false);
});

test('a sync entry without a Sync State control, or with a bad one: the consumer drops the connection and reconnects', async () => {
  for (const ctl of [[], [control('1.3.6.1.4.1.4203.1.9.1.2', false, octets('not BER'))], [control('1.3.6.1.4.1.4203.1.9.1.2', false, seq(enumerated(1), octets('short')))]]) {
    const d = await directory((id, tag) => {
      if (tag === 0x60) return message(id, ldapResult(0x61));
      if (tag === 0x63) return message(id, tlv(0x64, octets('o=internet'), seq()), ctl);
      return undefined;
    });
    const downs: Error[] = [];
    const entries: string[] = [];
    const consumer = new SyncConsumer({
      client: { url: d.url }, bindDn: 'cn=x', password: 'y', search: { base: 'o=internet', scope: 2, filter: { type: 'present', attr: 'objectClass' }, attributes: [] },
      minBackoffMs: 10, maxBackoffMs: 20, log: silentLogger(),
    }, {
      refreshBegin: () => undefined, entry: (e) => entries.push(e.dn), ids: () => undefined, unreportedGone: () => undefined,
      refreshed: () => undefined, cookie: () => undefined, connection: (up, err) => !up && err && downs.push(err),
    });
    consumer.start();
    await waitFor('two connections refused', () => d.connections() >= 2 && downs.length >= 2);
    consumer.stop();
    assert.ok(downs.every((e) => e instanceof ProtocolError), downs.map((e) => e.message).join('; '));
    assert.deepEqual(entries, [], 'nothing is reported from a bad entry');
  }
});

test('the RFC 4533 value decoders refuse malformed values with a ProtocolError', () => {
  const uuid = Buffer.alloc(16, 7);
  const state = (v: Buffer) => decodeSyncState({ type: '1.3.6.1.4.1.4203.1.9.1.2', critical: false, value: v });
  assert.equal(state(seq(enumerated(1), octets(uuid))).uuid, '07070707-0707-0707-0707-070707070707');
  for (const bad of [Buffer.alloc(0), octets('x'), seq(enumerated(9), octets(uuid)), seq(enumerated(1), octets(Buffer.alloc(15))), Buffer.from([0x30, 0x05, 0x0a])]) {
    assert.throws(() => state(bad), ProtocolError, bad.toString('hex'));
  }
  assert.deepEqual(decodeSyncInfo(tlv(0xa3, set(octets(uuid)))), { kind: 'syncIdSet', cookie: undefined, refreshDeletes: false, uuids: ['07070707-0707-0707-0707-070707070707'] });
  assert.deepEqual(decodeSyncInfo(tlv(0xa2, tlv(0x01, [0x00]))), { kind: 'refreshPresent', cookie: undefined, refreshDone: false });
  for (const bad of [undefined, Buffer.alloc(0), tlv(0xa3, octets('c')), tlv(0xa5), tlv(0xa3, set(octets(Buffer.alloc(3)))), Buffer.from([0xa1, 0x80, 0x00, 0x00])]) {
    assert.throws(() => decodeSyncInfo(bad), ProtocolError, bad?.toString('hex'));
  }
});
