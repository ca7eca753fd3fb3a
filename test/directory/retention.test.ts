/**
 * Retention of the change log and the IXFR journal: the store's trimming as
 * unit tests, then a running appliance with small limits, read back with
 * ldapsearch (firstChangeNumber, cn=changelog) and dig (IXFR).
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { attrs, memoryDirectory } from './fixture';
import { Provisioner } from '../../server/directory/provision';
import { adminArgs, run, startTestAppliance, type TestAppliance } from '../helpers';
import { digRunner, exampleOrgZone, soaSerial } from '../dns/fixture';

describe('store trimming', () => {
  test('the change log keeps its newest rows; numbers are never reused', async () => {
    const { dir, admin } = await memoryDirectory();
    for (let i = 0; i < 30; i++) await dir.add(admin, `cn=u${i},o=internet`, attrs({ objectClass: ['top', 'person'], cn: `u${i}`, sn: 'x' }));
    const { last } = dir.changeRange();
    assert.equal(dir.store.trimChangelog(10, 7), 7, 'one batch at most');
    while (dir.store.trimChangelog(10, 7) > 0);
    assert.deepEqual(dir.changeRange(), { first: last - 9, last });
    await dir.add(admin, 'cn=next,o=internet', attrs({ objectClass: ['top', 'person'], cn: 'next', sn: 'x' }));
    assert.equal(dir.changeRange().last, last + 1);
    assert.equal(dir.store.trimChangelog(100), 0, 'keep >= the log: nothing to do');
  });

  test('the journal keeps the newest rows of each zone', async () => {
    const { dir, admin, zones } = await memoryDirectory();
    const p = new Provisioner(dir, zones, { hostname: 'mx.dcmx.test', catchall: false, spf: '', dmarc: '' });
    p.provisionDomain('a.test');
    p.provisionDomain('b.test');
    for (let i = 0; i < 6; i++) {
      for (const z of ['a.test', 'b.test']) {
        await dir.modify(admin, `dc=${z.split('.')[0]},dc=test,o=internet`, [{ op: 'replace', type: 'aRecord', values: [`192.0.2.${i + 1}`] }]);
      }
    }
    const a = dir.store.journal('a.test');
    assert.ok(a.length >= 6);
    while (dir.store.trimJournal(2, 3) > 0);
    assert.deepEqual(dir.store.journal('a.test').map((j) => j.serialTo), a.slice(-2).map((j) => j.serialTo));
    assert.equal(dir.store.journal('b.test').length, 2);
  });
});

describe('an appliance with DCMX_CHANGELOG_KEEP=10 and DCMX_ZONE_JOURNAL_KEEP=3', () => {
  let t: TestAppliance;
  before(async () => {
    // Unsigned zones: an IXFR of a signed zone is always the whole zone (transfer.ts), and the journal is what is tested here.
    t = await startTestAppliance({ DCMX_CHANGELOG_KEEP: '10', DCMX_ZONE_JOURNAL_KEEP: '3', DCMX_AXFR_ALLOW: '127.0.0.1/32', DCMX_DNSSEC: 'off' });
    const r = await run('ldapadd', adminArgs(t), exampleOrgZone());
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => t.close());

  const changeRange = async () => {
    const r = await run('ldapsearch', [...adminArgs(t), '-LLL', '-b', '', '-s', 'base', '(objectClass=*)', 'firstChangeNumber', 'lastChangeNumber']);
    return { first: Number(/firstChangeNumber: (\d+)/.exec(r.stdout)?.[1]), last: Number(/lastChangeNumber: (\d+)/.exec(r.stdout)?.[1]) };
  };

  test('writes trim the log to its newest rows and IXFR from before the journal gets the whole zone', async () => {
    const dig = digRunner(() => t.app.ports.dns);
    const serials: number[] = [soaSerial((await dig('example.org', 'SOA')).stdout)];
    for (let i = 0; i < 12; i++) {
      const m = await run('ldapmodify', adminArgs(t), `dn: dc=mx,dc=example,dc=org,o=internet\nchangetype: modify\nreplace: aRecord\naRecord: 198.51.100.${i + 1}\n`);
      assert.equal(m.code, 0, m.stderr);
      serials.push(soaSerial((await dig('example.org', 'SOA')).stdout));
    }
    await t.app.retention.run();
    const { first, last } = await changeRange();
    assert.equal(last - first + 1, 10, `first ${first}, last ${last}`);
    const log = await run('ldapsearch', [...adminArgs(t), '-LLL', '-b', 'cn=changelog', '-s', 'one', '(objectClass=changeLogEntry)', 'changeNumber']);
    const numbers = [...log.stdout.matchAll(/changeNumber: (\d+)/g)].map((m) => Number(m[1])).sort((a, b) => a - b);
    assert.deepEqual(numbers, Array.from({ length: 10 }, (_, i) => first + i), 'cn=changelog serves exactly the kept rows');

    const types = async (serial: number) => (await dig('example.org', `IXFR=${serial}`)).stdout
      .split('\n').filter((l) => l && !l.startsWith(';')).map((l) => l.split(/\s+/)[3]);
    // Within the last three serial changes: deltas (SOA new, SOA old, removed, SOA, added, ..., SOA new).
    const recent = await types(serials[serials.length - 3]);
    assert.deepEqual(recent.slice(0, 2), ['SOA', 'SOA'], recent.join(' '));
    // From further back than the journal keeps: the whole zone, AXFR-style (RFC 1995 §4).
    const old = await types(serials[2]);
    assert.equal(old[0], 'SOA');
    assert.notEqual(old[1], 'SOA', old.join(' '));
    assert.ok(old.includes('MX') && old.includes('NS'), old.join(' '));
  });
});
