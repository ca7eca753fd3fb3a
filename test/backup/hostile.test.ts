/**
 * `dcmx backup`, `dcmx restore` and `dcmx verify` given hostile or odd
 * trees and paths, over the real commands (the CLI in a process of its own):
 * a backup tree whose store names a spool file outside the data dir; a data
 * dir whose Maildirs are a symbolic link; a DEST reached through a symbolic
 * link into the data dir, below /proc, or on a file system that fills up
 * (a tmpfs of 2 MiB: root mounts it, as test/mta/full-disk.test.ts does).
 * Each must end with a clear refusal or failure (exit 1, the reason named)
 * and leave nothing behind, never read or write outside its trees.
 */
import { before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import Database from 'better-sqlite3';
import { DCMX_CLI, runDcmx, tempDirs, testEnv } from '../helpers';
import { atExit } from '../fixtures/children';
import { hashFile, MANIFEST_FILE, readManifest } from '../../server/backup/manifest';

const newDir = tempDirs('dcmx-hostile-');
/** A data dir made by the CLI (store bootstrapped, one mail domain), no appliance running. */
let data = '';

const dcmx = (dataDir: string, ...args: string[]) => runDcmx(testEnv(dataDir), args);

before(async () => {
  data = path.join(newDir(), 'data');
  const r = await dcmx(data, 'domain', 'add', 'hostile.example');
  assert.equal(r.code, 0, r.stderr);
});

/** Rewrites the manifest of `tree` after its dcmx.sqlite was changed: nothing else authenticates a backup tree. */
async function rehash(tree: string): Promise<void> {
  const file = path.join(tree, MANIFEST_FILE);
  const m = JSON.parse(fs.readFileSync(file, 'utf8')) as { files: { path: string; size: number; sha256: string }[]; totals: { bytes: number } };
  for (const f of m.files) Object.assign(f, await hashFile(path.join(tree, f.path)));
  m.totals.bytes = m.files.reduce((n, f) => n + f.size, 0);
  fs.writeFileSync(file, JSON.stringify(m));
  await readManifest(tree); // still a valid manifest
}

test('restore refuses a backup whose queue row names a spool file outside the data dir', async () => {
  const tree = path.join(newDir(), 'b');
  const b = await dcmx(data, 'backup', tree);
  assert.equal(b.code, 0, b.stderr);
  const outside = path.join(newDir(), 'victim');
  fs.writeFileSync(outside, 'not a message\n');
  const db = new Database(path.join(tree, 'dcmx.sqlite'));
  const rel = path.relative(path.join(path.dirname(tree), 'restored'), outside).split(path.sep).join('/');
  db.prepare("INSERT INTO queue_messages (id, received_at, sender, size, spool) VALUES ('EVIL1', 0, 'a@b.example', 14, ?)").run(`spool/${rel}`);
  db.prepare("INSERT INTO queue_recipients (message_id, rcpt, state, next_attempt) VALUES ('EVIL1', 'x@hostile.example', 'held', 0)").run();
  db.close();
  await rehash(tree);
  const target = path.join(path.dirname(tree), 'restored');
  const r = await dcmx(target, 'restore', tree);
  assert.equal(r.code, 1, `restored: ${r.stdout}${r.stderr}`);
  assert.match(r.stderr, /EVIL1/, 'the refusal names the queue row');
  assert.ok(!fs.existsSync(target), 'nothing restored');
  assert.deepEqual(fs.readdirSync(path.dirname(tree)).sort(), ['b'], 'no work dir left beside it');
  assert.equal(fs.readFileSync(outside, 'utf8'), 'not a message\n');
});

test('a data dir whose mail/ is a symbolic link to a directory elsewhere: the Maildirs are in the backup', async () => {
  const dir = path.join(newDir(), 'data');
  assert.equal((await dcmx(dir, 'domain', 'add', 'hostile.example')).code, 0);
  const elsewhere = newDir();
  const box = path.join(elsewhere, 'hostile.example', 'u');
  for (const sub of ['new', 'cur', 'tmp']) fs.mkdirSync(path.join(box, sub), { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(box, 'new', '1.dcmx'), 'Subject: kept\r\n\r\nbody\r\n', { mode: 0o600 });
  fs.symlinkSync(elsewhere, path.join(dir, 'mail'));
  const tree = path.join(newDir(), 'b');
  const b = await dcmx(dir, 'backup', tree);
  assert.equal(b.code, 0, b.stderr);
  const m = await readManifest(tree);
  assert.equal(m.mail, true);
  assert.ok(m.files.some((f) => f.path === 'mail/hostile.example/u/new/1.dcmx'), `the Maildir message is not in the backup: ${m.files.map((f) => f.path).join(' ')}`);
  assert.ok(m.dirs.some((d) => d.path === 'mail' && d.mode === '0700'), 'mail/ a directory in the backup');
  // A Maildir below it that is itself a link: not followed (it may point anywhere), and not silently left out either.
  fs.symlinkSync(box, path.join(elsewhere, 'hostile.example', 'linked'));
  const tree2 = path.join(newDir(), 'b');
  const b2 = await dcmx(dir, 'backup', tree2);
  assert.equal(b2.code, 0, b2.stderr);
  assert.match(b2.stderr, /warning: .*mail\/hostile\.example\/linked is neither a file nor a directory .*left out of the backup/);
  assert.ok(!(await readManifest(tree2)).files.some((f) => f.path.startsWith('mail/hostile.example/linked')));
});

test('a DEST reached through a symbolic link into the data dir is refused, and nothing is written there', async () => {
  const link = path.join(newDir(), 'link');
  fs.symlinkSync(data, link);
  const before = fs.readdirSync(data).sort();
  const r = await dcmx(data, 'backup', path.join(link, 'sub', 'b'));
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /backup refused: .* inside the data dir/);
  assert.deepEqual(fs.readdirSync(data).filter((n) => !/-(wal|shm)$/.test(n)).sort(), before.filter((n) => !/-(wal|shm)$/.test(n)));
});

test('a DEST that cannot be made (below /proc) fails at once with the reason, exit 1', async () => {
  // Killed (SIGKILL: a hung backup ignores SIGTERM while it waits) when it takes more than 20 s.
  const r = spawnSync(process.execPath, [DCMX_CLI, 'backup', '/proc/dcmx-no-such/b'], {
    env: { ...process.env, ...testEnv(data) }, encoding: 'utf8', timeout: 20_000, killSignal: 'SIGKILL',
  });
  assert.equal(r.signal, null, 'it did not hang');
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /\/proc\/dcmx-no-such/);
});

