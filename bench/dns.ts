/**
 * DNS benchmark: dcmx as a child process with DCMX_THREADS=1, then =2, then
 * NSD (server-count 2) and Knot (2 UDP + 2 TCP workers) on the same zone,
 * each measured with dnsperf; nothing pinned, so servers and dnsperf share
 * the machine's cores.
 *
 * 1. A zone bench.test with h0..h(N-1).bench.test, each with an A and an MX
 *    record (N = 10,000), written as LDIF and loaded with `dcmx ldif import`
 *    into a fresh data dir before the appliance starts; the same records as
 *    a master file for NSD and Knot (zone.ts).
 * 2. dnsperf over the N x {A, MX} (name, type) pairs, 1 s warm-up then
 *    10 s measured: over UDP, then over TCP (`-m tcp`). dcmx's answer cache
 *    (4N entries for the process, DCMX_DNS_CACHE_ENTRIES, divided among its
 *    threads) holds every pair in each thread, so after the first pass these
 *    are cache hits.
 * 3. dcmx only: cache misses, over UDP (the appliance has no switch to turn
 *    its cache off): (a) names that are all distinct and never repeated
 *    (`-n 1`), below existing names, so every query is an NXDOMAIN lookup
 *    that misses; (b) N x {A, MX, AAAA, TXT, SRV, CAA, NS, HINFO} pairs,
 *    shuffled, cycled: 8N distinct keys in a fixed cycle longer than the
 *    LRU, so every query misses (a quarter answers, the rest NODATA).
 * 4. Signed against unsigned, one thread: DO=1 queries (dnsperf -D) over
 *    UDP for the zone signed (the store above, DCMX_DNSSEC on) and for the
 *    same zone unsigned (a second store, DCMX_DNSSEC=off): the cached pairs,
 *    and with the misses on, the distinct names and the cycle.
 * Figures: queries/s, average / max / stddev latency as dnsperf reports
 * them, lost queries, rcodes, server CPU (from /proc, the server process and
 * its descendants) and dnsperf's CPU; the appliance's VmRSS right after
 * start and after the runs. Ratios for the summary: UDP and TCP queries/s of
 * dcmx with 2 threads against 1 thread, against NSD and against Knot.
 *
 * Knobs (environment): DCMX_BENCH_DNS_NAMES (10000; 2000 in a short run),
 * DCMX_BENCH_SECONDS (10; 3), DCMX_BENCH_DNS_CLIENTS (dnsperf -c, 16),
 * DCMX_BENCH_DNS_UDP_OUTSTANDING (dnsperf -q over UDP, 100),
 * DCMX_BENCH_DNS_TCP_OUTSTANDING (-q over TCP, 200), DCMX_BENCH_DNS_MISS=0
 * to skip the cache-miss runs, DCMX_BENCH_NSD=0 / DCMX_BENCH_KNOT=0 to skip
 * NSD / Knot, DCMX_BENCH_DNS_SIGNED=0 to skip signed against unsigned.
 * DCMX_BENCH_PROFILE=1: the one-thread dcmx runs under `node --cpu-prof`
 * (its runs above are then profiled ones), and the profile of each of its
 * threads that took samples is summarised (bench/profile.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Benchmark, Figure, Memory, Ratio, Report, Table } from './report';
import { fmt } from './report';
import { benchTmp, cpuWindow, duBytes, execNode, spawnChild, stop, stopDcmx, which, type CpuWindow } from './proc';
import { DCMX_CLI, dcmxEnv, envInt, envOn, THREAD_SETTINGS } from './env';
import { applianceRss, startAppliance, threadSpread, threadsNote, type Appliance } from './appliance';
import { ADMIN_DN, ADMIN_PASSWORD, SUFFIX, udpAsk, waitForZone, writeParts, writeZoneLdif, ZONE, type DnsPeer } from './zone';
import { NSD_SERVERS, nsdUnavailable, startNsd } from './nsd';
import { KNOT_WORKERS, knotUnavailable, startKnot } from './knot';
import { prng } from '../test/prng';
import { summariseFile } from './profile';

interface Settings {
  names: number;
  seconds: number;
  warmup: number;
  clients: number;
  udpOutstanding: number;
  tcpOutstanding: number;
  miss: boolean;
  nsd: boolean;
  knot: boolean;
  signed: boolean;
  profile: boolean;
}

function settings(): Settings {
  return {
    names: envInt('DCMX_BENCH_DNS_NAMES', 10_000, 1, 2_000),
    seconds: envInt('DCMX_BENCH_SECONDS', 10, 1, 3),
    warmup: 1,
    clients: envInt('DCMX_BENCH_DNS_CLIENTS', 16),
    udpOutstanding: envInt('DCMX_BENCH_DNS_UDP_OUTSTANDING', 100),
    tcpOutstanding: envInt('DCMX_BENCH_DNS_TCP_OUTSTANDING', 200),
    miss: envOn('DCMX_BENCH_DNS_MISS'),
    nsd: envOn('DCMX_BENCH_NSD'),
    knot: envOn('DCMX_BENCH_KNOT'),
    signed: envOn('DCMX_BENCH_DNS_SIGNED'),
    profile: !['', '0', 'false'].includes((process.env.DCMX_BENCH_PROFILE ?? '').toLowerCase()),
  };
}

function shuffle<T>(a: T[], seed: number): T[] {
  const rnd = prng(seed);
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** dnsperf's figures and the CPU over its run (the generator's is dnsperf's). */
interface PerfResult extends CpuWindow {
  sent: number;
  completed: number;
  lost: number;
  rcodes: string;
  runSeconds: number;
  qps: number;
  avgMs: number;
  minMs: number;
  maxMs: number;
  stddevMs: number;
  /** Datagrams dropped by the kernel on the server's UDP sockets (their receive buffers were full). */
  serverDrops: number;
  raw: string;
}

