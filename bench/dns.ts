/**
 * DNS benchmark (issue 14: one core each): dcmx with DCMX_THREADS=1 against
 * NSD with server-count 1, each pinned to the server core and dnsperf to
 * the generator's (proc.ts pinning), on the same zone and the same load,
 * measured in alternating windows (dcmx, NSD, dcmx, NSD...: alternate.ts).
 *
 * 1. A zone bench.test with h0..h(N-1).bench.test, each with an A and an MX
 *    record (N = 10,000), written as LDIF and loaded with `dcmx ldif import`
 *    into a fresh data dir before the appliance starts, unsigned
 *    (DCMX_DNSSEC=off) like the peers'; the same records as a master file
 *    for NSD and Knot (zone.ts).
 * 2. dcmx (answer cache on: 4N entries, DCMX_DNS_CACHE_ENTRIES) and NSD both
 *    running; after a warm-up of each (one whole pass over the pairs over
 *    UDP, dnsperf -n 1, then one over TCP), alternating windows of dnsperf
 *    (-c 4 -q 100 over UDP): the N x {A, MX} (name, type) pairs over UDP
 *    (cache hits), the same over TCP, and an NXDOMAIN flood: 400,000 random
 *    names directly below the zone, cycled (more than the cache holds).
 *    Then dcmx's VmRSS (goal: at most 100 MiB) beside NSD's (Pss of its
 *    processes). Then the cached pairs over UDP again, alternating a quiet
 *    window with one while new domains are provisioned over LDAP (10 a
 *    second, each a zone of its own: zone.ts newDomainEntry), each window
 *    after a whole pass over the pairs.
 * 3. The miss path: a dcmx started with DCMX_DNS_CACHE_ENTRIES=0 (no answer
 *    cache) against NSD, alternating, on the pairs over UDP.
 * 4. Warm-up: a dcmx started afresh, one-second dnsperf runs back to back,
 *    the first started the moment it prints its ready line: the first
 *    second against the steady state (the median of 2's UDP windows).
 * 5. Information: Knot (1 UDP + 1 TCP worker, pinned) over UDP and TCP, one
 *    window each; dcmx with DCMX_THREADS=2 on every core (one UDP window).
 * 6. Signed against unsigned, one thread, pinned: DO=1 queries (dnsperf -D)
 *    over UDP for the zone signed (a second store, DCMX_DNSSEC on) and
 *    unsigned: the cached pairs, and with the misses on, distinct names
 *    (dnsperf -n 1, each an NXDOMAIN signed afresh) and a cache-defeating
 *    cycle of N x 8 types.
 * Figures: queries/s, average / max / stddev latency as dnsperf reports
 * them, lost queries, rcodes, server CPU per query (from /proc, the server
 * process and its descendants) and dnsperf's CPU. Ratios for the summary:
 * each pair of windows, and their median, against issue 14's goals.
 *
 * Knobs (environment): DCMX_BENCH_DNS_NAMES (10000; 2000 in a short run),
 * DCMX_BENCH_SECONDS (window length, 5; 2), DCMX_BENCH_ROUNDS (pairs of
 * windows, 3; 2), DCMX_BENCH_DNS_CLIENTS (dnsperf -c, 4),
 * DCMX_BENCH_DNS_UDP_OUTSTANDING (dnsperf -q over UDP, 100),
 * DCMX_BENCH_DNS_TCP_OUTSTANDING (-q over TCP, 200),
 * DCMX_BENCH_DNS_NXDOMAIN_NAMES (400000), DCMX_BENCH_DNS_PROVISION_RATE
 * (new domains a second during the provisioning windows, 10; 0 skips them), DCMX_BENCH_DNS_WARM_SECONDS
 * (one-second runs after a start, 5; 3), DCMX_BENCH_DNS_MISS=0 to skip the miss path,
 * DCMX_BENCH_NSD=0 / DCMX_BENCH_KNOT=0 to skip NSD / Knot,
 * DCMX_BENCH_TWO_THREADS=0 to skip the two-thread window,
 * DCMX_BENCH_DNS_SIGNED=0 to skip signed against unsigned, DCMX_BENCH_PIN=0
 * to pin nothing (proc.ts), DCMX_BENCH_PROFILE=dns (or 1) to run a
 * one-thread dcmx under `node --cpu-prof` for one window of each of the
 * cached pairs, the NXDOMAIN flood and the miss path, each profile
 * summarised (profile.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Benchmark, Figure, Memory, Ratio, Report, Table } from './report';
import { fmt, median } from './report';
import { benchTmp, cpuWindow, duBytes, execNode, pinning, spawnChild, stop, stopDcmx, treePssBytes, which, type CpuWindow } from './proc';
import { DCMX_CLI, dcmxEnv, envInt, envOn, rounds, twoThreads, windowSeconds } from './env';
import { applianceMemory, applianceRss, startAppliance, threadSpread, type Appliance } from './appliance';
import { alternate, pairedRatio, windowsFigure, type Window } from './alternate';
import { ADMIN_DN, ADMIN_PASSWORD, newDomainEntry, SUFFIX, udpAsk, waitForZone, writeParts, writeZoneLdif, ZONE, type DnsPeer } from './zone';
import { addRequestOp, OP, WireConn } from './wire';
import { NSD_SERVERS, nsdUnavailable, startNsd } from './nsd';
import { KNOT_WORKERS, knotUnavailable, startKnot } from './knot';
import { profileWanted, summariseDir } from './profile';
import { prng } from '../test/prng';

interface Settings {
  names: number;
  seconds: number;
  rounds: number;
  clients: number;
  udpOutstanding: number;
  tcpOutstanding: number;
  nxNames: number;
  warmSeconds: number;
  miss: boolean;
  nsd: boolean;
  knot: boolean;
  twoThreads: boolean;
  signed: boolean;
  profile: boolean;
  provisionRate: number;
}

function settings(): Settings {
  return {
    names: envInt('DCMX_BENCH_DNS_NAMES', 10_000, 1, 2_000),
    seconds: windowSeconds(),
    rounds: rounds(),
    clients: envInt('DCMX_BENCH_DNS_CLIENTS', 4),
    udpOutstanding: envInt('DCMX_BENCH_DNS_UDP_OUTSTANDING', 100),
    tcpOutstanding: envInt('DCMX_BENCH_DNS_TCP_OUTSTANDING', 200),
    nxNames: envInt('DCMX_BENCH_DNS_NXDOMAIN_NAMES', 400_000),
    warmSeconds: envInt('DCMX_BENCH_DNS_WARM_SECONDS', 5, 2, 3),
    miss: envOn('DCMX_BENCH_DNS_MISS'),
    nsd: envOn('DCMX_BENCH_NSD'),
    knot: envOn('DCMX_BENCH_KNOT'),
    twoThreads: twoThreads(),
    signed: envOn('DCMX_BENCH_DNS_SIGNED'),
    profile: profileWanted('dns'),
    provisionRate: envInt('DCMX_BENCH_DNS_PROVISION_RATE', 10, 0),
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
 * Runs dnsperf on the generator's CPU; CPU of the server and its
 * descendants, of dnsperf, the kernel's own work (interrupts, softirqs,
 * kernel threads), and the busy time of every other process meanwhile
 * (proc.ts's cpuWindow).
 */