/** A data dir whose store is larger (3 MiB: a table of ballast) than the 2 MiB file systems of the ENOSPC tests. */
async function bigDataDir(): Promise<string> {
  const dir = path.join(newDir(), 'data');
  assert.equal((await dcmx(dir, 'domain', 'add', 'hostile.example')).code, 0);
  const db = new Database(path.join(dir, 'dcmx.sqlite'));
  db.exec('CREATE TABLE ballast (b BLOB)');
  const ins = db.prepare('INSERT INTO ballast VALUES (randomblob(65536))');
  for (let i = 0; i < 48; i++) ins.run();
  db.close();
  return dir;
}

/** A fresh tmpfs of 2 MiB (root mounts it, as test/mta/full-disk.test.ts does), unmounted after the test. */
function smallFileSystem(t: { after(fn: () => void): void }): string {
  assert.equal(process.getuid?.(), 0, 'this test mounts a tmpfs: it runs as root (as CI does)');
  const mnt = newDir();
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0755', 'tmpfs', mnt], { encoding: 'utf8' });
  assert.equal(m.status, 0, `mount: ${m.stderr}`);
  atExit(() => spawnSync('umount', ['-l', mnt]));
  t.after(() => spawnSync('umount', ['-l', mnt]));
  return mnt;
}

test('a backup that fills its file system (ENOSPC) fails, exit 1, the reason named, nothing left of it, the data dir intact', async (t) => {
  const dir = await bigDataDir();
  const storeBefore = await hashFile(path.join(dir, 'dcmx.sqlite'));
  const mnt = smallFileSystem(t);
  const r = await dcmx(dir, 'backup', path.join(mnt, 'p1', 'p2', 'dest'));
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^dcmx: backup failed: .*(full|ENOSPC|no space).*; what it wrote is removed$/im);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
  assert.deepEqual(fs.readdirSync(mnt), [], 'nothing left on the full file system, the parents it made included');
  assert.deepEqual(await hashFile(path.join(dir, 'dcmx.sqlite')), storeBefore, 'the data dir untouched');
  const v = await dcmx(dir, 'verify');
  assert.equal(v.code, 0, v.stdout + v.stderr);
});

