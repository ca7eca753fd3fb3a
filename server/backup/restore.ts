/**
 * `dcmx restore SRC`: a data dir rebuilt from a backup (server/backup/),
 * and what a restored store must do before it serves again.
 *
 * Zone serials after a restore (RFC 1982). The secondaries may hold serials
 * the appliance issued after the backup was taken; a restored zone at its
 * backup serial would look older to them (RFC 1982 §3.2) and they would keep
 * their newer copy, silently. So every zone's serial moves forward by
 * {@link serialStep}: one per millisecond since the backup was taken, at
 * least 1, at most 2^31 - 2 (RFC 1982 §3.1: a larger addition is undefined).
 * Each bump of the write path adds one, so the new serial is past every
 * serial issued since the backup unless more than one zone change a
 * millisecond was made on average (or an operator raised a serial by hand by
 * more than that); a second restore of the same backup, later, goes past
 * the first. The catalog zone's serial (the zone-set serial, catalog.ts)
 * moves the same way. The serials are written through the write path, in one
 * transaction: each zone gets a change-log row (a consumer of the log sees
 * the new SOA) and a journal row from the backup's serial to the new one
 * (IXFR, RFC 1995; a secondary holding a serial the restored journal does not
 * know gets the whole zone, §4).
 */
import { bumpZoneSetSerial, zoneSetSerial } from '../directory/catalog';
import type { Services } from '../directory/open';
import { formatRData, parseRData, RRTYPE, type RData } from '../directory/records';

/** RFC 1982 §3.1: the largest addition that keeps the result greater (2^31 - 1), less one so that skipping 0 stays inside it. */
const MAX_STEP = 0x7fffffff - 1;

/**
 * How far a restore moves every serial: the milliseconds from `createdMs`
 * (when the backup's snapshot was taken) to `nowMs`, at least 1, at most
 * 2^31 - 2 (see the module comment).
 */
export function serialStep(createdMs: number, nowMs: number): number {
  return Math.min(MAX_STEP, Math.max(1, Math.floor(nowMs - createdMs)));
}

/** RFC 1982 §3.1 addition (SERIAL_BITS = 32) of `step` (≤ 2^31 - 2), skipping 0 as the write path does. */
function serialAdd(s: number, step: number): number {
  return (s + step) % 0x100000000 || 1;
}

/** One serial a restore moved on. */
export interface SerialMove {
  zone: string;
  from: number;
  to: number;
}

/**
 * Moves every zone's SOA serial, and the zone-set serial (the catalog
 * zone's), forward by `step` (serialStep), in one transaction of the write
 * path of `services` (the writer's, over the restored store): change-log and
 * journal rows as for any serial bump. Returns the serials moved: every
 * zone's (sorted by name), and the zone-set serial's (`catalog`).
 */
export function advanceSerials(services: Services, step: number): { zones: SerialMove[]; catalog: { from: number; to: number } } {
  if (!Number.isSafeInteger(step) || step < 1 || step > MAX_STEP) throw new RangeError(`a serial step is 1 to ${MAX_STEP}, not ${step}`);
  const { directory, zones } = services;
  const store = directory.store;
  const who = directory.systemIdentity();
  const moved: SerialMove[] = [];
  let catalog = { from: 0, to: 0 };
  directory.write(() => {
    for (const name of zones.zoneNames()) {
      const ndn = zones.names.toNdn(name);
      const apex = ndn === undefined ? undefined : store.getByNdn(ndn);
      const values = apex?.attrs.sOARecord;
      if (!apex || !values?.length) continue; // the catalog zone: no entry, its serial is the zone-set serial
      let soa: Extract<RData, { type: 6 }>;
      try {
        soa = parseRData(RRTYPE.SOA, values[0]) as Extract<RData, { type: 6 }>;
      } catch {
        continue; // not served either (zones.ts zoneFromEntry)
      }
      const to = serialAdd(soa.serial, step);
      // A serial the writer raised stays (zones.ts bumpSerials): no second bump, and a journal row from → to.
      directory.modifySync(who, apex.dn, [{ op: 'replace', type: 'sOARecord', values: [formatRData({ ...soa, serial: to }), ...values.slice(1)] }]);
      moved.push({ zone: name, from: soa.serial, to });
    }
    const from = zoneSetSerial(store);
    bumpZoneSetSerial(store, step);
    catalog = { from, to: zoneSetSerial(store) };
  });
  return { zones: moved, catalog };
}
