/**
 * Hostile input against the running DNS endpoint. The appliance runs in its
 * own process (a crash shows as a dead process, not as an exception the test
 * runner swallows) and serves a small zone written over LDAP. Throughout, a
 * watcher in a worker thread queries a good name over UDP every 20 ms and
 * records its latency (printed, never asserted: tests assert behaviour, the
 * benchmarks measure); after each group of abuse the process must be alive,
 * every watcher query must have been answered, correctly (one left without a
 * reply for 10 s counts as lost: a guard against a hang, not a timing), and
 * dig must still get correct answers over UDP and TCP.
 *
 * Groups: the regression packets kept in packets/ (index.txt says why each
 * is there) over UDP and over TCP; crafted malformed packets (issue #18 of
 * native-dns-packet, a forward pointer, a 64-octet label, a 5-octet
 * header...); 10,000 seeded random packets; a TCP length prefix with no
 * body; a slow-drip client; 300 TCP connections at once (over the limit of
 * 256). replay.ts sends packets and attributes the replies. The whole Knot
 * DNS fuzzing corpus is replayed the same way in CI (corpus-replay.ts).
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import * as fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { ChildProcess } from 'node:child_process';
import { ldapaddAt, startSpawned, stopChild, tempDir } from '../helpers';
import { digRunner, exampleOrgZone, ISSUE18, regressionPackets, tcpFrame } from './fixture';
import { digChecks as digChecksOf, judge, MAX_UDP, query, randomPackets, replayTcp, replayUdp } from './replay';
import { waitForAsync } from '../fixtures/wait';

/** The watcher's query interval, and how long a query may go unanswered before it counts as lost (a hang guard). */
const WATCH_INTERVAL_MS = 20;
const WATCH_LOST_MS = 10_000;

const ZONE = exampleOrgZone({ spf: false });

let child: ChildProcess;
let output: () => string = () => '';
let dataDir = '';
let port = 0;
let ldapPort = 0;
let watcher: Worker;
let worstOverall = 0;

// ---------------------------------------------------------------------------
// The watcher, dig, and the checkpoint after each group

interface WatchStats {
  sent: number;
  answered: number;
  lost: number;
  bad: number;
  worstMs: number;
  sumMs: number;
  pending: number;
}

