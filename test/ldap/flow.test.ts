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

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
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

test('connections beyond DCMX_LDAP_MAX_CONNECTIONS get a Notice of Disconnection (unavailable) and are closed', async () => {
  const t = await appliance({ DCMX_LDAP_MAX_CONNECTIONS: '3' });
  const port = t.app.ports.ldap;
  const open: net.Socket[] = [];
  for (let i = 0; i < 3; i++) {
    const s = await connect(port);
    const r = new Responses(s);
    s.write(searchPdu(1, '', 0));
    assert.equal((await r.result(1)).code, 0, 'connections under the cap are served');
    open.push(s);
  }
  const extra = await connect(port);
  const got: Buffer[] = [];
  extra.on('data', (d) => got.push(d));
  extra.on('error', () => undefined);
  extra.write(searchPdu(1, '', 0));
  await closed(extra);
  const reply = Buffer.concat(got);
  assert.ok(reply.includes(Buffer.from('1.3.6.1.4.1.1466.20036')), 'a Notice of Disconnection');
  assert.ok(reply.includes(Buffer.from([0x0a, 0x01, 52])), 'resultCode unavailable (52)');
  assert.equal(readTlv(reply, 0).end, reply.length, 'nothing but the notice: the search was not answered');
  assert.equal(t.app.ldap.stats().refused, 1);

  // A slot freed is a slot usable.
  open.pop()!.destroy();
  await eventually(() => t.app.ldap.stats().connections < 3, 'the closed connection to be forgotten');
  const again = await connect(port);
  const r = new Responses(again);
  again.write(searchPdu(1, '', 0));
  assert.equal((await r.result(1)).code, 0);
  for (const s of [...open, again]) s.destroy();
});
