/**
 * The answer cache's fast path (answers.ts cachedReply, wire.ts plainQuery
 * and answerKey) gives, byte for byte, the reply the full path gives: every
 * packet below goes to an appliance with the answer cache (twice, so that
 * the second is served from the cache when its answer is cachable) and to
 * one without it (DCMX_DNS_CACHE_ENTRIES=0, every reply built afresh), over
 * UDP and TCP, and the replies must be the same. The packets vary what a
 * cached reply must carry over or keep apart: the ID, RD and CD, the case of
 * the question (RFC 4343), EDNS with and without DO and CO, UDP sizes (TC
 * when over the limit), EDNS options, trailing octets, a compression pointer
 * in the question, a non-OPT additional RR, other opcodes and EDNS versions.
 * The zone is unsigned (two appliances would sign with two keys).
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { adminArgs, run, startTestAppliance, type TestAppliance } from '../helpers';
import { digRunner, exampleOrgZone, flags, kdigRunner, queryPacket, section, status, tcpFrame, tcpMessages, udpQuery } from './fixture';
import { answerKey, plainQuery } from '../../server/dns/wire';

const BIG = `dn: dc=big,dc=example,dc=org,o=internet
objectClass: dNSDomain2
dc: big
${Array.from({ length: 30 }, (_, i) => `tXTRecord: "${String(i).padStart(2, '0')}${'x'.repeat(30)}"`).join('\n')}
`;
const ZONE = exampleOrgZone({ extra: [BIG] });

let cached: TestAppliance;
let uncached: TestAppliance;

before(async () => {
  // Unsigned: two appliances would sign with two keys (signed answers from the cache: dnssec-answers.test.ts).
  cached = await startTestAppliance({ DCMX_THREADS: '1', DCMX_DNSSEC: 'off' });
  uncached = await startTestAppliance({ DCMX_THREADS: '1', DCMX_DNSSEC: 'off', DCMX_DNS_CACHE_ENTRIES: '0' });
  for (const t of [cached, uncached]) {
    const r = await run('ldapadd', adminArgs(t), ZONE);
    assert.equal(r.code, 0, r.stderr);
  }
});
after(async () => {
  await cached?.close();
  await uncached?.close();
});

const TYPE = { A: 1, NS: 2, SOA: 6, MX: 15, TXT: 16, AAAA: 28, HTTPS: 65 } as const;
const QR = 0x8000;
const RD = 0x0100;
const CD = 0x0010;
const AD = 0x0020;

/** An OPT RR (RFC 6891 §6.1.2): payload size, version, DO and CO (RFC 9824 §4) bits, options as raw octets. */
function opt(o: { size?: number; version?: number; do?: boolean; co?: boolean; options?: Buffer } = {}): Buffer {
  const options = o.options ?? Buffer.alloc(0);
  const b = Buffer.alloc(11);
  b.writeUInt16BE(41, 1);
  b.writeUInt16BE(o.size ?? 1232, 3);
  b[6] = o.version ?? 0;
  b[7] = (o.do ? 0x80 : 0) | (o.co ? 0x40 : 0);
  b.writeUInt16BE(options.length, 9);
  return Buffer.concat([b, options]);
}

/** A query with an OPT RR. */
function ednsQuery(name: string, type: number, o: Parameters<typeof opt>[0] & { id?: number; flags?: number } = {}): Buffer {
  return queryPacket(name, type, { id: o.id, flags: o.flags, arcount: 1, extra: opt(o) });
}

