/**
 * `dcmx backup DEST`: a consistent copy of a data dir while the appliance
 * (or a remote transfer unit) serves, into a new backup tree (manifest.ts).
 *
 * Order, which makes it consistent:
 * 1. the store, as of one instant (storage/snapshot.ts: SQLite's online
 *    backup from a read-only connection; the appliance's writes go on);
 *    everything acknowledged before (an SMTP 250, an LDAP write result) is in it;
 * 2. the spool files that the snapshot's queue rows name. A row whose file
 *    is gone by then is of a message finished after the snapshot (its file
 *    goes with its last recipient): the row is deleted from the backup's
 *    copy (never from the live store) and counted. The copy's `spool`
 *    column is made relative to the tree (`spool/ID.eml`): the restore
 *    makes it absolute in its data dir. The copy is then closed, one file
 *    (no -wal/-shm: makeSelfContained), before anything else is copied;
 * 3. the small files (tls/, admin-password, directory-sync.json);
 * 4. the Maildirs (not with `mail: false`). A local delivery between 1 and 4
 *    is in the copied Maildir and still queued in the snapshot: its Maildir
 *    name is deterministic (server/mta/maildir.ts), so the restored appliance
 *    does not deliver it twice;
 * 5. manifest.json, last (writeManifest). A backup that stops before has no
 *    manifest, and restore and verify refuse it.
 * The store's copy is in rollback-journal mode; a restored appliance's
 * first open puts it in WAL.
 * Files are 0600 and directories 0700 as in the data dir (a Maildir shared
 * with a mail group keeps its modes). Left out: the lock (succession.ts),
 * -wal/-shm files, write probes, Maildir tmp/ contents. mail/ or tls/ may
 * be a symbolic link (followed); a link below them is left out with a warning.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Config } from '../config';
import { storePath } from '../data-dir';
import { unitStorePath } from '../remote-unit';
import { openDirectory } from '../directory/open';
import { Store } from '../../storage/store';
import { QueueStore } from '../../storage/queue';
import { makeSelfContained, snapshotStore, storeVersions } from '../../storage/snapshot';
import { spoolDir } from '../mta/spool';
import {
  copyFileDurably, hashFile, inside, makeDir, realTarget, MANIFEST_FORMAT, MANIFEST_VERSION, modeString, resolveIn, walkTree, writeManifest,
  type Manifest, type ManifestDir, type ManifestFile,
} from './manifest';

/** The small files of a data dir that go into a backup when present (tls/ with everything in it). */
export const SMALL_FILES = ['admin-password', 'directory-sync.json', 'tls'] as const;

/** A backup refused before anything was written (DEST not empty, inside the data dir, no store). */
export class BackupRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackupRefusedError';
  }
}

/** Where a backup stands, for a progress line: bytes copied of those planned, files copied. */
export interface BackupProgress {
  phase: 'store' | 'files';
  bytes: number;
  totalBytes: number;
  files: number;
}

export interface BackupOptions {
  /** Copy the Maildirs (default true; `--no-mail` is false). */
  mail?: boolean;
  /** Called at each step, at most every ~100 ms and at the end of each phase. */
  onProgress?: (p: BackupProgress) => void;
  /** Called with each warning (a queued message whose spool file the data dir lacks; a symbolic link below mail/ or tls/, not copied). */
  onWarning?: (message: string) => void;
  /** Stops the backup between two files (SIGINT): it fails, and what it wrote is removed. */
  signal?: AbortSignal;
}

/** What a finished backup holds. */
export interface BackupResult {
  manifest: Manifest;
  seconds: number;
}

/** The package's version (package.json beside dist/). */
function dcmxVersion(): string {
  const file = path.resolve(__dirname, '..', '..', '..', 'package.json');
  return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version;
}

/**
 * `p` resolved (manifest.ts realTarget), as a refusal when it cannot be:
 * an ancestor that is a file, or that cannot be read.
 */
