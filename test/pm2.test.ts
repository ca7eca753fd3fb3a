/**
 * The operator's boot and reload under pm2, from ecosystem.config.js.
 * - Start: pm2 waits for the appliance's ready signal (wait_ready), and the
 *   endpoints answer. The appliance runs on a Node.js 24 or newer (in pm2's
 *   cluster mode, the one pm2's daemon runs on).
 * - Reload: `pm2 reload dcmx` under continuous SMTP and LDAP load refuses no
 *   connection and fails no session, every message answered 250 is
 *   delivered exactly once, and the new process owns the data dir after.
 *   It runs in a network namespace of its own (inNetns) with
 *   net.ipv4.tcp_migrate_req set to 1, as README's "Reloading under pm2" asks
 *   of the host: with it at 0 (the kernel's default) the connections queued
 *   on the old process's listeners when it closes them are reset, which a
 *   reload under this load does hit now and then.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFile, spawnSync } from 'node:child_process';
import nodemailer from 'nodemailer';
import { ADMIN_PASSWORD, ldapaddAt, run, tempDir, testEnv } from './helpers';
import { atExit, track } from './fixtures/children';
import { waitFor } from './fixtures/wait';
import { freeDualPort } from './dns/knot';
import { USER, USER_LDIF, allMail, swaks } from './mta/fixture';

const ROOT = path.resolve(__dirname, '..', '..');
// pm2's own script, run on this Node (npm test's): so does pm2's daemon, and the app in cluster mode.
const PM2 = path.join(ROOT, 'node_modules', 'pm2', 'bin', 'pm2');

interface Pm2App {
  name: string;
  pid: number;
  pm2_env: { status: string; restart_time: number; node_args?: string[] };
}

/** A pm2 of its own (PM2_HOME in a temp dir) for `env`; `pm2 kill` and the dirs removed after `body`, whatever happens. */
async function withPm2(env: Record<string, string>, body: (pm2: (...args: string[]) => Promise<{ code: number; out: string }>, home: string) => Promise<void>): Promise<void> {
  const home = tempDir('dcmx-pm2-');
  const penv = { ...process.env, ...env, PM2_HOME: home };
  const pm2 = (...args: string[]) => new Promise<{ code: number; out: string }>((resolve) => {
    track(execFile(process.execPath, [PM2, ...args], { env: penv, cwd: ROOT, timeout: 60_000, encoding: 'utf8' }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: stdout + stderr })));
  });
  // pm2's daemon, and the appliance under it, are not our children: should this process end first, stop them.
  const forget = atExit(() => spawnSync(process.execPath, [PM2, 'kill'], { env: penv, cwd: ROOT, timeout: 30_000, stdio: 'ignore' }));
  try {
    await body(pm2, home);
  } finally {
    // pm2 kill returns before its daemon has written its last log line: wait for the daemon to be gone, or
    // that line would make PM2_HOME again after it was removed.
    const daemon = fs.existsSync(path.join(home, 'pm2.pid')) ? Number(fs.readFileSync(path.join(home, 'pm2.pid'), 'utf8')) : 0;
    await pm2('kill');
    forget();
    if (daemon) await waitFor('pm2\'s daemon to end', () => !alive(daemon), 30_000);
    fs.rmSync(home, { recursive: true, force: true });
    fs.rmSync(env.DCMX_DATA_DIR, { recursive: true, force: true });
  }
}

/** Whether process `pid` still runs. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function dcmxApp(pm2: (...args: string[]) => Promise<{ code: number; out: string }>): Promise<Pm2App | undefined> {
  const list = await pm2('jlist');
  const apps = JSON.parse(list.out.slice(list.out.indexOf('['))) as Pm2App[];
  return apps.find((a) => a.name === 'dcmx');
}

/** The `dcmx ready` lines in pm2's out log, in order. */
function readyLines(home: string): string[] {
  const logs = path.join(home, 'logs');
  return fs.readdirSync(logs).filter((f) => f.startsWith('dcmx-out')).flatMap((f) => fs.readFileSync(path.join(logs, f), 'utf8').split('\n'))
    .filter((l) => l.includes('dcmx ready'));
}

