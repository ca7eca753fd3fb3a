/**
 * Hostile input against the running DNS endpoint. The appliance runs in its
 * own process (a crash shows as a dead process, not as an exception the test
 * runner swallows) and serves a small zone written over LDAP. Throughout, a
 * watcher in a worker thread queries a good name over UDP every 20 ms and
 * records its worst latency; after each group of abuse the process must be
 * alive, the watcher must never have waited 1 s or lost a query, and dig must
 * still get correct answers over UDP and TCP.
 *
 * Groups: the Knot DNS fuzzing seed corpus (9,774 packets) over UDP and over
 * TCP; crafted malformed packets (issue #18 of native-dns-packet, a forward
 * pointer, a 64-octet label, a 5-octet header...); 10,000 seeded random
 * packets; a TCP length prefix with no body; a slow-drip client; 300 TCP
 * connections at once (over the limit of 256).
 *
 * Replies are attributed to the packet that caused them with a probe: each
 * packet is followed, on the same socket or connection, by a query for
 * PROBE_NAME with a known id; what arrives before the probe's answer belongs
 * to the packet (the server answers a UDP socket and a TCP connection in
 * order). So a packet that gets no reply costs no timeout.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import * as fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { ChildProcess } from 'node:child_process';
import { ldapaddAt, startSpawned, stopChild, tempDir } from '../helpers';
import { prng } from '../prng';
import { decodeMessage, screen, type Screened } from '../../server/dns/wire';
import { corpusFiles, corpusPacket, digRunner, exampleOrgZone, ISSUE18, section, Tally, queryPacket, tcpFrame } from './fixture';

/** The watcher's bound on any one reply, and its query interval. */
const WATCH_LIMIT_MS = 1000;
const WATCH_INTERVAL_MS = 20;
/** Largest UDP payload over IPv4 (65535 - 20 - 8). */
const MAX_UDP = 65507;
/** UDP payloads above this are sent one at a time (see replayUdp). */
const BIG_DATAGRAM = 8192;
const PROBE_NAME = 'probe.example.org';

const ZONE = exampleOrgZone({ spf: false });

let child: ChildProcess;
let output: () => string = () => '';
let dataDir = '';
let port = 0;
let ldapPort = 0;
let watcher: Worker;
let worstOverall = 0;

// ---------------------------------------------------------------------------
// Packets

const query = (name: string, type: number, id: number, flags = 0): Buffer => queryPacket(name, type, { id, flags });
const frame = tcpFrame;

const PROBE_QUESTION = query(PROBE_NAME, 16, 0).subarray(12);
const probe = (id: number): Buffer => query(PROBE_NAME, 16, id);

/** A reply to some probe (QR set, the probe's question); `id` narrows it to one. */
function isProbeReply(m: Buffer, id?: number): boolean {
  return m.length >= 12 + PROBE_QUESTION.length && (m[2] & 0x80) !== 0 && m.readUInt16BE(4) === 1 &&
    m.subarray(12, 12 + PROBE_QUESTION.length).equals(PROBE_QUESTION) && (id === undefined || m.readUInt16BE(0) === id);
}

