/**
 * The manifest of a backup tree (`dcmx backup DEST`): what the backup holds,
 * file by file with size, SHA-256 and mode, and the store's position at the
 * snapshot (change number, CSN, zone serials). It is written last, fsynced
 * and renamed into place: a tree without `manifest.json` is incomplete and
 * restore and verify refuse it.
 *
 * Also the tree helpers the backup, restore and verify share: walking a
 * tree, hashing a file, copying a file with its mode durably.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { fsyncDirNow } from '../mta/spool';

/** The manifest's file name at the top of a backup tree. */
export const MANIFEST_FILE = 'manifest.json';
/** The manifest's `format`. */
export const MANIFEST_FORMAT = 'dcmx-backup';
/** The only `formatVersion` this version reads and writes. */
export const MANIFEST_VERSION = 1;

/** One regular file of the backup tree. */
export interface ManifestFile {
  /** Relative to the tree, '/'-separated, never absolute, never `..`. */
  path: string;
  size: number;
  /** Lower-case hex SHA-256 of the contents. */
  sha256: string;
  /** Permission bits as four octal digits, e.g. "0600". */
  mode: string;
}

/** One directory of the backup tree (the top itself is not listed). */
export interface ManifestDir {
  path: string;
  mode: string;
}

/** manifest.json, formatVersion 1. */
export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  formatVersion: typeof MANIFEST_VERSION;
  /** ISO 8601 instant of the SQLite snapshot. */
  created: string;
  host: string;
  versions: { dcmx: string; node: string; sqlite: string; schema: number };
  /** The store's change-log head in the snapshot (0 for an empty log). */
  changeNumber: number;
  /** The CSN of that change ('' for an empty log). */
  csn: string;
  /** SOA serial of every zone in the snapshot, by name with its final dot. */
  zones: Record<string, number>;
  /** False when made with --no-mail (no Maildirs in the tree). */
  mail: boolean;
  queue: {
    messages: number;
    recipients: number;
    /** Messages of the snapshot whose spool file was gone at copy time: dropped from the backup's copy. */
    finishedDuringBackup: number;
  };
  /** Every file of the tree but the manifest, sorted by path. */
  files: ManifestFile[];
  /** Every directory of the tree, sorted by path. */
  dirs: ManifestDir[];
  totals: { files: number; bytes: number };
}

/** A manifest that cannot be read, or that this version refuses. */
export class ManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ManifestError';
  }
}

/** Permission bits (of st_mode or a mode) as four octal digits: 0o600 -> "0600". */
export function modeString(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/** The permission bits of a manifest mode string ("0600" -> 0o600). */
export function parseMode(mode: string): number {
  return parseInt(mode, 8);
}

/**
 * True when `p` is a path a manifest may hold: relative, '/'-separated,
 * no empty, `.` or `..` component, no backslash or NUL, not the manifest.
 */
export function isSafeRelativePath(p: string): boolean {
  if (typeof p !== 'string' || p === '' || p === MANIFEST_FILE || /[\\\0]/.test(p)) return false;
  return p.split('/').every((c) => c !== '' && c !== '.' && c !== '..');
}

/** `rel` (a safe manifest path) under `root`, in the platform's form. */
export function resolveIn(root: string, rel: string): string {
  return path.join(root, ...rel.split('/'));
}

/** `p` relative to `root`, '/'-separated, when `p` is below `root` (not `root` itself); undefined otherwise. */
export function inside(root: string, p: string): string | undefined {
  const rel = path.relative(root, p);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel.split(path.sep).join('/') : undefined;
}

/**
 * `p` as an absolute path with every symbolic link resolved, also when its
 * last components do not exist yet: the nearest existing ancestor's real
 * path with the missing components after it (`missing`: those paths as
 * given, outermost first), so that two paths can be compared before one is
 * made. Throws like fs.realpathSync but for ENOENT; ENOTDIR when the
 * nearest existing ancestor is not a directory.
 */
export function realTarget(p: string): { real: string; missing: string[] } {
  const missing: string[] = [];
  for (let q = path.resolve(p); ; q = path.dirname(q)) {
    let real: string;
    try {
      real = fs.realpathSync(q);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || path.dirname(q) === q) throw e;
      missing.unshift(q);
      continue;
    }
    if (missing.length && !fs.statSync(real).isDirectory()) throw Object.assign(new Error(`${q} is not a directory`), { code: 'ENOTDIR' });
    return { real: path.join(real, ...missing.map((m) => path.basename(m))), missing };
  }
}

