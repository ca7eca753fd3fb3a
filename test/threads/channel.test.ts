/**
 * The bridge between threads (server/threads/channel.ts) over a real
 * MessageChannel: answers and errors come back to the request that asked,
 * in any order; typed errors stay typed through the codec; a closed side
 * rejects what waits; a timeout rejects.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { MessageChannel } from 'node:worker_threads';
import { Channel, ChannelClosedError, ChannelTimeoutError, type ErrorCodec } from '../../server/threads/channel';

class Refused extends Error {
  constructor(readonly why: string) {
    super(`refused: ${why}`);
    this.name = 'Refused';
  }
}

const codec: ErrorCodec = {
  toData: (e) => (e instanceof Refused ? { refused: e.why } : { message: (e as Error).message }),
  fromData: (d) => {
    const o = d as { refused?: string; message?: string };
    return o.refused !== undefined ? new Refused(o.refused) : new Error(o.message);
  },
};

type Server = {
  add: { args: { a: number; b: number }; result: number };
  slow: { args: { ms: number; v: string }; result: string };
  refuse: { args: string; result: never };
  never: { args: null; result: never };
};
type Client = { hello: { args: string; result: string } };

function pair() {
  const { port1, port2 } = new MessageChannel();
  const server = new Channel<Server, Client>(port1, codec);
  const client = new Channel<Client, Server>(port2, codec);
  return {
    server, client,
    close() {
      port1.close();
      port2.close();
    },
  };
}

test('answers reach the request that asked, in any order, both ways', async () => {
  const p = pair();
  try {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    p.server.handle('add', ({ a, b }) => a + b);
    p.server.handle('slow', async ({ v }) => {
      await gate;
      return v;
    });
    p.client.handle('hello', (name) => `hello ${name}`);
    const slow = p.client.request('slow', { ms: 0, v: 'late' });
    const sums = await Promise.all([1, 2, 3].map((i) => p.client.request('add', { a: i, b: 10 })));
    assert.deepEqual(sums, [11, 12, 13]);
    assert.equal(await p.server.request('hello', 'main'), 'hello main');
    assert.equal(p.client.pending, 1, 'the slow one still waits');
    release();
    assert.equal(await slow, 'late');
    assert.equal(p.client.pending, 0);
  } finally {
    p.close();
  }
});

test('a handler\'s error comes back typed; an unknown method is an error, not a hang', async () => {
  const p = pair();
  try {
    p.server.handle('refuse', (why) => {
      throw new Refused(why);
    });
    await assert.rejects(p.client.request('refuse', 'no'), (e) => e instanceof Refused && e.why === 'no');
    await assert.rejects(p.client.request('add', { a: 1, b: 2 }), /no such method: add/);
  } finally {
    p.close();
  }
});

test('closing rejects what waits and what comes after; a timeout rejects', async () => {
  const p = pair();
  try {
    p.server.handle('never', () => new Promise<never>(() => undefined));
    await assert.rejects(p.client.request('never', null, { timeoutMs: 20 }), ChannelTimeoutError);
    const waiting = p.client.request('never', null);
    p.client.close('the thread exited');
    await assert.rejects(waiting, (e) => e instanceof ChannelClosedError && /the thread exited/.test(e.message));
    await assert.rejects(p.client.request('add', { a: 1, b: 1 }), ChannelClosedError);
  } finally {
    p.close();
  }
});
