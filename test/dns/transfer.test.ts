/**
 * Zone transfers against a DNS server over an in-memory directory: names the
 * DNS cannot carry never reach the wire nor crash the process, glue below a
 * delegation is transferred, IXFR edge cases of RFC 1995. Entries written
 * "before the write path checked names" go through a second Directory over
 * the same store without the zone hooks.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { attrs, memoryDirectory, ADMIN, SUFFIX } from '../directory/fixture';
import { run, tempDir } from '../helpers';
import { escapeDnValue } from '../../schema/dn';
import { Directory } from '../../server/directory/directory';
import { loadSchema } from '../../server/directory/open';
import type { Zones } from '../../server/directory/zones';
import type { Identity } from '../../server/directory/access';
import { startDnsServer, type DnsEndpoint } from '../../server/dns/server';
import { zoneMasterFile } from '../../server/admin/zone-file';
import { silentLogger } from '../../server/log';
import { digRunner, flags, section, soaSerial, status, udpQuery, queryPacket, tcpFrame, tcpMessages } from './fixture';

let zones: Zones;
let dir: Directory;
let admin: Identity;
let dns: DnsEndpoint;
const tmp = tempDir('dcmx-transfer-');
const dig = digRunner(() => dns.port);

const LONG = 'a'.repeat(70);

before(async () => {
  const m = await memoryDirectory();
  ({ zones, dir, admin } = m);
  const add = (dn: string, a: Record<string, string | string[]>) => dir.addSync(admin, `${dn},${SUFFIX}`, attrs(a));
  add('dc=com', { objectClass: 'domain', dc: 'com' });
  add('dc=example,dc=com', {
    objectClass: ['dNSDomain2', 'domain'], dc: 'example', dNSTTL: '300',
    sOARecord: 'ns1.example.com. hostmaster.example.com. 100 3600 900 604800 60', nSRecord: 'ns1.example.com.', aRecord: '192.0.2.1',
  });
  add('dc=ns1,dc=example,dc=com', { objectClass: ['dNSDomain2', 'domain'], dc: 'ns1', aRecord: '192.0.2.53' });
  add('dc=www,dc=example,dc=com', { objectClass: ['dNSDomain2', 'domain'], dc: 'www', aRecord: '192.0.2.80' });
  dns = await startDnsServer(zones, { host: '127.0.0.1', port: 0, axfrAllow: ['127.0.0.1/32'] }, silentLogger());
});
after(async () => {
  await dns.close();
  dir.store.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** The records of a dig AXFR/IXFR, white space folded. */
const records = (out: string) => out.split('\n').filter((l) => l && !l.startsWith(';')).map((l) => l.replace(/\s+/g, ' '));

/** A query in wire form: header, one question, `extra` after it. */
function query(id: number, name: string, type: number, extra = Buffer.alloc(0), nscount = 0): Buffer {
  return queryPacket(name, type, { id, extra, nscount });
}

/** Sends framed messages on one TCP connection and collects `n` replies. */
function tcpExchange(messages: Buffer[], n: number): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(dns.port, '127.0.0.1');
    const got: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`only ${got.length} of ${n} replies`));
    }, 15_000);
    sock.on('data', tcpMessages((m) => {
      got.push(m);
      if (got.length === n) {
        clearTimeout(timer);
        sock.destroy();
        resolve(got);
      }
    }));
    sock.on('error', reject);
    sock.on('connect', () => {
      for (const m of messages) sock.write(tcpFrame(m));
    });
  });
}