/** Random packets: half pure noise, half behind a plausible QUERY header (QR=0, opcode 0, QDCOUNT 1). */
function randomPackets(count: number, seed: number): Buffer[] {
  const rnd = prng(seed);
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const b = Buffer.alloc(Math.floor(rnd() * 300));
    for (let j = 0; j < b.length; j++) b[j] = Math.floor(rnd() * 256);
    if (i % 2 === 0 && b.length >= 12) {
      b.writeUInt16BE(rnd() < 0.5 ? 0x0100 : 0, 2);
      b.writeUInt16BE(1, 4);
      for (const at of [6, 8, 10]) b.writeUInt16BE(Math.floor(rnd() * 3), at);
    }
    out.push(b);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Sending and judging

/** What came back for one packet. */
interface Result {
  replies: Buffer[];
  /** ok: the probe after it was answered; lost: it was not (2 s); closed: the connection ended first. */
  fate: 'ok' | 'unsendable' | 'lost' | 'closed';
}

/**
 * Sends each packet over UDP, then a probe, from `inflight` sockets at once,
 * each waiting for its probe's answer (2 s at most) before the next packet.
 */
async function replayUdp(packets: Buffer[], inflight = 50): Promise<Result[]> {
  const results: Result[] = new Array(packets.length);
  let next = 0;
  let bigGate = Promise.resolve();
  const slot = async (k: number): Promise<void> => {
    const sock = dgram.createSocket('udp4');
    sock.on('error', () => undefined);
    let collected: Buffer[] = [];
    let expect = -1;
    let settle: ((ok: boolean) => void) | undefined;
    sock.on('message', (m) => {
      if (isProbeReply(m)) {
        // Only the current probe settles; a late answer to an earlier one is not a reply to this packet.
        if (m.readUInt16BE(0) === expect && settle) settle(true);
        return;
      }
      collected.push(m);
    });
    let probeId = (k * 1297) & 0xffff;
    while (next < packets.length) {
      const i = next++;
      const p = packets[i];
      if (p.length > MAX_UDP) {
        results[i] = { replies: [], fate: 'unsendable' };
        continue;
      }
      // One large datagram in flight at a time: a few 64 KiB datagrams at once would fill the
      // server's receive buffer (208 KiB by default) and the kernel would drop what follows.
      const big = p.length > BIG_DATAGRAM;
      let release = () => undefined as void;
      if (big) {
        const previous = bigGate;
        bigGate = new Promise<void>((r) => (release = r));
        await previous;
      }
      collected = [];
      probeId = (probeId + 1) & 0xffff;
      expect = probeId;
      const ok = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 2000);
        settle = (v) => {
          clearTimeout(timer);
          resolve(v);
        };
        sock.send(p, port, '127.0.0.1');
        sock.send(probe(probeId), port, '127.0.0.1');
      });
      settle = undefined;
      expect = -1;
      release();
      results[i] = { replies: collected, fate: ok ? 'ok' : 'lost' };
    }
    await new Promise<void>((r) => sock.close(() => r()));
  };
  await Promise.all(Array.from({ length: inflight }, (_, k) => slot(k)));
  return results;
}

type TcpMode = 'lockstep' | 'pipelined' | 'chunked';

/**
 * Sends packets on one TCP connection, each framed and followed by a framed
 * probe. lockstep: one packet+probe at a time; pipelined: everything in one
 * write; chunked: everything, cut at random points into separate writes.
 */
function tcpConnection(packets: Buffer[], mode: TcpMode, rnd: () => number): Promise<Result[]> {
  return new Promise((resolve) => {
    const results: Result[] = packets.map(() => ({ replies: [], fate: 'closed' }));
    const pair = (i: number) => Buffer.concat([frame(packets[i]), frame(probe(i))]);
    const sock = net.connect(port, '127.0.0.1');
    let cur = 0;
    let acc = Buffer.alloc(0);
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      clearTimeout(guard);
      sock.destroy();
      resolve(results);
    };
    const guard = setTimeout(() => {
      for (let i = cur; i < packets.length; i++) results[i].fate = 'lost';
      finish();
    }, 30_000);
    sock.on('error', () => undefined);
    sock.on('close', finish);
    sock.on('connect', () => {
      if (mode === 'lockstep') {
        sock.write(pair(0));
        return;
      }
      const all = Buffer.concat(packets.map((_, i) => pair(i)));
      if (mode === 'pipelined') {
        sock.write(all);
        return;
      }
      for (let at = 0; at < all.length;) {
        const n = 1 + Math.floor(rnd() * 700);
        sock.write(all.subarray(at, at + n));
        at += n;
      }
    });
    sock.on('data', (d) => {
      acc = acc.length ? Buffer.concat([acc, d]) : d;
      while (acc.length >= 2 && acc.length >= 2 + acc.readUInt16BE(0)) {
        const m = acc.subarray(2, 2 + acc.readUInt16BE(0));
        acc = acc.subarray(2 + m.length);
        if (cur >= packets.length) continue;
        if (isProbeReply(m, cur & 0xffff)) {
          results[cur].fate = 'ok';
          cur++;
          if (cur === packets.length) return finish();
          if (mode === 'lockstep') sock.write(pair(cur));
        } else {
          results[cur].replies.push(Buffer.from(m));
        }
      }
    });
  });
}