/** One entry found by `walkTree`. */
export interface TreeEntry {
  /** Relative to the root, '/'-separated. */
  path: string;
  kind: 'file' | 'dir' | 'other';
  /** lstat of the entry at walk time. */
  stat: fs.Stats;
}

/**
 * Every entry below `root` (not `root` itself), sorted by path, found with
 * lstat (symbolic links are `other`, never followed). `skip(rel, name)`
 * leaves out an entry and, for a directory, all below it. Entries that
 * vanish during the walk are left out.
 */
export async function walkTree(root: string, skip?: (rel: string, name: string) => boolean): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  const visit = async (rel: string): Promise<void> => {
    let names: string[];
    try {
      names = await fsp.readdir(rel ? resolveIn(root, rel) : root);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    for (const name of names.sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (skip?.(r, name)) continue;
      let stat: fs.Stats;
      try {
        stat = await fsp.lstat(resolveIn(root, r));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw e;
      }
      const kind = stat.isFile() ? 'file' : stat.isDirectory() ? 'dir' : 'other';
      out.push({ path: r, kind, stat });
      if (kind === 'dir') await visit(r);
    }
  };
  await visit('');
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Reads the chunks of `file` (opened read-only) and hands each to `each`. Rejects like fs.open (ENOENT). */
async function readChunks(file: string, each: (chunk: Buffer) => Promise<void> | void): Promise<void> {
  const h = await fsp.open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let pos = 0; ; ) {
      const { bytesRead } = await h.read(buf, 0, buf.length, pos);
      if (!bytesRead) break;
      pos += bytesRead;
      await each(buf.subarray(0, bytesRead));
    }
  } finally {
    await h.close();
  }
}

/** The hex SHA-256 and size of `file`'s contents. Rejects like fs.open (ENOENT). */
export async function hashFile(file: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  await readChunks(file, (c) => {
    hash.update(c);
    size += c.length;
  });
  return { sha256: hash.digest('hex'), size };
}

/**
 * Copies `src` to the new file `dst` (which must not exist) with permission
 * bits exactly `mode` (umask notwithstanding), fsyncs it and returns its
 * manifest entry (`rel` as its path), hashed in the same pass. The caller
 * fsyncs `dst`'s directory (`fsyncDirs`). Rejects like fs.open when `src`
 * is missing (nothing is created then); a copy that fails part-way removes `dst`.
 */
export async function copyFileDurably(src: string, dst: string, mode: number, rel: string): Promise<ManifestFile> {
  const hash = createHash('sha256');
  let size = 0;
  const input = await fsp.open(src, 'r');
  try {
    const out = await fsp.open(dst, 'wx', 0o600);
    try {
      await out.chmod(mode & 0o7777);
      const buf = Buffer.allocUnsafe(1 << 20);
      for (;;) {
        const { bytesRead } = await input.read(buf, 0, buf.length, size);
        if (!bytesRead) break;
        const chunk = buf.subarray(0, bytesRead);
        hash.update(chunk);
        for (let off = 0; off < chunk.length; ) off += (await out.write(chunk, off, chunk.length - off, size + off)).bytesWritten;
        size += bytesRead;
      }
      await out.sync();
    } catch (e) {
      await out.close().catch(() => undefined);
      await fsp.rm(dst, { force: true });
      throw e;
    }
    await out.close();
  } finally {
    await input.close();
  }
  return { path: rel, size, sha256: hash.digest('hex'), mode: modeString(mode) };
}

/** Creates the directory `dir` (its parent exists) with permission bits exactly `mode`. */
export async function makeDir(dir: string, mode: number): Promise<void> {
  await fsp.mkdir(dir, { mode: 0o700 });
  await fsp.chmod(dir, mode & 0o7777);
}

/**
 * fsyncs `root` and each of `dirs` (relative to it), deepest first, so that
 * the files and directories created in them survive a crash.
 */
export async function fsyncDirs(root: string, dirs: readonly string[]): Promise<void> {
  const deepestFirst = [...dirs].sort((a, b) => b.split('/').length - a.split('/').length);
  for (const d of deepestFirst) await fsyncDirNow(resolveIn(root, d));
  await fsyncDirNow(root);
}