describe('names the DNS cannot carry', () => {
  test('a transfer that cannot be encoded is SERVFAIL for that query; the connection and the server go on', async () => {
    const real = zones.zoneContents.bind(zones);
    // An RR the encoder refuses (a 70-octet label), as if the store held one.
    zones.zoneContents = (z) => {
      const c = real(z);
      return c && { ...c, rrs: [...c.rrs, { name: `${LONG}.example.com`, ttl: 300, rdata: { type: 1, address: '192.0.2.9' } }] };
    };
    try {
      const [axfr, a] = await tcpExchange([query(1, 'example.com', 252), query(2, 'www.example.com', 1)], 2);
      assert.equal(axfr.readUInt16BE(0), 1);
      assert.equal(axfr[3] & 0x0f, 2, 'SERVFAIL for the transfer');
      assert.equal(a.readUInt16BE(0), 2);
      assert.equal(a[3] & 0x0f, 0, 'the next query on the same connection is answered');
      const r = await dig('www.example.com', 'A');
      assert.deepEqual(section(r.stdout, 'ANSWER'), ['www.example.com. 300 IN A 192.0.2.80']);
    } finally {
      zones.zoneContents = real;
    }
  });

  test('old entries whose dc is not a DNS label are left out of AXFR, IXFR and the master file', async () => {
    // A directory without the zone hooks over the same store: data from before names were checked.
    const legacy = new Directory(dir.store, loadSchema(), { suffix: SUFFIX, adminDN: ADMIN });
    const put = (dc: string, parent = 'dc=example,dc=com') =>
      legacy.addSync(admin, `dc=${escapeDnValue(dc)},${parent},${SUFFIX}`,
        attrs({ objectClass: ['dNSDomain2', 'domain'], dc, aRecord: '192.0.2.66' }));
    put(LONG);
    put('a.b');
    put('sp ace');
    put('x', 'dc=sp ace,dc=example,dc=com');
    const before = soaSerial((await dig('example.com', 'SOA')).stdout);

    const axfr = await dig('example.com', 'AXFR');
    const rrs = records(axfr.stdout);
    assert.match(rrs[0], /^example\.com\. 300 IN SOA /, axfr.stdout + axfr.stderr);
    assert.match(rrs[rrs.length - 1], /^example\.com\. 300 IN SOA /);
    assert.ok(rrs.includes('www.example.com. 300 IN A 192.0.2.80'));
    assert.ok(!rrs.some((l) => l.includes('192.0.2.66')), 'no record of a bad name');

    // A write next to the old data: the journal holds only names it can read back.
    dir.modifySync(admin, `dc=www,dc=example,dc=com,${SUFFIX}`, [{ op: 'replace', type: 'aRecord', values: ['192.0.2.81'] }]);
    dir.modifySync(admin, `dc=a.b,dc=example,dc=com,${SUFFIX}`, [{ op: 'replace', type: 'aRecord', values: ['192.0.2.67'] }]);
    const ixfr = records((await dig('example.com', `IXFR=${before}`)).stdout);
    assert.deepEqual(ixfr.map((l) => l.split(' ')[3]), ['SOA', 'SOA', 'A', 'SOA', 'A', 'SOA', 'SOA', 'SOA'], ixfr.join('\n'));

    const skipped: string[] = [];
    const text = zoneMasterFile(zones, 'example.com', skipped)!;
    assert.equal(skipped.length, 4, skipped.join('\n'));
    assert.equal(text.split('\n').filter((l) => l.startsWith('; skipped ')).length, 4);
    const file = path.join(tmp, 'example.com.zone');
    fs.writeFileSync(file, text);
    const chk = await run('named-checkzone', ['-i', 'local', 'example.com', file]);
    assert.equal(chk.code, 0, chk.stdout + chk.stderr + text);
    assert.doesNotMatch(text, /192\.0\.2\.6[67]/);
  });
});

describe('delegations', () => {
  test('AXFR and the master file carry the glue below a cut (RFC 5936 §3.1); named-checkzone finds it', async () => {
    const add = (dn: string, a: Record<string, string | string[]>) => dir.addSync(admin, `${dn},dc=example,dc=com,${SUFFIX}`, attrs(a));
    add('dc=sub2', { objectClass: ['dNSDomain2', 'domain'], dc: 'sub2', nSRecord: ['ns.sub2.example.com.', 'ns1.example.com.'] });
    add('dc=ns,dc=sub2', { objectClass: ['dNSDomain2', 'domain'], dc: 'ns', aRecord: '192.0.2.201', aAAARecord: '2001:db8::201' });
    add('dc=www,dc=sub2', { objectClass: ['dNSDomain2', 'domain'], dc: 'www', aRecord: '192.0.2.202', tXTRecord: '"occluded"' });
    const r = await dig('sub2.example.com', 'NS');
    assert.ok(section(r.stdout, 'ADDITIONAL').includes('ns.sub2.example.com. 300 IN A 192.0.2.201'), r.stdout);

    const rrs = records((await dig('example.com', 'AXFR')).stdout);
    for (const rr of ['sub2.example.com. 300 IN NS ns.sub2.example.com.', 'ns.sub2.example.com. 300 IN A 192.0.2.201', 'ns.sub2.example.com. 300 IN AAAA 2001:db8::201']) {
      assert.ok(rrs.includes(rr), `${rr} in\n${rrs.join('\n')}`);
    }
    assert.ok(!rrs.some((l) => l.includes('occluded')), 'only addresses below the cut');

    const text = zoneMasterFile(zones, 'example.com')!;
    assert.match(text, /^ns\.sub2\.example\.com\.\t300\tIN\tA\t192\.0\.2\.201$/m);
    const file = path.join(tmp, 'glue.zone');
    fs.writeFileSync(file, text);
    const chk = await run('named-checkzone', ['-i', 'local', 'example.com', file]);
    assert.equal(chk.code, 0, chk.stdout + chk.stderr);
    assert.doesNotMatch(chk.stdout + chk.stderr, /GLUE/i);
    assert.equal(status((await dig('www.sub2.example.com', 'A')).stdout), 'NOERROR', 'a referral, as before');
  });

  test('a CNAME into the delegation continues into the referral, with AA (RFC 1034 §4.3.2 step 3b)', async () => {
    dir.addSync(admin, `dc=alias,dc=example,dc=com,${SUFFIX}`, attrs({ objectClass: ['dNSDomain2', 'domain'], dc: 'alias', cNAMERecord: 'www.sub2.example.com.' }));
    const r = await dig('alias.example.com', 'A');
    assert.equal(status(r.stdout), 'NOERROR');
    assert.ok(flags(r.stdout).includes('aa'), r.stdout);
    assert.deepEqual(section(r.stdout, 'ANSWER'), ['alias.example.com. 300 IN CNAME www.sub2.example.com.']);
    assert.deepEqual(section(r.stdout, 'AUTHORITY').sort(), ['sub2.example.com. 300 IN NS ns.sub2.example.com.', 'sub2.example.com. 300 IN NS ns1.example.com.']);
    assert.deepEqual(section(r.stdout, 'ADDITIONAL').sort(), [
      'ns.sub2.example.com. 300 IN A 192.0.2.201', 'ns.sub2.example.com. 300 IN AAAA 2001:db8::201', 'ns1.example.com. 300 IN A 192.0.2.53',
    ]);
  });
});

