/**
 * The routing table: each hosted mail domain mapped to a route, generated
 * from the directory's mail-domain entries and versioned by the change
 * number it reflects. It is updated from the change log — only the domains a
 * change names are re-read — never rebuilt by a timer.
 *
 * Routes: `local` (mailboxes here), `relay` (to the domain's routing hosts /
 * smart host), `alias` (to a canonical domain, from associatedDomain),
 * `hold` / `reject` (from the domain status). A domain not in the table goes
 * out over SMTP to its MX (`smtp`), for clients allowed to relay.
 */
import { changedDns, type ChangeRecord } from './changes';
import type { Directory } from './directory';
import type { MailDirectory, MailDomain } from './mail';

export type Route =
  | { kind: 'local' }
  | { kind: 'relay'; hosts: string[] }
  | { kind: 'alias'; target: string }
  | { kind: 'hold' }
  | { kind: 'reject' }
  | { kind: 'smtp' };

/**
 * The route a hosted domain's entry calls for; `self` is this appliance's
 * host name. The status decides hold/reject; an explicit smart host or
 * routing hosts elsewhere make it `relay`; otherwise the domain's own MX
 * record identifies it: pointing here (or absent) it is `local`, pointing
 * elsewhere it is relayed to those hosts (we are a backup MX).
 */
export function routeOf(d: MailDomain, self: string): Route {
  if (d.status === 'hold') return { kind: 'hold' };
  if (d.status === 'disabled') return { kind: 'reject' };
  if (d.smartHost && d.smartHost !== self) return { kind: 'relay', hosts: [d.smartHost] };
  if (d.routingHosts.length && !d.routingHosts.includes(self)) return { kind: 'relay', hosts: d.routingHosts };
  if (d.routingHosts.length === 0 && d.mx.length && !d.mx.includes(self)) return { kind: 'relay', hosts: d.mx };
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

export class RoutingTable {
  private readonly routes = new Map<string, Route>();
  /** Aliases each canonical domain contributed, so a change can withdraw them. */
  private readonly aliasesOf = new Map<string, string[]>();
  /** The change number the table reflects. */
  version = 0;
  /** Counters: full builds and domains re-read from changes. */
  readonly stats = { builds: 0, domainReads: 0 };
  private readonly listeners: ((touched: string[] | undefined) => void)[] = [];

  /** Called after the table changed: with the domains re-read, or undefined after a full build. */
  onUpdate(l: (touched: string[] | undefined) => void): void {
    this.listeners.push(l);
  }

  constructor(private readonly mail: MailDirectory, private readonly self: string) {}

  /** Full build (start-up, or after a change log gap). */
  build(directory: Directory): void {
    this.routes.clear();
    this.aliasesOf.clear();
    this.version = directory.changeRange().last;
    for (const d of this.mail.domains()) this.put(d);
    this.stats.builds++;
    for (const l of this.listeners) l(undefined);
  }

  private put(d: MailDomain): void {
    this.routes.set(d.name, routeOf(d, this.self));
    for (const a of d.aliases) if (!this.routes.has(a) || this.routes.get(a)!.kind === 'alias') this.routes.set(a, { kind: 'alias', target: d.name });
    this.aliasesOf.set(d.name, d.aliases);
  }

  private remove(name: string): void {
    if (this.routes.get(name)?.kind !== 'alias') this.routes.delete(name);
    for (const a of this.aliasesOf.get(name) ?? []) {
      const r = this.routes.get(a);
      if (r?.kind === 'alias' && r.target === name) this.routes.delete(a);
    }
    this.aliasesOf.delete(name);
  }

  /**
   * Re-reads the domains the changes name (target and new DN). A rename moves
   * its subtree under one change-log row: the hosted domains below the old
   * name are re-read too (gone) and so are those below the new one (arrived).
   */
  apply(rows: ChangeRecord[]): void {
    const touched = new Set<string>();
    for (const r of rows) {
      for (const { dn, ndn } of changedDns(r)) {
        const name = this.mail.names.fromDn(dn, ndn);
        if (name === undefined) continue;
        touched.add(name);
        if (r.changeType === 'modrdn') for (const d of this.below(name)) touched.add(d);
      }
      this.version = r.changeNumber;
    }
    for (const name of touched) {
      this.remove(name);
      this.stats.domainReads++;
      const d = this.mail.domain(name);
      if (d) this.put(d);
    }
    if (touched.size) for (const l of this.listeners) l([...touched]);
  }

  /** The hosted domains (not aliases) strictly below `name`: in the table, and in the directory now. */
  private *below(name: string): Generator<string> {
    const tail = '.' + name;
    for (const [d, r] of this.routes) if (r.kind !== 'alias' && d.endsWith(tail)) yield d;
    for (const d of this.mail.domainsBelow(name)) yield d.name;
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
