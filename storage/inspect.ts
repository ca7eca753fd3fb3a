/**
 * A store file opened to be checked (`dcmx verify`, server/backup/verify.ts),
 * beside a running appliance or in a backup: read-only, no migration, no
 * pragma that writes, no lock but SQLite's shared read lock while a
 * statement runs. The appliance's writer commits and checkpoints as before;
 * only a checkpoint cannot restart the WAL while integrity_check reads, so
 * the WAL may grow for that long (https://sqlite.org/wal.html §"Avoiding
 * Excessively Large WAL Files").
 */
import Database from 'better-sqlite3';
import * as fs from 'node:fs';
import type { Db } from './db';

/** A queue message whose bytes are in a spool file. */
export interface SpoolRow {
  id: string;
  /** The message's size in bytes: its spool file's size. */
  size: number;
  /** The `spool` column as stored (a path). */
  spool: string;
}

/** The files SQLite keeps beside a WAL-mode database. */
const SIDE_FILES = ['-wal', '-shm'];

export class StoreInspection {
  private constructor(private readonly db: Db, private readonly created: string[]) {}

  /**
   * Opens `file` read-only; throws SQLite's error when it cannot be opened
   * (missing, not a database). SQLite creates the `-wal` and `-shm` files of
   * a WAL-mode database that has none (better-sqlite3 opens no URI, so no
   * `immutable=1`): with `tidy`, those it created are removed at close (the
   * `-wal` only while empty), for a tree nobody else opens (a backup).
   */
  static open(file: string, opts: { tidy?: boolean } = {}): StoreInspection {
    const absent = opts.tidy ? SIDE_FILES.map((s) => file + s).filter((f) => !fs.existsSync(f)) : [];
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      db.pragma('busy_timeout = 5000');
      return new StoreInspection(db, absent);
    } catch (e) {
      db.close();
      throw e;
    }
  }

  /** PRAGMA integrity_check: each problem it reports (none for 'ok'); an error that stops the check is one problem. */
  integrity(): string[] {
    try {
      const rows = this.db.pragma('integrity_check') as { integrity_check: string }[];
      return rows.map((r) => r.integrity_check).filter((m) => m !== 'ok');
    } catch (e) {
      return [(e as Error).message];
    }
  }

  /** PRAGMA foreign_key_check: each row that violates a declared foreign key (the schema declares none today). */
  foreignKeys(): string[] {
    try {
      const rows = this.db.pragma('foreign_key_check') as { table: string; rowid: number | null; parent: string; fkid: number }[];
      return rows.map((r) => `row ${r.rowid ?? '?'} of ${r.table} names a missing row of ${r.parent} (foreign key ${r.fkid})`);
    } catch (e) {
      return [(e as Error).message];
    }
  }

  /**
   * The triggers and views of the store, as `trigger NAME` / `view NAME`
   * lines (dcmx's schema, storage/migrations, has none: one is foreign, and
   * would run in every write of an appliance opening the store).
   */
  triggersAndViews(): string[] {
    try {
      const rows = this.db.prepare("SELECT type, name FROM sqlite_schema WHERE type IN ('trigger', 'view') ORDER BY name").all() as { type: string; name: string }[];
      return rows.map((r) => `${r.type} ${r.name}`);
    } catch (e) {
      return [(e as Error).message];
    }
  }

  /** The store's schema version (`user_version`, storage/db.ts migrations). */
  userVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  /** The queue messages that have a spool file (none in a store without a queue); throws SQLite's error on a damaged table. */
  spoolRows(): SpoolRow[] {
    if (!this.hasQueue()) return [];
    return this.db.prepare(`SELECT id, size, spool FROM queue_messages WHERE spool != ''`).all() as SpoolRow[];
  }

  /** The queue message `id` as the latest commit has it (each call reads anew), or undefined when it is gone. */
  spoolRow(id: string): SpoolRow | undefined {
    if (!this.hasQueue()) return undefined;
    return this.db.prepare(`SELECT id, size, spool FROM queue_messages WHERE id = ?`).get(id) as SpoolRow | undefined;
  }

  private hasQueue(): boolean {
    return this.db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'queue_messages'`).get() !== undefined;
  }

  /** Closes the file, then removes the side files it created (see open's `tidy`). */
  close(): void {
    this.db.close();
    for (const f of this.created) {
      try {
        if (f.endsWith('-shm') || fs.statSync(f).size === 0) fs.rmSync(f);
      } catch {
        // not created after all
      }
    }
  }
}
