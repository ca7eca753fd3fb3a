/**
 * The local delivery channel: one message into one Maildir.
 *
 * Layout is the qmail/Dovecot Maildir (`<box>/{tmp,new,cur}`) so Dovecot,
 * mutt or any Maildir reader can open the mailboxes directly. A delivery
 * writes `tmp/`, fsyncs, renames into `new/` and fsyncs `new/`: once it
 * returns ok the message survives a crash (ARCHITECTURE: "on disk first").
 *
 * File names are deterministic for (queue id, recipient) instead of the
 * usual time.pid.host, so that a delivery the queue repeats after a crash
 * (it cannot know whether the rename happened before the power went) is
 * recognised and not written twice.
 *
 * A process killed between open and rename leaves its file in tmp/; the
 * sweep below removes such files after 36 hours, as maildir(5) allows.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { DeliveryResult, QueuedMessage } from './types';
import { fsyncDirNow, fsyncFd, openMessage, randomHex12, syncDir, type MessageBytes } from './spool';

/** Where a mailbox lives is the directory's to say (it publishes it as mailMessageStore). */
export { InvalidMailboxError, mailboxPath } from '../directory/mailbox';

/** One local delivery: a queued message for one envelope recipient into one mailbox. */
export interface LocalDelivery {
  message: QueuedMessage;
  /** The envelope recipient (RFC 5321 forward-path), written as Delivered-To. */
  recipient: string;
  /** The Maildir to deliver into, normally mailboxPath(dataDir, recipient). */
  mailbox: string;
  /**
   * Look for an earlier delivery of this (message, recipient) first. Needed
   * only when one may have happened: a retry, or a message queued before the
   * current process started (a crash between Maildir rename and queue
   * commit). A first attempt skips the scan of new/ and cur/, which would
   * otherwise grow with the mailbox. Default true.
   */
  checkExisting?: boolean;
  /** DKIM-Signature header fields (CRLF line ends) written in front of the message (dkim-sign.ts). */
  signature?: Buffer;
}

