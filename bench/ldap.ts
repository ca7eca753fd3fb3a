/**
 * LDAP benchmark: dcmx as a child process with DCMX_THREADS=1, then =2, the
 * load generator (this process) next to it; nothing pinned, so servers and
 * generator share the machine's cores.
 *
 * For each thread count, on a fresh data dir:
 * 1. Load the DIT of dit.ts (10,000 domains, 10,000 users by default) with
 *    pipelined AddRequests over 16 connections bound as the administrator.
 * 2. Equality searches by `mail` from 16 closed-loop clients (one
 *    connection each, one search outstanding, a random existing address,
 *    base o=internet, scope sub, all user attributes) for 10 s after a 1 s
 *    warm-up: searches/s, p50, p99, entries returned.
 * The appliance's VmRSS is read right after start and after the searches.
 * Then the same search load against a null server (generator ceiling), and
 * against OpenLDAP slapd (mdb, its default thread count) loaded with the same
 * DIT when slapd is installed. Ratios for the summary: searches/s of 2
 * threads against 1 thread and against slapd.
 * With DCMX_BENCH_PROFILE set (1|search, load, all), a one-thread dcmx is
 * also run under `node --cpu-prof` for that phase, and the profile is
 * summarised.
 *
 * Knobs (environment): DCMX_BENCH_DOMAINS (10000; 2000 in a short run),
 * DCMX_BENCH_SECONDS (10; 3), DCMX_BENCH_CLIENTS (16), DCMX_BENCH_DEPTH (adds
 * outstanding per connection, 4), DCMX_BENCH_SLAPD=0 to skip slapd,
 * DCMX_BENCH_NULL=0 to skip the null-server calibration.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Benchmark, Figure, Memory, Ratio, Report, Table } from './report';
import { fmt } from './report';
import { benchTmp, duBytes, spawnChild, stop, stopDcmx, waitForLine, type CpuWindow } from './proc';
import { dcmxEnv, envInt, envOn, THREAD_SETTINGS } from './env';
import { applianceRss, startAppliance, threadSpread, threadsNote, type Appliance } from './appliance';
import { ADMIN_DN, ADMIN_PASSWORD, ditPhases, mailOf, SUFFIX } from './dit';
import { connectAll, percentile, pipelinedAdds, searchLoad, type AddResult, type SearchResult } from './ldapload';
import { slapdUnavailable, startSlapd } from './slapd';
import { summariseFile } from './profile';
import type { WireConn } from './wire';

interface Settings {
  domains: number;
  seconds: number;
  warmup: number;
  clients: number;
  depth: number;
  profile: Set<'load' | 'search'>;
  slapd: boolean;
  nullServer: boolean;
}

function settings(): Settings {
  const p = (process.env.DCMX_BENCH_PROFILE ?? '').toLowerCase();
  const profile = new Set<'load' | 'search'>();
  if (p === '1' || p === 'search' || p === 'all' || p === 'true') profile.add('search');
  if (p === 'load' || p === 'all') profile.add('load');
  return {
    domains: envInt('DCMX_BENCH_DOMAINS', 10_000, 1, 2_000),
    seconds: envInt('DCMX_BENCH_SECONDS', 10, 1, 3),
    warmup: 1,
    clients: envInt('DCMX_BENCH_CLIENTS', 16),
    depth: envInt('DCMX_BENCH_DEPTH', 4),
    profile,
    slapd: envOn('DCMX_BENCH_SLAPD'),
    nullServer: envOn('DCMX_BENCH_NULL'),
  };
}

const COLUMNS = ['server', 'operation', 'ops', 'ops/s', 'p50 ms', 'p99 ms', 'entries/op', 'errors', 'server CPU', 'gen CPU', 'kernel', 'other CPU'];

/** The CPU columns: per cent of one core over the window. */
function cpuCells(r: CpuWindow): string[] {
  return [r.serverCpu, r.genCpu, r.kernelCpu, r.otherCpu].map((c) => fmt.pct((100 * c) / r.wallSeconds));
}

