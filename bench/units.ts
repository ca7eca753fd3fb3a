/**
 * Remote transfer units benchmark (issue 11, section 3): a dcmx appliance
 * holding the directory on 127.0.0.1 and two remote transfer units
 * (DCMX_ROLE=mta, each its own process and data dir) on 127.0.0.2 and
 * 127.0.0.3, following it over LDAP Content Sync; the three processes may
 * run on any core, smtp-source (smtp.ts smtpSource) and this process on the
 * generator's (proc.ts pinning).
 *
 * The directory: the mail domain bench.test (MX mx.bench.test, the
 * appliance, which the units know as DCMX_DIRECTORY_HOST: the domain is
 * local on them) with users whose `mailHost` names a unit, so each unit
 * delivers them into its own Maildirs (mailbox placement: nothing is
 * relayed). The units bind as the administrator, over StartTLS.
 *
 * 1. Throughput: smtp-source sends the messages of 4 KiB over new
 *    connections, first all to unit 1 (what one unit takes here), then half
 *    to each unit at once (each to its own user, half the sessions each);
 *    accepted msgs/s = all messages / the wall time until the smtp-source
 *    runs ended, and the time until all are in the units' Maildirs. The
 *    units share this machine's cores and disk (each commits and fsyncs
 *    its own queue and Maildirs), where separate hosts would not. In the
 *    same run, as in the `smtp` benchmark (with its helpers): a fresh
 *    appliance alone (DCMX_THREADS=2, no units) and a private Postfix
 *    instance, each fed by one smtp-source with all the sessions.
 * 2. Directory reads per message: the units' own figures before and after
 *    a window (GET /stats of each unit: the cache's `directoryReads`, the
 *    source's LDAP `searches`), over the throughput run (one user per
 *    unit), and over a window of messages to many users (this process
 *    sends them over 4 SMTP sessions per unit, each message to one user
 *    drawn at random from that unit's users, after a first message to every
 *    one of them: a warm cache, as at steady state).
 * 3. Change → remote cache latency: changes made one at a time over one
 *    LDAP connection to the appliance, cycling through: a
 *    mailAlternateAddress added to an entry, that address removed again,
 *    a user deleted. Before each, both units are asked (RCPT TO) for the
 *    address it affects and must give the old answer (so it is cached,
 *    negative or positive); then, from the moment the LDAP request is sent,
 *    each unit is asked again every DCMX_BENCH_UNITS_PROBE_MS until its
 *    answer changes (250 <-> 550). The latency of a unit is that moment
 *    minus the send: it includes the appliance's commit, the Content Sync
 *    message, the unit applying it, and up to one probe interval; it is
 *    also given from the LDAP response (the commit done) on. p50, p99 and
 *    max over every (change, unit); the goal is p99 <= 1 s (target
 *    100 ms). Two phases: the units idle but for the probes, then under
 *    mail load (2 more sessions per unit sending to random users of its
 *    own all along). No test-only door is used: the SMTP door is the
 *    observation point.
 *
 * Knobs (environment): DCMX_BENCH_UNITS_MESSAGES (2000; 500 in a short
 * run: the throughput messages, split over the units), DCMX_BENCH_UNITS_SESSIONS
 * (16), DCMX_BENCH_UNITS_USERS (200 users per unit for the reads window; 50 short),
 * DCMX_BENCH_UNITS_READS_MESSAGES (2000 per unit; 300 short), DCMX_BENCH_UNITS_CHANGES
 * (300 per phase; 60 short), DCMX_BENCH_UNITS_PROBE_MS (1), DCMX_BENCH_POSTFIX=0 to
 * skip Postfix (see smtp.ts).
 */
import * as http from 'node:http';
import * as os from 'node:os';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Benchmark, Figure, Memory, Ratio, Report, Table } from './report';
import { fmt } from './report';
import { benchTmp, cpuWindow, rssBytes, spawnChild, stopDcmx, waitForLine, which, type Child } from './proc';
import { DCMX_MAIN, dcmxEnv, envInt, envOn } from './env';
import { percentile } from './ldapload';
import { postfixUnavailable } from './postfix';
import { SERVER_NODE_ARGS, type Appliance } from './appliance';
import {
  ADMIN_DN, ADMIN_PASSWORD, DOMAIN, ENTRIES, maildirCount, measure, smtpSource, sourceArgs, startDcmx, startPostfixServer, untilDelivered,
  type MailServer, type RunResult, type Settings as SmtpSettings,
} from './smtp';
import { delRequestOp, modifyRequestOp, OP, WireConn, type AddEntry } from './wire';
import { RawSmtp } from '../test/fixtures/smtp';