/** Maildir file name characters that would break readers: '/' is the path separator, ':' starts the info part. */
function encodeHostname(hostname: string): string {
  return hostname.replace(/\//g, '\\057').replace(/:/g, '\\072');
}

/**
 * The deterministic Maildir base name of a delivery:
 * `<receivedAt seconds>.<queue id>_<8 hex of sha256(recipient)>.<hostname>`
 * with '/' and ':' in the hostname written as `\057` and `\072`
 * (the Dovecot/qmail convention). Throws TypeError for a queue id that is
 * not letters and digits (QueuedMessage guarantees it).
 */
export function maildirName(message: QueuedMessage, recipient: string, hostname: string): string {
  if (!/^[A-Za-z0-9]+$/.test(message.id)) throw new TypeError(`queue id ${JSON.stringify(message.id)} is not letters and digits`);
  const seconds = Math.floor(message.receivedAt.getTime() / 1000);
  const tag = crypto.createHash('sha256').update(recipient, 'utf8').digest('hex').slice(0, 8);
  return `${seconds}.${message.id}_${tag}.${encodeHostname(hostname)}`;
}

/** Removes characters that would end or split a header line. */
function headerSafe(s: string): string {
  return s.replace(/[\r\n\0]/g, '');
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.promises.lstat(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** True when `dir` holds `base` itself or `base` followed by an info (':2,FLAGS') or Dovecot ',S=...' suffix. */
async function dirHasBase(dir: string, base: string): Promise<boolean> {
  if (await exists(path.join(dir, base))) return true;
  let handle: fs.Dir;
  try {
    handle = await fs.promises.opendir(dir, { bufferSize: 256 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  // A scan: a reader may have renamed new/<base> to cur/<base>:2,S at any time.
  for await (const entry of handle) {
    const name = entry.name;
    if (name.length > base.length && name.startsWith(base) && (name[base.length] === ':' || name[base.length] === ',')) {
      return true; // leaving the loop early closes the directory handle
    }
  }
  return false;
}

/**
 * Modes under a mail group (DCMX_MAIL_GROUP): every directory from the mail
 * root down is the group's to read and write (an IMAP server moves messages
 * from new/ to cur/ and keeps its index files there), with the setgid bit so
 * that whatever it creates inside keeps the group; a message is readable by
 * the group (Maildir messages are never rewritten, only renamed).
 */
export const GROUP_DIR_MODE = 0o2770;
export const GROUP_FILE_MODE = 0o640;

/** Gives `p` to group `gid` with `mode` (chmod after chown: the process umask does not narrow it). */
async function shareWithGroup(p: string, gid: number, mode: number): Promise<void> {
  await fs.promises.chown(p, -1, gid);
  await fs.promises.chmod(p, mode);
}

/**
 * Readies the data dir for a mail group (DCMX_MAIL_GROUP) at start: the data
 * dir may be crossed by the group (group x only: `0710`, it lists nothing and
 * reads no file there), and the mail root `<dataDir>/mail` is created when
 * missing and given GROUP_DIR_MODE. Mailboxes made before the group was set
 * keep their modes (the README says how to share them).
 */
export async function prepareMailRoot(dataDir: string, gid: number): Promise<void> {
  const st = await fs.promises.stat(dataDir);
  await fs.promises.chown(dataDir, -1, gid);
  await fs.promises.chmod(dataDir, (st.mode & 0o700) | 0o010);
  const root = path.join(dataDir, 'mail');
  await fs.promises.mkdir(root, { mode: 0o700 }).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw e;
  });
  await shareWithGroup(root, gid, GROUP_DIR_MODE);
}

/**
 * Maildirs known to exist with tmp/new/cur, so a busy mailbox does not pay
 * three mkdir calls per message. A mailbox removed behind our back shows up
 * as an ENOENT on the next delivery, which forgets it and fails temporarily.
 */
const knownBoxes = new Set<string>();

async function ensureMaildir(box: string, group: number | undefined): Promise<void> {
  if (knownBoxes.has(box)) return;
  await createMaildir(box, group);
  if (knownBoxes.size > 100_000) knownBoxes.clear();
  knownBoxes.add(box);
}

/**
 * Creates `<box>/{tmp,new,cur}` when missing — 0700, or GROUP_DIR_MODE for
 * `group` (every directory it creates, parents included) — and makes new
 * directory entries durable.
 */
async function createMaildir(box: string, group: number | undefined): Promise<void> {
  const firstCreated = await fs.promises.mkdir(box, { recursive: true, mode: 0o700 });
  let created = firstCreated !== undefined;
  if (group !== undefined && firstCreated !== undefined) {
    // The parents mkdir made, outermost first, down to the box.
    const made: string[] = [];
    for (let dir = box; ; dir = path.dirname(dir)) {
      made.unshift(dir);
      if (dir === path.resolve(firstCreated) || dir === path.dirname(dir)) break;
    }
    for (const dir of made) await shareWithGroup(dir, group, GROUP_DIR_MODE);
  }
  for (const sub of ['tmp', 'new', 'cur']) {
    try {
      await fs.promises.mkdir(path.join(box, sub), { mode: 0o700 });
      if (group !== undefined) await shareWithGroup(path.join(box, sub), group, GROUP_DIR_MODE);
      created = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // Exists, but must be a directory (a file there is a broken mailbox).
      const st = await fs.promises.stat(path.join(box, sub));
      if (!st.isDirectory()) {
        const e = new Error(`${path.join(box, sub)} is not a directory`) as NodeJS.ErrnoException;
        e.code = 'ENOTDIR';
        throw e;
      }
    }
  }
  if (!created) return;
  // A new directory is only durable once its parent's entry is: fsync the
  // box (holding tmp/new/cur) and every parent up to the first one created.
  await fsyncDirNow(box);
  if (firstCreated !== undefined) {
    let dir = box;
    const stop = path.dirname(path.resolve(firstCreated));
    while (dir !== stop && dir !== path.dirname(dir)) {
      dir = path.dirname(dir);
      await fsyncDirNow(dir);
    }
  }
}

const EDQUOT = os.constants.errno.EDQUOT;
const ENOSPC = os.constants.errno.ENOSPC;

/** Maps an I/O error to a temporary failure with an RFC 3463 status. */
function ioFailure(err: unknown, doing: string): DeliveryResult {
  const e = err as NodeJS.ErrnoException;
  const code = e && typeof e === 'object' ? e.code : undefined;
  const errno = e && typeof e === 'object' ? e.errno : undefined;
  // Only the error code: the diagnostic may end up in a bounce to a stranger, so no local paths.
  const reason = typeof code === 'string' ? code : e instanceof Error ? e.name : 'error';
  if (code === 'EDQUOT' || (EDQUOT !== undefined && errno === -EDQUOT)) {
    // RFC 3463 §3.3: X.2.2 mailbox full (the user's quota).
    return { ok: false, permanent: false, status: '4.2.2', diagnostic: `x-local; mailbox full (quota exceeded) while ${doing}` };
  }
  if (code === 'ENOSPC' || (ENOSPC !== undefined && errno === -ENOSPC)) {
    // RFC 3463 §3.5: X.3.1 mail system full (the file system, not the user).
    return { ok: false, permanent: false, status: '4.3.1', diagnostic: `x-local; mail system full (no space left on device) while ${doing}` };
  }
  return { ok: false, permanent: false, status: '4.3.0', diagnostic: `x-local; error while ${doing} (${headerSafe(reason)})` };
}

/**
 * The largest read of a message being copied. The copy buffer is no larger
 * than the message: a fresh 1 MiB buffer per delivery of a 4 KiB message
 * kept the garbage collector marking the whole heap every few deliveries
 * (external memory).
 */
const COPY_CHUNK = 1 << 20;

/**
 * Writes `parts` (a message kept in memory, its lines already LF; in one
 * writev) into the new file `file` (O_EXCL, 0600; with `group`, GROUP_FILE_MODE and that
 * group) and fsyncs it. Open, write and close are synchronous: page-cache
 * work, where a round trip to the thread pool for each (a futex wake-up
 * either way) costs more CPU than the call itself; the fsync, which waits
 * for the disk, goes to the thread pool.
 */
async function writeSmallFile(file: string, parts: Buffer[], group: number | undefined): Promise<void> {
  const fd = fs.openSync(file, 'wx', 0o600);
  try {
    if (group !== undefined) {
      fs.fchownSync(fd, -1, group);
      fs.fchmodSync(fd, GROUP_FILE_MODE);
    }
    // One writev(2) for the parts; what a short write leaves, in plain writes.
    const written = fs.writevSync(fd, parts);
    const total = parts.reduce((n, b) => n + b.length, 0);
    if (written < total) {
      const rest = Buffer.concat(parts).subarray(written);
      for (let off = 0; off < rest.length;) off += fs.writeSync(fd, rest, off);
    }
    await fsyncFd(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Writes `head` then the spool file's bytes, CRLF turned into LF by `eol`
 * (in COPY_CHUNK reads), into the new file `file` (modes as writeSmallFile)
 * and fsyncs it.
 */
async function copyIntoFile(file: string, head: Buffer[], spool: MessageBytes, eol: CrlfToLf, group: number | undefined): Promise<void> {
  const buf = Buffer.allocUnsafe(Math.max(1, Math.min(COPY_CHUNK, spool.size)));
  const out = await fs.promises.open(file, 'wx', 0o600);
  try {
    if (group !== undefined) {
      await out.chown(-1, group);
      await out.chmod(GROUP_FILE_MODE);
    }
    for (const h of head) await out.write(h);
    for (let position = 0; ;) {
      const { bytesRead } = await spool.read(buf, 0, buf.length, position);
      if (bytesRead === 0) break;
      position += bytesRead;
      const lf = eol.push(buf.subarray(0, bytesRead));
      await out.write(lf, 0, lf.length);
    }
    const tail = eol.end();
    if (tail.length) await out.write(tail);
    await out.sync();
  } finally {
    await out.close();
  }
}

/**
 * Delivers one message into one Maildir, exactly once.
 *
 * - Creates `<mailbox>/{tmp,new,cur}` when missing (directories mode 0700;
 *   with `opts.group`, GROUP_DIR_MODE and that group, parents included).
 * - The file name is maildirName(message, recipient, hostname). If a file
 *   with that base name is already in new/, or in cur/ with an info suffix
 *   (`<base>:2,<flags>`), the call returns ok without writing: a delivery
 *   repeated after a crash lands once.
 * - Otherwise writes `tmp/<name>.<random>` (O_EXCL, mode 0600; with
 *   `opts.group`, GROUP_FILE_MODE and that group) with
 *   `Return-Path: <sender>` (RFC 5321 §4.4: the reverse-path, `<>` for the
 *   null sender), `Delivered-To: <recipient address>` and the DKIM
 *   signature fields (`d.signature`, if any) prepended to the
 *   message's bytes (in one write when they are in memory, else streamed
 *   from the spool file in chunks of up to 1 MiB) with CRLF line
 *   ends turned into LF (the Maildir convention: Dovecot, mutt and Postfix's
 *   own delivery agents write LF; a CR not before LF stays). Then fsyncs the file, renames it to
 *   `new/<name>` and fsyncs `new/` so the rename is durable.
 * - Concurrent deliveries to one mailbox do not interfere (distinct names,
 *   distinct tmp files).
 * - Never throws for I/O errors: returns a temporary failure — 4.3.0 (spool
 *   file missing, a mailbox component that is a file, any other error),
 *   4.2.2 (quota, EDQUOT) or 4.3.1 (file system full, ENOSPC) — with a
 *   Diagnostic-Code `x-local; ...` naming the step and the errno code (never
 *   a local path: it may reach a stranger in a bounce). A leftover tmp file
 *   is removed.
 *   Throws TypeError only for a malformed queue id (a caller bug).
 */
export async function deliverToMaildir(d: LocalDelivery, opts: { hostname: string; group?: number }): Promise<DeliveryResult> {
  const name = maildirName(d.message, d.recipient, opts.hostname);
  const box = d.mailbox;
  const newDir = path.join(box, 'new');

  let spool: MessageBytes;
  try {
    spool = await openMessage(d.message);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      return { ok: false, permanent: false, status: '4.3.0', diagnostic: `x-local; spool file of message ${d.message.id} is missing` };
    }
    return ioFailure(err, `opening the spool file of message ${d.message.id}`);
  }

  let tmpPath: string | undefined;
  try {
    try {
      await ensureMaildir(box, opts.group);
    } catch (err) {
      return ioFailure(err, 'creating the mailbox directories');
    }
    try {
      if (d.checkExisting !== false && ((await dirHasBase(newDir, name)) || (await dirHasBase(path.join(box, 'cur'), name)))) {
        return { ok: true, detail: `already delivered as ${name}` };
      }
    } catch (err) {
      return ioFailure(err, 'reading the mailbox');
    }

    tmpPath = path.join(box, 'tmp', `${name}.${process.pid}_${randomHex12().slice(0, 8)}`);
    try {
      const sender = headerSafe(d.message.sender);
      const prefix = Buffer.from(`Return-Path: <${sender}>\nDelivered-To: ${headerSafe(d.recipient)}\n`, 'utf8');
      const eol = new CrlfToLf();
      const head = d.signature ? [prefix, eol.push(d.signature)] : [prefix];
      if (d.message.body) await writeSmallFile(tmpPath, [...head, eol.push(d.message.body), eol.end()], opts.group);
      else await copyIntoFile(tmpPath, head, spool, eol, opts.group);
    } catch (err) {
      return ioFailure(err, 'writing the message into the mailbox');
    }

    try {
      // A rename within one directory: no data to wait for, a thread-pool round trip would cost more than the call.
      fs.renameSync(tmpPath, path.join(newDir, name));
      tmpPath = undefined;
      await syncDir(newDir);
    } catch (err) {
      return ioFailure(err, 'moving the message into new/');
    }
    return { ok: true, detail: `delivered as new/${name}` };
  } finally {
    await spool.close().catch(() => undefined);
    if (tmpPath !== undefined) await fs.promises.unlink(tmpPath).catch(() => undefined);
  }
}

/**
 * maildir(5): "A file in tmp may be safely removed if it has not been
 * accessed in 36 hours" (Dovecot uses the same 36 hours). What a delivery
 * leaves in tmp/ when the process dies between open and rename.
 */
export const TMP_MAX_AGE_MS = 36 * 60 * 60 * 1000;

/** What one sweep of the tmp/ directories did. */
export interface TmpSweepResult {
  /** Mailboxes (`<domain>/<local>` directories) looked at. */
  mailboxes: number;
  /** Files removed from their tmp/. */
  removed: number;
  /** I/O errors other than a file or directory vanishing meanwhile (they are skipped). */
  errors: number;
}

export interface TmpSweepOptions {
  /** Age, by the later of mtime and atime, from which a tmp/ file goes. Default TMP_MAX_AGE_MS. */
  maxAgeMs?: number;
  /** The current time in ms (tests). Default Date.now(). */
  now?: number;
  /** Mailboxes swept at the same time, each with one file operation in flight. Default 4. */
  concurrency?: number;
  /** Stops the sweep after the file at hand. */
  signal?: AbortSignal;
}

/**
 * Removes the files of `<mailRoot>/<domain>/<local>/tmp/` (the layout of
 * mailboxPath) that were neither modified nor accessed for
 * `maxAgeMs`, in every mailbox. Directories and symbolic links are never
 * followed, nor is anything below tmp/ removed but its non-directory
 * entries. Everything is asynchronous, with at most `concurrency` mailboxes
 * in progress and directories read in batches, so a large tree does not hold
 * up the event loop or the thread pool. A missing mail root is an empty
 * sweep. Never throws for I/O errors: they are counted and skipped.
 */
export async function sweepMaildirTmp(mailRoot: string, opts: TmpSweepOptions = {}): Promise<TmpSweepResult> {
  const cutoff = (opts.now ?? Date.now()) - (opts.maxAgeMs ?? TMP_MAX_AGE_MS);
  const result: TmpSweepResult = { mailboxes: 0, removed: 0, errors: 0 };
  const boxes = mailboxDirs(mailRoot, result);
  const worker = async (): Promise<void> => {
    while (!opts.signal?.aborted) {
      const next = await boxes.next(); // calls from several workers are queued by the generator
      if (next.done) return;
      result.mailboxes++;
      await sweepTmpDir(path.join(next.value, 'tmp'), cutoff, result, opts.signal);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 4) }, worker));
  } finally {
    await boxes.return(undefined); // closes the directory handles of an aborted sweep
  }
  return result;
}

/** Opens a directory for reading; undefined when it is gone or not a directory (other errors are counted). */
async function openDirIfAny(dir: string, result: TmpSweepResult): Promise<fs.Dir | undefined> {
  try {
    return await fs.promises.opendir(dir, { bufferSize: 64 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') result.errors++;
    return undefined;
  }
}

/** Every `<mailRoot>/<domain>/<local>` directory, read lazily. */
async function* mailboxDirs(mailRoot: string, result: TmpSweepResult): AsyncGenerator<string> {
  const domains = await openDirIfAny(mailRoot, result);
  if (!domains) return;
  try {
    for await (const d of domains) {
      if (!d.isDirectory()) continue;
      const domainDir = path.join(mailRoot, d.name);
      const locals = await openDirIfAny(domainDir, result);
      if (!locals) continue;
      try {
        for await (const l of locals) if (l.isDirectory()) yield path.join(domainDir, l.name);
      } catch {
        result.errors++; // reading this domain failed: on to the next
      }
    }
  } catch {
    result.errors++;
  }
}

async function sweepTmpDir(tmp: string, cutoff: number, result: TmpSweepResult, signal: AbortSignal | undefined): Promise<void> {
  const dir = await openDirIfAny(tmp, result);
  if (!dir) return;
  try {
    for await (const e of dir) {
      if (signal?.aborted) break; // leaving the loop closes the handle
      if (e.isDirectory()) continue;
      const file = path.join(tmp, e.name);
      try {
        const st = await fs.promises.lstat(file);
        if (st.isDirectory() || Math.max(st.mtimeMs, st.atimeMs) >= cutoff) continue;
        await fs.promises.unlink(file);
        result.removed++;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') result.errors++;
      }
    }
  } catch {
    result.errors++; // reading tmp/ failed
  }
}

/** A running tmp/ sweeper (see startTmpSweeper). */
export interface TmpSweeper {
  /** The sweep in progress, if any (the first starts at once). */
  readonly running: Promise<TmpSweepResult> | undefined;
  /** Cancels the timer and the sweep in progress, and waits for it to stop. */
  stop(): Promise<void>;
}

/**
 * Sweeps the tmp/ directories under `mailRoot` now, then every `everyMs`
 * (an unref'd timer: it never keeps the process alive), one sweep at a
 * time. `onResult` sees each finished sweep, `onError` an unexpected failure.
 */
export function startTmpSweeper(
  mailRoot: string,
  opts: { everyMs: number; onResult: (r: TmpSweepResult) => void; onError: (err: unknown) => void } & Omit<TmpSweepOptions, 'signal' | 'now'>,
): TmpSweeper {
  const abort = new AbortController();
  let running: Promise<TmpSweepResult> | undefined;
  const sweep = () => {
    if (running || abort.signal.aborted) return;
    running = sweepMaildirTmp(mailRoot, { maxAgeMs: opts.maxAgeMs, concurrency: opts.concurrency, signal: abort.signal });
    running.then(opts.onResult).catch(opts.onError).finally(() => (running = undefined));
  };
  const timer = setInterval(sweep, opts.everyMs);
  timer.unref();
  sweep();
  return {
    get running() {
      return running;
    },
    async stop() {
      clearInterval(timer);
      abort.abort();
      await running?.catch(() => undefined);
    },
  };
}

/**
 * Turns CRLF line ends into LF across chunk boundaries: a CR at the end of a
 * chunk is held until the next chunk shows whether an LF follows. A CR not
 * followed by LF is kept. `push` returns bytes to write (it may reuse the
 * chunk's memory: write them before the chunk is refilled).
 */
export class CrlfToLf {
  private heldCr = false;

  push(chunk: Buffer): Buffer {
    if (chunk.length === 0) return chunk;
    let i = chunk.indexOf(0x0d);
    if (i < 0 && !this.heldCr) return chunk;
    // One output buffer, the pieces between CRLFs copied in (no buffer object per line).
    const out = Buffer.allocUnsafe(chunk.length + 1);
    let o = 0;
    let start = 0;
    if (this.heldCr) {
      if (chunk[0] !== 0x0a) out[o++] = 0x0d;
      this.heldCr = false;
    }
    for (; i >= 0; i = chunk.indexOf(0x0d, i + 1)) {
      if (i === chunk.length - 1) {
        o += chunk.copy(out, o, start, i);
        this.heldCr = true;
        start = chunk.length;
        break;
      }
      if (chunk[i + 1] === 0x0a) {
        o += chunk.copy(out, o, start, i);
        start = i + 1;
      }
    }
    if (start < chunk.length) o += chunk.copy(out, o, start);
    return out.subarray(0, o);
  }

  /** What is still held at the end of the input (a final lone CR). */
  end(): Buffer {
    const held = this.heldCr;
    this.heldCr = false;
    return held ? CR : Buffer.alloc(0);
  }
}

const CR = Buffer.from([0x0d]);
