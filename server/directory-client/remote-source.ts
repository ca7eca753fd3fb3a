/**
 * The MailSource of a remote transfer unit (DCMX_ROLE=mta): the directory
 * read over LDAP, kept in step by LDAP Content Sync (RFC 4533,
 * refreshAndPersist) over ONE connection, which also carries the unit's
 * searches and provisioning requests.
 *
 * - Mail domains: a Content Sync copy of every mail-domain entry
 *   (SyncedCopy), so `domain()`/`domains()` answer from memory and the
 *   routing table is kept from it (setDomain/removeDomain/build).
 * - Recipients: read by a search on a cache miss (the unit's MRU cache,
 *   server/mta/cache.ts, keeps them, negative answers too); every entry
 *   state the sync reports is handed to the cache (applyEntryChanges), so a
 *   change on the directory reaches the cache as soon as the provider sends
 *   it. When the end of a present phase says that unreported entries are
 *   gone (RFC 4533 §3.3.1: after a reconnect from a cookie, without a
 *   session log), the recipients are forgotten (cache flush): the copy of
 *   the domains knows what left, the cache does not.
 * - The cookie and the domain copy are saved together in the data dir
 *   (sync-state.ts) at each new cookie, so a restart resumes from the
 *   cookie, with the copy it belongs to, even while the directory is down.
 * - Directory unreachable: `reachable` is false; reads that need the
 *   network reject with DirectoryUnavailableError (SMTP 451 4.4.3), while
 *   the copy and the cache keep answering what they hold.
 */
import * as net from 'node:net';
import * as path from 'node:path';
import type { Logger } from '../log';
import type { RemoteDirectory } from '../config';
import type { Identity } from '../directory/access';
import { DirectoryUnavailableError, ReservedDomainError, TooManyFailuresError } from '../directory/errors';
import type { ProvisionResult } from '../directory/provision';
import { mailDomainOf, normalizeAddress, recipientOf, type MailDomain, type MailEntry, type Recipient } from '../directory/mail';
import type { EntryChange, MailSource } from '../directory/mail-source';
import { loadSchema } from '../directory/open';
import { DnsNames } from '../directory/zones';
import type { FilterInput } from '../directory/filter';
import { PROVISION_DOMAIN_OID } from '../../schema/definitions/dcmx';
import { parseDn } from '../../schema/dn';
import { LdapClient, parseDirectoryUrl, type ClientOptions } from './client';
import { LdapResultError, RESULT } from './protocol';
import { SyncedCopy, type CopiedEntry } from './replica';
import { SyncConsumer, type SyncEntry, type SyncHandler } from './sync';
import { SyncStateFile } from './sync-state';

/** What the sync follows: mail domains and every entry with an address (recipients, catch-alls). */
const SYNC_FILTER: FilterInput = {
  type: 'or',
  filters: [
    { type: 'equal', attr: 'objectClass', value: 'mailDomain' },
    { type: 'present', attr: 'mail' },
    { type: 'present', attr: 'mailAlternateAddress' },
  ],
};
/** What it asks for: what mailDomainOf and recipientOf read, and what the cache invalidates by. */
const SYNC_ATTRIBUTES = [
  'objectClass', 'entryUUID', 'associatedDomain', 'mailDomainStatus', 'inetDomainStatus', 'mailRoutingHosts', 'mailRoutingSmartHost',
  'mailDomainCatchallAddress', 'mXRecord', 'mail', 'mailAlternateAddress', 'mailHost',
];
/** The most often the sync state is written (ms). */
const SAVE_EVERY_MS = 100;
const RECIPIENT_ATTRIBUTES = ['mail', 'mailAlternateAddress', 'mailHost', 'entryUUID'];

/** Where the source's views are: the unit's cache and routing table (server/mta), told of every change. */
export interface SourceViews {
  cache: { applyEntryChanges(changes: EntryChange[]): void; flush(): void };
  routing: { setDomain(d: MailDomain): void; removeDomain(nameOrUuid: string): void; build(domains: Iterable<MailDomain>, version?: number): void };
}

/** The source's options. */
export interface RemoteSourceOptions {
  directory: RemoteDirectory;
  /** DCMX_SUFFIX: the directory's DC-tree suffix. */
  suffix: string;
  /** The unit's data dir: the sync state is kept there. */
  dataDir: string;
  log: Logger;
  /** Milliseconds a search or provisioning request may take. Default 5000. */
  timeoutMs?: number;
}