const APPLIANCE_HOST = `mx.${DOMAIN}`;
const PEOPLE = `ou=people,dc=bench,dc=test,o=internet`;
const now = (): number => performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const randomOf = <T>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)];

interface Settings {
  smtp: SmtpSettings;
  usersPerUnit: number;
  readsMessages: number;
  changes: number;
  probeMs: number;
}

function settings(): Settings {
  return {
    smtp: {
      messages: envInt('DCMX_BENCH_UNITS_MESSAGES', 2000, 2, 500),
      sessions: envInt('DCMX_BENCH_UNITS_SESSIONS', 16, 2),
      size: 4096,
      sink: false,
      postfix: envOn('DCMX_BENCH_POSTFIX'),
    },
    usersPerUnit: envInt('DCMX_BENCH_UNITS_USERS', 200, 1, 50),
    readsMessages: envInt('DCMX_BENCH_UNITS_READS_MESSAGES', 2000, 1, 300),
    changes: envInt('DCMX_BENCH_UNITS_CHANGES', 300, 3, 60),
    probeMs: envInt('DCMX_BENCH_UNITS_PROBE_MS', 1, 0),
  };
}

// ------------------------------------------------------------------ the directory

/** A user entry below ou=people: `local@bench.test`, its mailbox on `mailHost` when given. */
function user(local: string, mailHost?: string): AddEntry {
  return {
    dn: `uid=${local},${PEOPLE}`,
    attrs: [
      ['objectClass', ['top', 'person', 'organizationalPerson', 'inetOrgPerson', 'inetMailUser']],
      ['uid', [local]], ['cn', [local]], ['sn', [local]], ['mail', [`${local}@${DOMAIN}`]],
      ...(mailHost ? [['mailHost', [mailHost]] as [string, string[]]] : []),
    ],
  };
}

const unitHost = (n: number): string => `unit${n}.${DOMAIN}`;
/** The user smtp-source writes to through unit n. */
const loadUser = (n: number): string => `load${n}`;
/** The users of unit n for the reads window. */
const manyUsers = (n: number, count: number): string[] => Array.from({ length: count }, (_, i) => `u${n}x${i}`);
/** The entry whose addresses the changes add and remove, and the users they delete. */
const PROBE_USER = 'probe';
const victim = (k: number): string => `gone${k}`;

/** The domain (smtp.ts's entries), the users of both units, the probe entry and the users the changes delete. */
function deploymentEntries(s: Settings): AddEntry[] {
  const entries = [...ENTRIES, user(PROBE_USER)];
  for (const n of [1, 2]) {
    entries.push(user(loadUser(n), unitHost(n)));
    for (const u of manyUsers(n, s.usersPerUnit)) entries.push(user(u, unitHost(n)));
  }
  // Both change phases (idle, under mail load): changes 0 .. 2 * changes - 1.
  for (let k = 2; k < 2 * s.changes; k += 3) entries.push(user(victim(k)));
  return entries;
}

// ------------------------------------------------------------------ the units

/** A running remote transfer unit. */
interface Unit {
  n: number;
  label: string;
  child: Child;
  host: string;
  smtp: number;
  http: number;
  dataDir: string;
}

/**
 * Starts unit `n` (DCMX_ROLE=mta) on 127.0.0.(n+1) against the appliance's
 * LDAP port over StartTLS (the appliance's generated certificate, in its
 * data dir `applianceDir`, trusted; its name checked against
 * DCMX_DIRECTORY_HOST); resolves on its ready line.
 */
