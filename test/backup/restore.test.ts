/**
 * `dcmx restore SRC` end to end: a data dir rebuilt from a backup tree
 * (`dcmx backup`, taken while the appliance serves) on which the appliance
 * starts and serves over real sockets: the same entries (ldapsearch), the
 * zones with serials moved forward past those served after the backup
 * (dig), a NOTIFY of each, the queued message delivered from its restored
 * spool file, the old data dir destroyed. And the refusals, each
 * with nothing written: no manifest, a corrupted file, a data dir that is
 * not empty, one an appliance runs on.
 * Needs: ldap-utils, dig, swaks.
 */
import { before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { ADMIN_PASSWORD, run, runDcmx, startSpawned, stopChild, tempDirs, testEnv } from '../helpers';
import { addUser, domainStatus, mailbox, swaks, USER, waitFor } from '../mta/fixture';
import { digRunner, soaSerial } from '../dns/fixture';
import { serialGreater } from '../../server/directory/zones';
import { restoreBackup } from '../../server/backup/restore';
import { restoreReport } from '../../server/admin/backup-cli';
import { loadConfig } from '../../server/config';

const newDir = tempDirs('dcmx-restore-');
/** The backup tree made in before(), and the serial of example.net in it. */
let tree = '';
let backedUpSerial = 0;
/** The serial of example.net when the old appliance stopped (writes after the backup), and when the backup began. */
let lostSerial = 0;
let backupStarted = 0;
let parent = '';
/** A body over INLINE_MAX (256 KiB): the message gets a spool file. */
const BIG_LINES = 4000;
const BIG = `${'x'.repeat(76)}\n`.repeat(BIG_LINES);

before(async () => {
  const src = newDir();
  const a = await startSpawned(src, { DCMX_RELAY_NETWORKS: '127.0.0.1/32' });
  await addUser(a.ports.ldap);
  const made = await runDcmx(testEnv(src), ['domain', 'add', 'example.net']);
  assert.equal(made.code, 0, made.stderr);
  // One message delivered before the backup, one held in the queue (its domain on hold) with a spool file.
  assert.equal((await swaks(a.ports.smtp, { to: USER, subject: 'delivered before' })).code, 0);
  await waitFor('the first message delivered', () => mailbox(src, USER).length === 1);
  await domainStatus(a.ports.ldap, 'hold');
  const body = path.join(newDir(), 'big-body.txt');
  fs.writeFileSync(body, BIG);
  assert.equal((await swaks(a.ports.smtp, { to: USER, subject: 'queued at backup', body })).code, 0);
  assert.equal(fs.readdirSync(path.join(src, 'spool')).length, 1, 'the queued message has its spool file');
  const dig = digRunner(a.ports.dns);
  backedUpSerial = soaSerial((await dig('example.net', 'SOA')).stdout);
  assert.ok(backedUpSerial > 0);
  // The backup, taken while the appliance serves.
  parent = newDir();
  tree = path.join(parent, 'backup');
  backupStarted = Date.now();
  const b = await runDcmx(testEnv(src), ['backup', tree]);
  assert.equal(b.code, 0, b.stderr);
  // Zone changes after the backup, lost with the data dir: the serials a secondary may hold.
  for (let i = 0; i < 5; i++) {
    const r = await run('ldapmodify', ['-x', '-H', `ldap://127.0.0.1:${a.ports.ldap}`, '-D', 'cn=admin,o=internet', '-w', ADMIN_PASSWORD],
      `dn: dc=example,dc=net,o=internet\nchangetype: modify\nadd: tXTRecord\ntXTRecord: "after the backup ${i}"\n`);
    assert.equal(r.code, 0, r.stderr);
  }
  lostSerial = soaSerial((await dig('example.net', 'SOA')).stdout);
  assert.ok(lostSerial >= backedUpSerial + 5, `${lostSerial} after ${backedUpSerial}`);
  await stopChild(a.child);
  // The data dir destroyed: a spool path still naming it would find nothing.
  fs.rmSync(src, { recursive: true });
});

/**
 * A secondary's NOTIFY port (RFC 1996) on loopback: records the zone of each
 * NOTIFY (opcode 4) and acknowledges it (the same header with QR set).
 */
async function notifyListener(): Promise<{ port: number; zones: string[]; close(): void }> {
  const sock = dgram.createSocket('udp4');
  const zones: string[] = [];
  sock.on('message', (msg, from) => {
    if (((msg[2] >> 3) & 0x0f) !== 4) return;
    const labels: string[] = [];
    for (let i = 12; msg[i]; i += msg[i] + 1) labels.push(msg.toString('latin1', i + 1, i + 1 + msg[i]));
    zones.push(labels.join('.'));
    const ack = Buffer.from(msg);
    ack[2] |= 0x80;
    sock.send(ack, from.port, from.address);
  });
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
  return { port: (sock.address() as AddressInfo).port, zones, close: () => sock.close() };
}

/** Runs `dcmx restore` with the configuration of data dir `dataDir`. */
const restore = (dataDir: string, src = tree) => runDcmx(testEnv(dataDir), ['restore', src]);
/** The names in `dir` (none when it does not exist). */
const names = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []);