/** The remote directory as a MailSource (see the module comment). */
export class RemoteMailSource implements MailSource {
  readonly names: DnsNames;
  readonly directoryHost: string;
  /** Counters: network reads (searches), provisioning requests, changes applied, full reloads, reconnections. */
  readonly stats = { searches: 0, provisioned: 0, changes: 0, reloads: 0, connects: 0 };
  private readonly schema = loadSchema();
  private readonly consumer: SyncConsumer;
  private readonly copy: SyncedCopy;
  private readonly state: SyncStateFile;
  private readonly clientOptions: ClientOptions;
  /** name → domain, from the copy. */
  private readonly domainsByName = new Map<string, MailDomain>();
  private views: SourceViews | undefined;
  private synced = false;
  private readonly waiters = new Set<() => boolean>();
  private readonly timeoutMs: number;
  private saveTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: RemoteSourceOptions) {
    const d = opts.directory;
    this.names = new DnsNames(this.schema.normalizeDn(parseDn(opts.suffix)));
    this.directoryHost = d.host;
    this.timeoutMs = opts.timeoutMs ?? 5000;
    // The certificate must name the directory's host: the URL's, or DCMX_DIRECTORY_HOST when the URL gives an address.
    const servername = net.isIP(parseDirectoryUrl(d.url).host) && !net.isIP(d.host) ? d.host : undefined;
    this.clientOptions = {
      url: d.url, startTls: d.startTls, tls: { ...(d.ca ? { ca: d.ca } : {}), ...(servername ? { servername } : {}) },
      connectTimeoutMs: this.timeoutMs, operationTimeoutMs: this.timeoutMs,
    };
    this.copy = new SyncedCopy((e) => this.domainOf(e) !== undefined, (uuid, before, after) => this.domainChanged(uuid, before, after));
    this.state = new SyncStateFile(path.join(opts.dataDir, 'directory-sync.json'), { url: d.url, base: opts.suffix, filter: JSON.stringify(SYNC_FILTER) }, opts.log);
    const saved = this.state.load();
    if (saved) {
      for (const [uuid, e] of saved.entries) {
        this.copy.entries.set(uuid, e);
        const dom = this.domainOf(e);
        if (dom) this.domainsByName.set(dom.name, dom);
      }
    }
    this.consumer = new SyncConsumer({
      client: this.clientOptions,
      bindDn: d.bindDn,
      password: d.password,
      search: { base: opts.suffix, scope: 2, filter: SYNC_FILTER, attributes: SYNC_ATTRIBUTES },
      cookie: saved?.cookie,
      log: opts.log,
    }, this.handler());
  }

  /** Connects the views (they are built over this source, so they come after it) and starts following the directory. */
  start(views: SourceViews): void {
    this.views = views;
    views.routing.build(this.domainsByName.values());
    this.consumer.start();
  }

  /** Stops following (the connection closes); the state not yet saved is saved. */
  stop(): void {
    this.consumer.stop();
    if (this.saveTimer) this.save();
  }

  /**
   * Saves the cookie with the copy, at most every SAVE_EVERY_MS: a persist
   * phase may bring a cookie per change. A state saved late is an older
   * cookie with the copy of its time (both taken at once), from which a
   * resumed refresh re-sends what followed.
   */
  private scheduleSave(): void {
    this.saveTimer ??= setTimeout(() => this.save(), SAVE_EVERY_MS);
  }

  private save(): void {
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    const cookie = this.consumer.cookie;
    if (cookie === undefined) return;
    try {
      this.state.save(cookie, this.copy.entries);
    } catch (err) {
      this.opts.log.error({ err, file: this.state.path }, 'cannot save the directory sync state (a restart will reload everything)');
    }
  }

  /** Whether the directory is connected and its content synchronized (else the unit runs degraded). */
  get reachable(): boolean {
    return this.synced && this.consumer.client !== undefined;
  }

  /** Mail domains in the copy. */
  get domainCount(): number {
    return this.domainsByName.size;
  }

  /** Resolves once the first refresh is done (or at once when it is). */
  whenSynced(): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (!this.synced) return false;
        resolve();
        return true;
      };
      if (!check()) this.waiters.add(check);
    });
  }

  // ---------------------------------------------------------------- MailSource

  async domain(name: string): Promise<MailDomain | undefined> {
    return this.domainsByName.get(name.toLowerCase().replace(/\.$/, ''));
  }

  async domains(): Promise<MailDomain[]> {
    return [...this.domainsByName.values()];
  }

  async recipient(domain: MailDomain, address: string): Promise<Recipient | undefined> {
    const a = normalizeAddress(address);
    const filter: FilterInput = { type: 'or', filters: [{ type: 'equal', attr: 'mail', value: a }, { type: 'equal', attr: 'mailAlternateAddress', value: a }] };
    const entries = await this.search({ base: domain.dn, scope: 2, filter, attributes: RECIPIENT_ATTRIBUTES }, 16);
    for (const e of entries) {
      const r = recipientOf(e, a);
      if (r.addresses.includes(a)) return r;
    }
    return undefined;
  }

  /**
   * SMTP AUTH over LDAP: the user found by `mail` or `uid` (exactly one
   * entry), then a simple bind as that entry on a connection of its own
   * (the directory checks the password, and throttles guessing: its
   * unwillingToPerform is TooManyFailuresError here).
   */
  async authenticate(username: string, password: string): Promise<Identity | undefined> {
    if (!username || !password) return undefined;
    const u = username.trim().toLowerCase();
    const filter: FilterInput = { type: 'or', filters: [{ type: 'equal', attr: 'mail', value: u }, { type: 'equal', attr: 'uid', value: u }] };
    const found = await this.search({ base: this.opts.suffix, scope: 2, filter, attributes: ['1.1'] }, 2).catch((e: unknown) => {
      if (e instanceof LdapResultError && e.code === RESULT.sizeLimitExceeded) return []; // ambiguous login name: nobody
      throw e;
    });
    if (found.length !== 1) return undefined;
    const dn = found[0].dn;
    let client: LdapClient | undefined;
    try {
      client = await LdapClient.open(this.clientOptions);
      await client.bind(dn, password);
      return { dn, ndn: found[0].ndn, anonymous: false, admin: false };
    } catch (e) {
      if (e instanceof LdapResultError && e.code === RESULT.invalidCredentials) return undefined;
      if (e instanceof LdapResultError && e.code === RESULT.unwillingToPerform) throw new TooManyFailuresError();
      throw new DirectoryUnavailableError(`cannot check the password with the directory: ${(e as Error).message}`);
    } finally {
      client?.close();
    }
  }

  // ---------------------------------------------------------------- provisioning

  /**
   * Provisions `name` on the directory with dcmx's extended operation (the
   * directory's writer creates it, in one transaction with its DNS records),
   * then waits until Content Sync has brought the new domain into the copy,
   * so that the routing table knows it when this resolves. Rejects with the
   * directory's LdapResultError when it refuses, DirectoryUnavailableError
   * when it cannot be reached or the domain does not arrive in time.
   */
  async provision(name: string): Promise<ProvisionResult> {
    const client = this.connected();
    let value: string;
    try {
      value = (await client.extended(PROVISION_DOMAIN_OID, Buffer.from(name, 'utf8'))).value?.toString('utf8') ?? '';
    } catch (e) {
      // The directory's refusal of a name it never provisions (a public suffix...): as on the appliance.
      const m = e instanceof LdapResultError && e.code === RESULT.unwillingToPerform ? /^(\S+) is not provisioned: (.*)$/s.exec(e.diagnostic) : null;
      if (m) throw new ReservedDomainError(m[1], m[2]);
      throw new DirectoryUnavailableError(`cannot provision ${name} on the directory: ${(e as Error).message}`);
    }
    this.stats.provisioned++;
    await this.until(() => this.domainsByName.has(name), `${name} did not arrive from the directory`);
    // The response value (server/ldap/extended.ts): the DNs created, one a line, then `zone <name> serial <n>[ (existed)]`.
    const lines = value.split('\n');
    const last = /^zone (\S+) serial (\d+)( \(existed\))?$/.exec(lines[lines.length - 1] ?? '');
    return { name, created: lines.slice(0, -1).filter(Boolean), existed: !!last?.[3], zone: last?.[1] ?? '', serial: Number(last?.[2] ?? 0) };
  }

  // ---------------------------------------------------------------- internals

  private connected(): LdapClient {
    const client = this.consumer.client;
    if (!client) throw new DirectoryUnavailableError('the directory is unreachable');
    return client;
  }

  /** A search over the sync connection; entries with normalised DNs and canonical attribute names. */
  private async search(req: { base: string; scope: 0 | 1 | 2; filter: FilterInput; attributes: string[] }, max: number): Promise<MailEntry[]> {
    const client = this.connected();
    this.stats.searches++;
    try {
      const r = await client.search(req, max);
      return r.entries.map((e) => this.mailEntry(e.dn, e.attrs));
    } catch (e) {
      if (e instanceof LdapResultError && e.code !== RESULT.busy && e.code !== RESULT.unavailable) throw e;
      throw new DirectoryUnavailableError(`directory search failed: ${(e as Error).message}`);
    }
  }

  /** Resolves when `done()` holds, checked after each change; rejects after the timeout. */
  private until(done: () => boolean, why: string): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!done()) return false;
        clearTimeout(timer);
        resolve();
        return true;
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new DirectoryUnavailableError(`${why} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.waiters.add(check);
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) if (w()) this.waiters.delete(w);
  }

  /** An entry with its normalised DN and attributes by canonical name (servers spell names as they like). */
  private mailEntry(dn: string, attrs: Record<string, string[]>): MailEntry {
    let ndn: string;
    try {
      ndn = this.schema.normalizeDn(parseDn(dn));
    } catch {
      ndn = dn.toLowerCase();
    }
    const canonical: Record<string, string[]> = {};
    for (const [k, v] of Object.entries(attrs)) {
      const name = this.schema.attr(k)?.name ?? k;
      canonical[name] = canonical[name] ? canonical[name].concat(v) : v;
    }
    return { dn, ndn, attrs: canonical };
  }

  private domainOf(e: CopiedEntry): MailDomain | undefined {
    return mailDomainOf(this.names, this.mailEntry(e.dn, e.attrs));
  }

  /** The copy changed: the routing table and the name index follow. */
  private domainChanged(uuid: string, before: CopiedEntry | undefined, after: CopiedEntry | undefined): void {
    const old = before && this.domainOf(before);
    if (old) this.domainsByName.delete(old.name);
    const now = after && this.domainOf(after);
    if (now) {
      this.domainsByName.set(now.name, now);
      this.views?.routing.setDomain(now);
    } else if (old) {
      this.views?.routing.removeDomain(uuid);
    }
  }

  private handler(): SyncHandler {
    return {
      refreshBegin: (full) => {
        if (full) this.stats.reloads++;
        this.copy.refreshBegin();
      },
      entry: (e: SyncEntry) => {
        const m = this.mailEntry(e.dn, e.attrs);
        const before = this.copy.entries.get(e.uuid);
        this.copy.entry({ ...e, attrs: m.attrs });
        if (e.state === 'present') return;
        const change: EntryChange = { kind: e.state, uuid: e.uuid, dn: m.dn, ndn: m.ndn };
        if (e.state !== 'delete') change.attrs = m.attrs;
        if (before && before.dn !== e.dn) {
          change.previousDn = before.dn;
          change.previousNdn = this.mailEntry(before.dn, {}).ndn;
        }
        this.stats.changes++;
        this.views?.cache.applyEntryChanges([change]);
        this.wake();
      },
      ids: (uuids, deletes) => {
        this.copy.ids(uuids, deletes);
        if (!deletes) return;
        this.stats.changes += uuids.length;
        this.views?.cache.applyEntryChanges(uuids.map((uuid) => ({ kind: 'delete', uuid })));
        this.wake();
      },
      unreportedGone: () => {
        this.copy.unreportedGone();
        this.views?.cache.flush();
      },
      refreshed: () => {
        this.synced = true;
        this.opts.log.info({ domains: this.domainsByName.size }, 'directory synchronized');
        this.wake();
      },
      cookie: () => this.scheduleSave(),
      connection: (up, err) => {
        if (up) {
          this.stats.connects++;
          return;
        }
        this.synced = false;
        this.opts.log.warn({ err: err?.message }, 'directory connection lost: running degraded (cached recipients only)');
      },
    };
  }
}
