/**
 * Process plumbing for the benchmarks: children that are always killed and
 * may be pinned to cores (taskset), CPU time and resident memory from /proc,
 * free loopback ports.
 *
 * Pinning (issue 14: one core each): the server under test runs on one core
 * (`pinning().server`, CPU 1 of this process's allowed CPUs on a two-core
 * machine), the load generator on another (`pinning().generator`, CPU 0);
 * children inherit their affinity, so a server's whole process tree (NSD's
 * forks, Postfix's daemons, slapd's threads) stays on its core.
 * DCMX_BENCH_PIN=0 turns it off.
 */
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';

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

/** The CPUs this process may run on (Cpus_allowed_list of /proc/self/status), else 0..n-1. */
function allowedCpus(): number[] {
  try {
    const m = /^Cpus_allowed_list:\s*(\S+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) {
      const cpus: number[] = [];
      for (const part of m[1].split(',')) {
        const [a, b] = part.split('-').map(Number);
        for (let c = a; c <= (b ?? a); c++) cpus.push(c);
      }
      if (cpus.length) return cpus;
    }
  } catch {
    /* not Linux */
  }
  return Array.from({ length: os.availableParallelism() }, (_, i) => i);
}

/**
 * Where the benchmark's processes run, as taskset CPU lists: `server` for
 * the server under test (one core), `generator` for the load generator
 * (another core; this process too, see {@link pinSelf}), `all` for a run
 * that is meant to use every core (dcmx with two threads). Undefined where
 * nothing is pinned; `note` says which.
 */
export interface Pinning {
  server?: string;
  generator?: string;
  all?: string;
  note: string;
}

let pinningMemo: Pinning | undefined;
/** Whether pinSelf pinned this process: then a child spawned without CPUs of its own is given every allowed CPU back. */
let selfPinned = false;

/** The benchmark's CPU placement (see {@link Pinning}); computed once. */
export function pinning(): Pinning {
  if (pinningMemo) return pinningMemo;
  const cpus = allowedCpus();
  const all = cpus.join(',');
  if (process.env.DCMX_BENCH_PIN === '0') pinningMemo = { note: 'nothing pinned (DCMX_BENCH_PIN=0): servers and load generators share the cores' };
  else if (!which('taskset')) pinningMemo = { note: 'nothing pinned: taskset (util-linux) is not installed' };
  else if (cpus.length < 2) {
    pinningMemo = { server: all, generator: all, all, note: `one CPU (${all}): the server and the load generator share it` };
  } else {
    pinningMemo = {
      server: String(cpus[1]), generator: String(cpus[0]), all,
      note: `pinned with taskset: each server under test (its whole process tree) on CPU ${cpus[1]}, the load generator on CPU ${cpus[0]}`,
    };
  }
  return pinningMemo;
}

/**
 * Pins this process (every thread: the in-process load generators run here)
 * to the generator's CPU; children it spawns inherit that unless spawned
 * with their own CPUs.
 */
export function pinSelf(): void {
  const cpus = pinning().generator;
  if (!cpus) return;
  // taskset -a walks /proc/PID/task: a thread that ends during the walk (a worker, a pool thread) fails it. Try again.
  for (let attempt = 1; ; attempt++) {
    try {
      execFileSync(which('taskset')!, ['-a', '-p', '-c', cpus, String(process.pid)], { stdio: 'ignore' });
      break;
    } catch (e) {
      if (attempt === 5) throw e;
    }
  }
  selfPinned = true;
}

/**
 * Spawns `cmd args`, on the CPUs `cpus` (a taskset list such as '1') when
 * given, else on any CPU this process was allowed before {@link pinSelf}.
 * taskset execs the command, so the pid is the command's. Output is drained
 * (a full pipe would stall the server) and its last 64 KiB kept.
 */
