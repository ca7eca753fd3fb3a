import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Packet from 'native-dns-packet';
import {
  canonicalName,
  canonicalRData,
  decodeMessage,
  encodeNotify,
  encodeResponse,
  encodeTransfer,
  parseNotifyReply,
  screen,
  type Query,
  type Response,
  type Screened,
} from '../../server/dns/wire';
import { formatRR, parseRData, RRTYPE, type RR } from '../../server/directory/records';

// ---------------------------------------------------------------------------
// A tiny packet builder.

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** Wire form of a dotted name (no escapes), uncompressed. */
function wname(name: string): Buffer {
  if (name === '') return Buffer.from([0]);
  const parts = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')]));
  return Buffer.concat([...parts, Buffer.from([0])]);
}
const u16 = (v: number): Buffer => Buffer.from([v >>> 8, v & 0xff]);
const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
};

interface HeaderOpts {
  id?: number;
  qr?: boolean;
  opcode?: number;
  rd?: boolean;
  cd?: boolean;
  qd?: number;
  an?: number;
  ns?: number;
  ar?: number;
}
function header(o: HeaderOpts = {}): Buffer {
  const flags = (o.qr ? 0x8000 : 0) | ((o.opcode ?? 0) << 11) | (o.rd === false ? 0 : 0x0100) | (o.cd ? 0x10 : 0);
  return Buffer.concat([u16(o.id ?? 0x1234), u16(flags), u16(o.qd ?? 1), u16(o.an ?? 0), u16(o.ns ?? 0), u16(o.ar ?? 0)]);
}
const question = (name: string, type = 1, cls = 1): Buffer => Buffer.concat([wname(name), u16(type), u16(cls)]);
const rrWire = (owner: Buffer, type: number, cls: number, ttl: number, rdata: Buffer): Buffer =>
  Buffer.concat([owner, u16(type), u16(cls), u32(ttl), u16(rdata.length), rdata]);
function optRR(o: { udp?: number; version?: number; dnssecOk?: boolean; compactOk?: boolean; options?: Buffer; owner?: Buffer } = {}): Buffer {
  const ttl = ((o.version ?? 0) << 16) | (o.dnssecOk ? 0x8000 : 0) | (o.compactOk ? 0x4000 : 0);
  return rrWire(o.owner ?? Buffer.from([0]), 41, o.udp ?? 1232, ttl, o.options ?? Buffer.alloc(0));
}
const soaRdata = (serial: number): Buffer =>
  Buffer.concat([wname('ns.example.org'), wname('hostmaster.example.org'), u32(serial), u32(3600), u32(600), u32(86400), u32(300)]);

/** A standard query: header (counts derived) + question + sections. */
function query(name: string, type = 1, o: HeaderOpts & { answer?: Buffer[]; authority?: Buffer[]; additional?: Buffer[] } = {}): Buffer {
  const an = o.answer ?? [];
  const ns = o.authority ?? [];
  const ar = o.additional ?? [];
  return Buffer.concat([header({ an: an.length, ns: ns.length, ar: ar.length, ...o }), question(name, type), ...an, ...ns, ...ar]);
}

const rr = (name: string, type: number, value: string, ttl = 300): RR => ({ name, ttl, rdata: parseRData(type, value) });

function mustQuery(s: Screened): Query {
  assert.equal(s.kind, 'query', `expected a query, got ${JSON.stringify(s)}`);
  return (s as { kind: 'query'; query: Query }).query;
}

function decoded(buf: Buffer): NonNullable<ReturnType<typeof decodeMessage>> {
  const d = decodeMessage(buf);
  assert.ok(d, 'decodeMessage rejected our own output');
  return d;
}

// ---------------------------------------------------------------------------