async function dnsperf(serverPid: number, port: number, args: string[]): Promise<PerfResult> {
  const dropsBefore = udpDrops(port);
  const win = cpuWindow(serverPid, 'children');
  const child = spawnChild('dnsperf', args, undefined, undefined, pinning().generator);
  const code = await child.exited;
  const cpu = win();
  const out = child.output();
  if (code !== 0) throw new Error(`dnsperf ${args.join(' ')} exited with ${code}:\n${out.slice(-2000)}`);
  return { ...parseDnsperf(out), ...cpu, serverDrops: udpDrops(port) - dropsBefore, raw: out };
}

/** The server's CPU per completed query, in microseconds. */
const cpuPerQuery = (r: PerfResult): number => (r.serverCpu * 1e6) / Math.max(1, r.completed);

const COLUMNS = [
  'server', 'transport', 'query set', 'queries', 'queries/s', 'CPU µs/q', 'avg ms', 'max ms', 'stddev ms', 'lost', 'rcodes',
  'server CPU', 'gen CPU', 'kernel', 'other CPU',
];

function row(server: string, transport: string, set: string, r: PerfResult): string[] {
  return [
    server, transport, set, fmt.int(r.completed), fmt.int(r.qps), fmt.num(cpuPerQuery(r)), fmt.ms(r.avgMs), fmt.ms(r.maxMs), fmt.ms(r.stddevMs),
    fmt.int(r.lost), r.rcodes.replace(/\s*\(100\.00%\)/, '').replace(/\s+/g, ' '),
    fmt.pct((100 * r.serverCpu) / r.runSeconds), fmt.pct((100 * r.genCpu) / r.runSeconds),
    fmt.pct((100 * r.kernelCpu) / r.runSeconds), fmt.pct((100 * r.otherCpu) / r.runSeconds),
  ];
}

/** The query files: cached pairs, the NXDOMAIN flood, the cache-defeating cycle, the distinct names. */
interface QueryFiles {
  hit: string;
  nx: string;
  cycle: string;
  cycleLength: number;
  distinct: string;
  distinctCount: number;
}