test('verify and restore refuse a manifest.json that is a FIFO or a link to /dev/zero, at once, with the reason', async () => {
  const tree = path.join(newDir(), 'b');
  const b = await dcmx(data, 'backup', tree);
  assert.equal(b.code, 0, b.stderr);
  const manifest = path.join(tree, MANIFEST_FILE);
  for (const [what, make] of [['a FIFO', () => spawnSync('mkfifo', [manifest])], ['a link to /dev/zero', () => fs.symlinkSync('/dev/zero', manifest)]] as const) {
    fs.rmSync(manifest, { force: true });
    make();
    const target = path.join(path.dirname(tree), 'restored');
    for (const args of [['verify', tree], ['restore', tree]]) {
      // Killed (SIGKILL) when it blocks more than 20 s on the FIFO.
      const r = spawnSync(process.execPath, [DCMX_CLI, ...args], { env: { ...process.env, ...testEnv(target) }, encoding: 'utf8', timeout: 20_000, killSignal: 'SIGKILL' });
      assert.equal(r.signal, null, `${args[0]} of ${what}: it did not hang`);
      assert.equal(r.status, 1, `${args[0]} of ${what}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout + r.stderr, /manifest\.json.* (is not a regular file|is a symbolic link)/, `${args[0]} of ${what}`);
    }
    assert.ok(!fs.existsSync(target), 'nothing restored');
  }
});

test('restore and verify refuse a manifest that is truncated, mistyped, lists a path twice, a huge size, or a path that climbs out', async () => {
  const tree = path.join(newDir(), 'b');
  const b = await dcmx(data, 'backup', tree);
  assert.equal(b.code, 0, b.stderr);
  const file = path.join(tree, MANIFEST_FILE);
  const good = fs.readFileSync(file, 'utf8');
  type M = { files: { path: string; size: number }[]; totals: { files: number; bytes: number }; changeNumber: unknown };
  const edit = (f: (m: M) => void) => {
    const m = JSON.parse(good) as M;
    f(m);
    return JSON.stringify(m);
  };
  const cases: [string, string, RegExp][] = [
    ['truncated', good.slice(0, good.length >> 1), /not JSON/],
    ['a path twice', edit((m) => {
      m.files.push({ ...m.files[0] });
      m.totals.files++;
      m.totals.bytes += m.files[0].size;
    }), /listed twice/],
    ['a size past 2^53', edit((m) => {
      m.files[0].size = 2 ** 60;
      m.totals.bytes = 2 ** 60;
    }), /malformed/],
    ['a string change number', edit((m) => {
      m.changeNumber = '12';
    }), /changeNumber/],
    ['files not a list', edit((m) => {
      (m as unknown as { files: string }).files = 'dcmx.sqlite';
    }), /files or dirs/],
    ['a path with ..', edit((m) => {
      m.files[0].path = '../../etc/passwd';
    }), /unsafe path/],
    ['an absolute path', edit((m) => {
      m.files[0].path = '/etc/passwd';
    }), /unsafe path/],
  ];
  const target = path.join(path.dirname(tree), 'restored');
  for (const [what, text, why] of cases) {
    fs.writeFileSync(file, text);
    const r = await dcmx(target, 'restore', tree);
    assert.equal(r.code, 1, `restore, ${what}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, why, `restore, ${what}`);
    assert.ok(!fs.existsSync(target), `restore, ${what}: nothing restored`);
    const v = await dcmx(target, 'verify', tree);
    assert.equal(v.code, 1, `verify, ${what}: ${v.stdout}${v.stderr}`);
    assert.match(v.stdout + v.stderr, why, `verify, ${what}`);
  }
  assert.deepEqual(fs.readdirSync(path.dirname(tree)), ['b'], 'nothing beside the tree either');
});

/** A backup of a new data dir with one Maildir, its new/1.dcmx holding `message`; returns the tree. */
async function backupWithMail(message: string): Promise<string> {
  const dir = path.join(newDir(), 'data');
  assert.equal((await dcmx(dir, 'domain', 'add', 'hostile.example')).code, 0);
  const box = path.join(dir, 'mail', 'hostile.example', 'u');
  for (const sub of ['new', 'cur', 'tmp']) fs.mkdirSync(path.join(box, sub), { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(box, 'new', '1.dcmx'), message, { mode: 0o600 });
  const tree = path.join(newDir(), 'b');
  assert.equal((await dcmx(dir, 'backup', tree)).code, 0);
  return tree;
}

test('restore and verify refuse a tree whose listed directory is a symbolic link (to a copy of itself elsewhere), and read nothing through it', async () => {
  const tree = await backupWithMail('Subject: x\r\n\r\nbody\r\n');
  // The same files, same modes and checksums, but mail/ is now a link to them outside the tree.
  const elsewhere = path.join(newDir(), 'mail');
  fs.renameSync(path.join(tree, 'mail'), elsewhere);
  fs.symlinkSync(elsewhere, path.join(tree, 'mail'));
  const target = path.join(newDir(), 'restored');
  const r = await dcmx(target, 'restore', tree);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /^ {2}mail: not a directory$/m);
  assert.ok(!fs.existsSync(target));
  const v = await dcmx(target, 'verify', tree);
  assert.equal(v.code, 1, v.stdout + v.stderr);
  assert.match(v.stdout + v.stderr, /mail: not a directory/);
});

/** Every path below `dir` (itself included) with its permission bits. */
function modesBelow(dir: string): [string, number, boolean][] {
  const out: [string, number, boolean][] = [];
  const visit = (p: string) => {
    const st = fs.lstatSync(p);
    out.push([p, st.mode & 0o7777, st.isDirectory()]);
    if (st.isDirectory()) for (const n of fs.readdirSync(p)) visit(path.join(p, n));
  };
  visit(dir);
  return out;
}

test('restore never makes a setuid, setgid (file), sticky or world-writable file or directory, whatever the tree and its manifest say', async () => {
  const tree = await backupWithMail('#!/bin/sh\nid\n');
  // The tree and its manifest agree (checkTree passes): a setuid, setgid world-writable file in world-writable dirs.
  const file = path.join(tree, MANIFEST_FILE);
  const m = JSON.parse(fs.readFileSync(file, 'utf8')) as { files: { path: string; mode: string }[]; dirs: { path: string; mode: string }[] };
  for (const f of m.files) if (f.path.endsWith('/1.dcmx')) f.mode = '6777';
  for (const d of m.dirs) if (d.path === 'mail' || d.path === 'mail/hostile.example') d.mode = '1777';
  fs.writeFileSync(file, JSON.stringify(m));
  fs.chmodSync(path.join(tree, 'mail', 'hostile.example', 'u', 'new', '1.dcmx'), 0o6777);
  fs.chmodSync(path.join(tree, 'mail'), 0o1777);
  fs.chmodSync(path.join(tree, 'mail', 'hostile.example'), 0o1777);
  const target = path.join(newDir(), 'restored');
  const r = await dcmx(target, 'restore', tree);
  if (r.code !== 0) {
    // Refused: with the reason, and nothing written.
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /mail\/hostile\.example.* mode/);
    assert.ok(!fs.existsSync(target));
    return;
  }
  const open = modesBelow(target).filter(([, mode, isDir]) => mode & 0o5002 || (!isDir && mode & 0o2000));
  assert.deepEqual(open.map(([p, mode]) => `${path.relative(target, p)} ${mode.toString(8)}`), []);
});

