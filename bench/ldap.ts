/**
 * LDAP benchmark (issue 14: one core each): dcmx with DCMX_THREADS=1 against
 * OpenLDAP slapd (mdb, its default threads), each pinned to the server core,
 * the load generator (this process, a raw-BER client of a few microseconds
 * per search) on the generator's core (proc.ts pinning).
 *
 * 1. Load the DIT of dit.ts (10,000 domains, 10,000 users by default) into
 *    a fresh dcmx and a fresh slapd with pipelined AddRequests over 16
 *    connections bound as the administrator.
 * 2. Equality searches by `mail` (a random existing address, base
 *    o=internet, scope sub, all user attributes), both servers running, in
 *    alternating windows (dcmx, slapd, dcmx, slapd...: alternate.ts):
 *    (a) 16 closed-loop clients (one connection each, one search
 *        outstanding): searches/s;
 *    (b) one client: p99 latency.
 *    Each window: searches/s, p50, p99, entries returned, the server's CPU
 *    per search.
 * The appliance's VmRSS is read right after start and after the searches.
 * Then, as information: dcmx with DCMX_THREADS=2 on every core over the same
 * data (one window of 16 clients), and a null server (the generator's
 * ceiling). Ratios for the summary: searches/s against slapd (goal at least
 * 0.8x) and single-client p99 against slapd's (goal at most 1.5x), pair by
 * pair and their median; 2 threads against 1 as information.
 * With DCMX_BENCH_PROFILE set (search, load, or 1 for both; profile.ts), a
 * one-thread dcmx is also run under `node --cpu-prof` for that phase, and
 * the profile is summarised.
 *
 * Knobs (environment): DCMX_BENCH_DOMAINS (10000; 2000 in a short run),
 * DCMX_BENCH_SECONDS (window length, 5; 2), DCMX_BENCH_ROUNDS (pairs of
 * windows, 3; 2), DCMX_BENCH_CLIENTS (16), DCMX_BENCH_DEPTH (adds
 * outstanding per connection, 4), DCMX_BENCH_SLAPD=0 to skip slapd,
 * DCMX_BENCH_NULL=0 to skip the null-server calibration,
 * DCMX_BENCH_TWO_THREADS=0 to skip the two-thread window, DCMX_BENCH_PIN=0
 * to pin nothing (proc.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Benchmark, Figure, Memory, Ratio, Report, Table } from './report';
import { fmt } from './report';
import { benchTmp, duBytes, pinning, spawnChild, stop, stopDcmx, waitForLine, type CpuWindow } from './proc';
import { dcmxEnv, envInt, envOn, rounds, twoThreads, windowSeconds } from './env';
import { applianceMemory, applianceRss, startAppliance, threadSpread, type Appliance } from './appliance';
import { alternate, pairedRatio, windowsFigure, type Window } from './alternate';
import { ADMIN_DN, ADMIN_PASSWORD, ditPhases, mailOf, SUFFIX } from './dit';
import { connectAll, percentile, pipelinedAdds, searchLoad, type AddResult, type SearchResult } from './ldapload';
import { slapdUnavailable, startSlapd } from './slapd';
import { profileWanted, summariseDir } from './profile';
import type { WireConn } from './wire';

interface Settings {
  domains: number;
  seconds: number;
  rounds: number;
  warmup: number;
  clients: number;
  depth: number;
  profile: Set<'load' | 'search'>;
  slapd: boolean;
  nullServer: boolean;
  twoThreads: boolean;
}

function settings(): Settings {
  const profile = new Set<'load' | 'search'>();
  if (profileWanted('search')) profile.add('search');
  if (profileWanted('load')) profile.add('load');
  return {
    domains: envInt('DCMX_BENCH_DOMAINS', 10_000, 1, 2_000),
    seconds: windowSeconds(),
    rounds: rounds(),
    warmup: 1,
    clients: envInt('DCMX_BENCH_CLIENTS', 16),
    depth: envInt('DCMX_BENCH_DEPTH', 4),
    profile,
    slapd: envOn('DCMX_BENCH_SLAPD'),
    nullServer: envOn('DCMX_BENCH_NULL'),
    twoThreads: twoThreads(),
  };
}

const COLUMNS = ['server', 'operation', 'ops', 'ops/s', 'CPU µs/op', 'p50 ms', 'p99 ms', 'entries/op', 'errors', 'server CPU', 'gen CPU', 'kernel', 'other CPU'];

/** The CPU columns: per cent of one core over the window. */
function cpuCells(r: CpuWindow): string[] {
  return [r.serverCpu, r.genCpu, r.kernelCpu, r.otherCpu].map((c) => fmt.pct((100 * c) / r.wallSeconds));
}

