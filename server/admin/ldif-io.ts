/**
 * LDIF import and export through the directory's one write path.
 *
 * Import reads RFC 2849 content or change records as a stream, hashes
 * clear-text passwords on the thread pool, several records at a time, and
 * hands them in file order to the writer in batches, as data (an `import`
 * command, writes.ts: one transaction and one fsync per batch, one change
 * log row per record).
 * Export writes every entry of a subtree, parents first, with operational
 * attributes, so that an export imports back as it was (like slapcat).
 */
import * as fs from 'node:fs';
import type { Directory } from '../directory/directory';
import { valueFromBytes, valueToBytes, type AttrInput } from '../directory/entry';
import { DirectoryError } from '../directory/errors';
import { errorFromData, type DirectoryWriter, type ImportRecord } from '../directory/writes';
import { formatLdifEntry, parseLdif, type LdifRecord, type LdifValue } from '../../schema/ldif';

export interface ImportOptions {
  /** Keep going after a failed record (like ldapadd -c); failures are reported. */
  continueOnError?: boolean;
  /** Skip content records whose DN exists already (restoring onto a bootstrapped store). */
  skipExisting?: boolean;
  /** Records per transaction. */
  batchSize?: number;
  /**
   * Records whose clear-text passwords are being hashed at once (default 16).
   * Hashing runs on libuv's thread pool (UV_THREADPOOL_SIZE threads); the
   * records are still written in file order. A pre-hashed value must be in a
   * known scheme under the work caps, or its record fails.
   */
  hashConcurrency?: number;
  /** Called with the progress at most every ~100 ms and at the end. */
  onProgress?: (p: ImportProgress) => void;
  /** Called for every failed record. */
  onError?: (line: number, dn: string, err: Error) => void;
}

/** Where an import stands. `done` counts records written, failed or skipped: never ahead of the writes. */
export interface ImportProgress {
  /** Bytes of the file read so far (reading runs ahead of writing). */
  bytes: number;
  totalBytes: number;
  /** Records written. */
  records: number;
  failed: number;
  skipped: number;
  /** Records dealt with (written, failed, skipped or ignored, as a root DSE dump is), out of `total`. */
  done: number;
  /** Records in the file (its `dn:` lines, counted before the import). */
  total: number;
}

/**
 * The number of records in an LDIF file: lines starting with `dn:`
 * (case-insensitive; continuation lines start with a space, comments with #).
 */
export async function countLdifRecords(file: string): Promise<number> {
  let n = 0;
  let carry = '\n';
  for await (const chunk of fs.createReadStream(file, { encoding: 'latin1', highWaterMark: 1 << 20 }) as AsyncIterable<string>) {
    const s = carry + chunk;
    n += s.match(/\ndn:/gi)?.length ?? 0;
    carry = s.slice(-3); // shorter than a match: none is counted twice
  }
  return n;
}

/** The first record of an LDIF file, or undefined for a file without records; rejects with the LdifError of a bad start. */
export async function firstLdifRecord(file: string): Promise<LdifRecord | undefined> {
  const stream = fs.createReadStream(file, { encoding: 'utf8', highWaterMark: 64 * 1024 });
  try {
    for await (const rec of parseLdif(stream as AsyncIterable<string>)) return rec;
    return undefined;
  } finally {
    stream.destroy();
  }
}

function toValues(vs: LdifValue[]): string[] {
  return vs.map((v) => (typeof v === 'string' ? v : valueFromBytes(v)));
}

function attrsOf(m: Map<string, LdifValue[]>): AttrInput[] {
  return [...m].map(([type, vs]) => ({ type, values: toValues(vs) }));
}

/** A record as the writer takes it (values in stored form), its clear-text passwords hashed (async, thread pool). */
async function prepare(dir: Directory, rec: LdifRecord): Promise<ImportRecord> {
  const { line, dn } = rec;
  switch (rec.kind) {
    case 'entry':
    case 'add':
      return { op: 'add', line, dn, attrs: await dir.hashPasswords(attrsOf(rec.attrs)) };
    case 'delete':
      return { op: 'delete', line, dn };
    case 'modify':
      return {
        op: 'modify', line, dn, mods: await Promise.all(rec.changes.map(async (c) => {
          const values = toValues(c.values);
          if (c.op !== 'add' && c.op !== 'replace') return { op: c.op, type: c.attr, values };
          const [h] = await dir.hashPasswords([{ type: c.attr, values }]);
          return { op: c.op, type: c.attr, values: h.values };
        })),
      };
    case 'modrdn':
      return { op: 'modifyDN', line, dn, newRdn: rec.newRdn, deleteOldRdn: rec.deleteOldRdn, newSuperior: rec.newSuperior };
  }
}

