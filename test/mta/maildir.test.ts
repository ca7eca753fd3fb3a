/**
 * server/mta/maildir.ts: mailbox paths never leave the mail root; a
 * delivery leaves exactly one file in new/ holding Return-Path and
 * Delivered-To followed by the spool bytes unchanged; a repeated delivery
 * (also after a reader moved the file to cur/) writes nothing; failures are
 * temporary results, not exceptions; concurrent deliveries coexist; names
 * and modes are what Dovecot and mutt expect. Files a crash left in tmp/
 * go once 36 hours old (maildir(5)), at start-up, and nothing else does.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CrlfToLf, deliverToMaildir, InvalidMailboxError, mailboxPath, maildirName, sweepMaildirTmp, TMP_MAX_AGE_MS } from '../../server/mta/maildir';
import type { QueuedMessage } from '../../server/mta/types';
import { startTestAppliance, tempDirs } from '../helpers';
import { waitFor } from '../fixtures/wait';

const tmp = tempDirs('dcmx-maildir-');

const HOST = 'mx.dcmx.test';
let seq = 0;

function spool(dir: string, body: Buffer | string, sender = 'alice@example.org'): QueuedMessage {
  const id = `Q${Date.now().toString(36).toUpperCase()}${++seq}`;
  const spoolPath = path.join(dir, `${id}.eml`);
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body);
  fs.writeFileSync(spoolPath, bytes);
  return { id, sender, receivedAt: new Date(1700000000123), spoolPath, size: bytes.length };
}

const ls = (d: string): string[] => (fs.existsSync(d) ? fs.readdirSync(d).sort() : []);

describe('mailboxPath', () => {
  const root = '/srv/dcmx-data';
  const mailRoot = path.join(root, 'mail');
  const ok: [string, string][] = [
    ['a@b.org', 'b.org/a'],
    ['Alice.Smith@Example.ORG', 'example.org/alice.smith'],
    ['a+tag=x@b.org', 'b.org/a+tag=x'],
    ['a@b.org.', 'b.org/a'],
    ['../x@b.org', 'b.org/..%2Fx'],
    ['a/b@c.org', 'c.org/a%2Fb'],
    ['50%@c.org', 'c.org/50%25'],
    ['"john doe"@c.org', 'c.org/%22john%20doe%22'],
    ['jöhn@c.org', 'c.org/j%C3%B6hn'],
    ['JÖHN@c.org', 'c.org/j%C3%B6hn'],
    ['a@bücher.example', 'xn--bcher-kva.example/a'],
    ['a@XN--BCHER-KVA.example', 'xn--bcher-kva.example/a'],
    ['a@[192.0.2.1]', '%5B192.0.2.1%5D/a'],
    ['a\\b@c.org', 'c.org/a%5Cb'],
    ['a\u0000b@c.org', 'c.org/a%00b'],
    ['x@y@c.org', 'c.org/x%40y'],
  ];
  for (const [address, rel] of ok) {
    test(`${JSON.stringify(address)} -> mail/${rel}`, () => {
      const p = mailboxPath(root, address);
      assert.equal(p, path.join(mailRoot, ...rel.split('/')));
      assert.equal(path.dirname(path.dirname(p)), mailRoot);
      assert.ok(!path.relative(mailRoot, p).startsWith('..'));
    });
  }
  const bad = ['a@..', 'a@.', 'a@', '@b.org', '.@b.org', '..@b.org', 'nodomain', 'a@b/c.org', 'a@...', `${'é'.repeat(50)}@b.org`];
  for (const address of bad) {
    test(`${JSON.stringify(address)} is refused`, () => {
      assert.throws(() => mailboxPath(root, address), InvalidMailboxError);
    });
  }
  test('relative roots resolve, and the result never escapes', () => {
    const p = mailboxPath('data', 'a@b.org');
    assert.equal(p, path.resolve('data', 'mail', 'b.org', 'a'));
  });
});

describe('deliverToMaildir', () => {
  test('one file in new/, added headers first, the spool bytes with LF line ends, tmp/ empty, modes 0700', async () => {
    const dir = tmp();
    const raw = 'Received: from a by b\r\nSubject: hello\r\n\r\nbody line\r\n';
    const m = spool(dir, raw);
    const box = mailboxPath(dir, 'Bob@B.org');
    const r = await deliverToMaildir({ message: m, recipient: 'bob@b.org', mailbox: box }, { hostname: HOST });
    assert.equal(r.ok, true);
    assert.deepEqual(ls(path.join(box, 'tmp')), []);
    assert.deepEqual(ls(path.join(box, 'cur')), []);
    const files = ls(path.join(box, 'new'));
    assert.equal(files.length, 1);
    assert.equal(files[0], maildirName(m, 'bob@b.org', HOST));
    const got = fs.readFileSync(path.join(box, 'new', files[0]));
    assert.equal(got.toString(), `Return-Path: <alice@example.org>\nDelivered-To: bob@b.org\n${raw.replace(/\r\n/g, '\n')}`);
    for (const d of [path.join(dir, 'mail'), path.dirname(box), box, ...['tmp', 'new', 'cur'].map((s) => path.join(box, s))]) {
      assert.equal(fs.statSync(d).mode & 0o777, 0o700, d);
    }
    assert.equal(fs.statSync(path.join(box, 'new', files[0])).mode & 0o777, 0o600);
  });

  test('LF spool gets LF header lines; null sender is Return-Path: <>', async () => {
    const dir = tmp();
    const m = spool(dir, 'Subject: x\n\nbody\n', '');
    const box = mailboxPath(dir, 'a@b.org');
    assert.equal((await deliverToMaildir({ message: m, recipient: 'a@b.org', mailbox: box }, { hostname: HOST })).ok, true);
    const [f] = ls(path.join(box, 'new'));
    assert.equal(fs.readFileSync(path.join(box, 'new', f), 'utf8'), 'Return-Path: <>\nDelivered-To: a@b.org\nSubject: x\n\nbody\n');
  });

  test('a 5 MB body arrives with exactly its CRLFs turned to LF, across 1 MiB copy chunks', async () => {
    const dir = tmp();
    const head = Buffer.from('Received: from big by test\r\nSubject: big\r\n\r\n');
    const raw = Buffer.concat([head, crypto.randomBytes(5 * 1024 * 1024 + 12345)]);
    const MiB = 1 << 20;
    raw.write('\r\n', MiB - 1, 'latin1'); // a CRLF split by the first chunk boundary
    raw.write('\rx', 2 * MiB - 1, 'latin1'); // a lone CR at the second boundary
    raw.write('\r\r\n', 3 * MiB - 2, 'latin1');
    const m = spool(dir, raw);
    const box = mailboxPath(dir, 'big@b.org');
    const r = await deliverToMaildir({ message: m, recipient: 'big@b.org', mailbox: box }, { hostname: HOST });
    assert.equal(r.ok, true);
    const [f] = ls(path.join(box, 'new'));
    const got = fs.readFileSync(path.join(box, 'new', f));
    const prefix = Buffer.from('Return-Path: <alice@example.org>\nDelivered-To: big@b.org\n');
    assert.ok(got.subarray(0, prefix.length).equals(prefix));
    // The reference: every CR immediately followed by LF dropped, nothing else touched.
    const want = Buffer.alloc(raw.length);
    let n = 0;
    for (let i = 0; i < raw.length; i++) if (!(raw[i] === 0x0d && raw[i + 1] === 0x0a)) want[n++] = raw[i];
    assert.equal(got.length - prefix.length, n);
    assert.ok(got.subarray(prefix.length).equals(want.subarray(0, n)));
  });

  test('CrlfToLf: CRLF split anywhere, lone CRs kept, a CR at the very end kept', () => {
    const input = 'a\r\nb\rc\r\r\nd\r';
    for (let cut = 0; cut <= input.length; cut++) {
      for (let cut2 = cut; cut2 <= input.length; cut2++) {
        const c = new CrlfToLf();
        const out = Buffer.concat([
          c.push(Buffer.from(input.slice(0, cut))), c.push(Buffer.from(input.slice(cut, cut2))), c.push(Buffer.from(input.slice(cut2))), c.end(),
        ]).toString();
        assert.equal(out, 'a\nb\rc\r\nd\r', `cuts ${cut}, ${cut2}`);
      }
    }
  });

  test('delivered once: a repeat is a no-op, also after the file moved to cur/ with :2,S', async () => {
    const dir = tmp();
    const m = spool(dir, 'Subject: once\r\n\r\nx\r\n');
    const box = mailboxPath(dir, 'c@b.org');
    const d = { message: m, recipient: 'c@b.org', mailbox: box };
    assert.equal((await deliverToMaildir(d, { hostname: HOST })).ok, true);
    assert.equal((await deliverToMaildir(d, { hostname: HOST })).ok, true);
    const files = ls(path.join(box, 'new'));
    assert.equal(files.length, 1);
    // A reader (Dovecot, mutt) marks it seen.
    fs.renameSync(path.join(box, 'new', files[0]), path.join(box, 'cur', `${files[0]}:2,S`));
    assert.equal((await deliverToMaildir(d, { hostname: HOST })).ok, true);
    assert.deepEqual(ls(path.join(box, 'new')), []);
    assert.deepEqual(ls(path.join(box, 'cur')), [`${files[0]}:2,S`]);
    assert.deepEqual(ls(path.join(box, 'tmp')), []);
    // Another recipient of the same message in the same box is a different delivery.
    assert.equal((await deliverToMaildir({ ...d, recipient: 'c+alias@b.org' }, { hostname: HOST })).ok, true);
    assert.equal(ls(path.join(box, 'new')).length, 1);
  });

  test('missing spool file: temporary failure 4.3.0, nothing written', async () => {
    const dir = tmp();
    const m = spool(dir, 'x');
    fs.unlinkSync(m.spoolPath);
    const box = mailboxPath(dir, 'd@b.org');
    const r = await deliverToMaildir({ message: m, recipient: 'd@b.org', mailbox: box }, { hostname: HOST });
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(r.permanent, false);
    assert.equal(r.status, '4.3.0');
    assert.match(r.diagnostic, /^x-local; .*spool file.*missing/);
    assert.equal(fs.existsSync(box), false);
  });

  test('a mailbox path component that is a file: temporary failure, no throw', async () => {
    const dir = tmp();
    const m = spool(dir, 'Subject: x\r\n\r\n');
    const box = mailboxPath(dir, 'e@b.org');
    fs.mkdirSync(path.dirname(path.dirname(box)), { recursive: true });
    fs.writeFileSync(path.dirname(box), 'not a directory'); // the domain folder is a file
    const r = await deliverToMaildir({ message: m, recipient: 'e@b.org', mailbox: box }, { hostname: HOST });
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.equal(r.permanent, false);
      assert.equal(r.status, '4.3.0');
      assert.match(r.diagnostic, /^x-local; /);
    }
    // new/ itself a file inside an otherwise fine Maildir.
    const box2 = mailboxPath(dir, 'f@b.org');
    fs.rmSync(path.dirname(box));
    fs.mkdirSync(path.join(box2, 'tmp'), { recursive: true });
    fs.writeFileSync(path.join(box2, 'new'), '');
    const r2 = await deliverToMaildir({ message: m, recipient: 'f@b.org', mailbox: box2 }, { hostname: HOST });
    assert.equal(r2.ok, false);
    assert.deepEqual(ls(path.join(box2, 'tmp')), []);
  });

  test('50 concurrent deliveries into one mailbox leave 50 intact files', async () => {
    const dir = tmp();
    const box = mailboxPath(dir, 'busy@b.org');
    const msgs = Array.from({ length: 50 }, (_, i) => spool(dir, `Subject: n${i}\r\n\r\n${String(i).repeat(1000)}\r\n`));
    const results = await Promise.all(
      msgs.map((m) => deliverToMaildir({ message: m, recipient: 'busy@b.org', mailbox: box }, { hostname: HOST })),
    );
    assert.ok(results.every((r) => r.ok));
    const files = ls(path.join(box, 'new'));
    assert.equal(files.length, 50);
    assert.deepEqual(ls(path.join(box, 'tmp')), []);
    for (const m of msgs) {
      const f = maildirName(m, 'busy@b.org', HOST);
      const got = fs.readFileSync(path.join(box, 'new', f));
      const lf = fs.readFileSync(m.spoolPath, 'latin1').replace(/\r\n/g, '\n');
      assert.equal(got.toString('latin1').slice(-lf.length), lf);
    }
  });

  test('names: time.unique.host with no "/" or ":" anywhere, host escaped as Dovecot does', async () => {
    const m: QueuedMessage = { id: 'ABC123', sender: '', receivedAt: new Date(1700000000999), spoolPath: '/x', size: 1 };
    const name = maildirName(m, 'a@b.org', 'weird/host:name');
    const tag = crypto.createHash('sha256').update('a@b.org').digest('hex').slice(0, 8);
    assert.equal(name, `1700000000.ABC123_${tag}.weird\\057host\\072name`);
    assert.ok(!name.includes('/') && !name.includes(':'));
    assert.notEqual(maildirName(m, 'a@b.org', HOST), maildirName(m, 'b@b.org', HOST));
    assert.throws(() => maildirName({ ...m, id: '../x' }, 'a@b.org', HOST), TypeError);

    const dir = tmp();
    const m2 = spool(dir, 'Subject: x\r\n\r\n');
    const box = mailboxPath(dir, 'g@b.org');
    const r = await deliverToMaildir({ message: m2, recipient: 'g@b.org', mailbox: box }, { hostname: 'h:1/2' });
    assert.equal(r.ok, true);
    const [f] = ls(path.join(box, 'new'));
    assert.ok(!f.includes(':') && !f.includes('/'));
    assert.match(f, /^\d+\.[A-Za-z0-9]+_[0-9a-f]{8}\.h\\0721\\0572$/);
  });

  test("a real Maildir reader (Python's mailbox.Maildir) reads it, marks it seen, and a repeat stays single", async () => {
    const dir = tmp();
    const m = spool(dir, 'Subject: via python\r\nFrom: a@example.org\r\n\r\nhello\r\n');
    const box = mailboxPath(dir, 'h@b.org');
    const d = { message: m, recipient: 'h@b.org', mailbox: box };
    assert.equal((await deliverToMaildir(d, { hostname: HOST })).ok, true);
    const script = [
      'import sys, json, mailbox',
      'md = mailbox.Maildir(sys.argv[1], factory=None, create=False)',
      'out = []',
      'for key in md.keys():',
      '    msg = md[key]',
      '    out.append({"key": key, "subdir": msg.get_subdir(), "subject": msg["Subject"], "rp": msg["Return-Path"], "dt": msg["Delivered-To"]})',
      '    msg.set_subdir("cur"); msg.add_flag("S"); md[key] = msg',
      'md.close()',
      'print(json.dumps(out))',
    ].join('\n');
    const r = spawnSync('python3', ['-c', script, box], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const seen = JSON.parse(r.stdout);
    assert.deepEqual(seen, [{ key: maildirName(m, 'h@b.org', HOST), subdir: 'new', subject: 'via python', rp: '<alice@example.org>', dt: 'h@b.org' }]);
    assert.deepEqual(ls(path.join(box, 'new')), []);
    const cur = ls(path.join(box, 'cur'));
    assert.equal(cur.length, 1);
    assert.match(cur[0], /:2,S$/);
    assert.equal((await deliverToMaildir(d, { hostname: HOST })).ok, true);
    assert.deepEqual(ls(path.join(box, 'new')), []);
    assert.equal(ls(path.join(box, 'cur')).length, 1);
  });
});

const HOUR = 3600 * 1000;

/** Writes `file` and dates its mtime and atime `ageMs` back. */
function aged(file: string, ageMs: number): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, 'partial message');
  const t = (Date.now() - ageMs) / 1000;
  fs.utimesSync(file, t, t);
  return file;
}

