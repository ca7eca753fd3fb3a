/**
 * Converting change-log rows written before the feed was data (migration
 * 006): their modifications were stored as LDIF and they named no entryUUID.
 * The LDIF is parsed back (schema/ldif.ts) into the feed's form, so nothing
 * is lost; the entry's UUID is recovered by walking the log back from the
 * entries as they are now (renames and re-adds followed). Where that entry
 * was deleted, its UUID is gone with it and the row keeps none (null).
 */
import { parseLdifText, type LdifValue } from '../../schema/ldif';
import type { AttrMap, DataBody, LegacyChangeRow, Store } from '../../storage/store';
import { entryUuidOf, valueFromBytes } from './entry';

const stored = (v: LdifValue): string => (typeof v === 'string' ? v : valueFromBytes(v));

/** The data of a legacy add or modify row; undefined when its LDIF does not parse. */
function legacyBody(r: LegacyChangeRow): DataBody | undefined {
  try {
    if (r.changeType === 'add') {
      const [rec] = parseLdifText(`dn: cn=x\nchangetype: add\n${r.ldif}`);
      if (rec?.kind !== 'add') return undefined;
      const attributes: AttrMap = {};
      for (const [k, vs] of rec.attrs) attributes[k] = vs.map(stored);
      return { changeType: 'add', attributes };
    }
    if (r.changeType === 'modify') {
      const [rec] = parseLdifText(`dn: cn=x\nchangetype: modify\n${r.ldif}`);
      if (rec?.kind !== 'modify') return undefined;
      return { changeType: 'modify', modifications: rec.changes.map((c) => ({ op: c.op, type: c.attr, values: c.values.map(stored) })) };
    }
  } catch {
    return undefined;
  }
  return undefined;
}

/**
 * Which entry a DN named at some point of the log, walking back from now:
 * `at` answers for the point reached, `back` steps over one change (newest
 * first) and tells the UUID of the entry it concerned.
 */
class UuidHistory {
  /** Names whose entry at the point reached is not found by looking now: ndn at that point → UUID, or null (none, or unknown). */
  private readonly then = new Map<string, string | null>();
  /** Renames stepped over (they happened after the point reached), newest first: [ndn before, ndn after]. */
  private readonly renames: [string, string][] = [];

  constructor(private readonly now: (ndn: string) => string | null) {}

  at(ndn: string): string | null {
    const known = this.then.get(ndn);
    if (known !== undefined || this.then.has(ndn)) return known ?? null;
    let name = ndn;
    for (let i = this.renames.length - 1; i >= 0; i--) {
      const [from, to] = this.renames[i];
      if (name === from) name = to;
      else if (name.endsWith(',' + from)) name = name.slice(0, name.length - from.length) + to;
    }
    return this.now(name);
  }

  back(r: LegacyChangeRow): string | null {
    switch (r.changeType) {
      case 'modify':
        return this.at(r.targetNdn);
      case 'add': {
        const uuid = this.at(r.targetNdn);
        this.then.set(r.targetNdn, null); // before its add, the name held nothing
        return uuid;
      }
      case 'delete':
        this.then.set(r.targetNdn, null); // the deleted entry's UUID went with it
        return null;
      case 'modrdn': {
        const to = r.newNdn ?? r.targetNdn;
        const from = r.targetNdn;
        const uuid = this.at(to);
        for (const [k, v] of [...this.then]) {
          if (k === to || k.endsWith(',' + to)) {
            this.then.delete(k);
            this.then.set(k.slice(0, k.length - to.length) + from, v);
          }
        }
        this.then.set(from, uuid);
        this.renames.push([from, to]);
        return uuid;
      }
    }
  }
}

/**
 * Converts every change-log row still holding LDIF (written before migration
 * 006) to the feed's form, in one transaction. Cheap when there is none.
 * Returns how many rows were converted.
 */
export function upgradeLegacyChanges(store: Store): number {
  if (!store.hasLegacyChanges()) return 0;
  return store.transaction(() => {
    const history = new UuidHistory((ndn) => {
      const e = store.getByNdn(ndn);
      return e ? entryUuidOf(e.attrs) : null;
    });
    let n = 0;
    for (const r of store.legacyChanges()) {
      const uuid = history.back(r);
      if (r.changeType === 'add' || r.changeType === 'modify') {
        const body = legacyBody(r);
        if (!body) continue; // not LDIF we wrote: left as it is, read as a change without data
        store.convertLegacyChange(r.changeNumber, uuid, body);
      } else store.convertLegacyChange(r.changeNumber, uuid);
      n++;
    }
    return n;
  });
}
