/**
 * A serving thread that dies (DCMX_THREADS=2) is logged at error and
 * replaced on the same ports; its clients reconnect; the other thread kept
 * serving throughout: its LDAP connections stay open and answer, DNS over
 * UDP is answered while the replacement starts.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import type * as net from 'node:net';
import pino from 'pino';
import { adminArgs, run, startTestAppliance, type TestAppliance } from '../helpers';
import { digRunner, exampleOrgZone, section, status } from '../dns/fixture';
import { connect, Responses } from '../fixtures/ldap';
import { searchPdu } from '../fixtures/ber';
import { waitFor, waitForAsync } from '../fixtures/wait';

/** LDAP connections opened before the kill: the kernel gives each thread some of them. */
const CONNECTIONS = 16;

const records: { level: number; msg: string; thread?: number }[] = [];
const log = pino({ level: 'warn' }, { write: (s: string) => void records.push(JSON.parse(s)) });

let t: TestAppliance;
const dig = digRunner(() => t.app.ports.dns);

before(async () => {
  // The subject of this file: two serving threads, one of which dies.
  t = await startTestAppliance({ DCMX_THREADS: '2' }, undefined, log);
  const r = await run('ldapadd', adminArgs(t), exampleOrgZone());
  assert.equal(r.code, 0, r.stderr);
});
after(async () => t?.close());

/** An LDAP connection, and a way to ask it for the root DSE (a result code, 0 when served). */
interface Conn {
  sock: net.Socket;
  replies: Responses;
  ask(): Promise<number>;
}

async function open(): Promise<Conn> {
  const sock = await connect(t.app.ports.ldap);
  const replies = new Responses(sock);
  let id = 0;
  return {
    sock, replies,
    async ask() {
      sock.write(searchPdu(++id, '', 0));
      return (await replies.result(id, 20_000)).code;
    },
  };
}

/** Whether the server closed `c` (its thread died), or it still answers. */
function fate(c: Conn): Promise<'closed' | 'served'> {
  return new Promise((resolve, reject) => {
    if (c.replies.closed) return resolve('closed');
    c.sock.once('close', () => resolve('closed'));
    c.ask().then((code) => (code === 0 ? resolve('served') : reject(new Error(`result ${code}`))), () => resolve('closed'));
  });
}

test('a dead serving thread is logged and replaced; its clients reconnect; the other thread kept serving', { timeout: 120_000 }, async () => {
  const conns = await Promise.all(Array.from({ length: CONNECTIONS }, open));
  for (const c of conns) assert.equal(await c.ask(), 0);
  const threads = t.app.threads!;
  assert.equal(threads.listening(), 2);

  await threads.kill(1);
  // DNS answers at once: the other thread's socket takes every datagram while the replacement starts.
  for (let i = 0; i < 4; i++) {
    const r = await dig('example.org', 'A');
    assert.equal(status(r.stdout), 'NOERROR', r.stdout);
    assert.deepEqual(section(r.stdout, 'ANSWER'), ['example.org. 300 IN A 192.0.2.1']);
  }
  const fates = await Promise.all(conns.map(fate));
  const closed = conns.filter((_, i) => fates[i] === 'closed');
  const served = conns.filter((_, i) => fates[i] === 'served');
  assert.ok(closed.length > 0, `the dead thread's connections were closed (${fates.join(' ')})`);
  assert.ok(served.length > 0, `the other thread's connections kept being served (${fates.join(' ')})`);

  await waitFor('the error line of the dead thread', () => records.some((r) => r.level === 50 && r.thread === 1 && /serving thread died/.test(r.msg)));
  await waitFor('the replacement to listen', () => threads.listening() === 2);
  const stats = await t.app.stats();
  assert.deepEqual(stats.threads.map((th) => [th.thread, th.restarts]), [[1, 1], [2, 0]]);

  // The dead thread's clients reconnect and are served; the survivors still are.
  const again = await Promise.all(closed.map(open));
  for (const c of [...again, ...served]) assert.equal(await c.ask(), 0);
  // New connections reach the replacement too.
  await waitForAsync('the replacement to be given connections', async () => {
    const more = await Promise.all(Array.from({ length: 8 }, open));
    for (const c of more) {
      assert.equal(await c.ask(), 0);
      c.sock.destroy();
    }
    return (await t.app.stats()).threads.find((th) => th.thread === 1)!.ldap.accepted > 0;
  });
  for (const c of [...conns, ...again]) c.sock.destroy();
});
