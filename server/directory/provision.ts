/**
 * Provisioning a mail domain: one operation, in one transaction of the one
 * write path, for every door (CLI, LDAP extended operation, SMTP at RCPT).
 *
 * `provisionDomain('mail.sales.example.org')`:
 * 1. normalises the name (IDNA A-labels, lower case, no trailing dot, label
 *    and length rules, RFC 1035 §2.3.4 / RFC 5890) — a bad name is refused
 *    and nothing is written;
 * 2. creates every missing component under the suffix (`dc=org`,
 *    `dc=example,dc=org`, ... as plain `domain` entries);
 * 3. gives the leaf the mail-domain classes (active, `ou=people` beneath it,
 *    and the catch-all's entry `uid=catchall` there when it names
 *    `catchall@<name>` as the catch-all address: DCMX_NEW_DOMAIN_CATCHALL),
 *    `associatedDomain: <its own name>` (as the `_dmarc` entry gets its own:
 *    PowerDNS's LDAP backend in tree mode answers a name only from the entry
 *    at its DN that also carries it there) and its DNS records: inside a zone we serve, the records go into that
 *    zone; otherwise the leaf becomes a zone apex with SOA (mname
 *    DCMX_HOSTNAME, rname hostmaster) and NS. Either way MX -> this
 *    appliance, SPF TXT and a `_dmarc` TXT (configurable), and a DKIM
 *    signing key per configured algorithm (DCMX_NEW_DOMAIN_DKIM): its
 *    private key and its `<selector>._domainkey` TXT in one entry
 *    (server/directory/dkim.ts); and, unless DCMX_MTA_STS is off, its
 *    MTA-STS policy record, policy host and TLSRPT record (mta-sts.ts);
 * 4. the zone hooks bump the serial and the change log gets the rows, all in
 *    the same commit, so DNS, the routing table and the transfer unit's cache
 *    follow from it.
 * It is idempotent: a domain that is already a mail domain is returned as it is.
 *
 * Some names are never provisioned (`assertProvisionable`), whichever door
 * asks, unless the operator forces it (`dcmx domain add --force`):
 * - a public suffix of the Public Suffix List (tldts), its private section
 *   included: `co.uk`, `github.io`. Under a suffix, names belong to unrelated
 *   parties; a zone here at the suffix would answer for all of them;
 * - a name that would become a new zone apex here while it contains this
 *   appliance's host name (DCMX_HOSTNAME or an ancestor of it) or a zone or
 *   mail domain hosted here: the new zone would make our DNS authoritative
 *   for names whose records live elsewhere (our own address first of all:
 *   NXDOMAIN for our host name), and outbound lookups would see it.
 * A name that joins a zone already served here creates no new authority and
 * is not refused for what it contains.
 */
import { domainToASCII } from 'node:url';
import { lazily } from '../lazy';
import type { Directory } from './directory';
import type { Identity } from './access';
import { DirectoryError, InvalidDomainError, ReservedDomainError } from './errors';
import { dkimKeyEntries, dkimKeyRecord, dkimSelectorEntry, generateDkimKey, type DkimKeyPool, isDkimKeyRecord, quoteTxt, storedKeyAlgorithm, type DkimAlgorithm } from './dkim';
import type { Zones } from './zones';
import { publishMtaSts, withdrawMtaSts, type MtaStsOptions } from './mta-sts';
import type { StoredEntry } from '../../storage/store';

/** The public suffix list (tldts), loaded at the first domain provisioned (lazy.ts). */
const tldts = lazily(() => require('tldts') as typeof import('tldts')); // eslint-disable-line @typescript-eslint/no-require-imports

export interface ProvisionOptions {
  /** This appliance's name: MX target, SOA mname, NS. */
  hostname: string;
  /** Give new domains a catch-all mailbox (catchall@<domain>). */
  catchall: boolean;
  /** SPF TXT value ('' for none). */
  spf: string;
  /** DMARC TXT value at _dmarc ('' for none). */
  dmarc: string;
  /** Algorithms of the DKIM keys a new domain gets (absent or empty: no key). */
  dkim?: readonly DkimAlgorithm[];
  /** Keys made ahead of time (the appliance's writer); absent: each key is made when a domain needs it. */
  keyPool?: DkimKeyPool;
  /** MTA-STS and TLSRPT records a new domain gets (server/directory/mta-sts.ts); absent: none. */
  mtaSts?: MtaStsOptions;
}

