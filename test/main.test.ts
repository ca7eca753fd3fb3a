/**
 * The process as an operator runs it: the ready line, configuration errors
 * that name the variable (also a port in use, a data dir that cannot be
 * written, TLS files that are not a PEM pair), the generated admin password, clean shutdown on
 * SIGTERM, and durability across kill -9.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import * as net from 'node:net';
import * as dgram from 'node:dgram';
import { spawn } from 'node:child_process';
import { ADMIN_PASSWORD, readyPorts, run, spawnAppliance, stopChild, tempDirs, testEnv } from './helpers';
import { track } from './fixtures/children';

const selfsigned = require('selfsigned') as { generate(attrs: { name: string; value: string }[], opts?: object): Promise<{ private: string; cert: string }> };

/** Temporary directories, every one removed after this file's tests whatever their outcome. */
const tempDir = tempDirs('dcmx-main-');

const MAIN = path.resolve(__dirname, '..', 'server', 'main.js');

interface MainResult {
  code: number | null;
  /** stdout and stderr interleaved. */
  out: string;
  stderr: string;
}

function runMain(env: Record<string, string>, opts: { uid?: number } = {}): Promise<MainResult> {
  return new Promise((resolve) => {
    const ids = opts.uid === undefined ? {} : { uid: opts.uid, gid: opts.uid };
    const child = track(spawn(process.execPath, [MAIN], { env: { ...process.env, ...env }, cwd: os.tmpdir(), ...ids }));
    let out = '';
    let stderr = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => {
      out += d;
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out, stderr });
    });
  });
}

/** Start-up stopped with exit 2 and ONE line naming `name` (log lines aside), without a stack trace. */
function assertStopped(r: MainResult, name: string, what: string): void {
  assert.equal(r.code, 2, `${what} should stop start-up (exit 2); got ${r.code}:\n${r.out}`);
  const lines = r.stderr.split('\n').filter((l) => l && !l.startsWith('{'));
  assert.equal(lines.length, 1, `one line on stderr for ${what}:\n${r.stderr}`);
  assert.match(lines[0], new RegExp(`^dcmx: bad configuration: ${name}: `), what);
  assert.doesNotMatch(r.out, /^\s+at /m, `no stack trace for ${what}`);
  assert.doesNotMatch(r.out, /dcmx ready/);
}

test('a bad value stops start-up with a message naming the variable', async () => {
  const dir = tempDir();
  for (const [name, value] of [
    ['DCMX_LDAP_PORT', '70000'], ['DCMX_LISTEN', 'not-an-ip'], ['DCMX_SUFFIX', 'garbage'], ['DCMX_PROVISIONING', 'open'],
    ['DCMX_AXFR_ALLOW', '10.0.0.0/99'], ['DCMX_UPSTREAM_DNS', '127.0.0.1:abc'], ['DCMX_HOSTNAME', 'bad host!'],
    ['DCMX_THREADS', '0'], ['DCMX_THREADS', '257'], ['DCMX_THREADS', 'two'],
  ]) {
    const r = await runMain({ ...testEnv(dir), [name]: value });
    assert.equal(r.code, 2, `${name}=${value} should stop start-up`);
    assert.match(r.out, new RegExp(name), `the message names ${name}`);
  }
});

