/**
 * LDIF import and export through the directory's one write path.
 *
 * Import reads RFC 2849 content or change records as a stream, hashes
 * clear-text passwords off the event loop, and commits in batches (one
 * transaction and one fsync per batch, one change log row per record).
 * Export writes every entry of a subtree, parents first, with operational
 * attributes, so that an export imports back as it was (like slapcat).
 */
import * as fs from 'node:fs';
import type { Directory, Modification } from '../directory/directory';
import type { Identity } from '../directory/access';
import { valueFromBytes, valueToBytes, type AttrInput } from '../directory/entry';
import { DirectoryError } from '../directory/errors';
import { formatLdifEntry, parseLdif, type LdifRecord, type LdifValue } from './ldif';

export interface ImportOptions {
  /** Keep going after a failed record (like ldapadd -c); failures are reported. */
  continueOnError?: boolean;
  /** Skip content records whose DN exists already (restoring onto a bootstrapped store). */
  skipExisting?: boolean;
  /** Records per transaction. */
  batchSize?: number;
  /** Called with bytes read so far, records done and failures, at most every ~100 ms and at the end. */
  onProgress?: (p: ImportProgress) => void;
  /** Called for every failed record. */
  onError?: (line: number, dn: string, err: Error) => void;
}

export interface ImportProgress {
  bytes: number;
  totalBytes: number;
  records: number;
  failed: number;
}

function toValues(vs: LdifValue[]): string[] {
  return vs.map((v) => (typeof v === 'string' ? v : valueFromBytes(v)));
}

function attrsOf(m: Map<string, LdifValue[]>): AttrInput[] {
  return [...m].map(([type, vs]) => ({ type, values: toValues(vs) }));
}

/** Applies one record synchronously (inside the caller's transaction). */
function apply(dir: Directory, who: Identity, rec: LdifRecord): void {
  switch (rec.kind) {
    case 'entry':
    case 'add':
      dir.addSync(who, rec.dn, attrsOf(rec.attrs), { relax: true });
      return;
    case 'delete':
      dir.delete(who, rec.dn);
      return;
    case 'modify':
      dir.modifySync(who, rec.dn, rec.changes.map((c): Modification => ({ op: c.op, type: c.attr, values: toValues(c.values) })), { relax: true });
      return;
    case 'modrdn':
      dir.modifyDN(who, rec.dn, rec.newRdn, rec.deleteOldRdn, rec.newSuperior);
      return;
  }
}

/** Pre-hashes clear-text passwords of a record (async, thread pool). */
async function prepare(dir: Directory, rec: LdifRecord): Promise<LdifRecord> {
  if (rec.kind === 'entry' || rec.kind === 'add') {
    const hashed = await dir.hashPasswords(attrsOf(rec.attrs));
    return { ...rec, attrs: new Map(hashed.map((a) => [a.type, a.values])) };
  }
  if (rec.kind === 'modify') {
    const changes = await Promise.all(rec.changes.map(async (c) => {
      if (c.op !== 'add' && c.op !== 'replace') return c;
      const [h] = await dir.hashPasswords([{ type: c.attr, values: toValues(c.values) }]);
      return { ...c, values: h.values };
    }));
    return { ...rec, changes };
  }
  return rec;
}

/**
 * Imports an LDIF file. Resolves with the number of records applied and
 * failed. Without continueOnError the first failure rejects, after the
 * records before it in its batch were retried one by one and committed.
 */
export async function importLdif(dir: Directory, file: string, opts: ImportOptions = {}): Promise<{ records: number; failed: number; skipped: number }> {
  const who = dir.systemIdentity();
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
  let records = 0;
  let failed = 0;
  let lastReport = 0;
  const report = (force = false) => {
    const now = Date.now();
    if (opts.onProgress && (force || now - lastReport > 100)) {
      lastReport = now;
      opts.onProgress({ bytes, totalBytes, records, failed });
    }
  };
  const fail = (rec: LdifRecord, err: unknown) => {
    failed++;
    const e = err instanceof Error ? err : new Error(String(err));
    opts.onError?.(rec.line, rec.dn, e);
    if (!opts.continueOnError) {
      const where = new Error(`line ${rec.line} (${rec.dn}): ${e.message}`);
      (where as Error & { cause?: unknown }).cause = e;
      throw where;
    }
  };
  let batch: LdifRecord[] = [];
  const flush = () => {
    if (batch.length === 0) return;
    const todo = batch;
    batch = [];
    try {
      dir.write(() => {
        for (const r of todo) apply(dir, who, r);
      });
      records += todo.length;
    } catch {
      // Some record of the batch failed: apply them one by one to find it.
      for (const r of todo) {
        try {
          dir.write(() => apply(dir, who, r));
          records++;
        } catch (err) {
          fail(r, err);
        }
      }
    }
    report();
  };
  let skipped = 0;
  for await (const rec of parseLdif(counted)) {
    if (rec.kind === 'entry' && rec.dn === '') continue; // a root DSE dump is not importable
    if (opts.skipExisting && rec.kind === 'entry' && dir.getByNdn(dir.normalize(rec.dn))) {
      skipped++;
      continue;
    }
    batch.push(await prepare(dir, rec));
    if (batch.length >= batchSize) flush();
  }
  flush();
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
