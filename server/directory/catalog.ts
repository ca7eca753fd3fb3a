/**
 * The catalog zone (RFC 9432): a zone, served beside the directory's zones
 * under the name DCMX_DNS_CATALOG, that lists every zone served here, so
 * that a secondary configured for the catalog alone (Knot's
 * `catalog-role: interpret`, BIND's `catalog-zones`) picks up a new zone,
 * and drops a removed one, without hand work.
 *
 * It is no directory data: Zones answers for it (zoneOf, node,
 * zoneContents) from what the store holds. Its contents (RFC 9432 §4):
 * - the apex SOA and `NS invalid.` (§4: a catalog is a zone like any other,
 *   and so has an NS RRset, which no one is meant to query);
 * - `version.<catalog> TXT "2"` (§4.2.1, the schema version);
 * - `<id>.zones.<catalog> PTR <zone>.` for every zone (§4.1), `<id>` the
 *   hex SHA-256 of the zone's name (its first 32 digits): unique, and
 *   stable for as long as the zone exists, a hash as §4.1 suggests.
 *
 * Its serial is the store's zone-set serial (meta key `zoneSetSerial`):
 * bumped in the transaction of every write that adds, removes or renames a
 * zone apex (Zones.bumpSerials), by whichever process makes it, and so
 * whether or not that process serves a catalog.
 */
import { createHash } from 'node:crypto';
import type { Store } from '../../storage/store';
import { RRTYPE, type RData, type RR } from './records';

/** The meta key of the zone-set serial. */
export const ZONE_SET_SERIAL_KEY = 'zoneSetSerial';

/** The zone-set serial of a store: 1 before the first change of the set of zones. */
export function zoneSetSerial(store: Store): number {
  const v = Number(store.getMeta(ZONE_SET_SERIAL_KEY));
  return Number.isSafeInteger(v) && v > 0 ? v : 1;
}

/**
 * Moves the zone-set serial on by `by` (RFC 1982 §3.1 addition, 1 ≤ by <
 * 2^31 - 1, skipping 0): by one for a change of the set of zones, by more
 * after a restore (server/backup/restore.ts). Inside the write's transaction.
 */
export function bumpZoneSetSerial(store: Store, by = 1): void {
  store.setMeta(ZONE_SET_SERIAL_KEY, String((zoneSetSerial(store) + by) % 0x100000000 || 1));
}

/** The member label of `zone` under `zones.<catalog>` (RFC 9432 §4.1): lower-case hex, 32 digits. */
export function memberId(zone: string): string {
  return createHash('sha256').update(zone.toLowerCase()).digest('hex').slice(0, 32);
}

/** TTL of the catalog's records: RFC 9432's example uses 0; nothing resolves through a catalog. */
const TTL = 0;

/** The catalog zone of one version of the set of zones. */
export interface CatalogContents {
  soa: RR & { rdata: Extract<RData, { type: 6 }> };
  /** Every record, SOA first (AXFR order). */
  rrs: RR[];
  /** The records by owner name (empty non-terminals with none), for answers. */
  nodes: Map<string, RR[]>;
}

/**
 * The catalog named `name` listing `members` (zone names, lower case) at
 * `serial`. The SOA's values follow RFC 9432's examples: the refresh
 * (an hour) is what a consumer waits without NOTIFY; expire is as long as
 * it may be, so that a consumer never drops the member zones because the
 * appliance is away.
 */
export function catalogContents(name: string, serial: number, members: readonly string[]): CatalogContents {
  const soa = { name, ttl: TTL, rdata: { type: RRTYPE.SOA, mname: 'invalid', rname: 'invalid', serial, refresh: 3600, retry: 600, expire: 2147483646, minimum: 0 } } as CatalogContents['soa'];
  const ns: RR = { name, ttl: TTL, rdata: { type: RRTYPE.NS, target: 'invalid' } };
  const version: RR = { name: `version.${name}`, ttl: TTL, rdata: { type: RRTYPE.TXT, strings: [Buffer.from('2')] } };
  const zonesName = `zones.${name}`;
  const ptrs: RR[] = [...members].sort().map((z) => ({ name: `${memberId(z)}.${zonesName}`, ttl: TTL, rdata: { type: RRTYPE.PTR, target: z } }));
  const nodes = new Map<string, RR[]>([[name, [soa, ns]], [version.name, [version]], [zonesName, []]]);
  for (const p of ptrs) nodes.set(p.name, [p]);
  return { soa, rrs: [soa, ns, version, ...ptrs], nodes };
}
