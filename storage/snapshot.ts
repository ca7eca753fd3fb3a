/**
 * A consistent copy of a live store, for `dcmx backup` (server/backup/snapshot.ts):
 * SQLite's online backup API (https://sqlite.org/backup.html) through
 * better-sqlite3's `backup()`, read from a connection of its own.
 */
import { openReadOnlyDatabase, StorageError } from './db';
import type { Store } from './store';

/** sqlite3_backup_step's page count for "all of them" (better-sqlite3 caps the rate at this). */
const ALL_PAGES = 0x7fffffff;

/**
 * Copies the store at `file` into the new file `dest` as of one instant:
 * every transaction committed before the copy's read began is in it, none
 * after. The copy is made in one backup step, inside one read transaction
 * of a read-only connection (openReadOnlyDatabase: the store must be in WAL
 * mode and at this version's schema, else StorageError). Under WAL a reader
 * never blocks the writer: the running appliance goes on committing (its
 * WAL grows until the copy ends). Copying page batches across several steps
 * instead would start over at every commit of the writer, and might never
 * end on a busy store. Resolves with the number of pages copied.
 */
export async function snapshotStore(file: string, dest: string): Promise<number> {
  const db = openReadOnlyDatabase(file);
  try {
    // The first step (0 pages) only learns the size; the next copies everything.
    const r = await db.backup(dest, { progress: () => ALL_PAGES });
    return r.totalPages;
  } finally {
    db.close();
  }
}

/** The SQLite library's version and the schema version (user_version, the last migration) of `store`. */
export function storeVersions(store: Store): { sqlite: string; schema: number } {
  return {
    sqlite: (store.db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v,
    schema: store.db.pragma('user_version', { simple: true }) as number,
  };
}

/**
 * Makes the copy at `store` (the only connection open on it) one
 * self-contained file: a rollback journal instead of WAL, so that its -wal
 * and -shm go now and a read-only open (dcmx verify) makes none beside it
 * in the backup tree. storage/db.ts openDatabase puts it back in WAL mode
 * when a restored appliance first opens it.
 */
export function makeSelfContained(store: Store): void {
  const mode = String(store.db.pragma('journal_mode = DELETE', { simple: true })).toLowerCase();
  if (mode !== 'delete') throw new StorageError(`journal_mode is ${mode} after asking for delete: another connection has the copy open`);
}