test('restore into an existing empty data dir that is open to others (0755): the data dir ends closed (0700), as the appliance wants it', async () => {
  const tree = path.join(newDir(), 'b');
  assert.equal((await dcmx(data, 'backup', tree)).code, 0);
  const target = path.join(newDir(), 'mnt');
  fs.mkdirSync(target, { mode: 0o755 });
  fs.chmodSync(target, 0o755);
  const r = await dcmx(target, 'restore', tree);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal((fs.statSync(target).mode & 0o777).toString(8), '700');
});

test('a restore that fills its file system (ENOSPC) fails, exit 1, the reason named, nothing left of it, the backup intact', async (t) => {
  const tree = path.join(newDir(), 'b');
  assert.equal((await dcmx(await bigDataDir(), 'backup', tree)).code, 0);
  const mnt = smallFileSystem(t);
  const target = path.join(mnt, 'p1', 'data');
  const r = await dcmx(target, 'restore', tree);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /^dcmx: restore failed: .*(full|ENOSPC|no space).*; nothing restored$/im);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
  assert.deepEqual(fs.readdirSync(mnt), [], 'nothing left on the full file system, the parents it made included');
  const v = await dcmx(target, 'verify', tree);
  assert.equal(v.code, 0, v.stdout + v.stderr);
});

test('restore refuses a data dir inside the backup tree (through a link too): the backup is not spoilt', async () => {
  const tree = path.join(newDir(), 'b');
  assert.equal((await dcmx(data, 'backup', tree)).code, 0);
  const link = path.join(newDir(), 'link');
  fs.symlinkSync(tree, link);
  for (const target of [path.join(tree, 'inside'), path.join(link, 'spool', 'x', 'data')]) {
    const r = await dcmx(target, 'restore', tree);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /inside the backup/);
    const v = await dcmx(data, 'verify', tree);
    assert.equal(v.code, 0, `the backup after a restore into ${target}: ${v.stdout}${v.stderr}`);
  }
});

