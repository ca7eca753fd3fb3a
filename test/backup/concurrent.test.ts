/**
 * `dcmx backup`, `dcmx restore` and `dcmx verify` at the same time, over
 * the real commands, beside an appliance taking mail: two backups of it into
 * different DESTs, while a restore writes another data dir and verify
 * checks the live one. Each ends as it would alone (exit 0, complete
 * manifests that verify 0), and the appliance goes on answering.
 * Needs: swaks.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runDcmx, startSpawned, stopChild, tempDirs, testEnv, type SpawnedAppliance } from '../helpers';
import { addUser, swaks, USER } from '../mta/fixture';
import { readManifest } from '../../server/backup/manifest';

const newDir = tempDirs('dcmx-concurrent-');
let a: SpawnedAppliance;
let data = '';

before(async () => {
  data = newDir();
  a = await startSpawned(data);
  await addUser(a.ports.ldap);
});

after(async () => {
  if (a) await stopChild(a.child);
});

test('two backups at once, a restore elsewhere and verify of the live data dir, while SMTP mail goes on', async () => {
  // A backup to restore from, made first.
  const first = path.join(newDir(), 'first');
  const f = await runDcmx(testEnv(data), ['backup', first]);
  assert.equal(f.code, 0, f.stderr);
  let sending = true;
  let sent = 0;
  const mail = (async () => {
    while (sending) {
      const r = await swaks(a.ports.smtp, { to: USER, subject: `load ${sent}` });
      assert.equal(r.code, 0, r.out);
      sent++;
    }
  })();
  const dests = [path.join(newDir(), 'b1'), path.join(newDir(), 'b2')];
  const restored = path.join(newDir(), 'restored');
  const [b1, b2, r, v] = await Promise.all([
    runDcmx(testEnv(data), ['backup', dests[0]], 120_000),
    runDcmx(testEnv(data), ['backup', dests[1]], 120_000),
    runDcmx(testEnv(restored), ['restore', first], 120_000),
    runDcmx(testEnv(data), ['verify'], 120_000),
  ]);
  sending = false;
  await mail;
  assert.equal(b1.code, 0, b1.stderr);
  assert.equal(b2.code, 0, b2.stderr);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(v.code, 0, `verify of the live data dir under load: ${v.stdout}${v.stderr}`);
  assert.ok(sent > 0, 'mail went on during the commands');
  for (const d of dests) {
    await readManifest(d);
    const check = await runDcmx(testEnv(data), ['verify', d]);
    assert.equal(check.code, 0, `${d}: ${check.stdout}${check.stderr}`);
  }
  const vr = await runDcmx(testEnv(restored), ['verify']);
  assert.equal(vr.code, 0, vr.stdout + vr.stderr);
  // Nothing of one command in another's tree.
  assert.deepEqual(fs.readdirSync(path.dirname(restored)), ['restored']);
  const last = await swaks(a.ports.smtp, { to: USER, subject: 'after' });
  assert.equal(last.code, 0, last.out);
});
