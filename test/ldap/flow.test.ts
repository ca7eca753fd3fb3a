/**
 * LDAP connection flow control, over real sockets against the in-process
 * appliance: the connection cap, the deadline for completing a PDU, one
 * request per event-loop turn per connection (a pipelining client does not
 * starve the others, nor DNS), and output backpressure (a client that never
 * reads is paused, its buffered output bounded). No assertion depends on
 * how fast the machine is: only on orderings and generous bounds.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import * as dgram from 'node:dgram';
import { loadConfig } from '../../server/config';
import { readTlv } from '../../server/ber';
import { ADMIN_PASSWORD, startTestAppliance, testEnv, type TestAppliance } from '../helpers';
import { bindPdu, searchPdu } from '../fixtures/ber';
import { connect, Responses } from '../fixtures/ldap';
import { waitFor } from '../fixtures/wait';

const running: TestAppliance[] = [];
after(async () => {
  for (const t of running) await t.close();
});

async function appliance(extra: Record<string, string> = {}): Promise<TestAppliance> {
  // One serving thread: these tests read that thread's endpoint (app.ldap.stats: paused connections, queued bytes).
  const t = await startTestAppliance({ DCMX_THREADS: '1', ...extra });
  running.push(t);
  return t;
}

/** Resolves when the server has closed `sock`; rejects after `ms`. */
function closed(sock: net.Socket, ms = 20_000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (sock.destroyed) return resolve();
    const timer = setTimeout(() => reject(new Error(`connection still open after ${ms} ms`)), ms);
    sock.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Waits until `pred` holds (polled; rejects after `ms`). */
const eventually = (pred: () => boolean, what: string, ms = 30_000): Promise<unknown> => waitFor(what, pred, ms, 20);

// ---------------------------------------------------------------- configuration

test('bad flow settings stop start-up naming the variable', () => {
  for (const [name, value] of [['DCMX_LDAP_MAX_CONNECTIONS', '0'], ['DCMX_LDAP_MAX_CONNECTIONS', 'many'], ['DCMX_LDAP_PDU_TIMEOUT', '0'], ['DCMX_LDAP_PDU_TIMEOUT', '1.5']]) {
    assert.throws(() => loadConfig(testEnv('/tmp/unused', { [name]: value })), new RegExp(`^ConfigError: ${name}: `), `${name}=${value}`);
  }
  const c = loadConfig(testEnv('/tmp/unused'));
  assert.equal(c.ldap.maxConnections, 1024);
  assert.equal(c.ldap.pduTimeout, 30);
});

// ---------------------------------------------------------------- PDU deadline

test('a connection holding a half-sent PDU is closed at the PDU deadline; complete requests may be slow', async () => {
  const t = await appliance({ DCMX_LDAP_PDU_TIMEOUT: '1' });
  const port = t.app.ports.ldap;

  // 100 kB declared, half of it sent, then silence (the idle timeout is 900 s).
  const half = await connect(port);
  half.on('error', () => undefined);
  const L = 100_000;
  half.write(Buffer.from([0x30, 0x83, (L >> 16) & 255, (L >> 8) & 255, L & 255]));
  half.write(Buffer.alloc(L / 2, 0x41));
  await closed(half); // 20 s for a 1 s deadline
  assert.equal(t.app.ldap.stats().pduTimeouts, 1);

  // A client that idles between whole requests is not affected: it idles for as long as a
  // half-sent PDU on another connection takes to be closed (a whole deadline).
  const s = await connect(port);
  const r = new Responses(s);
  s.write(searchPdu(1, '', 0));
  assert.equal((await r.result(1)).code, 0);
  const clock = await connect(port);
  clock.on('error', () => undefined);
  clock.write(Buffer.from([0x30, 0x10]));
  await closed(clock);
  assert.equal(t.app.ldap.stats().pduTimeouts, 2);
  s.write(searchPdu(2, '', 0));
  assert.equal((await r.result(2)).code, 0);
  // So is one whose requests straddle its writes, PDU after PDU: 25 bytes a write, so that part
  // of a PDU is always pending, the PDUs each write completes answered before the next write,
  // for longer than a deadline in all: until a half-sent PDU begun after its first write has
  // been timed out. (A deadline counted from the first byte, not from each PDU's, closes it first.)
  let buf = Buffer.alloc(0);
  let at = 0;
  let nextId = 10;
  const ends: number[] = []; // ends[i]: where PDU 10 + i ends in buf
  let answered = 0;
  let clockDone: Promise<void> | undefined;
  let clockClosed = false;
  for (;;) {
    if (clockClosed && ends.includes(at)) break;
    while (buf.length < at + 27) {
      buf = Buffer.concat([buf, searchPdu(nextId++, '', 0)]);
      ends.push(buf.length);
    }
    // Never up to a PDU's end (a partial one stays pending); once the deadline has passed, finish the PDU under way.
    const upto = clockClosed ? ends.find((e) => e > at)! : ends.includes(at + 25) ? at + 26 : at + 25;
    s.write(buf.subarray(at, upto));
    at = upto;
    if (!clockDone) {
      const c = await connect(port);
      c.on('error', () => undefined);
      c.write(Buffer.from([0x30, 0x10]));
      clockDone = closed(c).then(() => {
        clockClosed = true;
      });
    }
    const complete = ends.filter((e) => e <= at).length;
    if (complete > answered) {
      answered = complete;
      assert.equal((await r.result(9 + answered)).code, 0);
    }
  }
  assert.ok(answered > 6, `${answered} PDUs`);
  assert.equal(t.app.ldap.stats().pduTimeouts, 3, 'only the half-sent PDUs were timed out');
  s.destroy();
});

// ---------------------------------------------------------------- connection cap

/** A connection (from `from`) that has had a search answered: it is past the connection router. */
async function served(port: number, from?: string): Promise<net.Socket> {
  const s = await connect(port, from);
  const r = new Responses(s);
  s.write(searchPdu(1, '', 0));
  assert.equal((await r.result(1)).code, 0, `a connection${from ? ` from ${from}` : ''} is served`);
  return s;
}

/** A connection (from `from`) whose search gets nothing but a Notice of Disconnection (unavailable), then the close. */
async function refusedWithNotice(port: number, from?: string): Promise<void> {
  const extra = await connect(port, from);
  const got: Buffer[] = [];
  extra.on('data', (d) => got.push(d));
  extra.on('error', () => undefined);
  extra.write(searchPdu(1, '', 0));
  await closed(extra);
  const reply = Buffer.concat(got);
  assert.ok(reply.includes(Buffer.from('1.3.6.1.4.1.1466.20036')), 'a Notice of Disconnection');
  assert.ok(reply.includes(Buffer.from([0x0a, 0x01, 52])), 'resultCode unavailable (52)');
  assert.equal(readTlv(reply, 0).end, reply.length, 'nothing but the notice: the search was not answered');
}

test('connections beyond DCMX_LDAP_MAX_CONNECTIONS get a Notice of Disconnection (unavailable) and are closed', async () => {
  const t = await appliance({ DCMX_LDAP_MAX_CONNECTIONS: '3' });
  const port = t.app.ports.ldap;
  const open: net.Socket[] = [];
  for (let i = 0; i < 3; i++) open.push(await served(port));
  await refusedWithNotice(port);
  assert.equal(t.app.ldap.stats().refused, 1);

  // A slot freed is a slot usable.
  open.pop()!.destroy();
  await eventually(() => t.app.ldap.stats().connections < 3, 'the closed connection to be forgotten');
  open.push(await served(port));
  for (const s of open) s.destroy();
});

test('one client beyond DCMX_LDAP_CLIENT_CONNECTIONS gets a Notice of Disconnection (unavailable); other clients are served', async () => {
  const t = await appliance({ DCMX_LDAP_CLIENT_CONNECTIONS: '3' });
  const port = t.app.ports.ldap;
  const open: net.Socket[] = [];
  for (let i = 0; i < 3; i++) open.push(await served(port, '127.0.0.2'));
  await refusedWithNotice(port, '127.0.0.2');
  assert.deepEqual([t.app.ldap.stats().refusedPerClient, t.app.ldap.stats().refused], [1, 0]);
  // Another client is served; a slot the first client frees is its own again.
  open.push(await served(port, '127.0.0.3'));
  open.shift()!.destroy();
  await eventually(() => t.app.ldap.stats().connections < 4, 'the closed connection to be forgotten');
  open.push(await served(port, '127.0.0.2'));
  for (const s of open) s.destroy();
});

test('past 3/4 of DCMX_LDAP_MAX_CONNECTIONS, idle connections are closed after DCMX_LDAP_BUSY_IDLE_TIMEOUT', async () => {
  // The idle timeout stays 900 s: without the busy timeout none of these would close for 15 minutes.
  const t = await appliance({ DCMX_LDAP_MAX_CONNECTIONS: '8', DCMX_LDAP_BUSY_IDLE_TIMEOUT: '1' });
  const port = t.app.ports.ldap;
  const idle: net.Socket[] = [];
  for (let i = 0; i < 7; i++) idle.push(await served(port, `127.0.0.${10 + i}`)); // 7 of 8: busy
  await Promise.all(idle.map((s) => closed(s)));
  await eventually(() => t.app.ldap.stats().connections === 0, 'every connection to be forgotten');
  (await served(port, '127.0.0.10')).destroy();
});

// ---------------------------------------------------------------- one request per turn

/** Adds `n` entries of about `size` bytes each under a new `ou=<ou>,o=internet`. */
function fill(t: TestAppliance, ou: string, n: number, size: number): string {
  const d = t.app.directory;
  const who = d.systemIdentity();
  const base = `ou=${ou},o=internet`;
  d.addSync(who, base, [{ type: 'objectClass', values: ['organizationalUnit'] }, { type: 'ou', values: [ou] }]);
  for (let i = 0; i < n; i++) {
    d.addSync(who, `cn=r${i},${base}`, [
      { type: 'objectClass', values: ['organizationalRole'] }, { type: 'cn', values: [`r${i}`] },
      { type: 'description', values: ['x'.repeat(size)] },
    ]);
  }
  return base;
}

/** Counts the directory searches the LDAP endpoint starts (the appliance is in this process). */
function countSearches(t: TestAppliance): { readonly n: number } {
  const d = t.app.directory;
  const inner = d.startSearch.bind(d);
  const c = { n: 0 };
  d.startSearch = (...args: Parameters<typeof inner>) => {
    c.n++;
    return inner(...args);
  };
  return c;
}

/** One DNS query over UDP; resolves when any answer arrives. */
function dnsQuery(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const u = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      u.close();
      reject(new Error('no DNS answer'));
    }, 30_000);
    u.on('message', () => {
      clearTimeout(timer);
      u.close();
      resolve();
    });
    // id 0xabcd, RD, one question: example.org A IN
    u.send(Buffer.from('abcd01000001000000000000076578616d706c65036f72670000010001', 'hex'), port, '127.0.0.1');
  });
}