function addRow(server: string, r: AddResult): string[] {
  return [
    server, 'add (pipelined)', fmt.int(r.adds), fmt.int(r.adds / r.wallSeconds), '-', '-', '-', String(r.errors.total), ...cpuCells(r),
  ];
}

function searchRow(server: string, r: SearchResult): string[] {
  const sorted = Float64Array.from(r.latenciesMs).sort();
  return [
    server, 'search (mail=)', fmt.int(r.searches), fmt.int(r.searches / r.wallSeconds), fmt.ms(percentile(sorted, 50)),
    fmt.ms(percentile(sorted, 99)), r.searches ? (r.entries / r.searches).toFixed(2) : '-', String(r.errors.total), ...cpuCells(r),
  ];
}

function closeAll(conns: WireConn[]): void {
  for (const c of conns) c.close();
}

/** Starts the appliance over `dataDir` with `threads` serving threads (and `nodeArgs`, e.g. --cpu-prof). */
function startDcmx(dataDir: string, threads: number, nodeArgs: string[] = []): Promise<Appliance> {
  const env = dcmxEnv(dataDir, { DCMX_HOSTNAME: 'mx.bench.test', DCMX_ADMIN_DN: ADMIN_DN, DCMX_ADMIN_PASSWORD: ADMIN_PASSWORD, DCMX_SUFFIX: SUFFIX });
  return startAppliance(env, threads, nodeArgs);
}

async function load(port: number, pid: number, s: Settings, withSuffix: boolean): Promise<AddResult> {
  const conns = await connectAll(port, s.clients, ADMIN_DN, ADMIN_PASSWORD);
  try {
    return await pipelinedAdds(conns, ditPhases(s.domains, withSuffix), s.depth, pid);
  } finally {
    closeAll(conns);
  }
}

async function search(port: number, pid: number, s: Settings, seconds = s.seconds): Promise<SearchResult> {
  const conns = await connectAll(port, s.clients, ADMIN_DN, ADMIN_PASSWORD);
  try {
    return await searchLoad(conns, {
      base: SUFFIX,
      attr: 'mail',
      values: Array.from({ length: s.domains }, (_, i) => mailOf(i)),
      warmupSeconds: s.warmup,
      seconds,
      serverPid: pid,
    });
  } finally {
    closeAll(conns);
  }
}

function errorNotes(label: string, r: AddResult | SearchResult, notes: string[]): void {
  if (r.errors.total) notes.push(`${label}: non-zero result codes: ${r.errors} — e.g. ${r.errors.samples.join(' | ')}`);
}

function phaseNote(label: string, r: AddResult): string {
  return `${label} load phases: ${r.phases.map((p) => `${p.name} ${fmt.int(p.count / p.seconds)}/s`).join(', ')}; ` +
    `${r.wallSeconds.toFixed(1)} s in all`;
}

function genNote(label: string, r: SearchResult): string {
  return `${label}: generator CPU ${(r.genCpu * 1e6 / Math.max(1, r.searches)).toFixed(1)} µs/search ` +
    `(${r.genCpu.toFixed(2)} s CPU over ${r.wallSeconds.toFixed(2)} s wall); server ` +
    `${(r.serverCpu * 1e6 / Math.max(1, r.searches)).toFixed(1)} µs CPU/search`;
}

function findProfile(dir: string): string {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length !== 1) throw new Error(`expected one .cpuprofile in ${dir}, found ${files.length}`);
  return path.join(dir, files[0]);
}

