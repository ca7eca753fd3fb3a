/**
 * SMTP benchmark (issue 14: one core each): dcmx with DCMX_THREADS=1
 * against a private Postfix instance (postfix.ts), each pinned with its
 * whole process tree to the server core, fed by Postfix's smtp-source on
 * the generator's core (proc.ts pinning).
 *
 * Each run gets a fresh server (a fresh data dir and appliance with one mail
 * domain and one local user, bench.test and user@bench.test, added over
 * LDAP; or a fresh Postfix instance delivering user@bench.test to a Maildir
 * with virtual(8)), one warm-up message, then smtp-source sends 2,000
 * messages of 4 KiB to that user over 16 parallel sessions:
 *   - "new connection per message": `smtp-source -s 16 -m 2000 -l 4096`
 *     (each session connects, sends one message, QUITs, reconnects), in
 *     alternating runs: dcmx, Postfix, dcmx, Postfix... (alternate.ts);
 *   - "connection reuse": the same with `-d` ("don't disconnect after
 *     sending a message; send the next message over the same connection"),
 *     one run each, as information.
 * Figures: accepted msgs/s (2,000 / smtp-source's wall time: every message
 * got its 250, which both servers give only after the message is fsynced),
 * the time from the start of the run until all 2,000 are files in the
 * user's Maildir new/ (polled every 20 ms), and the server's CPU
 * (user+system of the process and its descendants, /proc) over that time,
 * per message; the appliance's VmRSS after start and after the run. Next to
 * them, as information: dcmx with DCMX_THREADS=2 on every core (one
 * new-connection run), and smtp-sink (accepts and discards: the generator's
 * ceiling). Ratios for the summary, pair by pair and their median:
 * new-connection msgs/s against Postfix (goal at least 1.5x) and the time
 * until all are in the Maildir against Postfix's (goal at most 1/1.5).
 *
 * Knobs (environment): DCMX_BENCH_SMTP_MESSAGES (2000; 500 in a short run),
 * DCMX_BENCH_SMTP_SESSIONS (16), DCMX_BENCH_SMTP_SIZE (4096),
 * DCMX_BENCH_ROUNDS (pairs of runs, 3; 2), DCMX_BENCH_SMTP_SINK=0 to skip
 * the smtp-sink calibration, DCMX_BENCH_POSTFIX=0 to skip Postfix,
 * DCMX_BENCH_POSTFIX_LOG=1 to keep Postfix's log (see postfix.ts),
 * DCMX_BENCH_TWO_THREADS=0 to skip the two-thread run, DCMX_BENCH_PIN=0 to
 * pin nothing (proc.ts), DCMX_BENCH_PROFILE=smtp (or 1) to run one more
 * new-connection run with a one-thread dcmx under `node --cpu-prof`, its
 * profile summarised (profile.ts).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Benchmark, Figure, Memory, Ratio, Report, Table } from './report';
import { fmt } from './report';
import { benchTmp, cpuWindow, freePort, pinning, spawnChild, stop, stopDcmx, waitForPort, which, type Child, type CpuWindow } from './proc';
import { dcmxEnv, envInt, envOn, rounds, twoThreads } from './env';
import { applianceMemory, applianceRss, startAppliance, threadSpread, type Appliance } from './appliance';
import { alternate, pairedRatio, windowsFigure, type Window } from './alternate';
import { profileWanted, summariseDir } from './profile';
import { postfixUnavailable, startPostfix } from './postfix';
import { addRequestOp, OP, WireConn, type AddEntry } from './wire';

/** The administrator of the benchmark appliances, and the mail domain and user the load goes to. */
export const ADMIN_DN = 'cn=admin,o=internet';
export const ADMIN_PASSWORD = 'bench-admin-secret';
export const DOMAIN = 'bench.test';
export const USER = `user@${DOMAIN}`;

/** The SMTP load: smtp-source's messages, sessions and message size; whether to calibrate with smtp-sink, and to measure Postfix. */
export interface Settings {
  messages: number;
  sessions: number;
  size: number;
  sink: boolean;
  postfix: boolean;
}

function settings(): Settings {
  return {
    messages: envInt('DCMX_BENCH_SMTP_MESSAGES', 2000, 1, 500),
    sessions: envInt('DCMX_BENCH_SMTP_SESSIONS', 16),
    size: envInt('DCMX_BENCH_SMTP_SIZE', 4096),
    sink: envOn('DCMX_BENCH_SMTP_SINK'),
    postfix: envOn('DCMX_BENCH_POSTFIX'),
  };
}

