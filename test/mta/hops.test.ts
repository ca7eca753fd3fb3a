/** The hop counter (server/mta/hops.ts): Received: fields of the header section, counted chunk by chunk. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { HopCounter } from '../../server/mta/hops';

function count(message: string, chunkSize: number): number {
  const h = new HopCounter();
  const b = Buffer.from(message);
  for (let i = 0; i < b.length; i += chunkSize) h.push(b.subarray(i, i + chunkSize));
  return h.count;
}

test('counts Received: fields at the start of header lines, in any case, split across chunks anywhere', () => {
  const message = 'Received: from a by b\r\n\tfolded; date\r\nRECEIVED: from c by d\r\nX-Received: not one\r\nSubject: Received: not one\r\nreceived:x\r\n\r\nReceived: in the body\r\n';
  for (const size of [1, 2, 3, 7, 1000]) assert.equal(count(message, size), 3, `chunks of ${size}`);
});

test('the header section ends at the first empty line, CRLF or bare LF', () => {
  assert.equal(count('Received: a\n\nReceived: body\n', 4), 1);
  assert.equal(count('\r\nReceived: body\r\n', 5), 0);
  assert.equal(count('Received: a\r\n \r\nReceived: b\r\n\r\n', 3), 2, 'a line holding a space is a continuation, not the end');
});
