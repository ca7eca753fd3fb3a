/**
 * The directory: reads with access control, and the ONE write path.
 *
 * Every write (LDAP add/modify/delete/modifyDN, provisioning, CLI, LDIF
 * import) reaches the writer as a command (writes.ts), whose executor runs
 * `write`: in one SQLite transaction it validates against the schema,
 * stores the entry and its index rows, appends the change log row and runs
 * the write hooks (zone serials); after the commit it publishes the last
 * change number on the change clock (change-clock.ts), lets this thread's
 * views follow it (sync) and notifies the listeners with the changes. The
 * write methods (`write`, `add`, `addSync`, `modify`, `modifySync`, `delete`,
 * `modifyDN`, `setPassword`, `replacePassword`, `bootstrap`) are the writer
 * side's: the command executor, provision.ts, start-up. A reader (open.ts
 * `readOnly`, any thread) has the same read API, follows the clock with
 * `sync`, and throws ReaderWriteError from every write method. A read issued
 * after a write's promise resolves sees the write, on every thread.
 */
import { randomUUID } from 'node:crypto';
import type { AttributeType, Schema, TypedAttrs } from '../../schema/registry';
import { SchemaError } from '../../schema/registry';
import { DnSyntaxError, formatDn, formatRdn, parseDn, type Dn, type Rdn } from '../../schema/dn';
import { RPATH_SEP, type ChangeRecord, type EntryQuery, type Scope, type StoredEntry, type Store } from '../../storage/store';
import { SearchCache } from './search-cache';
import { StoreFileError } from '../../storage/db';
import { AccessPolicy, ANONYMOUS, type DomainScope, type Identity } from './access';
import { DnsNames } from './zones';
import {
  indexRows, matchTarget, parseSelection, selected, storedFromTyped, typedAttrs, typedFromStored,
  type AttrInput, type ComputedValues, type AttrSelection, type DirEntry, type ResultAttr,
  entryUuidOf, generalizedTimeNow,
} from './entry';
import {
  AlreadyExistsError, DirectoryError, InsufficientAccessError, InvalidCredentialsError, NoSuchObjectError,
  NotAllowedOnNonLeafError, ReaderWriteError, SizeLimitError, StoreUnavailableError, TimeLimitError, UnwillingError,
} from './errors';
import { compileFilter, FilterError, matches, type Filter, type FilterInput } from './filter';
import { Passwords, type PasswordOptions } from './passwords';
import { AuthThrottle, type Throttle, type ThrottleOptions } from './auth-throttle';
import type { DirectoryWriter } from './writes';
import { ChangeClock } from './change-clock';
import { mailboxPath } from './mailbox';
import { normalizeAddress } from './mail';
import { nextCsn, ZERO_CSN } from './csn';
import {
  CHANGELOG_DN, changeEntry, changelogContainer, rootDse, SUBSCHEMA_DN, subschemaEntry, type RootDseFeatures,
} from './virtual';

/** Search bases kept parsed, and stored bases kept read (Directory.searchBase, storedBase): a handful are searched from, as a rule. */
const SEARCH_BASES_KEPT = 64;

/** Attributes indexed by default (lower-case canonical names). */
export const DEFAULT_INDEXES = [
  'objectclass', 'dc', 'mail', 'mailalternateaddress', 'uid', 'cn', 'associateddomain', 'member', 'uniquemember',
  // What NSS clients (sssd, nslcd) look accounts and groups up by (RFC 2307).
  'uidnumber', 'gidnumber', 'memberuid',
];

export interface DirectoryOptions {
  suffix: string;
  adminDN: string;
  /** Replication identities: bound, they read userPassword as the administrator does (AccessPolicy). */
  replicatorDNs?: readonly string[];
  /** Transfer unit identities: bound, they read as users, unlimited, and may provision domains (AccessPolicy). */
  unitDNs?: readonly string[];
  /** Server-side ceilings applied to everyone but the administrator (0 = none). */
  sizeLimit?: number;
  timeLimit?: number;
  /** Password policy (DEFAULT_PASSWORD_OPTIONS when absent). */
  passwords?: PasswordOptions;
  /** The guessing throttle of binds that say where they come from (DEFAULT_THROTTLE when absent). */
  throttle?: ThrottleOptions;
  /**
   * The process's throttle when another thread keeps it (a serving thread's
   * RemoteThrottle, server/threads): then `throttle` is not used.
   */
  sharedThrottle?: Throttle;
  /**
   * The data dir (DCMX_DATA_DIR) whose `mail/` holds the Maildirs. Given, an
   * entry with a `mail` value shows `mailMessageStore`: the absolute path of
   * the Maildir its first `mail` value is delivered into (mailbox.ts, as
   * delivery computes it), computed on every read and never stored: returned
   * when a search names it (not for '*'), tested by filters; a write that
   * gives mailMessageStore is refused (constraintViolation). Absent, the
   * attribute is an ordinary stored one.
   */
  dataDir?: string;
  /**
   * The change clock this directory publishes to (the writer) or follows (a
   * reader): share one buffer among the threads of the process. A new clock
   * of its own when absent.
   */
  clock?: ChangeClock;
}

/** One modification of a modify request (RFC 4511 §4.6, RFC 4525 increment). */
export interface Modification {
  op: 'add' | 'delete' | 'replace' | 'increment';
  type: string;
  values: string[];
}

/** A committed change, as write hooks and listeners see it. */
export interface AppliedChange {
  changeNumber: number;
  type: ChangeRecord['changeType'];
  /** The entry before the change (absent for add). */
  before?: DirEntry;
  /** The entry after the change (absent for delete). */
  after?: DirEntry;
  /** For modrdn of a non-leaf: descendants that moved with it, before and after. */
  moved?: { before: DirEntry; after: DirEntry }[];
}

/** Called inside the write transaction for each change; may refuse it by throwing (e.g. bad record syntax). */
export type WriteHook = (change: AppliedChange) => void;
/**
 * Called once per outermost transaction, inside it, just before commit, with
 * all of its changes; may write more (e.g. bump zone serials once per zone).
 */
export type CommitHook = (changes: readonly AppliedChange[]) => void;
/** Called after commit, once per transaction, with its changes in order (the writer's thread only). */
export type ChangeListener = (changes: AppliedChange[]) => void;

/** A search (RFC 4511 §4.5.1) in directory terms. */
export interface SearchRequest {
  base: string;
  scope: Scope;
  filter: FilterInput;
  attributes: readonly string[];
  typesOnly: boolean;
  /** Client limits; 0 = no limit requested. */
  sizeLimit: number;
  timeLimit: number;
  /** Simple paged results (RFC 2696): at most `size` entries after `cursor`. */
  page?: { size: number; cursor?: PageCursor };
  /**
   * Deliver each entry after its parent when both are returned (a Content
   * Sync refresh: a consumer adds a child under its parent), even when the
   * parent was made after it and the entry moved below it. Not with paging.
   */
  parentsFirst?: boolean;
}

/**
 * Where a paged search stands between pages: the id of the last entry sent
 * and how many entries the whole search has returned so far, so that the
 * size limit counts across pages (RFC 2696 §3, RFC 4511 §4.5.1.5).
 */
export interface PageCursor {
  afterId: number;
  sent: number;
}

/** An entry as a search returns it. */
export interface SearchEntry {
  dn: string;
  /** Its RFC 4530 entryUUID, whether or not `attrs` has it (Content Sync names entries by it). */
  uuid?: string;
  attrs: ResultAttr[];
  /**
   * Set on a view the directory keeps and hands out again to the searches
   * that return the entry so (SearchCache.view): frozen, and what a caller
   * derives from it (its encoding) may be kept with it.
   */
  kept?: boolean;
}

/** A Content Sync session's search, entry by entry (Directory.syncMatcher). */
export interface SyncMatcher {
  /** The entry's result form when the search returns it; undefined when out of scope, unreadable or not matched. */
  view(e: StoredEntry): SearchEntry | undefined;
  /** True when a DN (normalised) is within the search's base and scope. */
  inScope(ndn: string): boolean;
  /** The stored entry with this entryUUID, if any. */
  byUuid(uuid: string): StoredEntry | undefined;
  /** The entries below `e` (a renamed entry's subtree moved with it). */
  descendants(e: StoredEntry): StoredEntry[];
  /** True when the identity may read every entry: then even a deleted entry's DN and UUID are no secret to it. */
  readonly readsAll: boolean;
}

/** How a search ended (limits are thrown as errors after the entries were delivered). */
export interface SearchOutcome {
  count: number;
  /** Set when paging and more entries remain: the cursor for the next page. */
  nextCursor?: PageCursor;
}