function addRow(server: string, r: AddResult): string[] {
  return [
    server, 'add (pipelined)', fmt.int(r.adds), fmt.int(r.adds / r.wallSeconds), fmt.num((1e6 * r.serverCpu) / Math.max(1, r.adds)), '-', '-', '-',
    String(r.errors.total), ...cpuCells(r),
  ];
}

/** The p-th percentile of a search window's latencies, in ms. */
function latency(r: SearchResult, p: number): number {
  return percentile(Float64Array.from(r.latenciesMs).sort(), p);
}

function searchRow(server: string, r: SearchResult, what = 'search (mail=)'): string[] {
  const sorted = Float64Array.from(r.latenciesMs).sort();
  return [
    server, what, fmt.int(r.searches), fmt.int(r.searches / r.wallSeconds), fmt.num((1e6 * r.serverCpu) / Math.max(1, r.searches)), fmt.ms(percentile(sorted, 50)),
    fmt.ms(percentile(sorted, 99)), r.searches ? (r.entries / r.searches).toFixed(2) : '-', String(r.errors.total), ...cpuCells(r),
  ];
}

function closeAll(conns: WireConn[]): void {
  for (const c of conns) c.close();
}

/**
 * Starts the appliance over `dataDir` with `threads` serving threads (and
 * `nodeArgs`, e.g. --cpu-prof): one thread on the server core, more on
 * every core.
 */
function startDcmx(dataDir: string, threads: number, nodeArgs: string[] = []): Promise<Appliance> {
  const env = dcmxEnv(dataDir, { DCMX_HOSTNAME: 'mx.bench.test', DCMX_ADMIN_DN: ADMIN_DN, DCMX_ADMIN_PASSWORD: ADMIN_PASSWORD, DCMX_SUFFIX: SUFFIX });
  return startAppliance(env, threads, nodeArgs, threads === 1 ? pinning().server : pinning().all);
}

async function load(port: number, pid: number, s: Settings, withSuffix: boolean): Promise<AddResult> {
  const conns = await connectAll(port, s.clients, ADMIN_DN, ADMIN_PASSWORD);
  try {
    return await pipelinedAdds(conns, ditPhases(s.domains, withSuffix), s.depth, pid);
  } finally {
    closeAll(conns);
  }
}