test('restore into a missing data dir, then the appliance serves the backup: entries, zones with serials forward, the queued message delivered', async () => {
  const dst = path.join(newDir(), 'data');
  const restoreStarted = Date.now();
  const r = await restore(dst);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const restoreEnded = Date.now();
  assert.match(r.stdout, /^restored \d+ files, \d+ bytes from .* into .*data in [\d.]+ s$/m);
  assert.match(r.stdout, /zone serials moved forward by \d+/);
  const line = new RegExp(`^  example\\.net\\.\\t${backedUpSerial} -> (\\d+)$`, 'm').exec(r.stdout);
  assert.ok(line, r.stdout);
  const restoredSerial = Number(line[1]);
  const step = Number(/moved forward by (\d+)/.exec(r.stdout)![1]);
  assert.equal(restoredSerial, backedUpSerial + step);
  const created = Date.parse((JSON.parse(fs.readFileSync(path.join(tree, 'manifest.json'), 'utf8')) as { created: string }).created);
  assert.ok(created >= backupStarted && step >= restoreStarted - created && step <= restoreEnded - created,
    `the step (${step}) is the ms from the backup's snapshot to the restore`);
  assert.ok(serialGreater(restoredSerial, lostSerial), `past the serial served after the backup (${restoredSerial} > ${lostSerial}, RFC 1982)`);
  assert.deepEqual(names(path.dirname(dst)), ['data'], 'the work dir beside it was renamed into place: nothing else left');
  assert.equal(fs.statSync(path.join(dst, 'dcmx.sqlite')).mode & 0o777, 0o600, 'modes from the manifest');
  assert.equal(fs.statSync(path.join(dst, 'spool')).mode & 0o777, 0o700);
  assert.ok(!names(dst).includes('manifest.json'), 'the manifest is the backup\'s, not the data dir\'s');
  const v = await runDcmx(testEnv(dst), ['verify']);
  assert.equal(v.code, 0, `dcmx verify of the restored data dir: ${v.stdout}${v.stderr}`);

  // The first start after the restore NOTIFYs every zone: no appliance ran to follow the serials' move.
  const secondary = await notifyListener();
  const b = await startSpawned(dst, { DCMX_NOTIFY: `127.0.0.1:${secondary.port}` });
  try {
    await waitFor('a NOTIFY for example.net', () => secondary.zones.includes('example.net'));
    const dig = digRunner(b.ports.dns);
    assert.equal(soaSerial((await dig('example.net', 'SOA')).stdout), restoredSerial, 'dig: the serial moved forward');
    assert.match((await dig('example.net', 'MX')).stdout, /status: NOERROR/);
    const s = await run('ldapsearch', ['-x', '-H', `ldap://127.0.0.1:${b.ports.ldap}`, '-D', 'cn=admin,o=internet', '-w', ADMIN_PASSWORD,
      '-LLL', '-b', 'o=internet', `(mail=${USER})`, 'mail']);
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stdout, /^dn: uid=user,ou=people,dc=example,dc=org,o=internet$/m, 'ldapsearch: the user is back');
    assert.equal(mailbox(dst, USER).length, 1, 'the Maildir came back with its message');
    // The queued message: its domain released, it is delivered from the restored spool file (the path rewritten).
    await domainStatus(b.ports.ldap, 'active');
    await waitFor('the queued message delivered', () => mailbox(dst, USER).length === 2, 15_000);
    const queued = mailbox(dst, USER).find((m) => m.includes('queued at backup'));
    assert.equal(queued?.split('x'.repeat(76)).length, BIG_LINES + 1, 'the whole message, from its spool file');
  } finally {
    secondary.close();
    await stopChild(b.child);
  }
});

test('restore into an existing empty data dir (a mount point, say): the tree goes inside it', async () => {
  const dst = newDir();
  const r = await restore(dst);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(names(dst).includes('dcmx.sqlite'));
  assert.ok(!names(dst).some((n) => n.startsWith('.dcmx-restoring')), names(dst).join(' '));
});

