/**
 * The process as an operator runs it: the ready line, configuration errors
 * that name the variable, the generated admin password, clean shutdown on
 * SIGTERM, and durability across kill -9.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { readyPorts, run, spawnAppliance, tempDir, testEnv } from './helpers';

const MAIN = path.resolve(__dirname, '..', 'server', 'main.js');

function runMain(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN], { env: { ...process.env, ...env } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

test('a bad value stops start-up with a message naming the variable', async () => {
  const dir = tempDir();
  for (const [name, value] of [
    ['DCMX_LDAP_PORT', '70000'], ['DCMX_LISTEN', 'not-an-ip'], ['DCMX_SUFFIX', 'garbage'], ['DCMX_PROVISIONING', 'open'],
    ['DCMX_AXFR_ALLOW', '10.0.0.0/99'], ['DCMX_UPSTREAM_DNS', '127.0.0.1:abc'], ['DCMX_HOSTNAME', 'bad host!'],
  ]) {
    const r = await runMain({ ...testEnv(dir), [name]: value });
    assert.equal(r.code, 2, `${name}=${value} should stop start-up`);
    assert.match(r.out, new RegExp(name), `the message names ${name}`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test('first boot generates the admin password once, 0600, and it works; ready line and SIGTERM', async () => {
  const dir = tempDir();
  const env = testEnv(dir);
  delete (env as Record<string, string | undefined>).DCMX_ADMIN_PASSWORD;
  const first = await spawnAppliance(env);
  const file = path.join(dir, 'admin-password');
  const st = fs.statSync(file);
  assert.equal(st.mode & 0o777, 0o600);
  const pw = fs.readFileSync(file, 'utf8').trim();
  assert.ok(first.output().includes(pw), 'printed once on first boot');
  const ports = readyPorts(first.ready);
  assert.ok(ports.ldap > 0 && ports.http > 0, first.ready);
  const who = await run('ldapwhoami', ['-x', '-H', `ldap://127.0.0.1:${ports.ldap}`, '-D', 'cn=admin,o=internet', '-w', pw]);
  assert.equal(who.code, 0, who.stderr);
  const exited = new Promise<number | null>((r) => first.child.once('exit', (c) => r(c)));
  first.child.kill('SIGTERM');
  assert.equal(await exited, 0, 'clean shutdown');

  const second = await spawnAppliance(env);
  assert.ok(!second.output().includes(pw), 'not printed again');
  const ex2 = new Promise<number | null>((r) => second.child.once('exit', (c) => r(c)));
  second.child.kill('SIGINT');
  assert.equal(await ex2, 0);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('data written before kill -9 is there after restart', async () => {
  const dir = tempDir();
  const env = testEnv(dir);
  const a = await spawnAppliance(env);
  const url = `ldap://127.0.0.1:${readyPorts(a.ready).ldap}`;
  const auth = ['-x', '-H', url, '-D', 'cn=admin,o=internet', '-w', env.DCMX_ADMIN_PASSWORD];
  const entries = Array.from({ length: 50 }, (_, i) => `dn: dc=d${i},o=internet\nobjectClass: domain\ndc: d${i}\n`).join('\n');
  const add = await run('ldapadd', auth, entries);
  assert.equal(add.code, 0, add.stderr);
  const killed = new Promise((r) => a.child.once('exit', r));
  a.child.kill('SIGKILL');
  await killed;
  const b = await spawnAppliance(env);
  const url2 = `ldap://127.0.0.1:${readyPorts(b.ready).ldap}`;
  const s = await run('ldapsearch', ['-x', '-H', url2, '-D', 'cn=admin,o=internet', '-w', env.DCMX_ADMIN_PASSWORD, '-LLL', '-b', 'o=internet', '-s', 'one', '(dc=d*)', 'dc']);
  assert.equal((s.stdout.match(/^dn: /gm) ?? []).length, 50);
  const done = new Promise((r) => b.child.once('exit', r));
  b.child.kill('SIGTERM');
  await done;
  fs.rmSync(dir, { recursive: true, force: true });
});
