/**
 * `dcmx backup DEST [--no-mail]` (server/backup/snapshot.ts) against a
 * running appliance, the CLI being another process as an operator runs it:
 * a backup taken while LDAP writes go on matches its manifest, keeps the
 * files private, holds the queued messages (spool paths relative to the
 * tree), the TLS key and the Maildirs; --no-mail leaves them out; a DEST that is not
 * empty is refused; a backup killed half-way leaves no manifest.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { adminArgs, DCMX_CLI, run, runDcmx, startTestAppliance, tempDirs, testEnv, type TestAppliance } from '../helpers';
import { track } from '../fixtures/children';
import { domainStatus, mailbox, maildir, swaks, USER, USER_LDIF, waitFor } from '../mta/fixture';
import { checkTree, MANIFEST_FILE, ManifestError, readManifest, resolveIn, walkTree } from '../../server/backup/manifest';
import { backupDataDir } from '../../server/backup/snapshot';
import { Store } from '../../storage/store';
import { QueueStore } from '../../storage/queue';

let t: TestAppliance;
const dirs = tempDirs('dcmx-backup-');
/** Queue ids of the held messages: one in a spool file, one inline. */
const queued: string[] = [];

const backup = (...args: string[]) => runDcmx(testEnv(t.dataDir), ['backup', ...args], 120_000);

/** Sends a message to USER; resolves with its queue id. */
async function send(subject: string, body: string): Promise<string> {
  const sw = await swaks(t.app.ports.smtp, { to: USER, subject, body });
  assert.equal(sw.code, 0, sw.out);
  const id = /<- {2}250 .*queued as (\w+)/.exec(sw.out)?.[1];
  assert.ok(id, sw.out);
  return id;
}

before(async () => {
  t = await startTestAppliance({ DCMX_QUEUE_RETRY_BASE: '3600' });
  const r = await run('ldapadd', adminArgs(t), USER_LDIF);
  assert.equal(r.code, 0, r.stderr);
  const d = await runDcmx(testEnv(t.dataDir), ['domain', 'add', 'backup.example']);
  assert.equal(d.code, 0, d.stderr);
  await send('delivered one', 'first');
  await send('delivered two', 'second');
  await waitFor('two messages in the Maildir', () => mailbox(t.dataDir, USER).length === 2);
  // Held: accepted and kept in the queue. One past the inline limit (256 KiB), in a spool file.
  await domainStatus(t.app.ports.ldap, 'hold');
  const big = path.join(dirs(), 'big.txt');
  fs.writeFileSync(big, `${'x'.repeat(998)}\r\n`.repeat(400));
  queued.push(await send('held big', `@${big}`), await send('held small', 'small'));
});

after(async () => {
  await t?.close();
});

