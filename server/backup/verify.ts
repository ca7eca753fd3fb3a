/**
 * `dcmx verify [PATH]`: checks a data dir (the configuration's, by default)
 * or a backup tree (a directory with manifest.json, snapshot.ts) and lists
 * what is wrong, one line each:
 *
 * - the SQLite stores (dcmx.sqlite; queue.sqlite of a remote transfer unit):
 *   PRAGMA integrity_check and foreign_key_check, and a schema no newer than
 *   this version's (a backup's: the one its manifest names);
 * - the queue against the spool: every queue row's spool file is there with
 *   the row's size, and no spool file is left that no row names (an orphan:
 *   a message never acknowledged, which the appliance removes at its next
 *   start; a backup holds only the files its rows name);
 * - the Maildirs under mail/: one directory per domain, one per mailbox (the
 *   names server/directory/mailbox.ts makes), each with tmp/, new/ and cur/,
 *   message files with Maildir names, nothing else but Dovecot's own files
 *   and Maildir++ folders;
 * - a backup: every file's size, SHA-256 and mode and every directory's mode
 *   against the manifest, and nothing in the tree that it does not list
 *   (manifest.ts checkTree). A tree without manifest.json is an incomplete
 *   backup (killed before its end) and is reported as such.
 *
 * It writes nothing and takes no lock (not the appliance's dcmx.lock): it
 * runs beside a serving appliance. What the appliance changes while it reads
 * (a message delivered, one being received, a mailbox being created) is read
 * again before it is called a problem.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { StoreInspection, type SpoolRow } from '../../storage/inspect';
import { schemaVersion } from '../../storage/db';
import { checkTree, MANIFEST_FILE, ManifestError, readManifest, type Manifest } from './manifest';
import { LOCK_FILE } from '../succession';

/** What a verify found. */
export interface VerifyReport {
  /** A backup: the tree has (or, incomplete, should have) a manifest. */
  kind: 'data dir' | 'backup';
  /** One line per problem: a path relative to the tree ('/'-separated), a colon, what is wrong. Empty when all is well. */
  problems: string[];
  /** What was checked, one line (for the summary). */
  checked: string;
}

/**
 * A spool file younger than this, with no queue row, may be a message being
 * received right now (its row commits once the file is fsynced): on a data
 * dir it is not called an orphan.
 */
export const RECEIVING_GRACE_MS = 60_000;

/** The store files a data dir or backup may hold: the appliance's, and a remote transfer unit's (server/remote-unit.ts). */
const STORES = ['dcmx.sqlite', 'queue.sqlite'];

/** Files Dovecot (and Courier) keep in a Maildir beside tmp/new/cur; a Maildir++ folder is a directory named `.Name`. */
const IMAP_FILES = /^(?:dovecot[-.].+|subscriptions|maildirfolder|courier[a-z]+)$/;
/** A mail domain's directory: a lower-case A-label host name (mailbox.ts). */
const DOMAIN_DIR = /^[a-z0-9_-][a-z0-9._-]*$/;
/** A mailbox's directory: the local part, bytes outside [a-z0-9._+=-] as %XX (mailbox.ts). */
const MAILBOX_DIR = /^(?:[a-z0-9._+=-]|%[0-9A-F]{2})+$/;
/** A message in new/: not hidden, no info part (maildir(5)). */
const NEW_NAME = /^[^.:/][^:/]*$/;
/** A message in cur/: not hidden, an optional info part ':2,FLAGS' (maildir(5); ':1,' is experimental semantics). */
const CUR_NAME = /^[^.:/][^:/]*(?::[12],[^:/]*)?$/;

/** Whether `PATH` names a backup: it holds manifest.json, or it is not a data dir (no store lock file, not the configured one). */
export function isBackupTree(root: string, configuredDataDir: string): boolean {
  if (fs.existsSync(path.join(root, MANIFEST_FILE))) return true;
  return path.resolve(root) !== path.resolve(configuredDataDir) && !fs.existsSync(path.join(root, LOCK_FILE));
}

/**
 * Checks the tree at `root`, a data dir or (`backup`) a backup tree, as the
 * module comment says. Never throws for what it finds: a file it cannot read
 * is a problem line. `onProgress` sees the manifest check's bytes.
 */
