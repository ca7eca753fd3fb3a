/**
 * provisionDomain / removeDomain against a real (in-memory) store: what is
 * kept, what is added, what comes back, and where the operation refuses.
 * The end-to-end path (swaks, ldapsearch, dig) is test/mta/provisioning.test.ts.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Provisioner } from '../../server/directory/provision';
import { serialGreater } from '../../server/directory/zones';
import { attrs, memoryDirectory } from './fixture';
import { mailDomainOf } from '../../server/directory/mail';

const HOST = 'mx.dcmx.test';
const OPTS = { hostname: HOST, catchall: true, spf: 'v=spf1 mx -all', dmarc: 'v=DMARC1; p=quarantine' };

async function setup() {
  const { dir, admin, zones } = await memoryDirectory();
  const p = new Provisioner(dir, zones, OPTS);
  const entry = (dn: string) => dir.getByNdn(dir.normalize(dn));
  const rrs = (name: string, type: number) => (zones.node(name)?.rrsets.get(type) ?? []).map((r) => r.rdata);
  const serial = (zone: string) => zones.zoneOf(zone)!.soa.rdata.serial;
  return { dir, admin, zones, p, entry, rrs, serial };
}

test('records already at the name stay; ours are added beside them', async () => {
  const { dir, admin, p, entry } = await setup();
  p.provisionDomain('example.org');
  await dir.add(admin, 'dc=www,dc=example,dc=org,o=internet', attrs({
    objectClass: ['top', 'dNSDomain2'], dc: 'www', tXTRecord: '"site-verification=abc"', mXRecord: '20 backup.example.net.',
  }));
  p.provisionDomain('www.example.org');
  const www = entry('dc=www,dc=example,dc=org,o=internet')!;
  assert.deepEqual(www.attrs.tXTRecord.sort(), ['"site-verification=abc"', '"v=spf1 mx -all"']);
  assert.deepEqual(www.attrs.mXRecord.sort(), [`10 ${HOST}.`, '20 backup.example.net.']);
  assert.equal(www.attrs.sOARecord, undefined, 'inside example.org: no apex of its own');
});

test('an existing SPF record is the operator\'s: no second one (RFC 7208 §3.2)', async () => {
  const { dir, admin, p, entry } = await setup();
  await dir.add(admin, 'dc=org,o=internet', attrs({ objectClass: ['top', 'domain'], dc: 'org' }));
  await dir.add(admin, 'dc=spf,dc=org,o=internet', attrs({ objectClass: ['top', 'dNSDomain2'], dc: 'spf', tXTRecord: '"v=spf1 include:_spf.example.net -all"' }));
  p.provisionDomain('spf.org');
  assert.deepEqual(entry('dc=spf,dc=org,o=internet')!.attrs.tXTRecord, ['"v=spf1 include:_spf.example.net -all"']);
});

test('remove withdraws only the mail records; the zone and its other names stay', async () => {
  const { p, rrs, zones, entry } = await setup();
  p.provisionDomain('new.example.net');
  p.provisionDomain('sub.new.example.net');
  p.removeDomain('new.example.net');
  assert.equal(zones.zoneOf('sub.new.example.net')?.name, 'new.example.net', 'the zone is still served');
  assert.deepEqual(rrs('sub.new.example.net', 15), [{ type: 15, preference: 10, exchange: HOST }]);
  assert.deepEqual(rrs('new.example.net', 15), [], 'the MX is withdrawn');
  assert.deepEqual(rrs('new.example.net', 16), [], 'the SPF is withdrawn');
  assert.deepEqual(rrs('_dmarc.new.example.net', 16), [], 'the DMARC policy is withdrawn');
  assert.equal(entry('dc=new,dc=example,dc=net,o=internet')!.attrs.mailDomainStatus[0], 'deleted');
});

test('remove and add again: the serial only grows and the DMARC policy comes back', async () => {
  const { p, rrs, serial } = await setup();
  p.provisionDomain('byip.example.net');
  for (let i = 0; i < 5; i++) p.provisionDomain(`s${i}.byip.example.net`);
  const before = serial('byip.example.net');
  p.removeDomain('byip.example.net');
  const removed = serial('byip.example.net');
  assert.ok(serialGreater(removed, before), `${removed} > ${before}`);
  const r = p.provisionDomain('byip.example.net');
  assert.equal(r.existed, false);
  assert.ok(serialGreater(r.serial, removed), `${r.serial} > ${removed}`);
  assert.deepEqual(rrs('byip.example.net', 15), [{ type: 15, preference: 10, exchange: HOST }]);
  assert.equal(rrs('_dmarc.byip.example.net', 16).length, 1, 'DMARC back');
});

test('a domain on hold stays on hold: provisioning does not reactivate it', async () => {
  const { dir, admin, p, entry } = await setup();
  p.provisionDomain('held.example.org');
  await dir.modify(admin, 'dc=held,dc=example,dc=org,o=internet', [{ op: 'replace', type: 'mailDomainStatus', values: ['hold'] }]);
  const r = p.provisionDomain('held.example.org');
  assert.equal(r.existed, true);
  assert.equal(entry('dc=held,dc=example,dc=org,o=internet')!.attrs.mailDomainStatus[0], 'hold');
});

test('below a delegation to other servers: refused, nothing written', async () => {
  const { dir, admin, p, entry } = await setup();
  p.provisionDomain('example.org');
  await dir.add(admin, 'dc=deleg,dc=example,dc=org,o=internet', attrs({ objectClass: ['top', 'dNSDomain2'], dc: 'deleg', nSRecord: 'ns1.other.net.' }));
  const last = dir.changeRange().last;
  for (const name of ['deleg.example.org', 'sub.deleg.example.org']) {
    assert.throws(() => p.provisionDomain(name), /delegates to other name servers/);
  }
  assert.equal(dir.changeRange().last, last, 'nothing written');
  assert.equal(entry('dc=sub,dc=deleg,dc=example,dc=org,o=internet'), undefined);
});

test('a delegation whose NS name this appliance becomes a zone apex of its own', async () => {
  const { dir, admin, p, zones, rrs } = await setup();
  p.provisionDomain('example.org');
  await dir.add(admin, 'dc=here,dc=example,dc=org,o=internet', attrs({ objectClass: ['top', 'dNSDomain2'], dc: 'here', nSRecord: `${HOST}.` }));
  const r = p.provisionDomain('here.example.org');
  assert.equal(r.zone, 'here.example.org');
  assert.equal(zones.zoneOf('here.example.org')?.name, 'here.example.org');
  assert.deepEqual(rrs('here.example.org', 2), [{ type: 2, target: HOST }], 'one NS, not a duplicate');
});

test("the catch-all's entry: made with the domain in its transaction, without a password; not when the domain names another catch-all or none", async () => {
  const { dir, admin, zones, p, entry } = await setup();
  const r = p.provisionDomain('catch.example.org');
  const dn = 'uid=catchall,ou=people,dc=catch,dc=example,dc=org,o=internet';
  assert.ok(r.created.includes(dn), 'reported among the entries created');
  const e = entry(dn)!;
  assert.deepEqual(e.attrs.mail, ['catchall@catch.example.org']);
  assert.equal(e.attrs.userPassword, undefined, 'no password until the administrator sets one');
  assert.equal(entry('dc=catch,dc=example,dc=org,o=internet')!.attrs.mailDomainCatchallAddress[0], 'catchall@catch.example.org');
  // Removed and added again: the entry is there already, nothing more is made.
  p.removeDomain('catch.example.org');
  assert.ok(!p.provisionDomain('catch.example.org').created.includes(dn));
  // A domain that names its own catch-all keeps it and gets no entry.
  await dir.add(admin, 'dc=own,dc=example,dc=org,o=internet', attrs({
    objectClass: ['top', 'domain', 'mailDomain'], dc: 'own', mailDomainStatus: 'deleted', mailDomainCatchallAddress: 'postbox@own.example.org',
  }));
  p.provisionDomain('own.example.org');
  assert.equal(entry('uid=catchall,ou=people,dc=own,dc=example,dc=org,o=internet'), undefined);
  // DCMX_NEW_DOMAIN_CATCHALL off: neither the address nor the entry.
  new Provisioner(dir, zones, { ...OPTS, catchall: false }).provisionDomain('none.example.org');
  assert.equal(entry('dc=none,dc=example,dc=org,o=internet')!.attrs.mailDomainCatchallAddress, undefined);
  assert.equal(entry('uid=catchall,ou=people,dc=none,dc=example,dc=org,o=internet'), undefined);
});

test('provisioned names carry their own name in associatedDomain (PowerDNS tree mode), which makes no alias', async () => {
  const { dir, admin, p, entry, zones } = await setup();
  p.provisionDomain('Example.COM');
  p.provisionDomain('shop.example.com'); // inside the zone: no apex of its own
  for (const [dn, name] of [
    ['dc=example,dc=com,o=internet', 'example.com'], ['dc=_dmarc,dc=example,dc=com,o=internet', '_dmarc.example.com'],
    ['dc=shop,dc=example,dc=com,o=internet', 'shop.example.com'], ['dc=_dmarc,dc=shop,dc=example,dc=com,o=internet', '_dmarc.shop.example.com'],
  ]) {
    const e = entry(dn)!;
    assert.deepEqual(e.attrs.associatedDomain, [name], dn);
    assert.ok(e.attrs.objectClass.includes('domainRelatedObject'), `${dn}: ${e.attrs.objectClass}`);
  }
  // A name the operator gave already (any case, a trailing dot) is not added twice; aliases stay aliases.
  await dir.add(admin, 'dc=net,o=internet', attrs({ objectClass: ['top', 'domain'], dc: 'net' }));
  await dir.add(admin, 'dc=alias,dc=net,o=internet', attrs({
    objectClass: ['top', 'domain', 'domainRelatedObject'], dc: 'alias', associatedDomain: ['ALIAS.net.', 'other.example'],
  }));
  p.provisionDomain('alias.net');
  assert.deepEqual(entry('dc=alias,dc=net,o=internet')!.attrs.associatedDomain, ['ALIAS.net.', 'other.example']);
  assert.deepEqual(mailDomainOf(zones.names, entry('dc=example,dc=com,o=internet')!)?.aliases, [], 'its own name is no alias');
  assert.deepEqual(mailDomainOf(zones.names, entry('dc=alias,dc=net,o=internet')!)?.aliases, ['other.example']);
});
