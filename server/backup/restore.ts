/**
 * `dcmx restore SRC`: the data dir (DCMX_DATA_DIR) rebuilt from a backup
 * tree (`dcmx backup`, manifest.ts), and what a restored store must do
 * before it serves again.
 *
 * The restore refuses, before it writes anything: a tree without a valid
 * manifest (an incomplete backup); a data dir an appliance runs on (it holds
 * the succession lock, succession.ts), one that is not empty or is inside the
 * tree (it would spoil the backup); a store with a trigger or a view (dcmx
 * makes none: they would run in the restored appliance's writes); a tree whose
 * files do not match the manifest (size, SHA-256, mode: checkTree); modes
 * no data dir has (setuid, sticky, setgid on a file, writable by others). It then
 * writes the tree into a new directory beside the data dir (or inside an
 * existing empty one, narrowed to 0700), each file with the manifest's mode and fsynced,
 * rewrites what names the data dir's path (the queue's spool paths: a
 * backup holds them relative), moves the zone serials on (below), and only
 * then renames it into place: a restore that fails or is killed leaves no
 * half-restored data dir an appliance would start on.
 *
 * Zone serials after a restore (RFC 1982). The secondaries may hold serials
 * the appliance issued after the backup was taken; a restored zone at its
 * backup serial would look older to them (RFC 1982 §3.2) and they would keep
 * their newer copy, silently. So every zone's serial moves forward by
 * {@link serialStep}: one per millisecond since the backup was taken, at
 * least 1, at most 2^31 - 2 (RFC 1982 §3.1: a larger addition is undefined).
 * Each bump of the write path adds one, so the new serial is past every
 * serial issued since the backup unless more than one zone change a
 * millisecond was made on average (or an operator raised a serial by hand by
 * more than that); a second restore of the same backup, later, goes past
 * the first. The catalog zone's serial (the zone-set serial, catalog.ts)
 * moves the same way. The serials are written through the write path, in one
 * transaction: each zone gets a change-log row (a consumer of the log sees
 * the new SOA) and a journal row from the backup's serial to the new one
 * (IXFR, RFC 1995; a secondary holding a serial the restored journal does not
 * know gets the whole zone, §4); and the appliance's first start after the
 * restore NOTIFYs every zone (RFC 1996, dns/notify.ts announceAtStart).
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { Config } from '../config';
import { ConfigError } from '../config';
import { openStore } from '../appliance';
import { openUnitStore } from '../remote-unit';
import { LOCK_FILE } from '../succession';
import { tryLock } from '../../storage/owner-lock';
import { QueueStore } from '../../storage/queue';
import { StoreInspection } from '../../storage/inspect';
import type { Store } from '../../storage/store';
import { fsyncDirNow } from '../mta/spool';
import { bumpZoneSetSerial, zoneSetSerial } from '../directory/catalog';
import type { Services } from '../directory/open';
import { indexRows } from '../directory/entry';
import { formatRData, parseRData, RRTYPE, type RData } from '../directory/records';
import { announceAtStart } from '../dns/notify';
import { schemaVersion } from '../../storage/db';
import {
  checkTree, copyFileDurably, fsyncDirs, inside, isSafeRelativePath, makeDir, parseMode, readManifest, realTarget, resolveIn, type Manifest,
} from './manifest';

/** RFC 1982 §3.1: the largest addition that keeps the result greater (2^31 - 1), less one so that skipping 0 stays inside it. */
const MAX_STEP = 0x7fffffff - 1;

/**
 * How far a restore moves every serial: the milliseconds from `createdMs`
 * (when the backup's snapshot was taken) to `nowMs`, at least 1, at most
 * 2^31 - 2 (see the module comment).
 */
export function serialStep(createdMs: number, nowMs: number): number {
  return Math.min(MAX_STEP, Math.max(1, Math.floor(nowMs - createdMs)));
}

/** RFC 1982 §3.1 addition (SERIAL_BITS = 32) of `step` (≤ 2^31 - 2), skipping 0 as the write path does. */
function serialAdd(s: number, step: number): number {
  return (s + step) % 0x100000000 || 1;
}