/** The watcher runs in its own thread so that this thread's floods do not delay its clock. */
const WATCHER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const dgram = require('node:dgram');
const { port, query, intervalMs, lostAfterMs } = workerData;
const q = Buffer.from(query);
const sock = dgram.createSocket('udp4');
const pending = new Map();
let id = 0;
let firstAnswered = false;
const fresh = () => ({ sent: 0, answered: 0, lost: 0, bad: 0, worstMs: 0, sumMs: 0 });
let st = fresh();
const now = () => Number(process.hrtime.bigint()) / 1e6;
sock.on('error', () => {});
sock.on('message', (m) => {
  if (m.length < 12) { st.bad++; return; }
  const t = pending.get(m.readUInt16BE(0));
  if (t === undefined) return;
  pending.delete(m.readUInt16BE(0));
  const ms = now() - t;
  st.answered++;
  st.sumMs += ms;
  if (ms > st.worstMs) st.worstMs = ms;
  if (!(m[2] & 0x80) || (m[3] & 15) !== 0 || m.readUInt16BE(6) < 1) st.bad++;
  if (!firstAnswered) {
    firstAnswered = true;
    parentPort.postMessage('first answer');
  }
});
const timer = setInterval(() => {
  const t = now();
  for (const [k, at] of pending) {
    if (t - at > lostAfterMs) { pending.delete(k); st.lost++; st.worstMs = Math.max(st.worstMs, t - at); }
  }
  id = (id + 1) & 0xffff;
  const b = Buffer.from(q);
  b.writeUInt16BE(id, 0);
  pending.set(id, t);
  st.sent++;
  sock.send(b, port, '127.0.0.1');
}, intervalMs);
parentPort.on('message', (msg) => {
  if (msg === 'report') {
    const t = now();
    let worst = st.worstMs;
    for (const at of pending.values()) worst = Math.max(worst, t - at);
    parentPort.postMessage({ ...st, worstMs: worst, pending: pending.size });
    st = fresh();
  } else if (msg === 'stop') {
    clearInterval(timer);
    sock.close();
    parentPort.close();
  }
});
`;

/** The watcher's figures since the last report (queries still pending count with their age so far). */
function watcherReport(): Promise<WatchStats> {
  return new Promise((resolve) => {
    watcher.once('message', resolve);
    watcher.postMessage('report');
  });
}

const dig = digRunner(() => port, 10_000);

const digChecks = (label: string, transports?: ('udp' | 'tcp')[]) => digChecksOf(dig, label, transports);

function assertAlive(label: string): void {
  assert.equal(child.exitCode, null, `${label}: the appliance exited (${child.exitCode}):\n${output().slice(-3000)}`);
  assert.equal(child.signalCode, null, `${label}: the appliance was killed by ${child.signalCode}:\n${output().slice(-3000)}`);
}

/** After a group: alive, the watcher lost nothing and got only right answers, dig answers. */
async function checkpoint(label: string): Promise<void> {
  assertAlive(label);
  const w = await watcherReport();
  worstOverall = Math.max(worstOverall, w.worstMs);
  console.log(
    `[${label}] watcher: ${w.sent} sent, ${w.answered} answered, ${w.lost} lost, ${w.bad} bad, ` +
      `mean ${(w.sumMs / Math.max(1, w.answered)).toFixed(2)} ms, worst ${w.worstMs.toFixed(1)} ms`,
  );
  assert.equal(w.bad, 0, `${label}: the watcher got wrong answers`);
  assert.equal(w.lost, 0, `${label}: the watcher lost ${w.lost} queries (no reply in ${WATCH_LOST_MS / 1000} s)`);
  await digChecks(label);
  assertAlive(label);
}

// ---------------------------------------------------------------------------

before(async () => {
  dataDir = tempDir();
  const a = await startSpawned(dataDir);
  child = a.child;
  output = a.output;
  // spawnAppliance only drains stdout until ready; keep draining so a full pipe never stalls the server.
  child.stdout!.resume();
  port = a.ports.dns;
  ldapPort = a.ports.ldap;
  assert.ok(port > 0, `no dns= in the ready line: ${a.ready}`);
  const r = await ldapaddAt(ldapPort, ZONE);
  assert.equal(r.code, 0, r.stderr);
  await digChecks('zone loaded');
  watcher = new Worker(WATCHER_SOURCE, {
    eval: true,
    workerData: { port, query: query('mx.example.org', 1, 0), intervalMs: WATCH_INTERVAL_MS, lostAfterMs: WATCH_LOST_MS },
  });
  await new Promise((r) => watcher.once('message', r)); // its first answer
  await checkpoint('baseline');
});

after(async () => {
  console.log(`watcher worst latency over all groups: ${worstOverall.toFixed(1)} ms`);
  watcher?.postMessage('stop');
  await watcher?.terminate();
  if (child) await stopChild(child);
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

const corpus: Buffer[] = regressionPackets().map((p) => p.packet);

test('the regression packets (packets/index.txt) over UDP, 50 in flight', async () => {
  const t0 = Date.now();
  const results = await replayUdp(port, corpus, 50);
  const { tally, problems } = judge('udp corpus', corpus, results);
  console.log(`UDP regression packets: ${corpus.length} packets in ${((Date.now() - t0) / 1000).toFixed(1)} s; replies: ${tally}`);
  assertAlive('udp corpus');
  assert.equal(tally.get('unsendable'), corpus.filter((p) => p.length > MAX_UDP).length);
  assert.deepEqual(problems, []);
  await checkpoint('udp corpus');
});

test('the regression packets over TCP: 4 per connection, lockstep, pipelined and split at random', async () => {
  const t0 = Date.now();
  const results = await replayTcp(port, corpus, 4, 8);
  const { tally, problems } = judge('tcp corpus', corpus, results);
  console.log(`TCP regression packets: ${corpus.length} packets in ${((Date.now() - t0) / 1000).toFixed(1)} s; replies: ${tally}`);
  assertAlive('tcp corpus');
  assert.deepEqual(problems, []);
  await checkpoint('tcp corpus');
});

test('crafted malformed packets over UDP and TCP', async () => {
  const header = (qd = 1, an = 0) => {
    const h = Buffer.alloc(12);
    h.writeUInt16BE(0xbeef, 0);
    h.writeUInt16BE(qd, 4);
    h.writeUInt16BE(an, 6);
    return h;
  };
  const tail = Buffer.from([0, 1, 0, 1]);
  const cases: { name: string; packet: Buffer; expect: number | 'none' }[] = [
    { name: 'issue #18: question name is a pointer to itself', packet: ISSUE18, expect: 1 },
    { name: 'forward pointer', packet: Buffer.concat([header(), Buffer.from([0xc0, 18]), tail, Buffer.from([3, 0x66, 0x6f, 0x6f, 0])]), expect: 1 },
    { name: '64-octet label', packet: Buffer.concat([header(), Buffer.from([64]), Buffer.alloc(64, 0x61), Buffer.from([0]), tail]), expect: 1 },
    { name: 'truncated header (5 octets)', packet: ISSUE18.subarray(0, 5), expect: 'none' },
    { name: 'pointer into the header', packet: Buffer.concat([header(), Buffer.from([0xc0, 0x02]), tail]), expect: 1 },
    { name: 'answer owner pointing at itself', packet: Buffer.concat([header(1, 1), query('example.org', 1, 0).subarray(12), Buffer.from([0xc0, 29]), tail, Buffer.from([0, 0, 0, 0, 0, 0])]), expect: 1 },
    {
      name: 'a name over 255 octets through a pointer chain',
      packet: (() => {
        // Runs of one 59-octet label, each ending in a pointer to the previous run (legal backward
        // pointers), kept in the RDATA of a NULL RR; a second RR's owner points at the last run,
        // which spells 6 x 60 octets.
        const h = header(1, 2);
        const qname = Buffer.concat([Buffer.from([59]), Buffer.alloc(59, 0x62), Buffer.from([0])]);
        const runs: Buffer[] = [];
        let prev = 12;
        let at = 12 + qname.length + 4 + 11; // after the question and RR 1's root owner and fixed fields
        for (let i = 0; i < 5; i++) {
          const r = Buffer.concat([Buffer.from([59]), Buffer.alloc(59, 0x63 + i), Buffer.from([0xc0 | (prev >> 8), prev & 0xff])]);
          runs.push(r);
          prev = at;
          at += r.length;
        }
        const rdata = Buffer.concat(runs);
        const rr1 = Buffer.concat([Buffer.from([0, 0, 10, 0, 1, 0, 0, 0, 0, rdata.length >> 8, rdata.length & 0xff]), rdata]);
        const rr2 = Buffer.concat([Buffer.from([0xc0 | (prev >> 8), prev & 0xff]), tail, Buffer.from([0, 0, 0, 0, 0, 0])]);
        return Buffer.concat([h, qname, tail, rr1, rr2]);
      })(),
      expect: 1,
    },
    { name: 'QDCOUNT 65535 with one question', packet: (() => { const b = query('example.org', 1, 0xbeef); b.writeUInt16BE(0xffff, 4); return b; })(), expect: 1 },
    { name: 'ARCOUNT 65535 and nothing after the question', packet: (() => { const b = query('example.org', 1, 0xbeef); b.writeUInt16BE(0xffff, 10); return b; })(), expect: 1 },
    { name: 'opcode 15', packet: query('example.org', 1, 0xbeef, 15 << 11), expect: 4 },
  ];
  const packets = cases.map((c) => c.packet);
  for (const [transport, results] of [['udp', await replayUdp(port, packets, 4)], ['tcp', await replayTcp(port, packets, 3, 2)]] as const) {
    const { tally, problems } = judge(`crafted ${transport}`, packets, results);
    console.log(`crafted over ${transport}: ${tally}`);
    assert.deepEqual(problems, []);
    cases.forEach((c, i) => {
      const r = results[i];
      assert.equal(r.fate, 'ok', `${transport} ${c.name}: the next query on the same ${transport === 'udp' ? 'socket' : 'connection'} was not answered`);
      if (c.expect === 'none') {
        assert.equal(r.replies.length, 0, `${transport} ${c.name}: expected no reply`);
      } else {
        // A dropped packet would also be acceptable; these all have a header, so we expect the named rcode.
        assert.equal(r.replies.length, 1, `${transport} ${c.name}: expected one reply`);
        assert.equal(r.replies[0][3] & 0x0f, c.expect, `${transport} ${c.name}: rcode`);
      }
    });
  }
  await checkpoint('crafted');
});

test('10,000 seeded random packets over UDP, 2,000 of them also over TCP', async () => {
  const packets = randomPackets(10_000, 20240601);
  let t0 = Date.now();
  const udp = await replayUdp(port, packets, 50);
  let j = judge('random udp', packets, udp);
  console.log(`random over UDP: ${packets.length} in ${((Date.now() - t0) / 1000).toFixed(1)} s; replies: ${j.tally}`);
  assertAlive('random udp');
  assert.deepEqual(j.problems, []);
  const some = packets.slice(0, 2000);
  t0 = Date.now();
  const tcp = await replayTcp(port, some, 50, 8, 99);
  j = judge('random tcp', some, tcp);
  console.log(`random over TCP: ${some.length} in ${((Date.now() - t0) / 1000).toFixed(1)} s; replies: ${j.tally}`);
  assert.deepEqual(j.problems, []);
  await checkpoint('random');
});

/** Resolves with ms from `t0` to the socket's close, or -1 after `limitMs` (a hang guard). */
function closedAfter(sock: net.Socket, t0: () => number, limitMs: number): Promise<number> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(-1), limitMs);
    sock.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - t0());
    });
  });
}

/** Runs dig checks, round after round, until `done()` holds; returns how many rounds ended before it did. */
async function servedWhile(label: string, done: () => boolean): Promise<number> {
  let before = 0;
  do {
    await digChecks(label);
    if (!done()) before++;
  } while (!done());
  return before;
}

test('a TCP length prefix with no body is closed by the message timeout; others are served meanwhile', async () => {
  const lone = net.connect(port, '127.0.0.1');
  lone.on('error', () => undefined);
  let got = 0;
  lone.on('data', (d) => (got += d.length));
  await new Promise((r) => lone.once('connect', r));
  const sent = Date.now();
  let isClosed = false;
  const closed = closedAfter(lone, () => sent, 30_000).then((ms) => ((isClosed = true), ms));
  lone.write(Buffer.from([0x00, 0x40]));
  const rounds = await servedWhile('while a prefix waits', () => isClosed);
  const ms = await closed;
  if (ms < 0) lone.destroy();
  console.log(`length prefix without body: closed by the server after ${ms} ms, ${rounds} rounds of dig checks before`);
  assert.ok(ms >= 0, 'the server closed it');
  assert.ok(rounds >= 1, 'others were served while it waited');
  assert.equal(got, 0, 'nothing is sent back');
  await checkpoint('prefix without body');
});

test('a slow-drip client (one byte every 200 ms) is closed by the message timeout; others are served meanwhile', async () => {
  // 12 + 62 + 13 + 4 = 91 octets + prefix: about 19 s at 5 bytes/s, far beyond the 5 s bound.
  const msg = tcpFrame(query(`${'d'.repeat(61)}.example.org`, 1, 0x5151));
  const drip = net.connect(port, '127.0.0.1');
  drip.on('error', () => undefined);
  let got = 0;
  drip.on('data', (d) => (got += d.length));
  await new Promise((r) => drip.once('connect', r));
  const first = Date.now();
  let isClosed = false;
  const closed = closedAfter(drip, () => first, 30_000).then((ms) => ((isClosed = true), ms));
  let written = 0;
  const ticker = setInterval(() => {
    if (drip.destroyed || written >= msg.length) return clearInterval(ticker);
    drip.write(msg.subarray(written, written + 1));
    written++;
  }, 200);
  drip.write(msg.subarray(0, 1));
  written = 1;
  const rounds = await servedWhile('while a client drips', () => isClosed);
  const ms = await closed;
  clearInterval(ticker);
  if (ms < 0) drip.destroy();
  console.log(`slow drip: closed by the server after ${ms} ms, ${written} of ${msg.length} octets sent, ${rounds} rounds of dig checks before`);
  assert.ok(ms >= 0, 'the server closed it');
  assert.ok(rounds >= 1, 'others were served while it dripped');
  assert.ok(written < msg.length, 'the server closed it before the message was complete');
  assert.equal(got, 0, 'no reply to an incomplete message');
  await checkpoint('slow drip');
});

test('300 TCP connections at once (limit 256): the excess is closed, UDP is served meanwhile, TCP after', async () => {
  const socks: net.Socket[] = [];
  const states = await Promise.all(
    Array.from({ length: 300 }, () => new Promise<'open' | 'closed' | 'refused'>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      socks.push(s);
      let connected = false;
      s.on('error', () => undefined);
      s.on('close', () => resolve(connected ? 'closed' : 'refused'));
      // Held open: the server answers a query on it.
      s.on('data', () => resolve('open'));
      s.on('connect', () => {
        connected = true;
        s.write(tcpFrame(query('example.org', 1, 0x300)));
      });
    })),
  );
  const count = (k: string) => states.filter((s) => s === k).length;
  console.log(`300 connections: ${count('open')} held open, ${count('closed')} closed by the server, ${count('refused')} refused`);
  assertAlive('300 connections');
  assert.ok(count('open') <= 256, `at most 256 held, got ${count('open')}`);
  assert.ok(count('closed') + count('refused') >= 44, 'the connections over the limit are closed');
  await digChecks('while 256 TCP connections are held', ['udp']);
  const tcpWhileFull = await dig('+tcp', 'example.org', 'A');
  console.log(`dig +tcp while the connection table is full: ${/status: (\w+)/.exec(tcpWhileFull.stdout)?.[1] ?? (tcpWhileFull.stdout + tcpWhileFull.stderr).trim().split('\n').pop()}`);
  for (const s of socks) s.destroy();
  await waitForAsync('TCP service once the connections are gone', async () => /status: NOERROR/.test((await dig('+tcp', 'example.org', 'A')).stdout), 30_000);
  await checkpoint('300 connections');
});