let shared: TestAppliance | undefined;
/** One appliance with a small and a big subtree, for the tests below. */
async function sharedAppliance(): Promise<{ t: TestAppliance; small: string; big: string }> {
  if (!shared) {
    shared = await appliance();
    fill(shared, 'small', 20, 20);
    fill(shared, 'big', 1000, 400);
  }
  return { t: shared, small: 'ou=small,o=internet', big: 'ou=big,o=internet' };
}

async function adminConnection(port: number): Promise<{ s: net.Socket; r: Responses }> {
  const s = await connect(port);
  const r = new Responses(s);
  s.write(bindPdu(1, 'cn=admin,o=internet', ADMIN_PASSWORD));
  assert.equal((await r.result(1)).code, 0, 'admin bind');
  return { s, r };
}

test('a search pipelined behind a bind is answered with the bind\'s identity', async () => {
  const { t, small } = await sharedAppliance();
  const s = await connect(t.app.ports.ldap);
  const r = new Responses(s);
  // Anonymous users cannot see organizationalRole entries: only the admin's search finds it.
  s.write(Buffer.concat([bindPdu(1, 'cn=admin,o=internet', ADMIN_PASSWORD), searchPdu(2, `cn=r1,${small}`, 0)]));
  assert.equal((await r.result(1)).code, 0);
  assert.equal((await r.result(2)).code, 0, 'the search ran after the bind completed');
  assert.equal(r.all.filter((x) => x.id === 2 && x.tag === 0x64).length, 1);
  s.destroy();
});