/** The packets, by what they vary. */
const CASES: [string, Buffer][] = [
  ['A, no EDNS', queryPacket('mx.example.org', TYPE.A, { id: 1 })],
  ['same, another ID, RD set', queryPacket('mx.example.org', TYPE.A, { id: 0xfffe, flags: RD })],
  ['same, CD and AD set', queryPacket('mx.example.org', TYPE.A, { id: 7, flags: CD | AD })],
  ['mixed case (RFC 4343)', queryPacket('Mx.ExAmPlE.oRg', TYPE.A, { id: 2 })],
  ['upper case, RD', queryPacket('MX.EXAMPLE.ORG', TYPE.A, { id: 3, flags: RD })],
  ['MX with additional', queryPacket('example.org', TYPE.MX, { id: 4 })],
  ['MX, mixed case', queryPacket('eXample.Org', TYPE.MX, { id: 5 })],
  ['CNAME chain, mixed case', queryPacket('WWW.example.org', TYPE.A, { id: 6 })],
  ['NXDOMAIN', queryPacket('nothere.example.org', TYPE.A, { id: 8 })],
  ['NXDOMAIN, mixed case', queryPacket('NoThere.Example.Org', TYPE.A, { id: 9 })],
  ['NODATA', queryPacket('mx.example.org', TYPE.MX, { id: 10 })],
  ['type 65: its low octet is "A", never folded', queryPacket('example.org', TYPE.HTTPS, { id: 11 })],
  ['type 97: its low octet is "a"', queryPacket('example.org', 97, { id: 12 })],
  ['REFUSED outside the zones', queryPacket('example.net', TYPE.A, { id: 13 })],
  ['the root', Buffer.concat([queryPacket('x', TYPE.NS, { id: 14 }).subarray(0, 12), Buffer.from([0, 0, TYPE.NS, 0, 1])])],
  ['a label with octets outside A-Z (0xC1, 0xE1)', queryPacket('\u00c1x.example.org', TYPE.A, { id: 15 })],
  ['the same with 0xE1', queryPacket('\u00e1x.example.org', TYPE.A, { id: 16 })],
  ['EDNS, no DO', ednsQuery('mx.example.org', TYPE.A, { id: 17 })],
  ['EDNS, DO', ednsQuery('mx.example.org', TYPE.A, { id: 18, do: true })],
  ['EDNS, DO and CO', ednsQuery('mx.example.org', TYPE.A, { id: 19, do: true, co: true })],
  ['EDNS, CO without DO', ednsQuery('mx.example.org', TYPE.A, { id: 20, co: true })],
  ['EDNS, DO, mixed case, RD and CD', ednsQuery('mX.example.ORG', TYPE.A, { id: 21, do: true, flags: RD | CD })],
  ['EDNS size 100 (taken as 512)', ednsQuery('big.example.org', TYPE.TXT, { id: 22, size: 100 })],
  ['EDNS size 512', ednsQuery('big.example.org', TYPE.TXT, { id: 23, size: 512 })],
  ['EDNS size 800', ednsQuery('big.example.org', TYPE.TXT, { id: 24, size: 800 })],
  ['EDNS size 1232', ednsQuery('big.example.org', TYPE.TXT, { id: 25, size: 1232 })],
  ['EDNS size 4096', ednsQuery('big.example.org', TYPE.TXT, { id: 26, size: 4096 })],
  ['no EDNS, over 512: TC', queryPacket('big.example.org', TYPE.TXT, { id: 27 })],
  ['no EDNS, over 512, mixed case: TC', queryPacket('BIG.example.org', TYPE.TXT, { id: 28, flags: RD })],
  ['EDNS with an NSID option (empty)', ednsQuery('mx.example.org', TYPE.A, { id: 29, options: Buffer.from('00030000', 'hex') })],
  ['EDNS with a cookie option', ednsQuery('mx.example.org', TYPE.A, { id: 30, options: Buffer.from('000a00080102030405060708', 'hex') })],
  ['EDNS options that overrun the RDATA: FORMERR', ednsQuery('mx.example.org', TYPE.A, { id: 31, options: Buffer.from('000a0009010203', 'hex') })],
  ['EDNS version 1: BADVERS', ednsQuery('mx.example.org', TYPE.A, { id: 32, version: 1 })],
  ['EDNS version 1, DO: BADVERS', ednsQuery('mx.example.org', TYPE.A, { id: 33, version: 1, do: true })],
  ['trailing octets after the question', Buffer.concat([queryPacket('mx.example.org', TYPE.A, { id: 34 }), Buffer.from('deadbeef', 'hex')])],
  ['trailing octets after the OPT', Buffer.concat([ednsQuery('mx.example.org', TYPE.A, { id: 35, do: true }), Buffer.from([0])])],
  ['a compression pointer as the question name: FORMERR', Buffer.from('002400000001000000000000c00c00010001', 'hex')],
  ['a pointer after a label (to the header): FORMERR', Buffer.from('002500000001000000000000026d78c00000010001', 'hex')],
  ['a question cut short: FORMERR', queryPacket('mx.example.org', TYPE.A, { id: 38 }).subarray(0, 20)],
  ['ARCOUNT 1 but no RR: FORMERR', queryPacket('mx.example.org', TYPE.A, { id: 39, arcount: 1 })],
  ['an additional A RR instead of an OPT', queryPacket('mx.example.org', TYPE.A, { id: 40, arcount: 1, extra: Buffer.from('00000100010000003c0004c0000201', 'hex') })],
  ['an OPT whose owner is not the root: FORMERR', queryPacket('mx.example.org', TYPE.A, { id: 41, arcount: 1, extra: Buffer.from('016100002904d0000000000000', 'hex') })],
  ['two OPT RRs: FORMERR', queryPacket('mx.example.org', TYPE.A, { id: 42, arcount: 2, extra: Buffer.concat([opt(), opt()]) })],
  ['QDCOUNT 2: FORMERR', queryPacket('mx.example.org', TYPE.A, { id: 43, qdcount: 2 })],
  ['opcode NOTIFY: NOTIMP', queryPacket('example.org', TYPE.SOA, { id: 44, flags: 4 << 11 })],
  ['opcode STATUS: NOTIMP', queryPacket('mx.example.org', TYPE.A, { id: 45, flags: 2 << 11 })],
  ['class CH: REFUSED', Buffer.concat([queryPacket('mx.example.org', TYPE.A, { id: 46 }).subarray(0, -2), Buffer.from([0, 3])])],
];

