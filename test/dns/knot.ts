/**
 * Knot DNS (knotd) as a real secondary of a dcmx appliance, for the interop
 * tests: it runs as whoever runs the tests (no `user:`), on loopback, with
 * every file it writes (zone file, journal, timers, control socket) in a
 * temporary directory that stop() removes. It is killed at the end, on
 * failure, and when the test process exits with it still running.
 *
 *   const port = await freeDualPort();                 // before the appliance: DCMX_NOTIFY needs it
 *   const knot = await startKnot({ port, primaryPort: t.app.ports.dns, zone: 'example.org' });
 *   await knot.waitReady(15_000, async () => ...);     // undefined once ready, else what is missing
 *   ...
 *   await knot.stop();
 */
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { run, tempDir } from '../helpers';
import { DirServer, startOrStop } from '../fixtures/children';
import { waitForAsync } from '../fixtures/wait';

/**
 * The ports this function draws from: below the kernel's ephemeral range
 * (net.ipv4.ip_local_port_range), so that no outgoing connection, and no
 * other test's listen(0), takes the port between this check and the bind
 * of the program it is for (knotd, slapd, ...); [10000, 32768) when the
 * range cannot be read or leaves too little room below it.
 */
function portsBelowEphemeral(): [number, number] {
  try {
    const low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low >= 12000) return [10000, low];
  } catch {
    /* not Linux */
  }
  return [10000, 32768];
}

/** Binds TCP and UDP on 127.0.0.1 `port` and lets both go; true when both binds succeeded. */
async function dualFree(port: number): Promise<boolean> {
  const srv = net.createServer();
  const tcpOk = await new Promise<boolean>((resolve) => {
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (!tcpOk) return false;
  const udp = dgram.createSocket('udp4');
  const udpOk = await new Promise<boolean>((resolve) => {
    udp.once('error', () => resolve(false));
    udp.bind(port, '127.0.0.1', () => resolve(true));
  });
  await new Promise<void>((r) => srv.close(() => r()));
  if (udpOk) await new Promise<void>((r) => udp.close(() => r()));
  else {
    try {
      udp.close();
    } catch {
      /* never bound */
    }
  }
  return udpOk;
}

/** A loopback port free on both TCP and UDP right now, drawn at random below the ephemeral range (portsBelowEphemeral). */
export async function freeDualPort(): Promise<number> {
  const [low, high] = portsBelowEphemeral();
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (await dualFree(port)) return port;
  }
  throw new Error(`no free loopback port for a test program in [${low}, ${high})`);
}

export interface KnotOptions {
  /** knotd's own port on 127.0.0.1 (see freeDualPort). */
  port: number;
  /** The primary: dcmx's DNS port on 127.0.0.1. */
  primaryPort: number;
  /**
   * The zone knotd is a secondary for. With `catalog`, a catalog zone
   * (RFC 9432) that knotd interprets: every member it lists becomes a zone
   * knotd is a secondary for, of the same primary (`catalog-template`).
   */
  zone: string;
  /** Whether `zone` is a catalog zone to interpret. Default false. */
  catalog?: boolean;
  /** Log level of its stderr log (kept in `log`). Default info. */
  logLevel?: 'info' | 'debug';
  /** Whether 127.0.0.1 may transfer the zone from knotd too (to compare its AXFR). Default false. */
  allowTransfer?: boolean;
  /**
   * Whether knotd checks every version of the zone it loads or transfers for
   * a complete, valid DNSSEC signature and NSEC chain (`dnssec-validation`),
   * and refuses a version that fails. Default false.
   */
  dnssecValidation?: boolean;
  /** Prefix of the temporary directory. */
  dirPrefix?: string;
}

function knotConfig(dir: string, o: KnotOptions): string {
  const acls = ['notify_from_dcmx', ...(o.allowTransfer ? ['transfer_to_test'] : [])];
  return `# dcmx interop test: Knot as a secondary of dcmx
server:
    rundir: "${dir}/run"
    listen: 127.0.0.1@${o.port}
    # no "user:": knotd keeps the identity of whoever runs the test

control:
    listen: "${dir}/run/knot.sock"

database:
    storage: "${dir}/db"
    journal-db: "${dir}/db/journal"
    timer-db: "${dir}/db/timers"
    kasp-db: "${dir}/db/keys"
    catalog-db: "${dir}/db/catalog"

log:
  - target: stderr
    any: ${o.logLevel ?? 'info'}

remote:
  - id: dcmx
    address: 127.0.0.1@${o.primaryPort}

acl:
  - id: notify_from_dcmx
    address: 127.0.0.1
    action: notify
${o.allowTransfer ? '  - id: transfer_to_test\n    address: 127.0.0.1\n    action: transfer\n' : ''}
template:
  - id: default
    storage: "${dir}/zones"
${o.catalog ? `  - id: member
    storage: "${dir}/zones"
    master: dcmx
    acl: [ ${acls.join(', ')} ]
` : ''}
zone:
  - domain: ${o.zone}
    master: dcmx
    acl: [ ${acls.join(', ')} ]
    file: "${dir}/zones/${o.zone}.zone"
${o.dnssecValidation ? '    dnssec-validation: on\n' : ''}${o.catalog ? '    catalog-role: interpret\n    catalog-template: member\n' : ''}`;
}

/** A running knotd. */
export class Knot extends DirServer {
  constructor(
    /** knotd's port on 127.0.0.1. */
    readonly port: number,
    /** The temporary directory holding its configuration and every file it writes. */
    dir: string,
  ) {
    super(dir);
  }

  /** Spawns knotd in the foreground; rejects with a clear message if it cannot run. */
  async spawn(confFile: string): Promise<void> {
    await this.launch('knotd', ['-c', confFile], 'is the "knot" package installed?');
  }


  /**
   * Polls `check` every 200 ms until it returns undefined (ready); throws if
   * knotd exits first or after `timeoutMs`, with `check`'s last complaint and the log.
   */
  async waitReady(timeoutMs: number, check: () => Promise<string | undefined>): Promise<void> {
    let complaint: string | undefined;
    await waitForAsync('knotd to be ready', async () => {
      if (this.exited) throw new Error(`knotd cannot run here: it exited (code ${this.exited.code}, signal ${this.exited.signal}) at start-up; its log:\n${this.log}`);
      complaint = await check();
      return complaint === undefined;
    }, timeoutMs, 200).catch((e: Error) => {
      throw this.exited ? e : new Error(`knotd not ready within ${timeoutMs / 1000} s: ${complaint}; its log:\n${this.log}`);
    });
  }
}

/** Writes knotd's configuration into a fresh temporary directory, checks it with knotc, and starts knotd. */
export async function startKnot(o: KnotOptions): Promise<Knot> {
  const dir = tempDir(o.dirPrefix ?? 'dcmx-knot-');
  for (const d of ['run', 'db', 'zones']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  const confFile = path.join(dir, 'knot.conf');
  fs.writeFileSync(confFile, knotConfig(dir, o));
  return startOrStop(new Knot(o.port, dir), async (knot) => {
    const check = await run('knotc', ['-c', confFile, 'conf-check']);
    if (check.code !== 0) {
      throw new Error(`knotd cannot run here: "knotc -c ${confFile} conf-check" failed (code ${check.code}; are knotc/knotd of the "knot" package in PATH?):\n${check.stdout}${check.stderr}\nconfig:\n${fs.readFileSync(confFile, 'utf8')}`);
    }
    await knot.spawn(confFile);
  });
}
