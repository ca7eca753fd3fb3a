/**
 * Hostile-input tests for server/dns/wire.ts: the Knot DNS fuzzing seed
 * corpus (9,774 packets), mutations of it, and random bytes, through
 * screen() and decodeMessage(). These are hang and crash detectors, not
 * benchmarks: the time bounds are generous.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { decodeMessage, encodeResponse, screen, type Screened } from '../../server/dns/wire';
import { prng } from '../prng';
import { corpusFiles, corpusPacket, ISSUE18, Tally } from './fixture';

function keyOf(s: Screened): string {
  return s.kind === 'drop' || s.kind === 'formerr' ? `${s.kind}:${s.reason}` : s.kind;
}

/**
 * Screens one packet and checks what the server will do with the outcome:
 * decodeMessage on it must not throw, and the reply the server would build
 * (echoing the question) must encode and decode. Returns the outcome key.
 */
function exercise(buf: Buffer, tally: Tally): string {
  const s = screen(buf);
  const key = keyOf(s);
  tally.add(key);
  const d = decodeMessage(buf); // must not throw, whatever the packet
  if (s.kind === 'query') {
    assert.ok(d, 'a packet that screens as a query must decode');
    assert.deepEqual(d.question, s.query.question);
    const reply = encodeResponse(
      { id: s.query.id, opcode: s.query.opcode, aa: true, rd: s.query.rd, cd: s.query.cd, rcode: 0, questionWire: s.query.questionWire, answer: [], authority: [], additional: [], edns: s.query.edns ? { udpSize: 1232 } : undefined },
      s.query.edns ? s.query.edns.udpSize : 512,
    );
    const r = decodeMessage(reply);
    assert.ok(r, 'the reply to a screened query must decode');
    assert.deepEqual(r.question, s.query.question);
  } else if (s.kind !== 'drop' && s.questionWire) {
    const rcode = s.kind === 'formerr' ? 1 : s.kind === 'notimp' ? 4 : 16;
    const reply = encodeResponse(
      { id: s.id, opcode: s.opcode, aa: false, rd: s.rd, cd: false, rcode, questionWire: s.questionWire, answer: [], authority: [], additional: [], edns: s.edns ? { udpSize: 1232 } : undefined },
      512,
    );
    assert.ok(decodeMessage(reply));
  }
  return key;
}

