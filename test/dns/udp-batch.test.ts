/**
 * The DNS port's UDP socket served by native/udpbatch (recvmmsg/sendmmsg,
 * server/dns/udp-batch.ts) and by Node's dgram (DCMX_DNS_UDP_BATCH=0) give
 * the same replies, byte for byte: the regression packets (malformed ones
 * included), a large datagram, an empty one, a burst of many at once. GET
 * /stats says which path serves (dns.udp.nativeSockets) and counts its
 * datagrams and batches; with two threads (SO_REUSEPORT) each thread's
 * socket is native. The socket layer alone, on ::1: IPv6 sources are
 * answered, close() frees the port.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import { adminArgs, run, startTestAppliance, type TestAppliance } from '../helpers';
import { asQuery, exampleOrgZone, queryPacket, regressionPackets, udpQuery } from './fixture';
import { bindUdp, type UdpSource } from '../../server/dns/udp-batch';

let native: TestAppliance;
let fallback: TestAppliance;

before(async () => {
  // Unsigned: two appliances would sign with two keys.
  native = await startTestAppliance({ DCMX_THREADS: '2', DCMX_DNSSEC: 'off' });
  fallback = await startTestAppliance({ DCMX_THREADS: '1', DCMX_DNSSEC: 'off', DCMX_DNS_UDP_BATCH: '0' });
  for (const t of [native, fallback]) {
    const r = await run('ldapadd', adminArgs(t), exampleOrgZone());
    assert.equal(r.code, 0, r.stderr);
  }
});
after(async () => {
  await native?.close();
  await fallback?.close();
});

/** Sends `packets` at once from one socket; resolves with the replies by ID once `expected` have come or after `waitMs`. */
function burst(port: number, packets: Buffer[], expected: number, waitMs = 3000): Promise<Map<number, Buffer>> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const got = new Map<number, Buffer>();
    const done = () => {
      clearTimeout(timer);
      s.close();
      resolve(got);
    };
    const timer = setTimeout(done, waitMs);
    s.on('message', (m) => {
      got.set(m.readUInt16BE(0), m);
      if (got.size >= expected) done();
    });
    s.bind(0, '127.0.0.1', () => {
      for (const p of packets) s.send(p, port, '127.0.0.1');
    });
  });
}

describe('UDP through native/udpbatch', () => {
  test('GET /stats: both threads serve UDP natively, and count the datagrams; the fallback says dgram', async () => {
    const before = (await native.app.stats()).dns.udp;
    assert.equal(before.nativeSockets, 2, JSON.stringify(before));
    const packets = Array.from({ length: 200 }, (_, id) => queryPacket(id % 2 ? 'mx.example.org' : 'example.org', id % 2 ? 1 : 15, { id }));
    const got = await burst(native.app.ports.dns, packets, packets.length);
    assert.equal(got.size, packets.length, 'every query of the burst answered');
    const after = (await native.app.stats()).dns.udp;
    assert.ok(after.datagrams - before.datagrams >= packets.length, JSON.stringify(after));
    assert.ok(after.replies - before.replies >= packets.length, JSON.stringify(after));
    assert.ok(after.batches > before.batches && after.batches - before.batches <= after.datagrams - before.datagrams, JSON.stringify(after));
    assert.equal(after.sendErrors, 0);
    // A burst is read in batches: fewer recvmmsg calls than datagrams.
    assert.ok(after.batches - before.batches < packets.length, `batches ${after.batches - before.batches} for ${packets.length} datagrams`);
    const fb = (await fallback.app.stats()).dns.udp;
    assert.equal(fb.nativeSockets, 0);
    assert.equal(fb.batches, 0);
  });

  test('the same replies as dgram, byte for byte: regression packets as is and as queries, a burst', async () => {
    const packets = regressionPackets().flatMap((p) => [p.packet, asQuery(p.packet)]);
    let answered = 0;
    for (const p of packets) {
      const [a, b] = await Promise.all([udpQuery(native.app.ports.dns, p, 500), udpQuery(fallback.app.ports.dns, p, 500)]);
      assert.deepEqual(a?.toString('hex'), b?.toString('hex'), `packet ${p.toString('hex').slice(0, 80)}`);
      if (a) answered++;
    }
    assert.ok(answered > packets.length / 4, `${answered} of ${packets.length} answered`);
    const many = Array.from({ length: 100 }, (_, id) => queryPacket(`n${id}.example.org`, 1, { id }));
    const [a, b] = await Promise.all([burst(native.app.ports.dns, many, many.length), burst(fallback.app.ports.dns, many, many.length)]);
    assert.equal(a.size, many.length);
    assert.deepEqual([...a.entries()].map(([id, m]) => [id, m.toString('hex')]).sort(), [...b.entries()].map(([id, m]) => [id, m.toString('hex')]).sort());
  });

  test('an empty datagram and one of 65,507 octets: the same outcome as dgram, and the socket keeps serving', async () => {
    const huge = Buffer.concat([queryPacket('mx.example.org', 1, { id: 77 }), Buffer.alloc(65_507 - 32, 0xff)]).subarray(0, 65_507);
    for (const p of [Buffer.alloc(0), huge]) {
      const [a, b] = await Promise.all([udpQuery(native.app.ports.dns, p, 500), udpQuery(fallback.app.ports.dns, p, 500)]);
      assert.deepEqual(a?.toString('hex'), b?.toString('hex'));
    }
    const r = await udpQuery(native.app.ports.dns, queryPacket('mx.example.org', 1, { id: 78 }));
    assert.equal(r?.readUInt16BE(0), 78);
    assert.equal(r!.readUInt16BE(6), 1, 'one answer RR');
  });
});

describe('the socket layer (udp-batch.ts) on ::1', () => {
  test('an IPv6 source gets its reply; close() frees the port; the figures stay readable', async () => {
    const sources: string[] = [];
    const answer = (m: Buffer, source: UdpSource) => {
      sources.push(source.address());
      return m.length === 1 ? undefined : Buffer.concat([Buffer.from('re:'), m]);
    };
    // A free port (the appliance binds UDP on the port its TCP listener got).
    const probe = dgram.createSocket('udp6');
    await new Promise<void>((resolve) => probe.bind(0, '::1', resolve));
    const port = probe.address().port;
    probe.close();
    const s = await bindUdp({ host: '::1', port, reusePort: false }, answer, (err) => assert.fail(String(err)));
    assert.equal(s.stats().native, true);
    const c = dgram.createSocket('udp6');
    const replies: string[] = [];
    await new Promise<void>((resolve) => {
      c.on('message', (m) => {
        replies.push(m.toString());
        if (replies.length === 2) resolve();
      });
      c.send('a', port, '::1'); // no reply
      c.send('bb', port, '::1');
      c.send('cc', port, '::1');
    });
    c.close();
    assert.deepEqual(replies.sort(), ['re:bb', 're:cc']);
    assert.deepEqual(sources, ['::1', '::1', '::1']);
    await s.close();
    assert.deepEqual({ ...s.stats() }, { native: true, datagrams: 3, batches: s.stats().batches, replies: 2, sendDropped: 0, sendErrors: 0 });
    // The port is free again: dgram binds it.
    const again = dgram.createSocket('udp6');
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.bind(port, '::1', resolve);
    });
    again.close();
  });
});