/**
 * Gives every entry a new entryCSN, newer than any CSN issued before the
 * restore, in one transaction of the restored store. A Content Sync
 * consumer ahead of the backup holds a contextCSN newer than the backup's
 * entries; in the full refresh it gets (RFC 4533 §3.3.1) an OpenLDAP slapd
 * consumer ignores every entry whose entryCSN is not newer than its
 * contextCSN ("not new enough"), so an entry deleted after the backup and
 * back with the restore would stay missing from it: silent divergence. With
 * the new CSN it takes every entry. The change log is left as it is (the
 * content did not change; a consumer at or behind the backup resumes from
 * its cookie); the serial moves that follow (advanceSerials) are newer still.
 * Returns the CSN.
 */
export function renewEntryCsns(services: Services): string {
  const { directory } = services;
  const store = directory.store;
  const csn = directory.newCsn();
  store.transaction(() => {
    store.setEveryEntryCsn(csn);
    if (store.indexedAttributes.has('entrycsn')) store.reindex((e) => indexRows(directory.schema, e.attrs, store.indexedAttributes));
  });
  return csn;
}

/** One serial a restore moved on. */
export interface SerialMove {
  zone: string;
  from: number;
  to: number;
}

/**
 * Moves every zone's SOA serial, and the zone-set serial (the catalog
 * zone's), forward by `step` (serialStep), in one transaction of the write
 * path of `services` (the writer's, over the restored store): change-log and
 * journal rows as for any serial bump. Returns the serials moved: every
 * zone's (sorted by name), and the zone-set serial's (`catalog`).
 */
export function advanceSerials(services: Services, step: number): { zones: SerialMove[]; catalog: { from: number; to: number } } {
  if (!Number.isSafeInteger(step) || step < 1 || step > MAX_STEP) throw new RangeError(`a serial step is 1 to ${MAX_STEP}, not ${step}`);
  const { directory, zones } = services;
  const store = directory.store;
  const who = directory.systemIdentity();
  const moved: SerialMove[] = [];
  let catalog = { from: 0, to: 0 };
  directory.write(() => {
    for (const name of zones.zoneNames()) {
      const ndn = zones.names.toNdn(name);
      const apex = ndn === undefined ? undefined : store.getByNdn(ndn);
      const values = apex?.attrs.sOARecord;
      if (!apex || !values?.length) continue; // the catalog zone: no entry, its serial is the zone-set serial
      let soa: Extract<RData, { type: 6 }>;
      try {
        soa = parseRData(RRTYPE.SOA, values[0]) as Extract<RData, { type: 6 }>;
      } catch {
        continue; // not served either (zones.ts zoneFromEntry)
      }
      const to = serialAdd(soa.serial, step);
      // A serial the writer raised stays (zones.ts bumpSerials): no second bump, and a journal row from → to.
      directory.modifySync(who, apex.dn, [{ op: 'replace', type: 'sOARecord', values: [formatRData({ ...soa, serial: to }), ...values.slice(1)] }]);
      moved.push({ zone: name, from: soa.serial, to });
    }
    const from = zoneSetSerial(store);
    bumpZoneSetSerial(store, step);
    catalog = { from, to: zoneSetSerial(store) };
    // No appliance runs to follow these changes: the next one to start NOTIFYs every zone (RFC 1996).
    announceAtStart(store);
  });
  return { zones: moved, catalog };
}

/** A restore refused or failed; nothing is left in the data dir (the message says why). */
export class RestoreError extends Error {
  constructor(message: string, readonly problems: readonly string[] = []) {
    super(message);
    this.name = 'RestoreError';
  }
}

/** What a restore did. */
export interface RestoreSummary {
  dataDir: string;
  manifest: Manifest;
  files: number;
  bytes: number;
  /** The queue rows whose spool path now names the data dir. */
  spoolRows: number;
  /** The serials moved on (none for a remote transfer unit's data dir, which holds no zone). */
  serials: ReturnType<typeof advanceSerials> | undefined;
  step: number;
  /** How far this machine's clock is behind the backup's `created` (ms; 0 when not): the serial step was 1 however old the backup. */
  clockBehindMs: number;
  seconds: number;
}

/** Options of {@link restoreBackup}. */
export interface RestoreOptions {
  /** Called after each file checked (all first), then after each copied: the phase, files and bytes so far, bytes in all. */
  onProgress?: (phase: 'check' | 'copy', p: { files: number; bytes: number; totalBytes: number }) => void;
  /** The time of the restore (ms since the epoch), for the serial step; default now. */
  now?: number;
  /** Aborted: the restore stops before the next file (or before it puts the data dir in place), removes what it wrote and rejects with the reason. */
  signal?: AbortSignal;
}

