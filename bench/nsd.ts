/**
 * NSD as a DNS comparison target: `server-count: 1` (one server process:
 * issue 14 compares one core each), serving the benchmark zone from a
 * master file, on a loopback port, run in the foreground (`nsd -d`) from a
 * generated configuration in a temporary directory: no chroot, no privilege
 * drop, no remote control, no database file, no response rate limiting
 * (`rrl-ratelimit: 0`: NSD's default, 200 a second per source and response
 * kind, would throttle the NXDOMAIN flood to a trickle). Its whole process tree (main,
 * xfrd, server) on the CPUs given (the benchmark's server core).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { freePort, spawnChild, which } from './proc';
import { waitForZone, writeZoneFile, ZONE, type DnsPeer } from './zone';

/** NSD's server processes. */
export const NSD_SERVERS = 1;

/** Why NSD cannot be used here, or undefined when it can. */
export function nsdUnavailable(): string | undefined {
  return which('nsd') ? undefined : 'nsd is not installed (Debian package nsd)';
}

/**
 * The `server:` and `remote-control:` clauses of an nsd.conf for an NSD run
 * in the foreground by whoever runs it, on 127.0.0.1:`port`: no chroot, no
 * privilege drop, no database file, no remote control; every file it
 * writes (zone list, xfrd state, pid, log) in `dir`. The benchmark's and
 * the interop tests' NSD (test/dns/nsd.ts) both start from it.
 */
export function nsdServerConfig(dir: string, port: number, o: { servers: number; reusePort?: boolean; verbosity: number; noRateLimit?: boolean }): string {
  return `server:
    ip-address: 127.0.0.1
    port: ${port}
    server-count: ${o.servers}
${o.reusePort ? '    reuseport: yes\n' : ''}    username: ""
    chroot: ""
    zonesdir: "${dir}"
    database: ""
    zonelistfile: "${dir}/zone.list"
    xfrdfile: "${dir}/xfrd.state"
    xfrdir: "${dir}"
    pidfile: "${dir}/nsd.pid"
    logfile: "${dir}/nsd.log"
    verbosity: ${o.verbosity}
${o.noRateLimit ? '    rrl-ratelimit: 0\n' : ''}
remote-control:
    control-enable: no
`;
}

/** Writes the zone (`names` hosts) and configuration under `dir`, starts NSD (on `cpus`, a taskset list, when given), and resolves once it answers. */
export async function startNsd(dir: string, names: number, cpus?: string): Promise<DnsPeer> {
  fs.mkdirSync(dir, { recursive: true });
  const zoneFile = path.join(dir, `${ZONE}.zone`);
  writeZoneFile(zoneFile, names);
  const port = await freePort(true);
  const conf = `${nsdServerConfig(dir, port, { servers: NSD_SERVERS, reusePort: NSD_SERVERS > 1, verbosity: 0, noRateLimit: true })}
zone:
    name: ${ZONE}
    zonefile: "${zoneFile}"
`;
  const confFile = path.join(dir, 'nsd.conf');
  fs.writeFileSync(confFile, conf);
  const child = spawnChild(which('nsd')!, ['-d', '-c', confFile], undefined, undefined, cpus);
  try {
    await waitForZone(port, child, 60_000);
  } catch (e) {
    child.proc.kill('SIGKILL');
    await child.exited;
    const log = fs.existsSync(path.join(dir, 'nsd.log')) ? fs.readFileSync(path.join(dir, 'nsd.log'), 'utf8').slice(-2000) : '';
    throw new Error(`${(e as Error).message}\nnsd.log:\n${log}`);
  }
  return { child, port };
}
