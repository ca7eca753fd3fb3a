/**
 * The backup manifest (server/backup/manifest.ts): written last and read
 * back, refused when it could lead a restore out of its tree or comes from
 * another format, and a tree checked file by file against it.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import {
  checkTree, copyFileDurably, hashFile, isSafeRelativePath, makeDir, MANIFEST_FILE, ManifestError, parseManifest, readManifest,
  walkTree, writeManifest, type Manifest,
} from '../../server/backup/manifest';
import { tempDir } from '../helpers';

const work = tempDir('dcmx-manifest-');
after(() => fs.rmSync(work, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => {
  const d = path.join(work, String(n++));
  fs.mkdirSync(d, { mode: 0o700 });
  return d;
};

/** A source tree, copied into a new backup tree with its manifest written. */
async function backupTree(): Promise<{ dest: string; manifest: Manifest }> {
  const src = fresh();
  fs.mkdirSync(path.join(src, 'mail/a/new'), { recursive: true });
  fs.writeFileSync(path.join(src, 'dcmx.sqlite'), 'store bytes');
  fs.writeFileSync(path.join(src, 'mail/a/new/1.x'), Buffer.alloc(3 << 20, 7)); // more than one read chunk
  fs.writeFileSync(path.join(src, 'admin-password'), 'pw\n');
  fs.chmodSync(path.join(src, 'admin-password'), 0o640);
  const dest = fresh();
  const dirs = [{ path: 'mail', mode: '0700' }, { path: 'mail/a', mode: '2750' }, { path: 'mail/a/new', mode: '0700' }];
  for (const d of dirs) await makeDir(path.join(dest, d.path), parseInt(d.mode, 8));
  const files = [];
  for (const e of await walkTree(src)) {
    if (e.kind === 'file') files.push(await copyFileDurably(path.join(src, e.path), path.join(dest, e.path), e.stat.mode, e.path));
  }
  const manifest: Manifest = {
    format: 'dcmx-backup', formatVersion: 1, created: new Date().toISOString(), host: 'h',
    versions: { dcmx: '0.1.0', node: process.version, sqlite: '3', schema: 11 },
    changeNumber: 5, csn: '20261208020000.000000Z#000000#000#000000', zones: { 'example.org.': 2026120801 }, mail: true,
    queue: { messages: 0, recipients: 0, finishedDuringBackup: 0 },
    files, dirs, totals: { files: files.length, bytes: files.reduce((s, f) => s + f.size, 0) },
  };
  await writeManifest(dest, manifest);
  return { dest, manifest };
}

test('a copied tree matches the manifest written last; modes and hashes are kept', async () => {
  const { dest, manifest } = await backupTree();
  assert.deepEqual(fs.readdirSync(dest).sort(), ['admin-password', 'dcmx.sqlite', 'mail', MANIFEST_FILE], 'no temporary file left');
  assert.equal(fs.statSync(path.join(dest, MANIFEST_FILE)).mode & 0o777, 0o600);
  assert.deepEqual(manifest.files.map((f) => f.path), ['admin-password', 'dcmx.sqlite', 'mail/a/new/1.x'], 'sorted by path');
  assert.equal(manifest.files[0].mode, '0640', 'the mode is copied exactly, umask notwithstanding');
  assert.equal(fs.statSync(path.join(dest, 'mail/a')).mode & 0o7777, 0o2750);
  const big = manifest.files[2];
  assert.equal(big.size, 3 << 20);
  assert.equal(big.sha256, createHash('sha256').update(Buffer.alloc(3 << 20, 7)).digest('hex'));
  assert.deepEqual(await hashFile(path.join(dest, 'mail/a/new/1.x')), { sha256: big.sha256, size: big.size });
  const back = await readManifest(dest);
  assert.deepEqual(back, manifest);
  const seen: number[] = [];
  assert.deepEqual(await checkTree(dest, back, { onProgress: (b) => seen.push(b) }), []);
  assert.equal(seen.at(-1), manifest.totals.bytes);
});

