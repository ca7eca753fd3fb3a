/**
 * The directory's side of a Content Sync provider (RFC 4533): where a
 * consumer's cookie stands in the change log, what an incremental refresh
 * sends, and what each committed change sends in the persist phase. The
 * wire (controls, cookies, messages) is server/ldap/sync.ts's.
 *
 * A consumer's state is the CSN of the last change it has seen (csn.ts).
 * The change log maps it back to a change number; an incremental refresh
 * (RFC 4533 §3.3.2, the delete phase) sends the entries changed since, in
 * the order of their last change, and the UUIDs of the entries deleted (or
 * gone out of the search). When the log no longer holds that CSN (trimmed by
 * DCMX_CHANGELOG_KEEP, or a CSN that was never ours) the refresh must be full
 * (§3.3.1, the present phase: what is not sent is deleted by the consumer).
 *
 * Which entries a session's search returns is the search's rule
 * (Directory.syncMatcher: scope, filter, access control). A change that
 * makes an entry leave the search is sent as a delete. Whether an entry
 * that the search does not return now was returned before is not known;
 * it is taken to have been when the change could have made the difference:
 * a rename, or a modify of an attribute the filter tests or of objectClass
 * (access control looks at objectClass). A delete for an entry the
 * consumer never had is harmless (§3.4: the consumer ignores it), unless
 * the identity could not read that entry: then it is not sent (SyncChanges).
 */
import type { ChangeRecord } from '../../storage/store';
import type { Directory, SearchEntry, SyncMatcher } from './directory';
import type { FilterInput } from './filter';

/** The four sync states of RFC 4533 §2.3. */
export type SyncState = 'present' | 'add' | 'modify' | 'delete';

/** One entry message of a sync: its state, UUID, result form, and the CSN of the change it reflects when it carries a cookie. */
export interface SyncUpdate {
  state: SyncState;
  uuid: string;
  /** The entry (for a delete: its DN with no attributes). */
  entry: SearchEntry;
  /** Set when the consumer's cookie may move to this change's CSN once it has applied the message. */
  csn?: string;
}

/** The newest change: the provider's state (contextCSN). */
export interface SyncHead {
  changeNumber: number;
  csn: string;
}

/** How a refresh from a cookie's CSN is served (§3.3). */
export type RefreshPlan =
  /** Everything in the search, as a present phase (no cookie, or reloadHint with a cookie we cannot serve). */
  | { kind: 'full'; head: SyncHead }
  /** The changes after change number `after` (the cookie's), as a delete phase. */
  | { kind: 'incremental'; after: number; head: SyncHead }
  /** The cookie cannot be served incrementally and the client did not allow a reload: e-syncRefreshRequired (§2.7). */
  | { kind: 'refreshRequired'; head: SyncHead };

/**
 * Where a sync from `csn` (undefined: no cookie) starts. `head` is read
 * first: the refresh covers the changes up to it, and the persist phase
 * follows from it.
 */
export function planRefresh(directory: Directory, matcher: SyncMatcher, csn: string | undefined, reloadHint: boolean): RefreshPlan {
  const head = directory.syncHead();
  // An identity that may not read every entry gets no deletes it cannot judge: a present phase.
  if (csn === undefined || !matcher.readsAll) return { kind: 'full', head };
  if (csn === head.csn) return { kind: 'incremental', after: head.changeNumber, head };
  const n = directory.store.changeNumberOfCsn(csn);
  if (n !== undefined && n <= head.changeNumber) return { kind: 'incremental', after: n, head };
  return reloadHint ? { kind: 'full', head } : { kind: 'refreshRequired', head };
}

/** The attribute types (canonical names, lower-case) whose changes can take an entry into or out of a search. */
function relevantTypes(directory: Directory, filter: FilterInput): Set<string> {
  const out = new Set<string>(['objectclass']);
  const walk = (f: FilterInput): void => {
    if ('filters' in f) f.filters.forEach(walk);
    else if ('filter' in f) walk(f.filter);
    else if ('attr' in f && f.attr) out.add((directory.schema.attr(f.attr)?.name ?? f.attr).toLowerCase());
  };
  walk(filter);
  return out;
}

/**
 * A session's view of changes: the matcher of its search and the types its
 * filter tests. For an identity that may not read every entry (anonymous),
 * the UUIDs sent are remembered, and a delete is sent only for one of them:
 * the DN or UUID of an entry it could not read never reaches it.
 */
export class SyncChanges {
  private readonly relevant: Set<string>;
  /** The entries this session has sent, when it must not hear of others (see above). */
  private readonly known: Set<string> | undefined;

  constructor(private readonly matcher: SyncMatcher, directory: Directory, filter: FilterInput) {
    this.relevant = relevantTypes(directory, filter);
    this.known = matcher.readsAll ? undefined : new Set();
  }

