/**
 * The routing table: each hosted mail domain mapped to a route, generated
 * from the directory's mail-domain entries and versioned by the change
 * number it reflects. It is updated from the change log — only the domains a
 * change names are re-read — or, on a remote transfer unit, from the entry
 * states LDAP Content Sync delivers; never rebuilt by a timer.
 *
 * Routes: `local` (mailboxes here), `relay` (to the domain's routing hosts /
 * smart host), `alias` (to a canonical domain, from associatedDomain),
 * `hold` / `reject` (from the domain status). A domain not in the table goes
 * out over SMTP to its MX (`smtp`), for clients allowed to relay.
 */
import { changedDns, type ChangeRecord } from './changes';
import type { MailDomain } from './mail';
import type { DomainNames } from './mail-source';

export type Route =
  | { kind: 'local' }
  /**
   * `ownHosts`: the hosts are the domain's own mail hosts (its MX records or
   * `mailRoutingHosts`), not a smart host. When one of them turns out to be
   * this appliance by address (the transfer unit asks, server/mta/self.ts),
   * the domain is delivered here: it is ours.
   */
  | { kind: 'relay'; hosts: string[]; ownHosts?: true }
  | { kind: 'alias'; target: string }
  | { kind: 'hold' }
  | { kind: 'reject' }
  | { kind: 'smtp' };

/**
 * The route a hosted domain's entry calls for; `self` is the host name (or
 * names) that mean this deployment: this unit's DCMX_HOSTNAME and, on a
 * remote transfer unit, the host of the appliance that holds the directory
 * (its mail hosts are the deployment's: which unit holds a mailbox is the
 * recipient's placement, server/mta/placement.ts). Names are compared lower
 * case without trailing dot. The status decides hold/reject; an explicit
 * smart host or routing hosts elsewhere make it `relay`; otherwise the
 * domain's own MX record identifies it: pointing here (or absent) it is
 * `local`, pointing elsewhere it is relayed to those hosts (we are a backup
 * MX) unless one of them resolves to our address, which only the transfer
 * unit can tell (`ownHosts`): the table stays a view of the directory alone.
 */
export function routeOf(d: MailDomain, self: string | readonly string[]): Route {
  const ours = typeof self === 'string' ? [self] : self;
  const isOurs = (h: string) => ours.includes(h);
  if (d.status === 'hold') return { kind: 'hold' };
  if (d.status === 'disabled') return { kind: 'reject' };
  if (d.smartHost && !isOurs(d.smartHost)) return { kind: 'relay', hosts: [d.smartHost] };
  if (d.routingHosts.length && !d.routingHosts.some(isOurs)) return { kind: 'relay', hosts: d.routingHosts, ownHosts: true };
  if (d.routingHosts.length === 0 && d.mx.length && !d.mx.some(isOurs)) return { kind: 'relay', hosts: d.mx, ownHosts: true };
  return { kind: 'local' };
}

/** Formats a route for `dcmx routes`. */
export function describeRoute(r: Route): string {
  switch (r.kind) {
    case 'relay':
      return `relay:${r.hosts.join(',')}`;
    case 'alias':
      return `alias:${r.target}`;
    default:
      return r.kind;
  }
}

/** What the change-log path re-reads, synchronously: the appliance's own store (MailDirectory is one). */
export interface DomainReader {
  readonly names: DomainNames;
  /** The hosted mail domain named `name` now, or undefined. */
  domain(name: string): MailDomain | undefined;
  /** The hosted mail domains strictly below the domain named `name` now. */
  domainsBelow(name: string): Iterable<MailDomain>;
}

/**
 * The table itself holds no reader: it is filled from MailDomain values,
 * either re-read from the store for change-log rows (`apply`, the
 * appliance), or handed over whole by a remote unit's Content Sync copy of
 * the mail-domain entries (`build`, `setDomain`, `removeDomain`).
 */
export class RoutingTable {
  private readonly routes = new Map<string, Route>();
  /** Aliases each canonical domain contributed, so a change can withdraw them. */
  private readonly aliasesOf = new Map<string, string[]>();
  /** entryUUID → name of each hosted domain that has one, and back. */
  private readonly byUuid = new Map<string, string>();
  private readonly uuidOf = new Map<string, string>();
  /** The change number the table reflects. */
  version = 0;
  /** Counters: full builds and domains re-read from changes. */
  readonly stats = { builds: 0, domainReads: 0 };
  private readonly listeners: ((touched: string[] | undefined) => void)[] = [];

  /** Called after the table changed: with the domains re-read, or undefined after a full build. */
  onUpdate(l: (touched: string[] | undefined) => void): void {
    this.listeners.push(l);
  }

  /** The names that mean this deployment (routeOf), lower case without trailing dot. */
  private readonly self: readonly string[];

  /**
   * `self`: this unit's host name (DCMX_HOSTNAME), and on a remote transfer
   * unit the directory's host too (MailSource.directoryHost): see routeOf.
   */
  constructor(self: string | readonly string[]) {
    this.self = (typeof self === 'string' ? [self] : self).map((h) => h.toLowerCase().replace(/\.$/, ''));
  }

