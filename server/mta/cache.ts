/**
 * The transfer unit's directory cache: the most recently used domain and
 * recipient records, and negative answers, in a bounded LRU. The transfer
 * unit reads domains and recipients only through it; it loads a miss from
 * its MailSource (server/directory/mail-source.ts), which may wait on the
 * network. A hit is answered from memory, as a resolved promise.
 *
 * It stays in step with the directory by dropping exactly the keys a change
 * affects — the keys cached from the changed entry (old addresses, a domain
 * and its aliases) and the addresses and domain names the change introduces
 * (which may be cached as negative) — from either feed:
 * - change-log rows (`invalidate`: the appliance's ChangeFollower);
 * - entry states (`applyEntryChanges`: a remote unit's LDAP Content Sync,
 *   RFC 4533, where a delete may name the entry by its entryUUID alone);
 * and a gap it cannot read flushes everything (`flush`).
 *
 * A load that was under way when a change touched its key or the entry it
 * returns is answered but not kept: its answer may predate the change.
 */
import { LRUCache } from 'lru-cache';
import { changedDns, valuesAdded, type ChangeRecord } from '../directory/changes';
import { normalizeAddress, type MailDomain, type Recipient } from '../directory/mail';
import type { EntryChange, MailSource } from '../directory/mail-source';

/** What the cache counts (for tests, the admin API and benchmarks). */
export interface CacheStats {
  hits: number;
  misses: number;
  negativeHits: number;
  invalidations: number;
  directoryReads: number;
  flushes: number;
}

type Value = MailDomain | Recipient;
type Cached = { value: Value | null };

/** Attributes whose values name cache keys (lower-case canonical names): domain names, and addresses. */
const DOMAIN_ATTRIBUTES = new Set(['associateddomain']);
const ADDRESS_ATTRIBUTES = new Set(['mail', 'mailalternateaddress', 'maildomaincatchalladdress']);

/** The ids an entry's cached keys are filed under: its normalised DN, and '#' + its entryUUID. */
function entryIds(v: Value): string[] {
  return v.uuid === undefined ? [v.ndn] : [v.ndn, '#' + v.uuid];
}

function domainKey(name: string): string {
  return `d:${name.toLowerCase().replace(/\.$/, '')}`;
}

export class DirectoryCache {
  private readonly lru: LRUCache<string, Cached>;
  /** Entry id (entryIds) → the keys cached from that entry. */
  private readonly byEntry = new Map<string, Set<string>>();
  /** Loads under way, by key: concurrent misses share one read. */
  private readonly loading = new Map<string, Promise<Value | undefined>>();
  /** Loads under way, shared or not (one dropped from `loading` still runs). */
  private pendingLoads = 0;
  /** Bumped by every change applied; a load remembers the value at its start. */
  private epoch = 0;
  /** While loads are under way: the epoch at which each key or entry id was last touched by a change. */
  private readonly touched = new Map<string, number>();
  /** The epoch of the last change that touched keys it cannot name (a flush, a subtree rename). */
  private touchedAll = 0;
  readonly stats: CacheStats = { hits: 0, misses: 0, negativeHits: 0, invalidations: 0, directoryReads: 0, flushes: 0 };

  constructor(private readonly source: MailSource, opts: { max: number }) {
    this.lru = new LRUCache<string, Cached>({
      max: opts.max,
      dispose: (v, key) => this.unlink(key, v.value),
    });
  }

  private get<T extends Value>(key: string, load: () => Promise<T | undefined>): Promise<T | undefined> {
    const hit = this.lru.get(key);
    if (hit) {
      if (hit.value === null) {
        this.stats.negativeHits++;
        return Promise.resolve(undefined);
      }
      this.stats.hits++;
      return Promise.resolve(hit.value as T);
    }
    this.stats.misses++;
    const pending = this.loading.get(key);
    if (pending) return pending as Promise<T | undefined>;
    this.stats.directoryReads++;
    const start = this.epoch;
    this.pendingLoads++;
    const done = () => {
      if (this.loading.get(key) === p) this.loading.delete(key);
      if (--this.pendingLoads === 0) this.touched.clear();
    };
    const p: Promise<T | undefined> = load().then(
      (v) => {
        if (this.unchangedSince(start, key, v)) this.store(key, v);
        done();
        return v;
      },
      (err) => {
        done();
        throw err;
      },
    );
    this.loading.set(key, p);
    return p;
  }

  /** Whether no change since epoch `start` touched `key` or the entry `v` came from. */
  private unchangedSince(start: number, key: string, v: Value | undefined): boolean {
    if (this.touchedAll > start || (this.touched.get(key) ?? 0) > start) return false;
    return !v || entryIds(v).every((id) => (this.touched.get(id) ?? 0) <= start);
  }

  private store(key: string, v: Value | undefined): void {
    this.lru.set(key, { value: v ?? null });
    if (!v) return;
    for (const id of entryIds(v)) {
      let keys = this.byEntry.get(id);
      if (!keys) this.byEntry.set(id, (keys = new Set()));
      keys.add(key);
    }
  }

