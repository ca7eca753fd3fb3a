/**
 * Test fixtures: an appliance on ephemeral loopback ports over a temporary
 * data dir, and runners for the real command-line clients.
 */
import { after } from 'node:test';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { loadConfig, type Config } from '../server/config';
import { silentLogger, type Logger } from '../server/log';
import { startAppliance, type Appliance } from '../server/appliance';
import { loopbackEnv } from './env';
import { stopTracked, track } from './fixtures/children';
import { within } from './fixtures/wait';

// After each test file's tests, whatever their outcome: no child process it started is left running.
after(() => stopTracked());


export const ADMIN_PASSWORD = 'admin-secret-1';

/** A fresh temporary directory (the caller removes it). */
export function tempDir(prefix = 'dcmx-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A maker of fresh temporary directories, every one removed after the calling file's tests. */
export function tempDirs(prefix: string): () => string {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });
  return () => {
    const d = tempDir(prefix);
    dirs.push(d);
    return d;
  };
}

export interface TestAppliance {
  app: Appliance;
  config: Config;
  dataDir: string;
  ldapUrl: string;
  adminDN: string;
  close(): Promise<void>;
}

/** Base environment for an appliance on loopback with ephemeral ports. */
export function testEnv(dataDir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...loopbackEnv(dataDir),
    DCMX_HOSTNAME: 'mx.dcmx.test',
    DCMX_ADMIN_PASSWORD: ADMIN_PASSWORD,
    // Password hashing as cheap as each scheme allows (production: 100,000 rounds / iterations).
    DCMX_SHA_CRYPT_ROUNDS: '1000',
    DCMX_PBKDF2_ITERATIONS: '1000',
    DCMX_ARGON2_PARAMS: 'm=1024,t=1,p=1',
    // Every test client is 127.0.0.1: failed binds are not delayed, and the client is not refused
    // (auth-throttle tests set their own). The per-account limit is the production one.
    DCMX_AUTH_DELAY: '0',
    DCMX_AUTH_CLIENT_FAILURES: '1000',
    // Every outside lookup goes to loopback, never to the machine's resolver:
    // port 9 (discard) has no listener, so lookups fail fast unless a test sets its own stub.
    DCMX_UPSTREAM_DNS: '127.0.0.1:9',
    // "This appliance" must not depend on the test machine's own addresses (the default).
    DCMX_SELF_ADDRESSES: '198.51.100.254',
    DCMX_QUEUE_RETRY_BASE: '1',
    // Provisioning at RCPT is tested where a test asks for it (with a stub upstream).
    DCMX_PROVISIONING: 'off',
    ...extra,
  };
}