/**
 * Writes `manifest` as `root`/manifest.json, last: every directory it lists
 * is fsynced first (the files' own fsyncs are the copier's), then the
 * manifest goes to a temporary file (0600), is fsynced, renamed into place
 * and `root` fsynced. A crash at any point leaves either no manifest or the
 * whole one.
 */
export async function writeManifest(root: string, manifest: Manifest): Promise<void> {
  await fsyncDirs(root, manifest.dirs.map((d) => d.path));
  const tmp = path.join(root, `.${MANIFEST_FILE}.tmp`);
  const h = await fsp.open(tmp, 'w', 0o600);
  try {
    await h.chmod(0o600);
    await h.writeFile(JSON.stringify(manifest, null, 1) + '\n');
    await h.sync();
  } finally {
    await h.close();
  }
  await fsp.rename(tmp, path.join(root, MANIFEST_FILE));
  await fsyncDirNow(root);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const MODE_RE = /^[0-7]{4}$/; // modeString: setgid Maildirs under a mail group are 2770
const SHA256_RE = /^[0-9a-f]{64}$/;

/**
 * Parses and validates the text of a manifest. Throws ManifestError for
 * anything this version cannot trust: another format, an unknown
 * formatVersion, a missing or mistyped field, a path that is absolute or
 * climbs out (`..`), a path listed twice, totals that do not add up.
 */
export function parseManifest(text: string): Manifest {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch (e) {
    throw new ManifestError(`not JSON: ${(e as Error).message}`);
  }
  const bad = (what: string): never => {
    throw new ManifestError(what);
  };
  if (!isObject(m) || m.format !== MANIFEST_FORMAT) bad(`not a ${MANIFEST_FORMAT} manifest`);
  const o = m as Record<string, unknown>;
  if (o.formatVersion !== MANIFEST_VERSION) bad(`formatVersion ${JSON.stringify(o.formatVersion)} is not one this version reads (${MANIFEST_VERSION})`);
  if (typeof o.created !== 'string' || Number.isNaN(Date.parse(o.created))) bad('created is not a date');
  if (typeof o.host !== 'string') bad('host is missing');
  const v = o.versions;
  if (!isObject(v) || typeof v.dcmx !== 'string' || typeof v.node !== 'string' || typeof v.sqlite !== 'string' || !isCount(v.schema)) bad('versions is incomplete');
  if (!isCount(o.changeNumber)) bad('changeNumber is not a count');
  if (typeof o.csn !== 'string') bad('csn is missing');
  if (!isObject(o.zones) || !Object.values(o.zones).every(isCount)) bad('zones is not a map of serials');
  if (typeof o.mail !== 'boolean') bad('mail is not a boolean');
  const q = o.queue;
  if (!isObject(q) || !isCount(q.messages) || !isCount(q.recipients) || !isCount(q.finishedDuringBackup)) bad('queue is incomplete');
  if (!Array.isArray(o.files) || !Array.isArray(o.dirs)) bad('files or dirs is missing');
  const seen = new Set<string>();
  const checkPath = (p: unknown): void => {
    if (typeof p !== 'string' || !isSafeRelativePath(p)) bad(`unsafe path ${JSON.stringify(p)} (absolute, empty or with ..)`);
    if (seen.has(p as string)) bad(`path ${p as string} listed twice`);
    seen.add(p as string);
  };
  let bytes = 0;
  for (const f of o.files as unknown[]) {
    if (!isObject(f)) bad('a files item is not an object');
    const e = f as Record<string, unknown>;
    checkPath(e.path);
    if (!isCount(e.size) || typeof e.sha256 !== 'string' || !SHA256_RE.test(e.sha256) || typeof e.mode !== 'string' || !MODE_RE.test(e.mode)) {
      bad(`file ${e.path as string}: size, sha256 or mode is malformed`);
    }
    bytes += e.size as number;
  }
  for (const d of o.dirs as unknown[]) {
    if (!isObject(d)) bad('a dirs item is not an object');
    const e = d as Record<string, unknown>;
    checkPath(e.path);
    if (typeof e.mode !== 'string' || !MODE_RE.test(e.mode)) bad(`dir ${e.path as string}: mode is malformed`);
  }
  // Every file's and dir's parent is a listed dir (or the top).
  const dirs = new Set((o.dirs as ManifestDir[]).map((d) => d.path));
  for (const p of [...(o.files as ManifestFile[]), ...(o.dirs as ManifestDir[])].map((e) => e.path)) {
    const parent = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '';
    if (parent && !dirs.has(parent)) bad(`${p}: its directory ${parent} is not listed`);
  }
  const t = o.totals;
  if (!isObject(t) || t.files !== (o.files as unknown[]).length || t.bytes !== bytes) bad('totals do not match the files listed');
  return m as Manifest;
}

/** The largest manifest read (a million files take ~200 MB of JSON; a string can hold ~512 MiB). */
const MANIFEST_MAX_BYTES = 256 * 1024 * 1024;

/**
 * Reads and validates `root`/manifest.json (parseManifest). Throws
 * ManifestError when it is missing (an incomplete backup) or refused: also
 * when it is not a regular file (a symbolic link, a FIFO that would block
 * the read forever, /dev/zero) or larger than MANIFEST_MAX_BYTES.
 */
export async function readManifest(root: string): Promise<Manifest> {
  const file = path.join(root, MANIFEST_FILE);
  let text: string;
  try {
    // O_NOFOLLOW: a link is refused (ELOOP); O_NONBLOCK: opening a FIFO does not wait for a writer.
    const h = await fsp.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    try {
      const st = await h.stat();
      if (!st.isFile()) throw new ManifestError(`${file} is not a regular file`);
      if (st.size > MANIFEST_MAX_BYTES) throw new ManifestError(`${file} is ${st.size} bytes, more than a manifest can be (${MANIFEST_MAX_BYTES})`);
      text = await h.readFile('utf8');
    } finally {
      await h.close();
    }
  } catch (e) {
    if (e instanceof ManifestError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ManifestError(`${root} has no ${MANIFEST_FILE}: not a backup, or an incomplete one`);
    if (code === 'ELOOP') throw new ManifestError(`${file} is a symbolic link, not a regular file`);
    throw new ManifestError(`cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    return parseManifest(text);
  } catch (e) {
    throw new ManifestError(`${path.join(root, MANIFEST_FILE)}: ${(e as Error).message}`);
  }
}

/** Options of `checkTree`. */
export interface CheckTreeOptions {
  /** Called after each file is checked, with the bytes checked so far and the manifest's total. */
  onProgress?: (bytes: number, total: number) => void;
}

/**
 * Checks the tree at `root` against `manifest`: each listed file is there,
 * regular, of its size, SHA-256 and mode; each listed dir is there with its
 * mode; nothing else is there (but the manifest). Returns one line per
 * problem, '/'-separated paths first; an empty list when the tree matches.
 */
export async function checkTree(root: string, manifest: Manifest, opts: CheckTreeOptions = {}): Promise<string[]> {
  const problems: string[] = [];
  const present = new Map((await walkTree(root, (rel) => rel === MANIFEST_FILE)).map((e) => [e.path, e]));
  for (const d of manifest.dirs) {
    const e = present.get(d.path);
    present.delete(d.path);
    if (!e) problems.push(`${d.path}: directory missing`);
    else if (e.kind !== 'dir') problems.push(`${d.path}: not a directory`);
    else if (modeString(e.stat.mode) !== d.mode) problems.push(`${d.path}: mode ${modeString(e.stat.mode)}, expected ${d.mode}`);
  }
  let done = 0;
  for (const f of manifest.files) {
    const e = present.get(f.path);
    present.delete(f.path);
    if (!e) problems.push(`${f.path}: missing`);
    else if (e.kind !== 'file') problems.push(`${f.path}: not a regular file`);
    else {
      if (modeString(e.stat.mode) !== f.mode) problems.push(`${f.path}: mode ${modeString(e.stat.mode)}, expected ${f.mode}`);
      if (e.stat.size !== f.size) problems.push(`${f.path}: ${e.stat.size} bytes, expected ${f.size}`);
      else {
        const h = await hashFile(resolveIn(root, f.path)).catch((err: Error) => ({ sha256: `unreadable (${err.message})`, size: -1 }));
        if (h.sha256 !== f.sha256) problems.push(`${f.path}: sha256 ${h.sha256}, expected ${f.sha256}`);
      }
    }
    done += f.size;
    opts.onProgress?.(done, manifest.totals.bytes);
  }
  for (const p of present.keys()) problems.push(`${p}: not in the manifest`);
  return problems;
}