async function startUnit(tmp: string, n: number, ldapPort: number, applianceDir: string, sessions: number): Promise<Unit> {
  const dataDir = fs.mkdtempSync(path.join(tmp, `unit${n}-`));
  const host = `127.0.0.${n + 1}`;
  const env = dcmxEnv(dataDir, {
    DCMX_ROLE: 'mta',
    DCMX_LISTEN: host,
    DCMX_HOSTNAME: unitHost(n),
    DCMX_DIRECTORY_URL: `ldap://127.0.0.1:${ldapPort}`,
    DCMX_DIRECTORY_HOST: APPLIANCE_HOST,
    DCMX_DIRECTORY_STARTTLS: 'on',
    DCMX_DIRECTORY_CA: path.join(applianceDir, 'tls', 'smtp-cert.pem'),
    DCMX_DIRECTORY_BIND_DN: ADMIN_DN,
    DCMX_DIRECTORY_PASSWORD: ADMIN_PASSWORD,
    DCMX_UPSTREAM_DNS: '127.0.0.1:9',
    DCMX_SMTP_CLIENT_CONNECTIONS: String(4 * sessions),
  });
  for (const k of ['DCMX_LDAP_PORT', 'DCMX_DNS_PORT', 'DCMX_THREADS']) delete env[k];
  const child = spawnChild(process.execPath, [...SERVER_NODE_ARGS, DCMX_MAIN], env);
  try {
    const m = await waitForLine(child, /dcmx ready role=mta smtp=(\d+) http=(\d+)/);
    return { n, label: `unit ${n}`, child, host, smtp: Number(m[1]), http: Number(m[2]), dataDir };
  } catch (e) {
    child.proc.kill('SIGKILL');
    await child.exited;
    throw e;
  }
}

/** A unit as smtp.ts's MailServer: its load user's Maildir counts. */
function unitServer(u: Unit): MailServer {
  return {
    label: u.label,
    child: u.child,
    port: u.smtp,
    delivered: () => maildirCount(path.join(u.dataDir, 'mail', DOMAIN, loadUser(u.n))),
    stop: (notes) => stopDcmx(u.child, notes, u.label),
  };
}

/** GET /stats of a unit's admin endpoint, parsed. */
function unitStats(u: Unit): Promise<UnitStats> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: u.host, port: u.http, path: '/stats', timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        try {
          if (res.statusCode !== 200) throw new Error(`GET /stats of ${u.label}: ${res.statusCode} ${body}`);
          const s = JSON.parse(body) as { cache: { directoryReads: number }; directory: { searches: number }; smtp: { messages: number } };
          resolve({ reads: s.cache.directoryReads, searches: s.directory.searches, messages: s.smtp.messages });
        } catch (e) {
          reject(e);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`GET /stats of ${u.label}: timed out`)));
    req.on('error', reject);
  });
}

/** The figures of a unit's GET /stats this benchmark reads. */
interface UnitStats {
  /** The cache's directoryReads: loads of a missing key from the directory. */
  reads: number;
  /** The source's LDAP searches (cache loads and SMTP AUTH look-ups). */
  searches: number;
  /** Messages accepted. */
  messages: number;
}

/** Reads, searches and messages summed over the units between two snapshots. */
function statsDelta(before: UnitStats[], after: UnitStats[]): UnitStats {
  const d = { reads: 0, searches: 0, messages: 0 };
  after.forEach((a, i) => {
    d.reads += a.reads - before[i].reads;
    d.searches += a.searches - before[i].searches;
    d.messages += a.messages - before[i].messages;
  });
  return d;
}

// ------------------------------------------------------------------ SMTP clients

/** An SMTP session open in a transaction (EHLO, MAIL FROM), asking RCPT TO questions. */
class Prober {
  private rcpts = 0;
  private constructor(private readonly client: RawSmtp) {}

  static async open(u: Unit): Promise<Prober> {
    const { client, greeting } = await RawSmtp.connect(u.smtp, 10_000, { host: u.host });
    if (greeting.code !== 220) throw new Error(`${u.label} greeting: ${greeting.raw}`);
    await client.expect('EHLO probe.test', 250);
    await client.expect('MAIL FROM:<probe@source.test>', 250);
    return new Prober(client);
  }

  /** Whether the unit accepts `address` now: 250 true, 550 false, anything else throws. */
  async accepts(address: string): Promise<boolean> {
    if (++this.rcpts > 90) {
      // RFC 5321 §4.5.3.1.8: a transaction takes at least 100 recipients (dcmx counts refused ones too); start a new one before.
      await this.client.expect('RSET', 250);
      await this.client.expect('MAIL FROM:<probe@source.test>', 250);
      this.rcpts = 1;
    }
    const r = await this.client.cmd(`RCPT TO:<${address}>`);
    if (r.code === 250) return true;
    if (r.code === 550) return false;
    throw new Error(`RCPT TO:<${address}>: ${r.raw}`);
  }