export async function verifyTree(root: string, backup: boolean, onProgress?: (bytes: number, total: number) => void): Promise<VerifyReport> {
  const problems: string[] = [];
  const checked: string[] = [];
  const kind = backup ? 'backup' : 'data dir';
  const st = await fsp.stat(root).catch(() => undefined);
  if (!st?.isDirectory()) return { kind, problems: [`${root}: not a directory`], checked: '' };
  let manifest: Manifest | undefined;
  if (backup) {
    // The bytes as saved first: opening the stores below may add (and then remove) SQLite's side files.
    try {
      manifest = await readManifest(root);
    } catch (e) {
      if (!(e instanceof ManifestError)) throw e;
      const missing = !fs.existsSync(path.join(root, MANIFEST_FILE));
      problems.push(`${MANIFEST_FILE}: ${missing ? 'missing: an incomplete backup (killed before its end, or not a dcmx backup); restore refuses it' : e.message}`);
    }
    if (manifest) {
      const found = await checkTree(root, manifest, { onProgress });
      problems.push(...found);
      checked.push(`${count(manifest.totals.files, 'file')} (${count(manifest.totals.bytes, 'byte')}) against the manifest of ${manifest.created}`);
    }
  }
  const stores = openStores(root, backup, manifest, problems, checked);
  try {
    checked.push(await checkSpool(root, backup, stores, problems));
  } finally {
    for (const s of stores) s.close();
  }
  if (!manifest || manifest.mail) checked.push(await checkMaildirs(root, backup, problems));
  return { kind, problems, checked: checked.join(', ') };
}

/** Opens and checks each store of the tree (integrity, foreign keys, schema); the open ones are returned for the spool check. */
function openStores(root: string, backup: boolean, manifest: Manifest | undefined, problems: string[], checked: string[]): StoreInspection[] {
  const open: StoreInspection[] = [];
  const present = STORES.filter((name) => fs.existsSync(path.join(root, name)));
  if (!present.length) problems.push(`${STORES[0]}: missing (no store: neither ${STORES.join(' nor ')})`);
  for (const name of present) {
    let s: StoreInspection;
    try {
      s = StoreInspection.open(path.join(root, name), { tidy: backup });
    } catch (e) {
      problems.push(`${name}: cannot be opened: ${(e as Error).message}`);
      continue;
    }
    const integrity = s.integrity();
    for (const m of integrity) problems.push(`${name}: integrity: ${m}`);
    for (const m of s.foreignKeys()) problems.push(`${name}: foreign key: ${m}`);
    for (const o of s.triggersAndViews()) problems.push(`${name}: ${o}: dcmx makes no trigger or view (restore refuses it)`);
    let version: number | undefined;
    try {
      version = s.userVersion();
    } catch (e) {
      problems.push(`${name}: ${(e as Error).message}`);
    }
    if (version !== undefined && version > schemaVersion()) problems.push(`${name}: schema ${version} is newer than this version's (${schemaVersion()}): a newer dcmx wrote it`);
    if (version !== undefined && manifest && name === present[0] && version !== manifest.versions.schema) {
      problems.push(`${name}: schema ${version}, the manifest says ${manifest.versions.schema}`);
    }
    if (!integrity.length) checked.push(`${name} integrity ok (schema ${version ?? '?'})`);
    open.push(s);
  }
  return open;
}

/** The queue rows with a spool file of every store, or undefined (and a problem line) when one cannot be read. */
function spoolRows(stores: StoreInspection[], problems?: string[]): SpoolRow[] | undefined {
  const rows: SpoolRow[] = [];
  for (const s of stores) {
    try {
      rows.push(...s.spoolRows());
    } catch (e) {
      problems?.push(`queue: cannot be read: ${(e as Error).message}`);
      return undefined;
    }
  }
  return rows;
}

/**
 * Where a row's spool file must be: in a data dir, the absolute path the
 * appliance opens, which must be `<root>/spool/<name>` (through symbolic
 * links or not); in a backup, the relative `spool/<name>` (snapshot.ts
 * rewrites them, restore.ts back). Returns the file's name in spool/, and
 * the problem with the column if any.
 */