test('every setting that stops start-up names its variable, before anything is generated', async () => {
  const dir = tempDir();
  const files = tempDir();
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'mx.dcmx.test' }], { keySize: 2048 });
  const other = await selfsigned.generate([{ name: 'commonName', value: 'mx.dcmx.test' }], { keySize: 2048 });
  const cert = path.join(files, 'cert.pem');
  const key = path.join(files, 'key.pem');
  const otherKey = path.join(files, 'other-key.pem');
  const notPem = path.join(files, 'not-pem');
  fs.writeFileSync(cert, pems.cert);
  fs.writeFileSync(key, pems.private);
  fs.writeFileSync(otherKey, other.private);
  fs.writeFileSync(notPem, 'hello\n');
  const cases: [string, Record<string, string>][] = [
    ['DCMX_LOG_LEVEL', { DCMX_LOG_LEVEL: 'verbose' }],
    ['DCMX_HTTPS_PORT', { DCMX_HTTPS_PORT: '70000' }],
    ['DCMX_ADMIN_DN', { DCMX_ADMIN_DN: 'cn=admin,o=elsewhere' }],
    ['DCMX_ADMIN_DN', { DCMX_ADMIN_DN: 'uid=admin,o=internet' }],
    ['DCMX_ADMIN_DN', { DCMX_ADMIN_DN: 'o=internet' }],
    ['DCMX_ADMIN_DN', { DCMX_ADMIN_DN: 'cn=admin,ou=nowhere,o=internet' }], // below the suffix, parent missing on first boot
    ['DCMX_SUFFIX', { DCMX_SUFFIX: 'cn=admins' }],
    ['DCMX_SUFFIX', { DCMX_SUFFIX: 'frob=x' }],
    ['DCMX_LDAP_INDEXES', { DCMX_LDAP_INDEXES: 'mail,noSuchAttribute' }],
    ['DCMX_REPLICATOR_DNS', { DCMX_REPLICATOR_DNS: 'uid=replica,o=elsewhere' }],
    ['DCMX_REPLICATOR_DNS', { DCMX_REPLICATOR_DNS: 'uid=replica,o=internet;not a dn' }],
    ['DCMX_UNIT_DNS', { DCMX_UNIT_DNS: 'uid=unit,o=elsewhere' }],
    ['DCMX_UNIT_DNS', { DCMX_UNIT_DNS: 'uid=unit,ou=services,o=internet;not a dn' }],
    ['DCMX_LDAP_SYNC_BACKLOG', { DCMX_LDAP_SYNC_BACKLOG: '1000' }],
    ['DCMX_MAIL_GROUP', { DCMX_MAIL_GROUP: 'no-such-group-here' }],
    ['DCMX_MAIL_GROUP', { DCMX_MAIL_GROUP: 'bad group!' }],
    ['DCMX_MAIL_GROUP', { DCMX_MAIL_GROUP: '99999999999' }],
    ['DCMX_TLS_CERT', { DCMX_TLS_CERT: path.join(files, 'missing.pem'), DCMX_TLS_KEY: key }],
    ['DCMX_TLS_CERT', { DCMX_TLS_CERT: notPem, DCMX_TLS_KEY: key }],
    ['DCMX_TLS_KEY', { DCMX_TLS_CERT: cert, DCMX_TLS_KEY: notPem }],
    ['DCMX_TLS_KEY', { DCMX_TLS_CERT: cert, DCMX_TLS_KEY: cert }],
    ['DCMX_TLS_KEY', { DCMX_TLS_CERT: cert, DCMX_TLS_KEY: otherKey }],
    ['DCMX_TLS_KEY', { DCMX_TLS_CERT: cert }],
    ['DCMX_TLS_CERT', { DCMX_TLS_KEY: key }],
    ['DCMX_DATA_DIR', { DCMX_DATA_DIR: '/proc/nope' }], // a recursive mkdir loops forever there
    ['DCMX_DATA_DIR', { DCMX_DATA_DIR: '/proc' }], // exists, not writable, even for root
    ['DCMX_DATA_DIR', { DCMX_DATA_DIR: notPem }],
    ['DCMX_DATA_DIR', { DCMX_DATA_DIR: path.join(notPem, 'data') }],
    // A remote transfer unit (DCMX_ROLE=mta) and its directory.
    ['DCMX_ROLE', { DCMX_ROLE: 'relay' }],
    ['DCMX_DIRECTORY_URL', { DCMX_ROLE: 'mta' }],
    ['DCMX_DIRECTORY_URL', { DCMX_ROLE: 'mta', DCMX_DIRECTORY_URL: 'http://127.0.0.1:1389' }],
    ['DCMX_DIRECTORY_URL', { DCMX_ROLE: 'mta', DCMX_DIRECTORY_URL: 'ldap//127.0.0.1' }],
    ['DCMX_DIRECTORY_URL', { DCMX_DIRECTORY_URL: 'ldap://127.0.0.1:1389' }], // the appliance is the directory
    ['DCMX_DIRECTORY_BIND_DN', { DCMX_ROLE: 'mta', DCMX_DIRECTORY_URL: 'ldap://127.0.0.1:1389', DCMX_DIRECTORY_BIND_DN: 'not a dn', DCMX_DIRECTORY_PASSWORD: 'x' }],
    ['DCMX_DIRECTORY_PASSWORD', { DCMX_ROLE: 'mta', DCMX_DIRECTORY_URL: 'ldap://127.0.0.1:1389', DCMX_DIRECTORY_BIND_DN: 'cn=admin,o=internet' }],
    ['DCMX_DIRECTORY_STARTTLS', { DCMX_ROLE: 'mta', DCMX_DIRECTORY_URL: 'ldap://127.0.0.1:1389', DCMX_DIRECTORY_STARTTLS: 'maybe' }],
    ['DCMX_DIRECTORY_STARTTLS', { DCMX_ROLE: 'mta', DCMX_DIRECTORY_URL: 'ldaps://127.0.0.1:1636', DCMX_DIRECTORY_STARTTLS: 'on' }],
    ['DCMX_DIRECTORY_CA', { DCMX_ROLE: 'mta', DCMX_DIRECTORY_URL: 'ldaps://127.0.0.1:1636', DCMX_DIRECTORY_CA: notPem }],
    ['DCMX_DIRECTORY_HOST', { DCMX_ROLE: 'mta', DCMX_DIRECTORY_URL: 'ldap://127.0.0.1:1389', DCMX_DIRECTORY_HOST: 'bad host!' }],
    // Last: it gets past the configuration (the admin password is generated) before the listen fails.
    ['DCMX_LISTEN', { DCMX_LISTEN: '192.0.2.1' }], // TEST-NET-1: an address this host does not have (EADDRNOTAVAIL)
  ];
  for (const [name, extra] of cases) {
    const env = { ...testEnv(dir), ...extra };
    delete (env as Record<string, string | undefined>).DCMX_ADMIN_PASSWORD;
    const what = JSON.stringify(extra);
    const r = await runMain(env);
    assertStopped(r, name, what);
    if (name !== 'DCMX_LISTEN') {
      assert.doesNotMatch(r.out, /generated/, `no password generated for ${what}`);
      assert.ok(!fs.existsSync(path.join(dir, 'admin-password')), `no password written for ${what}`);
    }
  }
});