async function run(log: (msg: string) => void): Promise<Report> {
  const s = settings();
  const { dir: tmp, remove: cleanup } = benchTmp('dcmx-bench-ldap-');
  const rows: string[][] = [];
  const notes: string[] = [];
  const text: string[] = [];
  const memory: Memory[] = [];
  const apps: Appliance[] = [];
  const searchesPerSecond = new Map<string, Figure>();
  const users = s.domains;
  /** Loads the DIT into `server`: its row and notes. */
  const measureLoad = async (server: string, port: number, pid: number, withSuffix: boolean): Promise<void> => {
    const added = await load(port, pid, s, withSuffix);
    rows.push(addRow(server, added));
    notes.push(phaseNote(server, added));
    errorNotes(`${server} add`, added, notes);
  };
  /**
   * The search load against `server`: its row and notes; returns its figure: searches/s, NaN (not counted
   * in the ratios) unless every search succeeded and found its one entry (each address searched exists once).
   */
  const measureSearch = async (server: string, port: number, pid: number): Promise<Figure> => {
    const found = await search(port, pid, s);
    rows.push(searchRow(server, found));
    notes.push(genNote(`${server} search`, found));
    errorNotes(`${server} search`, found, notes);
    const others = found.otherCpu / found.wallSeconds;
    if (found.errors.total === 0 && found.entries === found.searches) return { label: server, value: found.searches / found.wallSeconds, others };
    notes.push(`${server} searches/s not counted in the ratios: ${found.errors.total} errors, ${fmt.int(found.entries)} entries ` +
      `found by ${fmt.int(found.searches)} searches (each should find exactly one)`);
    return { label: server, value: NaN, others };
  };
  notes.push(
    'nothing pinned: the servers and the load generator (this process) share the cores; CPU columns are per cent of one core ' +
      '(server: the server process; kernel: interrupts, softirqs (where loopback packets are processed) and kernel threads on all cores; ' +
      'other: every other process meanwhile: when it is high, someone else was using the machine and the figures are disturbed)',
  );
  notes.push(
    `DIT: ${fmt.int(s.domains)} domains + ${fmt.int(s.domains)} ou=people + ${fmt.int(users)} users; ` +
      `adds over ${s.clients} connections x ${s.depth} outstanding; searches: ${s.clients} clients, 1 outstanding each, ` +
      `${s.warmup} s warm-up + ${s.seconds} s measured`,
  );
  try {
    // ---------------------------------------------------------------- dcmx, 1 then 2 threads
    for (const threads of THREAD_SETTINGS) {
      const dataDir = path.join(tmp, `dcmx-${threads}`);
      log(`ldap: starting dcmx with DCMX_THREADS=${threads}`);
      const app = await startDcmx(dataDir, threads);
      apps.push(app);
      try {
        const idle = applianceRss(app);
        log(`ldap: ${app.label}: pid ${app.child.pid} on port ${app.ports.ldap}; loading ${fmt.int(s.domains * 3 + 1)} entries`);
        await measureLoad(app.label, app.ports.ldap, app.child.pid, false);
        log(`ldap: ${app.label}: searches for ${s.seconds} s`);
        searchesPerSecond.set(`dcmx${threads}`, await measureSearch(app.label, app.ports.ldap, app.child.pid));
        memory.push({ bench: 'ldap', server: app.label, load: `${fmt.int(s.domains * 3 + 1)} adds, then searches`, idleBytes: idle, afterBytes: applianceRss(app) });
        const spread = await threadSpread(app, 'LDAP connections accepted', ['ldap', 'accepted']);
        if (spread) notes.push(spread);
      } finally {
        await stopDcmx(app.child, notes, app.label);
      }
      notes.push(`${app.label}: data dir after load: ${fmt.mib(duBytes(dataDir))}`);
    }
    notes.push(threadsNote(apps));

    // ---------------------------------------------------------------- profiles (one thread)
    if (s.profile.has('load')) {
      const profileDir = path.join(tmp, 'prof-load');
      log('ldap: dcmx (1 thread) under --cpu-prof, loading');
      const app = await startDcmx(path.join(tmp, 'dcmx-prof'), 1, ['--cpu-prof', `--cpu-prof-dir=${profileDir}`]);
      try {
        await measureLoad(`${app.label} --cpu-prof`, app.ports.ldap, app.child.pid, false);
      } finally {
        await stopDcmx(app.child, notes, 'dcmx profiled');
      }
      text.push(`dcmx CPU profile, load phase (node --cpu-prof):\n${summariseFile(findProfile(profileDir))}`);
    }
    if (s.profile.has('search')) {
      const profileDir = path.join(tmp, 'prof-search');
      log(`ldap: dcmx (1 thread) under --cpu-prof, searches for ${s.seconds} s`);
      const app = await startDcmx(path.join(tmp, 'dcmx-1'), 1, ['--cpu-prof', `--cpu-prof-dir=${profileDir}`]);
      try {
        const found = await search(app.ports.ldap, app.child.pid, s);
        rows.push(searchRow(`${app.label} --cpu-prof`, found));
        errorNotes('dcmx profiled search', found, notes);
      } finally {
        await stopDcmx(app.child, notes, 'dcmx profiled');
      }
      text.push(
        `dcmx CPU profile, search phase (node --cpu-prof; includes start-up, binds and warm-up):\n` +
          summariseFile(findProfile(profileDir)),
      );
    }

    // ---------------------------------------------------------------- generator ceiling
    if (s.nullServer) {
      log('ldap: null server (generator ceiling)');
      const child = spawnChild(process.execPath, [path.join(__dirname, 'nullserver.js')]);
      try {
        const m = await waitForLine(child, /null ready port=(\d+)/);
        const found = await search(Number(m[1]), child.pid, s, Math.min(5, s.seconds));
        rows.push(searchRow('null server', found));
        notes.push(genNote('null server', found));
      } finally {
        await stop(child);
      }
    }

    // ---------------------------------------------------------------- slapd
    const why = s.slapd ? slapdUnavailable() : 'DCMX_BENCH_SLAPD=0';
    if (why) {
      notes.push(`slapd comparison not measured: ${why}`);
    } else {
      log('ldap: starting slapd (mdb)');
      const slapd = await startSlapd(path.join(tmp, 'slapd'));
      try {
        log(`ldap: slapd pid ${slapd.child.pid} on port ${slapd.port}; loading`);
        await measureLoad('slapd', slapd.port, slapd.child.pid, true);
        log(`ldap: slapd searches for ${s.seconds} s`);
        searchesPerSecond.set('slapd', await measureSearch('slapd', slapd.port, slapd.child.pid));
      } finally {
        const code = await stop(slapd.child);
        if (code !== 0) notes.push(`slapd exited with ${code}: ${slapd.child.output().slice(-500)}`);
      }
      notes.push(`slapd mdb after load: ${fmt.mib(duBytes(slapd.dbDir))}`);
      notes.push(
        'slapd: generated slapd.conf, mdb, its default thread count (16 worker threads), core/cosine/inetorgperson/nis schemas + ' +
          'dcmx schema export; index objectClass,mail eq; rootdn bind',
      );
    }
  } finally {
    cleanup();
  }
  const fig = (key: string, label: string): Figure => searchesPerSecond.get(key) ?? { label, value: NaN };
  const two = fig('dcmx2', 'dcmx, 2 threads');
  const ratios: Ratio[] = [
    { measure: 'LDAP searches/s, 2 threads vs 1', of: two, to: fig('dcmx1', 'dcmx, 1 thread'), goal: 1.4 },
    { measure: 'LDAP searches/s vs slapd', of: two, to: fig('slapd', 'slapd'), goal: 1.0 },
  ];
  const table: Table = { title: 'LDAP', columns: COLUMNS, rows, notes };
  return { tables: [table], text, ratios, memory };
}

/** The LDAP benchmark module. */
export const ldapBenchmark: Benchmark = {
  name: 'ldap',
  description: 'LDAP add throughput and equality searches/s (dcmx with 1 and 2 threads; null server; slapd when installed)',
  run,
};