function spoolName(root: string, backup: boolean, row: SpoolRow): { name: string; wrong?: string } {
  const name = path.basename(row.spool);
  if (backup) return { name, wrong: row.spool === `spool/${name}` ? undefined : `the queue row names ${JSON.stringify(row.spool)}, expected spool/${name} in a backup` };
  const expected = path.join(path.resolve(root), 'spool', name);
  const same = row.spool === expected || (path.isAbsolute(row.spool) && realDir(path.dirname(row.spool)) === realDir(path.dirname(expected)));
  return { name, wrong: same ? undefined : `the queue row names ${row.spool}, not this data dir's ${expected}: delivery would not find it` };
}

/** `dir` with its symbolic links resolved; `dir` itself when it does not exist. */
function realDir(dir: string): string {
  try {
    return fs.realpathSync(dir);
  } catch {
    return dir;
  }
}

/** Checks the queue rows against spool/: each named file there with the row's size, no file that no row names. */
async function checkSpool(root: string, backup: boolean, stores: StoreInspection[], problems: string[]): Promise<string> {
  const dir = path.join(root, 'spool');
  // Listed before the rows are read: a file whose row commits meanwhile is then named by the rows.
  const listed = await fsp.readdir(dir, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') problems.push(`spool: cannot be read: ${e.code ?? e.message}`);
    return [];
  });
  const rows = spoolRows(stores, problems);
  if (!rows) return 'queue unreadable';
  const named = new Map(rows.map((r) => [spoolName(root, backup, r).name, r]));
  const suspects: { line: string; id?: string; orphan?: string }[] = [];
  for (const row of rows) {
    const { name, wrong } = spoolName(root, backup, row);
    if (wrong) suspects.push({ line: `spool/${name}: ${wrong}`, id: row.id });
    const st = await fsp.lstat(path.join(dir, name)).catch(() => undefined);
    if (!st) suspects.push({ line: `spool/${name}: missing (queue message ${row.id}, ${row.size} bytes)`, id: row.id });
    else if (!st.isFile()) problems.push(`spool/${name}: not a regular file (queue message ${row.id})`);
    else if (st.size !== row.size) suspects.push({ line: `spool/${name}: ${st.size} bytes, the queue row says ${row.size} (queue message ${row.id})`, id: row.id });
  }
  for (const e of listed) {
    if (named.has(e.name)) continue;
    if (!e.isFile() || !e.name.endsWith('.eml')) problems.push(`spool/${e.name}: stray ${e.isDirectory() ? 'directory' : 'entry'} (spool/ holds <queue id>.eml files only)`);
    else suspects.push({ line: `spool/${e.name}: orphan: no queue row names it${backup ? ' (a backup holds the files of its queue rows only)' : ' (the appliance removes it at its next start)'}`, orphan: e.name });
  }
  if (suspects.length && !backup) {
    // A live appliance may have finished a message (row and file gone) or committed one since: read the rows again.
    const again = spoolRows(stores) ?? rows;
    const now = new Map(again.map((r) => [r.id, r]));
    const nowNamed = new Set(again.map((r) => spoolName(root, backup, r).name));
    const since = Date.now() - RECEIVING_GRACE_MS;
    for (const s of suspects) {
      if (s.id !== undefined && !now.has(s.id)) continue; // delivered meanwhile
      if (s.orphan !== undefined) {
        if (nowNamed.has(s.orphan)) continue;
        const st = await fsp.stat(path.join(dir, s.orphan)).catch(() => undefined);
        if (!st || st.mtimeMs >= since) continue; // gone, or perhaps being received
      }
      problems.push(s.line);
    }
  } else {
    problems.push(...suspects.map((s) => s.line));
  }
  return `${count(rows.length, 'queued message')} with spool files`;
}

/** Counts of a Maildir walk. */
interface MailCounts {
  mailboxes: number;
  messages: number;
}

