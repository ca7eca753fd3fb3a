/**
 * LDAP benchmark: dcmx as a child process pinned to the server core, the
 * load generator (this process) on the other core.
 *
 * 1. Load the DIT of dit.ts (10,000 domains, 10,000 users by default) with
 *    pipelined AddRequests over 16 connections bound as the administrator.
 * 2. Equality searches by `mail` from 16 closed-loop clients (one
 *    connection each, one search outstanding, a random existing address,
 *    base o=internet, scope sub, all user attributes) for 10 s after a 1 s
 *    warm-up: searches/s, p50, p99, entries returned.
 * 3. The same search load against a null server (generator ceiling), and
 *    against OpenLDAP slapd (mdb) loaded with the same DIT when slapd is
 *    installed.
 * With DCMX_BENCH_PROFILE set (1|search, load, all), dcmx is also run under
 * `node --cpu-prof` for that phase, and the profile is summarised.
 *
 * Knobs (environment): DCMX_BENCH_DOMAINS (10000), DCMX_BENCH_SECONDS (10),
 * DCMX_BENCH_CLIENTS (16), DCMX_BENCH_DEPTH (adds outstanding per
 * connection, 4), DCMX_BENCH_SLAPD=0 to skip slapd, DCMX_BENCH_NULL=0 to skip
 * the null-server calibration.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Benchmark, Report, Table } from './report';
import { fmt } from './report';
import {
  benchTmp, duBytes, pinGenerator, SERVER_CORE, spawnPinned, stop, stopDcmx, waitForLine, type Child,
} from './proc';
import { DCMX_MAIN, dcmxEnv, envInt, envOn } from './env';
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
    domains: envInt('DCMX_BENCH_DOMAINS', 10_000),
    seconds: envInt('DCMX_BENCH_SECONDS', 10),
    warmup: 1,
    clients: envInt('DCMX_BENCH_CLIENTS', 16),
    depth: envInt('DCMX_BENCH_DEPTH', 4),
    profile,
    slapd: envOn('DCMX_BENCH_SLAPD'),
    nullServer: envOn('DCMX_BENCH_NULL'),
  };
}

const COLUMNS = ['server', 'operation', 'ops', 'ops/s', 'p50 ms', 'p99 ms', 'entries/op', 'errors', 'server CPU', 'gen CPU'];

function addRow(server: string, r: AddResult): string[] {
  return [
    server, 'add (pipelined)', fmt.int(r.adds), fmt.int(r.adds / r.wallSeconds), '-', '-', '-', String(r.errors.total),
    fmt.pct((100 * r.serverCpu) / r.wallSeconds), fmt.pct((100 * r.genCpu) / r.wallSeconds),
  ];
}

function searchRow(server: string, r: SearchResult): string[] {
  const sorted = Float64Array.from(r.latenciesMs).sort();
  return [
    server, 'search (mail=)', fmt.int(r.searches), fmt.int(r.searches / r.wallSeconds), fmt.ms(percentile(sorted, 50)),
    fmt.ms(percentile(sorted, 99)), r.searches ? (r.entries / r.searches).toFixed(2) : '-', String(r.errors.total),
    fmt.pct((100 * r.serverCpu) / r.wallSeconds), fmt.pct((100 * r.genCpu) / r.wallSeconds),
  ];
}

function closeAll(conns: WireConn[]): void {
  for (const c of conns) c.close();
}

/** Starts dist/server/main.js on ephemeral loopback ports; resolves with its LDAP port. */
async function startDcmx(dataDir: string, profileDir?: string): Promise<{ child: Child; port: number }> {
  const env = dcmxEnv(dataDir, { DCMX_HOSTNAME: 'mx.bench.test', DCMX_ADMIN_DN: ADMIN_DN, DCMX_ADMIN_PASSWORD: ADMIN_PASSWORD, DCMX_SUFFIX: SUFFIX });
  const args = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, DCMX_MAIN] : [DCMX_MAIN];
  const child = spawnPinned(process.execPath, args, SERVER_CORE, env);
  const m = await waitForLine(child, /dcmx ready .*\bldap=(\d+)/);
  return { child, port: Number(m[1]) };
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
  const pinNote = pinGenerator('servers', 'load generator (this process)');
  const { dir: tmp, remove: cleanup } = benchTmp('dcmx-bench-ldap-');
  const rows: string[][] = [];
  const notes: string[] = [];
  const text: string[] = [];
  const users = s.domains;
  notes.push(pinNote);
  /** Loads the DIT into `server`: its row (labelled `row`) and notes. */
  const measureLoad = async (server: string, port: number, pid: number, withSuffix: boolean, row = server): Promise<void> => {
    const added = await load(port, pid, s, withSuffix);
    rows.push(addRow(row, added));
    notes.push(phaseNote(server, added));
    errorNotes(`${server} add`, added, notes);
  };
  /** The search load against `server`: its row and notes. */
  const measureSearch = async (server: string, port: number, pid: number): Promise<void> => {
    const found = await search(port, pid, s);
    rows.push(searchRow(server, found));
    notes.push(genNote(`${server} search`, found));
    errorNotes(`${server} search`, found, notes);
  };
  notes.push(
    `DIT: ${fmt.int(s.domains)} domains + ${fmt.int(s.domains)} ou=people + ${fmt.int(users)} users; ` +
      `adds over ${s.clients} connections x ${s.depth} outstanding; searches: ${s.clients} clients, 1 outstanding each, ` +
      `${s.warmup} s warm-up + ${s.seconds} s measured`,
  );
  try {
    // ---------------------------------------------------------------- dcmx
    const dcmxData = path.join(tmp, 'dcmx');
    {
      log(`ldap: starting dcmx (${DCMX_MAIN})`);
      const profileDir = s.profile.has('load') ? path.join(tmp, 'prof-load') : undefined;
      const { child, port } = await startDcmx(dcmxData, profileDir);
      try {
        log(`ldap: dcmx pid ${child.pid} on port ${port}; loading ${fmt.int(s.domains * 3 + 1)} entries`);
        await measureLoad('dcmx', port, child.pid, false, profileDir ? 'dcmx --cpu-prof' : 'dcmx');
        if (!profileDir) {
          log(`ldap: dcmx searches for ${s.seconds} s`);
          await measureSearch('dcmx', port, child.pid);
        }
      } finally {
        await stopDcmx(child, notes, 'dcmx');
      }
      notes.push(`dcmx data dir after load: ${fmt.mib(duBytes(dcmxData))}`);
      if (profileDir) text.push(`dcmx CPU profile, load phase (node --cpu-prof):\n${summariseFile(findProfile(profileDir))}`);
    }
    if (s.profile.has('load')) {
      // The profiled load above left the data in place; search it unprofiled for the figures.
      const { child, port } = await startDcmx(dcmxData);
      try {
        log(`ldap: dcmx (restarted) searches for ${s.seconds} s`);
        await measureSearch('dcmx', port, child.pid);
      } finally {
        await stopDcmx(child, notes, 'dcmx');
      }
    }
    if (s.profile.has('search')) {
      const profileDir = path.join(tmp, 'prof-search');
      log(`ldap: dcmx under --cpu-prof, searches for ${s.seconds} s`);
      const { child, port } = await startDcmx(dcmxData, profileDir);
      try {
        const found = await search(port, child.pid, s);
        rows.push(searchRow('dcmx --cpu-prof', found));
        errorNotes('dcmx profiled search', found, notes);
      } finally {
        await stopDcmx(child, notes, 'dcmx profiled');
      }
      text.push(
        `dcmx CPU profile, search phase (node --cpu-prof; includes start-up, binds and warm-up):\n` +
          summariseFile(findProfile(profileDir)),
      );
    }

    // ---------------------------------------------------------------- generator ceiling
    if (s.nullServer) {
      log('ldap: null server (generator ceiling)');
      const child = spawnPinned(process.execPath, [path.join(__dirname, 'nullserver.js')], SERVER_CORE);
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
      notes.push(`slapd comparison skipped: ${why}`);
    } else {
      log('ldap: starting slapd (mdb)');
      const slapd = await startSlapd(path.join(tmp, 'slapd'));
      try {
        log(`ldap: slapd pid ${slapd.child.pid} on port ${slapd.port}; loading`);
        await measureLoad('slapd', slapd.port, slapd.child.pid, true);
        log(`ldap: slapd searches for ${s.seconds} s`);
        await measureSearch('slapd', slapd.port, slapd.child.pid);
      } finally {
        const code = await stop(slapd.child);
        if (code !== 0) notes.push(`slapd exited with ${code}: ${slapd.child.output().slice(-500)}`);
      }
      notes.push(`slapd mdb after load: ${fmt.mib(duBytes(slapd.dbDir))}`);
      notes.push(
        'slapd: generated slapd.conf, mdb, core/cosine/inetorgperson schemas + minimal dNSDomain2, mailDomain, ' +
          'mailDomainStatus, mailRecipient, inetMailUser; index objectClass,mail eq; rootdn bind',
      );
    }
  } finally {
    cleanup();
  }
  const table: Table = { title: 'LDAP', columns: COLUMNS, rows, notes };
  return { tables: [table], text };
}

/** The LDAP benchmark module. */
export const ldapBenchmark: Benchmark = {
  name: 'ldap',
  description: 'LDAP add throughput and equality-search latency (dcmx; null server; slapd when installed)',
  run,
};
