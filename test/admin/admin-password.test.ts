/**
 * The administrator's password belongs to the directory once the entry
 * exists: a change over LDAP (ldappasswd) or a restored backup survives CLI
 * commands and restarts. Only DCMX_ADMIN_PASSWORD, the operator's setting,
 * is applied again, and only at appliance start. The password file is
 * written only when the administrator entry is created.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readyPorts, run, runDcmx, spawnAppliance as spawnOne, stopChild, tempDirs, testEnv } from '../helpers';

const newDir = tempDirs('dcmx-adminpw-');

// Every appliance a test spawns is stopped, also when an assertion fails before the test's own stop.
const children: Awaited<ReturnType<typeof spawnOne>>['child'][] = [];
after(async () => {
  for (const c of children) await stopChild(c, 'SIGKILL');
});
async function spawnAppliance(env: Record<string, string>): ReturnType<typeof spawnOne> {
  const a = await spawnOne(env);
  children.push(a.child);
  return a;
}
const ADMIN = 'cn=admin,o=internet';

/** testEnv without DCMX_ADMIN_PASSWORD: the password is generated and kept in the data dir. */
function generatedEnv(dir: string): Record<string, string> {
  const env = testEnv(dir);
  delete (env as Record<string, string | undefined>).DCMX_ADMIN_PASSWORD;
  return env;
}

async function whoami(ldapPort: number, pw: string): Promise<number> {
  return (await run('ldapwhoami', ['-x', '-H', `ldap://127.0.0.1:${ldapPort}`, '-D', ADMIN, '-w', pw])).code;
}

async function passwd(ldapPort: number, oldPw: string, newPw: string): Promise<void> {
  const r = await run('ldappasswd', ['-x', '-H', `ldap://127.0.0.1:${ldapPort}`, '-D', ADMIN, '-w', oldPw, '-s', newPw]);
  assert.equal(r.code, 0, r.stderr);
}

/** Every CLI command that opens the store, read-only and writing. */
async function cliRound(env: Record<string, string>): Promise<void> {
  for (const args of [['zone', 'list'], ['domain', 'list'], ['routes'], ['domain', 'add', 'example.org'], ['ldif', 'export']]) {
    const r = await runDcmx(env, args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /generated/, `${args.join(' ')} generates nothing`);
  }
}

test('a password changed over LDAP survives every CLI command and restarts (generated password)', async () => {
  const dir = newDir();
  const env = generatedEnv(dir);
  const first = await spawnAppliance(env);
  const file = path.join(dir, 'admin-password');
  const generated = fs.readFileSync(file, 'utf8');
  const port1 = readyPorts(first.ready).ldap;
  await passwd(port1, generated.trim(), 'changed-over-ldap-1');
  await cliRound(env);
  assert.equal(await whoami(port1, 'changed-over-ldap-1'), 0, 'the CLI left the password alone');
  assert.equal(await stopChild(first.child), 0);

  const second = await spawnAppliance(env);
  const port2 = readyPorts(second.ready).ldap;
  assert.equal(await whoami(port2, 'changed-over-ldap-1'), 0, 'a restart left the password alone');
  assert.equal(await whoami(port2, generated.trim()), 49, 'the generated one no longer works');
  assert.equal(fs.readFileSync(file, 'utf8'), generated, 'the kept file is not rewritten');
  assert.doesNotMatch(second.output(), /generated/);
  assert.equal(await stopChild(second.child), 0);
});

test('DCMX_ADMIN_PASSWORD is applied at every appliance start, never by the CLI', async () => {
  const dir = newDir();
  const env = testEnv(dir);
  const first = await spawnAppliance(env);
  const port1 = readyPorts(first.ready).ldap;
  await passwd(port1, env.DCMX_ADMIN_PASSWORD, 'changed-over-ldap-2');
  await cliRound(env);
  assert.equal(await whoami(port1, 'changed-over-ldap-2'), 0, 'the CLI does not apply DCMX_ADMIN_PASSWORD');
  assert.equal(await stopChild(first.child), 0);
  assert.ok(!fs.existsSync(path.join(dir, 'admin-password')), 'a configured password is not written to the data dir');

  const second = await spawnAppliance(env);
  const port2 = readyPorts(second.ready).ldap;
  assert.equal(await whoami(port2, env.DCMX_ADMIN_PASSWORD), 0, 'the operator\'s setting is applied at start');
  assert.equal(await whoami(port2, 'changed-over-ldap-2'), 49);
  assert.equal(await stopChild(second.child), 0);
});