/** Replays packets over TCP in connections of `perConn`, `parallel` at a time, the three modes in turn. */
async function replayTcp(packets: Buffer[], perConn = 40, parallel = 8, seed = 7): Promise<Result[]> {
  const rnd = prng(seed);
  const batches: { start: number; mode: TcpMode }[] = [];
  const modes: TcpMode[] = ['lockstep', 'pipelined', 'chunked'];
  for (let s = 0, k = 0; s < packets.length; s += perConn, k++) batches.push({ start: s, mode: modes[k % 3] });
  const results: Result[] = new Array(packets.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < batches.length) {
      const b = batches[next++];
      const slice = packets.slice(b.start, b.start + perConn);
      const r = await tcpConnection(slice, b.mode, rnd);
      r.forEach((x, j) => (results[b.start + j] = x));
    }
  };
  await Promise.all(Array.from({ length: parallel }, () => worker()));
  return results;
}

const RCODE_NAME: Record<number, string> = { 0: 'NOERROR', 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 4: 'NOTIMP', 5: 'REFUSED', 16: 'BADVERS' };

const describeScreen = (s: Screened): string => (s.kind === 'drop' || s.kind === 'formerr' ? `${s.kind}:${s.reason}` : s.kind);

/**
 * Tallies the reply rcode (or 'no reply', 'lost', ...) of each packet and
 * lists what breaks the rules: the server's door (wire.screen) decides the
 * expected class of answer — dropped packets (under 12 octets, QR=1) get no
 * reply; malformed ones and unknown opcodes, when answered, get FORMERR,
 * NOTIMP or REFUSED; EDNS version > 0 gets BADVERS; well-formed queries get
 * an answer, never SERVFAIL. Every reply must have QR set, echo the id, be
 * one message, and decode.
 */
function judge(label: string, packets: Buffer[], results: Result[]): { tally: Tally; problems: string[] } {
  const tally = new Tally();
  const problems: string[] = [];
  const problem = (i: number, what: string) => {
    if (problems.length < 20) problems.push(`${label} #${i} (${packets[i].length} octets ${packets[i].subarray(0, 24).toString('hex')}): ${what}`);
    else problems.length === 20 && problems.push('...');
  };
  results.forEach((r, i) => {
    const p = packets[i];
    if (r.fate !== 'ok') {
      tally.add(r.fate);
      if (r.fate !== 'unsendable') problem(i, `probe after it ${r.fate === 'lost' ? 'not answered in 2 s' : 'never sent: connection closed'}`);
      return;
    }
    const s = screen(p);
    if (r.replies.length === 0) {
      tally.add('no reply');
      if (s.kind !== 'drop') problem(i, `no reply to a packet that screens as ${describeScreen(s)}`);
      return;
    }
    if (r.replies.length > 1) problem(i, `${r.replies.length} replies`);
    const m = r.replies[0];
    const d = decodeMessage(m);
    const rcode = d ? d.rcode : m.length >= 4 ? m[3] & 0x0f : -1;
    tally.add(RCODE_NAME[rcode] ?? `rcode${rcode}`);
    if (!d) problem(i, `undecodable reply ${m.toString('hex').slice(0, 80)}`);
    if (m.length < 12 || (m[2] & 0x80) === 0) problem(i, 'reply without QR');
    if (p.length >= 2 && m.length >= 2 && m.readUInt16BE(0) !== p.readUInt16BE(0)) problem(i, 'reply id differs');
    switch (s.kind) {
      case 'drop':
        problem(i, `a reply (${RCODE_NAME[rcode]}) to a packet that must be dropped (${s.reason})`);
        break;
      case 'formerr':
      case 'notimp':
        if (![1, 4, 5].includes(rcode)) problem(i, `${describeScreen(s)} answered ${RCODE_NAME[rcode] ?? rcode}`);
        break;
      case 'badvers':
        if (rcode !== 16) problem(i, `EDNS version > 0 answered ${RCODE_NAME[rcode] ?? rcode}`);
        break;
      case 'query':
        if (rcode === 2) problem(i, 'SERVFAIL (an exception in the server)');
        break;
    }
  });
  return { tally, problems };
}

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