test('refused with nothing written: no manifest, a corrupted file, a newer version\'s backup, a data dir not empty or live', async () => {
  // A corrupted file (same size, one byte changed): every checksum is checked before anything is written.
  const bad = path.join(parent, 'corrupted');
  fs.cpSync(tree, bad, { recursive: true, preserveTimestamps: true });
  const file = path.join(bad, 'dcmx.sqlite');
  const bytes = fs.readFileSync(file);
  bytes[bytes.length >> 1] ^= 0xff;
  fs.writeFileSync(file, bytes);
  const home = newDir();
  const dst = path.join(home, 'data');
  let r = await restore(dst, bad);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stderr, /does not match its manifest: nothing restored/);
  assert.match(r.stderr, /^ {2}dcmx\.sqlite: sha256 [0-9a-f]{64}, expected [0-9a-f]{64}$/m);
  assert.deepEqual(names(home), [], 'nothing written: no data dir, no work dir');

  // Made by a newer version: its store's schema is not one this version knows.
  const newer = path.join(parent, 'newer');
  fs.cpSync(tree, newer, { recursive: true, preserveTimestamps: true });
  const m = JSON.parse(fs.readFileSync(path.join(newer, 'manifest.json'), 'utf8')) as { versions: { schema: number } };
  m.versions.schema = 999;
  fs.writeFileSync(path.join(newer, 'manifest.json'), JSON.stringify(m));
  r = await restore(dst, newer);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /was made by a newer dcmx \(.*store schema 999; this version's is \d+\)/);
  assert.deepEqual(names(home), []);

  // No manifest: an incomplete backup.
  fs.rmSync(path.join(bad, 'manifest.json'));
  r = await restore(dst, bad);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /has no manifest\.json: not a backup, or an incomplete one/);
  assert.deepEqual(names(home), []);

  // A data dir that is not empty.
  fs.mkdirSync(dst);
  fs.writeFileSync(path.join(dst, 'notes.txt'), 'mine\n');
  r = await restore(dst);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /is not empty \(notes\.txt\)/);
  assert.deepEqual(names(dst), ['notes.txt'], 'left as it was');

  // A data dir an appliance runs on.
  const live = newDir();
  const a = await startSpawned(live);
  try {
    const before = names(live);
    r = await restore(live);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /an appliance is running on .* \(it holds dcmx\.lock\)/);
    assert.deepEqual(names(live), before);
  } finally {
    await stopChild(a.child);
  }
});

test('a restore stopped (SIGINT, SIGTERM: its abort signal) after it began writing removes what it wrote', async () => {
  const home = newDir();
  const dst = path.join(home, 'data');
  const stop = new AbortController();
  const reason = new Error('stopped by the test');
  let copied = 0;
  await assert.rejects(restoreBackup(tree, loadConfig(testEnv(dst)), {
    signal: stop.signal,
    onProgress: (phase) => {
      if (phase === 'copy' && ++copied === 1) stop.abort(reason);
    },
  }), (e) => e === reason);
  assert.equal(copied, 1, 'it stopped before the next file');
  assert.deepEqual(names(home), [], 'no data dir, no work dir left beside it');
});

test('an existing data dir with a new file system\'s lost+found only: restored, lost+found left as it was', async () => {
  const dst = newDir();
  fs.mkdirSync(path.join(dst, 'lost+found'), { mode: 0o700 });
  const r = await restore(dst);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(names(dst).includes('dcmx.sqlite'));
  assert.ok(names(dst).includes('lost+found'));
});

test('a store made in the data dir while the restore copies (an appliance started on it): refused, that store left alone, nothing placed', async () => {
  const dst = newDir();
  const theirs = Buffer.from('an appliance\'s own store\n');
  let made = false;
  await assert.rejects(restoreBackup(tree, loadConfig(testEnv(dst)), {
    onProgress: (phase) => {
      if (phase === 'copy' && !made) {
        made = true;
        fs.writeFileSync(path.join(dst, 'dcmx.sqlite'), theirs);
      }
    },
  }), /dcmx\.sqlite.*(was made during the restore|is not empty)|is not empty \(dcmx\.sqlite\)/);
  assert.ok(made);
  assert.deepEqual(fs.readFileSync(path.join(dst, 'dcmx.sqlite')), theirs, 'not replaced');
  assert.deepEqual(names(dst), ['dcmx.sqlite'], 'nothing of the backup placed beside it, no work dir left');
});

test('a clock behind the backup\'s: serials moved by 1, and a warning says why', async () => {
  const dst = path.join(newDir(), 'data');
  const created = Date.parse((JSON.parse(fs.readFileSync(path.join(tree, 'manifest.json'), 'utf8')) as { created: string }).created);
  const r = await restoreBackup(tree, loadConfig(testEnv(dst)), { now: created - 5000 });
  assert.equal(r.step, 1);
  assert.equal(r.clockBehindMs, 5000);
  const lines = restoreReport(tree, r).join('\n');
  assert.match(lines, /warning: this machine's clock is 5\.0 s behind the backup's time: the serials moved by 1 only/);
});
