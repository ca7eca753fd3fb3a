/**
 * Provisioning benchmark: how soon a domain created by an RCPT is visible.
 *
 * dcmx runs as a child process with its default number of serving threads,
 * DCMX_PROVISIONING=allowlist and DCMX_PROVISION_ALLOW=bench.test (no
 * upstream DNS is involved; DCMX_UPSTREAM_DNS points at a dead loopback port
 * so nothing could ever reach the machine's resolver). This process is the
 * generator, on the generator's core (run.ts pins it); dcmx may run on any.
 * For each new domain d<i>.bench.test:
 *
 *   1. open an SMTP session (EHLO, MAIL FROM), then send
 *      RCPT TO:<x@d<i>.bench.test> at t0 and wait for its 250 (t1): the RCPT
 *      that creates the domain (policy, DIT chain, MX/SOA/NS, ou=people,
 *      _dmarc, one SQLite transaction with synchronous=FULL);
 *   2. right after that 250, at the same time:
 *      (i)  poll the DNS port over UDP for `MX d<i>.bench.test` until the
 *           answer is NOERROR with an MX record (t2; a query unanswered in
 *           200 ms is re-sent, a REFUSED/NXDOMAIN answer is re-asked at once);
 *      (ii) send a second RCPT TO:<y@d<i>.bench.test> in the same session:
 *           the routing table must already route the domain locally for it
 *           to get 250 without going through the policy again (t3). The
 *           admin HTTP API does not expose the routing table and `dcmx
 *           routes` is a process per look, so acceptance is the probe; at the
 *           end one `dcmx routes` checks that every domain is in the table.
 *
 * Phase 1 does this one domain at a time (latency without contention);
 * phase 2 with several sessions at once (throughput, latency under load).
 * Each domain is a new zone (bench.test itself is not a zone), as a new
 * customer domain would be.
 *
 * Knobs (environment): DCMX_BENCH_PROVISION_DOMAINS (1000 per phase; 200
 * in a short run), DCMX_THREADS (passed on to the appliance),
 * DCMX_BENCH_PROVISION_CONCURRENCY (16 for phase 2; 0 skips it).
 */
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { Benchmark, Report, Table } from './report';
import { fmt } from './report';
import { benchTmp, duBytes, execNode, stopDcmx, treeCpuSeconds } from './proc';
import { DCMX_CLI, dcmxEnv, envInt } from './env';
import { startAppliance, threadsNote, type Appliance } from './appliance';

const ZONE = 'bench.test';
const HOST = `mx.${ZONE}`;
const now = (): number => Number(process.hrtime.bigint()) / 1e6;

// ------------------------------------------------------------------ SMTP

/** A minimal line-oriented SMTP client (one command at a time). */
class Smtp {
  private buf = '';
  private waiting: ((line: string) => void) | undefined;
  private readonly replies: string[] = [];
  private failed: Error | undefined;

  private constructor(private readonly sock: net.Socket) {
    sock.setNoDelay(true);
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      let i: number;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i).replace(/\r$/, '');
        this.buf = this.buf.slice(i + 1);
        if (/^\d{3}-/.test(line)) continue; // continuation of a multi-line reply
        const w = this.waiting;
        this.waiting = undefined;
        if (w) w(line);
        else this.replies.push(line);
      }
    });
    const fail = (e: Error) => {
      this.failed = e;
      const w = this.waiting;
      this.waiting = undefined;
      w?.(`000 ${e.message}`);
    };
    sock.on('error', fail);
    sock.on('close', () => fail(new Error('connection closed')));
  }

  static async open(port: number): Promise<Smtp> {
    const sock = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    const c = new Smtp(sock);
    const greeting = await c.reply();
    if (!greeting.startsWith('220')) throw new Error(`greeting: ${greeting}`);
    return c;
  }

  reply(): Promise<string> {
    const r = this.replies.shift();
    if (r !== undefined) return Promise.resolve(r);
    if (this.failed) return Promise.resolve(`000 ${this.failed.message}`);
    return new Promise((resolve) => (this.waiting = resolve));
  }

  cmd(line: string): Promise<string> {
    this.sock.write(line + '\r\n');
    return this.reply();
  }

  close(): void {
    this.sock.end('QUIT\r\n');
    this.sock.destroy();
  }
}