/** Parses dnsperf's statistics (the first block: query latency, not TCP connection latency). */
function parseDnsperf(out: string): Omit<PerfResult, keyof CpuWindow | 'serverDrops' | 'raw'> {
  const stats = out.split('Connection Statistics:')[0];
  const num = (re: RegExp): number => {
    const m = re.exec(stats);
    if (!m) throw new Error(`dnsperf output lacks ${re}:\n${out.slice(-2000)}`);
    return Number(m[1]);
  };
  const lat = /Average Latency \(s\):\s+([\d.]+) \(min ([\d.]+), max ([\d.]+)\)/.exec(stats);
  return {
    sent: num(/Queries sent:\s+(\d+)/),
    completed: num(/Queries completed:\s+(\d+)/),
    lost: num(/Queries lost:\s+(\d+)/),
    rcodes: (/Response codes:\s+(.*)/.exec(stats)?.[1] ?? '-').trim(),
    runSeconds: num(/Run time \(s\):\s+([\d.]+)/),
    qps: num(/Queries per second:\s+([\d.]+)/),
    avgMs: lat ? Number(lat[1]) * 1000 : NaN,
    minMs: lat ? Number(lat[2]) * 1000 : NaN,
    maxMs: lat ? Number(lat[3]) * 1000 : NaN,
    stddevMs: (() => {
      const m = /Latency StdDev \(s\):\s+([\d.]+)/.exec(stats);
      return m ? Number(m[1]) * 1000 : NaN;
    })(),
  };
}

/**
 * Datagrams the kernel dropped on the UDP sockets bound to `port` (receive
 * buffers full; several sockets when the server uses SO_REUSEPORT), from
 * /proc/net/udp; NaN if none is found.
 */
function udpDrops(port: number): number {
  let drops = NaN;
  try {
    const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
    for (const line of fs.readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[1]?.endsWith(hex)) drops = (Number.isFinite(drops) ? drops : 0) + Number(f[f.length - 1]);
    }
  } catch {
    /* not Linux */
  }
  return drops;
}

/**
 * Runs dnsperf (not pinned); CPU of the server and its descendants, of
 * dnsperf, the kernel's own work (interrupts, softirqs, kernel threads), and the busy time of
 * every other process meanwhile (proc.ts's cpuWindow).
 */
async function dnsperf(serverPid: number, port: number, args: string[]): Promise<PerfResult> {
  const dropsBefore = udpDrops(port);
  const win = cpuWindow(serverPid, 'children');
  const child = spawnChild('dnsperf', args);
  const code = await child.exited;
  const cpu = win();
  const out = child.output();
  if (code !== 0) throw new Error(`dnsperf ${args.join(' ')} exited with ${code}:\n${out.slice(-2000)}`);
  return { ...parseDnsperf(out), ...cpu, serverDrops: udpDrops(port) - dropsBefore, raw: out };
}

