/** CounterTotals (threads/stats.ts): the counters of GET /metrics never go back when a serving thread is replaced. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { CounterTotals, type ThreadFigures } from '../../server/threads/stats';

/** A thread's figures with `n` in one counter (the fields CounterTotals sums are numbers at any depth). */
function figures(thread: number, restarts: number, n: number): ThreadFigures {
  return { thread, restarts, dns: { queries: n } } as unknown as ThreadFigures;
}

test('CounterTotals: a replaced thread counts from 0, the total never goes back; a silent slot keeps its last figures', () => {
  const totals = new CounterTotals();
  const q = (f: ThreadFigures | undefined) => f!.dns.queries;
  assert.equal(totals.add([]), undefined);
  assert.equal(q(totals.add([figures(1, 0, 10), figures(2, 0, 5)])), 15);
  assert.equal(q(totals.add([figures(1, 0, 12), figures(2, 0, 6)])), 18);
  // Slot 1's thread died and was replaced: it counts from 0 again; slot 2 did not answer this time.
  assert.equal(q(totals.add([figures(1, 1, 3)])), 12 + 3 + 6);
  assert.equal(q(totals.add([figures(1, 1, 4), figures(2, 0, 7)])), 12 + 4 + 7);
  // Replaced twice more: every predecessor's last figures stay.
  assert.equal(q(totals.add([figures(1, 2, 1), figures(2, 0, 7)])), 12 + 4 + 1 + 7);
  assert.equal(q(totals.add([figures(1, 3, 0), figures(2, 0, 7)])), 12 + 4 + 1 + 7);
});