export function spawnChild(cmd: string, args: string[], env?: NodeJS.ProcessEnv, cwd?: string, cpus?: string): Child {
  installExitHook();
  const placed = cpus ?? (selfPinned ? pinning().all : undefined);
  const [file, argv] = placed === undefined ? [cmd, args] : [which('taskset') ?? 'taskset', ['-c', placed, cmd, ...args]];
  const proc = spawn(file, argv, { env: env ?? process.env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
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
    proc.once('error', (e) => {
      // It never ran (ENOENT, EACCES): no 'exit' follows.
      live.delete(proc);
      keep(Buffer.from(`spawn ${cmd}: ${e.message}\n`));
      resolve(-1);
    });
  });
  return { proc, pid: proc.pid ?? -1, output: () => out, exited };
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

/** Whether `port` can be bound on 127.0.0.1 over UDP right now. */
function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const u = dgram.createSocket('udp4');
    u.once('error', () => resolve(false));
    u.bind(port, '127.0.0.1', () => u.close(() => resolve(true)));
  });
}

/**
 * A loopback port free right now (for servers that cannot bind port 0 and
 * report it); with `udp`, free over both TCP and UDP (a DNS server's).
 */
export async function freePort(udp = false): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = net.createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    if (!udp || (await udpFree(port))) return port;
  }
  throw new Error('no loopback port free over both TCP and UDP after 20 tries');
}

const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on Linux
/** kthreadd: every kernel thread descends from it. */
const KTHREADD = 2;

/** The fields of /proc/<pid>/stat after the parenthesised command name (field 3 first); undefined if unreadable. */
function statFields(pid: number | string): string[] | undefined {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Every process's parent and CPU seconds: user+system, plus the children it has reaped (cutime, cstime). */
interface ProcTimes {
  parent: Map<number, number>;
  cpu: Map<number, number>;
}

function procTimes(): ProcTimes {
  const parent = new Map<number, number>();
  const cpu = new Map<number, number>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(name);
    if (!f) continue;
    parent.set(Number(name), Number(f[1]));
    // utime, stime, cutime, cstime: fields 14 to 17.
    cpu.set(Number(name), (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK);
  }
  return { parent, cpu };
}

/** Whether `pid` is `root` or descends from it. */
function under(t: ProcTimes, pid: number, root: number): boolean {
  for (let q = pid, hops = 0; q > 0 && hops < 64; q = t.parent.get(q) ?? 0, hops++) if (q === root) return true;
  return false;
}

/** The CPU seconds of `root` and its descendants in `t`; NaN if `root` is not there. */
function treeSum(t: ProcTimes, root: number): number {
  if (!t.cpu.has(root)) return NaN;
  let total = 0;
  for (const [p, c] of t.cpu) if (under(t, p, root)) total += c;
  return total;
}

/**
 * CPU seconds of a process and every descendant (servers such as NSD and
 * Postfix work in child processes): user+system of each live one, plus the
 * time of the children each has reaped (cutime, cstime). A child that exited
 * unreaped by a live member of the tree is missed. NaN if `pid` is gone.
 */
export function treeCpuSeconds(pid: number): number {
  return treeSum(procTimes(), pid);
}

/** Resident memory (VmRSS) of a process in bytes, from /proc/<pid>/status; NaN if unavailable. */
export function rssBytes(pid: number): number {
  return rssParts(pid).rss;
}

/**
 * Resident memory of a process in bytes, from /proc/<pid>/status: VmRSS, and
 * of it RssAnon (heap, stacks: what code changes move) and RssFile (mapped
 * files: the executable's and libraries' touched pages, a floor); NaN where
 * unavailable.
 */
export function rssParts(pid: number): { rss: number; anon: number; file: number } {
  let status = '';
  try {
    status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    /* gone */
  }
  const kb = (field: string): number => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    return m ? Number(m[1]) * 1024 : NaN;
  };
  return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile') };
}

/**
 * Proportional memory (Pss of /proc/<pid>/smaps_rollup: shared pages split
 * among the processes sharing them) of `pid` and its descendants, in bytes;
 * NaN if unavailable. For servers of several processes (NSD).
 */