const COLUMNS = ['server', 'transport', 'query set', 'queries', 'queries/s', 'avg ms', 'max ms', 'stddev ms', 'lost', 'rcodes', 'server CPU', 'gen CPU', 'kernel', 'other CPU'];

function row(server: string, transport: string, set: string, r: PerfResult): string[] {
  return [
    server, transport, set, fmt.int(r.completed), fmt.int(r.qps), fmt.ms(r.avgMs), fmt.ms(r.maxMs), fmt.ms(r.stddevMs), fmt.int(r.lost),
    r.rcodes.replace(/\s*\(100\.00%\)/, '').replace(/\s+/g, ' '),
    fmt.pct((100 * r.serverCpu) / r.runSeconds), fmt.pct((100 * r.genCpu) / r.runSeconds),
    fmt.pct((100 * r.kernelCpu) / r.runSeconds), fmt.pct((100 * r.otherCpu) / r.runSeconds),
  ];
}

/** The query files: cached pairs, the cache-defeating cycle, the distinct names. */
interface QueryFiles {
  hit: string;
  cycle: string;
  cycleLength: number;
  distinct: string;
  distinctCount: number;
}

function writeQueryFiles(tmp: string, s: Settings): QueryFiles {
  const hit = path.join(tmp, 'hit.txt');
  writeParts(hit, 2 * s.names, (i) => `h${i >> 1}.${ZONE} ${i & 1 ? 'MX' : 'A'}\n`);
  // 8 types: 8N keys, twice the answer cache (CACHE_ENTRIES = 4N) even with one thread.
  const cycleTypes = ['A', 'MX', 'AAAA', 'TXT', 'SRV', 'CAA', 'NS', 'HINFO'];
  const cyclePairs = shuffle(Array.from({ length: cycleTypes.length * s.names }, (_, i) => i), 1);
  const cycle = path.join(tmp, 'miss-cycle.txt');
  writeParts(cycle, cyclePairs.length, (k) => `h${cyclePairs[k] >> 3}.${ZONE} ${cycleTypes[cyclePairs[k] & 7]}\n`);
  // Enough distinct names that the run ends on its time limit long before the file does.
  const distinctCount = Math.max(200_000, 150_000 * s.seconds);
  const distinct = path.join(tmp, 'miss-distinct.txt');
  writeParts(distinct, distinctCount, (i) => `u${i}.h${i % s.names}.${ZONE} ${i & 1 ? 'MX' : 'A'}\n`);
  return { hit, cycle, cycleLength: cyclePairs.length, distinct, distinctCount };
}

/** Queries/s over UDP and TCP (the existing pairs) of one server. */
interface Throughput {
  udp: Figure;
  tcp: Figure;
}