/** The DC-tree entries of the benchmark's mail domain and its one user. */
export const ENTRIES: AddEntry[] = [
  { dn: 'dc=test,o=internet', attrs: [['objectClass', ['top', 'domain']], ['dc', ['test']]] },
  {
    dn: 'dc=bench,dc=test,o=internet',
    attrs: [['objectClass', ['top', 'domain', 'dNSDomain', 'dNSDomain2', 'mailDomain']], ['dc', ['bench']], ['mXRecord', ['10 mx.bench.test.']]],
  },
  { dn: 'ou=people,dc=bench,dc=test,o=internet', attrs: [['objectClass', ['top', 'organizationalUnit']], ['ou', ['people']]] },
  {
    dn: 'uid=user,ou=people,dc=bench,dc=test,o=internet',
    attrs: [
      ['objectClass', ['top', 'person', 'organizationalPerson', 'inetOrgPerson', 'inetMailUser']],
      ['uid', ['user']], ['cn', ['Bench User']], ['sn', ['User']], ['mail', [USER]],
    ],
  },
];

/** Adds `entries` (default: the domain and its user) one at a time over one connection bound as the administrator. */
export async function provision(ldapPort: number, entries: AddEntry[] = ENTRIES): Promise<void> {
  const c = await WireConn.connect(ldapPort);
  try {
    await c.bind(ADMIN_DN, ADMIN_PASSWORD);
    for (const e of entries) await c.request(addRequestOp(e), OP.addResponse, `add ${e.dn}`);
  } finally {
    c.close();
  }
}

/** Runs smtp-source on the generator's CPU; resolves with its wall seconds (rejects on a non-zero exit). */
export async function smtpSource(bin: string, args: string[]): Promise<number> {
  const t0 = performance.now();
  const c = spawnChild(bin, args, undefined, undefined, pinning().generator);
  const code = await c.exited;
  const seconds = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`smtp-source ${args.join(' ')} exited with ${code}: ${c.output().slice(-1000)}`);
  return seconds;
}

/** smtp-source's arguments: `messages` of `s.size` bytes to `to` over `sessions` at host:port (reuse: -d). */
export function sourceArgs(s: Settings, reuse: boolean, port: number, messages = s.messages, sessions = s.sessions, to = USER, host = '127.0.0.1'): string[] {
  return [
    ...(reuse ? ['-d'] : []), '-s', String(sessions), '-m', String(messages), '-l', String(s.size),
    '-f', 'sender@source.test', '-t', to, '-M', 'source.test', `${host}:${port}`,
  ];
}

/** A mail server under test: where it listens, how much it has delivered, how to stop it. */
export interface MailServer {
  label: string;
  child: Child;
  port: number;
  /** Files delivered into the user's Maildir so far (new/ and cur/). */
  delivered(): number;
  /** Stops it, noting anything worth a note, and removes its files. */
  stop(notes: string[]): Promise<void>;
}