/** The store files of a backup: the directory's, and a remote transfer unit's queue. */
const STORE_FILE = 'dcmx.sqlite';
const UNIT_STORE_FILE = 'queue.sqlite';

/** What mke2fs makes at the top of a new file system (fsck's), left where it is in a data dir on a mount point. */
const LOST_FOUND = 'lost+found';

/**
 * Why `dataDir` may not be restored into, or undefined when it may: it is
 * missing or an empty directory (but for lost+found, and `work` when given),
 * and no appliance holds its lock.
 */
function targetProblem(dataDir: string, work?: string): string | undefined {
  let names: string[];
  try {
    const st = fs.statSync(dataDir);
    if (!st.isDirectory()) return `${dataDir} is not a directory`;
    // A new ext2/3/4 file system's lost+found (a mount point) is no data: it stays. Our own work dir neither.
    names = fs.readdirSync(dataDir).filter((n) => n !== LOST_FOUND && n !== (work && path.basename(work)));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return `cannot read ${dataDir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  }
  if (names.includes(LOCK_FILE)) {
    const lock = tryLock(path.join(dataDir, LOCK_FILE));
    if (!lock) return `an appliance is running on ${dataDir} (it holds ${LOCK_FILE}): stop it, and restore into an empty data dir`;
    lock.release();
  }
  if (names.length) {
    const shown = names.sort().slice(0, 5).join(', ');
    return `${dataDir} is not empty (${shown}${names.length > 5 ? `, and ${names.length - 5} more` : ''}): restore only into a missing or empty data dir`;
  }
  return undefined;
}

/**
 * The manifest's modes a restore refuses to create, one line each: setuid
 * and sticky bits, setgid on a file (a Maildir shared with a mail group is
 * setgid: 2770, server/mta/maildir.ts), write for others. The appliance
 * makes none of them; a tree that holds them was not made by dcmx backup
 * from a sound data dir, and, restored as root, would put a setuid root
 * file, or a directory anyone can plant a link in, under the data dir.
 */
function unsafeModes(manifest: Manifest): string[] {
  const out: string[] = [];
  for (const [entries, isDir] of [[manifest.dirs, true], [manifest.files, false]] as const) {
    for (const e of entries) {
      const mode = parseMode(e.mode);
      if (mode & 0o5002 || (!isDir && mode & 0o2000)) out.push(`${e.path}: mode ${e.mode} (setuid, sticky, setgid on a file, or writable by others): not restored`);
    }
  }
  return out;
}

/**
 * The triggers and views of the store `file` (StoreInspection). A backup's
 * store with a trigger would run it in the restore's own writes (one that
 * puts back a spool path outside the data dir after rebaseSpoolPaths
 * checked it) and in every write of the restored appliance.
 */
function foreignSchema(file: string): string[] {
  let s: StoreInspection;
  try {
    s = StoreInspection.open(file, { tidy: true });
  } catch (e) {
    return [`cannot be opened (${(e as Error).message})`];
  }
  try {
    return s.triggersAndViews();
  } finally {
    s.close();
  }
}

/**
 * Rewrites the queue's spool paths to name `dataDir`: the backup holds them
 * relative to its tree (`spool/<id>.eml`), the appliance opens them as
 * they are, and its spool sweep at start removes every file no row names.
 * Inline messages ('' spool) are left alone. Returns the rows rewritten.
 * Throws RestoreError for a relative path that is not `spool/NAME` (one
 * that climbs out, `spool/../../x`, would have the appliance read, and
 * remove once delivered, a file outside the data dir).
 */
export function rebaseSpoolPaths(store: Store, dataDir: string): number {
  const queue = new QueueStore(store);
  let n = 0;
  store.transaction(() => {
    for (const { id, spool } of queue.spoolRows()) {
      if (!spool) continue;
      const rel = path.isAbsolute(spool) ? `spool/${path.basename(spool)}` : spool;
      if (!isSafeRelativePath(rel) || !/^spool\/[^/]+$/.test(rel)) {
        throw new RestoreError(`queue message ${id} names the spool file ${JSON.stringify(spool)}, not one in spool/: nothing restored`);
      }
      queue.setSpool(id, resolveIn(dataDir, rel));
      n++;
    }
  });
  return n;
}

/**
 * Gives the Maildirs under `root`/mail to the mail group (the backup keeps
 * modes, not owners: manifest.ts), their modes set again after (a chown may
 * clear the setgid bit).
 */
async function shareMail(root: string, manifest: Manifest, group: number): Promise<void> {
  for (const e of [...manifest.dirs, ...manifest.files]) {
    if (e.path !== 'mail' && !e.path.startsWith('mail/')) continue;
    await fsp.chown(resolveIn(root, e.path), -1, group);
    await fsp.chmod(resolveIn(root, e.path), parseMode(e.mode));
  }
}

/**
 * Moves the restored tree's entries from `work` into the existing data dir
 * `dataDir`, never over a name there: the store file first, by link(2),
 * which fails when the name exists (an appliance started on the data dir
 * during the restore has made a store of its own: RestoreError, nothing
 * placed); then each other entry, a file by link(2), a directory by
 * rename(2) once its name is seen free (rename would replace an empty
 * directory made in between: one the appliance would have made empty).
 * A name taken after the store was placed is reported (RestoreError): the
 * appliance then runs on the restored store, without that entry.
 */
function placeInto(work: string, dataDir: string): void {
  const stores = new Set([STORE_FILE, UNIT_STORE_FILE]);
  const names = fs.readdirSync(work).sort((a, b) => Number(stores.has(b)) - Number(stores.has(a)));
  const placed: string[] = [];
  for (const name of names) {
    const from = path.join(work, name);
    const to = path.join(dataDir, name);
    const taken = () => new RestoreError(placed.length
      ? `${to} was made while the restore put the data dir in place (an appliance started on it?): ${placed.join(', ')} restored, ${name} and what follows not; stop the appliance and restore again into an empty data dir`
      : `${to} was made during the restore (an appliance started on ${dataDir}?): nothing restored`);
    if (fs.lstatSync(from).isDirectory()) {
      if (fs.existsSync(to)) throw taken();
      fs.renameSync(from, to);
    } else {
      try {
        fs.linkSync(from, to);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw taken();
        throw e;
      }
      fs.unlinkSync(from);
    }
    placed.push(name);
  }
}

/**
 * Restores the backup tree at `src` into `config.dataDir` (see the module
 * comment). Throws RestoreError (with the list of problems, when the tree
 * does not match its manifest) and writes nothing when it refuses; on a
 * failure after it began writing, removes what it wrote and throws.
 */
export async function restoreBackup(src: string, config: Config, opts: RestoreOptions = {}): Promise<RestoreSummary> {
  const started = Date.now();
  const dataDir = config.dataDir;
  const manifest = await readManifest(src).catch((e: Error) => {
    throw new RestoreError(e.message);
  });
  const has = (p: string) => manifest.files.some((f) => f.path === p);
  if (config.role === 'mta' ? !has(UNIT_STORE_FILE) && has(STORE_FILE) : !has(STORE_FILE)) {
    throw new RestoreError(config.role === 'mta'
      ? `${src} is an appliance's backup (${STORE_FILE}), and this is a remote transfer unit's configuration (DCMX_ROLE=mta)`
      : `${src} holds no ${STORE_FILE}: a remote transfer unit's backup is restored with its configuration (DCMX_ROLE=mta)`);
  }
  if (manifest.versions.schema > schemaVersion()) {
    throw new RestoreError(`${src} was made by a newer dcmx (${manifest.versions.dcmx}, store schema ${manifest.versions.schema}; this version's is ${schemaVersion()}): restore it with that version or a later one`);
  }
  const unsafe = unsafeModes(manifest);
  if (unsafe.length) throw new RestoreError(`${src} asks for modes a data dir never has: nothing restored`, unsafe);
  const problem = targetProblem(dataDir);
  if (problem) throw new RestoreError(problem);
  // A data dir inside the tree would be written into the backup itself, which then matches its manifest no more.
  const { real: target, missing } = (() => {
    try {
      return realTarget(dataDir);
    } catch (e) {
      throw new RestoreError(`cannot use ${dataDir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  })();
  const tree = fs.realpathSync(src);
  if (target === tree || inside(tree, target) !== undefined) throw new RestoreError(`${dataDir} is inside the backup ${src}: restore it elsewhere`);
  const group = config.mta.mailGroup;
  if (group !== undefined && manifest.mail && process.getuid?.() !== 0 && !process.getgroups?.().includes(group)) {
    throw new ConfigError('DCMX_MAIL_GROUP', `cannot give the restored Maildirs to group ${group}: run dcmx restore as root or as a member of the group`);
  }
  let checked = 0;
  const problems = await checkTree(src, manifest, { onProgress: (b, t) => opts.onProgress?.('check', { files: ++checked, bytes: b, totalBytes: t }) });
  if (problems.length) throw new RestoreError(`${src} does not match its manifest: nothing restored`, problems);
  const foreign = [STORE_FILE, UNIT_STORE_FILE].filter(has).flatMap((f) => foreignSchema(resolveIn(src, f)).map((o) => `${f}: ${o}`));
  if (foreign.length) throw new RestoreError(`${src} holds SQL that dcmx never creates: nothing restored`, foreign);
  opts.signal?.throwIfAborted();

  // Beside the data dir when it is missing (then one rename); inside it when it exists (empty: it may be a mount point).
  const exists = missing.length === 0;
  // A missing data dir is made by the last rename; its missing parents now.
  const made = missing.slice(0, -1);
  for (const d of made) await makeDir(d, 0o700);
  const work = exists ? path.join(dataDir, `.dcmx-restoring-${process.pid}`) : path.join(path.dirname(dataDir), `.${path.basename(dataDir)}.dcmx-restoring-${process.pid}`);
  // An existing empty data dir (a mount point) closed to others before anything goes in, as a new one is (0700; the
  // appliance adds the mail group's search bit itself, maildir.ts prepareMailRoot).
  if (exists) await fsp.chmod(dataDir, 0o700);
  try {
    await makeDir(work, 0o700);
    for (const d of manifest.dirs) await makeDir(resolveIn(work, d.path), parseMode(d.mode));
    let bytes = 0;
    let files = 0;
    for (const f of manifest.files) {
      opts.signal?.throwIfAborted();
      const copied = await copyFileDurably(resolveIn(src, f.path), resolveIn(work, f.path), parseMode(f.mode), f.path);
      if (copied.sha256 !== f.sha256) throw new RestoreError(`${f.path} changed in ${src} while it was restored: nothing restored`);
      bytes += copied.size;
      opts.onProgress?.('copy', { files: ++files, bytes, totalBytes: manifest.totals.bytes });
    }
    if (group !== undefined && manifest.mail) await shareMail(work, manifest, group);

    let spoolRows = 0;
    let serials: RestoreSummary['serials'];
    const step = serialStep(Date.parse(manifest.created), opts.now ?? Date.now());
    if (has(STORE_FILE)) {
      // The appliance's own way to open its store (migrations of an older version's backup included).
      const services = openStore({ ...config, dataDir: work });
      try {
        spoolRows = rebaseSpoolPaths(services.directory.store, dataDir);
        renewEntryCsns(services);
        serials = advanceSerials(services, step);
      } finally {
        services.directory.store.close();
      }
    }
    if (has(UNIT_STORE_FILE)) {
      const store = openUnitStore(work);
      try {
        spoolRows += rebaseSpoolPaths(store, dataDir);
      } finally {
        store.close();
      }
    }
    // Every name made durable (copyFileDurably fsynced the files) before the tree is put in place.
    await fsyncDirs(work, manifest.dirs.map((d) => d.path));
    // The last moment to stop: from here on the data dir is put in place.
    opts.signal?.throwIfAborted();
    if (exists) {
      const late = targetProblem(dataDir, work);
      if (late) throw new RestoreError(`${late} (since the restore began): nothing restored`);
      placeInto(work, dataDir);
      fs.rmdirSync(work);
      await fsyncDirNow(dataDir);
    } else {
      fs.renameSync(work, dataDir);
      await fsyncDirNow(path.dirname(dataDir));
    }
    const clockBehindMs = Math.max(0, Date.parse(manifest.created) - (opts.now ?? started));
    return { dataDir, manifest, files: manifest.files.length, bytes, spoolRows, serials, step, clockBehindMs, seconds: (Date.now() - started) / 1000 };
  } catch (e) {
    await fsp.rm(work, { recursive: true, force: true }).catch(() => undefined);
    for (const d of made.reverse()) await fsp.rmdir(d).catch(() => undefined);
    throw e;
  }
}