describe('sweepMaildirTmp', () => {
  test('removes tmp/ files older than 36 hours in every mailbox, and nothing else', async () => {
    const mail = path.join(tmp(), 'mail');
    const outside = tmp();
    const old = [
      aged(path.join(mail, 'a.org', 'x', 'tmp', '1700000000.Q1_aa.host.1_ab'), 37 * HOUR),
      aged(path.join(mail, 'a.org', 'y', 'tmp', 'ancient'), 400 * 24 * HOUR),
      aged(path.join(mail, 'b.org', 'z', 'tmp', 'old'), TMP_MAX_AGE_MS + 60_000),
    ];
    const kept = [
      aged(path.join(mail, 'a.org', 'x', 'tmp', 'fresh'), 0),
      aged(path.join(mail, 'a.org', 'x', 'tmp', 'nearly'), 35 * HOUR),
      aged(path.join(mail, 'a.org', 'x', 'new', 'old-but-delivered'), 1000 * HOUR),
      aged(path.join(mail, 'a.org', 'x', 'cur', 'old-and-read:2,S'), 1000 * HOUR),
      aged(path.join(mail, 'a.org', 'x', 'tmp', 'subdir', 'old-inside-a-directory'), 1000 * HOUR),
      aged(path.join(mail, 'a.org', 'stray-file'), 1000 * HOUR),
      aged(path.join(mail, 'a.org', 'w', 'tmp-not-a-dir', 'x'), 1000 * HOUR),
      aged(path.join(outside, 'box', 'tmp', 'not-ours'), 1000 * HOUR),
    ];
    // An old file read recently (atime) is in use: it stays.
    const read = aged(path.join(mail, 'b.org', 'z', 'tmp', 'read-lately'), 100 * HOUR);
    fs.utimesSync(read, Date.now() / 1000, (Date.now() - 100 * HOUR) / 1000);
    kept.push(read);
    // Symbolic links are not followed: a domain and a mailbox pointing out of the mail root.
    fs.symlinkSync(outside, path.join(mail, 'c.org'));
    fs.symlinkSync(path.join(outside, 'box'), path.join(mail, 'b.org', 'linked'));
    fs.writeFileSync(path.join(mail, 'a.org', 'v'), 'a file where a mailbox would be');

    const r = await sweepMaildirTmp(mail);
    assert.deepEqual(r, { mailboxes: 4, removed: 3, errors: 0 }); // a.org/{x,y,w}, b.org/z
    for (const f of old) assert.ok(!fs.existsSync(f), `${f} was removed`);
    for (const f of kept) assert.ok(fs.existsSync(f), `${f} is still there`);
    assert.ok(fs.statSync(path.join(mail, 'a.org', 'x', 'tmp')).isDirectory(), 'tmp/ itself stays');
  });

  test('a missing mail root is an empty sweep; an aborted one removes nothing', async () => {
    assert.deepEqual(await sweepMaildirTmp(path.join(tmp(), 'no-mail-yet')), { mailboxes: 0, removed: 0, errors: 0 });
    const mail = path.join(tmp(), 'mail');
    const f = aged(path.join(mail, 'a.org', 'x', 'tmp', 'old'), 100 * HOUR);
    const r = await sweepMaildirTmp(mail, { signal: AbortSignal.abort() });
    assert.equal(r.removed, 0);
    assert.ok(fs.existsSync(f));
  });

  test('a large tree is swept with bounded concurrency while the event loop keeps turning', async () => {
    const mail = path.join(tmp(), 'mail');
    const N = 400;
    for (let i = 0; i < N; i++) {
      aged(path.join(mail, `d${i % 20}.org`, `u${i}`, 'tmp', 'old'), 40 * HOUR);
      aged(path.join(mail, `d${i % 20}.org`, `u${i}`, 'tmp', 'new'), HOUR);
    }
    // Count the file operations in flight at once (opendir, lstat, unlink all pass through fs.promises).
    let inFlight = 0;
    let peak = 0;
    const p = fs.promises as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    const originals: Record<string, (...a: unknown[]) => Promise<unknown>> = {};
    for (const name of ['opendir', 'lstat', 'unlink']) {
      originals[name] = p[name];
      p[name] = async (...a: unknown[]) => {
        peak = Math.max(peak, ++inFlight);
        try {
          return await originals[name].apply(fs.promises, a);
        } finally {
          inFlight--;
        }
      };
    }
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 1);
    let r;
    try {
      r = await sweepMaildirTmp(mail, { concurrency: 3 });
    } finally {
      clearInterval(ticker);
      Object.assign(p, originals);
    }
    assert.deepEqual(r, { mailboxes: N, removed: N, errors: 0 });
    assert.ok(peak <= 4, `at most 3 mailboxes (plus the walk) at a time, saw ${peak}`);
    assert.ok(ticks > 0, 'timers ran during the sweep');
    let left = 0;
    for (let i = 0; i < N; i++) left += fs.readdirSync(path.join(mail, `d${i % 20}.org`, `u${i}`, 'tmp')).length;
    assert.equal(left, N, 'every fresh file stays');
  });

  test('the appliance sweeps at start-up: a crash leftover goes, a fresh file stays', async () => {
    const dataDir = tmp();
    const box = mailboxPath(dataDir, 'user@example.org');
    const leftover = aged(path.join(box, 'tmp', '1700000000.QCRASHED1_0123abcd.mx.dcmx.test.4242_deadbeef'), 37 * HOUR);
    const fresh = aged(path.join(box, 'tmp', '1700000000.QWRITING1_0123abcd.mx.dcmx.test.4242_cafebabe'), 60_000);
    const t = await startTestAppliance({}, dataDir);
    try {
      await waitFor('the 37-hour-old tmp/ file to go', () => !fs.existsSync(leftover));
      assert.ok(fs.existsSync(fresh), 'the fresh tmp/ file is still there');
    } finally {
      await t.close();
    }
  });
});
