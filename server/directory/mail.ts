/**
 * Who is who for mail (domain logic, read side):
 * - a hosted mail domain is a DC-tree domain entry with the `mailDomain`
 *   class; its status comes from `mailDomainStatus`, else
 *   `inetDomainStatus` (absent = active); `associatedDomain` values other
 *   than its own name are aliases of it;
 * - a recipient is an entry below the domain whose `mail` or
 *   `mailAlternateAddress` equals the address (the domain part compared
 *   case-insensitively; the local part too, as Postfix and Sun do for
 *   directory lookups); its `mailHost` names the host holding its mailbox
 *   (server/mta/placement.ts).
 * mailDomainOf and recipientOf read these from any copy of an entry (the
 * local store's, or an LDAP client's); MailDirectory finds them in the store.
 */
import { domainToASCII } from 'node:url';
import type { StoredEntry } from '../../storage/store';
import type { Directory } from './directory';
import type { DnsNames } from './zones';
import type { Identity } from './access';
import { InvalidCredentialsError } from './errors';
import { entryUuidOf } from './entry';
import { parseDn } from '../../schema/dn';

/** Domain status as routing sees it. */
export type DomainStatus = 'active' | 'hold' | 'disabled';

/** A hosted mail domain. */
export interface MailDomain {
  /** Lower-case name, no trailing dot. */
  name: string;
  dn: string;
  ndn: string;
  status: DomainStatus;
  /** mailRoutingHosts: hosts responsible for the domain's mail. */
  routingHosts: string[];
  /** mailRoutingSmartHost: where mail for the domain is relayed. */
  smartHost: string | undefined;
  /** mailDomainCatchallAddress: the address that takes mail for unknown local parts. */
  catchall: string | undefined;
  /** The MX targets of the domain's own DNS record (mXRecord), lowest preference first. */
  mx: string[];
  /** Other names of this domain (associatedDomain). */
  aliases: string[];
  /** The entry's entryUUID (RFC 4530), when it has one: how a delete sent as a UUID alone is matched. */
  uuid?: string;
}

/** A local recipient. */
export interface Recipient {
  /** The primary address (`mail`), which names the mailbox. */
  address: string;
  dn: string;
  ndn: string;
  /** Every address the entry answers to, lower case. */
  addresses: string[];
  /** The entry's entryUUID (RFC 4530), when it has one. */
  uuid?: string;
  /**
   * mailHost (Sun messaging schema): the host holding the mailbox, lower
   * case without trailing dot; absent, the mailbox belongs to the appliance
   * that holds the directory (server/mta/placement.ts).
   */
  mailHost?: string;
}

/** A directory entry as the mail read side needs it: its DN, normalised DN, and attributes by canonical name. */
export interface MailEntry {
  dn: string;
  ndn: string;
  attrs: Record<string, string[]>;
}

/**
 * Splits an address at its last '@'; the domain lower-cased without trailing
 * dot. A quoted local part is unquoted (RFC 5321 §4.1.2: "alice"@x and
 * alice@x are the same mailbox), so what it hides is judged in the clear.
 */
export function splitAddress(address: string): { local: string; domain: string } | undefined {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return undefined;
  let local = address.slice(0, at);
  if (local.length >= 2 && local.startsWith('"') && local.endsWith('"')) local = local.slice(1, -1).replace(/\\(.)/g, '$1');
  // Domains are compared in A-label form (RFC 5890): smtp-server hands over U-labels.
  const raw = address.slice(at + 1).toLowerCase().replace(/\.$/, '');
  const domain = /[^\x00-\x7f]/.test(raw) ? domainToASCII(raw) || raw : raw;
  return { local, domain };
}

/** MX targets from mXRecord values ('10 mx.example.org.'), by preference; malformed values are skipped. */
function mxTargets(values: string[]): string[] {
  return values
    .map((v) => /^\s*(\d+)\s+(\S+?)\.?\s*$/.exec(v))
    .filter((m): m is RegExpExecArray => m !== null)
    .sort((a, b) => Number(a[1]) - Number(b[1]))
    .map((m) => m[2].toLowerCase());
}