test('an existing data dir that is not writable names DCMX_DATA_DIR', async () => {
  const dir = tempDir();
  // Root writes anywhere: then the appliance runs as nobody over a root-owned 0755 dir.
  const asRoot = process.getuid?.() === 0;
  fs.chmodSync(dir, asRoot ? 0o755 : 0o500);
  const env = testEnv(dir);
  delete (env as Record<string, string | undefined>).DCMX_ADMIN_PASSWORD;
  const r = await runMain(env, asRoot ? { uid: 65534 } : {});
  fs.chmodSync(dir, 0o700);
  assertStopped(r, 'DCMX_DATA_DIR', 'a read-only data dir');
  assert.match(r.stderr, /is not writable/);
  assert.deepEqual(fs.readdirSync(dir), [], 'nothing written');
});

test('a port in use names its variable', async () => {
  const dir = tempDir();
  const busy = net.createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  const port = (busy.address() as net.AddressInfo).port;
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
  const udpPort = udp.address().port;
  try {
    for (const name of ['DCMX_LDAP_PORT', 'DCMX_DNS_PORT', 'DCMX_SMTP_PORT', 'DCMX_HTTP_PORT', 'DCMX_HTTPS_PORT']) {
      const r = await runMain({ ...testEnv(dir), [name]: String(port) });
      assertStopped(r, name, `${name} in use`);
      assert.match(r.stderr, new RegExp(`^dcmx: bad configuration: ${name}: 127\\.0\\.0\\.1:${port} is already in use$`, 'm'));
    }
    // DNS binds TCP and UDP on one port: the UDP half in use counts too.
    const r = await runMain({ ...testEnv(dir), DCMX_DNS_PORT: String(udpPort) });
    assertStopped(r, 'DCMX_DNS_PORT', 'DNS UDP port in use');
  } finally {
    busy.close();
    udp.close();
  }
});

