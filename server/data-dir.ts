/**
 * The data dir (DCMX_DATA_DIR) made ready before anything is written to it:
 * an existing, writable directory, created (0700) component by component when
 * missing. Every problem is a ConfigError naming DCMX_DATA_DIR, found before
 * a password is generated or the store is opened.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from './config';

const VAR = 'DCMX_DATA_DIR';

/** Path of the SQLite store in the data dir. */
export function storePath(dataDir: string): string {
  return path.join(dataDir, 'dcmx.sqlite');
}

function why(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err.code ?? err.message;
}

/**
 * Makes sure `dir` (absolute) is a directory this process can create files
 * in. Missing components are made one at a time, never with a recursive
 * mkdir, which loops forever below /proc.
 */
export function prepareDataDir(dir: string): void {
  // The nearest existing ancestor (or the dir itself) and the components to create below it.
  const missing: string[] = [];
  let p = dir;
  for (;;) {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if ((code === 'ENOENT' || code === 'ENOTDIR') && path.dirname(p) !== p) {
        missing.unshift(p);
        p = path.dirname(p);
        continue;
      }
      throw new ConfigError(VAR, `cannot use ${dir}: cannot access ${p} (${why(e)})`);
    }
    if (!st.isDirectory()) {
      throw new ConfigError(VAR, p === dir ? `${dir} is not a directory` : `cannot create ${dir}: ${p} is not a directory`);
    }
    break;
  }
  for (const m of missing) {
    try {
      fs.mkdirSync(m, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && fs.statSync(m).isDirectory()) continue; // made meanwhile
      throw new ConfigError(VAR, `cannot create ${m} (${why(e)})`);
    }
  }
  // Permission bits say little (root, ACLs, read-only mounts): try it.
  const probe = path.join(dir, `.dcmx-write-test-${process.pid}`);
  try {
    fs.writeFileSync(probe, '', { flag: 'wx', mode: 0o600 });
  } catch (e) {
    throw new ConfigError(VAR, `${dir} is not writable (${why(e)})`);
  }
  fs.rmSync(probe, { force: true });
}

/**
 * The data dir's permission bits when they let other users in (else
 * undefined): any bit for group or others, but, with a mail group
 * (DCMX_MAIL_GROUP), the group's search bit, which lets it reach the
 * Maildirs (server/mta/maildir.ts prepareMailRoot).
 */
export function dataDirTooOpen(dir: string, mailGroup: number | undefined): number | undefined {
  const mode = fs.statSync(dir).mode & 0o777;
  return mode & (mailGroup === undefined ? 0o077 : 0o067) ? mode : undefined;
}
