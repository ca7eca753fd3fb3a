/**
 * Replaying packets against a running DNS endpoint and judging what comes
 * back, for test/dns/hostile.test.ts and the CI replay of the whole fuzzing
 * corpus (corpus-replay.ts).
 *
 * Replies are attributed to the packet that caused them with a probe: each
 * packet is followed, on the same socket or connection, by a query for
 * PROBE_NAME with a known id; what arrives before the probe's answer belongs
 * to the packet (the server answers a UDP socket and a TCP connection in
 * order). So a packet that gets no reply costs no timeout, and a packet
 * after which the server stops answering (a hang) shows as 'lost'.
 */
import * as assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { prng } from '../prng';
import { decodeMessage, screen, type Screened } from '../../server/dns/wire';
import { section, Tally, queryPacket, tcpFrame, tcpMessages, type DigRunner } from './fixture';

/** Largest UDP payload over IPv4 (65535 - 20 - 8). */
export const MAX_UDP = 65507;
/** UDP payloads above this are sent one at a time (see replayUdp). */
const BIG_DATAGRAM = 8192;
/** The name every probe asks for (NXDOMAIN or an answer: any reply will do). */
export const PROBE_NAME = 'probe.example.org';

/** A query with the given id and header flags. */
export const query = (name: string, type: number, id: number, flags = 0): Buffer => queryPacket(name, type, { id, flags });
const frame = tcpFrame;

const PROBE_QUESTION = query(PROBE_NAME, 16, 0).subarray(12);
const probe = (id: number): Buffer => query(PROBE_NAME, 16, id);

/** A reply to some probe (QR set, the probe's question); `id` narrows it to one. */
function isProbeReply(m: Buffer, id?: number): boolean {
  return m.length >= 12 + PROBE_QUESTION.length && (m[2] & 0x80) !== 0 && m.readUInt16BE(4) === 1 &&
    m.subarray(12, 12 + PROBE_QUESTION.length).equals(PROBE_QUESTION) && (id === undefined || m.readUInt16BE(0) === id);
}

/** Random packets: half pure noise, half behind a plausible QUERY header (QR=0, opcode 0, QDCOUNT 1). */
export function randomPackets(count: number, seed: number): Buffer[] {
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

/** What came back for one packet. */
export interface Result {
  replies: Buffer[];
  /** ok: the probe after it was answered; lost: it was not (2 s); closed: the connection ended first. */
  fate: 'ok' | 'unsendable' | 'lost' | 'closed';
}

/**
 * Sends each packet over UDP, then a probe, from `inflight` sockets at once,
 * each waiting for its probe's answer (2 s at most) before the next packet.
 */
export async function replayUdp(port: number, packets: Buffer[], inflight = 50): Promise<Result[]> {
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
function tcpConnection(port: number, packets: Buffer[], mode: TcpMode, rnd: () => number): Promise<Result[]> {
  return new Promise((resolve) => {
    const results: Result[] = packets.map(() => ({ replies: [], fate: 'closed' }));
    const pair = (i: number) => Buffer.concat([frame(packets[i]), frame(probe(i))]);
    const sock = net.connect(port, '127.0.0.1');
    let cur = 0;
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
    sock.on('data', tcpMessages((m) => {
      if (cur >= packets.length) return;
      if (isProbeReply(m, cur & 0xffff)) {
        results[cur].fate = 'ok';
        cur++;
        if (cur === packets.length) return finish();
        if (mode === 'lockstep') sock.write(pair(cur));
      } else {
        results[cur].replies.push(Buffer.from(m));
      }
    }));
  });
}

/** Replays packets over TCP in connections of `perConn`, `parallel` at a time, the three modes in turn. */
export async function replayTcp(port: number, packets: Buffer[], perConn = 40, parallel = 8, seed = 7): Promise<Result[]> {
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
      const r = await tcpConnection(port, slice, b.mode, rnd);
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
export function judge(label: string, packets: Buffer[], results: Result[]): { tally: Tally; problems: string[] } {
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

/** Good queries from dig get correct answers from the example.org zone (fixture.ts exampleOrgZone), over UDP and TCP. */
export async function digChecks(dig: DigRunner, label: string, transports: ('udp' | 'tcp')[] = ['udp', 'tcp']): Promise<void> {
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
