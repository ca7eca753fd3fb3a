/**
 * Spool files: the bytes of each accepted message, written and fsynced —
 * file and directory entry — before the queue row commits and the client
 * gets its 250 (RFC 5321 §6.1: "it MUST NOT lose the message").
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';

/** A fresh queue id: time then randomness, letters and digits only. */
export function newQueueId(): string {
  return Date.now().toString(36).toUpperCase().padStart(9, '0') + randomBytes(6).toString('hex').toUpperCase();
}

/** fsyncs a directory so a file created or renamed in it survives a crash. */
export async function syncDir(dir: string): Promise<void> {
  const h = await fsp.open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
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