/** A reply over TCP to one message. */
function tcpQuery(port: number, msg: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('no TCP reply in 3 s'));
    }, 3000);
    s.on('data', tcpMessages((m) => {
      clearTimeout(timer);
      s.destroy();
      resolve(Buffer.from(m));
    }));
    s.on('error', reject);
    s.write(tcpFrame(msg));
  });
}

describe('cached replies are the replies the full path builds', () => {
  test('over UDP, each packet twice, against an appliance without the cache', async () => {
    const hitsBefore = cached.app.dns.answerer.stats.cacheHits;
    for (const [what, pkt] of CASES) {
      const want = await udpQuery(uncached.app.ports.dns, pkt);
      for (const round of [1, 2]) {
        const got = await udpQuery(cached.app.ports.dns, pkt);
        assert.deepEqual(got?.toString('hex'), want?.toString('hex'), `${what} (ask ${round})`);
      }
    }
    // Most cases answer from the cache the second time (and some the first: another case asked the same key).
    assert.ok(cached.app.dns.answerer.stats.cacheHits - hitsBefore >= 30, `cache hits: ${cached.app.dns.answerer.stats.cacheHits - hitsBefore}`);
  });

  test('over TCP, each packet twice, against an appliance without the cache', async () => {
    for (const [what, pkt] of CASES) {
      const want = await tcpQuery(uncached.app.ports.dns, pkt);
      for (const round of [1, 2]) {
        const got = await tcpQuery(cached.app.ports.dns, pkt);
        assert.equal(got.toString('hex'), want.toString('hex'), `${what} over TCP (ask ${round})`);
      }
    }
  });

  test('a small complete answer is kept once for every size limit: TCP and other EDNS sizes after UDP are hits; a truncated one is not shared', async () => {
    const port = cached.app.ports.dns;
    const hits = () => cached.app.dns.answerer.stats.cacheHits;
    const udp = (await udpQuery(port, queryPacket('ns1.example.org', TYPE.MX, { id: 200 })))!; // NODATA: small, complete
    let before = hits();
    const tcp = await tcpQuery(port, queryPacket('ns1.example.org', TYPE.MX, { id: 200 }));
    assert.equal(hits(), before + 1, 'TCP after UDP: from the cache');
    assert.equal(tcp.toString('hex'), udp.toString('hex'));
    await udpQuery(port, ednsQuery('ns1.example.org', TYPE.MX, { id: 201, size: 1232 }));
    before = hits();
    await udpQuery(port, ednsQuery('ns1.example.org', TYPE.MX, { id: 201, size: 4000 }));
    await udpQuery(port, ednsQuery('ns1.example.org', TYPE.MX, { id: 201, size: 700 }));
    assert.equal(hits(), before + 2, 'other EDNS sizes: from the cache');
    // big.example.org TXT: TC over UDP without EDNS (RFC 2181 §9); over TCP the whole RRset, never the truncated reply.
    const tc = (await udpQuery(port, queryPacket('big.example.org', TYPE.TXT, { id: 202 })))!;
    assert.equal(tc[2] & 0x02, 0x02);
    const whole = await tcpQuery(port, queryPacket('big.example.org', TYPE.TXT, { id: 202 }));
    assert.equal(whole[2] & 0x02, 0, 'no TC over TCP');
    assert.equal(whole.readUInt16BE(6), 30);
  });

  test('a response (QR set) gets no reply from either', async () => {
    const pkt = queryPacket('mx.example.org', TYPE.A, { id: 47, flags: QR });
    assert.equal(await udpQuery(cached.app.ports.dns, pkt, 300), undefined);
    assert.equal(await udpQuery(uncached.app.ports.dns, pkt, 300), undefined);
  });

  test('what a cached reply carries over: ID, RD, CD, the question as sent, the DO echo, TC', async () => {
    const port = cached.app.ports.dns;
    await udpQuery(port, ednsQuery('ns1.example.org', TYPE.A, { id: 100, do: true }));
    const hitsBefore = cached.app.dns.answerer.stats.cacheHits;
    const r = (await udpQuery(port, ednsQuery('NS1.Example.ORG', TYPE.A, { id: 0xabcd, do: true, flags: RD | CD })))!;
    assert.equal(cached.app.dns.answerer.stats.cacheHits, hitsBefore + 1, 'served from the cache');
    assert.equal(r.readUInt16BE(0), 0xabcd);
    assert.equal(r.readUInt16BE(2) & (QR | RD | CD), QR | RD | CD);
    assert.equal(r.toString('latin1', 13, 16), 'NS1', 'the question as sent');
    assert.equal(r.readUInt16BE(10), 1, 'the OPT');
    assert.equal(r[r.length - 11 + 7] & 0x80, 0x80, 'DO echoed (RFC 3225 §3)');
    const tc = (await udpQuery(port, queryPacket('big.example.org', TYPE.TXT, { id: 101 })))!;
    const tc2 = (await udpQuery(port, queryPacket('big.example.org', TYPE.TXT, { id: 102 })))!;
    assert.ok(tc.length <= 512 && tc2.length <= 512);
    assert.equal(tc2.readUInt16BE(2) & 0x0200, 0x0200, 'TC set from the cache too');
  });
});