describe('DNS packet corpus', () => {
  const files = corpusFiles();

  test('every corpus packet, as is and mutated, screens without throwing or hanging', { timeout: 120_000 }, () => {
    const packets = files.map(corpusPacket);
    assert.ok(packets.length > 9000, `${packets.length} packets`);
    const rand = prng(0x5eed);
    const asIs = new Tally();
    const newId = new Tally();
    const asQuery = new Tally();
    const truncated = new Tally();
    let slowest = 0;
    let slowestFile = '';
    const t0 = Date.now();
    packets.forEach((pkt, i) => {
      const p0 = process.hrtime.bigint();
      exercise(pkt, asIs);
      const ns = Number(process.hrtime.bigint() - p0);
      if (ns > slowest) {
        slowest = ns;
        slowestFile = files[i];
      }
      if (pkt.length >= 2) {
        const m = Buffer.from(pkt);
        m[0] = Math.floor(rand() * 256);
        m[1] = Math.floor(rand() * 256);
        exercise(m, newId);
      }
      if (pkt.length >= 4) {
        // The same bytes as a plain QUERY (QR=0, opcode 0), so responses in the
        // corpus go through the full walk instead of being dropped.
        const m = Buffer.from(pkt);
        m[2] &= 0x07;
        exercise(m, asQuery);
      }
      for (let k = 0; k < 3; k++) exercise(pkt.subarray(0, Math.floor(rand() * pkt.length)), truncated);
    });
    const elapsed = Date.now() - t0;
    console.log(`corpus: ${packets.length} packets, ${elapsed} ms for ${packets.length * 6} screenings; slowest ${(slowest / 1e6).toFixed(2)} ms (${slowestFile})`);
    console.log(`  as is:            ${asIs}`);
    console.log(`  id changed:       ${newId}`);
    console.log(`  as a QUERY:       ${asQuery}`);
    console.log(`  truncated (x3):   ${truncated}`);
    assert.equal(asIs.get('drop:response') > 0 && asIs.get('query') > 0, true);
  });

  test('100,000 random packets screen without throwing or hanging', { timeout: 120_000 }, () => {
    const rand = prng(20240601);
    const tally = new Tally();
    const t0 = Date.now();
    for (let i = 0; i < 100_000; i++) {
      const len = Math.floor(rand() * (i % 10 === 0 ? 1500 : 300));
      const buf = Buffer.allocUnsafe(len);
      for (let k = 0; k < len; k++) buf[k] = Math.floor(rand() * 256);
      if (len >= 12 && i % 2 === 0) {
        // A plausible header half of the time so the walk gets past it:
        // QR=0, opcode 0 or 4, QDCOUNT 1, small other counts.
        buf[2] &= 0x07;
        if (i % 8 === 0) buf[2] |= 4 << 3;
        buf[4] = 0;
        buf[5] = 1;
        for (const at of [6, 8, 10]) {
          buf[at] = 0;
          buf[at + 1] &= 0x03;
        }
        // Mostly short labels, with pointers sprinkled in.
        for (let k = 12; k < len; k++) {
          const r = rand();
          if (r < 0.3) buf[k] = Math.floor(rand() * 8);
          else if (r < 0.35) buf[k] = 0xc0;
        }
      }
      exercise(buf, tally);
    }
    const elapsed = Date.now() - t0;
    console.log(`random: 100000 packets in ${elapsed} ms: ${tally}`);
  });

  test('corpus packets with random bytes flipped', { timeout: 120_000 }, () => {
    const rand = prng(77);
    const tally = new Tally();
    const t0 = Date.now();
    for (let i = 0; i < 50_000; i++) {
      const src = corpusPacket(files[Math.floor(rand() * files.length)]);
      const m = Buffer.from(src);
      if (m.length >= 4) m[2] &= 0x07;
      const flips = 1 + Math.floor(rand() * 4);
      for (let k = 0; k < flips && m.length > 0; k++) m[Math.floor(rand() * m.length)] = Math.floor(rand() * 256);
      exercise(m, tally);
    }
    const elapsed = Date.now() - t0;
    console.log(`flipped: 50000 packets in ${elapsed} ms: ${tally}`);
  });

  test('screen() rejects the issue #18 packet at once', () => {
    const s = screen(ISSUE18);
    assert.equal(keyOf(s), 'formerr:pointer-loop');
  });

  test('native-dns-packet Packet.parse, unguarded, hangs on the issue #18 packet', async () => {
    let worker: Worker;
    try {
      worker = new Worker(
        `const { parentPort, workerData } = require('node:worker_threads');
         const Packet = require(workerData.lib);
         parentPort.postMessage('parsing');
         try { Packet.parse(Buffer.from(workerData.packet, 'hex')); parentPort.postMessage('returned'); }
         catch (e) { parentPort.postMessage('threw: ' + e.message); }`,
        { eval: true, workerData: { lib: require.resolve('native-dns-packet'), packet: ISSUE18.toString('hex') } },
      );
    } catch (err) {
      assert.fail(`worker threads unavailable: ${String(err)}`);
    }
    const outcome = await new Promise<string>((resolve) => {
      const startup = setTimeout(() => resolve('no-start'), 20_000);
      worker.on('message', (m: string) => {
        if (m === 'parsing') {
          clearTimeout(startup);
          setTimeout(() => resolve('still parsing after 2 s'), 2000);
        } else {
          resolve(m);
        }
      });
      worker.on('error', (err) => resolve(`worker error: ${err.message}`));
      worker.on('exit', (code) => resolve(`worker exited (${code})`));
    });
    await worker.terminate();
    assert.equal(outcome, 'still parsing after 2 s', 'native-dns-packet was expected to loop forever on this packet');
  });
});
