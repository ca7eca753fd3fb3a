/**
 * The change clock (server/directory/change-clock.ts): one number in shared
 * memory that only grows, read by every clock over the same buffer. Across
 * threads: the serving-thread tests.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { ChangeClock } from '../../server/directory/change-clock';

test('a clock over the same buffer reads what the writer published; it never goes back', () => {
  const writer = new ChangeClock();
  const reader = new ChangeClock(writer.buffer);
  assert.equal(reader.current(), 0);
  writer.publish(41);
  assert.equal(reader.current(), 41);
  writer.publish(7);
  assert.equal(reader.current(), 41, 'a smaller number is ignored');
  writer.publish(2 ** 53 - 1);
  assert.equal(reader.current(), 2 ** 53 - 1, 'change numbers up to 2^53 fit');
  assert.throws(() => writer.publish(-1), RangeError);
  assert.throws(() => writer.publish(1.5), RangeError);
  assert.throws(() => new ChangeClock(new SharedArrayBuffer(4)), RangeError);
});

test('reached() resolves when the number is published, not before', async () => {
  const writer = new ChangeClock();
  const reader = new ChangeClock(writer.buffer);
  writer.publish(3);
  await reader.reached(3); // already there: at once
  let done = false;
  const waiting = reader.reached(5).then(() => (done = true));
  writer.publish(4);
  await new Promise((r) => setImmediate(r));
  assert.equal(done, false, 'not at 4');
  writer.publish(5);
  await waiting;
  assert.equal(reader.current(), 5);
});