// ------------------------------------------------------------------ DNS

/** A UDP DNS prober: one socket, queries matched to answers by id. */
class DnsProbe {
  private readonly sock = dgram.createSocket('udp4');
  private nextId = 1;
  private readonly pending = new Map<number, (rcode: number, answers: number) => void>();
  queries = 0;
  /** Questions with no reply within their timeout (re-sent). */
  timeouts = 0;
  /** Answers without the MX (the write not visible yet), by rcode. */
  readonly stale = new Map<number, number>();

  constructor(private readonly port: number) {
    this.sock.on('message', (msg) => {
      if (msg.length < 12) return;
      const cb = this.pending.get(msg.readUInt16BE(0));
      if (!cb) return;
      this.pending.delete(msg.readUInt16BE(0));
      cb(msg[3] & 0x0f, msg.readUInt16BE(6));
    });
  }

  private packet(id: number, name: string, type: number): Buffer {
    const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')]));
    const header = Buffer.alloc(12);
    header.writeUInt16BE(id, 0);
    header.writeUInt16BE(0, 2); // standard query, no recursion
    header.writeUInt16BE(1, 4);
    const tail = Buffer.alloc(5);
    tail.writeUInt16BE(type, 1);
    tail.writeUInt16BE(1, 3);
    return Buffer.concat([header, ...labels, tail]);
  }

  /** One question; resolves with rcode and answer count, or undefined after `timeoutMs`. */
  ask(name: string, type: number, timeoutMs: number): Promise<{ rcode: number; answers: number } | undefined> {
    const id = this.nextId;
    this.nextId = (this.nextId % 65535) + 1;
    this.queries++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.pending.set(id, (rcode, answers) => {
        clearTimeout(timer);
        resolve({ rcode, answers });
      });
      this.sock.send(this.packet(id, name, type), this.port, '127.0.0.1');
    });
  }

  /** Polls until `name` has an MX answer; resolves with the number of questions it took (throws after `limitMs`). */
  async untilMx(name: string, limitMs = 10_000): Promise<number> {
    const start = Date.now();
    for (let n = 1; ; n++) {
      const r = await this.ask(name, 15, 200);
      if (r && r.rcode === 0 && r.answers > 0) return n;
      if (!r) this.timeouts++;
      else this.stale.set(r.rcode, (this.stale.get(r.rcode) ?? 0) + 1);
      if (Date.now() - start > limitMs) throw new Error(`no MX answer for ${name} after ${limitMs} ms (last ${r ? `rcode ${r.rcode}, ${r.answers} answers` : 'no reply'})`);
    }
  }

  close(): void {
    this.sock.close();
  }
}

// ------------------------------------------------------------------ the measurement

interface Sample {
  rcptMs: number;
  mxMs: number;
  routedMs: number;
  polls: number;
}

interface Phase {
  label: string;
  samples: Sample[];
  failures: string[];
  seconds: number;
  serverCpu: number;
  genCpu: number;
  dnsTimeouts: number;
  dnsStale: string;
}

/** One domain, as described in the module comment. */
async function oneDomain(smtpPort: number, dns: DnsProbe, domain: string): Promise<Sample> {
  const c = await Smtp.open(smtpPort);
  try {
    const ehlo = await c.cmd('EHLO bench.client');
    if (!ehlo.startsWith('250')) throw new Error(`EHLO: ${ehlo}`);
    const mail = await c.cmd('MAIL FROM:<bench@client.test>');
    if (!mail.startsWith('250')) throw new Error(`MAIL: ${mail}`);
    const t0 = now();
    const r1 = await c.cmd(`RCPT TO:<x@${domain}>`);
    const t1 = now();
    if (!r1.startsWith('250')) throw new Error(`RCPT x@${domain}: ${r1}`);
    const [polls, routed] = await Promise.all([
      dns.untilMx(domain).then((n) => ({ n, at: now() })),
      c.cmd(`RCPT TO:<y@${domain}>`).then((r) => ({ r, at: now() })),
    ]);
    if (!routed.r.startsWith('250')) throw new Error(`second RCPT y@${domain}: ${routed.r}`);
    return { rcptMs: t1 - t0, mxMs: polls.at - t0, routedMs: routed.at - t0, polls: polls.n };
  } finally {
    c.close();
  }
}

