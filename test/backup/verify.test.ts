/**
 * `dcmx verify` on real data dirs, whole and damaged: one made by an
 * appliance (a delivered message in a Maildir, a held message in a spool
 * file), copied afresh for each damage. Each damage is one problem line
 * and exit status 1; the whole dir is exit status 0.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import nodemailer from 'nodemailer';
import { adminArgs, run, runDcmx, startTestAppliance, tempDirs, testEnv } from '../helpers';
import { INLINE_MAX } from '../../server/mta/spool';
import { ls, waitFor } from '../mta/fixture';

const temp = tempDirs('dcmx-verify-');
/** The appliance's data dir: damaged by each test, from a fresh copy of `pristine` (queue rows name their spool files by absolute path). */
let dataDir: string;
/** The data dir as the appliance left it (stopped). */
let pristine: string;

before(async () => {
  const t = await startTestAppliance({}, temp());
  t.app.provisioner.provisionDomain('big.example');
  t.app.provisioner.provisionDomain('held.example');
  const add = await run('ldapadd', adminArgs(t), [
    'dn: uid=u,ou=people,dc=big,dc=example,o=internet\nobjectClass: inetOrgPerson\nobjectClass: inetMailUser\nuid: u\ncn: u\nsn: u\nmail: u@big.example\n',
    'dn: uid=h,ou=people,dc=held,dc=example,o=internet\nobjectClass: inetOrgPerson\nobjectClass: inetMailUser\nuid: h\ncn: h\nsn: h\nmail: h@held.example\n',
    'dn: dc=held,dc=example,o=internet\nchangetype: modify\nreplace: mailDomainStatus\nmailDomainStatus: hold\n',
  ].join('\n'));
  assert.equal(add.code, 0, add.stderr);
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: t.app.ports.smtp, secure: false, ignoreTLS: true });
  await transport.sendMail({ from: 'a@sender.example', to: 'u@big.example', subject: 'small', text: 'hello' });
  // Held: it stays queued, its bytes in a spool file (above INLINE_MAX).
  await transport.sendMail({ from: 'a@sender.example', to: 'h@held.example', subject: 'big', text: 'x'.repeat(70).concat('\r\n').repeat(Math.ceil(INLINE_MAX / 70) + 10) });
  transport.close();
  await waitFor('the delivery', () => ls(path.join(t.dataDir, 'mail', 'big.example', 'u', 'new')).length > 0);
  await t.app.close();
  dataDir = t.dataDir;
  assert.equal(ls(path.join(dataDir, 'spool')).length, 1, 'the held message has a spool file');
  pristine = temp();
  fs.cpSync(dataDir, pristine, { recursive: true });
});

/** The data dir, made whole again. */
function copy(): string {
  fs.rmSync(dataDir, { recursive: true, force: true });
  fs.cpSync(pristine, dataDir, { recursive: true });
  return dataDir;
}

const verify = (dataDir: string, ...args: string[]) => runDcmx(testEnv(dataDir), ['verify', ...args]);

function spoolFile(dir: string): string {
  return path.join(dir, 'spool', ls(path.join(dir, 'spool'))[0]);
}

test('a whole data dir: exit 0 and a summary', async () => {
  const r = await verify(copy());
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^ok: data dir .*dcmx\.sqlite integrity ok.*1 queued message with spool files, 1 mailbox with 1 message$/m);
  // The queue rows name the data dir's path; another path to the same directory is the same data dir.
  const link = path.join(temp(), 'link');
  fs.symlinkSync(dataDir, link);
  const viaLink = await verify(dataDir, link);
  assert.equal(viaLink.code, 0, viaLink.stdout + viaLink.stderr);
});

test('a corrupted SQLite page', async () => {
  const dir = copy();
  const file = path.join(dir, 'dcmx.sqlite');
  const pages = fs.statSync(file).size / 4096;
  const fd = fs.openSync(file, 'r+');
  // Page 2 on: b-tree pages (page 1 holds the header and the schema table).
  fs.writeSync(fd, Buffer.alloc(64, 0xa5), 0, 64, Math.floor(pages / 2) * 4096);
  fs.closeSync(fd);
  const r = await verify(dir);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /^dcmx\.sqlite: integrity: /m);
});

test('a queue row whose spool file is missing', async () => {
  const dir = copy();
  const f = spoolFile(dir);
  fs.rmSync(f);
  const r = await verify(dir);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.equal(r.stdout, `spool/${path.basename(f)}: missing (queue message ${path.basename(f, '.eml')}, ${fs.statSync(spoolFile(pristine)).size} bytes)\n`);
});

