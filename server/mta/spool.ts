/**
 * Spool files: the bytes of each accepted message, written and fsynced —
 * file and directory entry — before the queue row commits and the client
 * gets its 250 (RFC 5321 §6.1: "it MUST NOT lose the message").
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { QueuedMessage } from './types';

/** Messages up to this size stay in memory and are stored inline in their queue row. */
export const INLINE_MAX = 256 * 1024;

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

/** A fresh queue id: time then randomness, letters and digits only. */
export function newQueueId(): string {
  return Date.now().toString(36).toUpperCase().padStart(9, '0') + randomBytes(6).toString('hex').toUpperCase();
}

async function fsyncDirNow(dir: string): Promise<void> {
  const h = await fsp.open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
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

export class Spool {
  constructor(readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  pathOf(id: string): string {
    return path.join(this.dir, `${id}.eml`);
  }

  /**
   * Writes `header` then the stream into a new spool file and fsyncs it and
   * the directory. Resolves with the byte count; on failure the partial file
   * is removed and the error rethrown. Past `maxBytes` of body the rest is
   * read and discarded, so an oversized message never fills the disk.
   */
  async write(id: string, header: string, body: Readable, maxBytes = Infinity): Promise<number> {
    const file = this.pathOf(id);
    const h = await fsp.open(file, 'wx', 0o600);
    let size = 0;
    let seen = 0;
    try {
      const head = Buffer.from(header, 'utf8');
      await h.write(head);
      size += head.length;
      // Batch small chunks into larger writes.
      let pending: Buffer[] = [];
      let pendingLen = 0;
      for await (const chunk of body as AsyncIterable<Buffer>) {
        seen += chunk.length;
        if (seen > maxBytes) continue; // over the limit: drain, never write (the caller refuses with 552)
        pending.push(chunk);
        pendingLen += chunk.length;
        if (pendingLen >= 256 * 1024) {
          await h.write(Buffer.concat(pending, pendingLen));
          size += pendingLen;
          pending = [];
          pendingLen = 0;
        }
      }
      if (pendingLen) {
        await h.write(Buffer.concat(pending, pendingLen));
        size += pendingLen;
      }
      await h.sync();
    } catch (e) {
      await h.close().catch(() => undefined);
      await fsp.rm(file, { force: true });
      throw e;
    }
    await h.close();
    await syncDir(this.dir);
    return size;
  }

  /**
   * Receives a message: `header` then the stream. Small messages are kept in
   * memory (the caller stores them in the queue row, whose commit makes them
   * durable); one that grows past INLINE_MAX is written to a spool file, which
   * is fsynced with its directory before this resolves. Past `maxBytes` the
   * rest is drained and nothing is kept.
   */
  async receive(id: string, header: string, body: Readable, maxBytes: number): Promise<Received> {
    const head = Buffer.from(header, 'utf8');
    const chunks: Buffer[] = [head];
    let size = head.length;
    let seen = 0;
    const it = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    for (;;) {
      const { value, done } = await it.next();
      if (done) break;
      const chunk = value as Buffer;
      seen += chunk.length;
      if (seen > maxBytes) {
        // Drain and forget.
        for (;;) if ((await it.next()).done) break;
        return { size: 0, exceeded: true };
      }
      chunks.push(chunk);
      size += chunk.length;
      if (size > INLINE_MAX) {
        // Too big to keep inline: what we have, then the rest, into a spool file.
        let total = 0;
        const rest = Readable.from((async function* () {
          const first = Buffer.concat(chunks.slice(1));
          total += first.length;
          yield first;
          for (;;) {
            const n = await it.next();
            if (n.done) return;
            total += (n.value as Buffer).length;
            yield n.value as Buffer;
          }
        })());
        const written = await this.write(id, header, rest, maxBytes);
        if (total > maxBytes) {
          await this.remove(this.pathOf(id));
          return { size: 0, exceeded: true };
        }
        return { size: written, file: this.pathOf(id), exceeded: false };
      }
    }
    return { size, inline: Buffer.concat(chunks, size), exceeded: false };
  }

  /** Removes a spool file (after its last recipient is done). */
  async remove(p: string): Promise<void> {
    await fsp.rm(p, { force: true });
  }

  /** Removes spool files no queue row refers to (left by a crash before commit). */
  async sweep(known: Set<string>): Promise<number> {
    let n = 0;
    for (const f of await fsp.readdir(this.dir)) {
      const p = path.join(this.dir, f);
      if (!known.has(p) && f.endsWith('.eml')) {
        await fsp.rm(p, { force: true });
        n++;
      }
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
