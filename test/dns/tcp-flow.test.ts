/**
 * DNS over TCP under pipelining and non-reading clients (RFC 7766 §6.2):
 * answers stay in order, the loop stays free for everyone else, memory stays
 * bounded, and a closed connection's queued work is dropped. Real sockets
 * against the appliance in this process; a zone of 1,000 names written
 * through the directory (its AXFR is three messages).
 *
 * No assertion depends on how fast the machine is: each compares the order
 * of events, or a size against a bound far from what the unfixed server
 * reached (it answered a whole read synchronously and buffered every reply).
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { startTestAppliance, type TestAppliance } from '../helpers';
import { attrs, memoryDirectory } from '../directory/fixture';
import { digRunner, section, status, queryPacket, tcpFrame, tcpMessages } from './fixture';
import { startDnsServer } from '../../server/dns/server';
import { silentLogger } from '../../server/log';
import { waitFor } from '../fixtures/wait';

let t: TestAppliance;
let port = 0;
const NAMES = 1000;
const dig = digRunner(() => port);

before(async () => {
  // One serving thread: these tests read that thread's endpoint (app.dns.tcpStats: paused connections, queued bytes).
  t = await startTestAppliance({ DCMX_THREADS: '1', DCMX_AXFR_ALLOW: '127.0.0.1/32' });
  port = t.app.ports.dns;
  const dir = t.app.directory;
  const me = dir.systemIdentity();
  const add = (dn: string, a: Record<string, string | string[]>) => dir.addSync(me, `${dn},o=internet`, attrs(a));
  add('dc=org', { objectClass: 'domain', dc: 'org' });
  add('dc=example,dc=org', {
    objectClass: ['dNSDomain2', 'domain'], dc: 'example', dNSTTL: '300',
    sOARecord: 'ns1.example.org. hostmaster.example.org. 100 3600 900 604800 60', nSRecord: 'ns1.example.org.', aRecord: '192.0.2.1',
  });
  add('dc=ns1,dc=example,dc=org', { objectClass: ['dNSDomain2', 'domain'], dc: 'ns1', aRecord: '192.0.2.53' });
  // 30 TXT strings of 92 octets: a 3 KB answer to a 35-octet query.
  add('dc=big,dc=example,dc=org', {
    objectClass: ['dNSDomain2', 'domain'], dc: 'big', tXTRecord: Array.from({ length: 30 }, (_, i) => `"${String(i).padStart(2, '0')}${'x'.repeat(90)}"`),
  });
  for (let i = 0; i < NAMES; i++) add(`dc=h${i},dc=example,dc=org`, { objectClass: ['dNSDomain2', 'domain'], dc: `h${i}`, aRecord: `192.0.2.${i % 250}`, mXRecord: '10 mx.example.org.' });
});
after(async () => {
  await t.close();
});

/** A query with one question; `type` 252 is AXFR. */
const query = (id: number, name: string, type: number): Buffer => queryPacket(name, type, { id });
const frame = tcpFrame;

const reader = tcpMessages;

const udpQuestion = query(0x4444, 'h1.example.org', 1);

describe('pipelined transfers', () => {
  test('a UDP query is answered while 200 pipelined AXFRs are in progress, before that connection has its replies; they come in order, one at a time', async () => {
    const stats = t.app.dns.answerer.stats;
    const sock = net.connect(port, '127.0.0.1');
    const u = dgram.createSocket('udp4');
    const N = 200;
    const messages: Buffer[] = [];
    let queriesAtFirstByte = -1;
    let udpAnswered: { axfrMessages: number; queriesTaken: number } | undefined;
    const base = stats.queries;
    let firstMessages = 0; // messages of one transfer (the first)
    const done = new Promise<void>((resolve, reject) => {
      sock.on('error', reject);
      u.on('message', (m) => {
        if (m.readUInt16BE(0) === 0x4444 && !udpAnswered) udpAnswered = { axfrMessages: messages.length, queriesTaken: stats.queries - base };
      });
      sock.on('data', reader((m) => {
        if (queriesAtFirstByte < 0) {
          queriesAtFirstByte = stats.queries - base;
          u.send(udpQuestion, port, '127.0.0.1'); // while the AXFRs are being answered
        }
        messages.push(Buffer.from(m));
        if (firstMessages === 0 && m.readUInt16BE(0) !== 1) firstMessages = messages.length - 1;
        if (firstMessages > 0 && messages.length === N * firstMessages) resolve();
      }));
    });
    await new Promise<void>((r) => sock.once('connect', r));
    sock.write(Buffer.concat(Array.from({ length: N }, (_, i) => frame(query(i + 1, 'example.org', 252))))); // one write, ~6 KB
    await done;
    sock.destroy();
    u.close();
    assert.ok(udpAnswered, 'the UDP query was answered');
    assert.ok(udpAnswered.queriesTaken < N, `the UDP query was answered when ${udpAnswered.queriesTaken - 1} of ${N} AXFRs had been taken: it must not wait for them all`);
    assert.ok(udpAnswered.axfrMessages < N * firstMessages, 'and before the AXFR connection had its replies');
    assert.ok(queriesAtFirstByte < N, `the first transfer went out after ${queriesAtFirstByte} of ${N} requests were taken, not after all`);
    // In order, one at a time: the messages of transfer i all carry ID i, and none interleave.
    const ids = messages.map((m) => m.readUInt16BE(0));
    assert.deepEqual(ids, Array.from({ length: N }, (_, i) => Array(firstMessages).fill(i + 1)).flat());
    assert.ok(firstMessages >= 2, `a transfer of ${firstMessages} messages`);
    const r = await dig('example.org', 'AXFR');
    assert.equal(r.stdout.split('\n').filter((l) => /\tIN\tA\t/.test(l)).length, NAMES + 2, 'dig gets the whole zone');
  });

  test('a connection closed with 2,000 AXFRs queued: the rest are dropped, the server is idle again', async () => {
    const stats = t.app.dns.answerer.stats;
    const base = stats.queries;
    const sock = net.connect(port, '127.0.0.1');
    await new Promise<void>((r) => sock.once('connect', r));
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.once('data', () => sock.destroy()); // the first reply, and gone
    sock.write(Buffer.concat(Array.from({ length: 2000 }, (_, i) => frame(query(i, 'example.org', 252)))));
    await closed;
    await waitFor('the server to drop the connection', () => t.app.dns.tcpStats().connections === 0);
    const s = t.app.dns.tcpStats();
    assert.equal(s.connections, 0);
    // Its queue went with it: nothing is left that could still be answered for it.
    assert.equal(s.queued, 0);
    const taken = stats.queries - base;
    assert.ok(taken < 2000, `${taken} of 2000 taken before the close`);
  });

  test('a client that half-closes after its queries gets every answer, then the end', async () => {
    const sock = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    await new Promise<void>((r) => sock.once('connect', r));
    const ids: number[] = [];
    sock.on('data', reader((m) => ids.push(m.readUInt16BE(0))));
    const ended = new Promise<void>((r) => sock.once('end', () => r()));
    const qs = [...Array.from({ length: 100 }, (_, i) => query(i, `h${i}.example.org`, 15)), query(500, 'example.org', 252), query(501, 'big.example.org', 16)];
    sock.end(Buffer.concat(qs.map(frame)));
    await ended;
    sock.destroy();
    assert.equal(ids.filter((id) => id < 100).length, 100);
    assert.ok(ids.includes(500) && ids[ids.length - 1] === 501, 'the transfer, then the last query');
  });
});