function destTarget(p: string): { real: string; missing: string[] } {
  try {
    return realTarget(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') throw new BackupRefusedError(`${p} is not a directory`);
    throw new BackupRefusedError(`cannot use ${p} (${code ?? (e as Error).message})`);
  }
}

/**
 * Readies DEST: a new directory (its missing parents made one at a time,
 * never with a recursive mkdir, which loops forever below /proc), or an
 * existing empty one of this user's; 0700 either way. DEST and the data dir are compared
 * with their symbolic links resolved, DEST's missing components included.
 * Returns the directories it made, outermost first (a failed backup
 * removes them, else only what it put in DEST).
 */
async function prepareDest(dest: string, dataDir: string): Promise<string[]> {
  const { real: d, missing } = destTarget(dest);
  const data = fs.realpathSync(dataDir);
  if (d === data || inside(data, d) !== undefined) throw new BackupRefusedError(`${dest} is inside the data dir ${dataDir}`);
  if (inside(d, data) !== undefined) throw new BackupRefusedError(`${dest} holds the data dir ${dataDir}`);
  if (!missing.length) {
    let entries: string[];
    try {
      entries = await fsp.readdir(dest);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') throw new BackupRefusedError(`${dest} is not a directory`);
      throw new BackupRefusedError(`cannot read ${dest} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    if (entries.length) throw new BackupRefusedError(`${dest} is not empty: a backup goes into a new or empty directory`);
    // Its owner could open it again (chmod) and read the store's password hashes and keys, or swap what is written in it.
    const uid = process.getuid?.();
    const owner = fs.statSync(dest).uid;
    if (uid !== undefined && owner !== uid) throw new BackupRefusedError(`${dest} belongs to another user (uid ${owner}): a backup goes into a directory of its own user`);
  }
  const made: string[] = [];
  for (const m of missing) {
    try {
      await fsp.mkdir(m, { mode: 0o700 });
    } catch (e) {
      await undo(dest, made);
      throw new BackupRefusedError(`cannot create ${m} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    made.push(m);
  }
  await fsp.chmod(dest, 0o700);
  return made;
}

/**
 * Removes what a failed backup wrote: the directories it made (`made`,
 * outermost first: DEST last) with all in them, else everything in DEST.
 * Best effort.
 */
async function undo(dest: string, made: readonly string[]): Promise<void> {
  if (made.length) {
    await fsp.rm(made[0], { recursive: true, force: true }).catch(() => undefined);
    return;
  }
  for (const name of await fsp.readdir(dest).catch(() => [] as string[])) {
    await fsp.rm(path.join(dest, name), { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * The SOA serial of every zone the store at `file` serves (as `dcmx zone
 * list`), by name with its final dot. `indexed` is the store's own index
 * set (its `indexed` meta key), so a DCMX_LDAP_INDEXES that differs from
 * the appliance's does not fail the backup.
 */
function zoneSerials(file: string, config: Config, indexed: string[]): Record<string, number> {
  const { directory, zones } = openDirectory({
    file, readOnly: true, suffix: config.suffix, adminDN: config.adminDN, extraIndexes: indexed, catalog: config.dns.catalog,
  });
  try {
    const out: Record<string, number> = {};
    for (const name of zones.zoneNames()) {
      const serial = zones.zoneOf(name)?.soa.rdata.serial;
      if (serial !== undefined) out[`${name}.`] = serial;
    }
    return out;
  } finally {
    directory.store.close();
  }
}

/**
 * Files copied at once (Maildirs, small files): each copy waits for its
 * fsync, so several in flight keep the disk busy (libuv's thread pool runs
 * them; the CLI sizes it to 4 at least). 5,000 Maildir files of 16 KiB on
 * this 2-core machine under load: 9.7-17.4 s one at a time, 4.5-7.4 s 8 at a time.
 */
const COPY_WIDTH = 8;

/**
 * Runs `fn` on every item, `width` at a time. Rejects with the first
 * failure once the calls under way have settled (no new one starts after it).
 */
async function eachConcurrently<T>(items: readonly T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (!failure && next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  if (failure) throw failure.error;
}

/** One file to copy into the tree. */
interface Planned {
  src: string;
  rel: string;
  size: number;
  mode: number;
}

/**
 * Directories and files below `dataDir`/`top` (a file or a directory), as
 * planned copies; with `maildir`, files in a Maildir's tmp/ are left out
 * (deliveries under way; the tmp/ directory itself is kept). `top` itself
 * may be a symbolic link (mail/ on another disk): it is followed, as the
 * appliance follows it; what is not a file or directory below it (a link,
 * a socket) is not copied and is returned in `others`, for a warning.
 */
async function planTree(dataDir: string, top: string, maildir: boolean): Promise<{ dirs: ManifestDir[]; files: Planned[]; others: string[] }> {
  const dirs: ManifestDir[] = [];
  const files: Planned[] = [];
  const others: string[] = [];
  let st: fs.Stats;
  try {
    st = await fsp.stat(path.join(dataDir, top));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { dirs, files, others };
    throw e;
  }
  if (st.isFile()) {
    files.push({ src: path.join(dataDir, top), rel: top, size: st.size, mode: st.mode });
    return { dirs, files, others };
  }
  if (!st.isDirectory()) return { dirs, files, others: [top] };
  dirs.push({ path: top, mode: modeString(st.mode) });
  const root = path.join(dataDir, top);
  const skip = maildir ? (rel: string) => /(^|\/)tmp\/[^/]+$/.test(rel) && isMaildir(root, rel) : undefined;
  for (const e of await walkTree(root, skip)) {
    const rel = `${top}/${e.path}`;
    if (e.kind === 'dir') dirs.push({ path: rel, mode: modeString(e.stat.mode) });
    else if (e.kind === 'file') files.push({ src: resolveIn(root, e.path), rel, size: e.stat.size, mode: e.stat.mode });
    else others.push(rel);
  }
  return { dirs, files, others };
}

/** Whether `rel` (…/tmp/NAME below `root`) is in a Maildir's tmp/: its box has new/ and cur/ beside it. */
function isMaildir(root: string, rel: string): boolean {
  const box = resolveIn(root, rel.split('/').slice(0, -2).join('/') || '.');
  return fs.existsSync(path.join(box, 'new')) && fs.existsSync(path.join(box, 'cur'));
}

/**
 * Where a Maildir message that left new/ during the backup went: an IMAP
 * server renames `new/NAME` to `cur/NAME:2,FLAGS` (Maildir's info suffix).
 * Returns the planned copy from cur/, or undefined.
 */
async function movedToCur(p: Planned): Promise<Planned | undefined> {
  const m = /^(.*)\/new\/([^/]+)$/.exec(p.rel);
  if (!m) return undefined;
  const curDir = path.join(path.dirname(path.dirname(p.src)), 'cur');
  const name = (await fsp.readdir(curDir).catch(() => [] as string[])).find((n) => n.startsWith(`${m[2]}:`));
  if (!name) return undefined;
  const st = await fsp.stat(path.join(curDir, name)).catch(() => undefined);
  return st && { src: path.join(curDir, name), rel: `${m[1]}/cur/${name}`, size: st.size, mode: st.mode };
}

/**
 * Backs up the data dir of `config` into `dest` (see the module comment).
 * Throws BackupRefusedError before writing anything when `dest` is neither
 * new nor empty, or is inside the data dir, or the data dir has no store;
 * on any other failure removes what it wrote (best effort) and rethrows.
 */
export async function backupDataDir(config: Config, dest: string, opts: BackupOptions = {}): Promise<BackupResult> {
  const started = Date.now();
  const dataDir = config.dataDir;
  const unit = config.role === 'mta';
  const storeFile = unit ? unitStorePath(dataDir) : storePath(dataDir);
  const storeName = path.basename(storeFile);
  if (!fs.existsSync(storeFile)) throw new BackupRefusedError(`${dataDir} has no store (${storeName}): nothing to back up`);
  const made = await prepareDest(dest, dataDir);
  try {
    opts.signal?.throwIfAborted();
    return await backupInto(config, dest, storeFile, storeName, unit, started, opts);
  } catch (e) {
    await undo(dest, made);
    throw e;
  }
}

/** Counts what is copied and reports it through BackupOptions.onProgress, at most every 100 ms. */
class Tally {
  bytes = 0;
  files = 0;
  private shown = 0;

  constructor(public totalBytes: number, private readonly opts: BackupOptions) {}

  /** One file of `size` bytes copied; stops the backup here when it was asked to stop. */
  copied(size: number): void {
    this.opts.signal?.throwIfAborted();
    this.bytes += size;
    this.files++;
    this.show(false);
  }

  show(force: boolean): void {
    if (this.opts.onProgress && (force || Date.now() - this.shown >= 100)) {
      this.shown = Date.now();
      this.opts.onProgress({ phase: 'files', bytes: this.bytes, totalBytes: this.totalBytes, files: this.files });
    }
  }
}

/** What the store's copy says of itself, for the manifest. */
interface CopyFacts {
  versions: { sqlite: string; schema: number };
  last: { changeNumber: number; csn: string } | undefined;
  zones: Record<string, number>;
  queue: Manifest['queue'];
}

/**
 * Step 2 and the end of the store's copy: copies the spool files the copy's
 * queue rows name into `dest`/spool (pushing their entries on `files` and
 * `dirs`), removes the rows whose file went meanwhile from the copy, makes
 * the others' `spool` relative, reads the copy's facts, and leaves it one
 * closed, self-contained file (no -wal/-shm in DEST from here on).
 */
async function copySpool(
  config: Config, dest: string, storeFile: string, copy: string, unit: boolean, tally: Tally, files: ManifestFile[], dirs: ManifestDir[], warn: (m: string) => void,
): Promise<CopyFacts> {
  const dataDir = config.dataDir;
  const store = Store.open(copy, []);
  try {
    const q = new QueueStore(store);
    const rows = q.spoolRows();
    tally.totalBytes += rows.reduce((n, r) => n + r.size, 0);
    const spoolMode = await fsp.stat(spoolDir(dataDir)).then((st) => st.mode, () => 0o700);
    if (rows.length || fs.existsSync(spoolDir(dataDir))) {
      await makeDir(path.join(dest, 'spool'), spoolMode);
      dirs.push({ path: 'spool', mode: modeString(spoolMode) });
    }
    const gone: string[] = [];
    const kept: { id: string; rel: string }[] = [];
    for (const r of rows) {
      const rel = `spool/${path.basename(r.spool)}`;
      try {
        const f = await copyFileDurably(path.resolve(dataDir, r.spool), resolveIn(dest, rel), 0o600, rel);
        files.push(f);
        kept.push({ id: r.id, rel });
        tally.copied(f.size);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        gone.push(r.id);
      }
    }
    let finished = 0;
    if (gone.length) {
      // Finished after the snapshot, unless the live store still holds the message (its file is missing there).
      const live = Store.openReader(storeFile, []);
      try {
        const lq = new QueueStore(live);
        for (const id of gone) {
          if (lq.message(id)) warn(`queued message ${id} has no spool file in ${spoolDir(dataDir)}: left out of the backup (dcmx verify)`);
          else finished++;
        }
      } finally {
        live.close();
      }
    }
    store.transaction(() => {
      for (const id of gone) q.remove(id);
      for (const k of kept) q.setSpool(k.id, k.rel);
    });
    const c = q.counts();
    const facts: CopyFacts = {
      versions: storeVersions(store),
      last: unit ? undefined : store.lastChange(),
      zones: unit ? {} : zoneSerials(copy, config, store.getMeta('indexed')?.split(',') ?? []),
      queue: { messages: c.messages, recipients: c.queued + c.held, finishedDuringBackup: finished },
    };
    makeSelfContained(store);
    return facts;
  } finally {
    store.close();
  }
}

/**
 * Steps 3 and 4: the small files, then (with `mail`) the Maildirs, listed
 * now, copied COPY_WIDTH at a time with their modes.
 */
async function copyFiles(
  dataDir: string, dest: string, mail: boolean, tally: Tally, files: ManifestFile[], dirs: ManifestDir[], warn: (m: string) => void,
): Promise<void> {
  const planned: Planned[] = [];
  for (const top of [...SMALL_FILES, ...(mail ? ['mail'] : [])]) {
    const t = await planTree(dataDir, top, top === 'mail');
    for (const o of t.others) warn(`${path.join(dataDir, ...o.split('/'))} is neither a file nor a directory (a symbolic link?): left out of the backup`);
    for (const d of t.dirs) {
      await makeDir(resolveIn(dest, d.path), parseInt(d.mode, 8));
      dirs.push(d);
    }
    planned.push(...t.files);
  }
  tally.totalBytes += planned.reduce((n, f) => n + f.size, 0);
  await eachConcurrently(planned, COPY_WIDTH, async (p) => {
    let from: Planned | undefined = p;
    while (from) {
      try {
        const f = await copyFileDurably(from.src, resolveIn(dest, from.rel), from.mode, from.rel);
        files.push(f);
        tally.copied(f.size);
        break;
      } catch (e) {
        // Gone meanwhile: a message an IMAP server moved from new/ to cur/ (copy it from there), or deleted.
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        from = await movedToCur(from);
      }
    }
  });
}

async function backupInto(
  config: Config, dest: string, storeFile: string, storeName: string, unit: boolean, started: number, opts: BackupOptions,
): Promise<BackupResult> {
  const storeSize = fs.statSync(storeFile).size;
  opts.onProgress?.({ phase: 'store', bytes: 0, totalBytes: storeSize, files: 0 });
  // 1. The store, as of `created` or a little after: everything acknowledged before is in it.
  const created = new Date();
  const copy = path.join(dest, storeName);
  await snapshotStore(storeFile, copy);
  await fsp.chmod(copy, 0o600);
  opts.onProgress?.({ phase: 'store', bytes: storeSize, totalBytes: storeSize, files: 1 });

  const tally = new Tally(storeSize, opts);
  tally.copied(storeSize);
  const dirs: ManifestDir[] = [];
  const files: ManifestFile[] = [];
  const facts = await copySpool(config, dest, storeFile, copy, unit, tally, files, dirs, opts.onWarning ?? (() => undefined));
  for (const f of [`${copy}-wal`, `${copy}-shm`]) {
    if (fs.existsSync(f)) throw new Error(`${f} is left after closing the copy: the copy is not self-contained`);
  }
  const st = await fsp.stat(copy);
  const { size, sha256 } = await hashFile(copy);
  files.push({ path: storeName, size, sha256, mode: modeString(st.mode) });
  await copyFiles(config.dataDir, dest, opts.mail !== false, tally, files, dirs, opts.onWarning ?? (() => undefined));
  tally.show(true);

  const byPath = (a: { path: string }, b: { path: string }) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  files.sort(byPath);
  dirs.sort(byPath);
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    formatVersion: MANIFEST_VERSION,
    created: created.toISOString(),
    host: os.hostname(),
    versions: { dcmx: dcmxVersion(), node: process.version, ...facts.versions },
    changeNumber: facts.last?.changeNumber ?? 0,
    csn: facts.last?.csn ?? '',
    zones: facts.zones,
    mail: opts.mail !== false,
    queue: facts.queue,
    files,
    dirs,
    totals: { files: files.length, bytes: files.reduce((n, f) => n + f.size, 0) },
  };
  opts.signal?.throwIfAborted();
  await writeManifest(dest, manifest);
  return { manifest, seconds: (Date.now() - started) / 1000 };
}