function writeQueryFiles(tmp: string, s: Settings): QueryFiles {
  const hit = path.join(tmp, 'hit.txt');
  writeParts(hit, 2 * s.names, (i) => `h${i >> 1}.${ZONE} ${i & 1 ? 'MX' : 'A'}\n`);
  // Random labels directly below the zone: none exists, each is an NXDOMAIN; far more than the answer cache holds.
  const rnd = prng(14);
  const nx = path.join(tmp, 'nxdomain.txt');
  writeParts(nx, s.nxNames, () => `x${Math.floor(rnd() * 2 ** 48).toString(36)}.${ZONE} A\n`);
  // 8 types: 8N keys, twice the answer cache (CACHE_ENTRIES = 4N).
  const cycleTypes = ['A', 'MX', 'AAAA', 'TXT', 'SRV', 'CAA', 'NS', 'HINFO'];
  const cyclePairs = shuffle(Array.from({ length: cycleTypes.length * s.names }, (_, i) => i), 1);
  const cycle = path.join(tmp, 'miss-cycle.txt');
  writeParts(cycle, cyclePairs.length, (k) => `h${cyclePairs[k] >> 3}.${ZONE} ${cycleTypes[cyclePairs[k] & 7]}\n`);
  // Enough distinct names that the run ends on its time limit long before the file does.
  const distinctCount = Math.max(200_000, 150_000 * s.seconds);
  const distinct = path.join(tmp, 'miss-distinct.txt');
  writeParts(distinct, distinctCount, (i) => `u${i}.h${i % s.names}.${ZONE} ${i & 1 ? 'MX' : 'A'}\n`);
  return { hit, nx, cycle, cycleLength: cyclePairs.length, distinct, distinctCount };
}

/** What {@link provisionWhile} did beside the load. */
interface Provisioned {
  added: number;
  /** Ticks at which the previous add had not been answered yet (so none was sent). */
  behind: number;
  maxMs: number;
  errors: string[];
}

/**
 * Runs `during` while adding a new domain (zone.ts newDomainEntry, numbered
 * from `next.i`) every 1/`perSecond` s over one LDAP connection to `ldapPort`
 * bound as the administrator, one add at a time; resolves with `during`'s
 * result and what was added once the last add is answered.
 */
async function provisionWhile<T>(ldapPort: number, perSecond: number, next: { i: number }, during: () => Promise<T>): Promise<[T, Provisioned]> {
  const conn = await WireConn.connect(ldapPort);
  const p: Provisioned = { added: 0, behind: 0, maxMs: 0, errors: [] };
  try {
    await conn.bind(ADMIN_DN, ADMIN_PASSWORD);
    let inFlight: Promise<void> | undefined;
    const tick = () => {
      if (inFlight) {
        p.behind++;
        return;
      }
      const e = newDomainEntry(next.i++);
      const t0 = performance.now();
      inFlight = conn.request(addRequestOp(e), OP.addResponse, `add ${e.dn}`).then(
        () => {
          p.added++;
          p.maxMs = Math.max(p.maxMs, performance.now() - t0);
        },
        (err: Error) => void p.errors.push(err.message),
      ).finally(() => (inFlight = undefined));
    };
    const timer = setInterval(tick, 1000 / perSecond);
    tick();
    try {
      return [await during(), p];
    } finally {
      clearInterval(timer);
      await inFlight;
    }
  } finally {
    conn.close();
  }
}

/** A DNS server under test: its label, main process and port. */
interface Server {
  label: string;
  pid: number;
  port: number;
}

/** The load of one comparison: its name in the rows, the transport, and the dnsperf arguments for a window on a port. */
interface Load {
  set: string;
  transport: 'UDP' | 'TCP';
  /** The rcodes every answer must have for the window to count (a server that answers otherwise is measured, not compared). */
  rcode: 'NOERROR' | 'NXDOMAIN';
  args(port: number, seconds: number): string[];
}

