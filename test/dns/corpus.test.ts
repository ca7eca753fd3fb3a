/**
 * Hostile-input tests for server/dns/wire.ts, in process: the regression
 * packets kept in packets/ (each must screen as packets/index.txt says),
 * mutations of them, and random bytes, through screen() and
 * decodeMessage(). These are hang and crash detectors, not benchmarks: a
 * hang fails by the test's timeout. The whole Knot DNS fuzzing corpus goes
 * through the same checks in CI (corpus-replay.ts).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { screen } from '../../server/dns/wire';
import { prng } from '../prng';
import { asQuery, ISSUE18, regressionPackets, Tally } from './fixture';
import { exercise, exerciseAll, exerciseFlipped, keyOf } from './screening';

describe('DNS regression packets', () => {
  const packets = regressionPackets();

  test('every regression packet screens as packets/index.txt says, as is and as a plain QUERY', () => {
    assert.ok(packets.length >= 30, `${packets.length} packets`);
    for (const p of packets) {
      assert.equal(keyOf(screen(p.packet)), p.asIs, `${p.file} as is (${p.why})`);
      assert.equal(keyOf(screen(asQuery(p.packet))), p.asQuery, `${p.file} as a QUERY (${p.why})`);
    }
    // The set covers the door's outcomes: every kind, and the formerr reasons of the fuzzing corpus.
    const seen = new Set(packets.flatMap((p) => [p.asIs, p.asQuery]));
    for (const k of ['drop:short', 'drop:response', 'query', 'notimp', 'badvers', 'formerr:truncated', 'formerr:bad-label-length',
      'formerr:forward-pointer', 'formerr:pointer-into-header', 'formerr:pointer-loop', 'formerr:qdcount']) {
      assert.ok(seen.has(k), `no regression packet screens as ${k}`);
    }
  });

  test('every regression packet, as is and mutated, screens and decodes without throwing or hanging', { timeout: 120_000 }, () => {
    const t = { asIs: new Tally(), newId: new Tally(), asQuery: new Tally(), truncated: new Tally() };
    exerciseAll(packets.map((p) => p.packet), t);
    console.log(`regression packets: ${packets.length}`);
    console.log(`  as is:            ${t.asIs}`);
    console.log(`  id changed:       ${t.newId}`);
    console.log(`  as a QUERY:       ${t.asQuery}`);
    console.log(`  truncated (x3):   ${t.truncated}`);
    assert.ok(t.asIs.get('drop:response') > 0 && t.asIs.get('query') > 0);
  });

  test('regression packets with random bytes flipped (50,000)', { timeout: 120_000 }, () => {
    const tally = new Tally();
    exerciseFlipped(packets.map((p) => p.packet), 50_000, tally);
    console.log(`flipped: 50000 packets: ${tally}`);
    assert.ok(tally.get('query') > 0, 'some flipped packets still get through the door');
  });

  test('100,000 random packets screen without throwing or hanging', { timeout: 120_000 }, () => {
    const rand = prng(20240601);
    const tally = new Tally();
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
    console.log(`random: 100000 packets: ${tally}`);
  });

  test('screen() rejects the issue #18 packet at once', () => {
    const s = screen(ISSUE18);
    assert.equal(keyOf(s), 'formerr:pointer-loop');
  });

  test('native-dns-packet Packet.parse, unguarded, loops forever on the issue #18 packet', async () => {
    // Its name reader seeks back to the pointer on every turn: a parse that seeks a million
    // times in 18 octets never ends. The count stops it (in a worker, so that a real hang
    // would only fail this test by its timeout).
    const lib = require.resolve('native-dns-packet');
    const cursor = require.resolve('buffercursor', { paths: [path.dirname(lib)] });
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const BufferCursor = require(workerData.cursor);
       const Packet = require(workerData.lib);
       let seeks = 0;
       const seek = BufferCursor.prototype.seek;
       BufferCursor.prototype.seek = function (p) { if (++seeks > 1e6) throw new Error('a million seeks'); return seek.call(this, p); };
       try { Packet.parse(Buffer.from(workerData.packet, 'hex')); parentPort.postMessage('returned'); }
       catch (e) { parentPort.postMessage('threw: ' + e.message); }`,
      { eval: true, workerData: { lib, cursor, packet: ISSUE18.toString('hex') } },
    );
    try {
      const outcome = await new Promise<string>((resolve) => {
        worker.once('message', resolve);
        worker.once('error', (err) => resolve(`worker error: ${err.message}`));
        worker.once('exit', (code) => resolve(`worker exited (${code})`));
      });
      assert.equal(outcome, 'threw: a million seeks', 'native-dns-packet was expected to loop forever on this packet');
    } finally {
      await worker.terminate();
    }
  });
});