  private unlink(key: string, v: Value | null): void {
    if (!v) return;
    for (const id of entryIds(v)) {
      const keys = this.byEntry.get(id);
      if (!keys) continue;
      keys.delete(key);
      if (keys.size === 0) this.byEntry.delete(id);
    }
  }

  /** The hosted mail domain `name`, or undefined (cached either way). */
  domain(name: string): Promise<MailDomain | undefined> {
    const key = domainKey(name);
    return this.get(key, () => this.source.domain(key.slice(2)));
  }

  /** The recipient `address` of hosted domain `domain`, or undefined (cached either way). */
  recipient(domain: MailDomain, address: string): Promise<Recipient | undefined> {
    const a = normalizeAddress(address);
    return this.get(`r:${a}`, () => this.source.recipient(domain, a));
  }

  /** Marks `id` (a key or an entry id) changed, for the loads under way. */
  private touch(id: string): void {
    if (this.pendingLoads) this.touched.set(id, this.epoch);
  }

  private drop(key: string): void {
    this.touch(key);
    this.loading.delete(key);
    if (this.lru.delete(key)) this.stats.invalidations++;
  }

  /** Drops the keys cached from the entry `id` (entryIds); returns the values they held. */
  private dropEntry(id: string): Value[] {
    this.touch(id);
    const values: Value[] = [];
    for (const key of [...(this.byEntry.get(id) ?? [])]) {
      const v = this.lru.peek(key)?.value;
      if (v) values.push(v);
      this.drop(key);
    }
    return values;
  }

  /** Drops the keys the values of attribute `type` may be cached under (negative answers included). */
  private dropValues(type: string, values: string[]): void {
    const attr = type.toLowerCase();
    if (DOMAIN_ATTRIBUTES.has(attr)) for (const v of values) this.drop(domainKey(v));
    else if (ADDRESS_ATTRIBUTES.has(attr)) for (const v of values) this.drop(`r:${normalizeAddress(v)}`);
  }

  /** Drops what was cached from the entry at `dn` and its domain name (when it spells one); returns that name. */
  private dropAt(dn: string, ndn: string): string | undefined {
    this.dropEntry(ndn);
    const name = this.source.names.fromDn(dn, ndn);
    if (name !== undefined) this.drop(domainKey(name));
    return name;
  }

  /** Invalidates the keys the change-log rows affect (the appliance's feed). */
  invalidate(rows: ChangeRecord[]): void {
    this.epoch++;
    for (const r of rows) {
      for (const { dn, ndn } of changedDns(r)) {
        const name = this.dropAt(dn, ndn);
        // A rename moves its subtree under this one row: what was cached below the old
        // and the new DN (answers, positive or negative) is stale too.
        if (r.changeType === 'modrdn') this.dropBelow(ndn, name);
      }
      // Values the change introduces: they may be cached as negative answers.
      for (const [type, values] of valuesAdded(r)) this.dropValues(type, values);
    }
  }

  /**
   * Invalidates the keys the entry states affect (a remote unit's Content
   * Sync feed, RFC 4533): what was cached from each entry (found by its
   * entryUUID, or its DN), its domain name, and the addresses and domain
   * names of its new state (they may be cached as negative). An entry that
   * moved (its cached DN, or `previousDn`, differs from the new one) takes
   * what was cached below its old and its new DN with it. `present` changes
   * nothing.
   */
  applyEntryChanges(changes: EntryChange[]): void {
    this.epoch++;
    for (const c of changes) {
      if (c.kind === 'present') continue;
      const before = this.dropEntry('#' + c.uuid);
      const moved = new Map<string, string>();
      if (c.previousDn !== undefined && c.previousNdn !== undefined) moved.set(c.previousNdn, c.previousDn);
      for (const v of before) if (v.ndn !== c.ndn) moved.set(v.ndn, v.dn);
      if (c.dn !== undefined && c.ndn !== undefined) {
        moved.delete(c.ndn);
        const name = this.dropAt(c.dn, c.ndn);
        if (moved.size) this.dropBelow(c.ndn, name);
      }
      for (const [ndn, dn] of moved) this.dropBelow(ndn, this.dropAt(dn, ndn));
      for (const [type, values] of Object.entries(c.attrs ?? {})) this.dropValues(type, values);
    }
  }

  /** Drops the keys cached from entries below `ndn`, and the domains below `name`. */
  private dropBelow(ndn: string, name: string | undefined): void {
    this.touchedAll = this.epoch;
    const tail = ',' + ndn;
    for (const [entry, keys] of [...this.byEntry]) if (entry.endsWith(tail)) for (const key of [...keys]) this.drop(key);
    if (name === undefined) return;
    const below = '.' + name;
    for (const key of [...this.lru.keys()]) if (key.startsWith('d:') && key.endsWith(below)) this.drop(key);
  }

  /** Forgets everything (a change log gap; a Content Sync refresh required). */
  flush(): void {
    this.epoch++;
    this.touchedAll = this.epoch;
    this.lru.clear();
    this.byEntry.clear();
    this.loading.clear();
    this.stats.flushes++;
  }

  /** Number of cached records. */
  get size(): number {
    return this.lru.size;
  }
}
