/**
 * A full data dir, for real: the appliance runs in its own process on a
 * small tmpfs of its own, which the test fills to the last byte. Delivery
 * then fails, and so does every write of the queue; intake fails part-way
 * through a message. Nothing may spin, hang, or be acknowledged without
 * being stored.
 *
 * Mounting a tmpfs takes root. As root, the test mounts it on a temporary
 * directory. As an ordinary user, it starts the appliance in a user and mount
 * namespace of its own (`unshare`, util-linux), where the user is root enough
 * to mount the tmpfs on that directory before the appliance starts; the mount
 * is seen by the appliance only, so the test reaches it through
 * /proc/<appliance pid>/root, and it goes away with the appliance. That needs
 * unprivileged user namespaces (on by default in Debian 12); where they are
 * refused, the tests fail saying so before starting anything.
 */
import { before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { startSpawned, stopChild, tempDir, type SpawnedAppliance } from '../helpers';
import { atExit } from '../fixtures/children';
import { addUser, mailbox, RawSmtp, swaks, USER, waitFor } from './fixture';

const asRoot = process.getuid?.() === 0;

/** The options of the appliance's tmpfs, `mib` MiB. */
const tmpfsOptions = (mib: number) => `size=${mib}m,mode=0700`;

/**
 * A command line that mounts a tmpfs of `mib` MiB on `dir` in a user and mount namespace of its
 * own, where this user is root, then execs the command appended to it (sh's "$@" after the shift).
 */
const inOwnTmpfs = (mib: number, dir: string) => ['unshare', '--user', '--map-root-user', '--mount', '--propagation', 'private',
  'sh', '-c', 'mount -t tmpfs -o "$1" tmpfs "$2" && shift 2 && exec "$@"', 'sh', tmpfsOptions(mib), dir];

/** A fresh temporary directory, unmounted (as root) and removed when the test process ends, however it ends. */
function mountPoint(): string {
  const dir = tempDir('dcmx-full-disk-');
  atExit(() => {
    if (asRoot) spawnSync('umount', ['-l', dir]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

before(() => {
  if (asRoot) return;
  // The same mount with nothing after it: a refusal gets its own message, not an appliance that failed to start.
  const [unshare, ...args] = inOwnTmpfs(1, mountPoint());
  const r = spawnSync(unshare, [...args, 'true'], { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(`these tests need a small file system of their own; not being root, they mount it in a user namespace (unshare --user --map-root-user --mount), which this system refuses: ${(r.stderr || String(r.error)).trim()}. `
      + 'Allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces above 0; in a container, a seccomp and AppArmor profile that permits them), or run the tests as root.');
  }
});

/**
 * Starts the appliance (testEnv plus `extra`) with its data dir on a fresh tmpfs of `mib` MiB
 * (see the header); returns it and its data dir's path as this process reaches it.
 */
async function onSmallFileSystem(mib: number, extra: Record<string, string> = {}): Promise<{ a: SpawnedAppliance; dir: string }> {
  const dir = mountPoint();
  if (asRoot) {
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', tmpfsOptions(mib), 'tmpfs', dir], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`could not mount a tmpfs for the appliance's data dir: ${r.stderr || r.error}`);
    return { a: await startSpawned(dir, extra), dir };
  }
  // unshare and sh each exec what follows: the child's pid is the appliance's.
  const a = await startSpawned(dir, extra, inOwnTmpfs(mib, dir));
  return { a, dir: path.join('/proc', String(a.child.pid), 'root', dir) };
}

/** Writes zeros into `dir/fill` until the file system is full; returns the file to remove to free it. */
function fill(dir: string): string {
  const file = path.join(dir, 'fill');
  const fd = fs.openSync(file, 'w');
  const zeros = Buffer.alloc(64 * 1024);
  try {
    for (let len = zeros.length; len > 0; ) {
      try {
        fs.writeSync(fd, zeros, 0, len);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
        len >>= 1; // the last few pages, then not a byte more
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return file;
}

async function stats(a: SpawnedAppliance): Promise<{ delivery: { attempts: number; deferred: number; delivered: number } }> {
  return (await fetch(`http://127.0.0.1:${a.ports.http}/stats`)).json() as Promise<{ delivery: { attempts: number; deferred: number; delivered: number } }>;
}

/** Polls the admin API until `check` holds. */
async function until(what: string, a: SpawnedAppliance, check: (s: Awaited<ReturnType<typeof stats>>) => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check(await stats(a))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The appliance's log lines whose msg starts with `msg`. */
function logged(a: SpawnedAppliance, msg: string): string[] {
  return a.output().split('\n').filter((l) => l.includes(`"msg":"${msg}`));
}

test('delivery on a full disk backs off instead of spinning, logs the failure rarely, and delivers once space is back', { timeout: 120_000 }, async () => {
  // Retries at 1 s, then 2 s at most: long enough to see a spin, short enough to see the recovery.
  const { a, dir } = await onSmallFileSystem(16, { DCMX_QUEUE_RETRY_BASE: '1', DCMX_QUEUE_RETRY_MAX: '2' });
  try {
    await addUser(a.ports.ldap);
    // The first attempt fails (a file where the domain's Maildir directory goes) and is recorded for a retry.
    const blocker = path.join(dir, 'mail', 'example.org');
    fs.mkdirSync(path.dirname(blocker), { recursive: true });
    fs.writeFileSync(blocker, 'not a directory');
    const sent = await swaks(a.ports.smtp, { to: USER, subject: 'full disk delivery', body: 'waits for space' });
    assert.match(sent.replyTo('.') ?? sent.out, /^250 /);
    await until('the first attempt to be deferred', a, (s) => s.delivery.deferred >= 1);
    // Now the disk is full: the next attempt fails, and so does the queue write recording its outcome.
    const filler = fill(dir);
    await waitFor('the failed attempt in the log', () => logged(a, 'delivery failed unexpectedly').length > 0, 15_000);
    // An observation window (not a synchronisation): a spinning queue tries thousands of times in it.
    const before = (await stats(a)).delivery.attempts;
    const linesBefore = logged(a, 'delivery failed unexpectedly').length;
    await new Promise((r) => setTimeout(r, 3000));
    const tries = (await stats(a)).delivery.attempts - before;
    const lines = logged(a, 'delivery failed unexpectedly').length - linesBefore;
    assert.ok(tries <= 5, `${tries} delivery attempts in 3 s on a full disk: no back-off`);
    assert.ok(lines <= 1, `${lines} log lines in 3 s for the same failure: not rate-limited`);
    assert.equal(a.child.exitCode, null, 'the appliance is still running');
    // Space is back: the message is delivered, once.
    fs.rmSync(filler);
    fs.rmSync(blocker);
    await waitFor('the message in the Maildir', () => mailbox(dir, USER).some((m) => m.includes('full disk delivery')), 30_000);
    await until('the queue to settle', a, (s) => s.delivery.delivered >= 1);
    assert.equal(mailbox(dir, USER).filter((m) => m.includes('full disk delivery')).length, 1, 'delivered exactly once');
  } finally {
    await stopChild(a.child);
  }
});

test('a message sent while the disk is full gets 452 4.3.1 at its final dot, keeps nothing, and the session goes on', { timeout: 120_000 }, async () => {
  const { a, dir } = await onSmallFileSystem(16);
  let c: RawSmtp | undefined;
  try {
    await addUser(a.ports.ldap);
    ({ client: c } = await RawSmtp.connect(a.ports.smtp));
    assert.equal((await c.cmd('EHLO full.test')).code, 250);
    const filler = fill(dir);
    const send = async (subject: string, body: string) => {
      assert.equal((await c!.cmd('MAIL FROM:<sender@elsewhere.test>')).code, 250);
      assert.equal((await c!.cmd(`RCPT TO:<${USER}>`)).code, 250);
      assert.equal((await c!.cmd('DATA')).code, 354);
      // The whole message is on its way before the dot: the reply must come without waiting for a timeout.
      return c!.cmd(`Subject: ${subject}\r\n\r\n${body}.`, 30_000);
    };
    // 2 MB: past the inline size, so the spool file write fails part-way.
    const big = await send('big on a full disk', `${'b'.repeat(998)}\r\n`.repeat(2100));
    assert.equal(big.code, 452, big.raw);
    assert.match(big.raw, /^452 4\.3\.1 /);
    // A small message fails at the queue row instead, with the same reply.
    const small = await send('small on a full disk', 'tiny\r\n');
    assert.equal(small.code, 452, small.raw);
    assert.match(small.raw, /^452 4\.3\.1 /);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'spool')), [], 'no partial spool file is left');
    // Room again: the same session delivers.
    fs.rmSync(filler);
    const ok = await send('after the disk had room again', 'fine\r\n');
    assert.equal(ok.code, 250, ok.raw);
    await waitFor('the message in the Maildir', () => mailbox(dir, USER).some((m) => m.includes('after the disk had room again')), 15_000);
    assert.ok(!mailbox(dir, USER).some((m) => m.includes('on a full disk')), 'a refused message was delivered');
  } finally {
    await c?.quit();
    await stopChild(a.child);
  }
});