test('checkTree names each file that differs, is missing, or is not listed', async () => {
  const { dest, manifest } = await backupTree();
  const f = path.join(dest, 'dcmx.sqlite');
  fs.writeFileSync(f, 'store bytez'); // same size, other contents
  fs.chmodSync(path.join(dest, 'admin-password'), 0o644);
  fs.rmSync(path.join(dest, 'mail/a/new/1.x'));
  fs.writeFileSync(path.join(dest, 'stray'), '');
  fs.chmodSync(path.join(dest, 'mail'), 0o755);
  const problems = await checkTree(dest, manifest);
  assert.equal(problems.length, 5, problems.join('\n'));
  assert.ok(problems.some((p) => /^dcmx\.sqlite: sha256 /.test(p)));
  assert.ok(problems.includes('admin-password: mode 0644, expected 0640'));
  assert.ok(problems.includes('mail/a/new/1.x: missing'));
  assert.ok(problems.includes('stray: not in the manifest'));
  assert.ok(problems.includes('mail: mode 0755, expected 0700'));
  fs.appendFileSync(f, 'more');
  assert.ok((await checkTree(dest, manifest)).includes('dcmx.sqlite: 15 bytes, expected 11'));
});

test('a tree without a manifest is refused; so is a manifest that leaves its tree or is of another format', async () => {
  const { dest, manifest } = await backupTree();
  await assert.rejects(readManifest(fresh()), (e: Error) => e instanceof ManifestError && /no manifest\.json/.test(e.message));
  const variant = (change: (m: Record<string, any>) => void): string => {
    const m = structuredClone(manifest) as Record<string, any>;
    change(m);
    return JSON.stringify(m);
  };
  const refused: Array<[string, (m: Record<string, any>) => void, RegExp]> = [
    ['absolute', (m) => { m.files[0].path = '/etc/passwd'; }, /unsafe path/],
    ['climbing', (m) => { m.files[0].path = 'mail/../../x'; }, /unsafe path/],
    ['dot-dot dir', (m) => { m.dirs[0].path = '..'; }, /unsafe path/],
    ['backslash', (m) => { m.files[0].path = 'a\\..\\b'; }, /unsafe path/],
    ['the manifest itself', (m) => { m.files[0].path = MANIFEST_FILE; }, /unsafe path/],
    ['twice', (m) => { m.files[1].path = m.files[0].path; }, /listed twice/],
    ['unlisted parent', (m) => { m.dirs.splice(1, 1); }, /not listed/],
    ['newer format', (m) => { m.formatVersion = 2; }, /formatVersion 2/],
    ['other format', (m) => { m.format = 'tar'; }, /not a dcmx-backup/],
    ['bad hash', (m) => { m.files[0].sha256 = 'zz'; }, /malformed/],
    ['bad mode', (m) => { m.files[0].mode = '600'; }, /malformed/],
    ['totals', (m) => { m.totals.bytes += 1; }, /totals/],
    ['no change number', (m) => { delete m.changeNumber; }, /changeNumber/],
  ];
  for (const [what, change, why] of refused) {
    assert.throws(() => parseManifest(variant(change)), (e: Error) => e instanceof ManifestError && why.test(e.message), what);
  }
  fs.writeFileSync(path.join(dest, MANIFEST_FILE), variant((m) => { m.files[0].path = '../x'; }));
  await assert.rejects(readManifest(dest), ManifestError);
  assert.throws(() => parseManifest('{'), /not JSON/);
});

test('paths a manifest may hold', () => {
  for (const p of ['a', 'mail/u/new/1.x', 'tls/key.pem', '.hidden']) assert.ok(isSafeRelativePath(p), p);
  for (const p of ['', '/a', 'a/', 'a//b', './a', 'a/./b', '..', 'a/..', 'a\0b']) assert.ok(!isSafeRelativePath(p), p);
});

test('a copy from a missing file creates nothing; the destination must be new', async () => {
  const d = fresh();
  await assert.rejects(copyFileDurably(path.join(d, 'gone'), path.join(d, 'copy'), 0o600, 'copy'), { code: 'ENOENT' });
  assert.ok(!fs.existsSync(path.join(d, 'copy')));
  fs.writeFileSync(path.join(d, 'src'), 'x');
  fs.writeFileSync(path.join(d, 'dst'), 'y');
  await assert.rejects(copyFileDurably(path.join(d, 'src'), path.join(d, 'dst'), 0o600, 'dst'), { code: 'EEXIST' });
  assert.equal(fs.readFileSync(path.join(d, 'dst'), 'utf8'), 'y');
  fs.symlinkSync('src', path.join(d, 'link'));
  assert.deepEqual((await walkTree(d)).map((e) => [e.path, e.kind]), [['dst', 'file'], ['link', 'other'], ['src', 'file']]);
  assert.deepEqual((await walkTree(d, (rel) => rel === 'link')).map((e) => e.path), ['dst', 'src']);
});