test('1,000 pipelined searches on one connection do not starve another connection nor DNS', async () => {
  const { t, small } = await sharedAppliance();
  const port = t.app.ports.ldap;
  const searches = countSearches(t);
  const N = 1000;
  const { s: a, r: ra } = await adminConnection(port);
  const resultsOfA = () => ra.all.filter((x) => x.tag === 0x65).length;
  a.write(Buffer.concat(Array.from({ length: N }, (_, i) => searchPdu(i + 2, small, 2, ['cn', 'description']))));
  await ra.until(() => resultsOfA() > 0, 'the first of the pipelined results');

  // Meanwhile, another LDAP client and a DNS client are served.
  const b = await connect(port);
  const rb = new Responses(b);
  b.write(searchPdu(7, '', 0));
  let aDoneWhenBAnswered = -1;
  let aDoneWhenDnsAnswered = -1;
  await Promise.all([
    rb.result(7).then((x) => {
      assert.equal(x.code, 0);
      aDoneWhenBAnswered = resultsOfA();
    }),
    dnsQuery(t.app.ports.dns).then(() => (aDoneWhenDnsAnswered = resultsOfA())),
  ]);
  // Generous: one request per connection per turn makes it a handful.
  assert.ok(aDoneWhenBAnswered < N / 2, `the other LDAP client waited for ${aDoneWhenBAnswered} of the ${N} pipelined searches`);
  assert.ok(aDoneWhenDnsAnswered < N / 2, `DNS waited for ${aDoneWhenDnsAnswered} of the ${N} pipelined searches`);

  // Every pipelined search is answered, in order.
  await ra.result(N + 1);
  const ids = ra.all.filter((x) => x.tag === 0x65).map((x) => x.id);
  assert.deepEqual(ids, Array.from({ length: N + 1 }, (_, i) => i + 1).slice(1).map((i) => i));
  assert.ok(ra.all.filter((x) => x.tag === 0x65).every((x) => x.code === 0));

  // A client that goes away leaves no work behind.
  const before = searches.n;
  a.write(Buffer.concat(Array.from({ length: N }, (_, i) => searchPdu(N + i + 2, small, 2, ['cn']))));
  await ra.until(() => ra.all.some((x) => x.id > N + 1), 'the first of the second batch');
  a.destroy();
  // Once its connection is gone and its queue dropped, nothing more can run for it.
  await eventually(() => t.app.ldap.stats().queuedRequests === 0 && t.app.ldap.stats().connections === 1, 'the queue to be dropped');
  assert.ok(searches.n - before < N / 2, `${searches.n - before} of ${N} searches ran for a client that had gone`);
  b.destroy();
});

