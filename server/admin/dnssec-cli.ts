/**
 * `dcmx dnssec`: the signed state of the zones (server/directory/dnssec-state.ts)
 * and the DS record an operator gives the registrar.
 *
 *   dcmx dnssec [status] [ZONE]   each zone: signed, withdrawing or unsigned, its key tag(s)
 *   dcmx dnssec ds ZONE           the zone's DS (SHA-256, RFC 4509) in presentation form,
 *                                 as dnssec-dsfromkey prints it
 */
import type { Config } from '../config';
import type { Services } from '../directory/open';
import { ALGORITHM_ECDSAP256SHA256, dsOf } from '../directory/dnssec-keys';
import { signedStateOf } from '../directory/dnssec-state';
import { formatRData } from '../directory/records';
import { UsageError } from './cli-args';

export const DNSSEC_USAGE = `  dcmx dnssec [status] [ZONE]
  dcmx dnssec ds ZONE`;

/** A zone name as given (trailing dot optional, any case) in the zone view's form. */
function zoneName(s: string): string {
  return s.replace(/\.$/, '').toLowerCase();
}

/**
 * Runs `dcmx dnssec CMD ARGS` over an open store; resolves with the exit
 * status (1 for a zone that is not served, or, for `ds`, not signed).
 */
export function runDnssecCommand(cmd: string | undefined, args: string[], services: Services, config: Config): number {
  const { directory, zones } = services;
  if (cmd === 'ds') {
    const zone = args.shift();
    if (!zone || args.length) throw new UsageError('dnssec ds takes one ZONE');
    const name = zoneName(zone);
    if (zones.zoneOf(name)?.name !== name) {
      console.error(`dcmx: no zone ${zone}`);
      return 1;
    }
    const s = zones.signingOf(name);
    if (!s) {
      console.error(`dcmx: ${name}. is not signed (DCMX_DNSSEC=${config.dns.dnssec.enabled ? 'on: it gets a key at the appliance\'s next pass' : 'off'})`);
      return 1;
    }
    if (s.withdrawing) {
      console.error(`dcmx: the signing of ${name}. is being withdrawn (DCMX_DNSSEC=off): its parent should hold no DS; it publishes the delete CDS`);
      return 1;
    }
    for (const k of s.keys) console.log(`${name}. IN DS ${formatRData(dsOf(name, k.dnskey))}`);
    return 0;
  }
  if (cmd !== undefined && cmd !== 'status') args.unshift(cmd);
  const only = args.shift();
  if (args.length) throw new UsageError(`unexpected argument ${args[0]}`);
  const names = only === undefined ? zones.apexNames() : [zoneName(only)];
  for (const name of names) {
    const ndn = zones.names.toNdn(name);
    const e = ndn === undefined ? undefined : directory.getByNdn(ndn);
    if (!e?.attrs.sOARecord?.length) {
      console.error(`dcmx: no zone ${only}`);
      return 1;
    }
    const { state, since } = signedStateOf(e);
    const keys = zones.signingOf(name)?.keys ?? [];
    const tags = keys.map((k) => `key ${k.keyTag} alg ${k.dnskey.algorithm === ALGORITHM_ECDSAP256SHA256 ? 'ECDSAP256SHA256' : k.dnskey.algorithm}`);
    let note = '';
    if (state === 'withdrawing' && since !== undefined) {
      note = `\tsince ${new Date(since).toISOString()}, unsigned from ${new Date(since + config.dns.dnssec.withdrawGraceMs).toISOString()}`;
    }
    console.log(`${name}.\t${state}${tags.length ? '\t' + tags.join(', ') : ''}${note}`);
  }
  return 0;
}