test('a suffix with an escaped comma (RFC 4514) is accepted', async () => {
  const dir = tempDir();
  const a = await spawnAppliance(testEnv(dir, { DCMX_SUFFIX: 'o=a\\,b' }));
  try {
    const who = await run('ldapwhoami', ['-x', '-H', `ldap://127.0.0.1:${readyPorts(a.ready).ldap}`, '-D', 'cn=admin,o=a\\,b', '-w', ADMIN_PASSWORD]);
    assert.equal(who.code, 0, who.stderr);
  } finally {
    assert.equal(await stopChild(a.child), 0);
  }
});

test('first boot generates the admin password once, 0600, and it works; ready line and SIGTERM', async () => {
  const dir = tempDir();
  const env = testEnv(dir);
  delete (env as Record<string, string | undefined>).DCMX_ADMIN_PASSWORD;
  let first: Awaited<ReturnType<typeof spawnAppliance>> | undefined;
  let second: Awaited<ReturnType<typeof spawnAppliance>> | undefined;
  try {
    first = await spawnAppliance(env);
    const file = path.join(dir, 'admin-password');
    const st = fs.statSync(file);
    assert.equal(st.mode & 0o777, 0o600);
    const pw = fs.readFileSync(file, 'utf8').trim();
    assert.ok(first.output().includes(pw), 'printed once on first boot');
    const ports = readyPorts(first.ready);
    assert.ok(ports.ldap > 0 && ports.http > 0, first.ready);
    // testEnv leaves DCMX_THREADS to its default: the cores this process may use.
    assert.match(first.ready, new RegExp(`\\bthreads=${os.availableParallelism()}\\b`), 'the serving threads on the ready line');
    const who = await run('ldapwhoami', ['-x', '-H', `ldap://127.0.0.1:${ports.ldap}`, '-D', 'cn=admin,o=internet', '-w', pw]);
    assert.equal(who.code, 0, who.stderr);
    assert.equal(await stopChild(first.child, 'SIGTERM'), 0, 'clean shutdown');

    second = await spawnAppliance(env);
    assert.ok(!second.output().includes(pw), 'not printed again');
    assert.equal(await stopChild(second.child, 'SIGINT'), 0);
  } finally {
    for (const a of [first, second]) if (a) await stopChild(a.child, 'SIGKILL');
  }
});

test('data written before kill -9 is there after restart', async () => {
  const dir = tempDir();
  const env = testEnv(dir);
  let a: Awaited<ReturnType<typeof spawnAppliance>> | undefined;
  let b: Awaited<ReturnType<typeof spawnAppliance>> | undefined;
  try {
    a = await spawnAppliance(env);
    const url = `ldap://127.0.0.1:${readyPorts(a.ready).ldap}`;
    const auth = ['-x', '-H', url, '-D', 'cn=admin,o=internet', '-w', env.DCMX_ADMIN_PASSWORD];
    const entries = Array.from({ length: 50 }, (_, i) => `dn: dc=d${i},o=internet\nobjectClass: domain\ndc: d${i}\n`).join('\n');
    const add = await run('ldapadd', auth, entries);
    assert.equal(add.code, 0, add.stderr);
    await stopChild(a.child, 'SIGKILL');
    b = await spawnAppliance(env);
    const url2 = `ldap://127.0.0.1:${readyPorts(b.ready).ldap}`;
    const s = await run('ldapsearch', ['-x', '-H', url2, '-D', 'cn=admin,o=internet', '-w', env.DCMX_ADMIN_PASSWORD, '-LLL', '-b', 'o=internet', '-s', 'one', '(dc=d*)', 'dc']);
    assert.equal((s.stdout.match(/^dn: /gm) ?? []).length, 50);
  } finally {
    for (const c of [a, b]) if (c) await stopChild(c.child);
  }
});