test('an existing empty DEST that belongs to another user is refused: its owner could open it and read the store', async () => {
  assert.equal(process.getuid?.(), 0, 'this test gives a directory to another user: it runs as root (as CI does)');
  const dest = path.join(newDir(), 'theirs');
  fs.mkdirSync(dest, { mode: 0o777 });
  fs.chmodSync(dest, 0o777);
  fs.chownSync(dest, 65534, 65534);
  const r = await dcmx(data, 'backup', dest);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /backup refused: .*theirs belongs to another user \(uid 65534\)/);
  assert.deepEqual(fs.readdirSync(dest), []);
  assert.equal(fs.statSync(dest).mode & 0o777, 0o777, 'left as it was');
});

test('under a umask of 0, into an existing DEST of 0755: every file of the backup 0600, every directory 0700', async () => {
  const dir = path.join(newDir(), 'data');
  assert.equal((await dcmx(dir, 'domain', 'add', 'hostile.example')).code, 0);
  fs.writeFileSync(path.join(dir, 'admin-password'), 'x\n', { mode: 0o600 });
  const box = path.join(dir, 'mail', 'hostile.example', 'u');
  for (const sub of ['new', 'cur', 'tmp']) fs.mkdirSync(path.join(box, sub), { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(box, 'new', '1.dcmx'), 'Subject: x\r\n\r\n', { mode: 0o600 });
  const dest = path.join(newDir(), 'b');
  fs.mkdirSync(dest);
  fs.chmodSync(dest, 0o755);
  const r = spawnSync('sh', ['-c', 'umask 0 && exec "$@"', 'sh', process.execPath, DCMX_CLI, 'backup', dest], { env: { ...process.env, ...testEnv(dir) }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const wide = modesBelow(dest).filter(([, mode, isDir]) => mode !== (isDir ? 0o700 : 0o600));
  assert.deepEqual(wide.map(([p, mode]) => `${path.relative(dest, p) || '.'} ${mode.toString(8)}`), []);
  assert.ok(fs.existsSync(path.join(dest, 'admin-password')));
});

test('restore refuses, and verify reports, a backup whose store carries a trigger (one that puts a spool path outside back after the restore checked it)', async () => {
  const tree = path.join(newDir(), 'b');
  assert.equal((await dcmx(data, 'backup', tree)).code, 0);
  const db = new Database(path.join(tree, 'dcmx.sqlite'));
  db.prepare("INSERT INTO queue_messages (id, received_at, sender, size, spool) VALUES ('EVIL2', 0, 'a@b.example', 14, 'spool/EVIL2.eml')").run();
  db.prepare("INSERT INTO queue_recipients (message_id, rcpt, state, next_attempt) VALUES ('EVIL2', 'x@hostile.example', 'held', 0)").run();
  db.exec("CREATE TRIGGER evil AFTER UPDATE OF spool ON queue_messages BEGIN UPDATE queue_messages SET spool = '/etc/shadow' WHERE id = NEW.id AND spool != '/etc/shadow'; END");
  db.close();
  fs.mkdirSync(path.join(tree, 'spool'), { mode: 0o700 });
  fs.writeFileSync(path.join(tree, 'spool', 'EVIL2.eml'), 'Subject: x\r\n\r\nbody\r\n', { mode: 0o600 });
  const m = JSON.parse(fs.readFileSync(path.join(tree, MANIFEST_FILE), 'utf8')) as { files: { path: string; size: number; sha256: string; mode: string }[]; dirs: { path: string; mode: string }[]; totals: { files: number } };
  if (!m.dirs.some((d) => d.path === 'spool')) m.dirs.push({ path: 'spool', mode: '0700' });
  m.files.push({ path: 'spool/EVIL2.eml', size: 0, sha256: '', mode: '0600' });
  m.files.sort((x, y) => (x.path < y.path ? -1 : 1));
  m.totals.files = m.files.length;
  fs.writeFileSync(path.join(tree, MANIFEST_FILE), JSON.stringify(m));
  await rehash(tree);
  const target = path.join(newDir(), 'restored');
  const r = await dcmx(target, 'restore', tree);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /dcmx\.sqlite: trigger evil/);
  assert.ok(!fs.existsSync(target));
  const v = await dcmx(data, 'verify', tree);
  assert.equal(v.code, 1, v.stdout + v.stderr);
  assert.match(v.stdout + v.stderr, /dcmx\.sqlite: trigger evil/);
});