test('pm2 boots the appliance and waits for it to be ready', async () => {
  const dataDir = tempDir();
  await withPm2(testEnv(dataDir), async (pm2, home) => {
    const start = await pm2('start', 'ecosystem.config.js', '--update-env');
    assert.equal(start.code, 0, start.out);
    const app = await dcmxApp(pm2);
    assert.equal(app?.pm2_env.status, 'online');
    // The appliance runs on a Node.js 24 or newer.
    const exe = fs.realpathSync(`/proc/${app!.pid}/exe`);
    const version = spawnSync(exe, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
    assert.ok(Number(version.split('.')[0]) >= 24, `the appliance runs on Node.js ${version}`);
    // ecosystem.config.js's node_args, V8's young generation capped (README, "Memory"), are the ones pm2 starts the
    // appliance with (its cluster mode passes them as execArgv; the process's title hides them from /proc/PID/cmdline).
    assert.deepEqual(app?.pm2_env.node_args, ['--max-semi-space-size=8']);
    // pm2 waited for process.send('ready'): the ready line is already in its log, with the bound ports.
    const ready = readyLines(home)[0];
    assert.ok(ready, 'ready line logged');
    assert.ok(ready.includes(`data=${dataDir}`), 'the environment pm2 was started from applies');
    const ldap = Number(/ldap=(\d+)/.exec(ready)![1]);
    const who = await run('ldapwhoami', ['-x', '-H', `ldap://127.0.0.1:${ldap}`, '-D', 'cn=admin,o=internet', '-w', ADMIN_PASSWORD]);
    assert.equal(who.code, 0, who.stderr);
  });
});

const USER_DN = 'uid=user,ou=people,dc=example,dc=org,o=internet';
const USER_PASSWORD = 'user-secret-1';

const RELOAD_TEST = 'pm2 reload under SMTP and LDAP load refuses nothing and loses or doubles no message';

/** Set in the run of this file that inNetns starts. */
const IN_NETNS = process.env.DCMX_PM2_NETNS === '1';

/**
 * Runs the test named `name` of this file in a new user and network
 * namespace (`unshare`, util-linux; root or not), on its own loopback
 * (`ip`, iproute2) with net.ipv4.tcp_migrate_req 1 — a setting of that
 * namespace only, the host's is left as it is. Asserts it passed.
 */
async function inNetns(name: string, timeoutMs: number): Promise<void> {
  const setup = 'ip link set lo up && echo 1 > /proc/sys/net/ipv4/tcp_migrate_req && DCMX_PM2_NETNS=1 exec env -u NODE_TEST_CONTEXT "$0" --test-reporter=tap --test-name-pattern="$1" "$2"';
  const r = await run('unshare', ['--user', '--map-root-user', '--net', '--', 'sh', '-c', setup, process.execPath, `^${name}$`, __filename], undefined, timeoutMs);
  const tap = r.stdout + r.stderr;
  assert.equal(r.code, 0, tap);
  assert.match(tap, /^# pass 1$/m, `the test ran and passed in its namespace:\n${tap}`);
}

test(RELOAD_TEST, { timeout: 300_000 }, async () => {
  if (!IN_NETNS) return inNetns(RELOAD_TEST, 290_000);
  const dataDir = tempDir();
  // A reload keeps the ports: fixed ones. Two serving threads, as on a real machine.
  const [ldap, dns, smtp, http] = [await freeDualPort(), await freeDualPort(), await freeDualPort(), await freeDualPort()];
  const env = testEnv(dataDir, {
    DCMX_LDAP_PORT: String(ldap), DCMX_DNS_PORT: String(dns), DCMX_SMTP_PORT: String(smtp), DCMX_HTTP_PORT: String(http), DCMX_THREADS: '2',
  });
  await withPm2(env, async (pm2, home) => {
    const start = await pm2('start', 'ecosystem.config.js', '--update-env');
    assert.equal(start.code, 0, start.out);
    const before = await dcmxApp(pm2);
    assert.equal(before?.pm2_env.status, 'online');
    const added = await ldapaddAt(ldap, `${USER_LDIF}userPassword: ${USER_PASSWORD}\n`);
    assert.equal(added.code, 0, added.stderr);

    let loading = true;
    const accepted: string[] = [];
    const failures: string[] = [];
    let ldapOps = 0;
    // SMTP: nodemailer sessions, one connection each, in 4 concurrent sequences, and swaks in one more.
    const nodemailerLoop = async (loop: number) => {
      for (let n = 0; loading; n++) {
        const subject = `reload-nm${loop}-${n}`;
        const transport = nodemailer.createTransport({ host: '127.0.0.1', port: smtp, secure: false, ignoreTLS: true, name: 'client.test', connectionTimeout: 15_000 });
        try {
          const info = await transport.sendMail({ from: 'sender@client.test', to: USER, subject, text: `message ${subject}` });
          if (/^250 /.test(info.response)) accepted.push(subject);
          else failures.push(`${subject}: ${info.response}`);
        } catch (e) {
          failures.push(`${subject}: ${(e as Error).message}`);
        } finally {
          transport.close();
        }
      }
    };
    const swaksLoop = async () => {
      for (let n = 0; loading; n++) {
        const subject = `reload-swaks-${n}`;
        const r = await swaks(smtp, { to: USER, subject, body: `message ${subject}` });
        const reply = r.replyTo('.') ?? '';
        if (r.code === 0 && reply.startsWith('250 ')) accepted.push(subject);
        else failures.push(`${subject}: swaks exited ${r.code}: ${r.out.split('\n').slice(-6).join(' | ')}`);
      }
    };
    // LDAP: a bind as the user and a search, a new connection each time, in 2 concurrent sequences.
    const ldapLoop = async (loop: number) => {
      for (let n = 0; loading; n++) {
        const r = await run('ldapsearch', ['-x', '-H', `ldap://127.0.0.1:${ldap}`, '-D', USER_DN, '-w', USER_PASSWORD, '-o', 'nettimeout=15',
          '-b', 'dc=example,dc=org,o=internet', '(uid=user)', 'mail']);
        if (r.code === 0 && r.stdout.includes(`mail: ${USER}`)) ldapOps++;
        else failures.push(`ldapsearch ${loop}-${n}: exit ${r.code}: ${r.stderr.trim()}`);
      }
    };
    const loops = [0, 1, 2, 3].map(nodemailerLoop).concat(swaksLoop(), ldapLoop(0), ldapLoop(1));
    let reload: { code: number; out: string } | undefined;
    let acceptedBefore = 0;
    try {
      await waitFor('load under way', () => accepted.length >= 20 && ldapOps >= 5, 60_000);
      acceptedBefore = accepted.length;
      reload = await pm2('reload', 'dcmx');
      // Load goes on against the new process alone for a while.
      const after = accepted.length;
      await waitFor('load after the reload', () => accepted.length >= after + 20, 60_000);
    } finally {
      loading = false;
      await Promise.all(loops);
    }
    assert.equal(reload.code, 0, reload.out);
    assert.deepEqual(failures, [], `${failures.length} failed sessions of ${accepted.length + failures.length} SMTP and ${ldapOps} LDAP`);
    assert.ok(accepted.length > acceptedBefore + 20, 'mail was accepted during and after the reload');

    // A new process, ready before the old one was stopped, serves now.
    const now = await dcmxApp(pm2);
    assert.equal(now?.pm2_env.status, 'online');
    assert.notEqual(now!.pid, before!.pid, 'a new process');
    assert.equal(now!.pm2_env.restart_time, 1, 'one reload');
    assert.throws(() => process.kill(before!.pid, 0), /ESRCH/, 'the old process has ended');
    assert.equal(readyLines(home).length, 2, 'two ready lines: the first start and the reload');

    // Every message answered 250 is delivered, once; nothing else is.
    const subjects = () => allMail(dataDir).map((m) => /^Subject: (.*)$/m.exec(m.text)?.[1] ?? '?');
    await waitFor('every accepted message delivered', () => subjects().length >= accepted.length, 60_000);
    const delivered = subjects().sort();
    assert.deepEqual(delivered, [...accepted].sort(), 'each accepted message delivered exactly once');
  });
});