describe('screen', () => {
  const ISSUE18 = hex('0000 0100 0001 0000 0000 0000 c00c 0001 0001');
  const label63 = 'a'.repeat(63);
  const name255 = [label63, label63, label63, 'b'.repeat(61)].join('.'); // 3*64 + 62 + 1 = 255 octets
  const name256 = [label63, label63, label63, 'b'.repeat(62)].join('.');

  type Case = { name: string; pkt: Buffer; kind: Screened['kind']; reason?: string; check?: (s: Screened) => void };
  const cases: Case[] = [
    {
      name: 'valid A query',
      pkt: query('www.example.org', 1, { id: 0xbeef }),
      kind: 'query',
      check: (s) => {
        const q = mustQuery(s);
        assert.deepEqual(
          { id: q.id, opcode: q.opcode, rd: q.rd, cd: q.cd, question: q.question, edns: q.edns, serial: q.authoritySoaSerial },
          { id: 0xbeef, opcode: 0, rd: true, cd: false, question: { name: 'www.example.org', type: 1, class: 1 }, edns: undefined, serial: undefined },
        );
        assert.deepEqual(q.questionWire, question('www.example.org', 1));
      },
    },
    {
      name: 'query with EDNS: udpSize and DO',
      pkt: query('example.org', 15, { cd: true, additional: [optRR({ udp: 4096, dnssecOk: true })] }),
      kind: 'query',
      check: (s) => {
        const q = mustQuery(s);
        assert.deepEqual(q.edns, { udpSize: 4096, version: 0, do: true });
        assert.equal(q.cd, true);
      },
    },
    {
      name: 'query with EDNS: DO and CO (RFC 9824 §4)',
      pkt: query('example.org', 15, { additional: [optRR({ dnssecOk: true, compactOk: true })] }),
      kind: 'query',
      check: (s) => assert.deepEqual(mustQuery(s).edns, { udpSize: 1232, version: 0, do: true, co: true }),
    },
    {
      name: 'EDNS payload below 512 reads as 512 (RFC 6891 §6.2.5)',
      pkt: query('example.org', 1, { additional: [optRR({ udp: 100 })] }),
      kind: 'query',
      check: (s) => assert.equal(mustQuery(s).edns?.udpSize, 512),
    },
    {
      name: 'unknown EDNS option is ignored',
      pkt: query('example.org', 1, { additional: [optRR({ options: hex('fde9 0004 deadbeef 000a 0008 0102030405060708') })] }),
      kind: 'query',
      check: (s) => assert.deepEqual(mustQuery(s).edns, { udpSize: 1232, version: 0, do: false }),
    },
    { name: 'QR=1 is dropped', pkt: query('example.org', 1, { qr: true }), kind: 'drop', reason: 'response' },
    { name: '11-byte packet is dropped', pkt: header().subarray(0, 11), kind: 'drop', reason: 'short' },
    { name: 'empty packet is dropped', pkt: Buffer.alloc(0), kind: 'drop', reason: 'short' },
    { name: 'QDCOUNT=0', pkt: header({ qd: 0 }), kind: 'formerr', reason: 'qdcount' },
    {
      name: 'QDCOUNT=2',
      pkt: Buffer.concat([header({ qd: 2 }), question('a.example'), question('b.example')]),
      kind: 'formerr',
      reason: 'qdcount',
    },
    {
      name: 'issue #18: self-pointing compression pointer',
      pkt: ISSUE18,
      kind: 'formerr',
      reason: 'pointer-loop',
    },
    {
      name: 'pointer loop through backward pointers (label, then pointer to it)',
      // Question at 12..20; the answer owner at 21 is the label "abc" followed by a pointer back to 21.
      pkt: Buffer.concat([header({ an: 1 }), question('a.b'), hex('03 616263 c0 15')]),
      kind: 'formerr',
      reason: 'pointer-loop',
    },
    {
      name: 'forward pointer',
      pkt: Buffer.concat([header(), hex('c0 12 0001 0001'), wname('example.org')]),
      kind: 'formerr',
      reason: 'forward-pointer',
    },
    {
      name: 'pointer into the header',
      pkt: Buffer.concat([header(), hex('c0 02 0001 0001')]),
      kind: 'formerr',
      reason: 'pointer-into-header',
    },
    { name: '64-byte label', pkt: query(`${'a'.repeat(64)}.example`), kind: 'formerr', reason: 'bad-label-length' },
    { name: 'extended label type 0x41', pkt: Buffer.concat([header(), hex('41 00 0001 0001')]), kind: 'formerr', reason: 'bad-label-length' },
    {
      name: '255-octet name is accepted',
      pkt: query(name255),
      kind: 'query',
      check: (s) => assert.equal(mustQuery(s).question.name, name255),
    },
    { name: '256-octet name', pkt: query(name256), kind: 'formerr', reason: 'name-too-long' },
    {
      name: '256-octet name built with a pointer',
      // answer owner: 63+63+63 octets of labels, then a pointer to the question name "bb..b" (62 octets) -> 256.
      pkt: Buffer.concat([
        header({ an: 1 }),
        question('b'.repeat(62)),
        wname([label63, label63, label63].join('.')).subarray(0, 192),
        hex('c00c 0001 0001 00000000 0000'),
      ]),
      kind: 'formerr',
      reason: 'name-too-long',
    },
    { name: 'ANCOUNT beyond the packet', pkt: query('example.org', 1, { an: 5 }), kind: 'formerr', reason: 'truncated' },
    { name: 'question without type/class', pkt: Buffer.concat([header(), wname('example.org'), hex('0001')]), kind: 'formerr', reason: 'truncated' },
    {
      name: 'RDLENGTH beyond the packet',
      pkt: query('example.org', 1, { additional: [rrWire(hex('c00c'), 1, 1, 0, hex('01020304')).subarray(0, 14)] }),
      kind: 'formerr',
      reason: 'truncated',
    },
    {
      name: 'two OPT RRs',
      pkt: query('example.org', 1, { additional: [optRR(), optRR()] }),
      kind: 'formerr',
      reason: 'opt-duplicate',
      check: (s) => {
        assert.equal(s.kind, 'formerr');
        if (s.kind === 'formerr') assert.deepEqual(s.question, { name: 'example.org', type: 1, class: 1 });
      },
    },
    { name: 'OPT in the answer section', pkt: query('example.org', 1, { answer: [optRR()] }), kind: 'formerr', reason: 'opt-outside-additional' },
    { name: 'OPT with a non-root owner', pkt: query('example.org', 1, { additional: [optRR({ owner: hex('c00c') })] }), kind: 'formerr', reason: 'opt-owner' },
    { name: 'OPT option overrunning its RDATA', pkt: query('example.org', 1, { additional: [optRR({ options: hex('000a 0008 0102') })] }), kind: 'formerr', reason: 'opt-rdata' },
    {
      name: 'EDNS version 1',
      pkt: query('example.org', 1, { additional: [optRR({ version: 1, dnssecOk: true })] }),
      kind: 'badvers',
      check: (s) => {
        assert.equal(s.kind, 'badvers');
        if (s.kind === 'badvers') {
          assert.deepEqual(s.edns, { udpSize: 1232, version: 1, do: true });
          assert.equal(s.question.name, 'example.org');
        }
      },
    },
    { name: 'opcode 2 (STATUS)', pkt: query('example.org', 1, { opcode: 2 }), kind: 'notimp' },
    {
      name: 'opcode 5 (UPDATE)',
      pkt: query('example.org', 6, { opcode: 5, authority: [rrWire(hex('c00c'), 1, 255, 0, Buffer.alloc(0))] }),
      kind: 'notimp',
      check: (s) => {
        assert.equal(s.kind, 'notimp');
        if (s.kind === 'notimp') assert.equal(s.question?.type, 6);
      },
    },
    {
      name: 'NOTIFY (opcode 4) is a query for the server to judge',
      pkt: query('example.org', 6, { opcode: 4, rd: false }),
      kind: 'query',
      check: (s) => assert.equal(mustQuery(s).opcode, 4),
    },
    {
      name: 'IXFR query with the SOA in authority',
      pkt: query('example.org', 251, { authority: [rrWire(hex('c00c'), 6, 1, 0, soaRdata(2024010101))] }),
      kind: 'query',
      check: (s) => assert.equal(mustQuery(s).authoritySoaSerial, 2024010101),
    },
    {
      name: 'IXFR: SOA owner matched case-insensitively, serial above 2^31',
      pkt: query('Example.ORG', 251, { authority: [rrWire(wname('example.org'), 6, 1, 0, soaRdata(4000000000))] }),
      kind: 'query',
      check: (s) => assert.equal(mustQuery(s).authoritySoaSerial, 4000000000),
    },
    {
      name: 'authority SOA of another name is not an IXFR serial',
      pkt: query('example.org', 251, { authority: [rrWire(wname('other.org'), 6, 1, 0, soaRdata(7))] }),
      kind: 'query',
      check: (s) => assert.equal(mustQuery(s).authoritySoaSerial, undefined),
    },
    {
      name: 'two SOAs for the question name: no serial',
      pkt: query('example.org', 251, { authority: [rrWire(hex('c00c'), 6, 1, 0, soaRdata(1)), rrWire(hex('c00c'), 6, 1, 0, soaRdata(2))] }),
      kind: 'query',
      check: (s) => assert.equal(mustQuery(s).authoritySoaSerial, undefined),
    },
    {
      name: 'an UPDATE-style SOA of class ANY with empty RDATA is not judged',
      pkt: query('example.org', 251, { authority: [rrWire(hex('c00c'), 6, 1, 0, soaRdata(9)), rrWire(hex('c00c'), 6, 255, 0, Buffer.alloc(0))] }),
      kind: 'query',
      check: (s) => assert.equal(mustQuery(s).authoritySoaSerial, 9),
    },
    {
      name: 'malformed authority SOA RDATA',
      pkt: query('example.org', 251, { authority: [rrWire(hex('c00c'), 6, 1, 0, soaRdata(1).subarray(0, 30))] }),
      kind: 'formerr',
      reason: 'soa-rdata',
    },
    {
      name: 'escaped question name: dot, backslash, space and NUL inside labels',
      pkt: Buffer.concat([header(), hex('05 612e625c63 02 2000 07'), Buffer.from('example'), hex('00 0010 0001')]),
      kind: 'query',
      check: (s) => assert.equal(mustQuery(s).question.name, 'a\\.b\\\\c.\\032\\000.example'),
    },
    {
      name: 'root question',
      pkt: query('', 2),
      kind: 'query',
      check: (s) => assert.deepEqual(mustQuery(s).question, { name: '', type: 2, class: 1 }),
    },
    {
      name: 'case preserved in the question',
      pkt: query('WwW.ExAmPlE.oRg'),
      kind: 'query',
      check: (s) => assert.equal(mustQuery(s).question.name, 'WwW.ExAmPlE.oRg'),
    },
    {
      name: 'trailing octets after the last RR are ignored',
      pkt: Buffer.concat([query('example.org'), hex('deadbeef')]),
      kind: 'query',
    },
  ];

  for (const c of cases) {
    test(c.name, () => {
      const s = screen(c.pkt);
      assert.equal(s.kind, c.kind, JSON.stringify(s));
      if (c.reason !== undefined) assert.equal((s as { reason?: string }).reason, c.reason);
      c.check?.(s);
    });
  }

  test('the issue #18 packet is 18 octets and reports id/opcode/rd', () => {
    assert.equal(ISSUE18.length, 18);
    assert.deepEqual(screen(ISSUE18), { kind: 'formerr', id: 0, opcode: 0, rd: true, reason: 'pointer-loop' });
  });

  test('formerr echoes the question when it parsed', () => {
    const s = screen(query('example.org', 1, { an: 3 }));
    assert.equal(s.kind, 'formerr');
    if (s.kind === 'formerr') {
      assert.deepEqual(s.question, { name: 'example.org', type: 1, class: 1 });
      assert.deepEqual(s.questionWire, question('example.org'));
    }
  });

  test('notimp carries the EDNS of the query', () => {
    const s = screen(query('example.org', 1, { opcode: 2, additional: [optRR({ udp: 2048 })] }));
    assert.equal(s.kind, 'notimp');
    if (s.kind === 'notimp') assert.equal(s.edns?.udpSize, 2048);
  });

  test('questionWire is a copy', () => {
    const pkt = query('example.org');
    const q = mustQuery(screen(pkt));
    pkt.fill(0);
    assert.deepEqual(q.questionWire, question('example.org'));
  });
});