test('a restored LDIF backup keeps its administrator password; nothing is generated', async () => {
  // The backup: a store whose administrator has a password of its own.
  const src = newDir();
  const made = await runDcmx(testEnv(src, { DCMX_ADMIN_PASSWORD: 'backed-up-pw-3' }), ['domain', 'add', 'example.org']);
  assert.equal(made.code, 0, made.stderr);
  const backup = await runDcmx(testEnv(src), ['ldif', 'export']);
  assert.equal(backup.code, 0, backup.stderr);
  const file = path.join(newDir(), 'backup.ldif');
  fs.writeFileSync(file, backup.stdout);

  const dir = newDir();
  const env = generatedEnv(dir);
  const imp = await runDcmx(env, ['ldif', 'import', file]);
  assert.equal(imp.code, 0, imp.stderr);
  await cliRound(env);
  assert.ok(!fs.existsSync(path.join(dir, 'admin-password')), 'no password generated for an existing administrator');
  const a = await spawnAppliance(env);
  assert.doesNotMatch(a.output(), /generated/);
  assert.ok(!fs.existsSync(path.join(dir, 'admin-password')));
  assert.equal(await whoami(readyPorts(a.ready).ldap, 'backed-up-pw-3'), 0, 'the restored password works');
  assert.equal(await stopChild(a.child), 0);
});

test('the CLI on an empty data dir creates the administrator with a generated password, kept 0600', async () => {
  const dir = newDir();
  const env = generatedEnv(dir);
  const r = await runDcmx(env, ['domain', 'list']);
  assert.equal(r.code, 0, r.stderr);
  const file = path.join(dir, 'admin-password');
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  const pw = fs.readFileSync(file, 'utf8').trim();
  assert.ok(r.stderr.includes(pw), 'announced once');
  const a = await spawnAppliance(env);
  assert.ok(!a.output().includes(pw), 'not announced again');
  assert.equal(await whoami(readyPorts(a.ready).ldap, pw), 0);
  assert.equal(await stopChild(a.child), 0);
});

test('ldif import on an empty data dir creates the suffix and the administrator first, then imports below them', async () => {
  const dir = newDir();
  const env = generatedEnv(dir);
  const file = path.join(newDir(), 'tree.ldif');
  fs.writeFileSync(file, 'dn: dc=com,o=internet\nobjectClass: domain\ndc: com\n\ndn: dc=example,dc=com,o=internet\nobjectClass: domain\ndc: example\n');
  const imp = await runDcmx(env, ['ldif', 'import', file]);
  assert.equal(imp.code, 0, imp.stderr);
  assert.match(imp.stderr, /imported 2 records/);
  const pw = fs.readFileSync(path.join(dir, 'admin-password'), 'utf8').trim();
  assert.ok(imp.stderr.includes(pw), 'the generated password is announced, as on first boot');
  const exp = await runDcmx(env, ['ldif', 'export']);
  assert.equal(exp.code, 0, exp.stderr);
  assert.deepEqual([...exp.stdout.matchAll(/^dn: (.*)$/gm)].map((m) => m[1]),
    ['o=internet', 'cn=admin,o=internet', 'dc=com,o=internet', 'dc=example,dc=com,o=internet']);
  const a = await spawnAppliance(env);
  assert.equal(await whoami(readyPorts(a.ready).ldap, pw), 0);
  assert.equal(await stopChild(a.child), 0);
});

test('every command on an empty data dir initialises it as first boot does', async () => {
  for (const args of [['zone', 'list'], ['routes'], ['ldif', 'export']]) {
    const dir = newDir();
    const r = await runDcmx(testEnv(dir), args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    const exp = await runDcmx(testEnv(dir), ['ldif', 'export', '--no-operational']);
    assert.match(exp.stdout, /^dn: cn=admin,o=internet$/m, `${args.join(' ')} created the administrator`);
  }
});
