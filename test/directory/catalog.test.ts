/**
 * The catalog zone (RFC 9432, server/directory/catalog.ts) as the zone view
 * serves it: its contents, its serial (the zone-set serial, moved by the
 * writes that add, withdraw or rename a zone apex and by no other), and the
 * answers lookup() gives from it.
 */
import { before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { attrs, memoryDirectory, SUFFIX } from './fixture';
import type { Directory } from '../../server/directory/directory';
import type { Identity } from '../../server/directory/access';
import type { Zones } from '../../server/directory/zones';
import { catalogContents, memberId } from '../../server/directory/catalog';
import { formatRR, RRTYPE } from '../../server/directory/records';
import { lookup } from '../../server/dns/lookup';
import { ConfigError, loadConfig } from '../../server/config';
import { testEnv } from '../helpers';

let dir: Directory;
let admin: Identity;
let zones: Zones;
const CATALOG = 'catalog.invalid';

before(async () => {
  ({ dir, admin, zones } = await memoryDirectory({ catalog: CATALOG }));
  dir.addSync(admin, `dc=com,${SUFFIX}`, attrs({ objectClass: 'domain', dc: 'com' }));
});

const serial = () => zones.catalogView().soa.rdata.serial;
/** A record as one line, fields separated by one space. */
const line = (rr: Parameters<typeof formatRR>[0]) => formatRR(rr).replace(/\t/g, ' ');
const members = () => zones.catalogView().rrs.filter((r) => r.rdata.type === RRTYPE.PTR).map(line);
const apex = (dc: string) => `dc=${dc},dc=com,${SUFFIX}`;
const soa = (zone: string) => `ns1.${zone}. hostmaster.${zone}. 1 3600 900 604800 60`;
const sync = () => dir.sync();

describe('the catalog zone', () => {
  test('lists every zone apex, and its serial moves only when the set of zones changes', () => {
    sync();
    const s0 = serial();
    assert.deepEqual(members(), []);
    dir.addSync(admin, apex('one'), attrs({ objectClass: ['dNSDomain2', 'domain'], dc: 'one', sOARecord: soa('one.com') }));
    sync();
    assert.equal(serial(), s0 + 1, 'a zone added');
    assert.deepEqual(members(), [`${memberId('one.com')}.zones.${CATALOG}. 0 IN PTR one.com.`]);

    dir.addSync(admin, `dc=www,${apex('one')}`, attrs({ objectClass: ['dNSDomain2', 'domain'], dc: 'www', aRecord: '192.0.2.1' }));
    dir.modifySync(admin, apex('one'), [{ op: 'add', type: 'aRecord', values: ['192.0.2.2'] }]);
    sync();
    assert.equal(serial(), s0 + 1, 'records inside a zone are no new version of the catalog');

    dir.addSync(admin, apex('two'), attrs({ objectClass: ['dNSDomain2', 'domain'], dc: 'two', sOARecord: soa('two.com') }));
    sync();
    assert.equal(serial(), s0 + 2);
    assert.equal(members().length, 2);

    dir.modifyDN(admin, apex('two'), 'dc=three', true);
    sync();
    assert.equal(serial(), s0 + 3, 'a zone renamed');
    assert.deepEqual(members().map((l) => l.split(' ').pop()).sort(), ['one.com.', 'three.com.']);

    dir.modifySync(admin, apex('one'), [{ op: 'delete', type: 'sOARecord', values: [] }]);
    sync();
    assert.equal(serial(), s0 + 4, 'a zone withdrawn (its SOA deleted)');
    assert.deepEqual(members().map((l) => l.split(' ').pop()), ['three.com.']);
    assert.ok(zones.zoneNames().includes(CATALOG), 'the catalog is one of the zones served');
  });

  test('member ids are stable hashes of the zone name, one label each', () => {
    assert.equal(memberId('Example.ORG'), memberId('example.org'));
    assert.match(memberId('example.org'), /^[0-9a-f]{32}$/);
    const c = catalogContents('cat.example', 7, ['b.example', 'a.example']);
    assert.deepEqual(c.rrs.map(line), [
      'cat.example. 0 IN SOA invalid. invalid. 7 3600 600 2147483646 0',
      'cat.example. 0 IN NS invalid.',
      'version.cat.example. 0 IN TXT "2"',
      `${memberId('a.example')}.zones.cat.example. 0 IN PTR a.example.`,
      `${memberId('b.example')}.zones.cat.example. 0 IN PTR b.example.`,
    ]);
  });

  test('lookup answers from it: version TXT, NODATA at zones., NXDOMAIN beside', () => {
    sync();
    const q = (name: string, type: number) => lookup(zones, { name, type, class: 1 });
    const v = q(`version.${CATALOG}`, RRTYPE.TXT);
    assert.equal(v.result, 'success');
    assert.deepEqual(v.answer.map(line), [`version.${CATALOG}. 0 IN TXT "2"`]);
    assert.equal(q(`zones.${CATALOG}`, RRTYPE.PTR).result, 'nodata');
    assert.equal(q(`other.${CATALOG}`, RRTYPE.A).result, 'nxdomain');
    assert.equal(q(CATALOG, RRTYPE.SOA).answer[0].rdata.type, RRTYPE.SOA);
  });
});

describe('DCMX_DNS_CATALOG', () => {
  test('off by default; a DNS name, trailing dot optional, any case; anything else is refused naming the variable', () => {
    assert.equal(loadConfig(testEnv('/tmp/unused')).dns.catalog, undefined);
    assert.equal(loadConfig(testEnv('/tmp/unused', { DCMX_DNS_CATALOG: 'Catalog.INVALID.' })).dns.catalog, 'catalog.invalid');
    assert.equal(loadConfig(testEnv('/tmp/unused', { DCMX_DNS_CATALOG: 'cat.example.org' })).dns.catalog, 'cat.example.org');
    for (const bad of ['.', 'a..b', 'bad name', '-x.example', 'x'.repeat(64) + '.example']) {
      assert.throws(() => loadConfig(testEnv('/tmp/unused', { DCMX_DNS_CATALOG: bad })),
        (e: unknown) => e instanceof ConfigError && e.variable === 'DCMX_DNS_CATALOG', bad);
    }
  });
});
