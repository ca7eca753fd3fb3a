/** routeOf: the route a mail domain's entry calls for, as a table; the RoutingTable's entry-level updates. */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { routeOf, describeRoute, RoutingTable } from '../../server/directory/routing';
import { MailDirectory, type MailDomain } from '../../server/directory/mail';
import { attrs, memoryDirectory, SUFFIX } from './fixture';

const SELF = 'mx.dcmx.test';
const base: MailDomain = {
  name: 'example.org', dn: 'dc=example,dc=org,o=internet', ndn: 'dc=example,dc=org,o=internet', status: 'active',
  routingHosts: [], smartHost: undefined, catchall: undefined, mx: [], aliases: [],
};

const CASES: [string, Partial<MailDomain>, string][] = [
  ['no MX record: local', {}, 'local'],
  ['MX points here (the provisioned record identifies the domain): local', { mx: [SELF] }, 'local'],
  ['MX elsewhere: relayed to it (backup MX)', { mx: ['mx1.example.org', 'mx2.example.org'] }, 'relay:mx1.example.org,mx2.example.org'],
  ['MX here among others: local', { mx: ['mx1.example.org', SELF] }, 'local'],
  ['smart host: relay', { smartHost: 'relay.example.net', mx: [SELF] }, 'relay:relay.example.net'],
  ['routing hosts naming us: local', { routingHosts: [SELF, 'other.example'], mx: ['elsewhere.example'] }, 'local'],
  ['routing hosts elsewhere: relay', { routingHosts: ['store1.example'] }, 'relay:store1.example'],
  ['hold', { status: 'hold', smartHost: 'relay.example.net' }, 'hold'],
  ['disabled: reject', { status: 'disabled' }, 'reject'],
];

for (const [name, patch, want] of CASES) {
  test(name, () => assert.equal(describeRoute(routeOf({ ...base, ...patch }, SELF)), want));
}

test('a remote unit: hosts naming the directory\'s appliance are this deployment\'s (local), others are not', () => {
  const unit = ['unit1.dcmx.test', SELF];
  assert.equal(describeRoute(routeOf({ ...base, mx: [SELF] }, unit)), 'local', 'provisioned by the appliance: MX its host');
  assert.equal(describeRoute(routeOf({ ...base, routingHosts: [SELF] }, unit)), 'local');
  assert.equal(describeRoute(routeOf({ ...base, smartHost: SELF }, unit)), 'local');
  assert.equal(describeRoute(routeOf({ ...base, mx: ['elsewhere.example'] }, unit)), 'relay:elsewhere.example');
  const table = new RoutingTable(['Unit1.dcmx.test.', SELF]);
  assert.equal(table.routeFor({ ...base, mx: ['unit1.dcmx.test'] }).kind, 'local', 'names compared lower case, without trailing dot');
});

/**
 * The table kept from entry states (a remote unit's Content Sync copy of
 * the mail-domain entries): domains read from real entries in the store.
 */
describe('RoutingTable from MailDomain values', () => {
  const O = SUFFIX;
  async function domains() {
    const { dir, admin, zones } = await memoryDirectory();
    await dir.add(admin, `dc=org,${O}`, attrs({ objectClass: 'domain', dc: 'org' }));
    await dir.add(admin, `dc=example,dc=org,${O}`, attrs({ objectClass: ['dNSDomain2', 'mailDomain', 'domainRelatedObject'], dc: 'example', associatedDomain: 'example.net' }));
    await dir.add(admin, `dc=relayed,dc=org,${O}`, attrs({ objectClass: ['dNSDomain2', 'mailDomain'], dc: 'relayed', mailRoutingSmartHost: 'relay.example.com' }));
    const mail = new MailDirectory(dir, zones.names);
    return { dir, admin, mail, all: [...mail.domains()] };
  }

  test('build from a list, then setDomain and removeDomain by name or by entryUUID; listeners hear of each', async () => {
    const { dir, admin, mail, all } = await domains();
    const table = new RoutingTable(SELF);
    const heard: (string[] | undefined)[] = [];
    table.onUpdate((touched) => heard.push(touched));
    table.build(all, 7);
    assert.equal(table.version, 7);
    assert.deepEqual(table.entries().map(([d, r]) => `${d} ${describeRoute(r)}`), [
      'example.net alias:example.org', 'example.org local', 'relayed.org relay:relay.example.com',
    ]);
    await dir.modify(admin, `dc=example,dc=org,${O}`, [
      { op: 'replace', type: 'mailDomainStatus', values: ['hold'] },
      { op: 'replace', type: 'associatedDomain', values: ['example.info'] },
    ]);
    table.setDomain(mail.domain('example.org')!);
    assert.equal(table.lookup('example.org')?.kind, 'hold');
    assert.equal(table.lookup('example.net'), undefined, 'the old alias is withdrawn');
    assert.deepEqual(table.resolve('example.info'), { domain: 'example.org', route: { kind: 'hold' } });
    const relayed = mail.domain('relayed.org')!;
    assert.ok(relayed.uuid);
    table.removeDomain(relayed.uuid);
    assert.equal(table.lookup('relayed.org'), undefined, 'removed by entryUUID');
    table.removeDomain('Example.ORG.');
    assert.equal(table.lookup('example.org'), undefined, 'removed by name');
    assert.equal(table.lookup('example.info'), undefined, 'and its alias');
    table.removeDomain('nowhere.test');
    assert.deepEqual(heard, [undefined, ['example.org'], ['relayed.org'], ['example.org']]);
  });

  test('setDomain of a renamed entry (same entryUUID, new name) withdraws the old name and its aliases', async () => {
    const { dir, admin, mail, all } = await domains();
    const table = new RoutingTable(SELF);
    table.build(all);
    dir.modifyDN(admin, `dc=example,dc=org,${O}`, 'dc=sample', true);
    const renamed = mail.domain('sample.org')!;
    assert.equal(renamed.uuid, all.find((d) => d.name === 'example.org')!.uuid);
    table.setDomain(renamed);
    assert.equal(table.lookup('example.org'), undefined);
    assert.deepEqual(table.resolve('example.net'), { domain: 'sample.org', route: { kind: 'local' } });
    assert.equal(table.lookup('sample.org')?.kind, 'local');
  });

  test('removeDomain of an alias name leaves the table alone', async () => {
    const { all } = await domains();
    const table = new RoutingTable(SELF);
    table.build(all);
    table.removeDomain('example.net');
    assert.equal(table.lookup('example.net')?.kind, 'alias');
    assert.equal(table.lookup('example.org')?.kind, 'local');
  });
});
