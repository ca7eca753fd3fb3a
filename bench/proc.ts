/**
 * Process plumbing for the benchmarks: CPU pinning with taskset, children
 * that are always killed, CPU time from /proc, free loopback ports.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';

/** The core the servers get, and the one the load generator gets. */
export const SERVER_CORE = 0;
export const GENERATOR_CORE = 1;

let tasksetChecked: boolean | undefined;

/** True when taskset exists and there are at least two CPUs to split. */
export function canPin(): boolean {
  if (tasksetChecked === undefined) {
    const r = spawnSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    tasksetChecked = r.status === 0 && os.availableParallelism() >= 2;
  }
  return tasksetChecked;
}

/** Pins every thread of this process to `core` (no-op without taskset). */
export function pinSelf(core: number): boolean {
  if (!canPin()) return false;
  return spawnSync('taskset', ['-a', '-cp', String(core), String(process.pid)], { stdio: 'ignore' }).status === 0;
}

/**
 * Pins this process to the generator core; returns the note that says who
 * runs where (`server` on the server core, `generator` on the other).
 */
export function pinGenerator(server: string, generator: string): string {
  return pinSelf(GENERATOR_CORE)
    ? `${server} pinned to core ${SERVER_CORE}, ${generator} to core ${GENERATOR_CORE} (taskset)`
    : `no pinning (taskset missing or fewer than 2 CPUs: ${canPin()})`;
}

/** Whether a command is on the PATH (or an absolute path that exists). */
export function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) {
    const p = `${dir}/${cmd}`;
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of live) c.kill('SIGKILL');
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      for (const c of live) c.kill('SIGKILL');
      process.exit(130);
    });
  }
}

/** A spawned server with its recent output kept for error messages. */
export interface Child {
  proc: ChildProcess;
  pid: number;
  output(): string;
  /** Resolves when the process has exited. */
  exited: Promise<number | null>;
}

/**
 * Spawns `cmd args` pinned to `core` (when pinning is possible). taskset
 * execs the command, so the pid is the server's own. Output is drained
 * (a full pipe would stall the server) and its last 64 KiB kept.
 */
export function spawnPinned(cmd: string, args: string[], core: number, env?: NodeJS.ProcessEnv, cwd?: string): Child {
  installExitHook();
  const [c, a] = canPin() ? ['taskset', ['-c', String(core), cmd, ...args]] : [cmd, args];
  const proc = spawn(c, a, { env: env ?? process.env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  let out = '';
  const keep = (d: Buffer) => {
    out += d.toString();
    if (out.length > 65536) out = out.slice(-65536);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const exited = new Promise<number | null>((resolve) => {
    proc.once('exit', (code, signal) => {
      live.delete(proc);
      resolve(code ?? (signal ? -1 : null));
    });
  });
  return { proc, pid: proc.pid!, output: () => out, exited };
}

/** SIGTERM, then SIGKILL after `graceMs`. Resolves with the exit code. */
export async function stop(child: Child, graceMs = 15_000): Promise<number | null> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return child.exited;
  child.proc.kill('SIGTERM');
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), graceMs);
  const code = await child.exited;
  clearTimeout(timer);
  return code;
}

/** Waits until `child` prints a line matching `re`; rejects if it exits first or on timeout. */
export function waitForLine(child: Child, re: RegExp, timeoutMs = 60_000): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const m = child.output().match(re);
      if (m) {
        done();
        resolve(m);
      }
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out waiting for ${re} from pid ${child.pid}:\n${child.output()}`));
    }, timeoutMs);
    const onExit = (code: number | null) => {
      done();
      reject(new Error(`pid ${child.pid} exited (${code}) before ${re}:\n${child.output()}`));
    };
    const done = () => {
      clearTimeout(timer);
      child.proc.stdout!.off('data', check);
      child.proc.stderr!.off('data', check);
      child.proc.off('exit', onExit);
    };
    child.proc.stdout!.on('data', check);
    child.proc.stderr!.on('data', check);
    child.proc.once('exit', onExit);
    check();
  });
}

/**
 * Stops a dcmx child and notes a non-zero exit and anything it logged (at
 * warn or above: see dcmxEnv), each note prefixed with `label: ` when given.
 */
export async function stopDcmx(child: Child, notes: string[], label?: string): Promise<void> {
  const code = await stop(child);
  const prefix = label ? `${label}: ` : '';
  if (code !== 0) notes.push(`${prefix}dcmx exited with ${code}`);
  const logged = child.output().split('\n').filter((l) => l.trim() && !l.includes('dcmx ready'));
  if (logged.length) notes.push(`${prefix}dcmx logged ${logged.length} line(s), first: ${logged[0].slice(0, 300)}`);
}

/** Runs node with `args` to its end (never rejects): exit code (1 when it could not run or timed out) and output. */
export function execNode(
  args: string[],
  env: NodeJS.ProcessEnv,
  opts: { maxBuffer?: number; timeout?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const options = { env, maxBuffer: opts.maxBuffer ?? 64 * 1024 * 1024, ...(opts.timeout ? { timeout: opts.timeout } : {}) };
    execFile(process.execPath, args, options, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as unknown as { code: number }).code : 1) : 0, stdout, stderr });
    });
  });
}

/** A temporary directory of a benchmark run: removed by remove(), or at the latest when this process exits. */
export function benchTmp(prefix: string): { dir: string; remove(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const cleanup = () => fs.rmSync(dir, { recursive: true, force: true });
  process.on('exit', cleanup);
  return {
    dir,
    remove() {
      cleanup();
      process.off('exit', cleanup);
    },
  };
}

/** Resolves once a TCP connect to 127.0.0.1:port succeeds. */
export async function waitForPort(port: number, child: Child, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (child.proc.exitCode !== null) throw new Error(`pid ${child.pid} exited (${child.proc.exitCode}):\n${child.output()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ port, host: '127.0.0.1' });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`port ${port} not open after ${timeoutMs} ms:\n${child.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A loopback port free right now (for servers that cannot bind port 0 and report it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on Linux

/** User+system CPU seconds of a process (all its threads), from /proc/<pid>/stat; NaN if unavailable. */
export function cpuSeconds(pid: number): number {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/** This process's CPU seconds (user+system). */
export function selfCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Total size in bytes of the files under `dir`. */
export function duBytes(dir: string): number {
  let total = 0;
  for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = `${dir}/${d.name}`;
    if (d.isDirectory()) total += duBytes(p);
    else if (d.isFile()) total += fs.statSync(p).blocks * 512;
  }
  return total;
}
