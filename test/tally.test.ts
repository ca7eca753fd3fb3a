/** The counting tables of tally.ts: non-zero cells by name, cumulative latency histograms. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { CountTable, LatencyHistograms } from '../server/tally';

test('a count table reads out its non-zero cells by name; histograms are cumulative', () => {
  const t = new CountTable([['udp', 'tcp'], ['A', 'MX'], ['NOERROR', 'NXDOMAIN']]);
  t.add(0, 1, 0);
  t.add(0, 1, 0);
  t.add(1, 0, 1);
  assert.deepEqual(t.figures(), { udp: { MX: { NOERROR: 2 } }, tcp: { A: { NXDOMAIN: 1 } } });
  const h = new LatencyHistograms(['a', 'b'], [0.01, 0.1]);
  h.observe(0, 0.005);
  h.observe(0, 0.05);
  h.observe(0, 5);
  assert.deepEqual(h.figures(), { a: { buckets: { '0.01': 1, '0.1': 2, '+Inf': 3 }, sum: 5.055, count: 3 } });
});
