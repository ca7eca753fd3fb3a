/**
 * Backup trees for restore tests without `dcmx backup`: a COLD copy of a
 * data dir whose appliance has stopped (so the store is one checkpointed
 * file), in the backup's layout, with a manifest written by manifest.ts
 * (sizes, SHA-256, modes). Like `dcmx backup`, it leaves out the lock file,
 * -wal/-shm, write probes and the files in Maildir tmp/. The queue's spool
 * paths stay as the store has them (absolute): restore takes a file name
 * from either form.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  copyFileDurably, makeDir, MANIFEST_FORMAT, MANIFEST_VERSION, modeString, resolveIn, walkTree, writeManifest, type Manifest, type ManifestFile,
} from '../../server/backup/manifest';

/** Whether `rel` (a data dir path) is left out of a backup. */
function leftOut(rel: string, name: string): boolean {
  return name === 'dcmx.lock' || /-(wal|shm)$/.test(name) || name.startsWith('.dcmx-write-test-') || /(^|\/)mail\/.+\/tmp\/[^/]+$/.test(rel);
}

/** Copies the stopped data dir `dataDir` into the new backup tree `dest` (created) with its manifest; returns the manifest. */
export async function coldBackup(dataDir: string, dest: string, created = new Date()): Promise<Manifest> {
  await makeDir(dest, 0o700);
  const files: ManifestFile[] = [];
  const dirs: Manifest['dirs'] = [];
  for (const e of await walkTree(dataDir, leftOut)) {
    if (e.kind === 'dir') {
      await makeDir(resolveIn(dest, e.path), e.stat.mode);
      dirs.push({ path: e.path, mode: modeString(e.stat.mode) });
    } else if (e.kind === 'file') {
      files.push(await copyFileDurably(resolveIn(dataDir, e.path), resolveIn(dest, e.path), e.stat.mode, e.path));
    }
  }
  const manifest: Manifest = {
    format: MANIFEST_FORMAT, formatVersion: MANIFEST_VERSION, created: created.toISOString(), host: os.hostname(),
    versions: { dcmx: 'test', node: process.version, sqlite: 'test', schema: 0 },
    changeNumber: 0, csn: '', zones: {}, mail: fs.existsSync(path.join(dataDir, 'mail')),
    queue: { messages: 0, recipients: 0, finishedDuringBackup: 0 },
    files, dirs, totals: { files: files.length, bytes: files.reduce((n, f) => n + f.size, 0) },
  };
  await writeManifest(dest, manifest);
  return manifest;
}
