/**
 * The operator's boot: pm2 starts the appliance from ecosystem.config.js,
 * waits for its ready signal (wait_ready), and the endpoints answer. The
 * appliance runs on the Node.js ecosystem.config.js names (`interpreter`):
 * Node 24 or newer, the one npm scripts run on.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ADMIN_PASSWORD, run, tempDir, testEnv } from './helpers';
import { atExit, track } from './fixtures/children';

const ROOT = path.resolve(__dirname, '..', '..');
// pm2's own script, run on this Node (npm test's): so does pm2's daemon.
const PM2 = path.join(ROOT, 'node_modules', 'pm2', 'bin', 'pm2');

test('pm2 boots the appliance and waits for it to be ready', async () => {
  const dataDir = tempDir();
  const home = tempDir('dcmx-pm2-');
  const env = { ...process.env, ...testEnv(dataDir), PM2_HOME: home };
  const pm2 = (...args: string[]) => new Promise<{ code: number; out: string }>((resolve) => {
    track(require('node:child_process').execFile(process.execPath, [PM2, ...args], { env, cwd: ROOT, timeout: 60_000 }, (err: { code?: number } | null, stdout: string, stderr: string) =>
      resolve({ code: err ? (err.code ?? 1) : 0, out: stdout + stderr })));
  });
  // pm2's daemon, and the appliance under it, are not our children: should this process end first, stop them.
  const forget = atExit(() => spawnSync(process.execPath, [PM2, 'kill'], { env, cwd: ROOT, timeout: 30_000, stdio: 'ignore' }));
  try {
    const start = await pm2('start', 'ecosystem.config.js', '--update-env');
    assert.equal(start.code, 0, start.out);
    const list = await pm2('jlist');
    const apps = JSON.parse(list.out.slice(list.out.indexOf('['))) as { name: string; pid: number; pm2_env: { status: string } }[];
    const app = apps.find((a) => a.name === 'dcmx');
    assert.equal(app?.pm2_env.status, 'online');
    // The appliance's executable is the interpreter ecosystem.config.js names, a Node.js 24 or newer.
    const exe = fs.realpathSync(`/proc/${app!.pid}/exe`);
    const interpreter = (require(path.join(ROOT, 'ecosystem.config.js')) as { apps: { interpreter: string }[] }).apps[0]!.interpreter;
    const named = path.isAbsolute(interpreter) ? interpreter : spawnSync('sh', ['-c', `command -v ${interpreter}`], { encoding: 'utf8' }).stdout.trim();
    assert.equal(exe, fs.realpathSync(named));
    const version = spawnSync(exe, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
    assert.ok(Number(version.split('.')[0]) >= 24, `the appliance runs on Node.js ${version}`);
    // pm2 waited for process.send('ready'): the ready line is already in its log, with the bound ports.
    const logFile = fs.readdirSync(path.join(home, 'logs')).find((f) => f.startsWith('dcmx-out'))!;
    const ready = fs.readFileSync(path.join(home, 'logs', logFile), 'utf8').split('\n').find((l) => l.includes('dcmx ready'));
    assert.ok(ready, 'ready line logged');
    assert.ok(ready!.includes(`data=${dataDir}`), 'the environment pm2 was started from applies');
    const ldap = Number(/ldap=(\d+)/.exec(ready!)![1]);
    const who = await run('ldapwhoami', ['-x', '-H', `ldap://127.0.0.1:${ldap}`, '-D', 'cn=admin,o=internet', '-w', ADMIN_PASSWORD]);
    assert.equal(who.code, 0, who.stderr);
  } finally {
    await pm2('kill');
    forget();
    fs.rmSync(home, { recursive: true, force: true });
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