async function run(log: (msg: string) => void): Promise<Report> {
  const s = settings();
  const pin = pinning();
  const rows: string[][] = [];
  const notes: string[] = [];
  const memory: Memory[] = [];
  const ratios: Ratio[] = [];
  const text: string[] = [];
  const table: Table = { title: 'DNS', columns: COLUMNS, rows, notes };
  if (!which('dnsperf')) {
    notes.push('not measured: dnsperf is not installed (Debian package dnsperf)');
    return { tables: [table], text, ratios };
  }
  notes.push(`${pin.note}; CPU columns are per cent of one core, CPU µs/q the server's CPU per completed query`);
  const measured: [string, PerfResult][] = [];
  const { dir: tmp, remove: cleanup } = benchTmp('dcmx-bench-dns-');

  const base = (port: number) => ['-s', '127.0.0.1', '-p', String(port), '-c', String(s.clients), '-t', '2'];
  const udp = (port: number, file: string, seconds: number, extra: string[] = []) =>
    [...base(port), '-d', file, '-l', String(seconds), '-q', String(s.udpOutstanding), ...extra];
  /** dnsperf -D: EDNS with the DO bit (RFC 3225) on every query. */
  const udpDo = (port: number, file: string, seconds: number, extra: string[] = []) => [...udp(port, file, seconds, extra), '-D'];
  const tcp = (port: number, file: string, seconds: number) =>
    [...base(port), '-m', 'tcp', '-d', file, '-l', String(seconds), '-q', String(s.tcpOutstanding)];

  /** One window of `load` against `server`: its row, and its figure (NaN unless every answer had the load's rcode). */
  const window = async (server: Server, load: Load, note = ''): Promise<Window> => {
    const r = await dnsperf(server.pid, server.port, load.args(server.port, s.seconds));
    measured.push([`${server.label} ${load.transport} ${load.set}${note}`, r]);
    rows.push(row(server.label + note, load.transport, load.set, r));
    const ok = new RegExp(`^${load.rcode} \\d+`).test(r.rcodes) && !/,/.test(r.rcodes);
    if (!ok) notes.push(`${server.label} ${load.transport} ${load.set}${note}: not counted in the ratios: the answers were ${r.rcodes}, not all ${load.rcode}`);
    return { value: ok ? r.qps : NaN, cpuPerOp: cpuPerQuery(r), others: r.otherCpu / r.runSeconds };
  };
  /**
   * `load` against dcmx and the peer in alternating windows (the peer's
   * figures NaN when there is none): the summary's ratio.
   */
  const compare = async (measure: string, load: Load, dcmx: Server, peer: Server | undefined, goal?: number): Promise<{ ratio: Ratio; dcmx: Window[] }> => {
    log(`dns: ${load.transport} ${load.set}: ${s.rounds} x (${dcmx.label}, ${peer?.label ?? 'no peer'}), ${s.seconds} s windows`);
    const none: Window = { value: NaN, cpuPerOp: NaN, others: 0 };
    const w = await alternate(
      s.rounds,
      (i) => window(dcmx, load, ` #${i + 1}`),
      async (i) => (peer ? window(peer, load, ` #${i + 1}`) : none),
    );
    const ratio = pairedRatio(measure, dcmx.label, w.a, peer?.label ?? 'NSD', peer ? w.b : [], goal === undefined ? undefined : { goal });
    ratios.push(ratio);
    return { ratio, dcmx: w.a };
  };
  /** One whole pass over the pairs over UDP (dnsperf -n 1, at most 120 s): after it, every answer dcmx can cache for UDP is cached. */
  const prime = (server: Server, q: QueryFiles): Promise<PerfResult> => dnsperf(server.pid, server.port, udp(server.port, q.hit, 120, ['-n', '1']));
  /**
   * Warm-up: one whole pass over the pairs over UDP, then one over TCP
   * (dcmx caches an answer per size limit: 512 octets over UDP without
   * EDNS, 65535 over TCP, so each transport fills its own entries); a first
   * window would otherwise measure the cache filling.
   */
  const warm = async (server: Server, q: QueryFiles): Promise<void> => {
    log(`dns: ${server.label}: warm-up: one pass over the pairs over UDP, one over TCP`);
    await prime(server, q);
    await dnsperf(server.pid, server.port, [...tcp(server.port, q.hit, 120), '-n', '1']);
  };
  const serverOf = (app: Appliance, label = app.label): Server => ({ label, pid: app.child.pid, port: app.ports.dns });

  try {
    // ---------------------------------------------------------------- load
    const dataDir = path.join(tmp, 'data');
    fs.mkdirSync(dataDir, { mode: 0o700 });
    const ldif = path.join(tmp, 'zone.ldif');
    writeZoneLdif(ldif, s.names);
    // The environment of both the CLI import and the appliance: same data dir, same suffix; the zone unsigned, as the peers'.
    // The process's answer cache budget is divided among the threads: 4N entries hold the 2N hit pairs in each of 2 threads.
    const env = dcmxEnv(dataDir, {
      DCMX_HOSTNAME: `mx.${ZONE}`, DCMX_ADMIN_DN: ADMIN_DN, DCMX_ADMIN_PASSWORD: ADMIN_PASSWORD, DCMX_SUFFIX: SUFFIX,
      DCMX_DNS_CACHE_ENTRIES: String(4 * s.names), DCMX_DNSSEC: 'off',
    });
    log(`dns: dcmx ldif import of ${fmt.int(s.names + 5)} entries`);
    const t0 = Date.now();
    const imp = await execNode([DCMX_CLI, 'ldif', 'import', ldif], env);
    const importSeconds = (Date.now() - t0) / 1000;
    if (imp.code !== 0) throw new Error(`dcmx ldif import failed (${imp.code}):\n${imp.stderr.slice(-2000)}`);
    notes.push(
      `zone ${ZONE}: ${fmt.int(s.names)} names h0..h${s.names - 1}, each A + MX 10 mx.${ZONE}. (MX answers carry the ` +
        `mx A record as additional); loaded into dcmx with \`dcmx ldif import\` before start-up in ${importSeconds.toFixed(1)} s ` +
        `(${fmt.int((s.names + 5) / importSeconds)} entries/s, whole CLI process); store ${fmt.mib(duBytes(dataDir))}; unsigned ` +
        '(DCMX_DNSSEC=off) like the peers\'; NSD and Knot read the same records from a master file',
    );
    const q = writeQueryFiles(tmp, s);
    const hitSet = `A+MX, ${fmt.int(2 * s.names)} pairs`;
    const hitUdp: Load = { set: hitSet, transport: 'UDP', rcode: 'NOERROR', args: (port, sec) => udp(port, q.hit, sec) };
    const hitTcp: Load = { set: hitSet, transport: 'TCP', rcode: 'NOERROR', args: (port, sec) => tcp(port, q.hit, sec) };
    const nxUdp: Load = { set: `${fmt.int(s.nxNames)} random names, NXDOMAIN`, transport: 'UDP', rcode: 'NXDOMAIN', args: (port, sec) => udp(port, q.nx, sec) };

    // ---------------------------------------------------------------- NSD, running through the comparisons
    const nsdWhy = s.nsd ? nsdUnavailable() : 'DCMX_BENCH_NSD=0';
    let nsd: DnsPeer | undefined;
    if (nsdWhy) notes.push(`NSD not measured: ${nsdWhy}`);
    else {
      log('dns: starting NSD');
      nsd = await startNsd(path.join(tmp, 'nsd'), s.names, pin.server);
    }
    /** dcmx's cached figures (one thread, the median of its windows), for the comparisons that follow. */
    let dcmxUdp: Figure = { label: 'dcmx, 1 thread', value: NaN };
    let dcmxTcp: Figure = dcmxUdp;
    const nsdServer: Server | undefined = nsd && { label: `NSD, server-count ${NSD_SERVERS}`, pid: nsd.child.pid, port: nsd.port };
    try {
      if (nsdServer) await warm(nsdServer, q);

      // -------------------------------------------------------------- dcmx, cache on
      log('dns: starting dcmx with DCMX_THREADS=1');
      const app = await startAppliance(env, 1, [], pin.server);
      let steady = NaN;
      let steadyCpu = NaN;
      try {
        const idle = applianceRss(app);
        const dcmx = serverOf(app);
        await waitForZone(dcmx.port, app.child);
        await warm(dcmx, q);
        const u = await compare('DNS UDP queries/s, cached names, vs NSD', hitUdp, dcmx, nsdServer, 0.7);
        dcmxUdp = u.ratio.of;
        steady = median(u.dcmx.map((w) => w.value));
        steadyCpu = median(u.dcmx.map((w) => w.cpuPerOp));
        dcmxTcp = (await compare('DNS TCP queries/s, cached names, vs NSD', hitTcp, dcmx, nsdServer, 0.8)).ratio.of;
        await compare(`DNS UDP queries/s, NXDOMAIN flood (${fmt.int(s.nxNames)} random names, cache on), vs NSD`, nxUdp, dcmx, nsdServer, 0.3);
        const { rss, anon, file } = applianceMemory(app);
        memory.push({
          bench: 'dns', server: app.label, load: `the cached and NXDOMAIN runs above (${fmt.int(s.names)}-name zone)`, idleBytes: idle,
          afterBytes: rss, afterParts: { anon, file },
        });
        const mib = (b: number) => b / 1048576;
        ratios.push({
          measure: 'DNS memory: dcmx VmRSS after the load (MiB), 1 thread, vs the goal', of: { label: app.label, value: mib(rss) },
          to: { label: 'goal, 100 MiB', value: 100 }, goal: 1, atMost: true,
        });
        if (nsd) {
          const nsdPss = treePssBytes(nsd.child.pid);
          ratios.push({ measure: 'DNS memory (MiB) vs NSD (Pss of its processes)', of: { label: app.label, value: mib(rss) }, to: { label: 'NSD', value: mib(nsdPss) } });
          notes.push(`memory after the load: ${app.label} VmRSS ${fmt.mib(rss)} (RssAnon ${fmt.mib(anon)}, RssFile ${fmt.mib(file)}); NSD ${fmt.mib(nsdPss)} (Pss of its processes: shared pages split among them)`);
        }
        if (s.provisionRate) {
          // The same cached load, alternating: a window with the store quiet, then one while new domains arrive; each
          // after a whole pass over the pairs (the NXDOMAIN flood, or the provisioning, left the cache without them).
          log(`dns: UDP cached names, ${s.rounds} x (quiet, while provisioning ${s.provisionRate} domains/s), ${s.seconds} s windows`);
          const next = { i: 0 };
          const prov: Provisioned[] = [];
          const w = await alternate(
            s.rounds,
            async (i) => {
              await prime(dcmx, q);
              return window(dcmx, hitUdp, ` #${i + 1}, quiet`);
            },
            async (i) => {
              await prime(dcmx, q);
              const [win, p] = await provisionWhile(app.ports.ldap, s.provisionRate, next, () => window(dcmx, hitUdp, ` #${i + 1}, provisioning`));
              prov.push(p);
              return win;
            },
          );
          ratios.push(pairedRatio(
            `DNS UDP queries/s, cached names, while provisioning ${s.provisionRate} new domains/s vs quiet`, `${app.label}, provisioning`, w.b,
            `${app.label}, quiet`, w.a,
          ));
          notes.push(
            `provisioning: one LDAP connection bound as the administrator adds a new domain (p<i>.test: a zone of its own with SOA, ` +
              `NS and MX, objectClass mailDomain) every ${(1000 / s.provisionRate).toFixed(0)} ms, one add at a time, while dnsperf runs the ` +
              `cached pairs; each window after a whole pass over the pairs; per window: ${prov.map((p) => `${p.added} added (slowest ${fmt.ms(p.maxMs)} ms${p.behind ? `, ${p.behind} ticks skipped, the previous add unanswered` : ''})`).join('; ')}; ` +
              'the server\'s CPU per query includes the adds',
          );
          for (const p of prov) if (p.errors.length) notes.push(`provisioning: ${p.errors.length} adds failed, first: ${p.errors[0]}`);
        } else notes.push('provisioning run skipped (DCMX_BENCH_DNS_PROVISION_RATE=0)');
      } finally {
        await stopDcmx(app.child, notes, app.label);
      }

      // -------------------------------------------------------------- dcmx, answer cache off: the miss path
      if (s.miss) {
        log('dns: starting dcmx with DCMX_THREADS=1, DCMX_DNS_CACHE_ENTRIES=0');
        const app0 = await startAppliance({ ...env, DCMX_DNS_CACHE_ENTRIES: '0' }, 1, [], pin.server);
        try {
          const dcmx = serverOf(app0, `${app0.label}, cache off`);
          await waitForZone(dcmx.port, app0.child);
          await warm(dcmx, q);
          await compare('DNS UDP queries/s, answer cache off (the miss path), vs NSD', hitUdp, dcmx, nsdServer, 0.3);
        } finally {
          await stopDcmx(app0.child, notes, `${app0.label}, cache off`);
        }
      } else notes.push('miss path not measured (DCMX_BENCH_DNS_MISS=0)');

      // -------------------------------------------------------------- warm-up after a start
      {
        log(`dns: dcmx (1 thread) started afresh; ${s.warmSeconds} runs of dnsperf -l 1 from its ready line`);
        const appW = await startAppliance(env, 1, [], pin.server);
        try {
          // Back-to-back one-second runs (dnsperf -S 1 prints unreliable intervals): the first starts at the ready line.
          const per: number[] = [];
          for (let i = 0; i < s.warmSeconds; i++) {
            const r = await dnsperf(appW.child.pid, appW.ports.dns, udp(appW.ports.dns, q.hit, 1));
            rows.push(row(`${appW.label}, second ${i + 1} from start`, 'UDP', hitSet, r));
            const ok = /^NOERROR \d+/.test(r.rcodes) && !/,/.test(r.rcodes);
            if (!ok) notes.push(`warm-up, second ${i + 1}: the answers were ${r.rcodes}`);
            per.push(ok ? r.qps : NaN);
            if (i === 0) {
              ratios.push({
                measure: 'DNS warm-up: UDP queries/s in the first second after ready vs steady state',
                of: { label: `${appW.label}, first second`, value: per[0], cpuPerOp: cpuPerQuery(r), others: r.otherCpu / r.runSeconds },
                to: { label: `${appW.label}, steady`, value: steady, cpuPerOp: steadyCpu },
                goal: 0.5,
              });
            }
          }
          notes.push(
            `warm-up: ${appW.label} started afresh on the same store; one-second dnsperf runs (the same load), back to back, the first ` +
              `started when it printed its ready line: queries/s ${per.map((x) => fmt.int(x)).join(', ')}; steady state: the median ` +
              `of the cached UDP windows above, ${fmt.int(steady)}`,
          );
        } finally {
          await stopDcmx(appW.child, notes, `${appW.label}, warm-up`);
        }
      }
    } finally {
      if (nsd) {
        const code = await stop(nsd.child);
        if (code !== 0) notes.push(`NSD exited with ${code}: ${nsd.child.output().slice(-500)}`);
      }
    }

    // ---------------------------------------------------------------- Knot (information)
    const knotWhy = s.knot ? knotUnavailable() : 'DCMX_BENCH_KNOT=0';
    if (knotWhy) notes.push(`Knot not measured: ${knotWhy}`);
    else {
      log('dns: starting Knot');
      const knot = await startKnot(path.join(tmp, 'knot'), s.names, pin.server);
      try {
        const k: Server = { label: `Knot, ${KNOT_WORKERS} UDP + ${KNOT_WORKERS} TCP worker`, pid: knot.child.pid, port: knot.port };
        await warm(k, q);
        for (const [load, of] of [[hitUdp, dcmxUdp], [hitTcp, dcmxTcp]] as const) {
          const w = await window(k, load);
          ratios.push({ measure: `DNS ${load.transport} queries/s, cached names, vs Knot (one window, not alternated)`, of, to: windowsFigure(k.label, [w]) });
        }
      } finally {
        const code = await stop(knot.child);
        if (code !== 0) notes.push(`Knot exited with ${code}: ${knot.child.output().slice(-500)}`);
      }
    }

    // ---------------------------------------------------------------- two threads (information)
    if (s.twoThreads) {
      log('dns: starting dcmx with DCMX_THREADS=2 on every core');
      const app2 = await startAppliance(env, 2, [], pin.all);
      try {
        const dcmx = serverOf(app2, `${app2.label}, every core`);
        await waitForZone(dcmx.port, app2.child);
        await warm(dcmx, q);
        const w = await window(dcmx, hitUdp);
        ratios.push({ measure: 'DNS UDP queries/s, cached names, 2 threads on every core vs 1 thread on one', of: windowsFigure(dcmx.label, [w]), to: dcmxUdp });
        const spread = await threadSpread(app2, 'DNS queries (UDP and TCP)', ['dns', 'queries']);
        if (spread) notes.push(spread);
        notes.push(`${dcmx.label}: dnsperf stays on its own CPU, which the second thread shares`);
      } finally {
        await stopDcmx(app2.child, notes, app2.label);
      }
    }

    // ---------------------------------------------------------------- profiles (one thread, one load each)
    if (s.profile) {
      const profiled: [string, Record<string, string>, Load][] = [
        ['cached names over UDP', {}, hitUdp],
        [`NXDOMAIN flood (${fmt.int(s.nxNames)} random names, cache on)`, {}, nxUdp],
        ...(s.miss ? [['the miss path (DCMX_DNS_CACHE_ENTRIES=0), the pairs over UDP', { DCMX_DNS_CACHE_ENTRIES: '0' }, hitUdp] as [string, Record<string, string>, Load]] : []),
      ];
      for (const [i, [what, extra, load]] of profiled.entries()) {
        const profileDir = path.join(tmp, `prof-${i}`);
        log(`dns: dcmx (1 thread) under --cpu-prof: ${what}`);
        const appP = await startAppliance({ ...env, ...extra }, 1, ['--cpu-prof', `--cpu-prof-dir=${profileDir}`], pin.server);
        try {
          const dcmx = serverOf(appP, `${appP.label} --cpu-prof`);
          await waitForZone(dcmx.port, appP.child);
          await warm(dcmx, q);
          await window(dcmx, load);
        } finally {
          await stopDcmx(appP.child, notes, `${appP.label} --cpu-prof`);
        }
        text.push(`dcmx CPU profile, DNS ${what} (node --cpu-prof; includes start-up and the warm-up: a pass over the pairs over UDP, one over TCP):\n${summariseDir(profileDir)}`);
      }
    }

    // ---------------------------------------------------------------- signed against unsigned, one thread
    if (s.signed) {
      // The store above is unsigned (DCMX_DNSSEC=off). A second store, loaded and served with DCMX_DNSSEC on, holds the
      // same zone with a key.
      const signedDir = path.join(tmp, 'data-signed');
      fs.mkdirSync(signedDir, { mode: 0o700 });
      const signedEnv = { ...env, DCMX_DATA_DIR: signedDir, DCMX_DNSSEC: 'on' };
      log('dns: dcmx ldif import of the same zone, DCMX_DNSSEC=on');
      const imp2 = await execNode([DCMX_CLI, 'ldif', 'import', ldif], signedEnv);
      if (imp2.code !== 0) throw new Error(`dcmx ldif import (DCMX_DNSSEC=on) failed (${imp2.code}):\n${imp2.stderr.slice(-2000)}`);
      const signedFigures = new Map<boolean, { hit: Figure; cycle: Figure; distinct: Figure }>();
      for (const [zoneLabel, zoneEnv, signed] of [['signed zone', signedEnv, true], ['unsigned zone', env, false]] as const) {
        const app = await startAppliance(zoneEnv, 1, [], pin.server);
        try {
          const port = app.ports.dns;
          const pid = app.child.pid;
          await waitForZone(port, app.child);
          // Each answer to a DO query for h1 A: A and, in a signed zone, its RRSIG (RFC 4035 §3.1.1).
          const reply = await udpAsk(port, `h1.${ZONE}`, 1, 2000, true);
          const answers = reply ? reply.readUInt16BE(6) : 0;
          if (answers !== (signed ? 2 : 1)) throw new Error(`${zoneLabel}: a DO query for h1.${ZONE} A got ${answers} answer RRs`);
          const label = `${app.label}, ${zoneLabel}`;
          const fig = (r: PerfResult): Figure => ({ label, value: r.qps, cpuPerOp: cpuPerQuery(r), others: r.otherCpu / r.runSeconds });
          const none: Figure = { label, value: NaN };
          const f = { hit: none, cycle: none, distinct: none };
          // Warm-up: one whole pass over the pairs (dnsperf -n 1), so that the measured run finds every answer cached;
          // a pass at the rate of misses (each signed, in the signed zone) takes several seconds.
          log(`dns: ${label}: DO=1, warm-up: one pass over the pairs, then ${s.seconds} s of cached pairs`);
          await dnsperf(pid, port, udpDo(port, q.hit, 120, ['-n', '1']));
          const hit = await dnsperf(pid, port, udpDo(port, q.hit, s.seconds));
          measured.push([`${label} UDP DO=1`, hit]);
          rows.push(row(label, 'UDP', `DO=1, A+MX, ${fmt.int(2 * s.names)} pairs`, hit));
          f.hit = fig(hit);
          if (s.miss) {
            log(`dns: ${label}: DO=1, distinct names (NXDOMAIN: compact denial signed per query), ${s.seconds} s`);
            const dis = await dnsperf(pid, port, udpDo(port, q.distinct, s.seconds, ['-n', '1']));
            measured.push([`${label} UDP DO=1 distinct`, dis]);
            rows.push(row(label, 'UDP', `DO=1, distinct names (misses, ${signed ? 'an NSEC signed each' : 'NXDOMAIN'})`, dis));
            if (dis.sent >= q.distinctCount) notes.push(`the distinct-name file (${fmt.int(q.distinctCount)} names) ran out before ${s.seconds} s`);
            f.distinct = fig(dis);
            log(`dns: ${label}: DO=1, cache-defeating cycle, ${s.seconds} s`);
            const cyc = await dnsperf(pid, port, udpDo(port, q.cycle, s.seconds));
            measured.push([`${label} UDP DO=1 cycle`, cyc]);
            rows.push(row(label, 'UDP', `DO=1, 8-type cycle of ${fmt.int(q.cycleLength)} (answer misses)`, cyc));
            f.cycle = fig(cyc);
          }
          signedFigures.set(signed, f);
        } finally {
          await stopDcmx(app.child, notes, `${app.label}, ${zoneLabel}`);
        }
      }
      const sf = (signed: boolean, k: 'hit' | 'cycle' | 'distinct'): Figure => signedFigures.get(signed)?.[k] ?? { label: '-', value: NaN };
      ratios.push(
        { measure: 'DNS UDP DO=1 queries/s, signed vs unsigned zone, cached answers', of: sf(true, 'hit'), to: sf(false, 'hit') },
        { measure: 'DNS UDP DO=1 queries/s, signed vs unsigned zone, answer-cache misses (8-type cycle)', of: sf(true, 'cycle'), to: sf(false, 'cycle') },
        { measure: 'DNS UDP DO=1 queries/s, signed vs unsigned zone, distinct names (NXDOMAIN / compact denial)', of: sf(true, 'distinct'), to: sf(false, 'distinct') },
      );
      notes.push(
        'signed vs unsigned: one thread (DCMX_THREADS=1), every query with EDNS and DO (dnsperf -D), the same zone signed ' +
          '(DCMX_DNSSEC on: ECDSA P-256 online signing, one RRSIG per RRset, compact denial) and unsigned (the store above, ' +
          'DCMX_DNSSEC=off). Cached pairs come from the answer cache (no signing), filled by one whole pass over them before the ' +
          'measured run; in the cycle (8N keys, twice the cache) the answers miss but the signatures are cached per RRset ' +
          '(dnssec-sign.ts SignCache), so the NSEC of a name serves all its missing types; distinct names (u<i>.h<j>, dnsperf -n 1) ' +
          'sign one NSEC each (the worst case: one ECDSA signature per query)',
      );
    }

    notes.push(
      `NSD: server-count ${NSD_SERVERS}, verbosity 0, no database file, rrl-ratelimit 0 (no response rate limiting), its default responses (they add the zone's NS in the authority ` +
        'section and ns1\'s address: larger replies than dcmx\'s and Knot\'s, which carry the answer and, for MX, the mx A record). Knot: ' +
        `udp-workers/tcp-workers ${KNOT_WORKERS}, background-workers 1, log at warning. Both from generated configurations, in the ` +
        'foreground, as whoever runs the benchmark',
    );
    notes.push(
      `windows: ${s.rounds} pairs of ${s.seconds} s, dcmx then its peer, both running throughout; the ratio is the median of the ` +
        `pairs' ratios. dnsperf -c ${s.clients} clients, -q ${s.udpOutstanding} outstanding over UDP and -q ${s.tcpOutstanding} ` +
        `over TCP, -t 2 s timeout, no EDNS (replies <= 512 octets), after a warm-up of each server (one whole pass over the ` +
        'pairs over UDP, dnsperf -n 1, then one over TCP). Latencies are ' +
        'dnsperf\'s (average, max, stddev); CPU is per cent of one core over the run time, from /proc (a loopback UDP send also ' +
        'charges part of the receive path to the sender); "kernel" is interrupts, softirqs (where loopback packets are processed) and ' +
        'kernel threads on all cores, charged to no process; "other CPU" is every other process meanwhile: when it is high, someone ' +
        'else was using the machine and the figures are disturbed',
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
  return { tables: [table], text, ratios, memory };
}

/** The DNS benchmark module. */
export const dnsBenchmark: Benchmark = {
  name: 'dns',
  description: 'DNS queries/s, one core each: dcmx (1 thread) against NSD (server-count 1) in alternating windows; cached, miss path, ' +
    'NXDOMAIN flood, memory, warm-up; Knot, 2 threads and signed zones as information',
  run,
};