describe('a client that never reads', () => {
  test('its queries stop being read; buffered work and output stay under 1 MiB; others are served; closing frees it', async () => {
    const sock = net.connect(port, '127.0.0.1');
    sock.pause(); // never reads a reply
    sock.on('error', () => undefined);
    await new Promise<void>((r) => sock.once('connect', r));
    const chunk = Buffer.concat(Array.from({ length: 1000 }, (_, i) => frame(query(i, 'big.example.org', 16)))); // 35 KB -> 3 MB of answers
    const BOUND = 1024 * 1024;
    let worst = 0;
    const sample = () => {
      const s = t.app.dns.tcpStats();
      worst = Math.max(worst, s.queuedBytes + s.partialBytes + s.outputBytes);
    };
    const sampler = setInterval(sample, 5);
    let sent = 0;
    // Write until 2 MB are sent (60,000 queries: 180 MB of answers) or the server stops reading this client.
    const serverPaused = () => t.app.dns.tcpStats().paused > 0;
    while (sent < 2 * 1024 * 1024 && worst < 8 * BOUND) {
      sent += chunk.length;
      if (!sock.write(chunk)) {
        let drained = false;
        sock.once('drain', () => (drained = true));
        await waitFor('drain, or the server to stop reading', () => drained || serverPaused(), 60_000, 5);
        if (!drained) break;
      }
      sample();
    }
    // The server answers until the client's socket buffers are full, then stops reading.
    await waitFor('the server to stop reading this client', serverPaused);
    sample();
    clearInterval(sampler);
    assert.ok(worst < BOUND, `at most ${worst} bytes waited in the server for this client (bound ${BOUND}); ${sent} bytes of queries sent`);
    assert.equal(t.app.dns.tcpStats().paused, 1, 'the server stopped reading this client');
    // Meanwhile everyone else is served, over UDP and TCP.
    assert.equal(status((await dig('h5.example.org', 'MX')).stdout), 'NOERROR');
    assert.deepEqual(section((await dig('+tcp', 'h6.example.org', 'A')).stdout, 'ANSWER'), ['h6.example.org. 300 IN A 192.0.2.6']);
    sock.destroy();
    await waitFor('the server to drop the connection', () => t.app.dns.tcpStats().connections === 0);
    const s = t.app.dns.tcpStats();
    assert.deepEqual([s.connections, s.queued, s.outputBytes], [0, 0, 0], 'closing dropped its work');
  });

  test('a paused connection is still closed by the idle timeout', async () => {
    const { zones, dir } = await memoryDirectory();
    const dns = await startDnsServer(zones, { host: '127.0.0.1', port: 0, axfrAllow: [], tcpIdleMs: 500 }, silentLogger());
    try {
      const sock = net.connect(dns.port, '127.0.0.1');
      sock.pause();
      sock.on('error', () => undefined);
      await new Promise<void>((r) => sock.once('connect', r));
      const chunk = Buffer.concat(Array.from({ length: 2000 }, (_, i) => frame(query(i, 'nowhere.test', 16))));
      for (let i = 0; i < 200 && sock.write(chunk); i++) await new Promise((r) => setImmediate(r));
      // The server side closes (the paused client would see it only by reading); 10 s is twenty idle timeouts.
      await waitFor('the idle timeout to close it', () => dns.tcpStats().connections === 0);
      assert.equal(dns.tcpStats().connections, 0, 'closed by the idle timeout');
      sock.destroy();
    } finally {
      await dns.close();
      dir.store.close();
    }
  });
});