export function treePssBytes(pid: number): number {
  const t = procTimes();
  if (!t.cpu.has(pid)) return NaN;
  let total = 0;
  for (const p of t.cpu.keys()) {
    if (!under(t, p, pid)) continue;
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${p}/smaps_rollup`, 'utf8'));
      if (m) total += Number(m[1]) * 1024;
    } catch {
      /* gone, or not readable */
    }
  }
  return total;
}

/** This process's CPU seconds (user+system). */
function selfCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * CPU seconds of this process's children that have exited and been reaped
 * (cutime + cstime of /proc/self/stat): across the life of a generator
 * child such as dnsperf or smtp-source, the change is that child's CPU.
 */
function childrenCpuSeconds(): number {
  const f = statFields('self');
  return f ? (Number(f[13]) + Number(f[14])) / CLK_TCK : NaN;
}

/** CPU seconds of the whole machine (all cores) from /proc/stat: busy, and of that interrupts and softirqs; NaN if unavailable. */
function machineCpu(): { busy: number; irq: number } {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    return { busy: (f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] ?? 0)) / CLK_TCK, irq: (f[5] + f[6]) / CLK_TCK };
  } catch {
    return { busy: NaN, irq: NaN };
  }
}

/** CPU accounting over a window, in CPU seconds. */
export interface CpuWindow {
  wallSeconds: number;
  /** The load generator's. */
  genCpu: number;
  /** The server's, with its descendants (NaN when unknown). */
  serverCpu: number;
  /**
   * The kernel's own work on all cores: interrupts, softirqs (where loopback
   * packets are processed) and kernel threads (journal commits, writeback),
   * charged to no process (a softirq that ksoftirqd runs may count twice).
   */
  kernelCpu: number;
  /**
   * Every other process on the machine (someone else's work: the figures
   * are disturbed when it is high); a process started and ended within the
   * window counts when a live one reaped it.
   */
  otherCpu: number;
}

/**
 * Starts a CPU window; the function returned closes it. The server is one
 * process or several (their CPU summed), each with its descendants. The generator is
 * this process (`self`), or its children that exit within the window
 * (`children`: dnsperf, smtp-source). "Other" is the smaller of two
 * estimates of what neither this process and its descendants (the servers
 * and generators of the benchmark) nor the kernel used: the processes'
 * own figures (too high when a process reaps a child that ran long before
 * the window: its whole time lands at once), and the machine's busy time
 * less ours (too high when a process ends unaccounted, as Postfix's
 * short-lived daemons may).
 */
export function cpuWindow(serverPid: number | readonly number[] | undefined, generator: 'self' | 'children' = 'self'): () => CpuWindow {
  const servers = serverPid === undefined ? [] : typeof serverPid === 'number' ? [serverPid] : serverPid;
  const gen = generator === 'self' ? selfCpuSeconds : childrenCpuSeconds;
  const start = performance.now();
  const g0 = gen();
  const m0 = machineCpu();
  const t0 = procTimes();
  return () => {
    const t1 = procTimes();
    const m = machineCpu();
    const genCpu = gen() - g0;
    const delta = (root: number) => treeSum(t1, root) - treeSum(t0, root);
    // Kernel threads that ended within the window take their time with them: never below zero.
    const kernelCpu = m.irq - m0.irq + Math.max(0, delta(KTHREADD) || 0);
    let byProcess = 0;
    for (const [p, c] of t1.cpu) {
      if (!under(t1, p, process.pid) && !under(t1, p, KTHREADD)) byProcess += c - (t0.cpu.get(p) ?? 0);
    }
    const byMachine = m.busy - m0.busy - kernelCpu - delta(process.pid);
    return {
      wallSeconds: (performance.now() - start) / 1000,
      genCpu,
      serverCpu: servers.length ? servers.reduce((sum, pid) => sum + delta(pid), 0) : NaN,
      kernelCpu,
      otherCpu: Math.max(0, Math.min(byProcess, Number.isFinite(byMachine) ? byMachine : byProcess)),
    };
  };
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
