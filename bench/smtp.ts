/**
 * SMTP benchmark: dcmx as a child process pinned to the server core,
 * Postfix's smtp-source pinned to the other core.
 *
 * Each run gets a fresh data dir and a fresh appliance with one mail domain
 * and one local user (bench.test, user@bench.test, added over LDAP), one
 * warm-up message, then smtp-source sends 2,000 messages of 4 KiB to that
 * user over 16 parallel sessions:
 *   - "new connection per message": `smtp-source -s 16 -m 2000 -l 4096`
 *     (each session connects, sends one message, QUITs, reconnects);
 *   - "connection reuse": the same with `-d` ("don't disconnect after
 *     sending a message; send the next message over the same connection"),
 *     so 16 connections carry all 2,000 messages.
 * Figures: accepted msgs/s (2,000 / smtp-source's wall time: every message
 * got its 250, which dcmx gives only after spool file and queue row are
 * fsynced), the time from the start of the run until all 2,000 are files
 * in the user's Maildir new/ (polled every 20 ms), and the appliance's CPU
 * seconds (user+system, /proc) over that time. Next to them: the issue's
 * reference for Postfix on one core here (about 405 msgs/s accepted, 2,000
 * delivered in 5.6 s), and smtp-sink on the server core (accepts and
 * discards: the generator's ceiling).
 *
 * Knobs (environment): DCMX_BENCH_SMTP_MESSAGES (2000),
 * DCMX_BENCH_SMTP_SESSIONS (16), DCMX_BENCH_SMTP_SIZE (4096),
 * DCMX_BENCH_SMTP_SINK=0 to skip the smtp-sink calibration.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Benchmark, Report, Table } from './report';
import { fmt } from './report';
import {
  benchTmp, cpuSeconds, freePort, GENERATOR_CORE, pinGenerator, SERVER_CORE, spawnPinned, stop, stopDcmx, waitForLine, waitForPort, which, type Child,
} from './proc';
import { DCMX_MAIN, dcmxEnv, envInt, envOn } from './env';
import { addRequestOp, message, OP, resultText, WireConn, type AddEntry } from './wire';

/** The figures for Postfix on one core of this machine. */
const POSTFIX_REFERENCE = { acceptPerSecond: 405, deliverSeconds: 5.6, messages: 2000 };

const ADMIN_DN = 'cn=admin,o=internet';
const ADMIN_PASSWORD = 'bench-admin-secret';
const DOMAIN = 'bench.test';
const USER = `user@${DOMAIN}`;

interface Settings {
  messages: number;
  sessions: number;
  size: number;
  sink: boolean;
}

function settings(): Settings {
  return {
    messages: envInt('DCMX_BENCH_SMTP_MESSAGES', 2000),
    sessions: envInt('DCMX_BENCH_SMTP_SESSIONS', 16),
    size: envInt('DCMX_BENCH_SMTP_SIZE', 4096),
    sink: envOn('DCMX_BENCH_SMTP_SINK'),
  };
}