async function run(log: (msg: string) => void): Promise<Report> {
  const s = settings();
  const rows: string[][] = [];
  const notes: string[] = [];
  const memory: Memory[] = [];
  const text: string[] = [];
  const apps: Appliance[] = [];
  const figures = new Map<string, Throughput>();
  /** DO=1 queries/s over UDP, one thread, by signed (true) and unsigned (false) zone. */
  const signedFigures = new Map<boolean, { hit: number; cycle: number; distinct: number }>();
  const table: Table = { title: 'DNS', columns: COLUMNS, rows, notes };
  if (!which('dnsperf')) {
    notes.push('not measured: dnsperf is not installed (Debian package dnsperf)');
    return { tables: [table], text: [], ratios: ratios(figures) };
  }
  notes.push('nothing pinned: the servers, dnsperf and this process share the cores; CPU columns are per cent of one core');
  const measured: [string, PerfResult][] = [];
  const { dir: tmp, remove: cleanup } = benchTmp('dcmx-bench-dns-');

  /** Warm-up, then the cached pairs over UDP and TCP against `server` on `port`: its rows. */
  const cached = async (server: string, pid: number, port: number, q: QueryFiles): Promise<Throughput> => {
    log(`dns: ${server}: warm-up ${s.warmup} s (UDP, then TCP)`);
    await dnsperf(pid, port, udp(port, q.hit, s.warmup));
    await dnsperf(pid, port, tcp(port, q.hit, s.warmup));
    log(`dns: ${server}: UDP, ${fmt.int(2 * s.names)} (name, type) pairs, ${s.seconds} s`);
    const hitUdp = await dnsperf(pid, port, udp(port, q.hit, s.seconds));
    measured.push([`${server} UDP`, hitUdp]);
    rows.push(row(server, 'UDP', `A+MX, ${fmt.int(2 * s.names)} pairs`, hitUdp));
    log(`dns: ${server}: TCP, same pairs, ${s.seconds} s`);
    const hitTcp = await dnsperf(pid, port, tcp(port, q.hit, s.seconds));
    measured.push([`${server} TCP`, hitTcp]);
    rows.push(row(server, 'TCP', `A+MX, ${fmt.int(2 * s.names)} pairs`, hitTcp));
    return { udp: counted(server, 'UDP', hitUdp), tcp: counted(server, 'TCP', hitTcp) };
  };
  /** The figure of a run over the existing pairs: queries/s, NaN (not counted in the ratios) unless every answer was NOERROR. */
  const counted = (server: string, transport: string, r: PerfResult): Figure => {
    const others = r.otherCpu / r.runSeconds;
    if (/^NOERROR \d+/.test(r.rcodes) && !/,/.test(r.rcodes)) return { label: server, value: r.qps, others };
    notes.push(`${server} ${transport} queries/s not counted in the ratios: the answers were ${r.rcodes}, where every name exists`);
    return { label: server, value: NaN, others };
  };
  const base = (port: number) => ['-s', '127.0.0.1', '-p', String(port), '-c', String(s.clients), '-t', '2'];
  const udp = (port: number, file: string, seconds: number, extra: string[] = []) =>
    [...base(port), '-d', file, '-l', String(seconds), '-q', String(s.udpOutstanding), ...extra];
  /** dnsperf -D: EDNS with the DO bit (RFC 3225) on every query. */
  const udpDo = (port: number, file: string, seconds: number, extra: string[] = []) => [...udp(port, file, seconds, extra), '-D'];
  const tcp = (port: number, file: string, seconds: number) =>
    [...base(port), '-m', 'tcp', '-d', file, '-l', String(seconds), '-q', String(s.tcpOutstanding)];

  /** A DNS comparison server: started, measured, stopped; or a note saying why not. */
  const peer = async (key: string, label: string, why: string | undefined, start: () => Promise<DnsPeer>, q: QueryFiles): Promise<void> => {
    if (why) {
      notes.push(`${label} not measured: ${why}`);
      return;
    }
    log(`dns: starting ${label}`);
    const p = await start();
    try {
      figures.set(key, await cached(label, p.child.pid, p.port, q));
    } finally {
      const code = await stop(p.child);
      if (code !== 0) notes.push(`${label} exited with ${code}: ${p.child.output().slice(-500)}`);
    }
  };

  try {
    // ---------------------------------------------------------------- load
    const dataDir = path.join(tmp, 'data');
    fs.mkdirSync(dataDir, { mode: 0o700 });
    const ldif = path.join(tmp, 'zone.ldif');
    writeZoneLdif(ldif, s.names);
    // The environment of both the CLI import and the appliance: same data dir, same suffix.
    // The process's answer cache budget is divided among the threads: 4N entries hold the 2N hit pairs in each of 2 threads.
    const env = dcmxEnv(dataDir, {
      DCMX_HOSTNAME: `mx.${ZONE}`, DCMX_ADMIN_DN: ADMIN_DN, DCMX_ADMIN_PASSWORD: ADMIN_PASSWORD, DCMX_SUFFIX: SUFFIX, DCMX_DNS_CACHE_ENTRIES: String(4 * s.names),
    });
    log(`dns: dcmx ldif import of ${fmt.int(s.names + 5)} entries`);
    const t0 = Date.now();
    const imp = await execNode([DCMX_CLI, 'ldif', 'import', ldif], env);
    const importSeconds = (Date.now() - t0) / 1000;
    if (imp.code !== 0) throw new Error(`dcmx ldif import failed (${imp.code}):\n${imp.stderr.slice(-2000)}`);
    notes.push(
      `zone ${ZONE}: ${fmt.int(s.names)} names h0..h${s.names - 1}, each A + MX 10 mx.${ZONE}. (MX answers carry the ` +
        `mx A record as additional); loaded into dcmx with \`dcmx ldif import\` before start-up in ${importSeconds.toFixed(1)} s ` +
        `(${fmt.int((s.names + 5) / importSeconds)} entries/s, whole CLI process); store ${fmt.mib(duBytes(dataDir))}; ` +
        'NSD and Knot read the same records from a master file',
    );
    const q = writeQueryFiles(tmp, s);

    // ---------------------------------------------------------------- dcmx, 1 then 2 threads
    for (const threads of THREAD_SETTINGS) {
      log(`dns: starting dcmx with DCMX_THREADS=${threads}`);
      const profileDir = s.profile && threads === 1 ? path.join(tmp, 'prof') : undefined;
      const app = await startAppliance(env, threads, profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []);
      apps.push(app);
      try {
        const idle = applianceRss(app);
        const port = app.ports.dns;
        const pid = app.child.pid;
        await waitForZone(port, app.child);
        figures.set(`dcmx${threads}`, await cached(app.label, pid, port, q));
        if (s.miss) {
          // Distinct names first: they fill the LRU with answers never asked again, so the cycle
          // after them starts from a cache holding none of its keys.
          log(`dns: ${app.label}: UDP, ${fmt.int(q.distinctCount)} distinct names, once each, up to ${s.seconds} s`);
          const dis = await dnsperf(pid, port, udp(port, q.distinct, s.seconds, ['-n', '1']));
          measured.push([`${app.label} UDP distinct`, dis]);
          rows.push(row(app.label, 'UDP', 'distinct names, NXDOMAIN (misses)', dis));
          if (dis.sent >= q.distinctCount) notes.push(`the distinct-name file (${fmt.int(q.distinctCount)} names) ran out before ${s.seconds} s`);
          log(`dns: ${app.label}: UDP, cache-defeating cycle of ${fmt.int(q.cycleLength)} pairs, ${s.seconds} s`);
          const cyc = await dnsperf(pid, port, udp(port, q.cycle, s.seconds));
          measured.push([`${app.label} UDP cycle`, cyc]);
          rows.push(row(app.label, 'UDP', `8-type cycle of ${fmt.int(q.cycleLength)} (misses)`, cyc));
        }
        memory.push({ bench: 'dns', server: app.label, load: `the runs above (${fmt.int(s.names)}-name zone)`, idleBytes: idle, afterBytes: applianceRss(app) });
        const spread = await threadSpread(app, 'DNS queries (UDP and TCP)', ['dns', 'queries']);
        if (spread) notes.push(spread);
      } finally {
        await stopDcmx(app.child, notes, app.label);
      }
      // One .cpuprofile per thread (main and serving): the largest holds the queries.
      for (const f of profileDir && fs.existsSync(profileDir) ? fs.readdirSync(profileDir).filter((n) => n.endsWith('.cpuprofile')) : []) {
        const file = path.join(profileDir!, f);
        if (fs.statSync(file).size > 1_000_000) text.push(`dcmx CPU profile, ${app.label} (node --cpu-prof, ${f}; start-up included):\n${summariseFile(file)}`);
      }
    }
    notes.push(threadsNote(apps));
    if (s.miss) {
      notes.push(
        `dcmx cache misses: the answer cache is an LRU of ${fmt.int(4 * s.names)} encoded answers for the process (DCMX_DNS_CACHE_ENTRIES), divided among its threads. "distinct": every name new ` +
          `(u<i>.h<j>.${ZONE}, dnsperf -n 1), all NXDOMAIN lookups. "cycle": ${fmt.int(q.cycleLength)} (name, type) pairs ` +
          `shuffled once and replayed in the same order, so each key comes back only after ${fmt.int(q.cycleLength - 1)} ` +
          'others and has been evicted: every query misses; A/MX answer, the other six types are NODATA. Both still pay for inserting ' +
          'into the cache',
      );
    }

    // ---------------------------------------------------------------- signed against unsigned, one thread
    if (s.signed) {
      // The store above was loaded with DCMX_DNSSEC on (the default): its zone has a key. A second store, loaded and
      // served with DCMX_DNSSEC=off, holds the same zone unsigned.
      const unsignedDir = path.join(tmp, 'data-unsigned');
      fs.mkdirSync(unsignedDir, { mode: 0o700 });
      const unsignedEnv = { ...env, DCMX_DATA_DIR: unsignedDir, DCMX_DNSSEC: 'off' };
      log('dns: dcmx ldif import of the same zone, DCMX_DNSSEC=off');
      const imp2 = await execNode([DCMX_CLI, 'ldif', 'import', ldif], unsignedEnv);
      if (imp2.code !== 0) throw new Error(`dcmx ldif import (DCMX_DNSSEC=off) failed (${imp2.code}):\n${imp2.stderr.slice(-2000)}`);
      for (const [zoneLabel, zoneEnv, signed] of [['signed zone', env, true], ['unsigned zone', unsignedEnv, false]] as const) {
        const app = await startAppliance(zoneEnv, 1);
        try {
          const port = app.ports.dns;
          const pid = app.child.pid;
          await waitForZone(port, app.child);
          // Each answer to a DO query for h1 A: A and, in a signed zone, its RRSIG (RFC 4035 §3.1.1).
          const reply = await udpAsk(port, `h1.${ZONE}`, 1, 2000, true);
          const answers = reply ? reply.readUInt16BE(6) : 0;
          if (answers !== (signed ? 2 : 1)) throw new Error(`${zoneLabel}: a DO query for h1.${ZONE} A got ${answers} answer RRs`);
          const label = `${app.label}, ${zoneLabel}`;
          // Warm-up: one whole pass over the pairs (dnsperf -n 1), so that the measured run finds every answer cached;
          // a pass at the rate of misses (each signed, in the signed zone) takes several seconds.
          log(`dns: ${label}: DO=1, warm-up: one pass over the pairs, then ${s.seconds} s of cached pairs`);
          await dnsperf(pid, port, udpDo(port, q.hit, 120, ['-n', '1']));
          const hit = await dnsperf(pid, port, udpDo(port, q.hit, s.seconds));
          measured.push([`${label} UDP DO=1`, hit]);
          rows.push(row(label, 'UDP', `DO=1, A+MX, ${fmt.int(2 * s.names)} pairs`, hit));
          const fig = signedFigures.get(signed) ?? { hit: NaN, cycle: NaN, distinct: NaN };
          fig.hit = hit.qps;
          if (s.miss) {
            log(`dns: ${label}: DO=1, distinct names (NXDOMAIN: compact denial signed per query), ${s.seconds} s`);
            const dis = await dnsperf(pid, port, udpDo(port, q.distinct, s.seconds, ['-n', '1']));
            measured.push([`${label} UDP DO=1 distinct`, dis]);
            rows.push(row(label, 'UDP', `DO=1, distinct names (misses, ${signed ? 'an NSEC signed each' : 'NXDOMAIN'})`, dis));
            fig.distinct = dis.qps;
            log(`dns: ${label}: DO=1, cache-defeating cycle, ${s.seconds} s`);
            const cyc = await dnsperf(pid, port, udpDo(port, q.cycle, s.seconds));
            measured.push([`${label} UDP DO=1 cycle`, cyc]);
            rows.push(row(label, 'UDP', `DO=1, 8-type cycle of ${fmt.int(q.cycleLength)} (answer misses)`, cyc));
            fig.cycle = cyc.qps;
          }
          signedFigures.set(signed, fig);
        } finally {
          await stopDcmx(app.child, notes, `${app.label}, ${zoneLabel}`);
        }
      }
      notes.push(
        'signed vs unsigned: one thread (DCMX_THREADS=1), every query with EDNS and DO (dnsperf -D), the same zone signed ' +
          '(DCMX_DNSSEC on: ECDSA P-256 online signing, one RRSIG per RRset, compact denial) and unsigned (a second store ' +
          'loaded and served with DCMX_DNSSEC=off). Cached pairs come from the answer cache (no signing), filled by one ' +
          'whole pass over them before the measured run; in the cycle the ' +
          'answers miss but the signatures are cached per RRset (dnssec-sign.ts SignCache), so the NSEC of a name serves all ' +
          'its missing types; distinct names sign one NSEC each (the worst case: one ECDSA signature per query)',
      );
    }

    // ---------------------------------------------------------------- NSD, Knot
    await peer('nsd', `NSD, server-count ${NSD_SERVERS}`, s.nsd ? nsdUnavailable() : 'DCMX_BENCH_NSD=0', () => startNsd(path.join(tmp, 'nsd'), s.names), q);
    await peer('knot', `Knot, ${KNOT_WORKERS} UDP + ${KNOT_WORKERS} TCP workers`, s.knot ? knotUnavailable() : 'DCMX_BENCH_KNOT=0',
      () => startKnot(path.join(tmp, 'knot'), s.names), q);
    notes.push(
      `NSD: server-count ${NSD_SERVERS} with reuseport: yes (a socket per server process, as dcmx has one per thread), ` +
        'verbosity 0, no database file, its default responses (they add the zone\'s NS in the authority section and ns1\'s ' +
        `address: larger replies than dcmx's and Knot's, which carry the answer and, for MX, the mx A record). Knot: udp-workers/tcp-workers ` +
        `${KNOT_WORKERS}, background-workers 1, log at warning. Both from generated configurations, in the foreground, as whoever runs the benchmark`,
    );
    notes.push(
      `dnsperf ${s.seconds} s per run after a ${s.warmup} s warm-up, -c ${s.clients} clients, -q ${s.udpOutstanding} outstanding over UDP and ` +
        `-q ${s.tcpOutstanding} over TCP, -t 2 s timeout, no EDNS (replies <= 512 octets). Latencies are dnsperf's (average, max, stddev); ` +
        'CPU is per cent of one core over the run time, from /proc (a loopback UDP send also charges part of the receive path to the sender); ' +
        '"kernel" is interrupts, softirqs (where loopback packets are processed) and kernel threads on both cores, charged to no process; ' +
        '"other CPU" is every other process meanwhile: when it is high, someone else was using the machine and the figures are disturbed',
    );
    for (const [label, r] of measured) {
      if (r.lost || r.serverDrops > 0) {
        notes.push(`${label}: ${fmt.int(r.lost)} queries lost (no reply in 2 s); the kernel dropped ${fmt.int(r.serverDrops)} ` +
          'datagrams on the server\'s UDP sockets (receive buffers full)');
      }
    }
  } finally {
    cleanup();
  }
  return { tables: [table], text, ratios: [...ratios(figures), ...signedRatios(signedFigures)], memory };
}

