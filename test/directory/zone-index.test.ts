/**
 * The compiled zones (zone-index.ts) against the store they are compiled
 * from: after each of a few hundred random writes (entries added and
 * deleted, records, dNSTTL, SOA and NS added and removed, subtrees renamed,
 * one of them a signed apex), every name the writes could have touched reads
 * the same from the compiled copy as from the store (Zones.node and zoneOf,
 * whose store path is what a write transaction reads): same RRsets in the
 * same order, same zone and SOA.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { attrs, memoryDirectory, SUFFIX } from './fixture';
import { formatRR } from '../../server/directory/records';
import type { ZoneNode, Zone } from '../../server/directory/zones';
import type { Modification } from '../../server/directory/directory';
import { prng } from '../prng';

/** Labels entries are added with; renames go to RENAMED_TO (free more often), so that subtrees move. */
const LABELS = ['a', 'b', 'c', '*'];
const RENAMED_TO = ['d', 'e'];
const STEPS = 600;

/** Every name of up to three labels from LABELS below org (org included): the names the writes may make. */
function allNames(): string[] {
  const out = ['org'];
  for (let depth = 1, level = ['org']; depth <= 3; depth++) {
    level = level.flatMap((p) => [...LABELS, ...RENAMED_TO].map((l) => `${l}.${p}`));
    out.push(...level);
  }
  return out;
}

const dnOf = (name: string) => `${name.split('.').map((l) => `dc=${l}`).join(',')},${SUFFIX}`;

const nodeText = (n: ZoneNode | undefined) => (n ? [...n.rrsets].map(([t, rrs]) => `${t}: ${rrs.map(formatRR).join(' | ')}`).join('\n') : 'none');
const zoneText = (z: Zone | undefined) => (z ? `${z.name} ${formatRR(z.soa)}` : 'none');

/** The store path of the view (what a write transaction reads): private, reached for the comparison only. */
interface StorePaths {
  storeNode(name: string): ZoneNode | undefined;
  storeZoneOf(name: string): Zone | undefined;
}

test('after each random write, the compiled zones read as the store does', async () => {
  const { dir, admin, zones } = await memoryDirectory({ dnssec: true });
  const rnd = prng(14);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)];
  const store = zones as unknown as StorePaths;
  dir.addSync(admin, dnOf('org'), attrs({ objectClass: 'domain', dc: 'org' }));
  const names = allNames();
  const exists = (n: string) => dir.getByNdn(dnOf(n)) !== undefined;
  const soa = (n: string, serial: number) => `ns1.${n}. hostmaster.${n}. ${serial} 3600 900 604800 ${30 + serial % 50}`;
  const record = (): [string, string] => pick<[string, string]>([
    ['aRecord', `192.0.2.${Math.floor(rnd() * 250)}`], ['mXRecord', `10 mx.${pick(names)}.`], ['tXTRecord', `"t${Math.floor(rnd() * 9)}"`],
    ['dNSTTL', String(60 * Math.floor(1 + rnd() * 20))], ['nSRecord', `ns.${pick(names)}.`],
  ]);
  let done = 0;
  for (let step = 0; step < STEPS; step++) {
    // Half the time a name that exists (its entry modified, renamed or deleted), else any (added when its parent exists).
    const existing = rnd() < 0.5 ? names.slice(1).filter(exists) : [];
    let name = pick(existing.length ? existing : names.slice(1));
    // A name to add whose parent is missing: its highest missing ancestor instead.
    while (!exists(name) && !exists(name.slice(name.indexOf('.') + 1))) name = name.slice(name.indexOf('.') + 1);
    const parent = name.slice(name.indexOf('.') + 1);
    try {
      if (!exists(name)) {
        const [k, v] = record();
        const apex = rnd() < 0.3;
        dir.addSync(admin, dnOf(name), attrs({
          objectClass: ['dNSDomain2', 'domain'], dc: name.slice(0, name.indexOf('.')), [k]: v, ...(apex ? { sOARecord: soa(name, step) } : {}),
        }));
      } else {
        const r = rnd();
        if (r < 0.15) {
          dir.delete(admin, dnOf(name));
        } else if (r < 0.35) {
          // Renamed to another label: the subtree below moves with it.
          const label = pick(RENAMED_TO.filter((l) => !name.startsWith(l + '.')));
          dir.modifyDN(admin, dnOf(name), `dc=${label}`, true);
        } else {
          const [k, v] = rnd() < 0.15 ? ['sOARecord', soa(name, step)] : record();
          const e = dir.getByNdn(dnOf(name))!;
          const has = !!e.attrs[k]?.length;
          const mods: Modification[] = has && rnd() < 0.5 ? [{ op: 'delete', type: k, values: [] }] : [{ op: 'replace', type: k, values: [v] }];
          dir.modifySync(admin, dnOf(name), mods);
        }
      }
    } catch {
      continue; // refused (a delete of a non-leaf, a rename onto an existing name, CNAME rules...): nothing changed
    }
    done++;
    for (const n of names) {
      assert.equal(nodeText(zones.node(n)), nodeText(store.storeNode(n)), `step ${step}: node ${n}`);
      assert.equal(zoneText(zones.zoneOf(n)), zoneText(store.storeZoneOf(n)), `step ${step}: zone of ${n}`);
    }
  }
  assert.ok(done > STEPS / 2, `${done} of ${STEPS} writes went through`);
});