test('a backup taken while LDAP writes go on matches its manifest; private modes; queue and Maildirs in it', async () => {
  const dest = path.join(dirs(), 'b1');
  const before = t.app.directory.changeRange().last;
  let writing = true;
  let writes = 0;
  const writer = (async () => {
    while (writing) {
      const m = await run('ldapmodify', adminArgs(t), `dn: dc=example,dc=org,o=internet\nchangetype: modify\nreplace: description\ndescription: w${writes}\n`);
      assert.equal(m.code, 0, m.stderr);
      writes++;
    }
  })();
  const r = await backup(dest);
  writing = false;
  await writer;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /backed up .* to .*: \d+ files, [\d.]+ (B|KiB|MiB), [\d.]+ s, change \d+, 2 queued messages\n$/);
  const m = await readManifest(dest);
  assert.deepEqual(await checkTree(dest, m), []);
  assert.ok(m.changeNumber >= before && m.changeNumber <= t.app.directory.changeRange().last, `change ${m.changeNumber} between ${before} and after`);
  assert.equal(r.stderr.match(/change (\d+)/)?.[1], String(m.changeNumber));
  assert.ok(writes > 0, 'writes went on during the backup');
  // The zone serial of the snapshot: not above the live one after it.
  const serial = m.zones['backup.example.'];
  assert.ok(serial > 0 && serial <= t.app.zones.zoneOf('backup.example')!.soa.rdata.serial, JSON.stringify(m.zones));
  assert.equal(m.mail, true);
  assert.deepEqual(m.queue, { messages: 2, recipients: 2, finishedDuringBackup: 0 });
  assert.equal(m.versions.schema, Number(fs.readdirSync(path.resolve(__dirname, '../../../storage/migrations')).sort().at(-1)!.slice(0, 3)));
  // Private: the tree 0700, the store and spool 0600, everything else as in the data dir (the key 0600, the certificate public).
  assert.equal(fs.statSync(dest).mode & 0o777, 0o700);
  for (const e of await walkTree(dest)) {
    const liveMode = /^(dcmx\.sqlite|manifest\.json|spool\/)/.test(e.path) ? (e.kind === 'dir' ? 0o700 : 0o600) : fs.statSync(resolveIn(t.dataDir, e.path)).mode & 0o777;
    assert.equal(e.stat.mode & 0o777, liveMode, e.path);
  }
  for (const f of ['tls/smtp-key.pem', 'admin-password', 'dcmx.sqlite']) {
    if (fs.existsSync(path.join(dest, f))) assert.equal(fs.statSync(path.join(dest, f)).mode & 0o077, 0, f);
  }
  assert.ok(fs.existsSync(path.join(dest, 'tls/smtp-key.pem')));
  // What is left out.
  const paths = m.files.map((f) => f.path);
  assert.ok(!paths.some((p) => /(-wal|-shm|dcmx\.lock|\.dcmx-write-test)/.test(p) || /\/tmp\//.test(p)), paths.join(' '));
  assert.ok(paths.includes('admin-password') || !fs.existsSync(path.join(t.dataDir, 'admin-password')));
  // The Maildir as delivered.
  const box = path.relative(t.dataDir, maildir(t.dataDir, USER)).split(path.sep).join('/');
  const live = fs.readdirSync(path.join(maildir(t.dataDir, USER), 'new')).sort().map((n) => `${box}/new/${n}`);
  assert.deepEqual(paths.filter((p) => p.startsWith(`${box}/new/`)), live);
  for (const sub of ['tmp', 'new', 'cur']) assert.ok(m.dirs.some((d) => d.path === `${box}/${sub}`), sub);
  // The queue in the copy: spool paths relative to the tree, the file there with the row's size.
  // One self-contained file (rollback journal): nothing beside it.
  assert.deepEqual(fs.readdirSync(dest).filter((n) => n.startsWith('dcmx.sqlite')), ['dcmx.sqlite']);
  const scratch = dirs();
  fs.copyFileSync(path.join(dest, 'dcmx.sqlite'), path.join(scratch, 'dcmx.sqlite'));
  const store = Store.open(path.join(scratch, 'dcmx.sqlite'), []);
  try {
    // The keys live in entries: the domain's DKIM private key is in the copy.
    const keys = (s: Store) => (s.db.prepare(`SELECT count(*) AS n FROM entries WHERE attrs LIKE '%dkimPrivateKey%'`).get() as { n: number }).n;
    assert.ok(keys(store) >= 1);
    assert.equal(keys(store), keys(t.app.directory.store));
    const q = new QueueStore(store);
    assert.deepEqual(q.entries().map((e) => e.message.id).sort(), [...queued].sort());
    const rows = q.spoolRows();
    assert.equal(rows.length, 1);
    assert.deepEqual(rows[0], { id: queued[0], spool: `spool/${queued[0]}.eml`, size: rows[0].size });
    assert.equal(fs.statSync(resolveIn(dest, rows[0].spool)).size, rows[0].size);
    assert.equal(q.message(queued[1])?.spool, '');
    assert.equal(store.lastChange()?.changeNumber, m.changeNumber);
    assert.equal(store.lastChange()?.csn, m.csn);
  } finally {
    store.close();
  }
});

test('--no-mail leaves the Maildirs out', async () => {
  const dest = path.join(dirs(), 'b2');
  // An index list other than the appliance's does not stop it (the store's own is used).
  const r = await runDcmx(testEnv(t.dataDir, { DCMX_LDAP_INDEXES: 'description' }), ['backup', dest, '--no-mail'], 120_000);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /without the Maildirs/);
  const m = await readManifest(dest);
  assert.equal(m.mail, false);
  assert.ok(!fs.existsSync(path.join(dest, 'mail')));
  assert.ok(![...m.files, ...m.dirs].some((e) => e.path.startsWith('mail')));
  assert.ok(m.files.some((f) => f.path.startsWith('spool/')), 'the spool is kept');
  assert.deepEqual(await checkTree(dest, m), []);
});

