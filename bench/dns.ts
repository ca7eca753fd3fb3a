/**
 * DNS benchmark: dcmx as a child process pinned to the server core, dnsperf
 * pinned to the other core.
 *
 * 1. A zone bench.test with h0..h(N-1).bench.test, each with an A and an MX
 *    record (N = 10,000), written as LDIF and loaded with `dcmx ldif import`
 *    into a fresh data dir before the appliance starts.
 * 2. dnsperf over the N x {A, MX} (name, type) pairs, 1 s warm-up then
 *    10 s measured: over UDP, then over TCP (`-m tcp`). The answer cache
 *    (20,000 entries) holds every pair, so after the first pass these are
 *    cache hits.
 * 3. Cache misses, over UDP (the appliance has no switch to turn its cache
 *    off): (a) names that are all distinct and never repeated (`-n 1`),
 *    below existing names, so every query is an NXDOMAIN lookup that
 *    misses; (b) N x {A, MX, AAAA, TXT} pairs, shuffled, cycled: 4N distinct
 *    keys in a fixed cycle longer than the LRU, so every query misses (half
 *    answers, half NODATA).
 * Figures: queries/s, average / max / stddev latency as dnsperf reports
 * them, lost queries, rcodes, server CPU (from /proc) and dnsperf's CPU.
 *
 * Knobs (environment): DCMX_BENCH_DNS_NAMES (10000), DCMX_BENCH_SECONDS
 * (10), DCMX_BENCH_DNS_CLIENTS (dnsperf -c, 16), DCMX_BENCH_DNS_UDP_OUTSTANDING
 * (dnsperf -q over UDP, 100), DCMX_BENCH_DNS_TCP_OUTSTANDING (-q over TCP,
 * 200), DCMX_BENCH_DNS_MISS=0 to skip the cache-miss runs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as dgram from 'node:dgram';
import type { Benchmark, Report, Table } from './report';
import { fmt } from './report';
import {
  benchTmp, cpuSeconds, duBytes, execNode, GENERATOR_CORE, pinGenerator, SERVER_CORE, spawnPinned, stopDcmx, waitForLine, which, type Child,
} from './proc';
import { DCMX_CLI, DCMX_MAIN, dcmxEnv, envInt, envOn } from './env';
import { prng } from '../test/prng';

interface Settings {
  names: number;
  seconds: number;
  warmup: number;
  clients: number;
  udpOutstanding: number;
  tcpOutstanding: number;
  miss: boolean;
}

function settings(): Settings {
  return {
    names: envInt('DCMX_BENCH_DNS_NAMES', 10_000),
    seconds: envInt('DCMX_BENCH_SECONDS', 10),
    warmup: 1,
    clients: envInt('DCMX_BENCH_DNS_CLIENTS', 16),
    udpOutstanding: envInt('DCMX_BENCH_DNS_UDP_OUTSTANDING', 100),
    tcpOutstanding: envInt('DCMX_BENCH_DNS_TCP_OUTSTANDING', 200),
    miss: envOn('DCMX_BENCH_DNS_MISS'),
  };
}

const ZONE = 'bench.test';
const SUFFIX = 'o=internet';
const ADMIN_DN = `cn=admin,${SUFFIX}`;
const ADMIN_PASSWORD = 'bench-admin-secret';

const ipOf = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

/**
 * The zone as LDIF. It starts with the suffix entry: the store is fresh and
 * the appliance, which creates the suffix on first boot, has not run yet.
 */
function zoneLdif(names: number): string {
  const parts: string[] = [
    `dn: ${SUFFIX}\nobjectClass: organization\no: internet\n`,
    `dn: dc=test,${SUFFIX}\nobjectClass: domain\ndc: test\n`,
    `dn: dc=bench,dc=test,${SUFFIX}\nobjectClass: dNSDomain2\nobjectClass: domain\ndc: bench\ndNSTTL: 300\n` +
      `sOARecord: ns1.${ZONE}. hostmaster.${ZONE}. 1 3600 900 604800 60\nnSRecord: ns1.${ZONE}.\n`,
    `dn: dc=ns1,dc=bench,dc=test,${SUFFIX}\nobjectClass: dNSDomain2\ndc: ns1\naRecord: 10.255.0.53\n`,
    `dn: dc=mx,dc=bench,dc=test,${SUFFIX}\nobjectClass: dNSDomain2\ndc: mx\naRecord: 10.255.0.25\n`,
  ];
  for (let i = 0; i < names; i++) {
    parts.push(`dn: dc=h${i},dc=bench,dc=test,${SUFFIX}\nobjectClass: dNSDomain2\ndc: h${i}\naRecord: ${ipOf(i)}\nmXRecord: 10 mx.${ZONE}.\n`);
  }
  return parts.join('\n');
}

