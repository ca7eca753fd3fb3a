/**
 * A zone as an RFC 1035 §5 master file, for `dcmx zone export`: $ORIGIN and
 * $TTL lines, the SOA first, then every record with absolute owner names,
 * one per line, as named-checkzone and kzonecheck read them.
 */
import type { Zones } from '../directory/zones';
import { fqdn, formatRR } from '../directory/records';

/** The master file of `zone`, or undefined when it is not a zone we serve. */
export function zoneMasterFile(zones: Zones, zone: string): string | undefined {
  const rrs = zones.zoneRecords(zone);
  if (!rrs) return undefined;
  const soa = rrs[0];
  const lines = [
    `; zone ${fqdn(zone)} exported by dcmx`,
    `$ORIGIN ${fqdn(zone)}`,
    `$TTL ${soa.ttl}`,
    ...rrs.map(formatRR),
  ];
  return lines.join('\n') + '\n';
}