  close(): Promise<void> {
    return this.client.quit();
  }
}

/**
 * Sends messages of about `size` bytes over one session, each to the
 * recipient `next()` gives, until it gives none; resolves with how many
 * were sent.
 */
async function sendMessages(u: Unit, size: number, next: () => string | undefined): Promise<number> {
  const { client, greeting } = await RawSmtp.connect(u.smtp, 10_000, { host: u.host });
  try {
    if (greeting.code !== 220) throw new Error(`${u.label} greeting: ${greeting.raw}`);
    await client.expect('EHLO load.test', 250);
    const body = `Subject: bench\r\n\r\n${'x'.repeat(76)}\r\n`.repeat(Math.max(1, Math.round(size / 96)));
    let sent = 0;
    for (let to = next(); to !== undefined; to = next(), sent++) {
      await client.expect('MAIL FROM:<sender@source.test>', 250);
      await client.expect(`RCPT TO:<${to}>`, 250);
      await client.expect('DATA', 354);
      await client.write(`${body}.\r\n`);
      const r = await client.reply();
      if (r.code !== 250) throw new Error(`${u.label}: end of DATA: ${r.raw}`);
    }
    return sent;
  } finally {
    await client.quit();
  }
}

// ------------------------------------------------------------------ the measures

/** Throughput through `units` at once: an smtp-source per unit, each with its share of the messages and sessions, to that unit's load user. */
async function unitsThroughput(bin: string, s: SmtpSettings, app: Child, units: Unit[], log: (m: string) => void): Promise<RunResult & { stats: UnitStats }> {
  const servers = units.map(unitServer);
  // Warm-up: one message end to end through each (cache, Maildir creation).
  const before0 = servers.map((sv) => sv.delivered());
  await Promise.all(units.map((u) => smtpSource(bin, sourceArgs(s, false, u.smtp, 1, 1, `${loadUser(u.n)}@${DOMAIN}`, u.host))));
  const base = await Promise.all(servers.map((sv, i) => untilDelivered(sv, before0[i] + 1, 30_000, () => undefined)));
  const half = Math.floor(s.messages / units.length);
  log(`units: ${units.length} units, ${half} messages each over ${s.sessions / units.length} sessions`);
  const before = await Promise.all(units.map(unitStats));
  const win = cpuWindow([app.pid, ...units.map((u) => u.child.pid)], 'children');
  const t0 = now();
  let failure: unknown;
  const sources = units.map((u) =>
    smtpSource(bin, sourceArgs(s, false, u.smtp, half, Math.max(1, s.sessions / units.length), `${loadUser(u.n)}@${DOMAIN}`, u.host)),
  );
  const accepted = Promise.all(sources).then(() => (now() - t0) / 1000);
  accepted.catch((e) => (failure = e));
  const n = await Promise.all(servers.map((sv, i) => untilDelivered(sv, base[i] + half, 300_000, () => failure)));
  const deliverSeconds = (now() - t0) / 1000;
  const acceptSeconds = await accepted;
  const cpu = win();
  const after = await Promise.all(units.map(unitStats));
  return { acceptSeconds, deliverSeconds, delivered: n.reduce((a, b, i) => a + b - base[i], 0), cpu, stats: statsDelta(before, after) };
}

/** Messages to many users: a first message to each user of each unit, then `s.readsMessages` per unit to random ones; the reads of the second part. */
async function manyRecipients(s: Settings, units: Unit[], log: (m: string) => void): Promise<{ warm: UnitStats; steady: UnitStats; seconds: number }> {
  const SESSIONS = 4;
  const users = units.map((u) => manyUsers(u.n, s.usersPerUnit).map((l) => `${l}@${DOMAIN}`));
  log(`units: a first message to each of ${s.usersPerUnit} users per unit`);
  const s0 = await Promise.all(units.map(unitStats));
  await Promise.all(units.map((u, i) => {
    let next = 0;
    return Promise.all(Array.from({ length: SESSIONS }, () => sendMessages(u, 1024, () => users[i][next++])));
  }));
  const s1 = await Promise.all(units.map(unitStats));
  log(`units: ${s.readsMessages} messages per unit to random users`);
  const t0 = now();
  await Promise.all(units.map((u, i) => {
    let left = s.readsMessages;
    return Promise.all(Array.from({ length: SESSIONS }, () => sendMessages(u, 1024, () => (left-- > 0 ? randomOf(users[i]) : undefined))));
  }));
  const seconds = (now() - t0) / 1000;
  const s2 = await Promise.all(units.map(unitStats));
  return { warm: statsDelta(s0, s1), steady: statsDelta(s1, s2), seconds };
}