function shuffle<T>(a: T[], seed: number): T[] {
  const rnd = prng(seed);
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** Writes a dnsperf data file (one `name type` per line) by chunks. */
function writeQueries(file: string, count: number, line: (i: number) => string): void {
  const fd = fs.openSync(file, 'w');
  try {
    let buf = '';
    for (let i = 0; i < count; i++) {
      buf += line(i) + '\n';
      if (buf.length > 1 << 20) {
        fs.writeSync(fd, buf);
        buf = '';
      }
    }
    fs.writeSync(fd, buf);
  } finally {
    fs.closeSync(fd);
  }
}

/** One UDP query; resolves with the reply, or undefined after 2 s. */
function udpAsk(port: number, name: string, type: number): Promise<Buffer | undefined> {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(0x4242, 0);
  h.writeUInt16BE(1, 4);
  const q = Buffer.concat([h, ...name.split('.').flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)]), Buffer.from([0, 0, type, 0, 1])]);
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      resolve(undefined);
    }, 2000);
    s.on('message', (m) => {
      clearTimeout(timer);
      s.close();
      resolve(m);
    });
    s.send(q, port, '127.0.0.1');
  });
}

/** Checks that the loaded zone answers: h1 A and MX are NOERROR with one answer each. */
async function sanityCheck(port: number): Promise<void> {
  for (const type of [1, 15]) {
    const r = await udpAsk(port, `h1.${ZONE}`, type);
    if (!r) throw new Error(`no answer from dcmx for h1.${ZONE} type ${type}`);
    const rcode = r[3] & 0x0f;
    if (rcode !== 0 || r.readUInt16BE(6) !== 1) throw new Error(`h1.${ZONE} type ${type}: rcode ${rcode}, ${r.readUInt16BE(6)} answers`);
  }
}

interface PerfResult {
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
  serverCpu: number;
  genCpu: number;
  /** Interrupts and softirqs on all cores (loopback packet processing lands here). */
  irqCpu: number;
  /** Busy time of everything else on the machine. */
  otherCpu: number;
  /** Datagrams dropped by the kernel on the server's UDP socket (its receive buffer was full). */
  serverDrops: number;
  raw: string;
}

/** Parses dnsperf's statistics (the first block: query latency, not TCP connection latency). */
function parseDnsperf(out: string): Omit<PerfResult, 'serverCpu' | 'genCpu' | 'irqCpu' | 'otherCpu' | 'serverDrops' | 'raw'> {
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

/** CPU seconds of the whole machine (all cores) from /proc/stat: busy, and of that interrupts + softirqs; NaN if unavailable. */
function machineCpu(): { busy: number; irq: number } {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    return { busy: (f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] ?? 0)) / 100, irq: (f[5] + f[6]) / 100 };
  } catch {
    return { busy: NaN, irq: NaN };
  }
}

/** Datagrams the kernel dropped on the UDP socket bound to `port` (receive buffer full), from /proc/net/udp; NaN if not found. */
function udpDrops(port: number): number {
  try {
    const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
    for (const line of fs.readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[1]?.endsWith(hex)) return Number(f[f.length - 1]);
    }
  } catch {
    /* not Linux */
  }
  return NaN;
}

/**
 * Runs dnsperf pinned to the generator core; CPU of the server from /proc,
 * of dnsperf by polling its /proc entry; interrupt and softirq time of the
 * machine, and the busy time of every other process meanwhile.
 */
async function dnsperf(serverPid: number, port: number, args: string[]): Promise<PerfResult> {
  const dropsBefore = udpDrops(port);
  const before = cpuSeconds(serverPid);
  const machineBefore = machineCpu();
  const child = spawnPinned('dnsperf', args, GENERATOR_CORE);
  let genCpu = 0;
  const poll = setInterval(() => {
    const c = cpuSeconds(child.pid);
    if (Number.isFinite(c)) genCpu = c;
  }, 50);
  const code = await child.exited;
  clearInterval(poll);
  const serverCpu = cpuSeconds(serverPid) - before;
  const machine = machineCpu();
  const irqCpu = machine.irq - machineBefore.irq;
  const otherCpu = Math.max(0, machine.busy - machineBefore.busy - irqCpu - serverCpu - genCpu);
  const out = child.output();
  if (code !== 0) throw new Error(`dnsperf ${args.join(' ')} exited with ${code}:\n${out.slice(-2000)}`);
  return { ...parseDnsperf(out), serverCpu, genCpu, irqCpu, otherCpu, serverDrops: udpDrops(port) - dropsBefore, raw: out };
}

const COLUMNS = ['server', 'transport', 'query set', 'queries', 'queries/s', 'avg ms', 'max ms', 'stddev ms', 'lost', 'rcodes', 'server CPU', 'gen CPU', 'softirq', 'other CPU'];