// ---------------------------------------------------------------------------

function response(o: Partial<Response>): Response {
  return { id: 7, opcode: 0, aa: true, rd: false, cd: false, rcode: 0, answer: [], authority: [], additional: [], ...o };
}

/** Offset of the first RR's RDATA in a response whose question is `qlen` octets and whose first owner is a 2-octet pointer. */
const firstRdata = (qlen: number): number => 12 + qlen + 2 + 10;

describe('encodeResponse', () => {
  const Q = { name: 'example.org', type: 255, class: 1 };
  const typeCases: { type: number; value: string; name?: string; expect?: string }[] = [
    { type: RRTYPE.A, value: '192.0.2.1' },
    { type: RRTYPE.AAAA, value: '2001:db8::1' },
    { type: RRTYPE.AAAA, value: '2001:DB8:0:0:1:0:0:1', expect: '2001:db8::1:0:0:1' },
    { type: RRTYPE.AAAA, value: '::ffff:192.0.2.1' },
    { type: RRTYPE.AAAA, value: '::' },
    { type: RRTYPE.MX, value: '10 mx.example.org' },
    { type: RRTYPE.NS, value: 'ns1.example.org.' },
    { type: RRTYPE.CNAME, value: 'target.example.net', name: 'www.example.org' },
    { type: RRTYPE.PTR, value: 'host.example.org', name: '1.2.0.192.in-addr.arpa' },
    { type: RRTYPE.TXT, value: `"v=spf1 -all" "" "${'x'.repeat(255)}"` },
    { type: RRTYPE.TXT, value: '"bin\\000\\255\\"q\\\\"' },
    { type: RRTYPE.SRV, value: '0 5 25 mail.example.org', name: '_submission._tcp.example.org' },
    { type: RRTYPE.CAA, value: '0 issue "letsencrypt.org"' },
    { type: RRTYPE.SOA, value: 'ns1.example.org hostmaster.example.org 4000000000 3600 600 1209600 300' },
    { type: RRTYPE.HINFO, value: '"INTEL-386" "Linux"' },
    { type: RRTYPE.SSHFP, value: '4 2 9dd2d1ba1bb0c1a6f2e5e2f0e2b1e6d8a3f7e1c4b5a6978877665544332211aa' },
    { type: RRTYPE.TLSA, value: '3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6' },
  ];
  for (const c of typeCases) {
    const record = rr(c.name ?? 'example.org', c.type, c.value);
    test(`round trip ${formatRR(record)}`, () => {
      const buf = encodeResponse(response({ question: Q, answer: [record] }), 512);
      const d = decoded(buf);
      const want = c.expect ? formatRR(rr(c.name ?? 'example.org', c.type, c.expect)) : formatRR(record);
      assert.deepEqual(d.answer, [want]);
      assert.deepEqual(d.question, Q);
      assert.equal(d.qr, true);
      assert.equal(d.aa, true);
      assert.equal(d.tc, false);
    });
  }

  test('CAA bytes: flags, tag length, tag, value (RFC 8659 §4.1)', () => {
    const buf = encodeResponse(response({ question: Q, answer: [rr('example.org', RRTYPE.CAA, '0 issue "letsencrypt.org"')] }), 512);
    const at = firstRdata(question('example.org').length);
    assert.equal(buf.readUInt16BE(at - 2), 2 + 5 + 15);
    assert.deepEqual(buf.subarray(at, at + 22), Buffer.concat([hex('00 05'), Buffer.from('issue'), Buffer.from('letsencrypt.org')]));
    // critical flag
    const crit = encodeResponse(response({ question: Q, answer: [rr('example.org', RRTYPE.CAA, '128 iodef "mailto:x@example.org"')] }), 512);
    assert.equal(crit[at], 128);
  });

  test('TXT strings: 255-octet, empty and short ones encode as given', () => {
    const record = rr('example.org', RRTYPE.TXT, `"abc" "" "${'y'.repeat(255)}"`);
    const buf = encodeResponse(response({ question: Q, answer: [record] }), 512);
    const at = firstRdata(question('example.org').length);
    assert.equal(buf.readUInt16BE(at - 2), 4 + 1 + 256);
    assert.deepEqual(buf.subarray(at, at + 6), hex('03 616263 00 ff'));
  });

  test('TXT strings over 255 octets handed in directly are split, not refused', () => {
    const record: RR = { name: 'example.org', ttl: 1, rdata: { type: 16, strings: [Buffer.alloc(600, 0x41)] } };
    const d = decoded(encodeResponse(response({ question: Q, answer: [record] }), 1232));
    assert.deepEqual(d.answer, [`example.org.\t1\tIN\tTXT\t"${'A'.repeat(255)}" "${'A'.repeat(255)}" "${'A'.repeat(90)}"`]);
  });

  test('native-dns-packet decodes our output to the same values (independent check)', () => {
    const answer = [
      rr('example.org', RRTYPE.A, '192.0.2.1'),
      rr('example.org', RRTYPE.MX, '10 mx.example.org'),
      rr('example.org', RRTYPE.NS, 'ns.example.net'),
      rr('example.org', RRTYPE.TXT, '"hello" "world"'),
      rr('_sip._udp.example.org', RRTYPE.SRV, '1 2 5060 sip.example.org'),
      rr('example.org', RRTYPE.SOA, 'ns.example.net hostmaster.example.org 2024010101 3600 600 86400 300'),
      rr('example.org', RRTYPE.TLSA, '3 1 1 abcdef'),
    ];
    const buf = encodeResponse(response({ id: 4242, question: Q, answer, edns: { udpSize: 1232 } }), 1232);
    assert.ok(decodeMessage(buf), 'validated before native-dns-packet sees it');
    const p = Packet.parse(buf);
    assert.equal(p.header.id, 4242);
    assert.equal(p.header.qr, 1);
    assert.equal(p.header.aa, 1);
    assert.deepEqual(p.question, [{ name: 'example.org', type: 255, class: 1 }]);
    const a = p.answer;
    assert.equal(a.length, 7);
    assert.equal(a[0].address, '192.0.2.1');
    assert.deepEqual([a[1].priority, a[1].exchange], [10, 'mx.example.org']);
    assert.equal(a[2].data, 'ns.example.net');
    assert.deepEqual(a[3].data, ['hello', 'world']);
    assert.deepEqual([a[4].priority, a[4].weight, a[4].port, a[4].target], [1, 2, 5060, 'sip.example.org']);
    assert.deepEqual([a[5].primary, a[5].admin, a[5].serial, a[5].refresh, a[5].retry, a[5].expiration, a[5].minimum], ['ns.example.net', 'hostmaster.example.org', 2024010101, 3600, 600, 86400, 300]);
    assert.deepEqual([a[6].usage, a[6].selector, a[6].matchingtype, (a[6].buff as Buffer).toString('hex')], [3, 1, 1, 'abcdef']);
    assert.equal(p.edns?.class, 1232);
  });

  test('compression: 20 MX records in one zone', () => {
    const answer = Array.from({ length: 20 }, (_, i) => rr('example.org', RRTYPE.MX, `${i} mx${i}.example.org`));
    const buf = encodeResponse(response({ question: { name: 'example.org', type: 15, class: 1 }, answer }), 65535);
    const uncompressed = 12 + question('example.org').length + answer.reduce((n, r) => n + wname(r.name).length + 10 + 2 + wname((r.rdata as { exchange: string }).exchange).length, 0);
    assert.ok(buf.length < uncompressed * 0.55, `${buf.length} octets compressed vs ${uncompressed} uncompressed`);
    assert.deepEqual(decoded(buf).answer, answer.map(formatRR));
  });

  test('compression stays valid past offset 0x3FFF (TCP-sized answers)', () => {
    const answer: RR[] = [];
    for (let i = 0; i < 300; i++) answer.push(rr(`h${i}.example.org`, RRTYPE.TXT, `"${'z'.repeat(100)}"`));
    for (let i = 0; i < 300; i++) answer.push(rr(`h${i}.example.org`, RRTYPE.A, `10.0.${i >> 8}.${i & 255}`));
    answer.push(rr('late.example.net', RRTYPE.A, '10.9.9.9'), rr('late.example.net', RRTYPE.A, '10.9.9.8'));
    const buf = encodeResponse(response({ question: Q, answer }), 65535);
    assert.ok(buf.length > 0x4000);
    assert.deepEqual(decoded(buf).answer, answer.map(formatRR));
  });

  test('names that are Object.prototype keys compress correctly', () => {
    const answer = [rr('www.constructor', RRTYPE.A, '192.0.2.1'), rr('a.__proto__', RRTYPE.A, '192.0.2.2'), rr('b.__proto__', RRTYPE.A, '192.0.2.3')];
    assert.deepEqual(decoded(encodeResponse(response({ question: Q, answer }), 512)).answer, answer.map(formatRR));
  });

  test('truncation: 40 TXT of 200 octets at limit 512 -> TC, no answers, <= 512', () => {
    const answer = Array.from({ length: 40 }, (_, i) => rr('example.org', RRTYPE.TXT, `"${String(i).padStart(200, 'x')}"`));
    for (const edns of [undefined, { udpSize: 1232 }]) {
      const buf = encodeResponse(response({ question: { name: 'example.org', type: 16, class: 1 }, answer, edns }), 512);
      assert.ok(buf.length <= 512);
      const d = decoded(buf);
      assert.equal(d.tc, true);
      assert.deepEqual(d.answer, []);
      assert.deepEqual(d.authority, []);
      assert.equal(d.additional.length, edns ? 1 : 0);
      assert.equal(buf.readUInt16BE(4), 1);
    }
  });

  test('truncation when the authority does not fit', () => {
    const authority = Array.from({ length: 40 }, (_, i) => rr('example.org', RRTYPE.NS, `${'n'.repeat(50)}${i}.example.net`));
    const d = decoded(encodeResponse(response({ question: Q, answer: [rr('example.org', RRTYPE.A, '192.0.2.1')], authority }), 512));
    assert.equal(d.tc, true);
    assert.deepEqual([d.answer, d.authority], [[], []]);
  });

  test('additional-only overflow: no TC, the RR set is dropped whole, OPT kept', () => {
    const answer = [rr('example.org', RRTYPE.NS, 'ns.example.org')];
    const glue = Array.from({ length: 40 }, (_, i) => rr('ns.example.org', RRTYPE.AAAA, `2001:db8::${i + 1}`));
    const buf = encodeResponse(response({ question: Q, answer, additional: glue, edns: { udpSize: 1232 } }), 512);
    assert.ok(buf.length <= 512);
    const d = decoded(buf);
    assert.equal(d.tc, false);
    assert.deepEqual(d.answer, answer.map(formatRR));
    assert.deepEqual(d.additional, ['.\t0\tCLASS1232\tTYPE41\t\\# 0']);
  });

  test('additional RR sets that fit are kept whole', () => {
    const answer = [rr('example.org', RRTYPE.NS, 'ns1.example.org'), rr('example.org', RRTYPE.NS, 'ns2.example.org')];
    const a = [rr('ns1.example.org', RRTYPE.A, '192.0.2.1'), rr('ns1.example.org', RRTYPE.A, '192.0.2.2')];
    const big = Array.from({ length: 30 }, (_, i) => rr('ns2.example.org', RRTYPE.AAAA, `2001:db8::${i + 1}`));
    const d = decoded(encodeResponse(response({ question: Q, answer, additional: [...a, ...big] }), 512));
    assert.equal(d.tc, false);
    assert.deepEqual(d.additional, a.map(formatRR));
  });

  test('BADVERS: rcode 16 is 0 in the header and 1 in the OPT TTL', () => {
    const s = screen(query('example.org', 1, { additional: [optRR({ version: 1 })] }));
    assert.equal(s.kind, 'badvers');
    if (s.kind !== 'badvers') return;
    const buf = encodeResponse(response({ id: s.id, questionWire: s.questionWire, rcode: 16, aa: false, edns: { udpSize: 1232 } }), 512);
    assert.equal(buf.readUInt16BE(2) & 0xf, 0);
    const opt = buf.subarray(buf.length - 11);
    assert.deepEqual(opt, hex('00 0029 04d0 01000000 0000'));
    const d = decoded(buf);
    assert.equal(d.rcode, 16);
    assert.deepEqual(d.additional, ['.\t16777216\tCLASS1232\tTYPE41\t\\# 0']);
    assert.throws(() => encodeResponse(response({ rcode: 16 }), 512), RangeError);
  });

  test('DO bit is echoed in the OPT (RFC 3225 §3)', () => {
    const buf = encodeResponse(response({ question: Q, edns: { udpSize: 1232, do: true } }), 512);
    assert.equal(buf.readUInt32BE(buf.length - 6), 0x8000);
    const co = encodeResponse(response({ question: Q, edns: { udpSize: 1232, do: true, co: true } }), 512);
    assert.equal(co.readUInt32BE(co.length - 6), 0xc000); // RFC 9824 §4: CO, the bit after DO
  });

  test('canonical RDATA and names (RFC 4034 §6.2): uncompressed, lower case', () => {
    assert.deepEqual(canonicalName('WWW.Example.org'), wname('www.example.org'));
    assert.deepEqual(canonicalName(''), hex('00'));
    assert.deepEqual(canonicalRData(parseRData(RRTYPE.MX, '10 MX.Example.ORG.'), 'example.org'), Buffer.concat([u16(10), wname('mx.example.org')]));
    const soa = canonicalRData(parseRData(RRTYPE.SOA, 'ns1.example.org. hostmaster.example.org. 7 3600 900 604800 60'), 'example.org');
    assert.deepEqual(soa, Buffer.concat([wname('ns1.example.org'), wname('hostmaster.example.org'), u32(7), u32(3600), u32(900), u32(604800), u32(60)]));
    assert.deepEqual(canonicalName('\\000.X.org'), hex('0100 0178 036f7267 00')); // RFC 9824's next name: a label of one zero octet
  });

  test('question case preserved from questionWire; answers point at it', () => {
    const q = mustQuery(screen(query('WwW.ExAmPlE.oRg', 1, { id: 99, cd: true })));
    const buf = encodeResponse(response({ id: q.id, rd: q.rd, cd: q.cd, question: q.question, questionWire: q.questionWire, answer: [rr('www.example.org', RRTYPE.A, '192.0.2.1')] }), 512);
    assert.deepEqual(buf.subarray(12, 12 + q.questionWire.length), q.questionWire);
    assert.deepEqual(buf.subarray(12 + q.questionWire.length, 14 + q.questionWire.length), hex('c00c'));
    const d = decoded(buf);
    assert.equal(d.id, 99);
    assert.equal(d.flags & 0x0110, 0x0110); // RD and CD echoed
    assert.equal(d.question?.name, 'WwW.ExAmPlE.oRg');
    assert.deepEqual(d.answer, ['WwW.ExAmPlE.oRg.\t300\tIN\tA\t192.0.2.1']);
  });

  test('RDATA names keep their stored case; owners echo the query', () => {
    const q = mustQuery(screen(query('WwW.ExAmPlE.oRg', 1)));
    const answer = [rr('www.example.org', RRTYPE.CNAME, 'mx.example.org'), rr('mx.example.org', RRTYPE.A, '192.0.2.25')];
    const authority = [rr('example.org', RRTYPE.NS, 'ns.example.org')];
    const d = decoded(encodeResponse(response({ questionWire: q.questionWire, answer, authority }), 512));
    assert.deepEqual(d.answer, ['WwW.ExAmPlE.oRg.\t300\tIN\tCNAME\tmx.example.org.', 'mx.example.org.\t300\tIN\tA\t192.0.2.25']);
    assert.deepEqual(d.authority, ['ExAmPlE.oRg.\t300\tIN\tNS\tns.example.org.']);
  });

  test('the bytes after the question depend on its case only case-insensitively (answer caches)', () => {
    const answer = [rr('www.example.org', RRTYPE.CNAME, 'mx.example.org'), rr('mx.example.org', RRTYPE.MX, '10 www.example.org')];
    const additional = [rr('www.example.org', RRTYPE.A, '192.0.2.1')];
    const enc = (name: string): Buffer => encodeResponse(response({ questionWire: mustQuery(screen(query(name, 15))).questionWire, answer, additional }), 512);
    const lower = enc('www.example.org');
    const mixed = enc('WWW.Example.ORG');
    const qlen = question('www.example.org', 15).length;
    assert.deepEqual(lower.subarray(12 + qlen), mixed.subarray(12 + qlen));
    assert.deepEqual(lower.subarray(0, 12), mixed.subarray(0, 12));
  });

  test('escaped question names round-trip through a Question', () => {
    const name = 'a\\.b\\\\c.\\032\\000.Example';
    const d = decoded(encodeResponse(response({ question: { name, type: 16, class: 1 }, answer: [rr('example', RRTYPE.A, '192.0.2.1')] }), 512));
    assert.equal(d.question?.name, name);
    assert.deepEqual(d.answer, ['Example.\t300\tIN\tA\t192.0.2.1']);
  });

  test('root owner and root targets', () => {
    const answer = [rr('', RRTYPE.NS, 'a.root-servers.net'), rr('example.org', RRTYPE.MX, '0 .')];
    assert.deepEqual(decoded(encodeResponse(response({ question: { name: '', type: 2, class: 1 }, answer }), 512)).answer, answer.map(formatRR));
  });

  test('programming errors throw', () => {
    assert.throws(() => encodeResponse(response({}), 100), RangeError);
    assert.throws(() => encodeResponse(response({ answer: [{ name: 'a..b', ttl: 1, rdata: { type: 1, address: '192.0.2.1' } }] }), 512), TypeError);
    assert.throws(() => encodeResponse(response({ answer: [{ name: 'a', ttl: 1, rdata: { type: 1, address: '300.0.0.1' } }] }), 512), TypeError);
    assert.throws(() => encodeResponse(response({ answer: [{ name: 'x'.repeat(64), ttl: 1, rdata: { type: 1, address: '192.0.2.1' } }] }), 512), TypeError);
    assert.throws(() => encodeResponse(response({ answer: [{ name: 'a', ttl: -1, rdata: { type: 1, address: '192.0.2.1' } }] }), 512), TypeError);
    assert.throws(() => encodeResponse(response({ questionWire: hex('c00c00010001') }), 512), TypeError);
    // An HINFO string longer than a <character-string> can hold is refused when parsed, and by the encoder if built by hand.
    assert.throws(() => rr('a', RRTYPE.HINFO, `"${'c'.repeat(300)}" "os"`), /at most 255 bytes/);
    const long = { name: 'a', ttl: 1, rdata: { type: 13 as const, cpu: Buffer.alloc(300, 0x63), os: Buffer.from('os') } };
    assert.throws(() => encodeResponse(response({ answer: [long] }), 512), RangeError);
  });
});

