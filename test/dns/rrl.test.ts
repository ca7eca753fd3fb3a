/**
 * UDP response rate limiting: the limiter as a table, then the server with
 * DCMX_DNS_RRL over real UDP sockets and dig over TCP.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import { clientNetwork, ResponseRateLimiter, responseBucket, truncatedReply } from '../../server/dns/rrl';
import { adminArgs, run, startTestAppliance, type TestAppliance } from '../helpers';
import { digRunner, exampleOrgZone, section, status, queryPacket } from './fixture';
import { waitFor, waitForAsync } from '../fixtures/wait';

/** A query for `name`/`type`, id 0x1234, RD clear. */
const query = (name: string, type = 1): Buffer => queryPacket(name, type);

/** A reply shape for the bucket tests: the query with QR and an RCODE. */
function reply(name: string, rcode: number, type = 1): Buffer {
  const b = query(name, type);
  b[2] |= 0x80;
  b[3] = rcode;
  return b;
}

describe('the limiter', () => {
  test('client networks: IPv4 /24, IPv6 /56, IPv4-mapped as IPv4', () => {
    assert.equal(clientNetwork('192.0.2.77'), '192.0.2');
    assert.equal(clientNetwork('::ffff:192.0.2.77'), '192.0.2');
    assert.equal(clientNetwork('2001:db8:1:2ff::1'), '2001:0db8:0001:02');
    assert.equal(clientNetwork('2001:db8:1:2ab:ffff::9'), clientNetwork('2001:db8:1:200::1'));
    assert.notEqual(clientNetwork('2001:db8:1:300::1'), clientNetwork('2001:db8:1:200::1'));
    assert.equal(clientNetwork('::1'), '0000:0000:0000:00');
  });

  test('buckets: positive answers by name (any case) and type; all NXDOMAIN share one; errors share one', () => {
    assert.equal(responseBucket(reply('WWW.example.org', 0)), responseBucket(reply('www.EXAMPLE.org', 0)));
    assert.notEqual(responseBucket(reply('www.example.org', 0)), responseBucket(reply('www.example.org', 0, 15)));
    assert.equal(responseBucket(reply('a.example.org', 3)), responseBucket(reply('b.example.net', 3)));
    assert.equal(responseBucket(reply('a.example.org', 5)), 'err');
    assert.equal(responseBucket(Buffer.alloc(3)), 'err');
  });

  test('over the rate: dropped, every slip-th truncated; a new second starts afresh', () => {
    const rrl = new ResponseRateLimiter({ rate: 3, slip: 2 });
    const r = reply('www.example.org', 0);
    const t0 = 1_000_000;
    const verdicts = Array.from({ length: 9 }, () => rrl.check('192.0.2.1', r, t0));
    assert.deepEqual(verdicts, ['send', 'send', 'send', 'drop', 'slip', 'drop', 'slip', 'drop', 'slip']);
    assert.equal(rrl.check('192.0.2.200', r, t0), 'drop', 'the same /24 shares the bucket');
    assert.equal(rrl.check('198.51.100.1', r, t0), 'send', 'another network has its own');
    assert.equal(rrl.check('192.0.2.1', reply('mx.example.org', 0), t0), 'send', 'another name has its own');
    assert.equal(rrl.check('192.0.2.1', r, t0 + 1000), 'send', 'next second');
    assert.deepEqual(rrl.stats, { dropped: 4, slipped: 3 });
    const never = new ResponseRateLimiter({ rate: 1, slip: 0 });
    assert.deepEqual([never.check('::1', r, t0), never.check('::1', r, t0), never.check('::1', r, t0)], ['send', 'drop', 'drop']);
  });

  test('a truncated reply keeps header and question, sets TC and carries no records', () => {
    const full = Buffer.concat([reply('www.example.org', 0), Buffer.alloc(40, 7)]);
    full.writeUInt16BE(2, 6); // ANCOUNT
    full.writeUInt16BE(1, 10); // ARCOUNT
    const tc = truncatedReply(full);
    assert.equal(tc.length, query('www.example.org').length);
    assert.equal(tc[2] & 0x02, 0x02);
    assert.equal(tc.readUInt16BE(4), 1);
    assert.equal(tc.readUInt16BE(6) + tc.readUInt16BE(8) + tc.readUInt16BE(10), 0);
    assert.ok(tc.subarray(12).equals(query('www.example.org').subarray(12)));
  });
});

describe('the server with DCMX_DNS_RRL=5', () => {
  let t: TestAppliance;
  before(async () => {
    t = await startTestAppliance({ DCMX_DNS_RRL: '5', DCMX_DNS_RRL_SLIP: '2' });
    const r = await run('ldapadd', adminArgs(t), exampleOrgZone());
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => t.close());

  /**
   * Sends `n` copies of `q` at once; resolves with the replies once the server has judged all
   * `n` (its query counter) and every reply it did not drop (its RRL counter) has arrived.
   */
  async function burst(q: Buffer, n: number): Promise<Buffer[]> {
    // The process's figures (GET /stats): summed over the serving threads.
    const figures = async () => (await t.app.stats()).dns;
    const before = await figures();
    const sock = dgram.createSocket('udp4');
    const got: Buffer[] = [];
    sock.on('message', (m) => got.push(m));
    await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
    for (let i = 0; i < n; i++) sock.send(q, t.app.ports.dns, '127.0.0.1');
    await waitForAsync('the server to judge every query of the burst', async () => (await figures()).queries - before.queries >= n);
    const sent = n - ((await figures()).rrl!.dropped - before.rrl!.dropped);
    await waitFor(`the ${sent} replies the server sent`, () => got.length >= sent);
    sock.close();
    return got;
  }

  test('a burst of identical queries: some full answers, the rest dropped or truncated; TCP is never limited', async () => {
    const got = await burst(query('example.org'), 40);
    const full = got.filter((m) => (m[2] & 0x02) === 0);
    const truncated = got.filter((m) => (m[2] & 0x02) !== 0);
    // A burst can straddle a one-second boundary: at most two windows' worth of full answers.
    assert.ok(full.length >= 5 && full.length <= 10, `full answers: ${full.length}`);
    assert.ok(full.every((m) => m.readUInt16BE(6) === 1), 'full answers carry the A record');
    assert.ok(truncated.length >= 1, 'limited responses slip out truncated');
    assert.ok(truncated.every((m) => m.readUInt16BE(6) === 0 && m.readUInt16BE(0) === 0x1234));
    assert.ok(got.length < 40, `some responses were dropped (${got.length} of 40 answered)`);
    const stats = (await t.app.stats()).dns.rrl!;
    assert.ok(stats.dropped >= 1 && stats.slipped === truncated.length, JSON.stringify(stats));
    // Over TCP the same question is answered every time.
    const dig = digRunner(() => t.app.ports.dns);
    for (let i = 0; i < 8; i++) {
      const r = await dig('+tcp', 'example.org', 'A');
      assert.equal(status(r.stdout), 'NOERROR');
      assert.deepEqual(section(r.stdout, 'ANSWER'), ['example.org. 300 IN A 192.0.2.1']);
    }
  });
});
