/**
 * What a batch of change-log rows means for DNS data: which names changed,
 * and how far the change reaches. The views that follow the change log for
 * DNS (compiled zones, the answer cache) drop or rebuild only that.
 *
 * A name's node is made from its entry (zones.ts): its record attributes,
 * and, at an apex, the SOA, the zone's default TTL (dNSTTL) and the signing
 * state (the key, its withdrawal). Some of these reach past the entry:
 * - an apex added or removed re-homes every name at and below it (zoneOf);
 * - a cut added or removed (nSRecord) makes the names below it referrals;
 * - an apex's dNSTTL is the default TTL of every record of its zone;
 * - the signing state makes the DNSKEY, every signature and the parent's DS.
 * A serial bump is a replace of the apex's sOARecord (zones.ts bumpSerials):
 * it changes the SOA and nothing else, so answers that do not carry the SOA
 * stay good.
 */
import type { ChangeRecord } from '../../storage/store';
import { changedDns } from './changes';
import { KEY_ATTRIBUTE, WITHDRAWAL_ATTRIBUTE } from './dnssec-keys';
import { RECORD_ATTRIBUTES } from './records';
import type { DnsNames } from './zones';

/** One batch of changes to DNS data, as the followers of the change log see it (dns-contract.md). */
export interface DnsChange {
  /**
   * Lower-case DNS names (no trailing dot) of entries added, deleted, or
   * modified in what DNS reads of them, in the followed rows, whose DN
   * spells a DNS name.
   */
  names: ReadonlySet<string>;
  /**
   * Names (among `names`) whose sOARecord was replaced by new values: a
   * serial bump or an edited SOA of an apex, or a modify that made the
   * entry an apex (then the names below it change zone too).
   */
  soa: ReadonlySet<string>;
  /**
   * Names (among `names`) whose change can alter answers anywhere in the
   * zone at or above them: an entry added with SOA or NS, an entry
   * deleted, an SOA removed, NS, dNSTTL or signing state modified.
   */
  zoneWide: ReadonlySet<string>;
  /**
   * Names (among `names`, old and new) of entries renamed (modrdn): every
   * name below them moved with them.
   */
  renamed: ReadonlySet<string>;
  /** true when the log had a gap (or anything the follower cannot attribute to names): everything may have changed. */
  all: boolean;
}

/** The change that says "everything": after a gap in the log. */
export const ALL_DNS_CHANGED: DnsChange = Object.freeze({
  names: new Set<string>(), soa: new Set<string>(), zoneWide: new Set<string>(), renamed: new Set<string>(), all: true,
});

/** Attributes a node, its zone or its signing are made from (lower case); a modify of none of them changes no answer. */
const DNS_ATTRIBUTES = new Set([...Object.keys(RECORD_ATTRIBUTES), 'dnsttl', KEY_ATTRIBUTE.toLowerCase(), WITHDRAWAL_ATTRIBUTE.toLowerCase()]);
/** Attributes whose change reaches the whole zone at or above the entry (see the module comment). */
const ZONE_WIDE_ATTRIBUTES = new Set(['nsrecord', 'dnsttl', KEY_ATTRIBUTE.toLowerCase(), WITHDRAWAL_ATTRIBUTE.toLowerCase()]);

/**
 * What the rows `rows` change in DNS data (names from DNs with `names`), and
 * the change number of the last row that changed any; undefined when none did.
 */
export function dnsChangeOf(rows: readonly ChangeRecord[], names: DnsNames): { change: DnsChange; last: number } | undefined {
  const touched = new Set<string>();
  const soa = new Set<string>();
  const zoneWide = new Set<string>();
  const renamed = new Set<string>();
  let last: number | undefined;
  const touch = (name: string, r: ChangeRecord) => {
    touched.add(name);
    last = r.changeNumber;
  };
  for (const r of rows) {
    if (r.changeType === 'modrdn') {
      for (const d of changedDns(r)) {
        const n = names.fromDn(d.dn, d.ndn);
        if (n === undefined) continue;
        touch(n, r);
        renamed.add(n);
        zoneWide.add(n);
      }
      continue;
    }
    const name = names.fromDn(r.targetDN, r.targetNdn);
    if (name === undefined) continue;
    switch (r.changeType) {
      case 'add': {
        touch(name, r);
        const has = (a: string) => Object.entries(r.attributes).some(([k, v]) => k.toLowerCase() === a && v.length > 0);
        if (has('soarecord') || has('nsrecord')) zoneWide.add(name);
        break;
      }
      case 'delete':
        // The entry may have been an apex or a cut; the log does not say. A deleted entry is a leaf.
        touch(name, r);
        zoneWide.add(name);
        break;
      case 'modify':
        for (const m of r.modifications) {
          const type = m.type.toLowerCase();
          if (!DNS_ATTRIBUTES.has(type)) continue;
          touch(name, r);
          if (ZONE_WIDE_ATTRIBUTES.has(type)) zoneWide.add(name);
          else if (type === 'soarecord') {
            if (m.op === 'delete' || m.values.length === 0) zoneWide.add(name); // no longer an apex
            else soa.add(name);
          }
        }
        break;
    }
  }
  return last === undefined ? undefined : { change: { names: touched, soa, zoneWide, renamed, all: false }, last };
}