export interface ProvisionResult {
  /** The normalised name. */
  name: string;
  /** DNs of the entries created, parents first (empty when it existed). */
  created: string[];
  /** True when the domain was already a mail domain. */
  existed: boolean;
  /** The zone that holds the domain's records, and its serial after the commit. */
  zone: string;
  serial: number;
}

const LDH = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * Normalises a domain name for provisioning: IDNA to A-labels, lower case,
 * no trailing dot, at least two labels, each 1–63 letters/digits/hyphens not
 * starting or ending with a hyphen, 253 octets at most. Throws InvalidDomainError.
 */
export function normalizeDomainName(input: string): string {
  let s = input.trim();
  if (s.endsWith('.')) s = s.slice(0, -1);
  if (s === '') throw new InvalidDomainError(input, 'empty');
  if (/[\s@/\\,;:"<>[\]]/.test(s)) throw new InvalidDomainError(input, 'forbidden character');
  const ascii = domainToASCII(s);
  if (!ascii) throw new InvalidDomainError(input, 'not a valid IDNA name');
  const name = ascii.toLowerCase();
  if (name.length > 253) throw new InvalidDomainError(input, 'longer than 253 octets');
  const labels = name.split('.');
  if (labels.length < 2) throw new InvalidDomainError(input, 'a mail domain needs at least two labels');
  for (const l of labels) {
    if (!LDH.test(l)) throw new InvalidDomainError(input, `bad label '${l}'`);
  }
  if (/^\d+$/.test(labels[labels.length - 1])) throw new InvalidDomainError(input, 'numeric top-level label');
  return name;
}

/** The uid of a new domain's catch-all entry (DCMX_NEW_DOMAIN_CATCHALL). */
const CATCHALL_UID = 'catchall';

/**
 * The catch-all mailbox's entry under `ou=people`: `catchall@<name>`, an
 * inetOrgPerson with inetMailUser, and no userPassword: nobody can bind as
 * it (or read it over IMAP) until the administrator sets one (ldappasswd).
 */
function catchallEntry(name: string): { type: string; values: string[] }[] {
  return [
    { type: 'objectClass', values: ['top', 'inetOrgPerson', 'inetMailUser'] },
    { type: 'uid', values: [CATCHALL_UID] },
    { type: 'cn', values: ['catchall'] },
    { type: 'sn', values: ['catchall'] },
    { type: 'mail', values: [`${CATCHALL_UID}@${name}`] },
    { type: 'description', values: [`catch-all mailbox of ${name}: mail for its unknown addresses`] },
  ];
}

/** Initial serial of a new zone: YYYYMMDD01 (the commit hook then bumps it). */
function initialSerial(d = new Date()): number {
  return Number(d.toISOString().slice(0, 10).replace(/-/g, '')) * 100 + 1;
}

/** A mail domain in service (any status but 'deleted'): provisioning leaves it as it is; its DKIM keys may rotate. */
export function isServedMailDomain(e: StoredEntry | undefined): boolean {
  if (!e || !(e.attrs.objectClass ?? []).some((c) => c.toLowerCase() === 'maildomain')) return false;
  return (e.attrs.mailDomainStatus?.[0] ?? e.attrs.inetDomainStatus?.[0] ?? 'active').toLowerCase() !== 'deleted';
}

export class Provisioner {
  constructor(
    private readonly directory: Directory,
    private readonly zones: Zones,
    private readonly opts: ProvisionOptions,
  ) {}

  private get admin(): Identity {
    return this.directory.systemIdentity();
  }

  /**
   * Provisions `input` (see the module comment). Throws InvalidDomainError,
   * ReservedDomainError (unless `force`) or DirectoryError.
   */
  provisionDomain(input: string, options: { force?: boolean } = {}): ProvisionResult {
    const name = normalizeDomainName(input);
    const dir = this.directory;
    const created: string[] = [];
    let existed = false;
    dir.write(() => {
      const labels = name.split('.');
      // A mail domain in any state but 'deleted' is the operator's: hold, disabled and
      // hand-made records stay as they are. Only a removed domain is brought back.
      if (isServedMailDomain(this.entryOf(name))) {
        existed = true;
        return;
      }
      if (!options.force) this.assertProvisionable(name);
      // 1) missing components, top-level label first, as plain domain entries
      let dn = dir.suffix;
      for (let i = labels.length - 1; i >= 0; i--) {
        dn = `dc=${labels[i]},${dn}`;
        if (!dir.getByNdn(dir.normalize(dn))) {
          dir.addSync(this.admin, dn, [{ type: 'objectClass', values: ['top', 'domain'] }, { type: 'dc', values: [labels[i]] }], { relax: true });
          created.push(dn);
        }
      }
      const leaf = dir.getByNdn(dir.normalize(dn))!;
      const has = (attr: string, pred: (v: string) => boolean) => (leaf.attrs[attr] ?? []).some(pred);
      // 2) DNS: inside a zone we serve (other than the name itself) the records join it; otherwise a new apex.
      const { above, cut } = this.placement(name);
      const pointsHere = (v: string) => this.namesUs(v);
      if (cut !== undefined && !(cut === name && has('nSRecord', pointsHere))) {
        // Records below a zone cut are not authoritative here (RFC 1034 §4.2.1): nobody would see them.
        throw new DirectoryError('unwillingToPerform', `${name} lies in ${cut}, which ${above!.name} delegates to other name servers`);
      }
      const mods: { op: 'add' | 'replace'; type: string; values: string[] }[] = [];
      const missingClasses = ['dNSDomain2', 'mailDomain', 'inetDomain', 'domainRelatedObject'].filter((c) => !has('objectClass', (x) => x.toLowerCase() === c.toLowerCase()));
      if (missingClasses.length) mods.push({ op: 'add', type: 'objectClass', values: missingClasses });
      if (!has('associatedDomain', (v) => sameName(v, name))) mods.push({ op: 'add', type: 'associatedDomain', values: [name] });
      mods.push({ op: 'replace', type: 'mailDomainStatus', values: ['active'] }, { op: 'replace', type: 'inetDomainStatus', values: ['active'] });
      // Records already there (a site-verification TXT, a backup MX) stay; ours are added beside them.
      if (!has('mXRecord', pointsHere)) mods.push({ op: 'add', type: 'mXRecord', values: [`10 ${this.opts.hostname}.`] });
      // One SPF record per name (RFC 7208 §3.2): an existing one is the operator's.
      if (this.opts.spf && !has('tXTRecord', isSpf)) mods.push({ op: 'add', type: 'tXTRecord', values: [quoteTxt(this.opts.spf)] });
      const catchall = this.opts.catchall && !leaf.attrs.mailDomainCatchallAddress?.length;
      if (catchall) mods.push({ op: 'replace', type: 'mailDomainCatchallAddress', values: [`catchall@${name}`] });
      // A new apex, or a cut whose NS already name us. An apex that exists keeps its SOA, so its
      // serial only ever grows (RFC 1982) — also across a remove and a re-add.
      if ((!above || cut === name) && !leaf.attrs.sOARecord?.length) {
        mods.push({ op: 'replace', type: 'sOARecord', values: [`${this.opts.hostname}. hostmaster.${name}. ${initialSerial()} 3600 900 1209600 300`] });
        if (!has('nSRecord', pointsHere)) mods.push({ op: 'add', type: 'nSRecord', values: [`${this.opts.hostname}.`] });
      }
      dir.modifySync(this.admin, dn, mods, { relax: true });
      // 3) ou=people for the domain's users, and the DMARC policy.
      const people = `ou=people,${dn}`;
      if (!dir.getByNdn(dir.normalize(people))) {
        dir.addSync(this.admin, people, [{ type: 'objectClass', values: ['top', 'organizationalUnit'] }, { type: 'ou', values: ['people'] }], { relax: true });
        created.push(people);
      }
      // The catch-all's own entry, so that it can log in (IMAP) once the operator gives it a password.
      const catchallDn = `uid=${CATCHALL_UID},${people}`;
      if (catchall && !dir.getByNdn(dir.normalize(catchallDn))) {
        dir.addSync(this.admin, catchallDn, catchallEntry(name), { relax: true });
        created.push(catchallDn);
      }
      if (this.opts.dmarc) {
        const dmarcDn = `dc=_dmarc,${dn}`;
        const dmarc = dir.getByNdn(dir.normalize(dmarcDn));
        if (!dmarc) {
          dir.addSync(this.admin, dmarcDn, [
            { type: 'objectClass', values: ['top', 'dNSDomain2', 'domainRelatedObject'] }, { type: 'dc', values: ['_dmarc'] },
            { type: 'associatedDomain', values: [`_dmarc.${name}`] }, { type: 'tXTRecord', values: [quoteTxt(this.opts.dmarc)] },
          ], { relax: true });
          created.push(dmarcDn);
        } else if (!(dmarc.attrs.tXTRecord ?? []).some(isDmarc)) {
          // Left by an earlier removal (its record withdrawn): the policy comes back with the domain.
          const classes = (dmarc.attrs.objectClass ?? []).some((c) => /^(dnsdomain2|dnsdomain)$/i.test(c)) ? [] : ['dNSDomain2'];
          if (!(dmarc.attrs.objectClass ?? []).some((c) => c.toLowerCase() === 'domainrelatedobject')) classes.push('domainRelatedObject');
          const own = (dmarc.attrs.associatedDomain ?? []).some((v) => sameName(v, `_dmarc.${name}`));
          dir.modifySync(this.admin, dmarc.dn, [
            ...(classes.length ? [{ op: 'add' as const, type: 'objectClass', values: classes }] : []),
            ...(own ? [] : [{ op: 'add' as const, type: 'associatedDomain', values: [`_dmarc.${name}`] }]),
            { op: 'add', type: 'tXTRecord', values: [quoteTxt(this.opts.dmarc)] },
          ], { relax: true });
        }
      }
      this.provisionDkim(name, dn, created);
      if (this.opts.mtaSts) publishMtaSts(dir, this.admin, name, dn, this.opts.hostname, this.opts.mtaSts, created);
    });
    const zone = this.zones.zoneOf(name);
    return { name, created, existed, zone: zone?.name ?? '', serial: zone?.soa.rdata.serial ?? 0 };
  }

  /**
   * Inside provisionDomain's transaction: gives the domain at `dn` a DKIM key
   * for each configured algorithm it has none of, under `dc=_domainkey`. A
   * key it already has is kept, and its TXT comes back if an earlier removal
   * withdrew it.
   */
  private provisionDkim(name: string, dn: string, created: string[]): void {
    if (!this.opts.dkim?.length) return;
    const dir = this.directory;
    const base = `dc=_domainkey,${dn}`;
    if (!dir.getByNdn(dir.normalize(base))) {
      dir.addSync(this.admin, base, [{ type: 'objectClass', values: ['top', 'domain'] }, { type: 'dc', values: ['_domainkey'] }], { relax: true });
      created.push(base);
    }
    const have = new Set<DkimAlgorithm>();
    for (const e of this.dkimEntries(dn)) {
      const alg = storedKeyAlgorithm(e);
      if (!alg) continue;
      have.add(alg);
      if (!(e.attrs.tXTRecord ?? []).some(isDkimKeyRecord)) {
        dir.modifySync(this.admin, e.dn, [{ op: 'add', type: 'tXTRecord', values: [quoteTxt(dkimKeyRecord(e.attrs.dkimPrivateKey![0]))] }], { relax: true });
      }
    }
    for (const alg of this.opts.dkim!) {
      if (have.has(alg)) continue;
      const key = this.opts.keyPool?.take(alg) ?? generateDkimKey(alg);
      const keyDn = `dc=${key.selector},${base}`;
      if (dir.getByNdn(dir.normalize(keyDn))) {
        throw new DirectoryError('entryAlreadyExists', `${key.selector}._domainkey.${name} exists and holds no ${alg} key`);
      }
      dir.addSync(this.admin, keyDn, dkimSelectorEntry(name, key), { relax: true });
      created.push(keyDn);
    }
  }

  /** The selector entries (class dkimKey) below `dc=_domainkey,<dn>`. */
  private dkimEntries(dn: string): StoredEntry[] {
    return dkimKeyEntries(this.directory, this.directory.normalize(dn));
  }

  /**
   * Removes a domain from service: its status becomes 'deleted' (mail is
   * refused at RCPT) and its mail records are withdrawn: the MX that point
   * here, the SPF TXT, the `_dmarc` policy, the DKIM key records (the
   * keys stay) and the MTA-STS and TLSRPT records. Entries, mailbox data and any other record stay; so does the SOA/NS of a zone apex, because other names
   * may live in the zone and its serial must never go back (RFC 1982) — delete
   * the entry over LDAP to drop a zone. Throws noSuchObject when it is not a
   * mail domain.
   */
  removeDomain(input: string): void {
    const name = normalizeDomainName(input);
    const dir = this.directory;
    const ndn = this.zones.names.toNdn(name)!;
    const e = dir.getByNdn(ndn);
    if (!e || !(e.attrs.objectClass ?? []).some((c) => c.toLowerCase() === 'maildomain')) {
      throw new DirectoryError('noSuchObject', `${name} is not a mail domain here`);
    }
    dir.write(() => {
      const mx = (e.attrs.mXRecord ?? []).filter((v) => this.namesUs(v));
      const spf = (e.attrs.tXTRecord ?? []).filter(isSpf);
      dir.modifySync(this.admin, e.dn, [
        { op: 'replace', type: 'mailDomainStatus', values: ['deleted'] },
        { op: 'replace', type: 'inetDomainStatus', values: ['deleted'] },
        ...(mx.length ? [{ op: 'delete' as const, type: 'mXRecord', values: mx }] : []),
        ...(spf.length ? [{ op: 'delete' as const, type: 'tXTRecord', values: spf }] : []),
      ], { relax: true });
      const dmarc = dir.getByNdn(dir.normalize(`dc=_dmarc,${e.dn}`));
      const policy = (dmarc?.attrs.tXTRecord ?? []).filter(isDmarc);
      if (dmarc && policy.length) dir.modifySync(this.admin, dmarc.dn, [{ op: 'delete', type: 'tXTRecord', values: policy }], { relax: true });
      // The DKIM key records go too; the keys stay, so that a re-added domain signs with them again.
      for (const k of this.dkimEntries(e.dn)) {
        const records = (k.attrs.tXTRecord ?? []).filter(isDkimKeyRecord);
        if (records.length) dir.modifySync(this.admin, k.dn, [{ op: 'delete', type: 'tXTRecord', values: records }], { relax: true });
      }
      withdrawMtaSts(dir, this.admin, e.dn);
    });
  }

  /**
   * Throws ReservedDomainError when `input` must not be provisioned without
   * force (see the module comment): a public suffix, or a new zone apex that
   * would contain our host name or a zone or mail domain hosted here. Reads
   * only; the SMTP door asks before its upstream lookup, and
   * `provisionDomain` asks again inside its transaction.
   */
  assertProvisionable(input: string): void {
    const name = normalizeDomainName(input);
    const psl = tldts().parse(name, { allowPrivateDomains: true });
    // For a TLD the list does not know, its default rule "*" makes the TLD itself the suffix.
    if (psl.domain === null || psl.publicSuffix === name) {
      throw new ReservedDomainError(name, `it is a public suffix (${psl.isPrivate ? 'private' : 'ICANN'} section of the Public Suffix List)`);
    }
    const entry = this.entryOf(name);
    if (isServedMailDomain(entry)) return;
    const { above, cut } = this.placement(name);
    const newApex = (!above || cut === name) && !entry?.attrs.sOARecord?.length;
    if (!newApex) return;
    const host = this.opts.hostname.toLowerCase();
    if (host === name || host.endsWith('.' + name)) {
      throw new ReservedDomainError(name, `a zone ${name} here would contain this appliance's host name ${host}, whose address records are not ours`);
    }
    const hosted = entry && this.hostedBelow(entry);
    if (hosted !== undefined) {
      throw new ReservedDomainError(name, `a zone ${name} here would contain ${hosted}, which is hosted here`);
    }
  }

  /** The entry whose dc chain spells `name`, if any. */
  private entryOf(name: string): StoredEntry | undefined {
    const ndn = this.zones.names.toNdn(name);
    return ndn === undefined ? undefined : this.directory.getByNdn(ndn);
  }

  /** The zone served here above `name` (not at it), and the closest zone cut between them, if any. */
  private placement(name: string): { above: ReturnType<Zones['zoneOf']>; cut: string | undefined } {
    const dot = name.indexOf('.');
    const above = dot > 0 ? this.zones.zoneOf(name.slice(dot + 1)) : undefined;
    return { above, cut: above ? this.delegationAtOrAbove(name, above.name) : undefined };
  }

  /** The name of a zone apex or mail domain strictly below entry `e`, if there is one. */
  private hostedBelow(e: StoredEntry): string | undefined {
    const s = this.directory.schema;
    const filter = {
      type: 'or' as const,
      filters: [
        { type: 'eq' as const, attr: s.objectClassType, norm: 'maildomain' },
        { type: 'present' as const, attr: s.attr('sOARecord')! },
      ],
    };
    for (const d of this.directory.store.candidates({ base: e, scope: 'sub', filter })) {
      if (d.ndn === e.ndn) continue;
      const n = this.zones.names.fromDn(d.dn, d.ndn);
      if (n !== undefined && (d.attrs.sOARecord?.length || (d.attrs.objectClass ?? []).some((c) => c.toLowerCase() === 'maildomain'))) return n;
    }
    return undefined;
  }

  /** Whether an MX or NS value (master-file RDATA) names this appliance as its target. */
  private namesUs(value: string): boolean {
    const target = value.trim().split(/\s+/).pop() ?? '';
    return target.toLowerCase().replace(/\.$/, '') === this.opts.hostname.toLowerCase();
  }

  /**
   * The closest name strictly below `zone` and at or above `name` whose entry
   * holds NS records (a zone cut, RFC 1034 §4.2.1), if any.
   */
  private delegationAtOrAbove(name: string, zone: string): string | undefined {
    let cut: string | undefined;
    for (let n = name; n !== zone && n.endsWith('.' + zone); n = n.slice(n.indexOf('.') + 1)) {
      const ndn = this.zones.names.toNdn(n);
      if (ndn !== undefined && this.directory.getByNdn(ndn)?.attrs.nSRecord?.length) cut = n;
    }
    return cut;
  }

  /** Hosted mail domains and their status, sorted. */
  listDomains(): { name: string; status: string; zone: string }[] {
    const out: { name: string; status: string; zone: string }[] = [];
    const base = this.directory.getByNdn(this.directory.suffixNdn);
    if (!base) return out;
    const oc = this.directory.schema.objectClassType;
    for (const e of this.directory.store.candidates({ base, scope: 'sub', filter: { type: 'eq', attr: oc, norm: 'maildomain' } })) {
      const name = this.zones.names.fromDn(e.dn, e.ndn);
      if (name === undefined) continue;
      out.push({ name, status: e.attrs.mailDomainStatus?.[0] ?? e.attrs.inetDomainStatus?.[0] ?? 'active', zone: this.zones.zoneOf(name)?.name ?? '' });
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : 1));
  }
}

/** An SPF policy record (RFC 7208 §4.5), in master-file form. */
function isSpf(v: string): boolean {
  return /^"?v=spf1(\s|"|$)/i.test(v.trim());
}

/** A DMARC policy record (RFC 7489 §6.3), in master-file form. */
function isDmarc(v: string): boolean {
  return /^"?v=DMARC1\s*(;|"|$)/i.test(v.trim());
}

/** Do two domain names name the same (ASCII case folded, RFC 4343; a trailing dot ignored)? */
function sameName(a: string, b: string): boolean {
  return a.replace(/\.$/, '').toLowerCase() === b.replace(/\.$/, '').toLowerCase();
}

