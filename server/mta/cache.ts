/**
 * The transfer unit's directory cache: the most recently used domain and
 * recipient records, and negative answers, in a bounded LRU. The transfer
 * unit reads the directory only through it.
 *
 * It stays in step through the change log (the transfer unit's
 * ChangeFollower calls `invalidate` and `flush`): each change
 * invalidates exactly the keys it affects — the keys cached from the changed
 * entry (old addresses, a domain and its aliases) and the addresses and
 * domain names the change introduces (which may be cached as negative) —
 * and a gap it cannot read flushes everything.
 */
import { LRUCache } from 'lru-cache';
import { changedDns, valuesAdded, type ChangeRecord } from '../directory/changes';
import { normalizeAddress, type MailDirectory, type MailDomain, type Recipient } from '../directory/mail';

/** What the cache counts (for tests, the admin API and benchmarks). */
export interface CacheStats {
  hits: number;
  misses: number;
  negativeHits: number;
  invalidations: number;
  directoryReads: number;
  flushes: number;
}

type Cached = { value: MailDomain | Recipient | null };

/** Attributes whose values name cache keys (lower-case canonical names): domain names, and addresses. */
const DOMAIN_ATTRIBUTES = new Set(['associateddomain']);
const ADDRESS_ATTRIBUTES = new Set(['mail', 'mailalternateaddress', 'maildomaincatchalladdress']);

export class DirectoryCache {
  private readonly lru: LRUCache<string, Cached>;
  /** ndn of a directory entry → the keys cached from it. */
  private readonly byEntry = new Map<string, Set<string>>();
  readonly stats: CacheStats = { hits: 0, misses: 0, negativeHits: 0, invalidations: 0, directoryReads: 0, flushes: 0 };

  constructor(private readonly mail: MailDirectory, opts: { max: number }) {
    this.lru = new LRUCache<string, Cached>({
      max: opts.max,
      dispose: (v, key) => this.unlink(key, v.value),
    });
  }

  private get<T extends MailDomain | Recipient>(key: string, load: () => T | undefined, entryNdn: (v: T) => string[]): T | undefined {
    const hit = this.lru.get(key);
    if (hit) {
      if (hit.value === null) {
        this.stats.negativeHits++;
        return undefined;
      }
      this.stats.hits++;
      return hit.value as T;
    }
    this.stats.misses++;
    this.stats.directoryReads++;
    const v = load();
    this.lru.set(key, { value: v ?? null });
    if (v) {
      for (const ndn of entryNdn(v)) {
        let keys = this.byEntry.get(ndn);
        if (!keys) this.byEntry.set(ndn, (keys = new Set()));
        keys.add(key);
      }
    }
    return v;
  }

  private unlink(key: string, v: MailDomain | Recipient | null): void {
    if (!v) return;
    const keys = this.byEntry.get(v.ndn);
    if (keys) {
      keys.delete(key);
      if (keys.size === 0) this.byEntry.delete(v.ndn);
    }
  }

  /** The hosted mail domain `name`, or undefined (cached either way). */
  domain(name: string): MailDomain | undefined {
    const n = name.toLowerCase().replace(/\.$/, '');
    return this.get(`d:${n}`, () => this.mail.domain(n), (d) => [d.ndn]);
  }

  /** The recipient `address` of hosted domain `domain`, or undefined (cached either way). */
  recipient(domain: MailDomain, address: string): Recipient | undefined {
    const a = normalizeAddress(address);
    return this.get(`r:${a}`, () => this.mail.recipient(domain, a), (r) => [r.ndn]);
  }

  private drop(key: string): void {
    if (this.lru.delete(key)) this.stats.invalidations++;
  }

  /** Invalidates the keys the changes of the feed affect. */
  invalidate(rows: ChangeRecord[]): void {
    for (const r of rows) {
      for (const { dn, ndn } of changedDns(r)) {
        for (const key of [...(this.byEntry.get(ndn) ?? [])]) this.drop(key);
        const name = this.mail.names.fromDn(dn, ndn);
        if (name !== undefined) this.drop(`d:${name}`);
        // A rename moves its subtree under this one row: what was cached below the old
        // and the new DN (answers, positive or negative) is stale too.
        if (r.changeType === 'modrdn') this.dropBelow(ndn, name);
      }
      // Values the change introduces: they may be cached as negative answers.
      for (const [type, values] of valuesAdded(r)) {
        const attr = type.toLowerCase();
        if (DOMAIN_ATTRIBUTES.has(attr)) for (const v of values) this.drop(`d:${v.toLowerCase().replace(/\.$/, '')}`);
        else if (ADDRESS_ATTRIBUTES.has(attr)) for (const v of values) this.drop(`r:${normalizeAddress(v)}`);
      }
    }
  }

  /** Drops the keys cached from entries below `ndn`, and the domains below `name`. */
  private dropBelow(ndn: string, name: string | undefined): void {
    const tail = ',' + ndn;
    for (const [entry, keys] of [...this.byEntry]) if (entry.endsWith(tail)) for (const key of [...keys]) this.drop(key);
    if (name === undefined) return;
    const below = '.' + name;
    for (const key of [...this.lru.keys()]) if (key.startsWith('d:') && key.endsWith(below)) this.drop(key);
  }

  /** Forgets everything (a change log gap). */
  flush(): void {
    this.lru.clear();
    this.byEntry.clear();
    this.stats.flushes++;
  }

  /** Number of cached records. */
  get size(): number {
    return this.lru.size;
  }
}
