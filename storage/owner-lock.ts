/**
 * A lock file that one process at a time holds: the appliance's claim on
 * its data dir (server/succession.ts). It is a kernel lock (SQLite's POSIX
 * advisory lock on the file, taken by an EXCLUSIVE transaction that stays
 * open), so it is released the moment its holder's process ends, however it
 * ends (exit, crash, SIGKILL): no stale pid file to judge. Nothing is ever
 * written to the file.
 *
 * Locks are per process: a second `tryLock` of the same file in the process
 * that holds it fails too (SQLite keeps the table of its own connections'
 * locks), as it does in any other process.
 */
import Database from 'better-sqlite3';

/** A held lock: `release` ends it (at most once; idempotent). */
export interface HeldLock {
  release(): void;
}

/** Takes the lock on `file` (created when missing) when no process holds it; undefined when one does. Never waits. */
export function tryLock(file: string): HeldLock | undefined {
  const db = new Database(file, { timeout: 0 });
  try {
    // No -journal file beside the lock: nothing is written, and an empty journal would only confuse an operator.
    db.pragma('journal_mode = MEMORY');
    db.exec('BEGIN EXCLUSIVE');
  } catch (e) {
    db.close();
    if ((e as { code?: string }).code === 'SQLITE_BUSY') return undefined;
    throw e;
  }
  return {
    release() {
      if (db.open) db.close(); // closing ends the transaction and its lock
    },
  };
}
