/**
 * Spool files: the bytes of each accepted message, written and fsynced —
 * file and directory entry — before the queue row commits and the client
 * gets its 250 (RFC 5321 §6.1: "it MUST NOT lose the message"). Lines
 * longer than RFC 5322 allows are folded on the way in (fold.ts).
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { Readable } from 'node:stream';
import type { QueuedMessage } from './types';
import type { QueueMessageRow } from '../../storage/queue';
import { LineFolder } from './fold';

/** Messages up to this size stay in memory and are stored inline in their queue row. */
export const INLINE_MAX = 256 * 1024;
/** Bytes gathered before one write to a spool file. */
const WRITE_BATCH = 256 * 1024;

/** What `receive` produced: the bytes inline, or a spool file. */
export interface Received {
  size: number;
  /** The message bytes when they fit INLINE_MAX (no file was written). */
  inline?: Buffer;
  /** The fsynced spool file otherwise. */
  file?: string;
  /** The body went past maxBytes: nothing was kept (the caller answers 552). */
  exceeded: boolean;
}

/**
 * 48 random bits as 12 hex digits: the first 12 of a version 4 UUID's (before
 * its version digit). randomUUID draws from a buffer of CSPRNG octets filled
 * for many calls at once, where randomBytes asks OpenSSL every time (a few
 * microseconds and a getpid(2) per call, per message).
 */
export function randomHex12(): string {
  const u = randomUUID();
  return u.slice(0, 8) + u.slice(9, 13);
}

/** A fresh queue id: time then 48 random bits, letters and digits only. */
export function newQueueId(): string {
  return Date.now().toString(36).toUpperCase().padStart(9, '0') + randomHex12().toUpperCase();
}

/** fsync(2) of a file descriptor, in the thread pool (it waits for the disk). */
export const fsyncFd = promisify(fs.fsync);

/**
 * fsyncs a directory now. Open and close are synchronous (a path lookup and
 * a descriptor, page-cache work: a thread-pool round trip for each, two
 * context switches on a busy core, costs more than the call); only the
 * fsync, which waits for the disk, goes to the thread pool.
 */
export async function fsyncDirNow(dir: string): Promise<void> {
  const fd = fs.openSync(dir, 'r');
  try {
    await fsyncFd(fd);
  } finally {
    fs.closeSync(fd);
  }
}

const runningSyncs = new Map<string, Promise<void>>();
const queuedSyncs = new Map<string, Promise<void>>();

/**
 * fsyncs a directory so a file created or renamed in it survives a crash.
 * Concurrent callers share syncs: one that arrives while a sync of the same
 * directory runs waits for the next one (which starts after its rename, so
 * it covers it), and everyone waiting for that next one shares it.
 */
export function syncDir(dir: string): Promise<void> {
  const queued = queuedSyncs.get(dir);
  if (queued) return queued;
  const start = (): Promise<void> => {
    queuedSyncs.delete(dir);
    const p = fsyncDirNow(dir).finally(() => {
      if (runningSyncs.get(dir) === p) runningSyncs.delete(dir);
    });
    runningSyncs.set(dir, p);
    return p;
  };
  const running = runningSyncs.get(dir);
  if (!running) return start();
  const next = running.then(start, start);
  queuedSyncs.set(dir, next);
  return next;
}

/**
 * Reads a message body for `Spool.receive`: its chunks with over-long lines
 * folded; past `maxBytes` (counted as received) it reads on but keeps
 * nothing. Never stops the stream early (no `return()` on its iterator,
 * which would destroy it): `drain` reads what is left.
 */
class BodyReader {
  private readonly it: AsyncIterator<Buffer>;
  private readonly folder = new LineFolder();
  private seen = 0;
  /** The stream has ended. */
  done = false;