/** The summary's signed-against-unsigned ratios (DO=1, UDP, one thread): cached pairs, answer-cache misses, distinct names. */
function signedRatios(f: Map<boolean, { hit: number; cycle: number; distinct: number }>): Ratio[] {
  const fig = (signed: boolean, k: 'hit' | 'cycle' | 'distinct'): Figure => ({
    label: `dcmx, 1 thread, ${signed ? 'signed' : 'unsigned'} zone`, value: f.get(signed)?.[k] ?? NaN,
  });
  if (f.size === 0) return [];
  return [
    { measure: 'DNS UDP DO=1 queries/s, signed vs unsigned zone, cached answers', of: fig(true, 'hit'), to: fig(false, 'hit') },
    { measure: 'DNS UDP DO=1 queries/s, signed vs unsigned zone, answer-cache misses (8-type cycle)', of: fig(true, 'cycle'), to: fig(false, 'cycle') },
    { measure: 'DNS UDP DO=1 queries/s, signed vs unsigned zone, distinct names (NXDOMAIN / compact denial)', of: fig(true, 'distinct'), to: fig(false, 'distinct') },
  ];
}

/** The summary's ratios: dcmx with 2 threads against 1 thread, NSD and Knot, over UDP and TCP. */
function ratios(figures: Map<string, Throughput>): Ratio[] {
  const fig = (key: string, label: string, t: keyof Throughput): Figure => figures.get(key)?.[t] ?? { label, value: NaN };
  const out: Ratio[] = [];
  for (const t of ['udp', 'tcp'] as const) {
    const T = t.toUpperCase();
    const two = fig('dcmx2', 'dcmx, 2 threads', t);
    out.push({ measure: `DNS ${T} queries/s, 2 threads vs 1`, of: two, to: fig('dcmx1', 'dcmx, 1 thread', t), goal: 1.4 });
    out.push({ measure: `DNS ${T} queries/s vs NSD`, of: two, to: fig('nsd', 'NSD', t), goal: t === 'udp' ? 0.8 : undefined });
    out.push({ measure: `DNS ${T} queries/s vs Knot`, of: two, to: fig('knot', 'Knot', t) });
  }
  return out;
}

/** The DNS benchmark module. */
export const dnsBenchmark: Benchmark = {
  name: 'dns',
  description: 'DNS queries/s and latency with dnsperf over UDP and TCP (dcmx with 1 and 2 threads, cached and uncached; NSD; Knot)',
  run,
};
