/**
 * Everything the appliance and the CLI write to the data dir is private to
 * their user (umask 077): the store and its WAL (password hashes), the
 * password file, the TLS key, the spool and the Maildirs. A store left wider
 * by an earlier version is narrowed to 0600 at start, and a data dir open to
 * others is logged.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readyPorts, runDcmx, spawnAppliance, stopChild, tempDirs, testEnv } from './helpers';
import { addUser, mailbox, swaks, USER, waitFor } from './mta/fixture';

const newDir = tempDirs('dcmx-modes-');

/** Every path under `root` (itself included) whose mode lets group or others in, with its mode. */
function openToOthers(root: string): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    const st = fs.lstatSync(p);
    if (st.mode & 0o077) out.push(`${path.relative(root, p) || '.'} ${(st.mode & 0o777).toString(8)}`);
    if (st.isDirectory()) for (const n of fs.readdirSync(p)) walk(path.join(p, n));
  };
  walk(root);
  return out;
}

test('a fresh start and a delivery leave nothing readable by others', async () => {
  const dir = path.join(newDir(), 'data'); // created by the appliance
  const a = await spawnAppliance(testEnv(dir));
  try {
    await addUser(readyPorts(a.ready).ldap);
    const sw = await swaks(readyPorts(a.ready).smtp, { to: USER, subject: 'modes', body: 'private' });
    assert.equal(sw.code, 0, sw.out);
    await waitFor('the delivery', () => mailbox(dir, USER).length === 1);
    for (const f of ['dcmx.sqlite', 'dcmx.sqlite-wal', 'dcmx.sqlite-shm', 'tls/smtp-key.pem', 'spool', 'mail']) {
      assert.ok(fs.existsSync(path.join(dir, f)), `${f} was made`);
    }
    assert.deepEqual(openToOthers(dir), []);
  } finally {
    await stopChild(a.child);
  }
  assert.deepEqual(openToOthers(dir), [], 'after shutdown too');
});

test('the CLI on an empty data dir creates private files; a wider existing store is narrowed at start', async () => {
  const dir = path.join(newDir(), 'data');
  const env = testEnv(dir);
  delete (env as Record<string, string | undefined>).DCMX_ADMIN_PASSWORD;
  const r = await runDcmx(env, ['domain', 'add', 'example.org']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(fs.existsSync(path.join(dir, 'admin-password')));
  assert.deepEqual(openToOthers(dir), []);

  // A deployment made before the umask: world-readable store, open data dir.
  fs.chmodSync(dir, 0o755);
  for (const f of fs.readdirSync(dir)) if (f.startsWith('dcmx.sqlite')) fs.chmodSync(path.join(dir, f), 0o644);
  const a = await spawnAppliance(env);
  try {
    for (const f of fs.readdirSync(dir).filter((n) => n.startsWith('dcmx.sqlite'))) {
      assert.equal(fs.statSync(path.join(dir, f)).mode & 0o777, 0o600, f);
    }
    await waitFor('the warning about the data dir', () => /data dir is open to other users/.test(a.output()), 5000);
    assert.match(a.output(), /"mode":"755"/);
  } finally {
    await stopChild(a.child);
  }
});