/** One change and the address it affects: its answer before and after. */
interface Change {
  kind: string;
  address: string;
  before: boolean;
  after: boolean;
  op: Buffer;
  response: number;
}

function change(k: number): Change {
  const probeDn = `uid=${PROBE_USER},${PEOPLE}`;
  switch (k % 3) {
    case 0: {
      const address = `alias${k}@${DOMAIN}`;
      return { kind: 'address added', address, before: false, after: true, op: modifyRequestOp(probeDn, [{ op: 'add', type: 'mailAlternateAddress', values: [address] }]), response: OP.modifyResponse };
    }
    case 1: {
      const address = `alias${k - 1}@${DOMAIN}`;
      return { kind: 'address removed', address, before: true, after: false, op: modifyRequestOp(probeDn, [{ op: 'delete', type: 'mailAlternateAddress', values: [address] }]), response: OP.modifyResponse };
    }
    default:
      return { kind: 'user deleted', address: `${victim(k)}@${DOMAIN}`, before: true, after: false, op: delRequestOp(`uid=${victim(k)},${PEOPLE}`), response: OP.delResponse };
  }
}

/**
 * Latencies of the changes: per kind, every (change, unit) in ms from the
 * request (Infinity: not seen within the limit), and from its response
 * (0 when the unit had it first); the LDAP response times.
 */
interface Latencies {
  byKind: Map<string, { fromRequest: number[]; fromResponse: number[] }>;
  ldapMs: number[];
  probes: number;
  /** Messages the background load sent meanwhile, and over how many seconds. */
  messages: number;
  seconds: number;
  /** CPU every other process on the machine used meanwhile, as a share of one core. */
  others: number;
}

const CHANGE_LIMIT_MS = 5000;
/** SMTP sessions per unit that send mail while the changes of the loaded phase are timed. */
const LOAD_SESSIONS = 2;

/**
 * Changes `from` .. `from + s.changes - 1`, one at a time, each timed until
 * both units answer anew; with `load`, LOAD_SESSIONS sessions per unit send
 * messages to the unit's users meanwhile.
 */
async function changeLatency(
  s: Settings, app: Appliance, units: Unit[], from: number, load: boolean, log: (m: string) => void,
): Promise<Latencies> {
  const conn = await WireConn.connect(app.ports.ldap);
  const probers: Prober[] = [];
  const out: Latencies = { byKind: new Map(), ldapMs: [], probes: 0, messages: 0, seconds: 0, others: NaN };
  const win = cpuWindow([app.child.pid, ...units.map((u) => u.child.pid)]);
  let loading = load;
  let background: Promise<number[][]> = Promise.resolve([]);
  const t0 = now();
  try {
    await conn.bind(ADMIN_DN, ADMIN_PASSWORD);
    for (const u of units) probers.push(await Prober.open(u));
    if (load) {
      background = Promise.all(units.map((u) => {
        const users = manyUsers(u.n, s.usersPerUnit).map((l) => `${l}@${DOMAIN}`);
        return Promise.all(Array.from({ length: LOAD_SESSIONS }, () => sendMessages(u, 1024, () => (loading ? randomOf(users) : undefined))));
      }));
      background.catch(() => (loading = false));
    }
    log(`units: ${s.changes} changes, one at a time${load ? `, ${LOAD_SESSIONS} SMTP sessions per unit sending meanwhile` : ''}`);
    for (let k = from; k < from + s.changes; k++) {
      const c = change(k);
      for (const [i, p] of probers.entries()) {
        if ((await p.accepts(c.address)) !== c.before) throw new Error(`${units[i].label}: ${c.address} is not ${c.before ? 'accepted' : 'refused'} before change ${k} (${c.kind})`);
      }
      const t0 = now();
      const done = conn.request(c.op, c.response, `change ${k} (${c.kind})`).then(() => now() - t0);
      const seen = await Promise.all(probers.map(async (p) => {
        for (;;) {
          out.probes++;
          if ((await p.accepts(c.address)) === c.after) return now() - t0;
          if (now() - t0 > CHANGE_LIMIT_MS) return Infinity;
          if (s.probeMs) await sleep(s.probeMs);
        }
      }));
      const responded = await done;
      out.ldapMs.push(responded);
      const lists = out.byKind.get(c.kind) ?? { fromRequest: [], fromResponse: [] };
      lists.fromRequest.push(...seen);
      lists.fromResponse.push(...seen.map((ms) => Math.max(0, ms - responded)));
      out.byKind.set(c.kind, lists);
      await sleep(5);
    }
  } finally {
    loading = false;
    conn.close();
    for (const p of probers) await p.close();
    out.messages = (await background).flat().reduce((a, b) => a + b, 0);
    out.seconds = (now() - t0) / 1000;
    const cpu = win();
    out.others = cpu.otherCpu / cpu.wallSeconds;
  }
  return out;
}