/**
 * A search that runs in steps, so that a caller on the event loop can let
 * other work run between them: `step(stop)` considers candidates until they
 * are exhausted (then returns the outcome) or `stop()` says so after one of
 * them (then returns undefined; call step again to go on). Candidates come in
 * entry-id order and each step resumes after the last one considered; writes
 * committed between steps are seen by the candidates not yet considered.
 * Like `search`, a step throws SizeLimitError / TimeLimitError after the
 * entries within the limit (the time limit counts from the start).
 */
export interface SearchRun {
  step(stop: () => boolean): SearchOutcome | undefined;
}

/** Options of the internal write operations. */
export interface WriteOptions {
  /** Allow NO-USER-MODIFICATION attributes (import, server-internal writes). */
  relax?: boolean;
}

export { generalizedTimeNow } from './entry';

/**
 * The administrator's password as bootstrap applies it: `configured` is the
 * operator's (DCMX_ADMIN_PASSWORD), applied at every appliance start;
 * `initial` is called only when the administrator entry is being created
 * (it may generate and keep a password), and never changes an existing one.
 */
export type AdminPassword =
  | { kind: 'configured'; password: string }
  | { kind: 'initial'; password: () => string };

export class Directory {
  readonly access: AccessPolicy;
  readonly suffix: string;
  readonly suffixNdn: string;
  readonly adminNdn: string;
  /** The administrator's DN in RFC 4514 form. */
  readonly adminDN: string;
  readonly subschemaNdn: string;
  readonly changelogNdn: string;
  /** How passwords are hashed, accepted and checked. */
  readonly passwords: Passwords;
  /** Failed binds by account and client: delays, then temporary refusals (one per process). */
  readonly throttle: Throttle;
  private readonly suffixDn: Dn;
  /** DNS names of dc-chain entries (domainAt). */
  private readonly dnsNames: DnsNames;
  private readonly hooks: WriteHook[] = [];
  private readonly commitHooks: CommitHook[] = [];
  private readonly listeners: ChangeListener[] = [];
  private pending: AppliedChange[] = [];
  private features: RootDseFeatures = { supportedControl: [], supportedExtension: [], supportedFeatures: [] };
  private readonly sizeLimit: number;
  private readonly timeLimit: number;
  private readonly userPassword: AttributeType;
  private readonly entryCsn: AttributeType;
  private readonly computedTypes: AttributeType[];
  /** mailMessageStore when computed (DirectoryOptions.dataDir). */
  private readonly messageStore: AttributeType | undefined;
  private readonly dataDir: string | undefined;
  /** Where binds send their rehash (useWriter). */
  private writer: DirectoryWriter | undefined;
  private warnedNoWriter = false;
  /** The last committed change number, as published by the writer (change-clock.ts). */
  readonly clock: ChangeClock;
  /**
   * True for a reader (open.ts `readOnly`): its write methods throw
   * ReaderWriteError, writing nothing; writes go to the writer as commands.
   */
  readonly readOnly: boolean;
  /** The clock's value when this thread's views last followed it (sync). */
  private synced: number;
  private readonly syncListeners: (() => void)[] = [];
  /** Search bases as parsed and normalised, by the string a request gave (searchBase). */
  private readonly searchBases = new Map<string, { dn: Dn; ndn: string }>();
  /** Stored search bases by normalised DN (storedBase), as of the change number `baseEntriesAt`. */
  private readonly baseEntries = new Map<string, StoredEntry>();
  private baseEntriesAt = -1;
  /** The entries index-driven searches found (candidates). */
  private readonly searchCache: SearchCache;

  constructor(readonly store: Store, readonly schema: Schema, opts: DirectoryOptions) {
    this.suffixDn = parseDn(opts.suffix);
    this.suffix = formatDn(this.suffixDn);
    this.suffixNdn = schema.normalizeDn(this.suffixDn);
    this.dnsNames = new DnsNames(this.suffixNdn);
    this.adminDN = formatDn(parseDn(opts.adminDN));
    this.adminNdn = schema.normalizeDn(opts.adminDN);
    this.subschemaNdn = schema.normalizeDn(SUBSCHEMA_DN);
    this.changelogNdn = schema.normalizeDn(CHANGELOG_DN);
    const ndns = (dns: readonly string[] = []) => dns.map((d) => schema.normalizeDn(d));
    this.access = new AccessPolicy(schema, this.suffixNdn, this.changelogNdn, ndns(opts.replicatorDNs), ndns(opts.unitDNs));
    this.sizeLimit = opts.sizeLimit ?? 0;
    this.timeLimit = opts.timeLimit ?? 0;
    this.userPassword = schema.attr('userPassword')!;
    this.entryCsn = schema.attr('entryCSN')!;
    this.passwords = new Passwords(opts.passwords);
    this.throttle = opts.sharedThrottle ?? new AuthThrottle(opts.throttle);
    this.computedTypes = ['hasSubordinates', 'entryDN', 'subschemaSubentry', 'structuralObjectClass'].map((n) => schema.attr(n)!);
    this.dataDir = opts.dataDir;
    if (this.dataDir !== undefined) {
      this.messageStore = schema.attr('mailMessageStore')!;
      this.computedTypes.push(this.messageStore);
    }
    this.readOnly = store.readOnly;
    this.clock = opts.clock ?? new ChangeClock();
    if (!this.readOnly) this.clock.publish(store.changeRange().last);
    this.synced = this.clock.current();
    this.searchCache = new SearchCache(store, this);
  }

  /** Throws ReaderWriteError on a reader: `what` is the write method called. */
  private writable(what: string): void {
    if (this.readOnly) throw new ReaderWriteError(what);
  }

  // ---------------------------------------------------------------- set-up

  /** Announces a front end's controls/extensions/features in the root DSE. */
  announce(f: Partial<RootDseFeatures>): void {
    const merge = (a: string[], b: string[] | undefined) => [...new Set([...a, ...(b ?? [])])];
    this.features = {
      supportedControl: merge(this.features.supportedControl, f.supportedControl),
      supportedExtension: merge(this.features.supportedExtension, f.supportedExtension),
      supportedFeatures: merge(this.features.supportedFeatures, f.supportedFeatures),
      supportedSASLMechanisms: merge(this.features.supportedSASLMechanisms ?? [], f.supportedSASLMechanisms),
    };
  }

  /** Registers a hook run inside every write transaction. */
  addWriteHook(h: WriteHook): void {
    this.hooks.push(h);
  }

  /**
   * Registers a hook run once per transaction just before commit; with
   * `first`, before the hooks registered so far (one whose writes they must
   * see, as the zone serials and journal must).
   */
  addCommitHook(h: CommitHook, first = false): void {
    if (first) this.commitHooks.unshift(h);
    else this.commitHooks.push(h);
  }

  /**
   * Registers a listener called after each transaction committed on this
   * directory, with its changes (the writer's thread only: NOTIFY, retention).
   * Views that every thread keeps follow the change log with onSync instead.
   * Returns an unsubscribe function.
   */
  onChange(l: ChangeListener): () => void {
    return addListener(this.listeners, l);
  }

  /**
   * Registers a view of this thread that follows the change log (a
   * ChangeFollower: the routing table and the transfer unit's cache, a DNS
   * answer cache): `l` is called by `sync` whenever the change clock has moved
   * since, and must catch up from its position in the log before it returns.
   * Returns an unsubscribe function.
   */
  onSync(l: () => void): () => void {
    return addListener(this.syncListeners, l);
  }