/** Checks mail/: domains, mailboxes, each a Maildir (checkMaildir). */
async function checkMaildirs(root: string, backup: boolean, problems: string[]): Promise<string> {
  const counts: MailCounts = { mailboxes: 0, messages: 0 };
  const mail = path.join(root, 'mail');
  const late: { rel: string; dir: string }[] = [];
  for (const d of await entries(mail, 'mail', problems)) {
    const drel = `mail/${d.name}`;
    if (!d.isDirectory()) {
      problems.push(`${drel}: stray ${kindOf(d)} (mail/ holds one directory per domain)`);
      continue;
    }
    if (!DOMAIN_DIR.test(d.name)) problems.push(`${drel}: not a domain directory name (lower-case A-labels)`);
    for (const b of await entries(path.join(mail, d.name), drel, problems)) {
      const brel = `${drel}/${b.name}`;
      if (!b.isDirectory()) {
        problems.push(`${brel}: stray ${kindOf(b)} (a domain's directory holds one Maildir per mailbox)`);
        continue;
      }
      if (!MAILBOX_DIR.test(b.name)) problems.push(`${brel}: not a mailbox directory name (a local part, %XX-encoded)`);
      counts.mailboxes++;
      await checkMaildir(path.join(mail, d.name, b.name), brel, counts, problems, backup ? undefined : late);
    }
  }
  // A live appliance creates a mailbox's directory before its tmp/new/cur: look again at those found incomplete.
  for (const l of late) {
    for (const sub of ['tmp', 'new', 'cur']) {
      const st = await fsp.lstat(path.join(l.dir, sub)).catch(() => undefined);
      if (!st) problems.push(`${l.rel}: no ${sub}/ (not a Maildir)`);
    }
  }
  return `${count(counts.mailboxes, 'mailbox', 'mailboxes')} with ${count(counts.messages, 'message')}`;
}

/**
 * Checks one Maildir (maildir(5)): tmp/, new/ and cur/ directories, message
 * names in new/ and cur/, Maildir++ folders (`.Name`) in turn, nothing else
 * but IMAP servers' files. tmp/ holds deliveries under way: its files are
 * not checked. A missing tmp/new/cur goes to `late` when given (a live data
 * dir: the mailbox may be being created), else is a problem at once.
 */
async function checkMaildir(box: string, rel: string, counts: MailCounts, problems: string[], late?: { rel: string; dir: string }[]): Promise<void> {
  const found = new Set<string>();
  for (const e of await entries(box, rel, problems)) {
    const erel = `${rel}/${e.name}`;
    if (e.name === 'tmp' || e.name === 'new' || e.name === 'cur') {
      if (!e.isDirectory()) {
        problems.push(`${erel}: not a directory`);
        continue;
      }
      found.add(e.name);
      if (e.name === 'tmp') continue;
      const valid = e.name === 'new' ? NEW_NAME : CUR_NAME;
      for (const m of await entries(path.join(box, e.name), erel, problems)) {
        if (!m.isFile()) problems.push(`${erel}/${m.name}: stray ${kindOf(m)} (a Maildir's ${e.name}/ holds message files)`);
        else if (!valid.test(m.name)) problems.push(`${erel}/${m.name}: not a Maildir message name`);
        else counts.messages++;
      }
    } else if (e.isDirectory() && e.name.startsWith('.') && e.name !== '.' && e.name !== '..') {
      await checkMaildir(path.join(box, e.name), erel, counts, problems); // a Maildir++ folder (IMAP): complete or not, never being created by dcmx
    } else if (!(e.isFile() && IMAP_FILES.test(e.name))) {
      problems.push(`${erel}: stray ${kindOf(e)} (a Maildir holds tmp/, new/, cur/ and its IMAP server's files)`);
    }
  }
  const missing = ['tmp', 'new', 'cur'].filter((s) => !found.has(s));
  if (missing.length && late) late.push({ rel, dir: box });
  else for (const s of missing) problems.push(`${rel}: no ${s}/ (not a Maildir)`);
}

/** The entries of `dir`, sorted; none when it does not exist; an unreadable one is a problem. */
async function entries(dir: string, rel: string, problems: string[]): Promise<fs.Dirent[]> {
  try {
    return (await fsp.readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') problems.push(`${rel}: cannot be read: ${code ?? (e as Error).message}`);
    return [];
  }
}

/** `n` and the noun, in the plural unless n is 1 (the summary lines of verify, backup and restore). */
export function count(n: number, noun: string, plural = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : plural}`;
}

/** What a directory entry is, in a problem line. */
function kindOf(e: fs.Dirent): string {
  return e.isDirectory() ? 'directory' : e.isSymbolicLink() ? 'symbolic link' : e.isFile() ? 'file' : 'special file';
}