function row(transport: string, set: string, r: PerfResult): string[] {
  return [
    'dcmx', transport, set, fmt.int(r.completed), fmt.int(r.qps), fmt.ms(r.avgMs), fmt.ms(r.maxMs), fmt.ms(r.stddevMs), fmt.int(r.lost),
    r.rcodes.replace(/\s*\(100\.00%\)/, '').replace(/\s+/g, ' '),
    fmt.pct((100 * r.serverCpu) / r.runSeconds), fmt.pct((100 * r.genCpu) / r.runSeconds),
    fmt.pct((100 * r.irqCpu) / r.runSeconds), fmt.pct((100 * r.otherCpu) / r.runSeconds),
  ];
}

async function run(log: (msg: string) => void): Promise<Report> {
  const s = settings();
  const rows: string[][] = [];
  const notes: string[] = [];
  const table: Table = { title: 'DNS', columns: COLUMNS, rows, notes };
  if (!which('dnsperf')) {
    notes.push('skipped: dnsperf is not installed (Debian package dnsperf)');
    return { tables: [table], text: [] };
  }
  notes.push(pinGenerator('dcmx', 'dnsperf (and this process)'));
  const { dir: tmp, remove: cleanup } = benchTmp('dcmx-bench-dns-');
  let child: Child | undefined;
  try {
    // ---------------------------------------------------------------- load
    const dataDir = path.join(tmp, 'data');
    fs.mkdirSync(dataDir, { mode: 0o700 });
    const ldif = path.join(tmp, 'zone.ldif');
    fs.writeFileSync(ldif, zoneLdif(s.names));
    // The environment of both the CLI import and the appliance: same data dir, same suffix.
    const env = dcmxEnv(dataDir, { DCMX_HOSTNAME: `mx.${ZONE}`, DCMX_ADMIN_DN: ADMIN_DN, DCMX_ADMIN_PASSWORD: ADMIN_PASSWORD, DCMX_SUFFIX: SUFFIX });
    log(`dns: dcmx ldif import of ${fmt.int(s.names + 5)} entries`);
    const t0 = Date.now();
    const imp = await execNode([DCMX_CLI, 'ldif', 'import', ldif], env);
    const importSeconds = (Date.now() - t0) / 1000;
    if (imp.code !== 0) throw new Error(`dcmx ldif import failed (${imp.code}):\n${imp.stderr.slice(-2000)}`);
    notes.push(
      `zone ${ZONE}: ${fmt.int(s.names)} names h0..h${s.names - 1}, each A + MX 10 mx.${ZONE}. (MX answers carry the ` +
        `mx A record as additional); loaded with \`dcmx ldif import\` before start-up in ${importSeconds.toFixed(1)} s ` +
        `(${fmt.int((s.names + 5) / importSeconds)} entries/s, whole CLI process); store ${fmt.mib(duBytes(dataDir))}`,
    );

    // ---------------------------------------------------------------- query files
    const hitFile = path.join(tmp, 'hit.txt');
    writeQueries(hitFile, 2 * s.names, (i) => `h${i >> 1}.${ZONE} ${i & 1 ? 'MX' : 'A'}`);
    const cycleTypes = ['A', 'MX', 'AAAA', 'TXT'];
    const cyclePairs = shuffle(Array.from({ length: cycleTypes.length * s.names }, (_, i) => i), 1);
    const cycleFile = path.join(tmp, 'miss-cycle.txt');
    writeQueries(cycleFile, cyclePairs.length, (k) => `h${cyclePairs[k] >> 2}.${ZONE} ${cycleTypes[cyclePairs[k] & 3]}`);
    // Enough distinct names that the run ends on its time limit long before the file does.
    const distinctCount = Math.max(200_000, 150_000 * s.seconds);
    const distinctFile = path.join(tmp, 'miss-distinct.txt');
    writeQueries(distinctFile, distinctCount, (i) => `u${i}.h${i % s.names}.${ZONE} ${i & 1 ? 'MX' : 'A'}`);

    // ---------------------------------------------------------------- dcmx
    log(`dns: starting dcmx (${DCMX_MAIN})`);
    child = spawnPinned(process.execPath, [DCMX_MAIN], SERVER_CORE, env);
    const m = await waitForLine(child, /dcmx ready .*\bdns=(\d+)/);
    const port = Number(m[1]);
    await sanityCheck(port);
    const pid = child.pid;
    const base = ['-s', '127.0.0.1', '-p', String(port), '-c', String(s.clients), '-t', '2'];
    const udp = (file: string, seconds: number, extra: string[] = []) =>
      [...base, '-d', file, '-l', String(seconds), '-q', String(s.udpOutstanding), ...extra];
    const tcp = (file: string, seconds: number) =>
      [...base, '-m', 'tcp', '-d', file, '-l', String(seconds), '-q', String(s.tcpOutstanding)];

    log(`dns: warm-up ${s.warmup} s (UDP, then TCP)`);
    await dnsperf(pid, port, udp(hitFile, s.warmup));
    await dnsperf(pid, port, tcp(hitFile, s.warmup));

    log(`dns: UDP, ${fmt.int(2 * s.names)} (name, type) pairs, ${s.seconds} s`);
    const measured: [string, PerfResult][] = [];
    const hitUdp = await dnsperf(pid, port, udp(hitFile, s.seconds));
    measured.push(['UDP cached', hitUdp]);
    rows.push(row('UDP', `A+MX, ${fmt.int(2 * s.names)} pairs (cached)`, hitUdp));
    log(`dns: TCP, same pairs, ${s.seconds} s`);
    const hitTcp = await dnsperf(pid, port, tcp(hitFile, s.seconds));
    measured.push(['TCP cached', hitTcp]);
    rows.push(row('TCP', `A+MX, ${fmt.int(2 * s.names)} pairs (cached)`, hitTcp));

    if (s.miss) {
      // Distinct names first: they fill the LRU with answers never asked again, so the cycle
      // after them starts from a cache holding none of its keys.
      log(`dns: UDP, ${fmt.int(distinctCount)} distinct names, once each, up to ${s.seconds} s`);
      const dis = await dnsperf(pid, port, udp(distinctFile, s.seconds, ['-n', '1']));
      measured.push(['UDP distinct', dis]);
      rows.push(row('UDP', 'distinct names, NXDOMAIN (misses)', dis));
      if (dis.sent >= distinctCount) notes.push(`the distinct-name file (${fmt.int(distinctCount)} names) ran out before ${s.seconds} s`);
      log(`dns: UDP, cache-defeating cycle of ${fmt.int(cyclePairs.length)} pairs, ${s.seconds} s`);
      const cyc = await dnsperf(pid, port, udp(cycleFile, s.seconds));
      measured.push(['UDP cycle', cyc]);
      rows.push(row('UDP', `A/MX/AAAA/TXT cycle of ${fmt.int(cyclePairs.length)} (misses)`, cyc));
      notes.push(
        'cache misses: the answer cache is an LRU of 20,000 encoded answers (DCMX_DNS_CACHE_ENTRIES). "distinct": every name new ' +
          `(u<i>.h<j>.${ZONE}, dnsperf -n 1), all NXDOMAIN lookups. "cycle": ${fmt.int(cyclePairs.length)} (name, type) pairs ` +
          `shuffled once and replayed in the same order, so each key comes back only after ${fmt.int(cyclePairs.length - 1)} ` +
          'others and has been evicted: every query misses; A/MX answer, AAAA/TXT are NODATA. Both still pay for inserting ' +
          'into the cache',
      );
      notes.push(`UDP: cached ${fmt.int(hitUdp.qps)} q/s vs uncached ${fmt.int(dis.qps)} q/s (distinct) and ${fmt.int(cyc.qps)} q/s (cycle): ` +
        `${(hitUdp.qps / dis.qps).toFixed(1)}x and ${(hitUdp.qps / cyc.qps).toFixed(1)}x`);
    }
    notes.push(
      `dnsperf ${s.seconds} s per run after a ${s.warmup} s warm-up, -c ${s.clients} clients, -q ${s.udpOutstanding} outstanding over UDP and ` +
        `-q ${s.tcpOutstanding} over TCP (the UDP socket asks for a 4 MiB receive buffer, capped by net.core.rmem_max), -t 2 s timeout, no EDNS (replies <= 512 octets). Latencies are dnsperf's (average, max, stddev); ` +
        'CPU is per cent of one core over the run time, from /proc (a loopback UDP send also charges part of the receive path to the sender); ' +
        '"softirq" is interrupt and softirq time on both cores (where loopback packets are processed, charged to no process); ' +
        '"other CPU" is every other process meanwhile: when it is high, someone else was using the machine and the figures are disturbed',
    );
    for (const [label, r] of measured) {
      if (r.lost || r.serverDrops > 0) {
        notes.push(`${label}: ${fmt.int(r.lost)} queries lost (no reply in 2 s); the kernel dropped ${fmt.int(r.serverDrops)} ` +
          'datagrams on dcmx\'s UDP socket (receive buffer full)');
      }
    }
  } finally {
    if (child) await stopDcmx(child, notes);
    cleanup();
  }
  return { tables: [table], text: [] };
}

/** The DNS benchmark module. */
export const dnsBenchmark: Benchmark = {
  name: 'dns',
  description: 'DNS queries/s and latency with dnsperf over UDP and TCP, cached and uncached (dcmx)',
  run,
};