// ---------------------------------------------------------------- output backpressure

test('a client that does not read its results is paused; what the server buffers for it stays bounded', async () => {
  const { t, big } = await sharedAppliance();
  const searches = countSearches(t);
  const { s, r } = await adminConnection(t.app.ports.ldap);
  s.pause(); // read nothing more
  const N = 100; // each result is ~1,000 entries, ~430 kB: 43 MB in all
  const before = searches.n;
  s.write(Buffer.concat(Array.from({ length: N }, (_, i) => searchPdu(i + 2, big, 2, ['*']))));
  await eventually(() => t.app.ldap.stats().pausedConnections === 1, 'reading to pause');
  // Let the server do all it is willing to do (the count settles).
  let last = -1;
  let stable = 0;
  await eventually(() => {
    if (searches.n === last) stable++;
    else (last = searches.n), (stable = 0);
    return stable >= 25 && searches.n > before;
  }, 'the server to stop answering');
  const st = t.app.ldap.stats();
  assert.ok(searches.n - before < N / 2, `${searches.n - before} of ${N} searches were answered for a client that reads nothing`);
  assert.ok(st.bufferedOutput < 4 * 1024 * 1024, `${st.bufferedOutput} bytes buffered for a client that reads nothing`);
  assert.ok(st.queuedRequests > 0 && st.queuedBytes < 1024 * 1024, `queue: ${st.queuedRequests} requests, ${st.queuedBytes} bytes`);
  assert.equal(st.pausedConnections, 1);

  // Once it reads, it gets everything, in order.
  s.resume();
  await r.result(N + 1);
  const done = r.all.filter((x) => x.tag === 0x65);
  assert.deepEqual(done.map((x) => x.id), Array.from({ length: N }, (_, i) => i + 2));
  assert.ok(done.every((x) => x.code === 0));
  assert.equal(r.all.filter((x) => x.tag === 0x64).length, N * 1001); // the base and its 1,000 children
  assert.equal(t.app.ldap.stats().pausedConnections, 0);
  s.destroy();
});
