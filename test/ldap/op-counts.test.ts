/**
 * The LDAP operation counts of GET /metrics, on the PDUs our own encoder
 * writes: responses are peeked at without being decoded (long lengths,
 * multi-octet message IDs and result codes included).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { encodeIntermediateResponse, encodeLdapResult, encodeSearchEntry } from '../../server/ber';
import { LdapOperationCounts, operationsTotal } from '../../server/ldap/op-counts';

test('responses count by operation and result name; the request answered is timed once', () => {
  const c = new LdapOperationCounts();
  const t0 = performance.now();
  // SearchResultDone for message 300 (a two-octet INTEGER), with a diagnostic long enough for a long-form length.
  assert.equal(c.response(encodeLdapResult(300, 0x65, 32, 'o=internet', 'x'.repeat(300)), 300, t0), false);
  // Another message's result counts, but does not end the timing of request 7.
  assert.equal(c.response(encodeLdapResult(5, 0x61, 49, '', ''), 7, t0), true);
  // e-syncRefreshRequired (4096, two octets), and a code we never send (other).
  c.response(encodeLdapResult(8, 0x65, 4096, '', ''), -1, t0);
  c.response(encodeLdapResult(9, 0x67, 999, '', ''), -1, t0);
  // A search entry is not a result; an intermediate response ends its request's timing (a persist phase).
  assert.equal(c.response(encodeSearchEntry(7, 'o=internet', []), 7, t0), true);
  assert.equal(c.response(encodeIntermediateResponse(7, '1.3.6.1.4.1.4203.1.9.1.4'), 7, t0), false);
  c.unanswered(0x42);
  const f = c.figures();
  assert.deepEqual(f.results, {
    search: { noSuchObject: 1, syncRefreshRequired: 1 }, bind: { invalidCredentials: 1 }, modify: { other: 1 }, unbind: { none: 1 },
  });
  assert.equal(operationsTotal(f), 5);
  assert.deepEqual(Object.keys(f.latency), ['search']);
  assert.equal(f.latency.search.count, 1);
  assert.equal(f.latency.search.buckets['+Inf'], 1);
});
