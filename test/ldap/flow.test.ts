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
import { children, integerContent, readInt, readTlv, tlv } from '../../server/ldap/ber';
import { ADMIN_PASSWORD, startTestAppliance, testEnv, type TestAppliance } from '../helpers';

const running: TestAppliance[] = [];
after(async () => {
  for (const t of running) await t.close();
});

async function appliance(extra: Record<string, string> = {}): Promise<TestAppliance> {
  const t = await startTestAppliance(extra);
  running.push(t);
  return t;
}

// ---------------------------------------------------------------- PDUs

const octets = (s: string, tag = 0x04) => tlv(tag, Buffer.from(s, 'utf8'));
const message = (id: number, op: Buffer) => tlv(0x30, Buffer.concat([tlv(0x02, integerContent(id)), op]));

function bindPdu(id: number, dn: string, password: string): Buffer {
  return message(id, tlv(0x60, Buffer.concat([tlv(0x02, integerContent(3)), octets(dn), octets(password, 0x80)])));
}

/** SearchRequest (objectClass=*) with the given scope and attributes. */
function searchPdu(id: number, base: string, scope: number, attrs: string[] = []): Buffer {
  return message(id, tlv(0x63, Buffer.concat([
    octets(base), tlv(0x0a, integerContent(scope)), tlv(0x0a, integerContent(0)),
    tlv(0x02, integerContent(0)), tlv(0x02, integerContent(0)), tlv(0x01, Buffer.from([0])),
    octets('objectClass', 0x87), tlv(0x30, Buffer.concat(attrs.map((a) => octets(a)))),
  ])));
}

/** A response as seen by the client. */
interface Response {
  id: number;
  tag: number;
  /** resultCode for results, -1 for entries. */
  code: number;
}

/** Parses the responses arriving on `sock` (and counts entries). */
class Responses {
  readonly all: Response[] = [];
  closed = false;
  private buf: Buffer = Buffer.alloc(0);
  private waiters: (() => void)[] = [];

  constructor(readonly sock: net.Socket) {
    sock.on('data', (c: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, c]) : c;
      for (;;) {
        let msg;
        try {
          msg = readTlv(this.buf, 0);
        } catch {
          break; // incomplete
        }
        const [id, op] = children(this.buf, msg);
        const code = op.tag === 0x64 ? -1 : readInt(this.buf, children(this.buf, op)[0]);
        this.all.push({ id: readInt(this.buf, id), tag: op.tag, code });
        this.buf = this.buf.subarray(msg.end);
      }
      this.wake();
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves when `pred` holds (checked on every arrival); rejects after `ms` or when closed first. */
  until(pred: () => boolean, what: string, ms = 60_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
      const check = () => {
        if (pred()) {
          clearTimeout(timer);
          resolve();
        } else if (this.closed) {
          clearTimeout(timer);
          reject(new Error(`connection closed while waiting for ${what}`));
        } else this.waiters.push(check);
      };
      check();
    });
  }

  /** The result for message `id`, once it has arrived. */
  async result(id: number, ms?: number): Promise<Response> {
    await this.until(() => this.all.some((r) => r.id === id && r.tag !== 0x64), `the response to ${id}`, ms);
    return this.all.find((r) => r.id === id && r.tag !== 0x64)!;
  }
}

/** Connects to 127.0.0.1:port, from `from` when given (127.x.y.z stands for a client of its own). */
function connect(port: number, from?: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: from }, () => resolve(s));
    s.once('error', reject);
  });
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

/** Polls `pred` every 20 ms until it holds (rejects after `ms`). */
async function eventually(pred: () => boolean, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

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

  // A client that idles between whole requests is not affected.
  const s = await connect(port);
  const r = new Responses(s);
  s.write(searchPdu(1, '', 0));
  assert.equal((await r.result(1)).code, 0);
  await new Promise((res) => setTimeout(res, 1500));
  s.write(searchPdu(2, '', 0));
  assert.equal((await r.result(2)).code, 0);
  // So is one whose requests straddle its writes, PDU after PDU.
  const pdus = Buffer.concat(Array.from({ length: 6 }, (_, i) => searchPdu(10 + i, '', 0)));
  for (let off = 0; off < pdus.length; off += 25) {
    s.write(pdus.subarray(off, off + 25));
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.equal((await r.result(15)).code, 0);
  assert.equal(t.app.ldap.stats().pduTimeouts, 1);
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

/** Counts the directory searches the LDAP endpoint runs (the appliance is in this process). */
function countSearches(t: TestAppliance): { readonly n: number } {
  const d = t.app.directory;
  const inner = d.search.bind(d);
  const c = { n: 0 };
  d.search = (...args: Parameters<typeof inner>) => {
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
  await eventually(() => t.app.ldap.stats().queuedRequests === 0 && t.app.ldap.stats().connections === 1, 'the queue to be dropped');
  await new Promise((res) => setTimeout(res, 200));
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
