/**
 * lookup() as a table (CoreDNS style): zone in the directory, question,
 * expected sections in master-file form.
 */
import { before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { memoryDirectory, attrs } from '../directory/fixture';
import { lookup, type Answer } from '../../server/dns/lookup';
import { formatRR, RRTYPE } from '../../server/directory/records';
import type { Zones } from '../../server/directory/zones';

let zones: Zones;
const S = 'o=internet';

before(async () => {
  const m = await memoryDirectory();
  zones = m.zones;
  const { dir, admin } = m;
  const add = (dn: string, a: Record<string, string | string[]>) =>
    dir.addSync(admin, `${dn},${S}`, attrs(a));
  add('dc=org', { objectClass: 'domain', dc: 'org' });
  add('dc=example,dc=org', {
    objectClass: ['dNSDomain2', 'domain'], dc: 'example', dNSTTL: '300',
    sOARecord: 'ns1.example.org. hostmaster.example.org. 2024010101 3600 900 604800 60',
    nSRecord: ['ns1.example.org.', 'ns.elsewhere.net.'], mXRecord: ['10 mx.example.org.', '20 mx.elsewhere.net.'],
    tXTRecord: '"v=spf1 mx -all"', aRecord: '192.0.2.1',
  });
  add('dc=ns1,dc=example,dc=org', { objectClass: ['dNSDomain2', 'domain'], dc: 'ns1', aRecord: '192.0.2.53' });
  add('dc=mx,dc=example,dc=org', { objectClass: ['dNSDomain2', 'domain'], dc: 'mx', aRecord: '192.0.2.25', aAAARecord: '2001:db8::25' });
  add('dc=www,dc=example,dc=org', { objectClass: ['dNSDomain2', 'domain'], dc: 'www', cNAMERecord: 'web.example.org.' });
  add('dc=web,dc=example,dc=org', { objectClass: ['dNSDomain2', 'domain'], dc: 'web', aRecord: ['192.0.2.80', '192.0.2.81'] });
  add('dc=ext,dc=example,dc=org', { objectClass: ['dNSDomain2', 'domain'], dc: 'ext', cNAMERecord: 'www.elsewhere.net.' });
  add('dc=loop1,dc=example,dc=org', { objectClass: ['dNSDomain2', 'domain'], dc: 'loop1', cNAMERecord: 'loop2.example.org.' });
  add('dc=loop2,dc=example,dc=org', { objectClass: ['dNSDomain2', 'domain'], dc: 'loop2', cNAMERecord: 'loop1.example.org.' });
  add('dc=dangling,dc=example,dc=org', { objectClass: ['dNSDomain2', 'domain'], dc: 'dangling', cNAMERecord: 'nothere.example.org.' });
  add('dc=empty,dc=example,dc=org', { objectClass: ['domain'], dc: 'empty' });
  add('dc=host,dc=empty,dc=example,dc=org', { objectClass: ['dNSDomain2', 'domain'], dc: 'host', aRecord: '192.0.2.9' });
  add('dc=wild,dc=example,dc=org', { objectClass: ['domain'], dc: 'wild' });
  add('dc=*,dc=wild,dc=example,dc=org', { objectClass: ['dNSDomain2', 'domain'], dc: '*', aRecord: '192.0.2.99', tXTRecord: '"wild"' });
  add('dc=sub,dc=example,dc=org', { objectClass: ['dNSDomain2', 'domain'], dc: 'sub', nSRecord: ['ns.sub.example.org.', 'ns.other.net.'] });
  add('dc=ns,dc=sub,dc=example,dc=org', { objectClass: ['dNSDomain2', 'domain'], dc: 'ns', aRecord: '192.0.2.200' });
  add('dc=deep,dc=ns,dc=sub,dc=example,dc=org', { objectClass: ['dNSDomain2', 'domain'], dc: 'deep', aRecord: '192.0.2.201' });
  add('dc=srv,dc=example,dc=org', { objectClass: ['dNSDomain2', 'domain'], dc: 'srv', sRVRecord: '10 5 5060 mx.example.org.', cAARecord: '0 issue "letsencrypt.org"' });
  add('dc=tosub,dc=example,dc=org', { objectClass: ['dNSDomain2', 'domain'], dc: 'tosub', cNAMERecord: 'www.sub.example.org.' });
  add('dc=mxwild,dc=example,dc=org', { objectClass: ['dNSDomain2', 'domain'], dc: 'mxwild', mXRecord: '10 host.wild.example.org.', sRVRecord: '0 0 25 smtp.wild.example.org.' });
  add('dc=mxsub,dc=example,dc=org', { objectClass: ['dNSDomain2', 'domain'], dc: 'mxsub', mXRecord: ['10 ns.sub.example.org.', '20 mx.example.org.'] });
  add('dc=net', { objectClass: 'domain', dc: 'net' }); // no SOA: not ours
});

interface Case {
  name: string;
  q: [string, keyof typeof RRTYPE | number, number?];
  result: Answer['result'];
  answer?: string[];
  authority?: string[];
  additional?: string[];
  aa?: boolean;
}

const lines = (rrs: { name: string; ttl: number; rdata: unknown }[]) => rrs.map((r) => formatRR(r as never).replace(/\t/g, ' '));

const CASES: Case[] = [
  { name: 'A at apex', q: ['example.org', 'A'], result: 'success', answer: ['example.org. 300 IN A 192.0.2.1'] },
  {
    name: 'MX with in-zone additional', q: ['example.org', 'MX'], result: 'success',
    answer: ['example.org. 300 IN MX 10 mx.example.org.', 'example.org. 300 IN MX 20 mx.elsewhere.net.'],
    additional: ['mx.example.org. 300 IN A 192.0.2.25', 'mx.example.org. 300 IN AAAA 2001:db8::25'],
  },
  { name: 'NS at apex with glue', q: ['example.org', 'NS'], result: 'success', answer: ['example.org. 300 IN NS ns1.example.org.', 'example.org. 300 IN NS ns.elsewhere.net.'], additional: ['ns1.example.org. 300 IN A 192.0.2.53'] },
  { name: 'TXT', q: ['example.org', 'TXT'], result: 'success', answer: ['example.org. 300 IN TXT "v=spf1 mx -all"'] },
  { name: 'SOA', q: ['example.org', 'SOA'], result: 'success' },
  // 19 writes in the zone (the apex and 18 names) each bumped the serial once: 2024010101 + 19.
  { name: 'NODATA carries SOA with negative TTL min(300, 60)', q: ['example.org', 'AAAA'], result: 'nodata', answer: [], authority: ['example.org. 60 IN SOA ns1.example.org. hostmaster.example.org. 2024010121 3600 900 604800 60'] },
  { name: 'NXDOMAIN carries SOA', q: ['nope.example.org', 'A'], result: 'nxdomain', answer: [] },
  { name: 'CNAME followed in zone', q: ['www.example.org', 'A'], result: 'success', answer: ['www.example.org. 300 IN CNAME web.example.org.', 'web.example.org. 300 IN A 192.0.2.80', 'web.example.org. 300 IN A 192.0.2.81'] },
  { name: 'CNAME asked for itself', q: ['www.example.org', 'CNAME'], result: 'success', answer: ['www.example.org. 300 IN CNAME web.example.org.'] },
  { name: 'CNAME out of zone not followed', q: ['ext.example.org', 'A'], result: 'success', answer: ['ext.example.org. 300 IN CNAME www.elsewhere.net.'] },
  { name: 'CNAME loop stops', q: ['loop1.example.org', 'A'], result: 'success' },
  { name: 'CNAME to a missing name: NXDOMAIN with the chain', q: ['dangling.example.org', 'A'], result: 'nxdomain', answer: ['dangling.example.org. 300 IN CNAME nothere.example.org.'] },
  { name: 'entry without records: NODATA, not NXDOMAIN', q: ['empty.example.org', 'A'], result: 'nodata' },
  { name: 'wildcard synthesis (RFC 4592)', q: ['anything.wild.example.org', 'A'], result: 'success', answer: ['anything.wild.example.org. 300 IN A 192.0.2.99'] },
  { name: 'wildcard below a wildcard match', q: ['a.b.wild.example.org', 'TXT'], result: 'success', answer: ['a.b.wild.example.org. 300 IN TXT "wild"'] },
  { name: 'wildcard NODATA', q: ['x.wild.example.org', 'MX'], result: 'nodata' },
  {
    name: 'referral with glue below the cut', q: ['www.sub.example.org', 'A'], result: 'delegation', aa: false,
    authority: ['sub.example.org. 300 IN NS ns.sub.example.org.', 'sub.example.org. 300 IN NS ns.other.net.'], additional: ['ns.sub.example.org. 300 IN A 192.0.2.200'],
  },
  { name: 'referral at the cut itself', q: ['sub.example.org', 'A'], result: 'delegation', aa: false },
  { name: 'names below the cut are referrals too', q: ['deep.ns.sub.example.org', 'A'], result: 'delegation', aa: false },
  {
    name: 'CNAME into a delegation of the zone: the chain, then the referral (RFC 1034 §4.3.2 step 3b)', q: ['tosub.example.org', 'A'], result: 'delegation', aa: true,
    answer: ['tosub.example.org. 300 IN CNAME www.sub.example.org.'],
    authority: ['sub.example.org. 300 IN NS ns.sub.example.org.', 'sub.example.org. 300 IN NS ns.other.net.'], additional: ['ns.sub.example.org. 300 IN A 192.0.2.200'],
  },
  {
    name: 'MX target covered by a wildcard: synthesized address in additional (RFC 4592 §3.3.1)', q: ['mxwild.example.org', 'MX'], result: 'success',
    answer: ['mxwild.example.org. 300 IN MX 10 host.wild.example.org.'], additional: ['host.wild.example.org. 300 IN A 192.0.2.99'],
  },
  {
    name: 'SRV target covered by a wildcard: synthesized address in additional', q: ['mxwild.example.org', 'SRV'], result: 'success',
    answer: ['mxwild.example.org. 300 IN SRV 0 0 25 smtp.wild.example.org.'], additional: ['smtp.wild.example.org. 300 IN A 192.0.2.99'],
  },
  {
    name: 'MX targets: the address of one below a cut (glue, the child\'s data) is left out of additional, the in-zone one is in',
    q: ['mxsub.example.org', 'MX'], result: 'success',
    answer: ['mxsub.example.org. 300 IN MX 10 ns.sub.example.org.', 'mxsub.example.org. 300 IN MX 20 mx.example.org.'],
    additional: ['mx.example.org. 300 IN A 192.0.2.25', 'mx.example.org. 300 IN AAAA 2001:db8::25'],
  },
  { name: 'SRV with target address', q: ['srv.example.org', 'SRV'], result: 'success', answer: ['srv.example.org. 300 IN SRV 10 5 5060 mx.example.org.'], additional: ['mx.example.org. 300 IN A 192.0.2.25', 'mx.example.org. 300 IN AAAA 2001:db8::25'] },
  { name: 'CAA', q: ['srv.example.org', 'CAA'], result: 'success', answer: ['srv.example.org. 300 IN CAA 0 issue "letsencrypt.org"'] },
  { name: 'ANY is minimal (RFC 8482): one RRset', q: ['web.example.org', 'ANY'], result: 'success', answer: ['web.example.org. 300 IN A 192.0.2.80', 'web.example.org. 300 IN A 192.0.2.81'] },
  { name: 'outside our zones: refused', q: ['example.net', 'A'], result: 'refused', aa: false },
  { name: 'a domain entry without SOA above: refused', q: ['net', 'A'], result: 'refused', aa: false },
  { name: 'CHAOS class: refused', q: ['example.org', 'A', 3], result: 'refused', aa: false },
  { name: 'QCLASS ANY: refused, not answered with IN data', q: ['example.org', 'A', 255], result: 'refused', aa: false, answer: [] },
];

describe('lookup', () => {
  for (const c of CASES) {
    test(c.name, () => {
      const type = typeof c.q[1] === 'number' ? c.q[1] : RRTYPE[c.q[1]];
      const a = lookup(zones, { name: c.q[0], type, class: c.q[2] ?? 1 });
      assert.equal(a.result, c.result);
      assert.equal(a.aa, c.aa ?? (c.result !== 'refused' && c.result !== 'delegation'));
      if (c.answer) assert.deepEqual(lines(a.answer), c.answer);
      if (c.authority) assert.deepEqual(lines(a.authority), c.authority);
      if (c.additional) assert.deepEqual(lines(a.additional), c.additional);
      if (c.result === 'nxdomain' || c.result === 'nodata') assert.equal(a.authority[0]?.rdata.type, RRTYPE.SOA);
    });
  }
});

describe('a child zone served here too: the closest apex answers, except DS at the cut (RFC 4035 §3.1.4.1)', () => {
  let view: Zones;
  before(async () => {
    const m = await memoryDirectory();
    view = m.zones;
    const add = (dn: string, a: Record<string, string | string[]>) =>
      m.dir.addSync(m.admin, `${dn}${dn ? ',' : ''}dc=example,dc=com,${S}`, attrs({ objectClass: ['dNSDomain2', 'domain'], ...a }));
    const soa = (zone: string) => `ns1.${zone}. hostmaster.${zone}. 1 3600 900 604800 60`;
    m.dir.addSync(m.admin, `dc=com,${S}`, attrs({ objectClass: 'domain', dc: 'com' }));
    add('', { dc: 'example', dNSTTL: '300', sOARecord: soa('example.com'), nSRecord: 'ns1.example.com.' });
    add('dc=kid', { dc: 'kid', dNSTTL: '600', sOARecord: soa('kid.example.com'), nSRecord: 'ns1.kid.example.com.' });
    add('dc=ns1,dc=kid', { dc: 'ns1', aRecord: '192.0.2.61' });
    add('dc=www,dc=kid', { dc: 'www', aRecord: '192.0.2.62' });
    add('dc=sub', { dc: 'sub', nSRecord: 'ns.elsewhere.net.' });
    add('dc=deep,dc=sub', { dc: 'deep', sOARecord: soa('deep.sub.example.com'), nSRecord: 'ns.elsewhere.net.' });
  });

  const soaOf = (a: Answer) => (a.authority[0]?.rdata.type === RRTYPE.SOA ? a.authority[0].name : undefined);
  const TABLE: { name: string; q: [string, keyof typeof RRTYPE]; result: Answer['result']; zone: string; answer?: string[] }[] = [
    { name: 'DS at the child apex: the parent answers, NODATA with its SOA', q: ['kid.example.com', 'DS'], result: 'nodata', zone: 'example.com' },
    { name: 'NS at the child apex: the child answers', q: ['kid.example.com', 'NS'], result: 'success', zone: 'kid.example.com', answer: ['kid.example.com. 600 IN NS ns1.kid.example.com.'] },
    { name: 'SOA at the child apex: the child answers', q: ['kid.example.com', 'SOA'], result: 'success', zone: 'kid.example.com' },
    { name: 'a name in the child: the child answers', q: ['www.kid.example.com', 'A'], result: 'success', zone: 'kid.example.com', answer: ['www.kid.example.com. 600 IN A 192.0.2.62'] },
    { name: 'DS below the child apex: no cut, the child answers', q: ['www.kid.example.com', 'DS'], result: 'nodata', zone: 'kid.example.com' },
    { name: 'DS at a delegation of the parent: the parent answers, as before', q: ['sub.example.com', 'DS'], result: 'nodata', zone: 'example.com' },
    { name: 'DS at a child apex inside a delegation: its parent (sub) is not ours, the child answers', q: ['deep.sub.example.com', 'DS'], result: 'nodata', zone: 'deep.sub.example.com' },
    { name: 'DS at the top apex: no parent here, the zone answers', q: ['example.com', 'DS'], result: 'nodata', zone: 'example.com' },
  ];
  for (const c of TABLE) {
    test(c.name, () => {
      const a = lookup(view, { name: c.q[0], type: RRTYPE[c.q[1]], class: 1 });
      assert.equal(a.result, c.result);
      assert.equal(a.aa, true);
      assert.equal(a.zone, c.zone);
      if (c.answer) assert.deepEqual(lines(a.answer), c.answer);
      if (c.result === 'nodata') assert.equal(soaOf(a), c.zone, 'RFC 2308 §2.2: the SOA of the zone that answers');
    });
  }
});