/** Normal form of an address for lookups and cache keys. */
export function normalizeAddress(address: string): string {
  return address.trim().toLowerCase();
}

function statusOf(attrs: Record<string, string[]>): DomainStatus {
  const v = (attrs.mailDomainStatus?.[0] ?? attrs.inetDomainStatus?.[0] ?? 'active').trim().toLowerCase();
  if (v === 'active') return 'active';
  if (v === 'hold') return 'hold';
  return 'disabled'; // inactive, deleted, removed, disabled: mail refused
}

function isMailDomain(attrs: Record<string, string[]>): boolean {
  return (attrs.objectClass ?? []).some((c) => c.toLowerCase() === 'maildomain');
}

/**
 * The hosted mail domain an entry is: one with the `mailDomain` class whose
 * DN is a pure dc chain below the suffix (`names`); else undefined. Pure:
 * the local store and an LDAP client's copy of the entry give the same value.
 */
export function mailDomainOf(names: { fromDn(dn: string, ndn: string): string | undefined }, e: MailEntry): MailDomain | undefined {
  if (!isMailDomain(e.attrs)) return undefined;
  const name = names.fromDn(e.dn, e.ndn);
  if (name === undefined) return undefined;
  const aliases = (e.attrs.associatedDomain ?? []).map((a) => a.toLowerCase().replace(/\.$/, '')).filter((a) => a !== name);
  const d: MailDomain = {
    name,
    dn: e.dn,
    ndn: e.ndn,
    status: statusOf(e.attrs),
    routingHosts: (e.attrs.mailRoutingHosts ?? []).map((h) => h.toLowerCase()),
    smartHost: e.attrs.mailRoutingSmartHost?.[0]?.toLowerCase(),
    catchall: e.attrs.mailDomainCatchallAddress?.[0],
    mx: mxTargets(e.attrs.mXRecord ?? []),
    aliases: [...new Set(aliases)],
  };
  const uuid = entryUuidOf(e.attrs);
  if (uuid !== null) d.uuid = uuid;
  return d;
}

/** Every address an entry answers to (`mail`, `mailAlternateAddress`), normalised. */
function addressesOf(attrs: Record<string, string[]>): string[] {
  return [...(attrs.mail ?? []), ...(attrs.mailAlternateAddress ?? [])].map(normalizeAddress);
}

/**
 * The recipient an entry is, found under `address` (the primary address is
 * its first `mail`, else `address`). Pure, as mailDomainOf.
 */
export function recipientOf(e: MailEntry, address: string): Recipient {
  const r: Recipient = { address: normalizeAddress(e.attrs.mail?.[0] ?? address), dn: e.dn, ndn: e.ndn, addresses: addressesOf(e.attrs) };
  const uuid = entryUuidOf(e.attrs);
  if (uuid !== null) r.uuid = uuid;
  const host = e.attrs.mailHost?.[0]?.trim().toLowerCase().replace(/\.$/, '');
  if (host) r.mailHost = host;
  return r;
}

/** Reads mail domains and recipients from the directory (no caching here; see server/mta/cache.ts). */
export class MailDirectory {
  constructor(readonly directory: Directory, readonly names: DnsNames) {}

  /** The mail domain entry for `e`, if it is one. */
  domainFromEntry(e: StoredEntry): MailDomain | undefined {
    return mailDomainOf(this.names, e);
  }

  /** The hosted mail domain named `name` (not via aliases). */
  domain(name: string): MailDomain | undefined {
    const ndn = this.names.toNdn(name.toLowerCase().replace(/\.$/, ''));
    const e = ndn === undefined ? undefined : this.directory.getByNdn(ndn);
    return e && this.domainFromEntry(e);
  }

  /** Every hosted mail domain (for building the routing table). */
  domains(): Generator<MailDomain> {
    return this.domainsUnder(this.directory.suffixNdn, 'sub');
  }

  /** The hosted mail domains strictly below the domain named `name` (after a rename of a subtree). */
  *domainsBelow(name: string): Generator<MailDomain> {
    const ndn = this.names.toNdn(name);
    if (ndn !== undefined) yield* this.domainsUnder(ndn, 'children');
  }