// ---------------------------------------------------------------------------

describe('encodeTransfer', () => {
  const zone = 'example.org';
  const soa = rr(zone, RRTYPE.SOA, 'ns1.example.org hostmaster.example.org 2024010101 3600 600 1209600 300');
  const rrs: RR[] = [soa];
  for (let i = 0; rrs.length < 4999; i++) {
    const owner = `host${i}.${zone}`;
    rrs.push(rr(owner, RRTYPE.A, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`));
    if (i % 3 === 0) rrs.push(rr(owner, RRTYPE.MX, `10 mx${i % 7}.${zone}`));
    if (i % 5 === 0) rrs.push(rr(owner, RRTYPE.TXT, `"v=spf1 ip4:10.0.0.${i % 256} -all"`));
  }
  rrs.length = 4999;
  rrs.push(soa);

  test('5,000 RRs split into messages of at most 65535 octets, all RRs in order', () => {
    const axfr = { name: zone, type: RRTYPE.AXFR, class: 1 };
    const msgs = encodeTransfer(0x4242, axfr, undefined, rrs);
    assert.ok(msgs.length > 1, `${msgs.length} messages`);
    const all: string[] = [];
    msgs.forEach((m, i) => {
      assert.ok(m.length <= 16384, `message ${i} is ${m.length} octets`);
      const d = decoded(m);
      assert.equal(d.id, 0x4242);
      assert.equal(d.qr, true);
      assert.equal(d.aa, true);
      assert.equal(d.rcode, 0);
      if (i === 0) assert.deepEqual(d.question, axfr);
      else assert.equal(d.question, undefined);
      all.push(...d.answer);
    });
    assert.deepEqual(all, rrs.map(formatRR));
  });

  test('a larger target gives fewer, bigger messages (compression past 0x3FFF)', () => {
    const qw = mustQuery(screen(query(zone, RRTYPE.AXFR))).questionWire;
    const msgs = encodeTransfer(1, undefined, qw, rrs, 65535);
    const small = encodeTransfer(1, undefined, qw, rrs);
    assert.ok(msgs.length < small.length);
    const all: string[] = [];
    for (const m of msgs) {
      assert.ok(m.length <= 65535);
      all.push(...decoded(m).answer);
    }
    assert.deepEqual(all, rrs.map(formatRR));
    assert.deepEqual(msgs[0].subarray(12, 12 + qw.length), qw);
  });

  test('no RRs: one message with the question', () => {
    const msgs = encodeTransfer(3, { name: zone, type: 252, class: 1 }, undefined, []);
    assert.equal(msgs.length, 1);
    assert.deepEqual(decoded(msgs[0]).answer, []);
  });
});

describe('NOTIFY', () => {
  const soa = rr('example.org', RRTYPE.SOA, 'ns1.example.org hostmaster.example.org 7 3600 600 1209600 300');

  test('encodeNotify builds an RFC 1996 request the secondary screens as a NOTIFY query', () => {
    const buf = encodeNotify(0x5151, 'example.org', soa);
    const d = decoded(buf);
    assert.equal(d.qr, false);
    assert.equal(d.aa, true);
    assert.equal((d.flags >>> 11) & 0xf, 4);
    assert.deepEqual(d.question, { name: 'example.org', type: 6, class: 1 });
    assert.deepEqual(d.answer, [formatRR(soa)]);
    const q = mustQuery(screen(buf));
    assert.equal(q.opcode, 4);
    assert.equal(q.id, 0x5151);
    assert.equal(decoded(encodeNotify(1, 'example.org')).answer.length, 0);
  });

  test('parseNotifyReply round trip', () => {
    const req = encodeNotify(0x5151, 'example.org', soa);
    const reply = Buffer.from(req);
    reply[2] |= 0x80; // QR
    reply[3] = (reply[3] & 0xf0) | 0; // NOERROR
    assert.deepEqual(parseNotifyReply(reply), { id: 0x5151, rcode: 0 });
    reply[3] = (reply[3] & 0xf0) | 5;
    assert.deepEqual(parseNotifyReply(reply), { id: 0x5151, rcode: 5 });
    assert.equal(parseNotifyReply(req), undefined); // not a reply
    assert.equal(parseNotifyReply(reply.subarray(0, 11)), undefined);
    const wrongOpcode = Buffer.from(reply);
    wrongOpcode[2] = 0x80;
    assert.equal(parseNotifyReply(wrongOpcode), undefined);
  });
});

describe('decodeMessage', () => {
  test('unknown types and classes in RFC 3597 form', () => {
    const pkt = Buffer.concat([
      header({ qr: true, an: 2 }),
      question('example.org', 99),
      rrWire(hex('c00c'), 65280, 1, 60, hex('0102ff')),
      rrWire(hex('c00c'), 16, 3, 0, hex('0568656c6c6f')),
    ]);
    const d = decoded(pkt);
    assert.deepEqual(d.answer, ['example.org.\t60\tIN\tTYPE65280\t\\# 3 0102ff', 'example.org.\t0\tCLASS3\tTYPE16\t\\# 6 0568656c6c6f']);
  });

  test('malformed RDATA of a known type falls back to RFC 3597 form', () => {
    const pkt = Buffer.concat([header({ qr: true, an: 1 }), question('example.org'), rrWire(hex('c00c'), 1, 1, 0, hex('0102030405'))]);
    assert.deepEqual(decoded(pkt).answer, ['example.org.\t0\tIN\tTYPE1\t\\# 5 0102030405']);
  });

  test('the guard applies: loops and short packets give undefined', () => {
    assert.equal(decodeMessage(hex('0000 8100 0001 0000 0000 0000 c00c 0001 0001')), undefined);
    assert.equal(decodeMessage(Buffer.alloc(5)), undefined);
  });

  test('RDATA names with loops are not followed', () => {
    const pkt = Buffer.concat([header({ qr: true, an: 1 }), question('example.org'), rrWire(hex('c00c'), 2, 1, 0, hex('c029'))]);
    // The RDATA starts at 41 (12 + 17 question + 2 owner + 10) and points at itself.
    assert.deepEqual(decoded(pkt).answer, ['example.org.\t0\tIN\tTYPE2\t\\# 2 c029']);
    // Pointing at the owner (29), which points at the question, is fine.
    const ok = Buffer.concat([header({ qr: true, an: 1 }), question('example.org'), rrWire(hex('c00c'), 2, 1, 0, hex('c01d'))]);
    assert.deepEqual(decoded(ok).answer, ['example.org.\t0\tIN\tNS\texample.org.']);
  });
});

// ---------------------------------------------------------------------------
// Why wire.ts does not encode with native-dns-packet's Packet.write: each of
// these would turn a valid answer into an exception or a corrupt message.

describe('native-dns-packet writer defects that wire.ts avoids', () => {
  const hdr = { id: 1, qr: 1, opcode: 0, aa: 1, tc: 0, rd: 0, ra: 0, res1: 0, res2: 0, res3: 0, rcode: 0 };
  const write = (answer: Record<string, unknown>[], qname = 'example.org', size = 70000): Buffer => {
    const b = Buffer.alloc(size);
    const n = Packet.write(b, { header: hdr, question: [{ name: qname, type: 1, class: 1 }], answer: answer as never, authority: [], additional: [] });
    return b.subarray(0, n);
  };

  test('SOA serial >= 2^31 throws RangeError', () => {
    const soa = { name: 'example.org', type: 6, class: 1, ttl: 1, primary: 'a.org', admin: 'b.org', serial: 3000000000, refresh: 1, retry: 1, expiration: 1, minimum: 1 };
    assert.throws(() => write([soa]), RangeError);
    const ours = encodeResponse(response({ answer: [rr('example.org', RRTYPE.SOA, 'a.org b.org 3000000000 1 1 1 1')] }), 512);
    assert.match(decoded(ours).answer[0], /3000000000/);
  });

  test('a compression pointer past 0x3FFF throws RangeError', () => {
    const answer: Record<string, unknown>[] = [];
    for (let i = 0; i < 200; i++) answer.push({ name: 'example.org', type: 16, class: 1, ttl: 1, data: ['x'.repeat(100)] });
    answer.push({ name: 'late.example.net', type: 1, class: 1, ttl: 1, address: '1.2.3.4' }, { name: 'late.example.net', type: 1, class: 1, ttl: 1, address: '1.2.3.4' });
    assert.throws(() => write(answer), RangeError);
  });

  test('a name ending in the label "constructor" is corrupted', () => {
    const buf = write([], 'www.constructor');
    assert.equal(decodeMessage(buf)?.question?.name === 'www.constructor', false);
  });

  test('truncation throws ReferenceError', () => {
    const a = { name: 'example.org', type: 1, class: 1, ttl: 1, address: '1.2.3.4' };
    assert.throws(() => write([a, a], 'example.org', 40), ReferenceError);
  });

  test('TXT strings as Buffers throw TypeError', () => {
    assert.throws(() => write([{ name: 'example.org', type: 16, class: 1, ttl: 1, data: [Buffer.from([0xff])] }]), TypeError);
  });
});
