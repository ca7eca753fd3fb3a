/**
 * A Content Sync copy of the entries a consumer keeps (RFC 4533 §3): the
 * entries `keep` accepts, by entryUUID, following the reports of a
 * {@link SyncConsumer}: add/modify replace an entry (or drop it when it no
 * longer qualifies), delete and syncIdSet deletes remove it, and at the end
 * of a present phase (or of a full reload) every entry not reported since
 * the refresh began is removed, so the copy ends with exactly the
 * provider's content: no ghosts.
 */
import type { SyncEntry, SyncHandler } from './sync';

/** One entry of the copy: its DN and attributes as the consumer's reports gave them. */
export interface CopiedEntry {
  dn: string;
  attrs: Record<string, string[]>;
}

/**
 * The copy. It implements the content part of {@link SyncHandler}
 * (refreshBegin, entry, ids, unreportedGone); `changed` hears of every
 * entry that enters, changes or leaves it (`before`/`after` undefined when
 * absent).
 */
export class SyncedCopy implements Pick<SyncHandler, 'refreshBegin' | 'entry' | 'ids' | 'unreportedGone'> {
  readonly entries = new Map<string, CopiedEntry>();
  /** UUIDs reported (add, modify, present) since the refresh began; undefined outside a refresh. */
  private reported: Set<string> | undefined;

  constructor(
    private readonly keep: (e: CopiedEntry) => boolean,
    private readonly changed: (uuid: string, before: CopiedEntry | undefined, after: CopiedEntry | undefined) => void = () => undefined,
  ) {}

  refreshBegin(): void {
    this.reported = new Set();
  }

  entry(e: SyncEntry): void {
    if (e.state !== 'delete') this.reported?.add(e.uuid);
    if (e.state === 'present') return;
    const before = this.entries.get(e.uuid);
    const after = e.state === 'delete' ? undefined : { dn: e.dn, attrs: e.attrs };
    if (after && this.keep(after)) this.entries.set(e.uuid, after);
    else if (before) this.entries.delete(e.uuid);
    else return;
    this.changed(e.uuid, before, after && this.keep(after) ? after : undefined);
  }

  ids(uuids: string[], deletes: boolean): void {
    if (!deletes) {
      for (const u of uuids) this.reported?.add(u);
      return;
    }
    for (const u of uuids) this.remove(u);
  }

  unreportedGone(): void {
    const seen = this.reported ?? new Set<string>();
    for (const u of [...this.entries.keys()]) if (!seen.has(u)) this.remove(u);
    this.reported = new Set();
  }

  private remove(uuid: string): void {
    const before = this.entries.get(uuid);
    if (!before) return;
    this.entries.delete(uuid);
    this.changed(uuid, before, undefined);
  }
}
