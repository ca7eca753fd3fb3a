/**
 * The queue rows the queue tools and delivery share (storage/queue.ts,
 * migration 008), on a real store: a message the operator holds is never
 * due and never taken by an attempt; an attempt's lease is taken only for a
 * message still there and not held, and ends with its settle; a domain
 * filter matches the domain exactly, its LIKE wildcards taken literally.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { Store } from '../../storage/store';
import { QueueStore } from '../../storage/queue';
import { ACTIVE_LEASE_MS, MESSAGE_STATUSES, QueueAdmin } from '../../server/mta/queue-admin';
import { Spool } from '../../server/mta/spool';
import { tempDirs } from '../helpers';

const dir = tempDirs('dcmx-queue-store-');
const store = Store.open(path.join(dir(), 'q.sqlite'), []);
const queue = new QueueStore(store);
after(() => store.close());

const T0 = 1_000_000;

function add(id: string, rcpts: string[]): void {
  queue.enqueue({ id, receivedAt: T0, sender: 's@example.org', size: 10, spool: '', body: Buffer.from('Subject: x\r\n\r\nx\r\n') }, rcpts.map((rcpt) => ({ rcpt, held: false })), T0);
}

test('a held message is neither due nor taken; released, it is both', () => {
  add('A', ['a@one.test', 'b@two.test']);
  add('B', ['c@one.test']);
  assert.deepEqual(queue.due(T0, 10).map((r) => r.messageId).sort(), ['A', 'A', 'B']);
  assert.equal(queue.setHeld('A', T0 + 1), true);
  assert.deepEqual(queue.due(T0, 10).map((r) => r.messageId), ['B']);
  assert.equal(queue.nextDue(), T0);
  assert.deepEqual([...queue.claim(['A', 'B', 'gone'], T0 + 2)], ['B'], 'held and missing messages are not taken');
  assert.equal(queue.message('B')?.deliveringSince, T0 + 2);
  assert.equal(queue.message('A')?.deliveringSince, null);

  assert.equal(queue.setHeld('B', T0 + 3), true);
  assert.equal(queue.nextDue(), undefined, 'nothing due while both are held');
  assert.equal(queue.setHeld('A', null), true);
  assert.equal(queue.setHeld('B', null), true);
  assert.equal(queue.setHeld('nope', null), false);
  assert.equal(queue.due(T0, 10).length, 3);
});

test('settle ends the lease and records the attempt; retryNow makes recipients due; remove takes the rows', () => {
  queue.claim(['A'], T0 + 10);
  queue.settle('A', { done: ['a@one.test'], retry: [{ rcpt: 'b@two.test', at: T0 + 5000, error: '4.4.1 refused' }], hold: [], attemptedAt: T0 + 20 });
  const a = queue.message('A')!;
  assert.equal(a.deliveringSince, null);
  const [r] = queue.recipients('A');
  assert.equal(r.rcpt, 'b@two.test');
  assert.equal(r.attempts, 1);
  assert.equal(r.lastAttempt, T0 + 20);
  assert.equal(r.lastError, '4.4.1 refused');
  assert.equal(queue.retryNow('A', T0 + 30), 1);
  assert.equal(queue.recipients('A')[0].nextAttempt, T0 + 30);
  queue.setHeld('B', T0);
  assert.equal(queue.retryNow(undefined, T0 + 40), 1, '--all leaves held messages alone');
  assert.equal(queue.recipients('B')[0].nextAttempt, T0);
  queue.setHeld('B', null);
  queue.claim(['B'], T0 + 50);
  assert.equal(queue.clearLeases(), 1);
  assert.equal(queue.message('B')?.deliveringSince, null);
  queue.remove('B');
  assert.equal(queue.message('B'), undefined);
  assert.deepEqual(queue.recipients('B'), []);
});

test('entries: oldest first, without the bytes; a domain filter is exact and takes % and _ literally', () => {
  add('C', ['x@a_b.test', 'y@sub.one.test']);
  add('D', ['z@axb.test']);
  const all = queue.entries();
  assert.deepEqual(all.map((e) => e.message.id), ['A', 'C', 'D']);
  assert.ok(all.every((e) => e.message.body === null), 'no inline bytes in a listing');
  assert.deepEqual(all.find((e) => e.message.id === 'C')?.recipients.map((r) => r.rcpt), ['x@a_b.test', 'y@sub.one.test']);
  assert.deepEqual(queue.entries('A_B.test').map((e) => e.message.id), ['C']);
  assert.deepEqual(queue.entries('one.test').map((e) => e.message.id), [], 'not the subdomains');
  assert.deepEqual(queue.entries('%').map((e) => e.message.id), []);
  assert.deepEqual(queue.entries('two.test').map((e) => e.message.id), ['A']);
});

test("the queue's depth counted in SQL agrees with the queue tools' listing, status by status", () => {
  const fresh = Store.open(path.join(dir(), 'depth.sqlite'), []);
  try {
    const q = new QueueStore(fresh);
    const put = (id: string, at: number, rcpts: string[]) =>
      q.enqueue({ id, receivedAt: at, sender: '', size: 1, spool: '', body: Buffer.from('x\r\n') }, rcpts.map((rcpt) => ({ rcpt, held: false })), at);
    put('Q1', T0 + 1, ['a@x.test', 'b@x.test']); // queued: never tried
    put('Q2', T0 + 2, ['c@x.test']);
    put('D1', T0 + 3, ['d@x.test', 'e@x.test']); // deferred: one recipient tried
    q.settle('D1', { done: [], retry: [{ rcpt: 'd@x.test', at: T0 + 9000, error: '4.4.1' }], hold: [], attemptedAt: T0 + 4 });
    put('D2', T0 + 4, ['f@y.test']); // deferred: waiting for its domain
    q.settle('D2', { done: [], retry: [], hold: [{ rcpt: 'f@y.test', why: 'domain on hold' }], attemptedAt: T0 + 5 });
    put('H1', T0 + 5, ['g@x.test']); // hold
    q.setHeld('H1', T0 + 6);
    put('A1', T0 + 6, ['h@x.test', 'i@x.test', 'j@x.test']); // active: a lease younger than the lease time
    q.claim(['A1'], T0 + 7);
    put('A2', T0 + 7, ['k@x.test']); // an expired lease: not active
    q.claim(['A2'], T0 - ACTIVE_LEASE_MS);

    const now = T0 + 10;
    const admin = new QueueAdmin({ queue: q, spool: new Spool(dir()), hostname: 'mx.test', now: () => now });
    const fromList = Object.fromEntries(MESSAGE_STATUSES.map((s) => {
      const ms = admin.list({ status: s });
      return [s, { messages: ms.length, recipients: ms.reduce((n, m) => n + m.recipients.length, 0), oldest: ms[0]?.receivedAt }];
    }));
    assert.deepEqual(admin.depth(), fromList);
    assert.deepEqual(admin.depth(), {
      queued: { messages: 3, recipients: 4, oldest: T0 + 1 },
      deferred: { messages: 2, recipients: 3, oldest: T0 + 3 },
      hold: { messages: 1, recipients: 1, oldest: T0 + 5 },
      active: { messages: 1, recipients: 3, oldest: T0 + 6 },
    });
  } finally {
    fresh.close();
  }
});
