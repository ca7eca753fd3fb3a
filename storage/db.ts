/**
 * Opening the SQLite file: WAL, synchronous=FULL (checked on every open, since
 * better-sqlite3 reopens WAL databases at NORMAL), and the numbered migrations
 * of `storage/migrations/NNN-name.sql`, each applied in its own transaction
 * that bumps `user_version`.
 *
 * This folder is the only place that imports better-sqlite3.
 */
import Database from 'better-sqlite3';
import * as fs from 'node:fs';
import * as path from 'node:path';

export type Db = Database.Database;

/** Where the .sql migrations live (they are not compiled, so found from the source tree). */
const MIGRATIONS_DIR = path.resolve(__dirname, '..', '..', 'storage', 'migrations');

/** Thrown when the database cannot be opened with the durability we require. */
export class StorageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StorageError';
  }
}

/** What became of the store's file since it was opened (StoreFileGuard). */
export type StoreFileState = 'ok' | 'removed' | 'replaced';

/**
 * Thrown instead of writing when the store's path no longer names the file
 * that is open: its writes would go to a file nobody will ever open again.
 */
export class StoreFileError extends StorageError {
  constructor(readonly state: Exclude<StoreFileState, 'ok'>, readonly file: string) {
    super(`the store ${file} was ${state} while open; writes are refused until the appliance is restarted on a store in place`);
    this.name = 'StoreFileError';
  }
}

/**
 * Watches that the path of an open store still names the file that was
 * opened: a `dcmx.sqlite` deleted (or replaced by another file) while the
 * process runs keeps being read and written through the open descriptor,
 * and everything written is lost at the next start. `check` compares the
 * device and inode of the path with those seen at open (one stat call) and
 * tells listeners once per change of state.
 */
export class StoreFileGuard {
  private readonly dev: number;
  private readonly ino: number;
  private state: StoreFileState = 'ok';
  private readonly listeners = new Set<(state: StoreFileState, previous: StoreFileState) => void>();

  /** `file` must be the path just opened. */
  constructor(readonly file: string) {
    const st = fs.statSync(file);
    this.dev = st.dev;
    this.ino = st.ino;
  }

  /** The state now. */
  check(): StoreFileState {
    let now: StoreFileState;
    try {
      const st = fs.statSync(this.file);
      now = st.dev === this.dev && st.ino === this.ino ? 'ok' : 'replaced';
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' && (e as NodeJS.ErrnoException).code !== 'ENOTDIR') throw e;
      now = 'removed';
    }
    if (now !== this.state) {
      const previous = this.state;
      this.state = now;
      for (const l of this.listeners) l(now, previous);
    }
    return now;
  }

  /** Throws StoreFileError unless the state is ok (checked now). */
  assertWritable(): void {
    const st = this.check();
    if (st !== 'ok') throw new StoreFileError(st, this.file);
  }

  /** Calls `listener` at each change of state; returns the unsubscribe function. */
  onChange(listener: (state: StoreFileState, previous: StoreFileState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/**
 * True when `err` says the storage has no room left: SQLite's SQLITE_FULL
 * (the disk, or the file's size limit) or the file system's ENOSPC / EDQUOT.
 */
export function isStorageFull(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT';
}

/**
 * Opens (creating if needed) the database at `file` (':memory:' for tests),
 * applies pending migrations and verifies the pragmas. Throws StorageError.
 */
export function openDatabase(file: string): Db {
  const db = new Database(file);
  try {
    if (file !== ':memory:') {
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (String(mode).toLowerCase() !== 'wal') throw new StorageError(`journal_mode is ${mode}, expected wal`);
    }
    db.pragma('synchronous = FULL');
    const sync = db.pragma('synchronous', { simple: true });
    // 2 = FULL (https://sqlite.org/pragma.html#pragma_synchronous)
    if (sync !== 2) throw new StorageError(`synchronous is ${sync}, expected 2 (FULL)`);
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = OFF');
    db.pragma('cache_size = -65536'); // 64 MiB page cache
    migrate(db);
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

/**
 * Opens the database at `file` read-only, as a reader beside the writer
 * (another thread's connection): WAL (the writer's `openDatabase` set it),
 * no migration, nothing written. Each statement reads the latest commit.
 * Throws StorageError when the file is not in WAL mode or not at this
 * version's schema (the writer must open it first).
 */
export function openReadOnlyDatabase(file: string): Db {
  if (file === ':memory:') throw new StorageError('a reader needs a store file (an in-memory store has one connection)');
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const mode = String(db.pragma('journal_mode', { simple: true })).toLowerCase();
    if (mode !== 'wal') throw new StorageError(`journal_mode is ${mode}, expected wal: the writer opens the store first`);
    const version = db.pragma('user_version', { simple: true }) as number;
    const latest = schemaVersion();
    if (version !== latest) throw new StorageError(`the store is at schema ${version}, this version's is ${latest}: the writer opens the store first`);
    db.pragma('busy_timeout = 5000');
    db.pragma('cache_size = -65536'); // 64 MiB page cache
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

/** This version's schema: the number of its last migration (the `user_version` of a store it has opened). */
export function schemaVersion(): number {
  return Math.max(0, ...migrationFiles().map((f) => Number(f.slice(0, 3))));
}

/** The migration files, in order. */
function migrationFiles(): string[] {
  return fs
    .readdirSync(MIGRATIONS_DIR)
    .filter((f) => /^\d{3}-[\w-]+\.sql$/.test(f))
    .sort();
}

/** Applies every migration whose number is above `user_version`, in order. */
function migrate(db: Db): void {
  const files = migrationFiles();
  const current = db.pragma('user_version', { simple: true }) as number;
  for (const f of files) {
    const n = Number(f.slice(0, 3));
    if (n <= current) continue;
    const sql = fs.readFileSync(path.join(MIGRATIONS_DIR, f), 'utf8');
    db.transaction(() => {
      db.exec(sql);
      db.pragma(`user_version = ${n}`);
    }).immediate();
  }
}