/** The DC-tree entries of the benchmark's mail domain and its one user. */
const ENTRIES: AddEntry[] = [
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

/** Adds the entries one at a time over one bound connection. */
async function provision(ldapPort: number): Promise<void> {
  const c = await WireConn.connect(ldapPort);
  try {
    await c.bind(ADMIN_DN, ADMIN_PASSWORD);
    let id = 1;
    for (const e of ENTRIES) {
      await new Promise<void>((resolve, reject) => {
        c.onFailure(reject);
        c.handler = (_id, op, code, pdu, opOff, end) => {
          if (op !== OP.addResponse) return reject(new Error(`unexpected response 0x${op.toString(16)} to add`));
          if (code !== 0) return reject(new Error(`add ${e.dn}: resultCode ${code} ${resultText(pdu, opOff, end)}`));
          resolve();
        };
        c.write(message(++id, addRequestOp(e)));
      });
    }
  } finally {
    c.close();
  }
}

interface Dcmx {
  child: Child;
  smtp: number;
  dataDir: string;
}

/** Starts dist/server/main.js pinned to the server core over `dataDir`, and provisions the domain. */
async function startDcmx(dataDir: string): Promise<Dcmx> {
  const env = dcmxEnv(dataDir, {
    DCMX_HOSTNAME: 'mx.bench.test',
    DCMX_ADMIN_DN: ADMIN_DN,
    DCMX_ADMIN_PASSWORD: ADMIN_PASSWORD,
    // Nothing here looks outside; a dead loopback port keeps it so.
    DCMX_UPSTREAM_DNS: '127.0.0.1:9',
  });
  const child = spawnPinned(process.execPath, [DCMX_MAIN], SERVER_CORE, env);
  const m = await waitForLine(child, /dcmx ready .*\bldap=(\d+).*\bsmtp=(\d+)/);
  await provision(Number(m[1]));
  return { child, smtp: Number(m[2]), dataDir };
}

/** Files delivered into the user's Maildir (new/ and cur/). */
function delivered(dataDir: string): number {
  let n = 0;
  for (const sub of ['new', 'cur']) {
    try {
      n += fs.readdirSync(path.join(dataDir, 'mail', DOMAIN, 'user', sub)).length;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  return n;
}

/** Runs smtp-source pinned to the generator core; resolves with its wall seconds (rejects on a non-zero exit). */
async function smtpSource(bin: string, args: string[]): Promise<number> {
  const t0 = performance.now();
  const c = spawnPinned(bin, args, GENERATOR_CORE);
  const code = await c.exited;
  const seconds = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`smtp-source ${args.join(' ')} exited with ${code}: ${c.output().slice(-1000)}`);
  return seconds;
}

function sourceArgs(s: Settings, reuse: boolean, port: number, messages = s.messages, sessions = s.sessions): string[] {
  return [
    ...(reuse ? ['-d'] : []), '-s', String(sessions), '-m', String(messages), '-l', String(s.size),
    '-f', 'sender@source.test', '-t', USER, '-M', 'source.test', `127.0.0.1:${port}`,
  ];
}

interface RunResult {
  acceptSeconds: number;
  deliverSeconds: number;
  serverCpu: number;
  delivered: number;
}

/** One measured run on a fresh appliance. */
async function measure(bin: string, s: Settings, reuse: boolean, tmp: string, label: string, notes: string[], log: (m: string) => void): Promise<RunResult> {
  const dataDir = fs.mkdtempSync(path.join(tmp, 'dcmx-'));
  const d = await startDcmx(dataDir);
  try {
    // Warm-up: one message end to end (routing table, cache, Maildir creation).
    await smtpSource(bin, sourceArgs(s, false, d.smtp, 1, 1));
    const warmUntil = Date.now() + 30_000;
    while (delivered(dataDir) < 1) {
      if (Date.now() > warmUntil) throw new Error(`the warm-up message was not delivered:\n${d.child.output()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const base = delivered(dataDir);
    const target = base + s.messages;
    log(`smtp: ${label}: dcmx pid ${d.child.pid} port ${d.smtp}; ${s.messages} messages`);
    const cpu0 = cpuSeconds(d.child.pid);
    const t0 = performance.now();
    let acceptSeconds = NaN;
    const source = smtpSource(bin, sourceArgs(s, reuse, d.smtp)).then((sec) => {
      acceptSeconds = sec;
    });
    let failure: unknown;
    source.catch((e) => {
      failure = e;
    });
    const deadline = Date.now() + 300_000;
    let n = base;
    while ((n = delivered(dataDir)) < target) {
      if (failure) throw failure;
      if (Date.now() > deadline) throw new Error(`only ${n - base} of ${s.messages} delivered after 300 s`);
      if (d.child.proc.exitCode !== null) throw new Error(`dcmx exited:\n${d.child.output()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const deliverSeconds = (performance.now() - t0) / 1000;
    const serverCpu = cpuSeconds(d.child.pid) - cpu0;
    await source;
    return { acceptSeconds, deliverSeconds, serverCpu, delivered: n - base };
  } finally {
    await stopDcmx(d.child, notes, label);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/** smtp-sink on the server core: what the generator reaches against a server that discards everything. */
async function sinkCeiling(source: string, sink: string, s: Settings, reuse: boolean): Promise<number> {
  const port = await freePort();
  const c = spawnPinned(sink, ['-u', 'nobody', '-4', `127.0.0.1:${port}`, '1024'], SERVER_CORE);
  try {
    // smtp-sink prints nothing when ready: wait for the port.
    await waitForPort(port, c);
    return await smtpSource(source, sourceArgs(s, reuse, port));
  } finally {
    await stop(c, 2000);
  }
}

const COLUMNS = ['server', 'connections', 'messages', 'accepted msgs/s', 'accept s', 'all in Maildir s', 'server CPU s', 'CPU ms/msg'];

async function run(log: (msg: string) => void): Promise<Report> {
  const s = settings();
  const source = which('smtp-source');
  if (!source) throw new Error('smtp-source not found (Debian package postfix)');
  const pinNote = pinGenerator('servers', 'smtp-source');
  const { dir: tmp, remove: cleanup } = benchTmp('dcmx-bench-smtp-');
  const rows: string[][] = [];
  const notes: string[] = [];
  notes.push(pinNote);
  notes.push(
    `smtp-source -s ${s.sessions} -m ${s.messages} -l ${s.size} to one local user (${USER}); ` +
      `reuse = -d (next message on the same connection); fresh data dir and appliance per run, after one warm-up message; ` +
      `data dir on ${os.tmpdir()}`,
  );
  try {
    for (const reuse of [false, true]) {
      const label = reuse ? 'connection reuse' : 'new connection per message';
      const r = await measure(source, s, reuse, tmp, label, notes, log);
      rows.push([
        'dcmx', reuse ? `reuse (${s.sessions})` : 'one per message', fmt.int(s.messages), fmt.int(s.messages / r.acceptSeconds),
        r.acceptSeconds.toFixed(2), r.deliverSeconds.toFixed(2), r.serverCpu.toFixed(2), ((1000 * r.serverCpu) / s.messages).toFixed(2),
      ]);
      log(`smtp: ${label}: ${fmt.int(s.messages / r.acceptSeconds)} msgs/s accepted, all delivered after ${r.deliverSeconds.toFixed(2)} s`);
    }
    rows.push([
      'Postfix (issue, 1 core)', '-', fmt.int(POSTFIX_REFERENCE.messages), fmt.int(POSTFIX_REFERENCE.acceptPerSecond),
      (POSTFIX_REFERENCE.messages / POSTFIX_REFERENCE.acceptPerSecond).toFixed(2), POSTFIX_REFERENCE.deliverSeconds.toFixed(2), '-', '-',
    ]);
    notes.push('Postfix row: the figures quoted in the issue for Postfix on one core of this machine (not measured here)');
    const sink = which('smtp-sink');
    if (!s.sink) notes.push('smtp-sink calibration skipped (DCMX_BENCH_SMTP_SINK=0)');
    else if (!sink) notes.push('smtp-sink calibration skipped: smtp-sink not found');
    else {
      for (const reuse of [false, true]) {
        log(`smtp: smtp-sink, ${reuse ? 'reuse' : 'new connection per message'}`);
        const sec = await sinkCeiling(source, sink, s, reuse);
        rows.push([
          'smtp-sink (discards)', reuse ? `reuse (${s.sessions})` : 'one per message', fmt.int(s.messages), fmt.int(s.messages / sec),
          sec.toFixed(2), '-', '-', '-',
        ]);
      }
      notes.push('smtp-sink rows: the generator ceiling (smtp-sink accepts and discards, on the server core)');
    }
  } finally {
    cleanup();
  }
  const table: Table = { title: 'SMTP', columns: COLUMNS, rows, notes };
  return { tables: [table], text: [] };
}

/** The SMTP benchmark module. */
export const smtpBenchmark: Benchmark = {
  name: 'smtp',
  description: 'SMTP intake msgs/s and time until all are in the Maildir (dcmx; Postfix reference; smtp-sink ceiling)',
  run,
};