/** Files in a Maildir's new/ and cur/ (0 while it does not exist). */
export function maildirCount(maildir: string): number {
  let n = 0;
  for (const sub of ['new', 'cur']) {
    try {
      n += fs.readdirSync(path.join(maildir, sub)).length;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  return n;
}

/**
 * A fresh appliance with `threads` serving threads over a fresh data dir in
 * `tmp`, provisioned with `entries` (default: the domain and user), for
 * `sessions` concurrent sessions of one client; `extra` environment on top;
 * on the CPUs `cpus` (a taskset list) when given; `nodeArgs` before the
 * script (--cpu-prof).
 */
export async function startDcmx(
  tmp: string, threads: number, sessions: number, entries: AddEntry[] = ENTRIES, extra: Record<string, string> = {}, cpus?: string,
  nodeArgs: string[] = [],
): Promise<MailServer & { app: Appliance; dataDir: string }> {
  const dataDir = fs.mkdtempSync(path.join(tmp, 'dcmx-'));
  const env = dcmxEnv(dataDir, {
    DCMX_HOSTNAME: 'mx.bench.test',
    DCMX_ADMIN_DN: ADMIN_DN,
    DCMX_ADMIN_PASSWORD: ADMIN_PASSWORD,
    // Nothing here looks outside; a dead loopback port keeps it so.
    DCMX_UPSTREAM_DNS: '127.0.0.1:9',
    // smtp-source is one client with `sessions` connections, closing one and opening the next at
    // once: the server may not have seen a close yet when its successor arrives. Postfix exempts
    // its mynetworks (loopback) from its client connection limit (smtpd_client_event_limit_exceptions);
    // the same headroom here (the default, 20, is for strangers).
    DCMX_SMTP_CLIENT_CONNECTIONS: String(4 * sessions),
    ...extra,
  });
  const app = await startAppliance(env, threads, nodeArgs, cpus);
  try {
    await provision(app.ports.ldap, entries);
  } catch (e) {
    await stopDcmx(app.child, []);
    throw e;
  }
  return {
    app,
    dataDir,
    label: app.label,
    child: app.child,
    port: app.ports.smtp,
    delivered: () => maildirCount(path.join(dataDir, 'mail', DOMAIN, 'user')),
    async stop(notes) {
      await stopDcmx(app.child, notes, app.label);
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A fresh Postfix instance in a fresh directory under `tmp` (its whole process tree on `cpus` when given). */
export async function startPostfixServer(tmp: string, cpus?: string): Promise<MailServer> {
  const dir = fs.mkdtempSync(path.join(tmp, 'postfix-'));
  const pf = await startPostfix(dir, DOMAIN, 'user', cpus);
  return {
    label: 'Postfix',
    child: pf.child,
    port: pf.port,
    delivered: () => maildirCount(pf.maildir),
    async stop(notes) {
      const code = await stop(pf.child);
      // The master passes SIGTERM on to its daemons and ends by it: -1 (a signal) is its normal stop.
      if (code !== 0 && code !== -1) notes.push(`Postfix's master exited with ${code}: ${pf.child.output().slice(-500)} ${pf.log()}`);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** What one measured run gives (measure). */
export interface RunResult {
  acceptSeconds: number;
  deliverSeconds: number;
  delivered: number;
  /** From the start of the run until every message is delivered and smtp-source has exited. */
  cpu: CpuWindow;
}

/** Waits until `server` has delivered `target` messages in all; rejects on `failed()`, its exit, or after `limitMs`. */
export async function untilDelivered(server: MailServer, target: number, limitMs: number, failed: () => unknown): Promise<number> {
  const deadline = Date.now() + limitMs;
  let n: number;
  while ((n = server.delivered()) < target) {
    const f = failed();
    if (f) throw f;
    if (Date.now() > deadline) throw new Error(`${server.label}: only ${n} of ${target} messages delivered after ${limitMs / 1000} s`);
    if (server.child.proc.exitCode !== null) throw new Error(`${server.label} exited:\n${server.child.output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return n;
}

/** One measured run on a fresh `server`, which the caller stops. */
export async function measure(bin: string, s: Settings, reuse: boolean, server: MailServer, log: (m: string) => void): Promise<RunResult> {
  // Warm-up: one message end to end (routing table, cache, Maildir creation, daemons started).
  await smtpSource(bin, sourceArgs(s, false, server.port, 1, 1));
  const base = await untilDelivered(server, 1, 30_000, () => undefined);
  const target = base + s.messages;
  log(`smtp: ${server.label}, ${reuse ? 'connection reuse' : 'new connection per message'}: pid ${server.child.pid} port ${server.port}; ${s.messages} messages`);
  const win = cpuWindow(server.child.pid, 'children');
  const t0 = performance.now();
  let acceptSeconds = NaN;
  let failure: unknown;
  const source = smtpSource(bin, sourceArgs(s, reuse, server.port)).then((sec) => {
    acceptSeconds = sec;
  });
  source.catch((e) => {
    failure = e;
  });
  const n = await untilDelivered(server, target, 300_000, () => failure);
  const deliverSeconds = (performance.now() - t0) / 1000;
  await source;
  return { acceptSeconds, deliverSeconds, delivered: n - base, cpu: win() };
}

/** smtp-sink: what the generator reaches against a server that discards everything. */
async function sinkCeiling(source: string, sink: string, s: Settings, reuse: boolean): Promise<number> {
  const port = await freePort();
  const c = spawnChild(sink, ['-u', 'nobody', '-4', `127.0.0.1:${port}`, '1024'], undefined, undefined, pinning().server);
  try {
    // smtp-sink prints nothing when ready: wait for the port.
    await waitForPort(port, c);
    return await smtpSource(source, sourceArgs(s, reuse, port));
  } finally {
    await stop(c, 2000);
  }
}

const COLUMNS = ['server', 'connections', 'messages', 'accepted msgs/s', 'accept s', 'all in Maildir s', 'server CPU s', 'CPU ms/msg', 'gen CPU s', 'kernel s', 'other CPU s'];

/** The windows of one run: accepted msgs/s, and the seconds until all were in the Maildir. */
interface RunWindows {
  rate: Window;
  deliver: Window;
}

async function run(log: (msg: string) => void): Promise<Report> {
  const s = settings();
  const pin = pinning();
  const pairs = rounds();
  const source = which('smtp-source');
  if (!source) throw new Error('smtp-source not found (Debian package postfix)');
  const { dir: tmp, remove: cleanup } = benchTmp('dcmx-bench-smtp-');
  const rows: string[][] = [];
  const notes: string[] = [];
  const memory: Memory[] = [];
  const ratios: Ratio[] = [];
  notes.push(
    `${pin.note}; CPU seconds over the run (until all delivered and smtp-source ` +
      'done): server = the server process and its descendants, gen = smtp-source, kernel = interrupts, softirqs and kernel threads ' +
      '(journal commits of the fsyncs), other = every other process but this one (when high, someone else was using the machine ' +
      'and the figures are disturbed)',
  );
  notes.push(
    `smtp-source -s ${s.sessions} -m ${s.messages} -l ${s.size} to one local user (${USER}); ` +
      `new connection per message: ${pairs} pairs of alternating runs (dcmx, Postfix, ...); reuse = -d (next message on the same ` +
      `connection), one run each; a fresh server (data dir and appliance, or Postfix instance) per run, after one warm-up message; ` +
      `files on ${os.tmpdir()}`,
  );
  /** One run against a fresh server made by `start`: its row and windows, and the server stopped whatever happens. */
  const runOn = async (reuse: boolean, start: () => Promise<MailServer & { app?: Appliance }>, tag = ''): Promise<RunWindows> => {
    const server = await start();
    try {
      const idle = server.app ? applianceRss(server.app) : NaN;
      const r = await measure(source, s, reuse, server, log);
      rows.push([
        server.label + tag, reuse ? `reuse (${s.sessions})` : 'one per message', fmt.int(s.messages), fmt.int(s.messages / r.acceptSeconds),
        r.acceptSeconds.toFixed(2), r.deliverSeconds.toFixed(2), r.cpu.serverCpu.toFixed(2), ((1000 * r.cpu.serverCpu) / s.messages).toFixed(2),
        r.cpu.genCpu.toFixed(2), r.cpu.kernelCpu.toFixed(2), r.cpu.otherCpu.toFixed(2),
      ]);
      if (server.app) {
        const spread = await threadSpread(server.app, `messages accepted (${reuse ? 'reuse' : 'new connections'})`, ['intake', 'messages']);
        if (spread) notes.push(spread);
        const { rss, anon, file } = applianceMemory(server.app);
        memory.push({
          bench: 'smtp', server: server.label + tag, load: `${fmt.int(s.messages)} messages, ${reuse ? 'connection reuse' : 'a connection each'}`,
          idleBytes: idle, afterBytes: rss, afterParts: { anon, file },
        });
      }
      log(`smtp: ${server.label}: ${fmt.int(s.messages / r.acceptSeconds)} msgs/s accepted, all delivered after ${r.deliverSeconds.toFixed(2)} s`);
      const cpuPerOp = (1e6 * r.cpu.serverCpu) / s.messages;
      const others = r.cpu.otherCpu / r.cpu.wallSeconds;
      return { rate: { value: s.messages / r.acceptSeconds, cpuPerOp, others }, deliver: { value: r.deliverSeconds, cpuPerOp, others } };
    } finally {
      await server.stop(notes);
    }
  };
  const dcmx = (threads: number, cpus: string | undefined, nodeArgs: string[] = []) => () =>
    startDcmx(tmp, threads, s.sessions, ENTRIES, {}, cpus, nodeArgs);
  const text: string[] = [];
  const postfix = () => startPostfixServer(tmp, pin.server);
  try {
    const why = s.postfix ? postfixUnavailable() : 'DCMX_BENCH_POSTFIX=0';
    if (why) notes.push(`Postfix not measured: ${why}`);
    const none: RunWindows = { rate: { value: NaN, cpuPerOp: NaN, others: 0 }, deliver: { value: NaN, cpuPerOp: NaN, others: 0 } };
    const w = await alternate(
      pairs,
      (i) => runOn(false, dcmx(1, pin.server), ` #${i + 1}`),
      async (i) => (why ? none : runOn(false, postfix, ` #${i + 1}`)),
    );
    const label = 'dcmx, 1 thread';
    const peer = why ? [] : w.b;
    ratios.push(pairedRatio('SMTP new-connection accepted msgs/s vs Postfix', label, w.a.map((x) => x.rate), 'Postfix', peer.map((x) => x.rate), { goal: 1.5 }));
    ratios.push(pairedRatio(
      `SMTP new connections: seconds until all ${fmt.int(s.messages)} are in the Maildir vs Postfix's`, label, w.a.map((x) => x.deliver),
      'Postfix', peer.map((x) => x.deliver), { goal: 1 / 1.5, atMost: true },
    ));
    const reuse1 = await runOn(true, dcmx(1, pin.server));
    if (!why) {
      const reusePf = await runOn(true, postfix);
      ratios.push({ measure: 'SMTP connection-reuse accepted msgs/s vs Postfix (one run each)', of: windowsFigure(label, [reuse1.rate]), to: windowsFigure('Postfix', [reusePf.rate]) });
      notes.push(
        'Postfix: a private instance (own main.cf/master.cf, queue and data dirs under the temp dir), smtpd on a loopback port, ' +
          `virtual(8) delivering ${USER} to a Maildir, no chroot, Postfix's defaults otherwise (process limits, in_flow_delay); ` +
          `its logging goes to syslog${fs.existsSync('/dev/log') ? '' : ', which nothing listens to here (no /dev/log)'}; ` +
          'dcmx runs at DCMX_LOG_LEVEL=warn',
      );
    }
    if (twoThreads()) {
      const two = await runOn(false, dcmx(2, pin.all), ', every core');
      ratios.push({
        measure: 'SMTP new-connection msgs/s, 2 threads on every core vs 1 thread on one', of: windowsFigure('dcmx, 2 threads', [two.rate]),
        to: windowsFigure(label, w.a.map((x) => x.rate)),
      });
    }
    if (profileWanted('smtp')) {
      const profileDir = path.join(tmp, 'prof');
      await runOn(false, dcmx(1, pin.server, ['--cpu-prof', `--cpu-prof-dir=${profileDir}`]), ' --cpu-prof');
      text.push(`dcmx CPU profile, SMTP new connection per message (node --cpu-prof; includes start-up, provisioning and the warm-up message):\n${summariseDir(profileDir)}`);
    }
    const sink = which('smtp-sink');
    if (!s.sink) notes.push('smtp-sink calibration skipped (DCMX_BENCH_SMTP_SINK=0)');
    else if (!sink) notes.push('smtp-sink calibration skipped: smtp-sink not found');
    else {
      for (const reuse of [false, true]) {
        log(`smtp: smtp-sink, ${reuse ? 'reuse' : 'new connection per message'}`);
        const sec = await sinkCeiling(source, sink, s, reuse);
        rows.push([
          'smtp-sink (discards)', reuse ? `reuse (${s.sessions})` : 'one per message', fmt.int(s.messages), fmt.int(s.messages / sec),
          sec.toFixed(2), '-', '-', '-', '-', '-', '-',
        ]);
      }
      notes.push('smtp-sink rows: the generator ceiling (smtp-sink accepts and discards, on the server core)');
    }
  } finally {
    cleanup();
  }
  const table: Table = { title: 'SMTP', columns: COLUMNS, rows, notes };
  return { tables: [table], text, ratios, memory };
}

/** The SMTP benchmark module. */
export const smtpBenchmark: Benchmark = {
  name: 'smtp',
  description: 'SMTP intake msgs/s and time until all are in the Maildir, one core each: dcmx (1 thread) against Postfix in ' +
    'alternating runs; reuse, 2 threads and smtp-sink as information',
  run,
};