  constructor(body: Readable, private readonly maxBytes: number, private readonly observe?: (chunk: Buffer) => void) {
    this.it = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  /** The body went past maxBytes. */
  get exceeded(): boolean {
    return this.seen > this.maxBytes;
  }

  /** The next bytes to keep; undefined at the end of the body (reached past maxBytes without keeping anything). */
  async next(): Promise<Buffer | undefined> {
    while (!this.done) {
      const n = await this.it.next();
      if (n.done) {
        this.done = true;
        const tail = this.folder.end();
        if (!tail.length || this.exceeded) return undefined;
        this.observe?.(tail);
        return tail;
      }
      this.seen += n.value.length;
      if (this.exceeded) continue;
      const kept = this.folder.push(n.value);
      if (kept.length) {
        this.observe?.(kept);
        return kept;
      }
    }
    return undefined;
  }

  /** Reads the rest of the body and drops it; a stream that fails (the client left) ends it too. */
  async drain(): Promise<void> {
    try {
      while (!this.done) if ((await this.it.next()).done) this.done = true;
    } catch {
      this.done = true;
    }
  }
}

/** The spool directory of a data dir. */
export function spoolDir(dataDir: string): string {
  return path.join(dataDir, 'spool');
}

export class Spool {
  constructor(readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  pathOf(id: string): string {
    return path.join(this.dir, `${id}.eml`);
  }

  /**
   * Receives a message: `header` then the stream, its over-long lines folded
   * (fold.ts). Small messages are kept in memory (the caller stores them in
   * the queue row, whose commit makes them durable); one that grows past
   * INLINE_MAX is written to a spool file, which is fsynced with its
   * directory before this resolves. Past `maxBytes` of the stream the rest
   * is read and dropped, nothing is kept and `exceeded` is set. Whatever
   * happens, the stream is read to its end before this settles: a write that
   * fails part-way (a full disk) removes its file and rejects only then, so
   * the client's final dot is answered at once (smtp-server replies when the
   * stream has ended). `observe`, when given, sees every kept chunk of the
   * stream in order (not `header`), e.g. to count the message's hops.
   */
  async receive(id: string, header: string, body: Readable, maxBytes: number, observe?: (chunk: Buffer) => void): Promise<Received> {
    const reader = new BodyReader(body, maxBytes, observe);
    try {
      const head = Buffer.from(header, 'utf8');
      const chunks: Buffer[] = [head];
      let size = head.length;
      for (let c = await reader.next(); c; c = await reader.next()) {
        chunks.push(c);
        size += c.length;
        if (size > INLINE_MAX) {
          // Too big to keep inline: what we have, then the rest, into a spool file.
          const file = this.pathOf(id);
          const written = await this.write(file, chunks, reader);
          if (reader.exceeded) {
            await this.remove(file);
            return { size: 0, exceeded: true };
          }
          return { size: written, file, exceeded: false };
        }
      }
      if (reader.exceeded) return { size: 0, exceeded: true };
      return { size, inline: Buffer.concat(chunks, size), exceeded: false };
    } finally {
      await reader.drain();
    }
  }

  /**
   * Writes `first` then the rest of `reader` into a new spool file `file`,
   * fsyncs it and the directory; resolves with the byte count. On failure
   * the partial file is removed and the error rethrown (the caller drains).
   */
  private async write(file: string, first: Buffer[], reader: BodyReader): Promise<number> {
    const h = await fsp.open(file, 'wx', 0o600);
    let size = 0;
    try {
      // Small chunks are batched into larger writes.
      let pending = first;
      let pendingLen = first.reduce((n, b) => n + b.length, 0);
      for (;;) {
        const c = pendingLen >= WRITE_BATCH ? undefined : await reader.next();
        if (c) {
          pending.push(c);
          pendingLen += c.length;
          continue;
        }
        if (pendingLen) await h.write(Buffer.concat(pending, pendingLen));
        size += pendingLen;
        pending = [];
        pendingLen = 0;
        if (reader.done) break;
      }
      if (!reader.exceeded) await h.sync();
    } catch (e) {
      await h.close().catch(() => undefined);
      await fsp.rm(file, { force: true });
      throw e;
    }
    await h.close();
    if (!reader.exceeded) await syncDir(this.dir);
    return size;
  }

  /** Removes a spool file (after its last recipient is done). */
  async remove(p: string): Promise<void> {
    await fsp.rm(p, { force: true });
  }

  /**
   * Removes spool files no queue row refers to (left by a crash before
   * commit). With `before`, only those last modified before that instant
   * (ms): younger ones may belong to a message an intake is still receiving.
   */
  async sweep(known: Set<string>, before = Infinity): Promise<number> {
    let n = 0;
    for (const f of await fsp.readdir(this.dir)) {
      const p = path.join(this.dir, f);
      if (known.has(p) || !f.endsWith('.eml')) continue;
      if (before !== Infinity) {
        const st = await fsp.stat(p).catch(() => undefined);
        if (!st || st.mtimeMs >= before) continue;
      }
      await fsp.rm(p, { force: true });
      n++;
    }
    return n;
  }
}

/** Random-access reads of a queued message, wherever its bytes are. */
export interface MessageBytes {
  size: number;
  read(buf: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  close(): Promise<void>;
}

/** Opens a queued message for reading. Rejects like fs.open (ENOENT) when its spool file is missing. */
export async function openMessage(m: QueuedMessage): Promise<MessageBytes> {
  const inline = m.body;
  if (inline) {
    return {
      size: inline.length,
      read: async (buf, offset, length, position) => ({ bytesRead: position >= inline.length ? 0 : inline.copy(buf, offset, position, Math.min(inline.length, position + length)) }),
      close: async () => undefined,
    };
  }
  const h = await fsp.open(m.spoolPath, 'r');
  const { size } = await h.stat();
  return {
    size,
    read: (buf, offset, length, position) => h.read(buf, offset, length, position),
    close: () => h.close(),
  };
}

/** A queue row as the channels see the message. */
export function queuedMessage(row: QueueMessageRow): QueuedMessage {
  return {
    id: row.id, sender: row.sender, receivedAt: new Date(row.receivedAt), spoolPath: row.spool, size: row.size, body: row.body ?? undefined,
    smtpUtf8: row.smtpUtf8 === true, eightBitMime: row.eightBitMime === true, submitted: row.submitted === true,
    submitter: row.submitter ?? undefined,
  };
}