describe('a signed zone', () => {
  let signed: TestAppliance;
  before(async () => {
    signed = await startTestAppliance({ DCMX_THREADS: '1' });
    const r = await run('ldapadd', adminArgs(signed), ZONE);
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await signed?.close();
  });

  test('a DO query answered from the cache is the signed reply, with the ID, flags and question case of its own', async () => {
    const port = signed.app.ports.dns;
    const asks: [string, number, Parameters<typeof ednsQuery>[2]][] = [
      ['mx.example.org', TYPE.A, { do: true }],
      ['example.org', TYPE.MX, { do: true }],
      ['nothere.example.org', TYPE.A, { do: true }],
      ['nothere.example.org', TYPE.A, { do: true, co: true }],
      ['mx.example.org', TYPE.MX, { do: true }],
    ];
    for (const [name, type, o] of asks) {
      const first = (await udpQuery(port, ednsQuery(name, type, { ...o, id: 1 })))!;
      assert.ok(first.readUInt16BE(6) >= 1 || first.readUInt16BE(8) >= 1, `${name}: records`);
      const hitsBefore = signed.app.dns.answerer.stats.cacheHits;
      const mixed = name.toUpperCase();
      const second = (await udpQuery(port, ednsQuery(mixed, type, { ...o, id: 2, flags: RD | CD })))!;
      assert.equal(signed.app.dns.answerer.stats.cacheHits, hitsBefore + 1, `${name}: from the cache`);
      // The same reply but for the ID, RD, CD and the question's case.
      const expected = Buffer.from(first);
      expected.writeUInt16BE(2, 0);
      expected[2] |= RD >> 8;
      expected[3] |= CD;
      expected.write(mixed.split('.').map((l) => String.fromCharCode(l.length) + l).join(''), 12, 'latin1');
      assert.equal(second.toString('hex'), expected.toString('hex'), `${name} ${type}`);
    }
  });
});