test('a spool file no queue row names (an orphan)', async () => {
  const dir = copy();
  const orphan = path.join(dir, 'spool', '0ORPHAN0000000000000.eml');
  fs.writeFileSync(orphan, 'Subject: never acknowledged\r\n\r\n');
  const r1 = await verify(dir);
  assert.equal(r1.code, 0, `a young one may be a message being received: ${r1.stdout}`);
  const old = new Date(Date.now() - 3600_000);
  fs.utimesSync(orphan, old, old);
  const r = await verify(dir);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /^spool\/0ORPHAN0000000000000\.eml: orphan: no queue row names it/m);
});

test('a Maildir without new/', async () => {
  const dir = copy();
  fs.rmSync(path.join(dir, 'mail', 'big.example', 'u', 'new'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'mail', 'big.example', 'stray.txt'), 'x');
  const r = await verify(dir);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.equal(r.stdout, 'mail/big.example/stray.txt: stray file (a domain\'s directory holds one Maildir per mailbox)\nmail/big.example/u: no new/ (not a Maildir)\n');
});

test('Maildir names: flags in cur/ and IMAP servers\' files are whole; a hidden file in new/ and a Maildir++ folder without tmp/ are not', async () => {
  const dir = copy();
  const box = path.join(dir, 'mail', 'big.example', 'u');
  const [msg] = ls(path.join(box, 'new'));
  fs.renameSync(path.join(box, 'new', msg), path.join(box, 'cur', `${msg}:2,RS`));
  fs.writeFileSync(path.join(box, 'dovecot-uidlist'), '3 V1 N2\n');
  fs.writeFileSync(path.join(box, 'new', '.hidden'), '');
  for (const sub of ['new', 'cur']) fs.mkdirSync(path.join(box, '.Sent', sub), { recursive: true });
  const r = await verify(dir);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.equal(r.stdout, 'mail/big.example/u/.Sent: no tmp/ (not a Maildir)\nmail/big.example/u/new/.hidden: not a Maildir message name\n');
});

test('beside a running appliance taking and delivering large messages: exit 0 each time, and the appliance goes on writing', async () => {
  const t = await startTestAppliance({}, copy());
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: t.app.ports.smtp, secure: false, ignoreTLS: true, pool: true, maxConnections: 3 });
  let sending = true;
  let sent = 0;
  // Three senders: spool files written before their rows commit, and removed with their rows once delivered, while verify reads.
  const text = 'y'.repeat(70).concat('\r\n').repeat(Math.ceil((4 * INLINE_MAX) / 70));
  const load = Promise.all([0, 1, 2].map(async () => {
    while (sending) {
      await transport.sendMail({ from: 'a@sender.example', to: 'u@big.example', subject: `load ${sent}`, text });
      sent++;
    }
  }));
  try {
    for (let i = 0; i < 4; i++) {
      const r = await verify(t.dataDir);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /^ok: data dir /);
    }
    sending = false;
    await load;
    assert.ok(sent >= 4, `${sent} messages sent meanwhile`);
    assert.equal(t.app.provisioner.provisionDomain('after.example').existed, false);
  } finally {
    sending = false;
    await load.catch(() => undefined);
    transport.close();
    await t.close();
  }
});

/** A backup of the whole data dir (`dcmx backup`), in a new directory. */
async function backup(): Promise<string> {
  const dest = path.join(temp(), 'backup');
  const r = await runDcmx(testEnv(copy()), ['backup', dest]);
  assert.equal(r.code, 0, r.stderr);
  return dest;
}

test('a backup with a flipped byte', async () => {
  const dest = await backup();
  const whole = await verify(dataDir, dest);
  assert.equal(whole.code, 0, whole.stdout + whole.stderr);
  assert.match(whole.stdout, /^ok: backup .*files \(\d+ bytes\) against the manifest of .*dcmx\.sqlite integrity ok.*1 queued message with spool files, 1 mailbox with 1 message$/m);
  assert.deepEqual(ls(dest).filter((f) => f.includes('-wal') || f.includes('-shm')), [], 'no SQLite side file left in the tree');
  const box = path.join(dest, 'mail', 'big.example', 'u', 'new');
  const msg = path.join(box, ls(box)[0]);
  const bytes = fs.readFileSync(msg);
  bytes[10] ^= 0x20;
  fs.writeFileSync(msg, bytes);
  const r = await verify(dataDir, dest);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`^mail/big\\.example/u/new/${ls(box)[0].replace(/\./g, '\\.')}: sha256 [0-9a-f]{64}, expected [0-9a-f]{64}\\n$`));
});

test('a backup without its manifest (killed before its end)', async () => {
  const dest = await backup();
  fs.rmSync(path.join(dest, 'manifest.json'));
  const r = await verify(dataDir, dest);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /^manifest\.json: missing: an incomplete backup/);
  assert.match(r.stderr, /1 problem in backup /);
});