// ------------------------------------------------------------------ the run

const THROUGHPUT_COLUMNS = ['server', 'messages', 'accepted msgs/s', 'accept s', 'all in Maildir s', 'server CPU s', 'CPU ms/msg', 'gen CPU s', 'kernel s', 'other CPU s'];

function throughputRow(label: string, messages: number, r: RunResult): string[] {
  return [
    label, fmt.int(messages), fmt.int(messages / r.acceptSeconds), r.acceptSeconds.toFixed(2), r.deliverSeconds.toFixed(2), r.cpu.serverCpu.toFixed(2),
    ((1000 * r.cpu.serverCpu) / messages).toFixed(2), r.cpu.genCpu.toFixed(2), r.cpu.kernelCpu.toFixed(2), r.cpu.otherCpu.toFixed(2),
  ];
}

function sorted(xs: number[]): Float64Array {
  return Float64Array.from(xs).sort();
}

async function run(log: (msg: string) => void): Promise<Report> {
  const s = settings();
  const source = which('smtp-source');
  if (!source) throw new Error('smtp-source not found (Debian package postfix)');
  const { dir: tmp, remove: cleanup } = benchTmp('dcmx-bench-units-');
  const tNotes: string[] = [];
  const rNotes: string[] = [];
  const lNotes: string[] = [];
  const tRows: string[][] = [];
  const rRows: string[][] = [];
  const lRows: string[][] = [];
  const memory: Memory[] = [];
  const figures = new Map<string, Figure>();
  let readsPerMessage = NaN;
  const p99 = new Map<string, Figure>();
  tNotes.push(
    'the servers may run on any core, smtp-source and this process on the generator\'s (proc.ts pinning); CPU seconds over the run (until all delivered and smtp-source done): ' +
      'server = the servers\' processes and their descendants (for the units: the appliance holding the directory and both units), ' +
      'gen = smtp-source, kernel = interrupts, softirqs and kernel threads, other = every other process (when high, the figures are disturbed)',
    `smtp-source -s ${s.smtp.sessions} -m ${s.smtp.messages} -l ${s.smtp.size} over new connections (one per message); through two units: ` +
      `-s ${s.smtp.sessions / 2} -m ${Math.floor(s.smtp.messages / 2)} at each unit at once, each to a user of that unit (mailHost); ` +
      `after one warm-up message each; files on ${os.tmpdir()}`,
    'the units run on this machine with the appliance: they share its two cores and its disk (each fsyncs its own queue and Maildirs, ' +
      'the appliance\'s threads share one queue and group-commit it); on separate hosts each unit would bring its own',
  );
  const throughput = async (key: string, start: () => Promise<MailServer & { app?: Appliance }>): Promise<void> => {
    const server = await start();
    try {
      const r = await measure(source, s.smtp, false, server, log);
      const label = server.app ? `${server.label}, the appliance alone` : server.label;
      tRows.push(throughputRow(label, s.smtp.messages, r));
      figures.set(key, { label: server.label, value: s.smtp.messages / r.acceptSeconds, others: r.cpu.otherCpu / r.cpu.wallSeconds });
    } finally {
      await server.stop(tNotes);
    }
  };
  try {
    // The appliance alone, and Postfix, as the smtp benchmark measures them.
    await throughput('appliance', () => startDcmx(tmp, 2, s.smtp.sessions));
    const why = s.smtp.postfix ? postfixUnavailable() : 'DCMX_BENCH_POSTFIX=0';
    if (why) tNotes.push(`Postfix not measured: ${why}`);
    else await throughput('postfix', () => startPostfixServer(tmp));

    // The deployment: the appliance holding the directory, two units.
    log('units: starting the appliance and two units');
    const dir = await startDcmx(tmp, 2, s.smtp.sessions, deploymentEntries(s));
    const units: Unit[] = [];
    try {
      for (const n of [1, 2]) units.push(await startUnit(tmp, n, dir.app.ports.ldap, dir.dataDir, s.smtp.sessions));
      const idle = units.map((u) => rssBytes(u.child.pid));

      // One unit with every session first (what one unit takes on this machine), then both at once.
      const sent: UnitStats = { reads: 0, searches: 0, messages: 0 };
      for (const group of [units.slice(0, 1), units]) {
        const t = await unitsThroughput(source, s.smtp, dir.app.child, group, log);
        const label = group.length === 1 ? 'dcmx, one remote unit' : 'dcmx, two remote units';
        tRows.push(throughputRow(`${label} (+ the appliance as directory)`, s.smtp.messages, t));
        figures.set(`units${group.length}`, { label, value: s.smtp.messages / t.acceptSeconds, others: t.cpu.otherCpu / t.cpu.wallSeconds });
        log(`units: ${label}: ${fmt.int(s.smtp.messages / t.acceptSeconds)} msgs/s accepted, all delivered after ${t.deliverSeconds.toFixed(2)} s`);
        for (const k of ['reads', 'searches', 'messages'] as const) sent[k] += t.stats[k];
      }
      rRows.push(['smtp-source runs: one user per unit', fmt.int(sent.messages), fmt.int(sent.reads), fmt.int(sent.searches), (sent.reads / sent.messages).toFixed(4)]);

      const many = await manyRecipients(s, units, log);
      rRows.push([`first message to each of ${s.usersPerUnit} users per unit`, fmt.int(many.warm.messages), fmt.int(many.warm.reads), fmt.int(many.warm.searches), (many.warm.reads / many.warm.messages).toFixed(4)]);
      rRows.push([`steady state: random users of those, 4 sessions per unit`, fmt.int(many.steady.messages), fmt.int(many.steady.reads), fmt.int(many.steady.searches), (many.steady.reads / many.steady.messages).toFixed(4)]);
      readsPerMessage = (sent.reads + many.steady.reads) / (sent.messages + many.steady.messages);
      rNotes.push(
        'the units\' own figures (GET /stats of each, summed): directory reads = the cache\'s loads of a key it does not hold (cache.directoryReads), ' +
          'LDAP searches = the searches the unit sent over its directory connection (directory.searches); Content Sync messages are not reads',
        `steady state = after the first message to each user, with ${s.usersPerUnit} users per unit well inside the cache (DCMX_CACHE_SIZE, default 10,000); ` +
          `${fmt.int(s.readsMessages)} messages per unit of 1 KiB at ${fmt.int(many.steady.messages / many.seconds)} msgs/s (this process sends them); ` +
          `reads per message over both steady windows: ${readsPerMessage.toFixed(4)} (goal <= 0.01)`,
      );

      for (const load of [false, true]) {
        const lat = await changeLatency(s, dir.app, units, load ? s.changes : 0, load, log);
        const phase = load ? 'under mail load' : 'idle';
        const all: number[] = [];
        const allAfter: number[] = [];
        const row = (kind: string, xs: number[], after: number[]): string[] => {
          const v = sorted(xs);
          const a = sorted(after);
          return [
            all.length ? '' : phase, kind, fmt.int(xs.length / units.length), fmt.int(xs.length), fmt.ms(percentile(v, 50)), fmt.ms(percentile(v, 99)),
            fmt.ms(v[v.length - 1]), fmt.ms(percentile(a, 50)), fmt.ms(percentile(a, 99)),
          ];
        };
        for (const [kind, xs] of lat.byKind) {
          lRows.push(row(kind, xs.fromRequest, xs.fromResponse));
          all.push(...xs.fromRequest);
          allAfter.push(...xs.fromResponse);
        }
        lRows.push(row('all', all, allAfter));
        p99.set(phase, { label: `p99 ${phase}, ms`, value: percentile(sorted(all), 99), others: lat.others });
        const missed = all.filter((x) => !Number.isFinite(x)).length;
        const ldap = sorted(lat.ldapMs);
        lNotes.push(
          `${phase}: the LDAP request itself (commit, then its response) p50 ${fmt.ms(percentile(ldap, 50))} ms, p99 ${fmt.ms(percentile(ldap, 99))} ms; ` +
            `${fmt.int(lat.probes)} probe RCPTs; others' CPU ${fmt.pct(100 * lat.others)} of a core` +
            (load ? `; ${fmt.int(lat.messages)} messages of 1 KiB sent meanwhile (${fmt.int(lat.messages / lat.seconds)} msgs/s, ${LOAD_SESSIONS} sessions per unit, random users of its own)` : '') +
            (missed ? `; ${missed} observation(s) not seen within ${CHANGE_LIMIT_MS} ms (counted as infinite)` : ''),
        );
      }
      lNotes.unshift(
        `from the LDAP request sent to the appliance until the unit's RCPT answer changed (250 <-> 550), probed every ${s.probeMs} ms after each answer; ` +
          'each (change, unit) is one observation; goal p99 <= 1,000 ms, target 100 ms',
        'after response: the same from the moment the LDAP response (the commit done) reached this process, 0 when the unit answered anew first; ' +
          'what the change took to travel, without the appliance\'s write',
      );
      for (const [i, u] of units.entries()) {
        memory.push({ bench: 'units', server: `remote unit ${u.n}`, load: 'the throughput, reads and change windows', idleBytes: idle[i], afterBytes: rssBytes(u.child.pid) });
      }
    } finally {
      for (const u of units) await stopDcmx(u.child, tNotes, u.label);
      await dir.stop(tNotes);
    }
  } finally {
    cleanup();
  }
  const fig = (key: string, label: string): Figure => figures.get(key) ?? { label, value: NaN };
  const unitsFig = fig('units2', 'dcmx, two remote units');
  const ratios: Ratio[] = [
    { measure: 'SMTP msgs/s: two remote units vs one', of: unitsFig, to: fig('units1', 'dcmx, one remote unit') },
    { measure: 'SMTP msgs/s: two remote units vs the appliance alone', of: unitsFig, to: fig('appliance', 'dcmx appliance') },
    { measure: 'SMTP msgs/s: two remote units vs Postfix', of: unitsFig, to: fig('postfix', 'Postfix') },
    // Lower is better for the latency and the reads: the ratio is goal / measured, which must reach 1.
    ...['idle', 'under mail load'].flatMap((phase): Ratio[] => {
      const to = p99.get(phase) ?? { label: `p99 ${phase}, ms`, value: NaN };
      return [
        { measure: `change -> remote cache p99, ${phase} (goal <= 1 s)`, of: { label: 'goal, ms', value: 1000 }, to, goal: 1 },
        { measure: `change -> remote cache p99, ${phase} (target 100 ms)`, of: { label: 'target, ms', value: 100 }, to },
      ];
    }),
    {
      measure: 'directory reads per 10,000 messages (goal <= 100)', of: { label: 'goal', value: 100 },
      // A window without a read is below any goal: counted as one read, so the ratio stays finite.
      to: { label: readsPerMessage === 0 ? 'steady state: 0, as 1' : 'steady state', value: Math.max(readsPerMessage * 10_000, 1) }, goal: 1,
    },
  ];
  const tables: Table[] = [
    { title: 'Remote transfer units: SMTP throughput (new connection per message)', columns: THROUGHPUT_COLUMNS, rows: tRows, notes: tNotes },
    { title: 'Remote transfer units: directory reads per message', columns: ['window', 'messages', 'directory reads', 'LDAP searches', 'reads/msg'], rows: rRows, notes: rNotes },
    { title: 'Remote transfer units: change on the appliance -> answer of each unit', columns: ['phase', 'change', 'changes', 'observations', 'p50 ms', 'p99 ms', 'max ms', 'after response p50', 'p99'], rows: lRows, notes: lNotes },
  ];
  return { tables, text: [], ratios, memory };
}

/** The remote transfer units benchmark module. */
export const unitsBenchmark: Benchmark = {
  name: 'units',
  description: 'two remote transfer units (DCMX_ROLE=mta) over LDAP Content Sync: msgs/s (vs the appliance alone and Postfix), change -> remote cache latency, directory reads per message',
  run,
};
