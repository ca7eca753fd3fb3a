/**
 * One packet through the server's door in process: wire.screen(), then
 * decodeMessage() on the same bytes, then the reply the server would build
 * for the outcome. For corpus.test.ts (the regression packets and their
 * mutations) and the CI replay of the whole fuzzing corpus (corpus-replay.ts).
 */
import assert from 'node:assert/strict';
import { decodeMessage, encodeResponse, screen, type Screened } from '../../server/dns/wire';
import { prng } from '../prng';
import { asQuery, type Tally } from './fixture';

/** The outcome of screen() as packets/index.txt writes it: the kind, and `:reason` for drop and formerr. */
export function keyOf(s: Screened): string {
  return s.kind === 'drop' || s.kind === 'formerr' ? `${s.kind}:${s.reason}` : s.kind;
}

/**
 * Screens one packet and checks what the server will do with the outcome:
 * decodeMessage on it must not throw, and the reply the server would build
 * (echoing the question) must encode and decode. Returns the outcome key.
 */
export function exercise(buf: Buffer, tally: Tally): string {
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

/** Tallies of {@link exerciseAll}, one per way the packets were changed. */
export interface Exercised {
  asIs: Tally;
  newId: Tally;
  asQuery: Tally;
  truncated: Tally;
}

/** Every packet as is, with a random id, as a plain QUERY, and cut at three random points (seeded). */
export function exerciseAll(packets: Buffer[], tallies: Exercised, seed = 0x5eed): void {
  const rand = prng(seed);
  for (const pkt of packets) {
    exercise(pkt, tallies.asIs);
    if (pkt.length >= 2) {
      const m = Buffer.from(pkt);
      m[0] = Math.floor(rand() * 256);
      m[1] = Math.floor(rand() * 256);
      exercise(m, tallies.newId);
    }
    if (pkt.length >= 4) exercise(asQuery(pkt), tallies.asQuery);
    for (let k = 0; k < 3; k++) exercise(pkt.subarray(0, Math.floor(rand() * pkt.length)), tallies.truncated);
  }
}

/** `flips` packets drawn from `packets`, made plain QUERYs, with 1 to 4 random bytes changed, each exercised (seeded). */
export function exerciseFlipped(packets: Buffer[], flips: number, tally: Tally, seed = 77): void {
  const rand = prng(seed);
  for (let i = 0; i < flips; i++) {
    const m = Buffer.from(asQuery(packets[Math.floor(rand() * packets.length)]));
    const n = 1 + Math.floor(rand() * 4);
    for (let k = 0; k < n && m.length > 0; k++) m[Math.floor(rand() * m.length)] = Math.floor(rand() * 256);
    exercise(m, tally);
  }
}