/** Good queries from dig still get correct answers, over UDP and TCP. */
async function digChecks(label: string, transports: ('udp' | 'tcp')[] = ['udp', 'tcp']): Promise<void> {
  for (const tr of transports) {
    const extra = tr === 'tcp' ? ['+tcp'] : [];
    const mx = await dig(...extra, 'example.org', 'MX');
    assert.match(mx.stdout, /status: NOERROR/, `${label}: dig ${tr} example.org MX: ${mx.stdout}${mx.stderr}`);
    assert.deepEqual(section(mx.stdout, 'ANSWER'), ['example.org. 300 IN MX 10 mx.example.org.'], `${label}: dig ${tr}`);
    assert.ok(section(mx.stdout, 'ADDITIONAL').includes('mx.example.org. 300 IN A 192.0.2.25'), `${label}: dig ${tr} additional`);
    const www = await dig(...extra, 'www.example.org', 'A');
    assert.deepEqual(section(www.stdout, 'ANSWER'), ['www.example.org. 300 IN CNAME mx.example.org.', 'mx.example.org. 300 IN A 192.0.2.25'], `${label}: dig ${tr} www`);
    const nx = await dig(...extra, 'nothere.example.org', 'A');
    assert.match(nx.stdout, /status: NXDOMAIN/, `${label}: dig ${tr} NXDOMAIN`);
  }
}

function assertAlive(label: string): void {
  assert.equal(child.exitCode, null, `${label}: the appliance exited (${child.exitCode}):\n${output().slice(-3000)}`);
  assert.equal(child.signalCode, null, `${label}: the appliance was killed by ${child.signalCode}:\n${output().slice(-3000)}`);
}

/** After a group: alive, the watcher never waited WATCH_LIMIT_MS and lost nothing, dig answers. */
async function checkpoint(label: string): Promise<void> {
  assertAlive(label);
  const w = await watcherReport();
  worstOverall = Math.max(worstOverall, w.worstMs);
  console.log(
    `[${label}] watcher: ${w.sent} sent, ${w.answered} answered, ${w.lost} lost, ${w.bad} bad, ` +
      `mean ${(w.sumMs / Math.max(1, w.answered)).toFixed(2)} ms, worst ${w.worstMs.toFixed(1)} ms`,
  );
  assert.equal(w.bad, 0, `${label}: the watcher got wrong answers`);
  assert.equal(w.lost, 0, `${label}: the watcher lost ${w.lost} queries (no reply in 3 s)`);
  assert.ok(w.worstMs < WATCH_LIMIT_MS, `${label}: the watcher waited ${w.worstMs.toFixed(0)} ms for a reply`);
  await digChecks(label);
  assertAlive(label);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
    workerData: { port, query: query('mx.example.org', 1, 0), intervalMs: WATCH_INTERVAL_MS, lostAfterMs: 3000 },
  });
  await sleep(200);
  await checkpoint('baseline');
});

