/**
 * The MTA-STS policy cache's rows (migration 009): one per recipient domain,
 * the policy as fetched and when it expires. The queue side's store holds
 * it (the appliance's, or a remote unit's queue store).
 */
import type { Statement } from 'better-sqlite3';
import type { Store } from './store';

/** A cached policy as stored (server/mta/mta-sts.ts StsPolicy, with its expiry). */
export interface StsPolicyRow {
  id: string;
  mode: 'enforce' | 'testing' | 'none';
  mx: string[];
  maxAge: number;
  /** ms since the epoch. */
  expires: number;
}

/** Reads and writes the cached policies; each call is its own statement (and commit). */
export class StsPolicyStore {
  private readonly s: Record<'get' | 'put' | 'del', Statement>;

  constructor(store: Store) {
    const db = store.db;
    this.s = {
      get: db.prepare('SELECT id, mode, mx, max_age AS maxAge, expires FROM mta_sts_policies WHERE domain = ?'),
      put: db.prepare('INSERT OR REPLACE INTO mta_sts_policies (domain, id, mode, mx, max_age, expires) VALUES (?, ?, ?, ?, ?, ?)'),
      del: db.prepare('DELETE FROM mta_sts_policies WHERE domain = ?'),
    };
  }

  /** The policy cached for `domain`, expired or not; undefined when none. */
  load(domain: string): StsPolicyRow | undefined {
    const r = this.s.get.get(domain) as (Omit<StsPolicyRow, 'mx'> & { mx: string }) | undefined;
    if (!r || (r.mode !== 'enforce' && r.mode !== 'testing' && r.mode !== 'none')) return undefined;
    return { ...r, mx: r.mx === '' ? [] : r.mx.split('\n') };
  }

  /** Keeps `policy` for `domain` until `policy.expires`, replacing any other. */
  save(domain: string, policy: StsPolicyRow): void {
    this.s.put.run(domain, policy.id, policy.mode, policy.mx.join('\n'), policy.maxAge, policy.expires);
  }

  /** Forgets the policy of `domain`. */
  delete(domain: string): void {
    this.s.del.run(domain);
  }
}
