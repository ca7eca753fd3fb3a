/**
 * A consumer's Content Sync state on disk: the cookie (RFC 4533 §3.5) and
 * the copy of the entries the cookie's state includes, written together in
 * one file, replaced atomically (write, fsync, rename), so that after a
 * restart the consumer resumes from a cookie that matches its copy exactly.
 * A cookie without its copy would be wrong: a refresh from it sends only
 * what changed since.
 *
 * The file names the directory and search it came from; a state for
 * another directory URL, suffix or filter is ignored (a full refresh
 * follows), as is a file that cannot be read or parsed (logged).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../log';
import type { CopiedEntry } from './replica';

/** What the state was made for: a different origin invalidates it. */
export interface SyncOrigin {
  url: string;
  base: string;
  filter: string;
}

interface StateFile {
  origin: SyncOrigin;
  cookie: string;
  entries: [string, CopiedEntry][];
}

/** Reads and writes one state file. */
export class SyncStateFile {
  constructor(private readonly file: string, private readonly origin: SyncOrigin, private readonly log: Logger) {}

  /** The saved cookie and copy, when the file exists, reads, and is for this origin. */
  load(): { cookie: string; entries: Map<string, CopiedEntry> } | undefined {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ err: (e as Error).message, file: this.file }, 'cannot read the directory sync state; a full refresh follows');
      return undefined;
    }
    try {
      const s = JSON.parse(text) as StateFile;
      const o = s.origin;
      if (!o || o.url !== this.origin.url || o.base !== this.origin.base || o.filter !== this.origin.filter) {
        this.log.info({ file: this.file }, 'the directory sync state is for another directory or search; a full refresh follows');
        return undefined;
      }
      if (typeof s.cookie !== 'string' || !Array.isArray(s.entries)) throw new Error('not a sync state');
      return { cookie: s.cookie, entries: new Map(s.entries) };
    } catch (e) {
      this.log.warn({ err: (e as Error).message, file: this.file }, 'the directory sync state is damaged; a full refresh follows');
      return undefined;
    }
  }

  /** Replaces the file with `cookie` and `entries` (atomically: a crash leaves the old state or the new one). */
  save(cookie: string, entries: Map<string, CopiedEntry>): void {
    const body: StateFile = { origin: this.origin, cookie, entries: [...entries] };
    const tmp = `${this.file}.tmp`;
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      fs.writeSync(fd, JSON.stringify(body));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.file);
  }

  /** The file's path. */
  get path(): string {
    return path.resolve(this.file);
  }
}
