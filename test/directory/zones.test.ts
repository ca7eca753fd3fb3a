/**
 * The zone view and its hooks on the write path: a dc chain under the suffix
 * must spell a DNS name (RFC 1035 §2.3.4, §3.1), whichever way the entry is
 * written; a parent zone holds the cut of a child zone hosted here (RFC 1034
 * §4.2.1/§4.2.2), in its contents and in its serial.
 */
import { before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { attrs, memoryDirectory, SUFFIX } from './fixture';
import { Provisioner } from '../../server/directory/provision';
import { escapeDnValue } from '../../schema/dn';
import type { Directory } from '../../server/directory/directory';
import type { Identity } from '../../server/directory/access';
import { DirectoryError, ReservedDomainError } from '../../server/directory/errors';
import { dnsLabelProblem, type Zones } from '../../server/directory/zones';
import { formatRR } from '../../server/directory/records';

let dir: Directory;
let admin: Identity;
const ZONE = `dc=example,dc=com,${SUFFIX}`;

before(async () => {
  ({ dir, admin } = await memoryDirectory());
  dir.addSync(admin, `dc=com,${SUFFIX}`, attrs({ objectClass: 'domain', dc: 'com' }));
  dir.addSync(admin, ZONE, attrs({
    objectClass: ['dNSDomain2', 'domain'], dc: 'example', sOARecord: 'ns1.example.com. hostmaster.example.com. 1 3600 900 604800 60',
  }));
});

const addLabel = (dc: string, parent = ZONE) =>
  dir.addSync(admin, `dc=${escapeDnValue(dc)},${parent}`, attrs({ objectClass: ['dNSDomain2', 'domain'], dc, aRecord: '192.0.2.1' }));

const refusedAs = (result: string) => (e: unknown) => e instanceof DirectoryError && e.result === result;

describe('dc values under the suffix are DNS labels', () => {
  const LEGAL = ['_dmarc', '*', 'xn--bcher-kva', 'Mixed-Case9', '_sip', 'a'.repeat(63), 'a+b'];
  for (const dc of LEGAL) {
    test(`accepted: ${JSON.stringify(dc)}`, () => {
      assert.equal(dnsLabelProblem(dc), undefined);
      addLabel(dc);
    });
  }

  const ILLEGAL: [string, string, string?][] = [
    ['a'.repeat(64), 'over 63 octets'],
    ['a'.repeat(70), 'over 63 octets'],
    ['a.b', 'a dot would make two labels'],
    ['sp ace', 'white space'],
    ['tab\tx', 'a control character'],
    ['nl\nx', 'a line break'],
    ['bücher', 'non-ASCII: A-labels only; dc is an IA5 string (RFC 4519), so the schema refuses it first', 'invalidDNSyntax'],
    ['back\\slash', 'the presentation escape'],
    ['semi;colon', 'a master-file comment'],
    ['paren(', 'a master-file grouping'],
  ];
  for (const [dc, why, result = 'namingViolation'] of ILLEGAL) {
    test(`refused with ${result}: ${JSON.stringify(dc)} (${why})`, () => {
      assert.ok(dnsLabelProblem(dc));
      assert.throws(() => addLabel(dc), refusedAs(result));
    });
  }

  test('a name over 255 octets is refused even when every label is fine', () => {
    let parent = ZONE;
    // example.com (13 octets on the wire) + 3 × 64 = 205; a fourth 63-octet label makes 269.
    for (const c of ['b', 'c', 'd']) {
      addLabel(c.repeat(63), parent);
      parent = `dc=${c.repeat(63)},${parent}`;
    }
    assert.throws(() => addLabel('e'.repeat(63), parent), refusedAs('namingViolation'));
    addLabel('e'.repeat(40), parent); // 246 octets: fine
  });

  test('renames are checked, moved descendants included; a modify of an old entry is not', () => {
    addLabel('old');
    addLabel('child', `dc=old,${ZONE}`);
    assert.throws(() => dir.modifyDN(admin, `dc=old,${ZONE}`, 'dc=o l d', true), refusedAs('namingViolation'));
    // Moving the subtree under a long name: old.<deep> has 250 octets, child.old.<deep> 256.
    let deep = ZONE;
    for (const l of ['p'.repeat(63), 'q'.repeat(63), 'r'.repeat(63), 's'.repeat(40)]) {
      addLabel(l, deep);
      deep = `dc=${l},${deep}`;
    }
    assert.throws(() => dir.modifyDN(admin, `dc=old,${ZONE}`, 'dc=old', true, deep), refusedAs('namingViolation'));
    dir.modifyDN(admin, `dc=old,${ZONE}`, 'dc=new', true);
    dir.modifySync(admin, `dc=new,${ZONE}`, [{ op: 'replace', type: 'aRecord', values: ['192.0.2.2'] }]);
    assert.deepEqual(dir.get(admin, `dc=new,${ZONE}`)?.attrs.aRecord, ['192.0.2.2']);
    assert.ok(dir.get(admin, `dc=child,dc=new,${ZONE}`), 'the child moved with it');
    assert.equal(dir.get(admin, `dc=old,${ZONE}`), undefined);
  });

  test('outside a dc chain the rule does not apply', () => {
    assert.ok(dnsLabelProblem('sp ace'), 'not a DNS label');
    assert.throws(() => addLabel('sp ace'), refusedAs('namingViolation'), 'refused in the dc chain');
    dir.addSync(admin, `ou=people,${ZONE}`, attrs({ objectClass: 'organizationalUnit', ou: 'people' }));
    dir.addSync(admin, `dc=sp ace,ou=people,${ZONE}`, attrs({ objectClass: 'domain', dc: 'sp ace' }));
    assert.deepEqual(dir.get(admin, `dc=sp ace,ou=people,${ZONE}`)?.attrs.dc, ['sp ace'], 'stored below ou=people');
  });
});

// ------------------------------------------------------------------ child zones hosted here

/**
 * example.org with a delegation (sub), and child zones hosted here: new
 * (in-bailiwick and outside name servers, a grandchild zone g.new), self (its
 * name server is its apex), bare (an apex without NS: no cut) and deep.sub
 * (inside the delegation sub: not a cut of example.org).
 */
async function childZones(): Promise<{ dir: Directory; admin: Identity; zones: Zones; add: (dn: string, a: Record<string, string | string[]>) => void }> {
  const m = await memoryDirectory();
  const add = (dn: string, a: Record<string, string | string[]>) =>
    m.dir.addSync(m.admin, `${dn}${dn ? ',' : ''}dc=example,dc=org,${SUFFIX}`, attrs({ objectClass: ['dNSDomain2', 'domain'], ...a }));
  const soa = (zone: string) => `ns1.${zone}. hostmaster.${zone}. 10 3600 900 604800 60`;
  m.dir.addSync(m.admin, `dc=org,${SUFFIX}`, attrs({ objectClass: 'domain', dc: 'org' }));
  add('', { dc: 'example', dNSTTL: '300', sOARecord: soa('example.org'), nSRecord: 'ns1.example.org.', aRecord: '192.0.2.1' });
  add('dc=ns1', { dc: 'ns1', aRecord: '192.0.2.53' });
  add('dc=sub', { dc: 'sub', nSRecord: 'ns.sub.example.org.' });
  add('dc=ns,dc=sub', { dc: 'ns', aRecord: '192.0.2.100' });
  add('dc=deep,dc=sub', { dc: 'deep', sOARecord: soa('deep.sub.example.org'), nSRecord: 'ns.deep.sub.example.org.' });
  add('dc=new', {
    dc: 'new', dNSTTL: '600', sOARecord: soa('new.example.org'),
    nSRecord: ['ns1.new.example.org.', 'ns.g.new.example.org.', 'ns1.example.org.', 'ns.elsewhere.net.'], mXRecord: '10 mx.new.example.org.',
  });
  add('dc=ns1,dc=new', { dc: 'ns1', aRecord: '192.0.2.61', aAAARecord: '2001:db8::61' });
  add('dc=www,dc=new', { dc: 'www', aRecord: '192.0.2.62' });
  add('dc=g,dc=new', { dc: 'g', dNSTTL: '900', sOARecord: soa('g.new.example.org'), nSRecord: 'ns.g.new.example.org.' });
  add('dc=ns,dc=g,dc=new', { dc: 'ns', aRecord: '192.0.2.63' });
  add('dc=self', { dc: 'self', sOARecord: soa('self.example.org'), nSRecord: 'self.example.org.', aRecord: '192.0.2.70', tXTRecord: '"child data"' });
  add('dc=bare', { dc: 'bare', sOARecord: soa('bare.example.org'), aRecord: '192.0.2.80' });
  return { ...m, add };
}

/** zoneRecords as master-file lines with single spaces, SOA dropped (its serial moves). */
function lines(zones: Zones, zone: string): string[] {
  return zones.zoneRecords(zone)!.filter((r) => r.rdata.type !== 6).map((r) => formatRR(r).replace(/\t/g, ' ')).sort();
}

describe('a parent zone holds the cut of a child zone hosted here (RFC 1034 §4.2.1, §4.2.2)', () => {
  let zones: Zones;
  before(async () => ({ zones } = await childZones()));

  const TABLE: { zone: string; records: string[] }[] = [
    {
      zone: 'example.org',
      records: [
        'example.org. 300 IN A 192.0.2.1',
        'example.org. 300 IN NS ns1.example.org.',
        'ns.sub.example.org. 300 IN A 192.0.2.100',
        'ns1.example.org. 300 IN A 192.0.2.53',
        // the cut at new: the child's NS RRset with its TTL, glue from new (ns1) and from the grandchild g (ns.g)
        'new.example.org. 600 IN NS ns.elsewhere.net.',
        'new.example.org. 600 IN NS ns.g.new.example.org.',
        'new.example.org. 600 IN NS ns1.example.org.',
        'new.example.org. 600 IN NS ns1.new.example.org.',
        'ns.g.new.example.org. 900 IN A 192.0.2.63',
        'ns1.new.example.org. 600 IN A 192.0.2.61',
        'ns1.new.example.org. 600 IN AAAA 2001:db8::61',
        // the cut at self: its name server is the apex itself, so the apex address is glue
        'self.example.org. 3600 IN A 192.0.2.70',
        'self.example.org. 3600 IN NS self.example.org.',
        'sub.example.org. 300 IN NS ns.sub.example.org.',
      ].sort(),
    },
    {
      zone: 'new.example.org',
      records: [
        'g.new.example.org. 900 IN NS ns.g.new.example.org.',
        'new.example.org. 600 IN MX 10 mx.new.example.org.',
        'new.example.org. 600 IN NS ns.elsewhere.net.',
        'new.example.org. 600 IN NS ns.g.new.example.org.',
        'new.example.org. 600 IN NS ns1.example.org.',
        'new.example.org. 600 IN NS ns1.new.example.org.',
        'ns.g.new.example.org. 900 IN A 192.0.2.63',
        'ns1.new.example.org. 600 IN A 192.0.2.61',
        'ns1.new.example.org. 600 IN AAAA 2001:db8::61',
        'www.new.example.org. 600 IN A 192.0.2.62',
      ].sort(),
    },
    { zone: 'self.example.org', records: ['self.example.org. 3600 IN A 192.0.2.70', 'self.example.org. 3600 IN NS self.example.org.', 'self.example.org. 3600 IN TXT "child data"'] },
  ];
  for (const { zone, records } of TABLE) {
    test(`zoneRecords(${zone})`, () => assert.deepEqual(lines(zones, zone), records));
  }

  test('the SOA comes first and only once; queries still go to the closest apex', () => {
    const rrs = zones.zoneRecords('example.org')!;
    assert.equal(rrs[0].rdata.type, 6);
    assert.equal(rrs[0].name, 'example.org');
    assert.equal(rrs.filter((r) => r.rdata.type === 6).length, 1, 'no SOA of a child zone');
    assert.equal(zones.zoneOf('www.new.example.org')?.name, 'new.example.org');
    assert.equal(zones.zoneOf('new.example.org')?.name, 'new.example.org');
  });
});

describe('a write to the cut of a child zone bumps the parent too, in the same commit (RFC 1034 §4.2.1, RFC 1996)', () => {
  const NEW = `dc=new,dc=example,dc=org,${SUFFIX}`;
  const at = (dn: string) => `${dn}${dn ? ',' : ''}dc=example,dc=org,${SUFFIX}`;
  type Case = {
    what: string;
    write: (d: { dir: Directory; admin: Identity; add: (dn: string, a: Record<string, string | string[]>) => void }) => void;
    /** Zones whose serial moves. */
    bumped: string[];
    /** Of those, the zones whose journal holds the change (IXFR); the others drop it (RFC 1995 §4: AXFR-style). */
    journaled: string[];
  };
  const CASES: Case[] = [
    {
      what: 'the child apex\'s NS RRset changes',
      write: ({ dir, admin }) => dir.modifySync(admin, NEW, [{ op: 'delete', type: 'nSRecord', values: ['ns.elsewhere.net.'] }]),
      bumped: ['example.org', 'new.example.org'], journaled: ['new.example.org'],
    },
    {
      what: 'a glue address is added at a name server below the cut',
      write: ({ dir, admin }) => dir.modifySync(admin, at('dc=ns1,dc=new'), [{ op: 'add', type: 'aAAARecord', values: ['2001:db8::161'] }]),
      bumped: ['example.org', 'new.example.org'], journaled: ['new.example.org'],
    },
    {
      what: 'a glue address is removed',
      write: ({ dir, admin }) => dir.modifySync(admin, at('dc=ns1,dc=new'), [{ op: 'delete', type: 'aRecord', values: [] }]),
      bumped: ['example.org', 'new.example.org'], journaled: ['new.example.org'],
    },
    {
      what: 'a name server entry in a grandchild goes: glue of two cuts (example.org for new, new for g)',
      write: ({ dir, admin }) => dir.delete(admin, at('dc=ns,dc=g,dc=new')),
      bumped: ['example.org', 'g.new.example.org', 'new.example.org'], journaled: ['g.new.example.org'],
    },
    {
      what: 'a name server entry named by the NS appears below the cut',
      write: ({ dir, admin, add }) => dir.write(() => {
        dir.modifySync(admin, NEW, [{ op: 'add', type: 'nSRecord', values: ['ns2.new.example.org.'] }]);
        add('dc=ns2,dc=new', { dc: 'ns2', aRecord: '192.0.2.64' });
      }),
      bumped: ['example.org', 'new.example.org'], journaled: ['new.example.org'],
    },
    {
      what: 'the child apex\'s dNSTTL changes: the TTL of the NS at the cut and of every record of the child',
      write: ({ dir, admin }) => dir.modifySync(admin, NEW, [{ op: 'replace', type: 'dNSTTL', values: ['1200'] }]),
      bumped: ['example.org', 'new.example.org'], journaled: [],
    },
    {
      what: 'the apex address of a child that is its own name server (glue at the cut)',
      write: ({ dir, admin }) => dir.modifySync(admin, at('dc=self'), [{ op: 'replace', type: 'aRecord', values: ['192.0.2.71'] }]),
      bumped: ['example.org', 'self.example.org'], journaled: ['self.example.org'],
    },
    {
      what: 'a child zone is created',
      write: ({ add }) => add('dc=fresh', { dc: 'fresh', sOARecord: 'ns1.example.org. hostmaster.example.org. 1 3600 900 604800 60', nSRecord: 'ns1.example.org.' }),
      bumped: ['example.org', 'fresh.example.org'], journaled: [],
    },
    {
      what: 'a child zone is deleted',
      write: ({ dir, admin }) => dir.delete(admin, at('dc=self')),
      bumped: ['example.org'], journaled: [],
    },
    {
      what: 'an address below the cut that no NS names: the child only',
      write: ({ dir, admin }) => dir.modifySync(admin, at('dc=www,dc=new'), [{ op: 'replace', type: 'aRecord', values: ['192.0.2.162'] }]),
      bumped: ['new.example.org'], journaled: ['new.example.org'],
    },
    {
      what: 'other records of the child apex: the child only',
      write: ({ dir, admin }) => dir.modifySync(admin, NEW, [{ op: 'add', type: 'aRecord', values: ['192.0.2.60'] }, { op: 'replace', type: 'mXRecord', values: ['20 mx.new.example.org.'] }]),
      bumped: ['new.example.org'], journaled: ['new.example.org'],
    },
    {
      what: 'a child inside a delegation of the parent: the cut example.org holds is the delegation\'s',
      write: ({ dir, admin }) => dir.modifySync(admin, at('dc=deep,dc=sub'), [{ op: 'add', type: 'nSRecord', values: ['ns2.deep.sub.example.org.'] }]),
      bumped: ['deep.sub.example.org'], journaled: ['deep.sub.example.org'],
    },
    {
      what: 'a child apex without NS makes no cut',
      write: ({ dir, admin }) => dir.modifySync(admin, at('dc=bare'), [{ op: 'replace', type: 'aRecord', values: ['192.0.2.81'] }]),
      bumped: ['bare.example.org'], journaled: ['bare.example.org'],
    },
  ];

  for (const c of CASES) {
    test(c.what, async () => {
      const d = await childZones();
      const serials = () => new Map(d.zones.zoneNames().map((z) => [z, d.zones.zoneOf(z)!.soa.rdata.serial]));
      const was = serials();
      const logged = d.dir.changeRange().last;
      const parentBefore = lines(d.zones, 'example.org');
      c.write(d);
      const notified = [d.zones.soaChanges([...d.dir.changesSince(logged + 1)]).map((z) => z.name).sort()];
      const is = serials();
      const bumped = [...is.keys()].filter((z) => was.has(z) && was.get(z) !== is.get(z));
      if (!was.has('fresh.example.org') && is.has('fresh.example.org')) bumped.push('fresh.example.org');
      assert.deepEqual(bumped.sort(), c.bumped);
      // The commit's rows name every zone with a new serial, once: NOTIFY reaches the parent's secondaries too.
      assert.deepEqual(notified, [c.bumped]);
      if (c.bumped.includes('example.org')) assert.notDeepEqual(lines(d.zones, 'example.org'), parentBefore, 'the parent\'s contents changed');
      else assert.deepEqual(lines(d.zones, 'example.org'), parentBefore, 'the parent\'s contents did not change');
      for (const z of c.bumped) {
        const serial = d.zones.zoneOf(z)?.soa.rdata.serial;
        const row = d.dir.store.journal(z).find((r) => r.serialTo === serial);
        assert.equal(!!row, c.journaled.includes(z), `${z}: journal row to ${serial}`);
      }
    });
  }

  test('a parent zone provisioned after its child holds the cut from the start', async () => {
    const { dir, zones } = await memoryDirectory();
    const p = new Provisioner(dir, zones, { hostname: 'mx.dcmx.test', catchall: false, spf: '', dmarc: '' });
    p.provisionDomain('new.example.net');
    assert.equal(zones.zoneOf('new.example.net')?.name, 'new.example.net');
    const child = zones.zoneOf('new.example.net')!.soa.rdata.serial;
    assert.throws(() => p.provisionDomain('example.net'), ReservedDomainError, 'a new zone above a hosted zone needs force');
    p.provisionDomain('example.net', { force: true });
    assert.equal(zones.zoneOf('new.example.net')!.soa.rdata.serial, child, 'the child is not touched');
    assert.ok(lines(zones, 'example.net').includes('new.example.net. 3600 IN NS mx.dcmx.test.'), lines(zones, 'example.net').join('\n'));
    assert.equal(zones.zoneOf('www.new.example.net')?.name, 'new.example.net', 'queries still go to the closest apex');
  });
});