/** A search window against the server on `port`: `clients` connections, after `warmup` seconds. */
async function search(port: number, pid: number, s: Settings, seconds = s.seconds, clients = s.clients, warmup = s.warmup): Promise<SearchResult> {
  const conns = await connectAll(port, clients, ADMIN_DN, ADMIN_PASSWORD);
  try {
    return await searchLoad(conns, {
      base: SUFFIX,
      attr: 'mail',
      values: Array.from({ length: s.domains }, (_, i) => mailOf(i)),
      warmupSeconds: warmup,
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


async function run(log: (msg: string) => void): Promise<Report> {
  const s = settings();
  const pin = pinning();
  const { dir: tmp, remove: cleanup } = benchTmp('dcmx-bench-ldap-');
  const rows: string[][] = [];
  const notes: string[] = [];
  const text: string[] = [];
  const memory: Memory[] = [];
  const ratios: Ratio[] = [];
  const users = s.domains;
  /** Loads the DIT into `server`: its row and notes. */
  const measureLoad = async (server: string, port: number, pid: number, withSuffix: boolean): Promise<void> => {
    const added = await load(port, pid, s, withSuffix);
    rows.push(addRow(server, added));
    notes.push(phaseNote(server, added));
    errorNotes(`${server} add`, added, notes);
  };
  /**
   * A search window against `server` with `clients` connections: its row and notes; returns its
   * windows: searches/s and p99 latency, NaN (not counted in the ratios) unless every search
   * succeeded and found its one entry (each address searched exists once).
   */
  const measureSearch = async (server: string, port: number, pid: number, clients: number, round: number): Promise<{ rate: Window; p99: Window }> => {
    const found = await search(port, pid, s, s.seconds, clients, round === 0 ? s.warmup : 0.25);
    const what = clients === 1 ? 'search (mail=), 1 client' : `search (mail=), ${clients} clients`;
    rows.push(searchRow(`${server} #${round + 1}`, found, what));
    errorNotes(`${server} ${what} #${round + 1}`, found, notes);
    const others = found.otherCpu / found.wallSeconds;
    const cpuPerOp = (1e6 * found.serverCpu) / Math.max(1, found.searches);
    const ok = found.errors.total === 0 && found.entries === found.searches;
    if (!ok) {
      notes.push(`${server} ${what} #${round + 1} not counted in the ratios: ${found.errors.total} errors, ${fmt.int(found.entries)} entries ` +
        `found by ${fmt.int(found.searches)} searches (each should find exactly one)`);
    }
    return {
      rate: { value: ok ? found.searches / found.wallSeconds : NaN, cpuPerOp, others },
      p99: { value: ok ? latency(found, 99) : NaN, cpuPerOp, others },
    };
  };
  notes.push(
    `${pin.note}; CPU columns are per cent of one core (server: the server process; kernel: interrupts, softirqs (where loopback ` +
      'packets are processed) and kernel threads on all cores; other: every other process meanwhile: when it is high, someone else ' +
      'was using the machine and the figures are disturbed); CPU µs/op: the server\'s CPU per operation',
  );
  notes.push(
    `DIT: ${fmt.int(s.domains)} domains + ${fmt.int(s.domains)} ou=people + ${fmt.int(users)} users; ` +
      `adds over ${s.clients} connections x ${s.depth} outstanding; searches: ${s.rounds} pairs of alternating ${s.seconds} s windows ` +
      `(dcmx, slapd, ...; both running throughout) with ${s.clients} clients, then with 1, one search outstanding each; ` +
      `${s.warmup} s warm-up before a server's first window, 0.25 s before the others`,
  );
  try {
    const dataDir = path.join(tmp, 'dcmx');
    log('ldap: starting dcmx with DCMX_THREADS=1');
    const app = await startDcmx(dataDir, 1);
    /** The one-thread searches/s windows (16 clients), for the two-thread comparison. */
    let oneThread: Window[] = [];
    try {
      const idle = applianceRss(app);
      log(`ldap: ${app.label}: pid ${app.child.pid} on port ${app.ports.ldap}; loading ${fmt.int(s.domains * 3 + 1)} entries`);
      await measureLoad(app.label, app.ports.ldap, app.child.pid, false);
      notes.push(`${app.label}: data dir after load: ${fmt.mib(duBytes(dataDir))}`);

      // -------------------------------------------------------------- slapd, loaded, running beside dcmx
      const why = s.slapd ? slapdUnavailable() : 'DCMX_BENCH_SLAPD=0';
      const slapd = why ? undefined : await startSlapd(path.join(tmp, 'slapd'), pin.server);
      if (why) notes.push(`slapd comparison not measured: ${why}`);
      try {
        if (slapd) {
          log(`ldap: slapd pid ${slapd.child.pid} on port ${slapd.port}; loading`);
          await measureLoad('slapd', slapd.port, slapd.child.pid, true);
          notes.push(`slapd mdb after load: ${fmt.mib(duBytes(slapd.dbDir))}`);
        }
        const none = { rate: { value: NaN, cpuPerOp: NaN, others: 0 }, p99: { value: NaN, cpuPerOp: NaN, others: 0 } };
        for (const clients of [s.clients, 1]) {
          log(`ldap: searches, ${clients} client(s): ${s.rounds} x (dcmx, slapd), ${s.seconds} s windows`);
          const w = await alternate(
            s.rounds,
            (i) => measureSearch(app.label, app.ports.ldap, app.child.pid, clients, i),
            async (i) => (slapd ? measureSearch('slapd', slapd.port, slapd.child.pid, clients, i) : none),
          );
          const peer = slapd ? w.b : [];
          if (clients === 1) {
            ratios.push(pairedRatio('LDAP single-client p99 latency (ms) vs slapd', app.label, w.a.map((x) => x.p99), 'slapd', peer.map((x) => x.p99), { goal: 1.5, atMost: true }));
          } else {
            oneThread = w.a.map((x) => x.rate);
            ratios.push(pairedRatio(`LDAP searches/s, ${clients} clients, vs slapd`, app.label, oneThread, 'slapd', peer.map((x) => x.rate), { goal: 0.8 }));
          }
        }
      } finally {
        if (slapd) {
          const code = await stop(slapd.child);
          if (code !== 0) notes.push(`slapd exited with ${code}: ${slapd.child.output().slice(-500)}`);
          notes.push(
            'slapd: generated slapd.conf, mdb, its default thread count (16 worker threads), core/cosine/inetorgperson/nis schemas + ' +
              'dcmx schema export; index objectClass,mail eq; rootdn bind',
          );
        }
      }
      const { rss, anon, file } = applianceMemory(app);
      memory.push({ bench: 'ldap', server: app.label, load: `${fmt.int(s.domains * 3 + 1)} adds, then searches`, idleBytes: idle, afterBytes: rss, afterParts: { anon, file } });
    } finally {
      await stopDcmx(app.child, notes, app.label);
    }

    // ---------------------------------------------------------------- two threads on every core, same data (information)
    if (s.twoThreads) {
      log('ldap: dcmx with DCMX_THREADS=2 on every core, same data');
      const app2 = await startDcmx(dataDir, 2);
      try {
        const label = `${app2.label}, every core`;
        const w = await measureSearch(label, app2.ports.ldap, app2.child.pid, s.clients, 0);
        ratios.push({ measure: `LDAP searches/s, ${s.clients} clients, 2 threads on every core vs 1 thread on one`, of: windowsFigure(label, [w.rate]), to: windowsFigure(app.label, oneThread) });
        const spread = await threadSpread(app2, 'LDAP connections accepted', ['ldap', 'accepted']);
        if (spread) notes.push(spread);
        notes.push(`${label}: the generator stays on its own CPU, which the second thread shares`);
      } finally {
        await stopDcmx(app2.child, notes, app2.label);
      }
    }

    // ---------------------------------------------------------------- profiles (one thread)
    if (s.profile.has('load')) {
      const profileDir = path.join(tmp, 'prof-load');
      log('ldap: dcmx (1 thread) under --cpu-prof, loading');
      const prof = await startDcmx(path.join(tmp, 'dcmx-prof'), 1, ['--cpu-prof', `--cpu-prof-dir=${profileDir}`]);
      try {
        await measureLoad(`${prof.label} --cpu-prof`, prof.ports.ldap, prof.child.pid, false);
      } finally {
        await stopDcmx(prof.child, notes, 'dcmx profiled');
      }
      text.push(`dcmx CPU profile, load phase (node --cpu-prof):\n${summariseDir(profileDir)}`);
    }
    if (s.profile.has('search')) {
      const profileDir = path.join(tmp, 'prof-search');
      log(`ldap: dcmx (1 thread) under --cpu-prof, searches for ${s.seconds} s`);
      const prof = await startDcmx(dataDir, 1, ['--cpu-prof', `--cpu-prof-dir=${profileDir}`]);
      try {
        const found = await search(prof.ports.ldap, prof.child.pid, s);
        rows.push(searchRow(`${prof.label} --cpu-prof`, found));
        errorNotes('dcmx profiled search', found, notes);
      } finally {
        await stopDcmx(prof.child, notes, 'dcmx profiled');
      }
      text.push(
        `dcmx CPU profile, search phase (node --cpu-prof; includes start-up, binds and warm-up):\n` +
          summariseDir(profileDir),
      );
    }

    // ---------------------------------------------------------------- generator ceiling
    if (s.nullServer) {
      log('ldap: null server (generator ceiling)');
      const child = spawnChild(process.execPath, [path.join(__dirname, 'nullserver.js')], undefined, undefined, pin.server);
      try {
        const m = await waitForLine(child, /null ready port=(\d+)/);
        const found = await search(Number(m[1]), child.pid, s, Math.min(5, s.seconds));
        rows.push(searchRow('null server', found));
        notes.push(genNote('null server', found));
      } finally {
        await stop(child);
      }
    }
  } finally {
    cleanup();
  }
  const table: Table = { title: 'LDAP', columns: COLUMNS, rows, notes };
  return { tables: [table], text, ratios, memory };
}

/** The LDAP benchmark module. */
export const ldapBenchmark: Benchmark = {
  name: 'ldap',
  description: 'LDAP add throughput, equality searches/s and single-client latency, one core each: dcmx (1 thread) against slapd ' +
    'in alternating windows; 2 threads and a null server as information',
  run,
};