describe('dig and kdig see the same answers from the cache', () => {
  const digs = (t: () => TestAppliance) => ({ dig: digRunner(() => t().app.ports.dns), kdig: kdigRunner(() => t().app.ports.dns) });
  const on = digs(() => cached);
  const off = digs(() => uncached);
  /** What a client shows of an answer: status, flags, EDNS line, sections. */
  const shown = (out: string) => [status(out), flags(out).sort().join(' '), /EDNS: .*/.exec(out)?.[0] ?? '-', ...section(out, 'ANSWER'), '|', ...section(out, 'AUTHORITY'), '|', ...section(out, 'ADDITIONAL')];
  const asked: [string, ...string[]][] = [
    ['dig', 'WwW.ExAmPlE.oRg', 'A'],
    ['dig', '+dnssec', 'Example.org', 'MX'],
    ['dig', '+bufsize=600', '+ignore', 'big.example.org', 'TXT'],
    ['dig', '+noedns', '+ignore', 'big.example.org', 'TXT'],
    ['dig', '+tcp', 'big.example.org', 'TXT'],
    ['kdig', '+nsid', 'mx.example.org', 'A'],
    ['kdig', '+cookie', '+dnssec', 'NOTHERE.example.org', 'A'],
    ['kdig', '+cd', '+rec', 'mx.EXAMPLE.org', 'AAAA'],
  ];
  for (const [tool, ...args] of asked) {
    test(`${tool} ${args.join(' ')}`, async () => {
      const want = shown((await off[tool as 'dig' | 'kdig'](...args)).stdout);
      for (const round of [1, 2]) assert.deepEqual(shown((await on[tool as 'dig' | 'kdig'](...args)).stdout), want, `ask ${round}`);
    });
  }
});

describe('plainQuery and answerKey', () => {
  test('the key folds the name\'s ASCII letters only: not the type, not octets outside A-Z', () => {
    const key = (pkt: Buffer) => {
      const p = plainQuery(pkt)!;
      return answerKey(pkt, 12, p.questionEnd, p.edns, 512);
    };
    assert.equal(key(queryPacket('Mx.EXAMPLE.org', TYPE.A)), key(queryPacket('mx.example.org', TYPE.A)));
    assert.notEqual(key(queryPacket('example.org', 65)), key(queryPacket('example.org', 97)));
    assert.notEqual(key(queryPacket('\u00c1.example.org', TYPE.A)), key(queryPacket('\u00e1.example.org', TYPE.A)));
    assert.notEqual(key(ednsQuery('mx.example.org', TYPE.A)), key(ednsQuery('mx.example.org', TYPE.A, { do: true })));
  });

  test('only the plain shape passes; everything else is left to screen()', () => {
    assert.ok(plainQuery(queryPacket('mx.example.org', TYPE.A)));
    assert.deepEqual({ ...plainQuery(ednsQuery('a.b', TYPE.A, { size: 4096, do: true, co: true }))! }, { questionEnd: 12 + 5 + 4, edns: 3, udpSize: 4096 });
    for (const [what, pkt] of CASES) {
      if (/FORMERR|BADVERS|NOTIMP|trailing|additional A RR/.test(what)) assert.equal(plainQuery(pkt), undefined, what);
    }
    assert.equal(plainQuery(queryPacket('mx.example.org', TYPE.A, { flags: QR })), undefined);
    assert.equal(plainQuery(Buffer.alloc(11)), undefined);
    const long = queryPacket(Array.from({ length: 4 }, () => 'x'.repeat(63)).join('.'), TYPE.A);
    assert.equal(plainQuery(long), undefined, 'a 257-octet name');
  });
});