  /**
   * Brings this thread's views up to the change clock before a read is
   * answered: when the clock shows what they followed last, one atomic load
   * and nothing else; otherwise the onSync listeners read the change log from
   * their positions. Every door calls it first (a DNS answer, an LDAP
   * operation, an SMTP lookup), so that a read issued after a write's reply,
   * on whatever thread, sees the write. The writer's thread also calls it
   * after each of its commits.
   */
  sync(): void {
    const now = this.clock.current();
    if (now === this.synced) return;
    this.synced = now;
    for (const l of [...this.syncListeners]) {
      try {
        l();
      } catch (err) {
        process.emitWarning(`dcmx: a change follower failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
      }
    }
  }

  /** The change number this thread's views have followed (sync): at least what every reply sent before the last sync had written. */
  get applied(): number {
    return this.synced;
  }

  /**
   * Writer side: publishes the last change number committed to the store
   * (by this directory, or by another process) on the change clock, then
   * lets this thread's views follow it (sync). The write path calls it after
   * each commit, before the write returns; the watch of other processes'
   * commits (writes.ts watchOtherWriters) when the store changed under it.
   */
  publishCommitted(): void {
    this.writable('publishCommitted');
    this.clock.publish(this.store.changeRange().last);
    this.sync();
  }

  /**
   * First boot: creates the suffix entry and the administrator entry when
   * missing. An existing administrator's password is left alone (it may have
   * been changed over LDAP, or restored from a backup), unless `admin` is
   * `configured`: then the operator's password replaces one that does not
   * verify. An `initial` password is asked for only when the administrator
   * entry is created.
   */
  async bootstrap(admin: AdminPassword): Promise<void> {
    this.writable('bootstrap');
    const existing = this.store.getByNdn(this.adminNdn);
    let hash: string | undefined;
    if (!existing) {
      // Refuse a DN the entry cannot be created at before asking for (perhaps generating) a password.
      const adminDn = parseDn(this.adminDN);
      const parentNdn = this.schema.normalizeDn(adminDn.slice(1));
      if (adminDn.length < 2 || (parentNdn !== this.suffixNdn && !this.store.getByNdn(parentNdn))) {
        throw new DirectoryError('noSuchObject', `the parent of ${this.adminDN} does not exist`);
      }
      hash = await this.passwords.hash(admin.kind === 'configured' ? admin.password : admin.password());
    } else if (admin.kind === 'configured') {
      let current = false;
      for (const h of existing.attrs.userPassword ?? []) if (await this.passwords.verify(admin.password, h)) current = true;
      if (!current) hash = await this.passwords.hash(admin.password);
    }
    // The entries of the first boot are the administrator's: creatorsName and modifiersName name it (RFC 4512 §3.4.1).
    const sys = this.systemIdentity();
    this.write(() => {
      if (!this.store.getByNdn(this.suffixNdn)) this.addTyped(sys, this.suffix, this.suffixEntryAttrs(), { relax: true });
      const adminDn = parseDn(this.adminDN);
      if (!this.store.getByNdn(this.adminNdn)) {
        // Only another process can have removed it since it was looked up (delete refuses it): start again.
        if (hash === undefined) throw new DirectoryError('other', 'the administrator entry changed during start-up; start again');
        const rdn = adminDn[0];
        if (rdn.length !== 1 || this.schema.attr(rdn[0].type)?.lname !== 'cn') {
          throw new DirectoryError('namingViolation', 'the administrator DN must be named by cn');
        }
        const attrs = typedAttrs(this.schema, [
          { type: 'objectClass', values: ['top', 'organizationalRole', 'simpleSecurityObject'] },
          { type: 'cn', values: [rdn[0].value] },
          { type: 'description', values: ['dcmx directory administrator'] },
          { type: 'userPassword', values: [hash] },
        ]);
        this.addTyped(sys, formatDn(adminDn), attrs, { relax: true });
      } else if (hash && admin.kind === 'configured') {
        this.modifyTyped(sys, this.adminDN, [{ op: 'replace', type: 'userPassword', values: [hash] }], {
          relax: true,
        });
      }
      // Stores booted before this was fixed hold an empty creatorsName on these two entries: repair it once.
      for (const ndn of [this.suffixNdn, this.adminNdn]) {
        const e = this.store.getByNdn(ndn);
        if (e && !e.attrs.creatorsName?.[0]) {
          this.modifyTyped(sys, e.dn, [{ op: 'replace', type: 'creatorsName', values: [this.adminDN] }], { relax: true });
        }
      }
    });
  }

  /** The identity of server-internal writes (CLI, provisioning): the administrator. */
  systemIdentity(): Identity {
    return { dn: this.adminDN, ndn: this.adminNdn, anonymous: false, admin: true };
  }

  private suffixEntryAttrs(): TypedAttrs {
    const rdn = this.suffixDn[0];
    if (rdn.length !== 1) throw new DirectoryError('namingViolation', 'multi-valued suffix RDN');
    const at = this.schema.attr(rdn[0].type);
    const v = rdn[0].value;
    switch (at?.lname) {
      case 'o':
        return typedAttrs(this.schema, [{ type: 'objectClass', values: ['top', 'organization'] }, { type: 'o', values: [v] }]);
      case 'dc':
        return typedAttrs(this.schema, [{ type: 'objectClass', values: ['top', 'domain'] }, { type: 'dc', values: [v] }]);
      case 'ou':
        return typedAttrs(this.schema, [{ type: 'objectClass', values: ['top', 'organizationalUnit'] }, { type: 'ou', values: [v] }]);
      case 'c':
        return typedAttrs(this.schema, [{ type: 'objectClass', values: ['top', 'country'] }, { type: 'c', values: [v] }]);
      default:
        throw new DirectoryError('namingViolation', `suffix naming attribute ${rdn[0].type} is not one of o, dc, ou, c`);
    }
  }

  // ---------------------------------------------------------------- reads

  /** Normalises a DN string; throws invalidDNSyntax (34). */
  normalize(dn: string): string {
    return this.normalizeParsed(this.parse(dn));
  }

  private normalizeParsed(dn: Dn): string {
    try {
      return this.schema.normalizeDn(dn);
    } catch (e) {
      if (e instanceof DnSyntaxError) throw new DirectoryError('invalidDNSyntax', e.message);
      throw e;
    }
  }

  private parse(dn: string): Dn {
    try {
      return parseDn(dn);
    } catch (e) {
      if (e instanceof DnSyntaxError) throw new DirectoryError('invalidDNSyntax', e.message);
      throw e;
    }
  }

  /**
   * Simple bind (RFC 4513 §5.1). Unknown DN and wrong password both give
   * invalidCredentials (49), after the same work (checkPassword). With
   * `client` (the address the bind came from), the guessing throttle applies.
   */
  async bind(dn: string, password: string, client?: string): Promise<Identity> {
    if (dn === '' && password === '') return ANONYMOUS;
    // RFC 4513 §5.1.2: an unauthenticated bind (name, no password) is refused.
    if (password === '') throw new UnwillingError('unauthenticated bind (DN with no password) disallowed');
    let ndn: string | undefined;
    try {
      ndn = this.schema.normalizeDn(dn);
    } catch {
      ndn = undefined;
    }
    const entry = ndn === undefined ? undefined : this.store.getByNdn(ndn);
    return this.checkPassword(entry, ndn ?? dn.trim().toLowerCase(), password, client);
  }

  /**
   * Checks `password` against the userPassword values of `entry` (undefined:
   * no such entry) and resolves with its identity, or rejects with
   * invalidCredentials (49). Either way the work is that of a check: with no
   * stored value to compute, the password is checked against a dummy of the
   * configured scheme (Passwords.match), so the time taken tells nothing of
   * the entry. With `client`, the guessing throttle counts the attempt
   * against `account` (the entry's normalised DN, or the name given) and the
   * client (auth-throttle.ts): a refused attempt rejects with
   * TooManyFailuresError before any check, a failure is answered after its
   * delay. After a success, an entry's one stored value in another scheme or
   * at another cost is rehashed in the configured one (DCMX_PASSWORD_REHASH),
   * by the writer (a `rehash` command, useWriter), before this resolves: the
   * bind itself is a read. The doors' bind (LDAP) and login (SMTP AUTH) end here.
   */
  async checkPassword(entry: StoredEntry | undefined, account: string, password: string, client?: string): Promise<Identity> {
    const attempt = client === undefined ? undefined : await this.throttle.begin(client, account);
    const values = entry?.attrs.userPassword ?? [];
    let matched: string | undefined;
    try {
      matched = await this.passwords.match(password, values);
    } catch (err) {
      await attempt?.failed();
      throw err;
    }
    if (!entry || matched === undefined) {
      await attempt?.failed();
      throw new InvalidCredentialsError();
    }
    attempt?.succeeded();
    const who: Identity = { dn: entry.dn, ndn: entry.ndn, anonymous: false, admin: entry.ndn === this.adminNdn };
    if (this.passwords.options.rehash && values.length === 1 && this.passwords.needsRehash(matched)) await this.rehash(who, matched, password);
    return who;
  }

  /**
   * Replaces the one stored value `old` of `who`'s entry by a hash of
   * `password` in the configured scheme (hashed here, on this thread's pool),
   * through the writer: a `rehash` command, a modify by `who` in the change
   * log. Without a writer, a writable directory applies it itself. Nothing
   * happens when the value changed meanwhile or the password cannot be
   * hashed (too long); a failure is no failure of the bind.
   */
  private async rehash(who: Identity, old: string, password: string): Promise<void> {
    try {
      const fresh = await this.passwords.hashClear(password);
      const cmd = { kind: 'rehash' as const, who, old, fresh };
      if (this.writer) await this.writer.execute(cmd);
      else if (!this.readOnly) this.replacePassword(who, old, fresh);
      else if (!this.warnedNoWriter) {
        this.warnedNoWriter = true;
        process.emitWarning('dcmx: a directory reader without a writer (Directory.useWriter) does not rehash passwords');
      }
    } catch {
      // the password is not storable (too long), or the writer failed: keep what is stored
    }
  }

  /**
   * Sets the writer this directory's binds send their rehash to (a `rehash`
   * command, writes.ts). Without one, a writable directory applies it
   * itself; with `ifUnset`, a writer already set is kept.
   */
  useWriter(writer: DirectoryWriter, opts: { ifUnset?: boolean } = {}): void {
    if (opts.ifUnset && this.writer) return;
    this.writer = writer;
  }

  /**
   * Writer side (the `rehash` command): replaces the one stored value `old`
   * of `who`'s entry by `fresh`, a modify by `who` through the write path
   * (a change-log row). Resolves with its change number, or undefined when
   * nothing was replaced: the value changed since it was checked, or
   * `fresh` is not storable.
   */
  replacePassword(who: Identity, old: string, fresh: string): number | undefined {
    this.writable('replacePassword');
    try {
      return this.write(() => this.modifyTyped(who, who.dn, [
        { op: 'delete', type: 'userPassword', values: [old] },
        { op: 'add', type: 'userPassword', values: [fresh] },
      ], {}));
    } catch {
      return undefined;
    }
  }

  /** The entry at `dn` if `who` may read it. */
  get(who: Identity, dn: string): DirEntry | undefined {
    const ndn = this.normalize(dn);
    const e = this.virtual(ndn) ?? this.store.getByNdn(ndn);
    if (!e || !this.access.canRead(who, e)) return undefined;
    return e;
  }

  /** Looks a stored entry up by normalised DN, without access control (for domain logic). */
  getByNdn(ndn: string): StoredEntry | undefined {
    return this.store.getByNdn(ndn);
  }

  private virtual(ndn: string): DirEntry | undefined {
    if (ndn === '') return rootDse(this.suffix, this.features, this.store.changeRange(), this.contextCsn());
    if (ndn === this.subschemaNdn) return subschemaEntry(this.schema, ndn);
    if (ndn === this.changelogNdn) return changelogContainer(ndn);
    const m = /^changenumber=(\d+),(.*)$/.exec(ndn);
    if (m && m[2] === this.changelogNdn) {
      const n = Number(m[1]);
      for (const c of this.store.changes(n, n)) return changeEntry(c, this.changelogNdn);
    }
    return undefined;
  }

  /** The DN of the deepest existing ancestor of `dn` (RFC 4511 §4.1.9 matchedDN). */
  matchedDN(dn: Dn): string {
    for (let k = 1; k < dn.length; k++) {
      const e = this.store.getByNdn(this.schema.normalizeDn(dn.slice(k)));
      if (e) return e.dn;
    }
    return '';
  }

  /**
   * Runs a search, calling `onEntry` for each result in order. Throws
   * SizeLimitError / TimeLimitError after delivering the entries within the
   * limit, and noSuchObject when the base does not exist or is not visible.
   */
  search(who: Identity, req: SearchRequest, onEntry: (e: SearchEntry) => void): SearchOutcome {
    const run = this.startSearch(who, req, onEntry);
    for (;;) {
      const done = run.step(() => false);
      if (done) return done;
    }
  }

  /**
   * `search` in steps (see {@link SearchRun}). The request is checked, and
   * its filter compiled, at once: errors about the base or the filter are
   * thrown here; the candidates are considered by the steps.
   */
  startSearch(who: Identity, req: SearchRequest, onEntry: (e: SearchEntry) => void): SearchRun {
    const started = Date.now();
    const { dn: baseDn, ndn: baseNdn } = this.searchBase(req.base);
    const { filter, consider, view } = this.prepare(who, req);
    const limit = this.effectiveLimit(who, req.sizeLimit, this.sizeLimit);
    const timeLimitMs = this.effectiveLimit(who, req.timeLimit, this.timeLimit) * 1000;
    let count = 0;
    // RFC 2696 §3: the size limit applies to the whole paged search, so the
    // entries of earlier pages count (the cursor carries them).
    const sentBefore = req.page?.cursor?.sent ?? 0;
    const pageSize = req.page?.size ?? 0;

    const deliver = (e: DirEntry) => {
      if (limit && sentBefore + count >= limit) throw new SizeLimitError();
      count++;
      onEntry(view(e));
    };
    const checkTime = () => {
      if (timeLimitMs && Date.now() - started > timeLimitMs) throw new TimeLimitError();
    };
    const once = (f: () => SearchOutcome): SearchRun => ({ step: f });

    // Virtual bases.
    if (baseNdn === '' && req.scope === 'base') {
      return once(() => {
        const dse = this.virtual('')!;
        if (consider(dse)) deliver(dse);
        return { count };
      });
    }
    if (baseNdn === this.subschemaNdn) {
      return once(() => {
        const ss = this.virtual(baseNdn)!;
        if (req.scope === 'base' && consider(ss)) deliver(ss);
        return { count };
      });
    }
    if (baseNdn === this.changelogNdn || baseNdn.endsWith(',' + this.changelogNdn)) {
      return once(() => this.searchChangelog(who, baseNdn, req.scope, consider, deliver, checkTime, baseDn));
    }

    let base: StoredEntry | undefined;
    let scope = req.scope;
    if (baseNdn === '') {
      // One level under the root DSE is the naming context; a subtree is all of it, and so are its children.
      base = this.storedBase(this.suffixNdn);
      if (!base) return once(() => ({ count }));
      if (scope === 'one') scope = 'base';
      else if (scope === 'children') scope = 'sub';
    } else {
      base = this.storedBase(baseNdn);
    }
    if (!base || !this.access.canRead(who, base)) {
      throw new NoSuchObjectError(req.base, base ? '' : this.visibleMatchedDN(who, baseDn));
    }
    const from = base;
    // parentsFirst: an entry moved below a parent made after it (candidates come in id order) waits for it.
    const waiting = new Map<number, StoredEntry[]>();
    const wait = (e: StoredEntry) => {
      const list = waiting.get(e.parentId!);
      if (list) list.push(e);
      else waiting.set(e.parentId!, [e]);
    };
    const release = (e: StoredEntry): void => {
      deliver(e);
      const children = waiting.get(e.id);
      if (!children) return;
      waiting.delete(e.id);
      for (const c of children) release(c);
    };
    // The last candidate considered (steps resume after it) and the last entry delivered (the paging cursor).
    let scanned = req.page?.cursor?.afterId;
    let rows = 0;
    let lastId = 0;
    return {
      step: (stop) => {
        for (const e of this.candidates({ base: from, scope, filter, afterId: scanned })) {
          scanned = e.id;
          if ((++rows & 63) === 0) checkTime();
          if (consider(e)) {
            // One more entry than the limit allows ends the search with sizeLimitExceeded, even at a page boundary.
            if (limit && sentBefore + count >= limit) throw new SizeLimitError();
            if (pageSize && count >= pageSize) return { count, nextCursor: { afterId: lastId, sent: sentBefore + count } };
            if (req.parentsFirst && e.parentId !== null && e.parentId > e.id) wait(e);
            else release(e);
            lastId = e.id;
          }
          // Leaving the loop closes the candidates' statement: nothing is held open between steps.
          if (stop()) return undefined;
        }
        checkTime();
        // Those whose parent the search does not return.
        for (const [, children] of waiting) for (const c of children) release(c);
        return { count };
      },
    };
  }

  /**
   * A search's candidates (Store.candidates): an index-driven query that
   * finds few entries from the search cache, when this thread's views are
   * in step with the change clock and no write transaction is open (whose
   * own writes the cache does not follow); otherwise from the store.
   */
  private candidates(q: EntryQuery): Iterable<StoredEntry> {
    if (!this.store.inTransaction && this.synced === this.clock.current()) {
      const found = this.searchCache.driven(q);
      if (found) return found;
    }
    return this.store.candidates(q);
  }

  /**
   * A search's base DN, parsed and normalised (invalidDNSyntax as parse
   * throws it); the last few are kept, since most searches name one of a
   * few bases: the schema never changes, so neither does the answer.
   */
  private searchBase(base: string): { dn: Dn; ndn: string } {
    let b = this.searchBases.get(base);
    if (!b) {
      const dn = this.parse(base);
      b = { dn, ndn: this.normalizeParsed(dn) };
      if (this.searchBases.size >= SEARCH_BASES_KEPT) this.searchBases.clear();
      this.searchBases.set(base, b);
    }
    return b;
  }

  /**
   * The stored entry a search starts from. The last few found are kept
   * until the change clock moves: every write moves it (after its commit,
   * before its reply), so a search after a write's reply reads the entry again.
   */
  private storedBase(ndn: string): StoredEntry | undefined {
    const now = this.clock.current();
    if (now !== this.baseEntriesAt) {
      this.baseEntries.clear();
      this.baseEntriesAt = now;
    }
    let e = this.baseEntries.get(ndn);
    if (!e) {
      e = this.store.getByNdn(ndn);
      if (!e) return undefined;
      // Shared by the searches that follow: no one may change it.
      Object.freeze(e.attrs);
      Object.freeze(e);
      if (this.baseEntries.size >= SEARCH_BASES_KEPT) this.baseEntries.clear();
      this.baseEntries.set(ndn, e);
    }
    return e;
  }

  /**
   * What decides whether and how a search returns an entry: the compiled
   * filter, `consider` (may `who` read it, and does the filter match it)
   * and `view` (its result form). Throws inappropriateMatching for a
   * filter that does not compile.
   */
  private prepare(who: Identity, req: SearchRequest): { filter: Filter; consider(e: DirEntry): boolean; view(e: DirEntry): SearchEntry } {
    let filter: Filter;
    try {
      filter = compileFilter(this.schema, req.filter);
    } catch (e) {
      if (e instanceof FilterError) throw new DirectoryError('inappropriateMatching', e.message);
      throw e;
    }
    const sel = parseSelection(this.schema, req.attributes);
    const noAttrs = req.attributes.length > 0 && req.attributes.every((a) => a === '1.1');
    const make = (e: DirEntry): SearchEntry => ({ dn: e.dn, uuid: e.attrs.entryUUID?.[0], attrs: noAttrs ? [] : this.select(who, e, sel, req.typesOnly) });
    // hasSubordinates changes with the entry's children, which a change of the entry does not tell: not kept.
    const keep = noAttrs || !selected(sel, this.computedTypes[0]);
    const viewKey = `${req.typesOnly ? 1 : 0}${req.attributes.join('\u0000')}`;
    return {
      filter,
      consider: (e) => {
        if (!this.access.canRead(who, e)) return false;
        const hidden = this.access.hiddenAttributes(who, e);
        return matches(filter, matchTarget(this.schema, e, hidden, this.computedValues(e)));
      },
      // The view depends on `who` only through the attributes hidden from it (select), which key the kept views.
      view: (e) => (keep ? this.searchCache.view(e, this.access.hiddenAttributes(who, e), viewKey, make) : make(e)),
    };
  }

  /**
   * The search of a Content Sync session (RFC 4533) judging one stored
   * entry at a time, as later changes bring them: `view` is the entry's
   * result form when it is in the search's scope, readable by `who` and
   * matched by the filter, undefined otherwise; `inScope` tells whether a DN
   * is within base and scope (for a deleted entry, whose attributes are
   * gone). The base is the DN the session named: once that entry is
   * renamed or deleted, nothing is in scope any more. Throws, as startSearch
   * does, for a bad base or filter; a sync of a virtual entry (root DSE,
   * schema, change log) is unwillingToPerform.
   */
  syncMatcher(who: Identity, req: SearchRequest): SyncMatcher {
    const baseDn = this.parse(req.base);
    let baseNdn = this.normalizeParsed(baseDn);
    let scope = req.scope;
    if (baseNdn === '' && scope !== 'base') {
      baseNdn = this.suffixNdn;
      if (scope === 'one') scope = 'base';
      else if (scope === 'children') scope = 'sub';
    } else if (baseNdn === '' || baseNdn === this.subschemaNdn || baseNdn === this.changelogNdn || baseNdn.endsWith(',' + this.changelogNdn)) {
      throw new UnwillingError('Content Sync covers the stored entries only, not the root DSE, the schema or the change log');
    }
    const base = this.store.getByNdn(baseNdn);
    if (!base || !this.access.canRead(who, base)) throw new NoSuchObjectError(req.base, base ? '' : this.visibleMatchedDN(who, baseDn));
    const { consider, view } = this.prepare(who, req);
    const depth = baseDn.length || this.suffixDn.length;
    const inScope = (ndn: string): boolean => {
      const under = ndn === baseNdn ? 0 : ndn.endsWith(',' + baseNdn) ? 1 : -1;
      switch (scope) {
        case 'base':
          return under === 0;
        case 'one':
          return under === 1 && this.parse(ndn).length === depth + 1;
        case 'children':
          return under === 1;
        case 'sub':
          return under >= 0;
      }
    };
    return {
      view: (e) => (inScope(e.ndn) && consider(e) ? view(e) : undefined),
      inScope,
      byUuid: (uuid) => this.store.getByUuid(uuid),
      descendants: (e) => this.store.descendants(e.rpath),
      readsAll: this.access.readsAllEntries(who),
    };
  }

  private visibleMatchedDN(who: Identity, dn: Dn): string {
    const m = this.matchedDN(dn);
    if (!m) return '';
    const e = this.store.getByNdn(this.schema.normalizeDn(m));
    return e && this.access.canRead(who, e) ? m : '';
  }

  private effectiveLimit(who: Identity, requested: number, server: number): number {
    // A replica copies the whole directory, a remote unit follows every address: their identities are held to
    // no server limit, as the administrator.
    if (this.access.isUnlimited(who) || !server) return requested;
    return requested ? Math.min(requested, server) : server;
  }

  private searchChangelog(
    who: Identity, baseNdn: string, scope: Scope, consider: (e: DirEntry) => boolean, deliver: (e: DirEntry) => void,
    checkTime: () => void, baseDn: Dn,
  ): SearchOutcome {
    let count = 0;
    const counting = (e: DirEntry) => {
      deliver(e);
      count++;
    };
    const container = changelogContainer(this.changelogNdn);
    if (baseNdn !== this.changelogNdn) {
      const one = this.virtual(baseNdn);
      if (!one || !this.access.canRead(who, one)) throw new NoSuchObjectError(formatDn(baseDn), '');
      if (scope === 'base' && consider(one)) counting(one);
      return { count };
    }
    if (!this.access.canRead(who, container)) throw new NoSuchObjectError(formatDn(baseDn), '');
    if ((scope === 'base' || scope === 'sub') && consider(container)) counting(container);
    if (scope === 'base') return { count };
    let rows = 0;
    for (const c of this.store.changes(0)) {
      if ((++rows & 63) === 0) checkTime();
      const e = changeEntry(c, this.changelogNdn);
      if (consider(e)) counting(e);
    }
    return { count };
  }

  /** Selects and computes the attributes of one result entry. */
  private select(who: Identity, e: DirEntry, sel: AttrSelection, typesOnly: boolean): ResultAttr[] {
    const hidden = this.access.hiddenAttributes(who, e);
    const out: ResultAttr[] = [];
    for (const name of Object.keys(e.attrs)) {
      const at = this.schema.attr(name);
      // A mailMessageStore stored before it was computed is shadowed by the computed one.
      if (!at || hidden?.has(at) || !selected(sel, at) || at === this.messageStore) continue;
      out.push([at.name, typesOnly ? [] : e.attrs[name]]);
    }
    if (e.id > 0) {
      const computed = this.computedValues(e);
      for (const at of this.computedTypes) {
        // mailMessageStore only when asked for by name: '*' keeps to what is stored, so a copy
        // of the tree (a slapd replica, a comparison with one) holds what the directory holds.
        if (at === this.messageStore ? !sel.types.has(at) : !selected(sel, at)) continue;
        const values = computed(at);
        if (values) out.push([at.name, typesOnly ? [] : values]);
      }
    }
    return out;
  }

  /**
   * The operational attributes computed for a stored entry, for results and
   * filters alike: hasSubordinates (X.501), entryDN (RFC 5020),
   * subschemaSubentry (RFC 4512 §4.2), structuralObjectClass (RFC 4512 §3.4)
   * and, with a data dir, mailMessageStore (the entry's Maildir; none for an
   * entry without `mail`, or whose address names no mailbox).
   */
  private computedValues(e: DirEntry): ComputedValues {
    if (e.id <= 0) return () => undefined;
    return (at) => {
      switch (at.lname) {
        case 'hassubordinates':
          return [this.store.hasChildren(e.id) ? 'TRUE' : 'FALSE'];
        case 'entrydn':
          return [e.dn];
        case 'subschemasubentry':
          return [SUBSCHEMA_DN];
        case 'structuralobjectclass':
          return [this.structuralClass(e.attrs.objectClass ?? [])];
        case 'mailmessagestore':
          return this.maildirOf(e);
        default:
          return undefined;
      }
    };
  }

  /** The Maildir an entry's mail is delivered into (server/mta/delivery.ts: its first `mail` value), when it names one. */
  private maildirOf(e: DirEntry): string[] | undefined {
    const address = e.attrs.mail?.[0];
    if (this.dataDir === undefined || address === undefined) return undefined;
    try {
      return [mailboxPath(this.dataDir, normalizeAddress(address))];
    } catch {
      return undefined; // InvalidMailboxError: no mailbox for such an address
    }
  }

  /** True when structural class `a` is a subclass of `b` (server-internal writes may refine, e.g. domain -> dNSDomain2). */
  private refines(a: string, b: string): boolean {
    const ca = this.schema.objectClass(a);
    const cb = this.schema.objectClass(b);
    return !!ca && !!cb && ca.ancestors.has(cb);
  }

  private structuralClass(values: string[]): string {
    let best: { name: string; depth: number } | undefined;
    for (const v of values) {
      const oc = this.schema.objectClass(v);
      if (oc?.kind === 'structural' && (!best || oc.ancestors.size > best.depth)) best = { name: oc.name, depth: oc.ancestors.size };
    }
    return best?.name ?? 'top';
  }

  /** Compare (RFC 4511 §4.10). Returns the match; throws noSuchObject / noSuchAttribute / insufficientAccess. */
  compare(who: Identity, dn: string, type: string, value: string): boolean {
    const parsed = this.parse(dn);
    const ndn = this.normalize(dn);
    const e = this.virtual(ndn) ?? this.store.getByNdn(ndn);
    if (!e || !this.access.canRead(who, e)) throw new NoSuchObjectError(dn, this.visibleMatchedDN(who, parsed));
    const at = this.schema.attr(type);
    if (!at) throw new DirectoryError('undefinedAttributeType', `${type}: attribute type undefined`);
    if (!this.access.canCompare(who, e, at)) throw new InsufficientAccessError();
    if (!at.equality) throw new DirectoryError('inappropriateMatching', `${at.name} has no equality matching rule`);
    const target = matchTarget(this.schema, e, undefined, this.computedValues(e));
    const have = [at, ...at.subtypes].some((t) => target.values(t) !== undefined);
    if (!have) throw new DirectoryError('noSuchAttribute', `${at.name}: no such attribute`);
    const f = compileFilter(this.schema, { type: 'equal', attr: type, value });
    return matches(f, target);
  }

  // ---------------------------------------------------------------- the write path

  /**
   * Runs `fn` in one transaction of the write path and notifies listeners
   * after the outermost commit. Nested calls join the outer transaction.
   */
  write<T>(fn: () => T): T {
    this.writable('write');
    const outer = !this.store.db.inTransaction;
    const mark = this.pending.length;
    let result: T;
    try {
      result = this.store.transaction(() => {
        const r = fn();
        if (outer && this.pending.length) for (const h of this.commitHooks) h(this.pending);
        return r;
      });
    } catch (e) {
      this.pending.length = mark;
      throw translate(e);
    }
    if (outer) {
      const done = this.pending;
      this.pending = [];
      // The commit stands whatever a listener does: a failing view must not turn a durable write into an error.
      if (done.length) {
        // Published before the write returns (and so before any door replies): every thread's next read sees it.
        this.publishCommitted();
        for (const l of this.listeners) {
          try {
            l(done);
          } catch (err) {
            process.emitWarning(`dcmx: a change listener failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
          }
        }
      }
    }
    return result;
  }

  private record(c: AppliedChange): void {
    for (const h of this.hooks) h(c);
    this.pending.push(c);
  }

  /**
   * Readies userPassword values given by `who` (default: the administrator)
   * for the store, off the event loop (Passwords.prepare): clear text is
   * hashed; a pre-hashed value is the administrator's alone, in a known
   * scheme under the work caps. add() and modify() call it; bulk loaders
   * call it before addSync() in a batch.
   */
  async hashPasswords(attrs: AttrInput[], who: Identity = this.systemIdentity()): Promise<AttrInput[]> {
    const out: AttrInput[] = [];
    for (const a of attrs) {
      if (this.schema.attr(a.type) === this.userPassword) {
        out.push({ type: a.type, values: await Promise.all(a.values.map((v) => this.passwords.prepare(v, who.admin))) });
      } else out.push(a);
    }
    return out;
  }

  /**
   * Sets the password of `dn` to the clear-text `password`, hashed whoever
   * gives it (RFC 3062 Password Modify: newPasswd is a password, never a hash).
   */
  async setPassword(who: Identity, dn: string, password: string): Promise<number> {
    this.writable('setPassword');
    const hash = await this.passwords.hashClear(password);
    return this.write(() => this.modifyTyped(who, dn, [{ op: 'replace', type: 'userPassword', values: [hash] }], {}));
  }

  /**
   * The write path's last word on passwords: every userPassword value new
   * in this write must be storable (a hash in a known scheme under the
   * caps), and only the administrator may leave an entry with more than one.
   */
  private checkPasswords(who: Identity, before: readonly string[], after: readonly string[]): void {
    const had = new Set(before);
    for (const v of after) if (!had.has(v)) this.passwords.checkStorable(v);
    if (after.length > 1 && !who.admin && after.length > before.length) {
      throw new DirectoryError('constraintViolation', 'userPassword: one password per entry (the administrator may set more)');
    }
  }

  /**
   * The mail domain `dn` is at or below, as the access policy judges
   * managers (access.ts DomainScope): the nearest entry at or above it with
   * the mailDomain class whose DN is a dc chain below the suffix.
   */
  domainAt(dn: Dn): DomainScope | undefined {
    for (let i = 0; i < dn.length - this.suffixDn.length; i++) {
      const e = this.store.getByNdn(this.normalizeParsed(dn.slice(i)));
      if (!e || !(e.attrs.objectClass ?? []).some((c) => c.toLowerCase() === 'maildomain')) continue;
      const name = this.dnsNames.fromDn(e.dn, e.ndn);
      if (name === undefined) continue;
      const owners: string[] = [];
      for (const v of e.attrs.owner ?? []) {
        try {
          owners.push(this.normalize(v));
        } catch {
          // an owner value that is no DN names nobody
        }
      }
      return { ndn: e.ndn, name, owners };
    }
    return undefined;
  }

  /** The access policy's check of an add or delete of `dn`: the administrator, or the manager of its mail domain (access.ts). */
  private mayWriteTree(who: Identity, dn: string): boolean {
    if (who.admin) return true;
    const parsed = this.parse(dn);
    return this.access.canWriteTree(who, this.normalizeParsed(parsed), this.domainAt(parsed));
  }

  /** Refuses an entry that a domain manager would leave with an address outside its domain (AccessPolicy.addressesAllowed). */
  private checkAddresses(who: Identity, domain: DomainScope | undefined, attrs: TypedAttrs): void {
    const values = (lname: string) => attrs.get(this.schema.attr(lname)!) ?? [];
    if (!this.access.addressesAllowed(who, domain, values)) {
      throw new InsufficientAccessError(`a domain manager writes addresses of ${domain?.name} only`);
    }
  }

  /** LDAP-style add (RFC 4511 §4.7). Resolves with the change number. */
  async add(who: Identity, dn: string, attrs: AttrInput[], opts: WriteOptions = {}): Promise<number> {
    this.writable('add');
    if (!this.mayWriteTree(who, dn)) throw new InsufficientAccessError();
    const hashed = await this.hashPasswords(attrs);
    return this.write(() => this.addTyped(who, dn, typedAttrs(this.schema, hashed), opts));
  }

  /** Synchronous add for server-internal writes; userPassword values must be ready (hashPasswords). */
  addSync(who: Identity, dn: string, attrs: AttrInput[], opts: WriteOptions = {}): number {
    this.writable('addSync');
    if (!this.mayWriteTree(who, dn)) throw new InsufficientAccessError();
    return this.write(() => this.addTyped(who, dn, typedAttrs(this.schema, attrs), opts));
  }

  private addTyped(who: Identity, dn: string, attrs: TypedAttrs, opts: WriteOptions): number {
    const parsed = this.parse(dn);
    if (parsed.length === 0) throw new UnwillingError('cannot add the root DSE');
    const ndn = this.normalize(dn);
    if (ndn === this.subschemaNdn || ndn === this.changelogNdn || ndn.endsWith(',' + this.changelogNdn)) {
      throw new UnwillingError(`${dn} is maintained by the server`);
    }
    if (this.store.getByNdn(ndn)) throw new AlreadyExistsError(dn);
    const rdnNorm = this.schema.normalizeRdn(parsed[0]);
    let parent: StoredEntry | undefined;
    let rpath: string;
    if (ndn === this.suffixNdn) {
      rpath = this.suffixDn.slice().reverse().map((r) => this.schema.normalizeRdn(r) + RPATH_SEP).join('');
    } else {
      parent = this.store.getByNdn(this.schema.normalizeDn(parsed.slice(1)));
      if (!parent) throw new DirectoryError('noSuchObject', `parent of ${dn} does not exist`, this.matchedDN(parsed));
      rpath = parent.rpath + rdnNorm + RPATH_SEP;
    }
    const typed = this.schema.withRdnValues(attrs, parsed[0]);
    if (this.messageStore && typed.has(this.messageStore)) this.refuseComputed(this.messageStore);
    this.validate(typed, parsed[0], opts);
    this.checkPasswords(who, [], typed.get(this.userPassword) ?? []);
    if (!who.admin) this.checkAddresses(who, this.domainAt(parsed), typed);
    const now = generalizedTimeNow();
    const put = (name: string, v: string) => {
      const at = this.schema.attr(name)!;
      if (!typed.has(at)) typed.set(at, [v]);
    };
    put('entryUUID', randomUUID());
    put('createTimestamp', now);
    put('modifyTimestamp', now);
    put('creatorsName', who.dn);
    put('modifiersName', who.dn);
    // An import keeps the entryCSN it gives (as slapadd does), like the timestamps.
    const csn = this.newCsn();
    put('entryCSN', csn);
    const stored = storedFromTyped(typed);
    const formatted = formatDn(parsed);
    const id = this.store.insert(
      { dn: formatted, ndn, rpath, parentId: parent ? parent.id : null, attrs: stored },
      indexRows(this.schema, stored, this.store.indexedAttributes),
    );
    const changeNumber = this.store.appendChange({
      changeTime: now, targetDN: formatted, targetNdn: ndn, entryUUID: entryUuidOf(stored), actor: who.dn, csn,
      changeType: 'add', attributes: Object.fromEntries(this.userAttrs(stored)),
    });
    this.record({ changeNumber, type: 'add', after: { id, dn: formatted, ndn, attrs: stored } });
    return changeNumber;
  }

  private userAttrs(attrs: Record<string, string[]>): [string, string[]][] {
    return Object.entries(attrs).filter(([k]) => !this.schema.attr(k)?.operational);
  }

  /** A computed attribute given in a write (mailMessageStore with a data dir): constraintViolation, whoever writes. */
  private refuseComputed(at: AttributeType): never {
    throw new DirectoryError('constraintViolation', `${at.name} is computed by dcmx from mail (the Maildir mail is delivered into): it cannot be written`);
  }

  private validate(attrs: TypedAttrs, rdn: Rdn, opts: WriteOptions): void {
    try {
      this.schema.validate(attrs, rdn, { relax: opts.relax });
    } catch (e) {
      throw translate(e);
    }
  }

  /** LDAP-style modify (RFC 4511 §4.6). Resolves with the change number. */
  async modify(who: Identity, dn: string, mods: Modification[], opts: WriteOptions = {}): Promise<number> {
    this.writable('modify');
    const hashed: Modification[] = [];
    for (const m of mods) {
      if (this.schema.attr(m.type) === this.userPassword && (m.op === 'add' || m.op === 'replace')) {
        hashed.push({ ...m, values: (await this.hashPasswords([{ type: m.type, values: m.values }], who))[0].values });
      } else hashed.push(m);
    }
    return this.write(() => this.modifyTyped(who, dn, hashed, opts));
  }

  /** Synchronous modify for server-internal writes (values must already be hashed). */
  modifySync(who: Identity, dn: string, mods: Modification[], opts: WriteOptions = {}): number {
    this.writable('modifySync');
    return this.write(() => this.modifyTyped(who, dn, mods, opts));
  }

  private modifyTyped(who: Identity, dn: string, mods: Modification[], opts: WriteOptions): number {
    const parsed = this.parse(dn);
    const ndn = this.normalize(dn);
    const cur = this.store.getByNdn(ndn);
    if (!cur) {
      if (this.virtual(ndn)) throw new UnwillingError(`${dn} is maintained by the server`);
      throw new NoSuchObjectError(dn, this.matchedDN(parsed));
    }
    const types = mods.map((m) => {
      const at = this.schema.attr(m.type);
      if (!at) throw new DirectoryError('undefinedAttributeType', `${m.type}: attribute type undefined`);
      return at;
    });
    const domain = who.admin ? undefined : this.domainAt(parsed);
    if (!this.access.canModify(who, ndn, types, domain)) throw new InsufficientAccessError();
    const attrs = typedFromStored(this.schema, cur.attrs);
    const ocBefore = this.structuralClass(cur.attrs.objectClass ?? []);
    mods.forEach((m, i) => this.applyMod(attrs, types[i], m, opts));
    if (!who.admin) this.checkAddresses(who, domain, attrs);
    // Users may change their own password, not remove it and lock themselves out; the admin may.
    if (cur.attrs.userPassword?.length && !attrs.get(this.userPassword)?.length && !this.access.mayRemovePassword(who)) {
      throw new InsufficientAccessError('a user may replace its password but not remove it');
    }
    if (types.includes(this.userPassword)) this.checkPasswords(who, cur.attrs.userPassword ?? [], attrs.get(this.userPassword) ?? []);
    // RFC 4511 §4.6: the RDN's values cannot be removed by modify.
    for (const ava of parsed[0]) {
      const at = this.schema.attr(ava.type)!;
      const norm = at.normalize(ava.value);
      if (!(attrs.get(at) ?? []).some((v) => at.normalize(v) === norm)) {
        throw new DirectoryError('notAllowedOnRDN', `cannot remove the RDN value of ${at.name}`);
      }
    }
    const ocAfter = this.structuralClass(attrs.get(this.schema.objectClassType) ?? []);
    if (ocAfter !== ocBefore && !(opts.relax && this.refines(ocAfter, ocBefore))) {
      throw new DirectoryError('objectClassModsProhibited', 'structural object class modification prohibited');
    }
    const forValidation = new Map([...attrs].filter(([at]) => !at.noUserModification));
    this.validate(forValidation, parsed[0], opts);
    const now = generalizedTimeNow();
    attrs.set(this.schema.attr('modifyTimestamp')!, [now]);
    attrs.set(this.schema.attr('modifiersName')!, [who.dn]);
    const csn = this.newCsn();
    attrs.set(this.entryCsn, [csn]);
    const stored = storedFromTyped(attrs);
    this.store.updateAttrs(cur.id, stored, indexRows(this.schema, stored, this.store.indexedAttributes));
    const changeNumber = this.store.appendChange({
      changeTime: now, targetDN: cur.dn, targetNdn: ndn, entryUUID: entryUuidOf(stored), actor: who.dn, csn,
      changeType: 'modify', modifications: mods.map((m, i) => ({ op: m.op, type: types[i].name, values: m.values })),
    });
    this.record({
      changeNumber, type: 'modify', before: cur, after: { id: cur.id, dn: cur.dn, ndn, attrs: stored },
    });
    return changeNumber;
  }

  private applyMod(attrs: TypedAttrs, at: AttributeType, m: Modification, opts: WriteOptions): void {
    if (at.noUserModification && !opts.relax) {
      throw new DirectoryError('constraintViolation', `${at.name}: no user modification allowed`);
    }
    // Deleting one stored before it was computed is allowed (clean-up).
    if (at === this.messageStore && m.op !== 'delete') this.refuseComputed(at);
    const have = attrs.get(at) ?? [];
    // Values compare under the attribute's equality rule; objectClass values by class (an OID or alias names the same class).
    const norm = at === this.schema.objectClassType
      ? (v: string) => this.schema.objectClass(v)?.lname ?? v.trim().toLowerCase()
      : (v: string) => at.normalize(v) ?? v;
    switch (m.op) {
      case 'add': {
        if (m.values.length === 0) throw new DirectoryError('protocolError', `${at.name}: add without values`);
        const present = new Set(have.map(norm));
        for (const v of m.values) {
          const n = at.normalize(v);
          if (n === undefined) throw new DirectoryError('invalidAttributeSyntax', `${at.name}: value invalid per syntax`);
          if (present.has(norm(v))) throw new DirectoryError('attributeOrValueExists', `${at.name}: value #0 already exists`);
          present.add(norm(v));
        }
        attrs.set(at, [...have, ...m.values]);
        break;
      }
      case 'delete': {
        if (!attrs.has(at)) throw new DirectoryError('noSuchAttribute', `${at.name}: no such attribute`);
        if (m.values.length === 0) {
          attrs.delete(at);
          break;
        }
        let rest = have;
        for (const v of m.values) {
          const n = norm(v);
          const i = rest.findIndex((x) => norm(x) === n);
          if (i < 0) throw new DirectoryError('noSuchAttribute', `${at.name}: no such value`);
          rest = rest.filter((_, j) => j !== i);
        }
        if (rest.length) attrs.set(at, rest);
        else attrs.delete(at);
        break;
      }
      case 'replace':
        if (m.values.length) attrs.set(at, [...m.values]);
        else attrs.delete(at);
        break;
      case 'increment': {
        // RFC 4525 §3
        if (at.equality !== 'integerMatch') throw new DirectoryError('constraintViolation', `${at.name}: not an integer attribute`);
        if (!have.length) throw new DirectoryError('noSuchAttribute', `${at.name}: no such attribute`);
        if (m.values.length !== 1 || !/^-?\d+$/.test(m.values[0])) throw new DirectoryError('protocolError', 'increment needs one integer value');
        const by = BigInt(m.values[0]);
        attrs.set(at, have.map((v) => String(BigInt(v) + by)));
        break;
      }
    }
  }

  /** Delete (RFC 4511 §4.8). Resolves with the change number. */
  delete(who: Identity, dn: string): number {
    this.writable('delete');
    if (!this.mayWriteTree(who, dn)) throw new InsufficientAccessError();
    return this.write(() => {
      const parsed = this.parse(dn);
      const ndn = this.normalize(dn);
      const cur = this.store.getByNdn(ndn);
      if (!cur) {
        if (this.virtual(ndn)) throw new UnwillingError(`${dn} is maintained by the server`);
        throw new NoSuchObjectError(dn, this.matchedDN(parsed));
      }
      if (this.store.hasChildren(cur.id)) throw new NotAllowedOnNonLeafError(dn);
      if (ndn === this.adminNdn) throw new UnwillingError('the administrator entry cannot be deleted');
      this.store.delete(cur.id);
      const changeNumber = this.store.appendChange({
        changeTime: generalizedTimeNow(), targetDN: cur.dn, targetNdn: ndn, entryUUID: entryUuidOf(cur.attrs), actor: who.dn,
        csn: this.newCsn(), changeType: 'delete',
      });
      this.record({ changeNumber, type: 'delete', before: cur });
      return changeNumber;
    });
  }

  /** ModifyDN (RFC 4511 §4.9), moving the subtree. Resolves with the change number. */
  modifyDN(who: Identity, dn: string, newRdnStr: string, deleteOldRdn: boolean, newSuperior?: string): number {
    this.writable('modifyDN');
    if (!this.access.canWriteTree(who)) throw new InsufficientAccessError();
    return this.write(() => {
      const parsed = this.parse(dn);
      const ndn = this.normalize(dn);
      const cur = this.store.getByNdn(ndn);
      if (!cur) {
        if (this.virtual(ndn)) throw new UnwillingError(`${dn} is maintained by the server`);
        throw new NoSuchObjectError(dn, this.matchedDN(parsed));
      }
      if (ndn === this.suffixNdn) throw new UnwillingError('cannot rename the suffix entry');
      const newRdnDn = this.parse(newRdnStr);
      if (newRdnDn.length !== 1) throw new DirectoryError('invalidDNSyntax', `new RDN '${newRdnStr}' is not a single RDN`);
      const newRdn = newRdnDn[0];
      let parentDn = parsed.slice(1);
      let parent = cur.parentId === null ? undefined : this.store.getById(cur.parentId);
      if (newSuperior !== undefined) {
        parentDn = this.parse(newSuperior);
        const pn = this.normalize(newSuperior);
        parent = this.store.getByNdn(pn);
        if (!parent) throw new NoSuchObjectError(newSuperior, this.matchedDN(parentDn));
        if (pn === ndn || pn.endsWith(',' + ndn)) throw new UnwillingError('cannot move an entry below itself');
      }
      if (!parent) throw new UnwillingError('cannot move outside the naming context');
      const newDnParsed = [newRdn, ...parseDn(parent.dn)];
      const newNdn = this.schema.normalizeDn(newDnParsed);
      if (newNdn !== ndn && this.store.getByNdn(newNdn)) throw new AlreadyExistsError(formatDn(newDnParsed));

      // New attribute values: add the new RDN's values, drop the old ones if asked.
      const attrs = typedFromStored(this.schema, cur.attrs);
      const addValue = (ava: { type: string; value: string }) => {
        const at = this.schema.attr(ava.type);
        if (!at) throw new DirectoryError('undefinedAttributeType', `${ava.type}: attribute type undefined`);
        const have = attrs.get(at) ?? [];
        const n = at.normalize(ava.value);
        if (!have.some((v) => at.normalize(v) === n)) attrs.set(at, [...have, ava.value]);
      };
      for (const ava of newRdn) addValue(ava);
      if (deleteOldRdn) {
        const keep = new Set(newRdn.map((a) => `${this.schema.attr(a.type)?.lname}=${this.schema.attr(a.type)?.normalize(a.value)}`));
        for (const ava of parsed[0]) {
          const at = this.schema.attr(ava.type)!;
          const n = at.normalize(ava.value);
          if (keep.has(`${at.lname}=${n}`)) continue;
          const rest = (attrs.get(at) ?? []).filter((v) => at.normalize(v) !== n);
          if (rest.length) attrs.set(at, rest);
          else attrs.delete(at);
        }
      }
      this.validate(new Map([...attrs].filter(([at]) => !at.noUserModification)), newRdn, {});
      const now = generalizedTimeNow();
      attrs.set(this.schema.attr('modifyTimestamp')!, [now]);
      attrs.set(this.schema.attr('modifiersName')!, [who.dn]);
      const csn = this.newCsn();
      attrs.set(this.entryCsn, [csn]);
      const stored = storedFromTyped(attrs);
      const newDn = formatDn(newDnParsed);
      const newRpath = parent.rpath + this.schema.normalizeRdn(newRdn) + RPATH_SEP;
      const descendants = this.store.descendants(cur.rpath);
      this.store.rename(cur.id, newDn, newNdn, newRpath, parent.id);
      this.store.updateAttrs(cur.id, stored, indexRows(this.schema, stored, this.store.indexedAttributes));
      const moved: { before: DirEntry; after: DirEntry }[] = [];
      for (const d of descendants) {
        // Swap the old suffix of each descendant's DN, path and normalised DN for the new one.
        const dDn = formatDn([...parseDn(d.dn).slice(0, parseDn(d.dn).length - parsed.length), ...newDnParsed]);
        const dNdn = d.ndn.slice(0, d.ndn.length - ndn.length) + newNdn;
        const dRpath = newRpath + d.rpath.slice(cur.rpath.length);
        this.store.rename(d.id, dDn, dNdn, dRpath, d.parentId);
        moved.push({ before: d, after: { id: d.id, dn: dDn, ndn: dNdn, attrs: d.attrs } });
      }
      const changeNumber = this.store.appendChange({
        changeTime: now, targetDN: cur.dn, targetNdn: ndn, entryUUID: entryUuidOf(stored), actor: who.dn, csn,
        changeType: 'modrdn', newRDN: formatRdn(newRdn), deleteOldRDN: deleteOldRdn,
        newSuperior: newSuperior === undefined ? null : formatDn(parentDn), newNdn,
      });
      this.record({
        changeNumber, type: 'modrdn', before: cur, after: { id: cur.id, dn: newDn, ndn: newNdn, attrs: stored },
        moved: moved.length ? moved : undefined,
      });
      return changeNumber;
    });
  }

  /**
   * The CSN of a change being written (csn.ts): after the last one in the
   * log. Inside the write transaction, before the change's row is appended.
   */
  newCsn(): string {
    return nextCsn(this.store.lastChange()?.csn);
  }

  /** The CSN of the last change committed (the root DSE's contextCSN; ZERO_CSN before any). */
  contextCsn(): string {
    return this.syncHead().csn;
  }

  /** The last change committed, number and CSN: a Content Sync provider's state (content-sync.ts). */
  syncHead(): { changeNumber: number; csn: string } {
    return this.store.lastChange() ?? { changeNumber: 0, csn: ZERO_CSN };
  }

  /** The change feed (ChangeRecord: UUIDs and modifications as data) from change number `from` on (to `to`, when given). */
  changesSince(from: number, to?: number): Generator<ChangeRecord> {
    return this.store.changes(from, to);
  }

  /** First and last change numbers. */
  changeRange(): { first: number; last: number } {
    return this.store.changeRange();
  }
}

/** Adds `l` to `list`; returns the function that removes it (the onX registrations of the directory and its views). */
export function addListener<L>(list: L[], l: L): () => void {
  list.push(l);
  return () => {
    const i = list.indexOf(l);
    if (i >= 0) list.splice(i, 1);
  };
}

/** Maps schema and syntax errors from below to directory errors. */
function translate(e: unknown): unknown {
  if (e instanceof SchemaError) return new DirectoryError(e.kind, e.message);
  if (e instanceof DnSyntaxError) return new DirectoryError('invalidDNSyntax', e.message);
  if (e instanceof StoreFileError) return new StoreUnavailableError(e.message);
  return e;
}
