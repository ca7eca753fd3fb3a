/**
 * A zone as an RFC 1035 §5 master file, for `dcmx zone export`: $ORIGIN and
 * $TTL lines, the SOA first, then every record with absolute owner names,
 * one per line, as named-checkzone and kzonecheck read them. A signed zone
 * is exported signed (signed-zone.ts: NSEC chain and RRSIGs made now), as
 * dnssec-verify and `kzonecheck -d on` check it and a secondary would load it.
 */
import type { Zones } from '../directory/zones';
import { fqdn, formatRR } from '../directory/records';
import { signedZone } from '../dns/signed-zone';

/**
 * The master file of `zone`, or undefined when it is not a zone we serve.
 * Entries whose dc chain is not a DNS name (data written before the write
 * path refused such names) are left out, each named on a comment line
 * (RFC 1035 §5.1 `;`) and in `skipped`.
 */
export function zoneMasterFile(zones: Zones, zone: string, skipped: string[] = []): string | undefined {
  const contents = zones.zoneContents(zone);
  if (!contents) return undefined;
  const signing = zones.signingOf(zone);
  const rrs = signing ? signedZone(contents.rrs, zone, signing.keys, Date.now() / 1000) : contents.rrs;
  const soa = rrs[0];
  const lines = [
    `; zone ${fqdn(zone)} exported by dcmx`,
    `$ORIGIN ${fqdn(zone)}`,
    `$TTL ${soa.ttl}`,
  ];
  for (const s of contents.skipped) {
    // JSON quoting keeps a DN or label with line breaks or control characters on its comment line.
    const note = `skipped ${JSON.stringify(s.dn)}: ${s.problem}`;
    skipped.push(note);
    lines.push(`; ${note}`);
  }
  lines.push(...rrs.map(formatRR));
  return lines.join('\n') + '\n';
}