test('on a terminal, a progress line; the final line always', async () => {
  const dest = path.join(dirs(), 'b6');
  // script(1) gives the CLI a terminal (its stderr is a TTY) and copies what it writes to stdout.
  const env = Object.entries(testEnv(t.dataDir)).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ');
  const r = await run('script', ['-qec', `env ${env} ${JSON.stringify(process.execPath)} ${JSON.stringify(DCMX_CLI)} backup ${JSON.stringify(dest)}`, '/dev/null'], undefined, 120_000);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /\r\[#{30}\] 100% {2}\d+ files {2}\d+\/s/);
  assert.match(r.stdout, /backed up .*, change \d+/);
  assert.deepEqual(await checkTree(dest, await readManifest(dest)), []);
});

test('a DEST that is not empty, or inside the data dir, is refused and left as it was', async () => {
  const dest = dirs();
  fs.writeFileSync(path.join(dest, 'keep'), 'mine');
  let r = await backup(dest);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /backup refused: .* is not empty/);
  assert.deepEqual(fs.readdirSync(dest), ['keep']);
  r = await backup(path.join(t.dataDir, 'inner'));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /inside the data dir/);
  assert.ok(!fs.existsSync(path.join(t.dataDir, 'inner')));
  r = await backup();
  assert.equal(r.code, 64);
  assert.match(r.stderr, /dcmx backup DEST \[--no-mail\]/);
});

test('a message finished after the snapshot is left out of the copy and counted; one whose spool file is missing is warned about', async () => {
  const big = path.join(dirs(), 'big2.txt');
  fs.writeFileSync(big, `${'y'.repeat(998)}\r\n`.repeat(400));
  const [finished, broken] = [await send('held finished', `@${big}`), await send('held broken', `@${big}`)];
  const spoolOf = (id: string) => path.join(t.dataDir, 'spool', `${id}.eml`);
  const aside = path.join(dirs(), 'aside.eml');
  const warnings: string[] = [];
  let snapshotted = false;
  const { manifest: m } = await backupDataDir(t.config, path.join(dirs(), 'b4'), {
    mail: false,
    onWarning: (w) => warnings.push(w),
    onProgress: (p) => {
      if (p.phase !== 'store' || p.bytes !== p.totalBytes || snapshotted) return;
      // Between the snapshot and the spool copy: one message is delivered (row and file go), one loses its file.
      snapshotted = true;
      t.app.mta.queue.remove(finished);
      fs.rmSync(spoolOf(finished));
      fs.renameSync(spoolOf(broken), aside);
    },
  });
  fs.renameSync(aside, spoolOf(broken));
  t.app.mta.queue.remove(broken);
  fs.rmSync(spoolOf(broken));
  assert.ok(snapshotted);
  assert.deepEqual(m.queue, { messages: 2, recipients: 2, finishedDuringBackup: 1 });
  assert.deepEqual(m.files.filter((f) => f.path.startsWith('spool/')).map((f) => f.path), [`spool/${queued[0]}.eml`]);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], new RegExp(`queued message ${broken} has no spool file`));
});

test('a backup killed with SIGKILL half-way leaves no manifest: it is refused', async () => {
  // Enough mail that copying it (a fsync per file) takes a while.
  const cur = path.join(maildir(t.dataDir, USER), 'cur');
  const blob = Buffer.alloc(16 * 1024, 'm');
  for (let i = 0; i < 1500; i++) fs.writeFileSync(path.join(cur, `${1000 + i}.M1P1.bulk:2,S`), blob);
  const dest = path.join(dirs(), 'b3');
  const { child, exited } = await backupCopyingMail(dest);
  child.kill('SIGKILL');
  assert.deepEqual(await exited, { code: null, signal: 'SIGKILL' }, 'the backup was still running');
  assert.ok(fs.existsSync(path.join(dest, 'dcmx.sqlite')));
  assert.deepEqual(fs.readdirSync(dest).filter((n) => n.startsWith('dcmx.sqlite-')), [], 'the copy was closed before the Maildirs');
  assert.ok(!fs.existsSync(path.join(dest, MANIFEST_FILE)));
  await assert.rejects(readManifest(dest), (e: Error) => e instanceof ManifestError && /incomplete/.test(e.message));
  const again = await backup(dest);
  assert.equal(again.code, 1, 'a second backup does not go into the remains');
});

test('a backup stopped by SIGTERM removes what it wrote', async () => {
  const dest = path.join(dirs(), 'b5');
  const { child, exited } = await backupCopyingMail(dest);
  child.kill('SIGTERM');
  assert.deepEqual(await exited, { code: 143, signal: null });
  assert.ok(!fs.existsSync(dest), 'DEST, made by the backup, is removed');
});

/**
 * Starts `dcmx backup DEST` (another process) and resolves once it copies the
 * Maildirs (the store and the spool are in DEST, the manifest is not yet).
 */
async function backupCopyingMail(dest: string) {
  const child = track(spawn(process.execPath, [DCMX_CLI, 'backup', dest], { env: { ...process.env, ...testEnv(t.dataDir) }, stdio: 'ignore' }));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  await waitFor('the backup to copy the Maildirs', () => fs.existsSync(path.join(dest, 'mail')) || child.exitCode !== null, 60_000, 2);
  return { child, exited };
}
