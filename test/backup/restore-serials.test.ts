/**
 * The zone-serial rule of a restore (server/backup/restore.ts): every zone's
 * SOA serial and the catalog zone's (zone-set) serial move forward by the
 * milliseconds since the backup, through the write path, so that the change
 * log and the zone journal (IXFR) hold the move, and the new serial is
 * greater (RFC 1982) than any the zone had since the backup.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { attrs, memoryDirectory, SUFFIX } from '../directory/fixture';
import { advanceSerials, renewEntryCsns, serialStep } from '../../server/backup/restore';
import { serialGreater } from '../../server/directory/zones';

const CATALOG = 'catalog.invalid';
const apex = (dc: string) => `dc=${dc},dc=org,${SUFFIX}`;
const soa = (zone: string, serial: number) => `ns1.${zone}. hostmaster.${zone}. ${serial} 3600 900 604800 60`;

async function twoZones() {
  const d = await memoryDirectory({ catalog: CATALOG });
  d.dir.addSync(d.admin, `dc=org,${SUFFIX}`, attrs({ objectClass: 'domain', dc: 'org' }));
  d.dir.addSync(d.admin, apex('one'), attrs({ objectClass: ['dNSDomain2', 'domain'], dc: 'one', sOARecord: soa('one.org', 7), mXRecord: '10 mx.one.org.' }));
  d.dir.addSync(d.admin, apex('two'), attrs({ objectClass: ['dNSDomain2', 'domain'], dc: 'two', sOARecord: soa('two.org', 4294967290) }));
  d.dir.sync();
  return { ...d, services: { directory: d.dir, zones: d.zones } };
}

const serialOf = (d: Awaited<ReturnType<typeof twoZones>>, zone: string) => {
  d.dir.sync();
  return d.zones.zoneOf(zone)!.soa.rdata.serial;
};

test('serialStep: the milliseconds since the backup, at least 1, at most 2^31 - 2', () => {
  const t0 = Date.parse('2026-12-08T02:00:00.000Z');
  assert.equal(serialStep(t0, t0 + 90_000), 90_000);
  assert.equal(serialStep(t0, t0), 1, 'a restore in the same millisecond still moves on');
  assert.equal(serialStep(t0, t0 - 5000), 1, 'a clock behind the backup\'s still moves on');
  assert.equal(serialStep(t0, t0 + 40 * 86_400_000), 2 ** 31 - 2, 'RFC 1982 §3.1: no addition of 2^31 or more');
  assert.throws(() => advanceSerials(undefined as never, 2 ** 31 - 1), RangeError);
});

test('advanceSerials moves every zone\'s serial and the catalog\'s forward, through the write path', async () => {
  const d = await twoZones();
  const before = { one: serialOf(d, 'one.org'), two: serialOf(d, 'two.org'), catalog: d.zones.catalogSerial() };
  const head = d.dir.changeRange().last;
  // A restore 90 s after the backup: every write of those 90 s (lost with the destroyed data dir) added 1 at most.
  const step = 90_000;

  const r = advanceSerials(d.services, step);
  assert.deepEqual(r.zones, [
    { zone: 'one.org', from: before.one, to: before.one + step },
    { zone: 'two.org', from: before.two, to: (before.two + step) % 2 ** 32 },
  ]);
  assert.deepEqual(r.catalog, { from: before.catalog, to: before.catalog + step });
  assert.equal(serialOf(d, 'one.org'), before.one + step, 'served: the zone view follows the write');
  assert.equal(serialOf(d, 'two.org'), (before.two + step) % 2 ** 32);
  assert.ok(serialGreater(serialOf(d, 'two.org'), before.two), 'past 2^32 it wraps, and is still greater (RFC 1982 §3.2)');
  assert.equal(d.zones.catalogSerial(), before.catalog + step);
  assert.equal(d.zones.zoneOf(CATALOG)!.soa.rdata.serial, before.catalog + step, 'the catalog zone\'s SOA');
  assert.ok(serialGreater(before.one + step, before.one + step - 1), 'past serials issued since the backup');

  // The change log: one replace of each apex's sOARecord, nothing else (the write path's own bump did not add one).
  const rows = [...d.dir.changesSince(head + 1)];
  assert.deepEqual(rows.map((c) => [c.changeType, c.targetNdn]), [['modify', apex('one')], ['modify', apex('two')]]);
  const mods = rows.map((c) => (c.changeType === 'modify' ? c.modifications : []));
  assert.deepEqual(mods[0], [{ op: 'replace', type: 'sOARecord', values: [soa('one.org', before.one + step)] }]);
  // The journal: a move with no record changed, so an IXFR from the backup's serial is the SOA alone (RFC 1995 §4).
  const last = d.dir.store.journal('one.org').at(-1)!;
  assert.deepEqual([last.serialFrom, last.serialTo, last.removed, last.added], [before.one, before.one + step, [], []]);
  // The records are untouched.
  assert.deepEqual(d.zones.node('one.org')!.rrsets.get(15)!.map((rr) => rr.rdata), [{ type: 15, preference: 10, exchange: 'mx.one.org' }]);

  // A second restore of the same backup, later: further still.
  const again = advanceSerials(d.services, step + 10);
  assert.equal(again.zones[0].to, before.one + 2 * step + 10);
});

test('advanceSerials on a store without zones moves the zone-set serial alone', async () => {
  const d = await memoryDirectory({ catalog: CATALOG });
  const from = d.zones.catalogSerial();
  const head = d.dir.changeRange().last;
  const r = advanceSerials({ directory: d.dir, zones: d.zones }, 5);
  assert.deepEqual(r, { zones: [], catalog: { from, to: from + 5 } });
  assert.equal(d.dir.changeRange().last, head, 'no change-log row');
});

test('renewEntryCsns gives every entry one new entryCSN, after every CSN issued, and leaves the change log alone', async () => {
  const d = await twoZones();
  const head = d.dir.syncHead();
  const csn = renewEntryCsns(d.services);
  assert.ok(csn > head.csn, `${csn} after ${head.csn}`);
  const suffix = d.dir.store.getByNdn(SUFFIX)!;
  const all = [suffix, ...d.dir.store.descendants(suffix.rpath)];
  assert.equal(all.length, d.dir.store.count());
  assert.deepEqual([...new Set(all.map((e) => e.attrs.entryCSN?.join()))], [csn], 'every entry, one CSN');
  assert.deepEqual(d.dir.syncHead(), head, 'no change-log row');
  // The serial moves after it are newer still: the provider's contextCSN is not behind an entry's.
  advanceSerials(d.services, 1);
  assert.ok(d.dir.syncHead().csn > csn);
});