/** Starts the appliance in-process. */
export async function startTestAppliance(extra: Record<string, string> = {}, dataDir = tempDir(), log: Logger = silentLogger()): Promise<TestAppliance> {
  const config = loadConfig(testEnv(dataDir, extra));
  const app = await startAppliance(config, log, () => undefined);
  return {
    app,
    config,
    dataDir,
    ldapUrl: `ldap://127.0.0.1:${app.ports.ldap}`,
    adminDN: config.adminDN,
    async close() {
      await app.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Resolves once the appliance has published on its change clock every change
 * in its store, those of a `dcmx` command run meanwhile (another process)
 * included: the writer's watch of other processes' commits publishes them
 * within 100 ms (writes.ts watchOtherWriters), and from then on every read
 * follows them. Waits for the publication itself (ChangeClock.reached), not a time.
 */
export async function caughtUp(t: TestAppliance): Promise<void> {
  const last = t.app.directory.changeRange().last;
  await within(`the appliance publishes change ${last}`, t.app.clock.reached(last));
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command without blocking the event loop (the server may be in this process). */
export function run(cmd: string, args: string[], input?: string, timeoutMs = 20_000): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = track(execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if ((err as NodeJS.ErrnoException | null)?.code === 'ENOENT') {
        // As a shell says it (127), naming what to do: test/preflight.js installs what test/programs.txt lists.
        resolve({ code: 127, stdout: '', stderr: `${cmd}: not installed (add it to test/programs.txt; npm test installs it)` });
        return;
      }
      const code = err ? (typeof (err as NodeJS.ErrnoException & { code?: unknown }).code === 'number' ? (err as unknown as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    }));
    if (input !== undefined) {
      // A command that exits (or is killed by the timeout) before reading all its input: its exit
      // status says so; the EPIPE of the unread input must not surface as an uncaught error instead.
      child.stdin!.on('error', () => undefined);
      child.stdin!.end(input);
    }
  });
}

/** The built `dcmx` CLI. */
export const DCMX_CLI = path.resolve(__dirname, '..', 'server', 'admin', 'cli.js');

/** Runs the built `dcmx` CLI with exactly `env` over process.env (pass testEnv(dir) for the usual one). */
export function runDcmx(env: Record<string, string>, args: string[], timeoutMs = 60_000): Promise<RunResult> {
  return new Promise((resolve) => {
    track(execFile(process.execPath, [DCMX_CLI, ...args], { env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as unknown as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    }));
  });
}

/** Admin bind arguments for the OpenLDAP clients. */
export function adminArgs(t: TestAppliance): string[] {
  return ['-x', '-H', t.ldapUrl, '-D', t.adminDN, '-w', ADMIN_PASSWORD];
}

/**
 * Spawns the built appliance (dist/server/main.js) and resolves when it prints
 * `dcmx ready`. It logs at warn unless `env` sets DCMX_LOG_LEVEL. A child that does not get there (it exits, or 20 s pass) is
 * killed before the promise rejects; every child is tracked (fixtures/children.ts).
 * `wrapper` (a command and its arguments) starts the appliance under another
 * program, which must end by exec'ing the command appended to it (as unshare
 * does): the child is then the appliance itself, for its pid and signals.
 */
export function spawnAppliance(env: Record<string, string>, wrapper: string[] = []): Promise<{ child: ChildProcess; ready: string; output: () => string; errors: () => string }> {
  const main = path.resolve(__dirname, '..', 'server', 'main.js');
  const [cmd, ...args] = [...wrapper, process.execPath, main];
  const child = track(spawn(cmd, args, { env: { ...process.env, DCMX_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  let errors = '';
  return new Promise((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.off('exit', onExit);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      reject(new Error(`${why}:\n${out}`));
    };
    const timer = setTimeout(() => fail('appliance did not start within 20 s'), 20_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.includes('dcmx ready'));
      if (line) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        child.off('exit', onExit);
        // Keep draining stdout: a full pipe would stall the appliance.
        child.stdout!.on('data', (more: Buffer) => (out += more.toString()));
        resolve({ child, ready: line, output: () => out, errors: () => errors });
      }
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => fail(`appliance exited with ${code ?? signal} before it was ready`);
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d: Buffer) => {
      out += d.toString();
      errors += d.toString();
    });
    child.once('exit', onExit);
    child.once('error', (e) => fail(`appliance could not be spawned: ${e.message}`));
  });
}

/** Parses `port=N` fields of the ready line. */
export function readyPorts(line: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of line.matchAll(/(\w+)=(\d+)/g)) out[m[1]] = Number(m[2]);
  return out;
}

/** An appliance in its own process (a crash shows as a dead process), with the ports of its ready line. */
export interface SpawnedAppliance {
  child: ChildProcess;
  /** The `dcmx ready` line. */
  ready: string;
  /** Its ports by name (ldap, dns, smtp, http). */
  ports: Record<string, number>;
  /** Everything it printed so far (stdout and stderr). */
  output: () => string;
  /** What it printed on stderr so far. */
  errors: () => string;
}

/** Spawns the built appliance over `dataDir` with testEnv (plus `extra`), under `wrapper` if given (see spawnAppliance). */
export async function startSpawned(dataDir: string, extra: Record<string, string> = {}, wrapper: string[] = []): Promise<SpawnedAppliance> {
  const a = await spawnAppliance(testEnv(dataDir, extra), wrapper);
  return { child: a.child, ready: a.ready, ports: readyPorts(a.ready), output: a.output, errors: a.errors };
}

/** Sends `signal` to a child process unless it has exited already; resolves with its exit code. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill(signal);
  return exited;
}

/** ldapadd as the administrator (cn=admin,o=internet) against the LDAP port of a spawned appliance. */
export function ldapaddAt(ldapPort: number, ldif: string): Promise<RunResult> {
  return run('ldapadd', ['-x', '-H', `ldap://127.0.0.1:${ldapPort}`, '-D', 'cn=admin,o=internet', '-w', ADMIN_PASSWORD], ldif);
}

/**
 * The LDAP result code an OpenLDAP client reported: "... (34)" on stderr,
 * "result: 4 ..." or "(6)" on stdout; else the process exit code.
 */
export function ldapResultCode(r: { code: number; stderr: string; stdout: string }): number {
  const m = /\((\d+)\)/.exec(r.stderr) ?? /result: (\d+)/.exec(r.stdout) ?? /\((\d+)\)/.exec(r.stdout);
  return m ? Number(m[1]) : r.code;
}