after(async () => {
  console.log(`watcher worst latency over all groups: ${worstOverall.toFixed(1)} ms`);
  watcher?.postMessage('stop');
  await watcher?.terminate();
  if (child) await stopChild(child);
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

const corpus: Buffer[] = corpusFiles().map(corpusPacket);

test('the Knot DNS seed corpus over UDP, 50 in flight', async () => {
  const t0 = Date.now();
  const results = await replayUdp(corpus, 50);
  const { tally, problems } = judge('udp corpus', corpus, results);
  console.log(`UDP corpus: ${corpus.length} packets in ${((Date.now() - t0) / 1000).toFixed(1)} s; replies: ${tally}`);
  assertAlive('udp corpus');
  assert.equal(tally.get('unsendable'), corpus.filter((p) => p.length > MAX_UDP).length);
  assert.deepEqual(problems, []);
  await checkpoint('udp corpus');
});

test('the Knot DNS seed corpus over TCP: 40 per connection, lockstep, pipelined and split at random', async () => {
  const t0 = Date.now();
  const results = await replayTcp(corpus, 40, 8);
  const { tally, problems } = judge('tcp corpus', corpus, results);
  console.log(`TCP corpus: ${corpus.length} packets in ${((Date.now() - t0) / 1000).toFixed(1)} s; replies: ${tally}`);
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
  for (const [transport, results] of [['udp', await replayUdp(packets, 4)], ['tcp', await replayTcp(packets, 3, 2)]] as const) {
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
  const udp = await replayUdp(packets, 50);
  let j = judge('random udp', packets, udp);
  console.log(`random over UDP: ${packets.length} in ${((Date.now() - t0) / 1000).toFixed(1)} s; replies: ${j.tally}`);
  assertAlive('random udp');
  assert.deepEqual(j.problems, []);
  const some = packets.slice(0, 2000);
  t0 = Date.now();
  const tcp = await replayTcp(some, 50, 8, 99);
  j = judge('random tcp', some, tcp);
  console.log(`random over TCP: ${some.length} in ${((Date.now() - t0) / 1000).toFixed(1)} s; replies: ${j.tally}`);
  assert.deepEqual(j.problems, []);
  await checkpoint('random');
});

/** Resolves with ms from `t0` to the socket's close, or -1 after `limitMs`. */
function closedAfter(sock: net.Socket, t0: () => number, limitMs: number): Promise<number> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(-1), limitMs);
    sock.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - t0());
    });
  });
}

test('a TCP length prefix with no body is closed after the message timeout (~5 s); others are served meanwhile', async () => {
  const lone = net.connect(port, '127.0.0.1');
  lone.on('error', () => undefined);
  let got = 0;
  lone.on('data', (d) => (got += d.length));
  await new Promise((r) => lone.once('connect', r));
  const sent = Date.now();
  const closed = closedAfter(lone, () => sent, 15_000);
  lone.write(Buffer.from([0x00, 0x40]));
  for (let i = 0; i < 4; i++) {
    await digChecks('while a prefix waits');
    await sleep(500);
  }
  const ms = await closed;
  if (ms < 0) lone.destroy();
  console.log(`length prefix without body: closed by the server after ${ms} ms`);
  assert.ok(ms >= 4000 && ms <= 8000, `expected the server to close it after ~5 s, got ${ms} ms`);
  assert.equal(got, 0, 'nothing is sent back');
  await checkpoint('prefix without body');
});

test('a slow-drip client (one byte every 200 ms) is closed after the message timeout; others are served meanwhile', async () => {
  // 12 + 62 + 13 + 4 = 91 octets + prefix: about 19 s at 5 bytes/s, far beyond the 5 s bound.
  const msg = frame(query(`${'d'.repeat(61)}.example.org`, 1, 0x5151));
  const drip = net.connect(port, '127.0.0.1');
  drip.on('error', () => undefined);
  let got = 0;
  drip.on('data', (d) => (got += d.length));
  await new Promise((r) => drip.once('connect', r));
  const first = Date.now();
  const closed = closedAfter(drip, () => first, 25_000);
  let written = 0;
  const ticker = setInterval(() => {
    if (drip.destroyed || written >= msg.length) return clearInterval(ticker);
    drip.write(msg.subarray(written, written + 1));
    written++;
  }, 200);
  drip.write(msg.subarray(0, 1));
  written = 1;
  for (let i = 0; i < 4; i++) {
    await digChecks('while a client drips');
    await sleep(500);
  }
  const ms = await closed;
  clearInterval(ticker);
  if (ms < 0) drip.destroy();
  console.log(`slow drip: closed by the server after ${ms} ms, ${written} of ${msg.length} octets sent`);
  assert.ok(ms >= 4000 && ms <= 8000, `expected the server to close the slow-drip connection after ~5 s, got ${ms} ms`);
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
      s.on('connect', () => {
        connected = true;
        setTimeout(() => resolve('open'), 1000);
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
  await sleep(300);
  await checkpoint('300 connections');
});