/**
 * Imports an LDIF file: `dir` reads (which entries exist, the password
 * policy), `writer` writes. Resolves with the number of records applied and
 * failed. Without continueOnError the first failure rejects, after the
 * records before it in its batch were retried one by one and committed.
 */
export async function importLdif(
  dir: Directory, writer: DirectoryWriter, file: string, opts: ImportOptions = {},
): Promise<{ records: number; failed: number; skipped: number }> {
  const totalBytes = fs.statSync(file).size;
  const stream = fs.createReadStream(file, { encoding: 'utf8', highWaterMark: 256 * 1024 });
  let bytes = 0;
  const counted = (async function* () {
    for await (const chunk of stream as AsyncIterable<string>) {
      bytes += Buffer.byteLength(chunk);
      yield chunk;
    }
  })();
  const batchSize = opts.batchSize ?? 500;
  const hashConcurrency = Math.max(1, opts.hashConcurrency ?? 16);
  const total = opts.onProgress ? await countLdifRecords(file) : 0;
  let records = 0;
  let failed = 0;
  let skipped = 0;
  let ignored = 0;
  let lastReport = 0;
  const report = (force = false) => {
    const now = Date.now();
    if (opts.onProgress && (force || now - lastReport > 100)) {
      lastReport = now;
      const done = records + failed + skipped + ignored;
      opts.onProgress({ bytes, totalBytes, records, failed, skipped, done, total: Math.max(total, done) });
    }
  };
  const fail = (rec: { line: number; dn: string }, err: unknown) => {
    failed++;
    const e = err instanceof Error ? err : new Error(String(err));
    opts.onError?.(rec.line, rec.dn, e);
    if (!opts.continueOnError) {
      const where = new Error(`line ${rec.line} (${rec.dn}): ${e.message}`);
      (where as Error & { cause?: unknown }).cause = e;
      throw where;
    }
  };
  let batch: ImportRecord[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    const todo = batch;
    batch = [];
    // The writer tries the batch in one transaction, then record by record (writes.ts).
    const r = await writer.execute({ kind: 'import', records: todo, continueOnError: !!opts.continueOnError });
    records += r.applied;
    for (const f of r.failures) fail(todo[f.index], errorFromData(f.error));
    report();
  };
  // Records being prepared (passwords hashed on the thread pool), in file order.
  const preparing: { rec: LdifRecord; ready: Promise<ImportRecord> }[] = [];
  const next = async () => {
    const { rec, ready } = preparing.shift()!;
    let prepared: ImportRecord;
    try {
      prepared = await ready;
    } catch (err) {
      // A value refused before the write (an unknown password scheme): the records before it go in first.
      await flush();
      fail(rec, err);
      return;
    }
    batch.push(prepared);
    if (batch.length >= batchSize) await flush();
  };
  for await (const rec of parseLdif(counted)) {
    if (rec.kind === 'entry' && rec.dn === '') {
      ignored++; // a root DSE dump is not importable
      continue;
    }
    if (opts.skipExisting && rec.kind === 'entry' && dir.getByNdn(dir.normalize(rec.dn))) {
      skipped++;
      continue;
    }
    const ready = prepare(dir, rec);
    ready.catch(() => undefined); // awaited in turn by next(); never an unhandled rejection meanwhile
    preparing.push({ rec, ready });
    if (preparing.length >= hashConcurrency) await next();
  }
  while (preparing.length) await next();
  await flush();
  report(true);
  return { records, failed, skipped };
}

/**
 * Writes every entry under `base` (default: the suffix), parents before
 * children, to `out`. With `operational`, entryUUID, timestamps and
 * creators/modifiers are included (default), as a backup needs them.
 */
export function exportLdif(dir: Directory, out: (chunk: string) => void, opts: { base?: string; operational?: boolean } = {}): number {
  const baseNdn = dir.normalize(opts.base ?? dir.suffix);
  const base = dir.getByNdn(baseNdn);
  if (!base) throw new DirectoryError('noSuchObject', `no such entry: ${opts.base ?? dir.suffix}`);
  const operational = opts.operational ?? true;
  out('version: 1\n\n');
  let n = 0;
  for (const e of [base, ...dir.store.descendants(base.rpath)]) {
    const attrs: [string, LdifValue[]][] = [];
    for (const [k, vs] of Object.entries(e.attrs)) {
      const at = dir.schema.attr(k);
      if (!operational && at?.operational) continue;
      attrs.push([k, vs.map(valueToBytes)]);
    }
    out(formatLdifEntry(e.dn, attrs));
    n++;
  }
  return n;
}