  /** The route `d` calls for in this table (routeOf with the table's names for this deployment). */
  routeFor(d: MailDomain): Route {
    return routeOf(d, this.self);
  }

  /** Full build from every hosted mail domain (start-up, a change log gap, a Content Sync full refresh); `version` is the change it reflects. */
  build(domains: Iterable<MailDomain>, version: number = this.version): void {
    this.routes.clear();
    this.aliasesOf.clear();
    this.byUuid.clear();
    this.uuidOf.clear();
    this.version = version;
    for (const d of domains) this.put(d);
    this.stats.builds++;
    for (const l of this.listeners) l(undefined);
  }

  private put(d: MailDomain): void {
    this.routes.set(d.name, this.routeFor(d));
    for (const a of d.aliases) if (!this.routes.has(a) || this.routes.get(a)!.kind === 'alias') this.routes.set(a, { kind: 'alias', target: d.name });
    this.aliasesOf.set(d.name, d.aliases);
    if (d.uuid !== undefined) {
      this.byUuid.set(d.uuid, d.name);
      this.uuidOf.set(d.name, d.uuid);
    }
  }

  private remove(name: string): void {
    if (this.routes.get(name)?.kind !== 'alias') this.routes.delete(name);
    for (const a of this.aliasesOf.get(name) ?? []) {
      const r = this.routes.get(a);
      if (r?.kind === 'alias' && r.target === name) this.routes.delete(a);
    }
    this.aliasesOf.delete(name);
    const uuid = this.uuidOf.get(name);
    if (uuid !== undefined) {
      this.uuidOf.delete(name);
      if (this.byUuid.get(uuid) === name) this.byUuid.delete(uuid);
    }
  }

  private updated(touched: string[]): void {
    if (touched.length) for (const l of this.listeners) l(touched);
  }

  /**
   * Puts (or replaces) one hosted domain's route and its aliases. When the
   * same entry (entryUUID) was hosted under another name (a rename), that
   * name leaves the table.
   */
  setDomain(d: MailDomain): void {
    const touched = [d.name];
    const old = d.uuid === undefined ? undefined : this.byUuid.get(d.uuid);
    if (old !== undefined && old !== d.name) {
      this.remove(old);
      touched.push(old);
    }
    this.remove(d.name);
    this.put(d);
    this.updated(touched);
  }

  /** Withdraws a hosted domain, named by its name or its entryUUID (a Content Sync delete may carry the UUID alone); unknown: nothing. */
  removeDomain(nameOrUuid: string): void {
    const name = this.byUuid.get(nameOrUuid) ?? nameOrUuid.toLowerCase().replace(/\.$/, '');
    const r = this.routes.get(name);
    if (!r || r.kind === 'alias') return;
    this.remove(name);
    this.updated([name]);
  }

  /**
   * Re-reads from `reader` the domains the change-log rows name (target and
   * new DN). A rename moves its subtree under one row: the hosted domains
   * below the old name are re-read too (gone) and so are those below the
   * new one (arrived).
   */
  apply(rows: ChangeRecord[], reader: DomainReader): void {
    const touched = new Set<string>();
    for (const r of rows) {
      for (const { dn, ndn } of changedDns(r)) {
        const name = reader.names.fromDn(dn, ndn);
        if (name === undefined) continue;
        touched.add(name);
        if (r.changeType === 'modrdn') for (const d of this.below(name, reader)) touched.add(d);
      }
      this.version = r.changeNumber;
    }
    for (const name of touched) {
      this.remove(name);
      this.stats.domainReads++;
      const d = reader.domain(name);
      if (d) this.put(d);
    }
    this.updated([...touched]);
  }

  /** The hosted domains (not aliases) strictly below `name`: in the table, and in the directory now. */
  private *below(name: string, reader: DomainReader): Generator<string> {
    const tail = '.' + name;
    for (const [d, r] of this.routes) if (r.kind !== 'alias' && d.endsWith(tail)) yield d;
    for (const d of reader.domainsBelow(name)) yield d.name;
  }

  /** The route for a domain (aliases not followed). undefined: not hosted here. */
  lookup(domain: string): Route | undefined {
    return this.routes.get(domain.toLowerCase().replace(/\.$/, ''));
  }

  /** Follows aliases (at most a few hops) to the canonical domain and its route. */
  resolve(domain: string): { domain: string; route: Route } | undefined {
    let name = domain.toLowerCase().replace(/\.$/, '');
    for (let i = 0; i < 5; i++) {
      const r = this.routes.get(name);
      if (!r) return undefined;
      if (r.kind !== 'alias') return { domain: name, route: r };
      name = r.target;
    }
    return undefined;
  }

  /** Every entry, sorted by domain, for `dcmx routes` and the admin API. */
  entries(): [string, Route][] {
    return [...this.routes].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }
}