describe('IXFR edge cases (RFC 1995)', () => {

  test('IXFR without the client SOA in authority is FORMERR, over UDP and TCP (§3)', async () => {
    const udp = await udpQuery(dns.port, query(7, 'example.com', 251));
    assert.ok(udp, 'a reply');
    assert.equal(udp.readUInt16BE(0), 7);
    assert.equal(udp[3] & 0x0f, 1, 'FORMERR over UDP');
    const [tcp] = await tcpExchange([query(8, 'example.com', 251)], 1);
    assert.equal(tcp.readUInt16BE(0), 8);
    assert.equal(tcp[3] & 0x0f, 1, 'FORMERR over TCP');
  });

  test('a client newer than us (RFC 1982 order) gets the single current SOA (§2); an older unknown serial the whole zone', async () => {
    const current = soaSerial((await dig('example.com', 'SOA')).stdout);
    for (const ahead of [1, 5, 0x7fffffff]) {
      const r = records((await dig('example.com', `IXFR=${(current + ahead) % 0x100000000}`)).stdout);
      assert.equal(r.length, 1, `${ahead} ahead: ${r.join('\n')}`);
      assert.equal(soaSerial(r[0]), current);
    }
    // 2^31 + 1 ahead is behind in RFC 1982 arithmetic: the journal does not have it, so the whole zone.
    const behind = records((await dig('example.com', `IXFR=${(current + 0x80000001) % 0x100000000}`)).stdout);
    assert.ok(behind.length > 3 && behind.includes('ns1.example.com. 300 IN A 192.0.2.53'), behind.join('\n'));
  });
});