  private *domainsUnder(ndn: string, scope: 'sub' | 'children'): Generator<MailDomain> {
    const base = this.directory.getByNdn(ndn);
    if (!base) return;
    const oc = this.directory.schema.objectClassType;
    for (const e of this.directory.store.candidates({ base, scope, filter: { type: 'eq', attr: oc, norm: 'maildomain' } })) {
      const d = this.domainFromEntry(e);
      if (d) yield d;
    }
  }

  /** Names of the mail domains `who` manages (AccessPolicy.manages: an `owner` of the domain's entry), sorted. */
  managedBy(who: Identity): string[] {
    if (who.anonymous) return [];
    const out: string[] = [];
    for (const d of this.domains()) {
      if (this.directory.access.manages(who, this.directory.domainAt(parseDn(d.dn)))) out.push(d.name);
    }
    return out.sort();
  }

  /**
   * May the user `dn` (an SMTP AUTH identity, MailSource.authenticate) send
   * mail as hosted domain `name`, so that the domain's DKIM key signs it
   * (server/mta/dkim-sign.ts)? The administrator may send as any; a user as
   * the mail domain its entry lives under (Directory.domainAt) and as the
   * domains it manages (AccessPolicy.manages: an `owner` of the domain's
   * entry). False for a DN that is no DN or names no entry.
   */
  maySendAs(dn: string, name: string): boolean {
    let ndn: string;
    try {
      ndn = this.directory.normalize(dn);
    } catch {
      return false;
    }
    if (ndn === this.directory.adminNdn) return true;
    const user = this.directory.getByNdn(ndn);
    if (!user) return false;
    if (this.directory.domainAt(parseDn(user.dn))?.name === name) return true;
    const domainNdn = this.names.toNdn(name);
    const domain = domainNdn === undefined ? undefined : this.directory.getByNdn(domainNdn);
    const who: Identity = { dn: user.dn, ndn, anonymous: false, admin: false };
    return domain !== undefined && this.directory.access.manages(who, this.directory.domainAt(parseDn(domain.dn)));
  }

  /** The recipient entry below `domain` answering to `address`, if any. */
  recipient(domain: MailDomain, address: string): Recipient | undefined {
    const base = this.directory.getByNdn(domain.ndn);
    if (!base) return undefined;
    const a = normalizeAddress(address);
    const s = this.directory.schema;
    const filter = {
      type: 'or' as const,
      filters: [
        { type: 'eq' as const, attr: s.attr('mail')!, norm: a },
        { type: 'eq' as const, attr: s.attr('mailAlternateAddress')!, norm: a },
      ],
    };
    for (const e of this.directory.store.candidates({ base, scope: 'sub', filter })) {
      if (!addressesOf(e.attrs).includes(a)) continue;
      return recipientOf(e, a);
    }
    return undefined;
  }

  /**
   * SMTP AUTH (RFC 4954): the user is found by `mail` or `uid`, then its
   * password checked (Directory.checkPassword, throttled for `client`, the
   * address the login came from). Resolves with the identity, or undefined
   * when the user or the password is wrong (one answer for both, after the
   * same work); rejects with TooManyFailuresError while the throttle refuses.
   */
  async authenticate(username: string, password: string, client?: string): Promise<Identity | undefined> {
    if (!username || !password) return undefined;
    const s = this.directory.schema;
    const u = username.trim().toLowerCase();
    const base = this.directory.getByNdn(this.directory.suffixNdn);
    const filter = { type: 'or' as const, filters: [
      { type: 'eq' as const, attr: s.attr('mail')!, norm: u },
      { type: 'eq' as const, attr: s.attr('uid')!, norm: u },
    ] };
    const matches: StoredEntry[] = [];
    for (const e of base ? this.directory.store.candidates({ base, scope: 'sub', filter }) : []) {
      matches.push(e);
      if (matches.length > 1) break; // ambiguous login name: nobody
    }
    const entry = matches.length === 1 ? matches[0] : undefined;
    try {
      return await this.directory.checkPassword(entry, entry ? entry.ndn : `login ${u}`, password, client);
    } catch (err) {
      if (err instanceof InvalidCredentialsError) return undefined;
      throw err;
    }
  }
}
