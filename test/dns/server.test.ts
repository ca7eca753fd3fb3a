/**
 * The DNS endpoint end to end with dig and kdig: data written over LDAP,
 * answered over UDP and TCP, every behaviour of the issue.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { adminArgs, run, runDcmx, startTestAppliance, testEnv, type TestAppliance } from '../helpers';
import { CAA_ENTRY, digRunner, exampleOrgZone, flags, kdigRunner, section, soaSerial, status, udpQuery, queryPacket, tcpMessages } from './fixture';

let t: TestAppliance;
let port = 0;

const BIG = `dn: dc=big,dc=example,dc=org,o=internet
objectClass: dNSDomain2
dc: big
${Array.from({ length: 30 }, (_, i) => `tXTRecord: "${String(i).padStart(2, '0')}${'x'.repeat(90)}"`).join('\n')}
`;

const ZONE = exampleOrgZone({ extra: [BIG, CAA_ENTRY] });

before(async () => {
  t = await startTestAppliance({ DCMX_AXFR_ALLOW: '127.0.0.1/32' });
  port = t.app.ports.dns;
  const r = await run('ldapadd', adminArgs(t), ZONE);
  assert.equal(r.code, 0, r.stderr);
});
after(async () => {
  await t.close();
});

const dig = digRunner(() => port);
const kdig = kdigRunner(() => port);

describe('dig against the DNS port', () => {
  test('A, MX with additional, TXT, CAA, SRV, AAAA; AA set, RA clear, RD copied', async () => {
    let r = await dig('example.org', 'A');
    assert.equal(status(r.stdout), 'NOERROR');
    assert.ok(flags(r.stdout).includes('aa'));
    assert.ok(!flags(r.stdout).includes('ra'));
    assert.ok(!flags(r.stdout).includes('rd'), 'RD not set because +norec');
    assert.deepEqual(section(r.stdout, 'ANSWER'), ['example.org. 300 IN A 192.0.2.1']);
    r = await run('dig', ['@127.0.0.1', '-p', String(port), '+rec', 'example.org', 'A']);
    assert.ok(flags(r.stdout).includes('rd'), 'RD copied');
    r = await dig('example.org', 'MX');
    assert.deepEqual(section(r.stdout, 'ANSWER'), ['example.org. 300 IN MX 10 mx.example.org.']);
    assert.ok(section(r.stdout, 'ADDITIONAL').includes('mx.example.org. 300 IN A 192.0.2.25'));
    r = await dig('example.org', 'TXT');
    assert.deepEqual(section(r.stdout, 'ANSWER'), ['example.org. 300 IN TXT "v=spf1 mx -all"']);
    r = await dig('caa.example.org', 'CAA');
    assert.deepEqual(section(r.stdout, 'ANSWER'), ['caa.example.org. 300 IN CAA 0 issue "letsencrypt.org"']);
    r = await dig('caa.example.org', 'SRV');
    assert.deepEqual(section(r.stdout, 'ANSWER'), ['caa.example.org. 300 IN SRV 10 5 5060 mx.example.org.']);
    r = await dig('caa.example.org', 'AAAA');
    assert.deepEqual(section(r.stdout, 'ANSWER'), ['caa.example.org. 300 IN AAAA 2001:db8::1']);
  });

  test('question case is preserved; CNAME followed', async () => {
    const r = await dig('WwW.ExAmPlE.oRg', 'A');
    assert.match(r.stdout, /;WwW\.ExAmPlE\.oRg\.\s+IN\s+A/);
    assert.deepEqual(section(r.stdout, 'ANSWER'), ['WwW.ExAmPlE.oRg. 300 IN CNAME mx.example.org.', 'mx.example.org. 300 IN A 192.0.2.25']);
  });

  test('NXDOMAIN and NODATA carry the SOA with the negative TTL (RFC 2308)', async () => {
    let r = await dig('nothere.example.org', 'A');
    assert.equal(status(r.stdout), 'NXDOMAIN');
    assert.ok(flags(r.stdout).includes('aa'));
    assert.match(section(r.stdout, 'AUTHORITY')[0], /^example\.org\. 60 IN SOA ns1\.example\.org\. hostmaster\.example\.org\. \d+ 3600 900 604800 60$/);
    r = await dig('mx.example.org', 'MX');
    assert.equal(status(r.stdout), 'NOERROR');
    assert.deepEqual(section(r.stdout, 'ANSWER'), []);
    assert.match(section(r.stdout, 'AUTHORITY')[0], /IN SOA/);
  });

  test('REFUSED outside our zones and for class CH; minimal ANY', async () => {
    assert.equal(status((await dig('example.net', 'A')).stdout), 'REFUSED');
    assert.equal(status((await dig('-c', 'CH', 'example.org', 'TXT')).stdout), 'REFUSED');
    const anyClass = await dig('-c', 'ANY', 'example.org', 'A');
    assert.equal(status(anyClass.stdout), 'REFUSED', 'QCLASS * (255) too');
    assert.ok(!flags(anyClass.stdout).includes('aa'));
    assert.deepEqual(section(anyClass.stdout, 'ANSWER'), []);
    const any = await dig('caa.example.org', 'ANY');
    assert.equal(status(any.stdout), 'NOERROR');
    const types = new Set(section(any.stdout, 'ANSWER').map((l) => l.split(' ')[3]));
    assert.equal(types.size, 1, 'one RRset for ANY (RFC 8482)');
  });

  test('UDP truncation without EDNS sets TC; TCP and EDNS carry the whole answer', async () => {
    let r = await dig('+noedns', '+ignore', 'big.example.org', 'TXT');
    assert.ok(flags(r.stdout).includes('tc'), 'TC set');
    r = await dig('+tcp', 'big.example.org', 'TXT');
    assert.equal(section(r.stdout, 'ANSWER').length, 30);
    r = await dig('+bufsize=4096', '+ignore', 'big.example.org', 'TXT');
    assert.ok(flags(r.stdout).includes('tc'), 'still over our 1232-byte UDP size');
    r = await dig('+bufsize=1232', 'example.org', 'TXT');
    assert.match(r.stdout, /; EDNS: version: 0, flags:; udp: 1232/);
  });

  test('the DO bit is echoed (RFC 3225 §3), cached answers included', async () => {
    // Each name asked both ways, in both orders, so a cached answer of one variant never serves the other.
    for (const [name, first] of [['mx.example.org', true], ['ns1.example.org', false]] as const) {
      for (const dnssec of [first, !first, first, !first]) {
        const r = await dig(dnssec ? '+dnssec' : '+nodnssec', name, 'A');
        assert.equal(status(r.stdout), 'NOERROR');
        assert.match(r.stdout, dnssec ? /; EDNS: version: 0, flags: do; udp: 1232/ : /; EDNS: version: 0, flags:; udp: 1232/, `${name} +${dnssec ? '' : 'no'}dnssec`);
      }
    }
    const r = await dig('+dnssec', '+edns=1', '+noednsnegotiation', 'example.org', 'A');
    assert.equal(status(r.stdout), 'BADVERS');
    assert.match(r.stdout, /; EDNS: version: 0, flags: do;/);
  });

  test('EDNS version 1 gets BADVERS with an OPT of version 0', async () => {
    const r = await dig('+edns=1', '+noednsnegotiation', 'example.org', 'A');
    assert.equal(status(r.stdout), 'BADVERS');
    assert.match(r.stdout, /EDNS: version: 0/);
  });

  test('kdig agrees, over UDP and TCP', async () => {
    let r = await kdig('example.org', 'MX');
    assert.match(r.stdout, /status: NOERROR/);
    assert.match(r.stdout, /example\.org\.\s+300\s+IN\s+MX\s+10 mx\.example\.org\./);
    r = await kdig('+tcp', 'big.example.org', 'TXT');
    assert.equal((r.stdout.match(/^big\.example\.org\.\s+300\s+IN\s+TXT/gm) ?? []).length, 30);
  });

  test('a write over LDAP is visible to the very next query, with the serial bumped', async () => {
    const before = soaSerial((await dig('example.org', 'SOA')).stdout);
    for (let i = 0; i < 5; i++) {
      const ip = `198.51.100.${i + 1}`;
      const m = await run('ldapmodify', adminArgs(t), `dn: dc=mx,dc=example,dc=org,o=internet\nchangetype: modify\nreplace: aRecord\naRecord: ${ip}\n`);
      assert.equal(m.code, 0, m.stderr);
      const r = await dig('mx.example.org', 'A');
      assert.deepEqual(section(r.stdout, 'ANSWER'), [`mx.example.org. 300 IN A ${ip}`]);
      const serial = soaSerial((await dig('example.org', 'SOA')).stdout);
      assert.equal(serial, before + i + 1, 'one bump per write');
    }
    // The bump is a change of the apex like any other: the change log's last row says so.
    const last = await run('ldapsearch', [...adminArgs(t), '-LLL', '-b', '', '-s', 'base', '(objectClass=*)', 'lastChangeNumber']);
    const n = /lastChangeNumber: (\d+)/.exec(last.stdout)?.[1];
    assert.ok(n, last.stdout);
    const row = await run('ldapsearch', [...adminArgs(t), '-LLL', '-o', 'ldif-wrap=no', '-b', `changeNumber=${n},cn=changelog`, '-s', 'base', '(objectClass=*)', 'targetDN', 'changes']);
    assert.match(row.stdout, /targetDN: dc=example,dc=org,o=internet/);
    const changes = Buffer.from(/changes:: (\S+)/.exec(row.stdout)?.[1] ?? '', 'base64').toString() || /changes: (.*)/.exec(row.stdout)?.[1] || '';
    assert.match(changes, new RegExp(`replace: sOARecord\\nsOARecord: \\S+ \\S+ ${before + 5} `));
    const add = await run('ldapadd', adminArgs(t), 'dn: dc=new,dc=example,dc=org,o=internet\nobjectClass: dNSDomain2\ndc: new\naRecord: 192.0.2.77\n');
    assert.equal(add.code, 0);
    assert.deepEqual(section((await dig('new.example.org', 'A')).stdout, 'ANSWER'), ['new.example.org. 300 IN A 192.0.2.77']);
    const del = await run('ldapdelete', [...adminArgs(t), 'dc=new,dc=example,dc=org,o=internet']);
    assert.equal(del.code, 0);
    assert.equal(status((await dig('new.example.org', 'A')).stdout), 'NXDOMAIN');
  });

  test('bad record values are refused over LDAP (21)', async () => {
    const r = await run('ldapmodify', adminArgs(t), 'dn: dc=mx,dc=example,dc=org,o=internet\nchangetype: modify\nadd: mXRecord\nmXRecord: ten mx.example.org.\n');
    assert.match(r.stderr, /\(21\)/);
  });

  test('a dc that is not a DNS label is refused over LDAP (64); _dmarc and * are fine; AXFR goes on', async () => {
    const entry = (dc: string) => `dn: dc=${dc},dc=example,dc=org,o=internet\nobjectClass: dNSDomain2\ndc: ${dc}\naRecord: 192.0.2.70\n`;
    for (const dc of ['a'.repeat(70), 'a.b', 'sp ace']) {
      const r = await run('ldapadd', adminArgs(t), entry(dc));
      assert.notEqual(r.code, 0, dc);
      assert.match(r.stderr, /\(64\)/, dc);
    }
    for (const dc of ['_dmarc', '*']) assert.equal((await run('ldapadd', adminArgs(t), entry(dc))).code, 0, dc);
    const r = await dig('example.org', 'AXFR');
    assert.ok(r.stdout.split('\n').some((l) => /^_dmarc\.example\.org\.\s+300\s+IN\s+A\s+192\.0\.2\.70$/.test(l)), r.stdout);
    assert.equal(status((await dig('example.org', 'A')).stdout), 'NOERROR', 'still serving');
    for (const dc of ['_dmarc', '\\2a']) assert.equal((await run('ldapdelete', [...adminArgs(t), `dc=${dc},dc=example,dc=org,o=internet`])).code, 0, dc);
  });

  test('AXFR from an allowed address starts and ends with the SOA; others are refused', async () => {
    const r = await dig('example.org', 'AXFR');
    const lines = r.stdout.split('\n').filter((l) => l && !l.startsWith(';')).map((l) => l.replace(/\s+/g, ' '));
    assert.match(lines[0], /^example\.org\. \d+ IN SOA /);
    assert.match(lines[lines.length - 1], /^example\.org\. \d+ IN SOA /);
    assert.ok(lines.some((l) => l === 'caa.example.org. 300 IN CAA 0 issue "letsencrypt.org"'));
    const denied = await run('dig', ['@127.0.0.1', '-b', '127.0.0.2', '-p', String(port), '+time=2', '+tries=1', 'example.org', 'AXFR']);
    assert.match(denied.stdout + denied.stderr, /Transfer failed|REFUSED/);
  });

  test('IXFR: current serial gets one SOA; an older serial of the signed zone gets the whole zone, signed (RFC 1995 §4)', async () => {
    const current = soaSerial((await dig('example.org', 'SOA')).stdout);
    let r = await dig(`example.org`, `IXFR=${current}`);
    let lines = r.stdout.split('\n').filter((l) => l && !l.startsWith(';'));
    assert.equal(lines.length, 1, r.stdout);
    const m = await run('ldapmodify', adminArgs(t), 'dn: dc=ns1,dc=example,dc=org,o=internet\nchangetype: modify\nreplace: aRecord\naRecord: 192.0.2.54\n');
    assert.equal(m.code, 0);
    r = await dig('example.org', `IXFR=${current}`);
    lines = r.stdout.split('\n').filter((l) => l && !l.startsWith(';')).map((l) => l.replace(/\s+/g, ' '));
    // The journal holds unsigned deltas (transfer.test.ts has them, for an unsigned zone): a signed zone goes out whole.
    const types = lines.map((l) => l.split(' ')[3]);
    assert.equal(types.filter((ty) => ty === 'SOA').length, 2, r.stdout);
    assert.equal(types[0], 'SOA');
    assert.equal(types[types.length - 1], 'SOA');
    assert.ok(types.includes('RRSIG') && types.includes('NSEC') && types.includes('DNSKEY'), r.stdout);
    assert.ok(lines.includes('ns1.example.org. 300 IN A 192.0.2.54') && !lines.includes('ns1.example.org. 300 IN A 192.0.2.53'), r.stdout);
    r = await dig('example.org', 'IXFR=1');
    lines = r.stdout.split('\n').filter((l) => l && !l.startsWith(';'));
    assert.ok(lines.length > 6, 'an unknown serial gets the full zone');
  });

  test('zone export is a master file named-checkzone accepts', async () => {
    const exported = await runDcmx(testEnv(t.dataDir), ['zone', 'export', 'example.org']);
    assert.equal(exported.code, 0, exported.stderr);
    const out = exported.stdout;
    const file = path.join(t.dataDir, 'example.org.zone');
    fs.writeFileSync(file, out);
    const chk = await run('named-checkzone', ['-i', 'local', 'example.org', file]);
    assert.equal(chk.code, 0, chk.stdout + chk.stderr);
    assert.match(chk.stdout, /loaded serial \d+/);
  });
});

describe('raw packets', () => {
  const query = queryPacket;
  const OPT = Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);

  test('QR=1 gets no reply; QDCOUNT 2 and two OPTs get FORMERR; opcode STATUS gets NOTIMP', async () => {
    assert.equal(await udpQuery(port, query('example.org', 1, { flags: 0x8000 }), 500), undefined);
    let r = await udpQuery(port, query('example.org', 1, { qdcount: 2 }));
    assert.equal(r![3] & 0x0f, 1);
    r = await udpQuery(port, query('example.org', 1, { arcount: 2, extra: Buffer.concat([OPT, OPT]) }));
    assert.equal(r![3] & 0x0f, 1);
    r = await udpQuery(port, query('example.org', 1, { flags: 2 << 11 }));
    assert.equal(r![3] & 0x0f, 4);
    r = await udpQuery(port, query('example.org', 1, { arcount: 1, extra: Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 8, 0xfe, 0xed, 0, 4, 1, 2, 3, 4]) }));
    assert.equal(r![3] & 0x0f, 0, 'unknown EDNS option ignored');
    r = await udpQuery(port, query('example.org', 252));
    assert.equal(r![3] & 0x0f, 5, 'AXFR over UDP is refused (RFC 5936 §4.2)');
  });

  test('TCP: pipelined queries on one connection, a query one byte at a time, a length prefix with no body', async () => {
    const framed = (b: Buffer) => Buffer.concat([Buffer.from([b.length >> 8, b.length & 255]), b]);
    const replies = await new Promise<Buffer[]>((resolve) => {
      const sock = net.connect(port, '127.0.0.1');
      const got: Buffer[] = [];
      sock.on('data', tcpMessages((m) => {
        got.push(m);
        if (got.length === 4) {
          sock.destroy();
          resolve(got);
        }
      }));
      sock.setNoDelay(true);
      sock.on('connect', async () => {
        sock.write(Buffer.concat([framed(query('example.org', 1, { id: 1 })), framed(query('example.org', 15, { id: 2 })), framed(query('example.org', 16, { id: 3 }))]));
        // One byte a write, each handed to the kernel, and the (in-process) server given a turn of the loop before the next.
        const slow = framed(query('mx.example.org', 1, { id: 4 }));
        for (const b of slow) {
          await new Promise<void>((r) => sock.write(Buffer.from([b]), () => r()));
          await new Promise((r) => setImmediate(r));
        }
      });
    });
    assert.deepEqual(replies.map((r) => r.readUInt16BE(0)), [1, 2, 3, 4]);
    // A length prefix with no body: the connection is closed after the message timeout, and others are served meanwhile.
    const lone = net.connect(port, '127.0.0.1');
    await new Promise((r) => lone.on('connect', r));
    lone.write(Buffer.from([0x00, 0x40]));
    const r = await dig('example.org', 'A');
    assert.equal(status(r.stdout), 'NOERROR');
    lone.destroy();
  });
});