async function phase(label: string, smtpPort: number, dnsPort: number, pid: number, names: string[], concurrency: number): Promise<Phase> {
  const dns = new DnsProbe(dnsPort);
  const samples: Sample[] = [];
  const failures: string[] = [];
  let next = 0;
  const cpu0 = treeCpuSeconds(pid);
  const gen0 = process.cpuUsage();
  const t0 = now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < names.length) {
      const name = names[next++];
      try {
        samples.push(await oneDomain(smtpPort, dns, name));
      } catch (e) {
        failures.push(e instanceof Error ? e.message : String(e));
      }
    }
  }));
  const seconds = (now() - t0) / 1000;
  const gen = process.cpuUsage(gen0);
  dns.close();
  const rcodes: Record<number, string> = { 0: 'NOERROR without MX', 3: 'NXDOMAIN', 5: 'REFUSED', 2: 'SERVFAIL' };
  const dnsStale = [...dns.stale].map(([rc, n]) => `${n} x ${rcodes[rc] ?? `rcode ${rc}`}`).join(', ');
  return { label, samples, failures, seconds, serverCpu: treeCpuSeconds(pid) - cpu0, genCpu: (gen.user + gen.system) / 1e6, dnsTimeouts: dns.timeouts, dnsStale };
}

function pct(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

const COLUMNS = ['phase', 'domains', 'failed', 'domains/s', 'measure', 'p50 ms', 'p99 ms', 'max ms', 'server CPU', 'gen CPU'];

function rows(p: Phase): string[][] {
  const measures: [string, (s: Sample) => number][] = [
    ['RCPT -> 250 (domain created)', (s) => s.rcptMs],
    ['RCPT -> MX answered over DNS', (s) => s.mxMs],
    ['RCPT -> 2nd RCPT 250 (routed)', (s) => s.routedMs],
  ];
  return measures.map(([m, f], i) => {
    const v = p.samples.map(f).sort((a, b) => a - b);
    return [
      i === 0 ? p.label : '', i === 0 ? fmt.int(p.samples.length) : '', i === 0 ? fmt.int(p.failures.length) : '',
      i === 0 ? fmt.int(p.samples.length / p.seconds) : '', m, fmt.ms(pct(v, 50)), fmt.ms(pct(v, 99)), fmt.ms(v[v.length - 1] ?? NaN),
      i === 0 ? fmt.pct((100 * p.serverCpu) / p.seconds) : '', i === 0 ? fmt.pct((100 * p.genCpu) / p.seconds) : '',
    ];
  });
}

async function run(log: (msg: string) => void): Promise<Report> {
  const domains = envInt('DCMX_BENCH_PROVISION_DOMAINS', 1000, 1, 200);
  const concurrency = envInt('DCMX_BENCH_PROVISION_CONCURRENCY', 16, 0);
  const notes: string[] = [];
  const table: Table = { title: 'Provisioning at RCPT (new domain -> DNS and routing)', columns: COLUMNS, rows: [], notes };
  notes.push('dcmx may run on any core, the generator (this process) on the generator\'s (proc.ts pinning); CPU is per cent of one core');
  const { dir: tmp, remove: cleanup } = benchTmp('dcmx-bench-prov-');
  let app: Appliance | undefined;
  try {
    const dataDir = path.join(tmp, 'data');
    fs.mkdirSync(dataDir, { mode: 0o700 });
    const env = dcmxEnv(dataDir, {
      DCMX_HOSTNAME: HOST,
      DCMX_ADMIN_PASSWORD: 'bench-admin-secret',
      DCMX_SHA_CRYPT_ROUNDS: '1000',
      DCMX_PBKDF2_ITERATIONS: '1000',
      DCMX_PROVISIONING: 'allowlist',
      DCMX_PROVISION_ALLOW: ZONE,
      DCMX_UPSTREAM_DNS: '127.0.0.1:9',
      DCMX_SMTP_MAX_CLIENTS: '1000',
      // The rate limits on new domains are lifted: this measures the write path, not the limits.
      DCMX_PROVISION_CLIENT_RATE: '1000000',
      DCMX_PROVISION_RATE: '1000000',
      DCMX_PROVISION_HOURLY: '1000000',
    });
    log(`provision: starting dcmx (DCMX_THREADS ${process.env.DCMX_THREADS ? `=${process.env.DCMX_THREADS}` : 'unset: its default'})`);
    app = await startAppliance(env);
    notes.push(threadsNote([app]));
    const child = app.child;
    const dnsPort = app.ports.dns;
    const smtpPort = app.ports.smtp;

    // Warm-up: a few domains outside the measured sets (JIT, SQLite pages, first zone).
    await phase('warm-up', smtpPort, dnsPort, child.pid, Array.from({ length: 20 }, (_, i) => `w${i}.${ZONE}`), 1);

    log(`provision: phase 1, ${domains} domains one at a time`);
    const p1 = await phase('sequential', smtpPort, dnsPort, child.pid, Array.from({ length: domains }, (_, i) => `d${i}.${ZONE}`), 1);
    table.rows.push(...rows(p1));
    const phases = [p1];
    if (concurrency > 0) {
      log(`provision: phase 2, ${domains} domains, ${concurrency} sessions at once`);
      const p2 = await phase(`${concurrency} at once`, smtpPort, dnsPort, child.pid, Array.from({ length: domains }, (_, i) => `c${i}.${ZONE}`), concurrency);
      table.rows.push(...rows(p2));
      phases.push(p2);
    }
    for (const p of phases) {
      const first = p.samples.filter((s) => s.polls === 1).length;
      notes.push(`${p.label}: the first DNS question already had the MX for ${fmt.int(first)} of ${fmt.int(p.samples.length)} domains ` +
        `(max ${Math.max(0, ...p.samples.map((s) => s.polls))} questions); questions unanswered within 200 ms (re-sent): ${p.dnsTimeouts}; ` +
        `answers without the MX after the 250 (a stale view): ${p.dnsStale || 'none'}`);
      if (p.failures.length) notes.push(`${p.label}: ${p.failures.length} failed, first: ${p.failures[0]}`);
    }

    // Every domain in the routing table and the zone list, as the CLI sees them.
    log('provision: checking `dcmx routes`');
    const routes = await execNode([DCMX_CLI, 'routes'], env, { maxBuffer: 256 * 1024 * 1024, timeout: 120_000 });
    const local = routes.stdout.split('\n').filter((l) => /\.bench\.test\tlocal$/.test(l)).length;
    const expected = 20 + domains * phases.length;
    notes.push(`\`dcmx routes\` at the end: ${fmt.int(local)} local routes under ${ZONE} (expected ${fmt.int(expected)})${routes.code ? `; exit ${routes.code}: ${routes.stderr.slice(0, 200)}` : ''}`);
    notes.push(`store after ${fmt.int(expected)} new domains (each a zone with SOA/NS/MX/TXT, ou=people, _dmarc): ${fmt.mib(duBytes(dataDir))}`);
    notes.push('policy: DCMX_PROVISIONING=allowlist, DCMX_PROVISION_ALLOW=bench.test, rate limits lifted, so no upstream DNS lookup is in the path ' +
      '(with mx the figures would add the upstream MX + A/AAAA round trips)');
    notes.push('one SMTP session per domain (connect, EHLO, MAIL untimed); RCPT -> 250 includes the policy, the one provisioning ' +
      'transaction (synchronous=FULL) and the routing table / cache update; the MX poll and the second RCPT start together ' +
      'right after the 250, both timed from the first RCPT; CPU is per cent of one core over the phase');
  } finally {
    if (app) await stopDcmx(app.child, notes);
    cleanup();
  }
  return { tables: [table], text: [] };
}

export const provisionBenchmark: Benchmark = {
  name: 'provision',
  description: 'new domain at RCPT -> MX over DNS and routing table (dcmx child with its default threads, generator beside it)',
  run,
};