  /** Notes an entry sent by a full refresh. */
  sent(uuid: string): void {
    this.known?.add(uuid);
  }

  /** A delete may be sent for `uuid` (and it is forgotten). */
  private mayDelete(uuid: string): boolean {
    if (!this.known) return true;
    return this.known.delete(uuid);
  }

  /** Could this change have taken its entry out of the search (or into it)? */
  private couldMove(c: ChangeRecord): boolean {
    if (c.changeType === 'modrdn') return true;
    if (c.changeType !== 'modify') return false;
    return c.modifications.some((m) => this.relevant.has(m.type.toLowerCase()));
  }

  /**
   * An incremental refresh (RFC 4533 §3.3.2) over `changes` (those after the
   * cookie, up to the head, in order), one item at a time so that the
   * caller can send it in slices: the entries to send as `add`, in the
   * order of their last change, with their current state, and the UUIDs to
   * send as deleted (syncIdSet). An entry added since the cookie and gone
   * again is not mentioned; nor is one the consumer cannot have had. The
   * change log is read at the first item.
   */
  *refresh(changes: Iterable<ChangeRecord>): Generator<{ update: SyncUpdate } | { deleted: string }> {
    // By UUID, in the order of each entry's last change: was it added in the window, deleted, could it have moved?
    const seen = new Map<string, { added: boolean; deleted: boolean; moved: boolean; ndn: string }>();
    const renamed: string[] = [];
    for (const c of changes) {
      if (!c.entryUUID) continue;
      const prev = seen.get(c.entryUUID);
      seen.delete(c.entryUUID);
      const ndn = c.changeType === 'modrdn' ? c.newNdn : c.targetNdn;
      seen.set(c.entryUUID, {
        added: (prev?.added ?? false) || c.changeType === 'add',
        deleted: c.changeType === 'delete',
        moved: (prev?.moved ?? false) || this.couldMove(c),
        ndn,
      });
      if (c.changeType === 'modrdn') renamed.push(c.entryUUID);
    }
    // A rename moved the entry's subtree: each descendant's DN changed.
    for (const uuid of renamed) {
      const e = seen.get(uuid)?.deleted ? undefined : this.matcher.byUuid(uuid);
      if (!e) continue;
      for (const d of this.matcher.descendants(e)) {
        const du = d.attrs.entryUUID?.[0];
        if (!du) continue;
        const prev = seen.get(du);
        seen.delete(du);
        seen.set(du, { added: prev?.added ?? false, deleted: false, moved: true, ndn: d.ndn });
      }
    }
    for (const [uuid, s] of seen) {
      if (s.deleted) {
        if (!s.added && this.matcher.inScope(s.ndn)) yield { deleted: uuid };
        continue;
      }
      const e = this.matcher.byUuid(uuid);
      const view = e && this.matcher.view(e);
      if (view) yield { update: { state: 'add', uuid, entry: view } };
      else if (!s.added && s.moved) yield { deleted: uuid };
    }
  }

  /**
   * What one committed change sends in the persist phase (§3.4): the entry
   * in its current state as `add` or `modify`, or a `delete` (for a deleted
   * entry, and for one the change took out of the search); the first
   * message carries the change's CSN (the consumer's cookie may move), the
   * descendants a rename moved follow without one (slapd ignores a second
   * message with the same CSN).
   */
  persist(c: ChangeRecord): SyncUpdate[] {
    const uuid = c.entryUUID;
    if (!uuid) return [];
    if (c.changeType === 'delete') {
      return this.matcher.inScope(c.targetNdn) && this.mayDelete(uuid) ? [{ state: 'delete', uuid, entry: { dn: c.targetDN, attrs: [] }, csn: c.csn }] : [];
    }
    const e = this.matcher.byUuid(uuid);
    // Gone since: its delete follows in the log.
    if (!e) return [];
    const out: SyncUpdate[] = [];
    const view = this.matcher.view(e);
    if (view) {
      this.known?.add(uuid);
      out.push({ state: c.changeType === 'add' ? 'add' : 'modify', uuid, entry: view, csn: c.csn });
    } else if (this.couldMove(c) && this.mayDelete(uuid)) {
      out.push({ state: 'delete', uuid, entry: { dn: e.dn, attrs: [] }, csn: c.csn });
    }
    if (c.changeType === 'modrdn') {
      for (const d of this.matcher.descendants(e)) {
        const du = d.attrs.entryUUID?.[0];
        if (!du) continue;
        const dv = this.matcher.view(d);
        if (dv) {
          this.known?.add(du);
          out.push({ state: 'modify', uuid: du, entry: dv });
        } else if (this.mayDelete(du)) {
          out.push({ state: 'delete', uuid: du, entry: { dn: d.dn, attrs: [] } });
        }
      }
    }
    return out;
  }
}
