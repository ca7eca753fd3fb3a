/**
 * Knot DNS as a DNS comparison target: 1 UDP and 1 TCP worker
 * (`server: udp-workers: 1, tcp-workers: 1`, Knot 3.x), serving the
 * benchmark zone from a master file, on a loopback port, in the foreground
 * as whoever runs the benchmark (no `user:`), every file it writes in a
 * temporary directory. No journal and no zone-file flush: the zone is only
 * read. On the CPUs given (the benchmark's server core).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { freePort, spawnChild, which } from './proc';
import { waitForZone, writeZoneFile, ZONE, type DnsPeer } from './zone';

/** Knot's worker threads per transport. */
export const KNOT_WORKERS = 1;

/** Why Knot cannot be used here, or undefined when it can. */
export function knotUnavailable(): string | undefined {
  return which('knotd') && which('knotc') ? undefined : 'knotd/knotc are not installed (Debian package knot)';
}

/** Writes the zone (`names` hosts) and configuration under `dir`, checks it with knotc, starts knotd (on `cpus` when given), and resolves once it answers. */
export async function startKnot(dir: string, names: number, cpus?: string): Promise<DnsPeer> {
  for (const d of ['run', 'db']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  const zoneFile = path.join(dir, `${ZONE}.zone`);
  writeZoneFile(zoneFile, names);
  const port = await freePort(true);
  const conf = `server:
    rundir: "${dir}/run"
    listen: 127.0.0.1@${port}
    udp-workers: ${KNOT_WORKERS}
    tcp-workers: ${KNOT_WORKERS}
    background-workers: 1
control:
    listen: "${dir}/run/knot.sock"
database:
    storage: "${dir}/db"
log:
  - target: stderr
    any: warning
zone:
  - domain: ${ZONE}
    file: "${zoneFile}"
    zonefile-sync: -1
    journal-content: none
`;
  const confFile = path.join(dir, 'knot.conf');
  fs.writeFileSync(confFile, conf);
  try {
    execFileSync(which('knotc')!, ['-c', confFile, 'conf-check'], { stdio: 'pipe' });
  } catch (e) {
    const err = e as { stdout?: Buffer; stderr?: Buffer };
    throw new Error(`knotc conf-check failed:\n${err.stdout ?? ''}${err.stderr ?? ''}\n${conf}`);
  }
  const child = spawnChild(which('knotd')!, ['-c', confFile], undefined, undefined, cpus);
  try {
    await waitForZone(port, child, 60_000);
  } catch (e) {
    child.proc.kill('SIGKILL');
    await child.exited;
    throw e;
  }
  return { child, port };
}