describe('the AXFR-form cache', () => {
  test('pipelined and parallel AXFRs of one version walk the zone once; a write to the zone starts a new version', async () => {
    const real = zones.zoneContents.bind(zones);
    let walks = 0;
    zones.zoneContents = (z) => {
      walks++;
      return real(z);
    };
    try {
      const wire = (ms: Buffer[]) => Buffer.concat(ms.map((m) => m.subarray(2))); // the bytes after the ID
      dir.modifySync(admin, `dc=www,dc=example,dc=com,${SUFFIX}`, [{ op: 'replace', type: 'aRecord', values: ['192.0.2.98'] }]);
      const one = await tcpExchange([query(1, 'example.com', 252)], 1);
      assert.equal(walks, 1);
      const ids = Array.from({ length: 20 }, (_, i) => 100 + i);
      const [piped, other] = await Promise.all([
        tcpExchange(ids.map((id) => query(id, 'example.com', 252)), 20 * one.length),
        tcpExchange([query(7, 'EXAMPLE.com', 252)], one.length),
      ]);
      assert.equal(walks, 1, 'every AXFR of this version shares the first one\'s encoding');
      assert.deepEqual(piped.map((m) => m.readUInt16BE(0)), ids.flatMap((id) => Array(one.length).fill(id)), 'each message has its request\'s ID, in order');
      for (let i = 0; i < 20; i++) assert.ok(wire(piped.slice(i * one.length, (i + 1) * one.length)).equals(wire(one)));
      assert.equal(other[0].subarray(12, 12 + 13).toString('latin1'), '\u0007EXAMPLE\u0003com\u0000', 'the client\'s question, its case kept');

      // An unknown older serial gets the whole zone over IXFR: the shared messages, with the IXFR question.
      const soa = (await dig('example.com', 'SOA')).stdout;
      const [ixfr] = await tcpExchange([query(9, 'example.com', 251, soaRR('example.com', (soaSerial(soa) + 0x80000001) % 0x100000000), 1)], 1);
      assert.equal(ixfr.readUInt16BE(12 + 13), 251, 'question type IXFR');
      assert.equal(walks, 1);

      // A write to no DNS data (an entry whose DN spells no name) is not a new version of the zone.
      dir.addSync(admin, `cn=elsewhere,${SUFFIX}`, attrs({ objectClass: 'organizationalRole', cn: 'elsewhere' }));
      await tcpExchange([query(10, 'example.com', 252)], one.length);
      assert.equal(walks, 1, 'a write elsewhere does not walk the zone again');

      dir.modifySync(admin, `dc=www,dc=example,dc=com,${SUFFIX}`, [{ op: 'replace', type: 'aRecord', values: ['192.0.2.99'] }]);
      const rrs = records((await dig('example.com', 'AXFR')).stdout);
      assert.equal(walks, 2, 'a new version is walked again');
      assert.ok(rrs.includes('www.example.com. 300 IN A 192.0.2.99'), rrs.join('\n'));
      assert.equal(soaSerial(rrs[0]), soaSerial(soa) + 1);
    } finally {
      zones.zoneContents = real;
    }
  });

  test('a write to one zone leaves the encodings of the others; a child apex added below a zone is a new version of it', async () => {
    const real = zones.zoneContents.bind(zones);
    const walked: string[] = [];
    zones.zoneContents = (z) => {
      walked.push(z);
      return real(z);
    };
    const add = (dn: string, a: Record<string, string | string[]>) => dir.addSync(admin, `${dn},${SUFFIX}`, attrs(a));
    try {
      add('dc=net', { objectClass: 'domain', dc: 'net' });
      add('dc=example,dc=net', {
        objectClass: ['dNSDomain2', 'domain'], dc: 'example', sOARecord: 'ns1.example.com. hostmaster.example.net. 1 3600 900 604800 60',
        nSRecord: 'ns1.example.com.',
      });
      await dig('example.com', 'AXFR');
      await dig('example.net', 'AXFR');
      walked.length = 0;
      dir.modifySync(admin, `dc=example,dc=net,${SUFFIX}`, [{ op: 'replace', type: 'aRecord', values: ['192.0.2.7'] }]);
      const com = records((await dig('example.com', 'AXFR')).stdout);
      const net = records((await dig('example.net', 'AXFR')).stdout);
      assert.deepEqual(walked, ['example.net'], 'only the zone written to is walked again');
      assert.ok(net.includes('example.net. 3600 IN A 192.0.2.7'), net.join('\n'));

      // A child zone below example.com: its cut (NS and glue) is in example.com's AXFR now.
      walked.length = 0;
      add('dc=sub,dc=example,dc=com', {
        objectClass: ['dNSDomain2', 'domain'], dc: 'sub', sOARecord: 'ns.sub.example.com. hostmaster.example.com. 1 3600 900 604800 60',
        nSRecord: 'ns.sub.example.com.',
      });
      add('dc=ns,dc=sub,dc=example,dc=com', { objectClass: ['dNSDomain2', 'domain'], dc: 'ns', aRecord: '192.0.2.54' });
      const after = records((await dig('example.com', 'AXFR')).stdout);
      assert.deepEqual(walked, ['example.com']);
      assert.ok(after.includes('sub.example.com. 3600 IN NS ns.sub.example.com.'), after.join('\n'));
      assert.ok(after.includes('ns.sub.example.com. 3600 IN A 192.0.2.54'), after.join('\n'));
      assert.notDeepEqual(after, com);
      await dig('example.net', 'AXFR');
      assert.deepEqual(walked, ['example.com'], 'example.net was not touched');
    } finally {
      zones.zoneContents = real;
    }
  });
});

/** An SOA RR for the authority section of an IXFR query (RFC 1995 §3): owner `zone`, the given serial. */
function soaRR(zone: string, serial: number): Buffer<ArrayBuffer> {
  const name = (n: string) => Buffer.concat([...n.split('.').flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)]), Buffer.from([0])]);
  const rdata = Buffer.concat([name(`ns1.${zone}`), name(`hostmaster.${zone}`), Buffer.alloc(20)]);
  rdata.writeUInt32BE(serial, rdata.length - 20);
  const head = Buffer.alloc(10);
  head.writeUInt16BE(6, 0);
  head.writeUInt16BE(1, 2);
  head.writeUInt32BE(300, 4);
  head.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([name(zone), head, rdata]);
}
