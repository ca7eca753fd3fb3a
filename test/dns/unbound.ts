/**
 * A private Unbound (Debian `unbound`), a validating resolver, for the
 * DNSSEC tests: on a loopback port, in the foreground as whoever runs the
 * tests, with its configuration in a temporary directory that stop()
 * removes. It reaches one zone through a stub-zone pointing at an
 * authoritative server on loopback (its own iterative queries, RD clear)
 * and validates it against that zone's DNSKEY as its only trust anchor;
 * nothing else is configured, so it asks nothing of the outside world.
 * Tracked: killed should the test process end with it running
 * (fixtures/children.ts).
 *
 *   const u = await startUnbound({ zone: 'example.org', dnskeys: ['257 3 13 ...'], authority: t.app.ports.dns });
 *   const r = await u.dig('www.example.org', 'A');   // flags include 'ad' when it validated
 *   await u.stop();
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { run, tempDir, type RunResult } from '../helpers';
import { DirServer, startOrStop } from '../fixtures/children';
import { freePort } from '../../bench/proc';

export interface UnboundOptions {
  /** The zone to validate, without the trailing dot. */
  zone: string;
  /** Its trust anchor: DNSKEY RDATA in presentation form (`257 3 13 <base64>`). */
  dnskeys: string[];
  /** The port of the authoritative server for the zone on 127.0.0.1. */
  authority: number;
}

/** unbound.conf for one stub zone with its trust anchor. */
export function unboundConfig(dir: string, port: number, o: UnboundOptions): string {
  return `server:
  interface: 127.0.0.1
  port: ${port}
  do-ip6: no
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "${dir}"
  pidfile: "${path.join(dir, 'unbound.pid')}"
  use-syslog: no
  logfile: ""
  verbosity: 1
  val-log-level: 2
  # the authoritative server is on loopback
  do-not-query-localhost: no
  access-control: 127.0.0.0/8 allow
  module-config: "validator iterator"
${o.dnskeys.map((k) => `  trust-anchor: "${o.zone}. DNSKEY ${k}"`).join('\n')}
remote-control:
  control-enable: no
stub-zone:
  name: "${o.zone}."
  stub-addr: 127.0.0.1@${o.authority}
`;
}

/** A running unbound. */
export class Unbound extends DirServer {
  constructor(readonly port: number, dir: string) {
    super(dir);
  }

  /** Spawns unbound in the foreground and waits until it answers; rejects with a clear message if it cannot run. */
  async spawn(): Promise<void> {
    const child = await this.launch('unbound', ['-d', '-c', path.join(this.dir, 'unbound.conf')], 'is the "unbound" package installed?');
    for (let i = 0; i < 100 && !/start of service/.test(this.log); i++) {
      if (child.exitCode !== null) throw new Error(`unbound exited at start:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!/start of service/.test(this.log)) throw new Error(`unbound did not start:\n${this.log}`);
  }


  /** `dig @127.0.0.1 -p <port> +dnssec <name> <type>` with recursion desired, as a stub resolver asks. */
  dig(name: string, type: string): Promise<RunResult> {
    return run('dig', ['@127.0.0.1', '-p', String(this.port), '+dnssec', '+time=5', '+tries=1', name, type]);
  }
}

/** Writes unbound.conf into a fresh temporary directory and starts unbound on a free loopback port. */
export async function startUnbound(o: UnboundOptions): Promise<Unbound> {
  const dir = tempDir('dcmx-unbound-');
  const port = await freePort(true);
  fs.writeFileSync(path.join(dir, 'unbound.conf'), unboundConfig(dir, port, o));
  return startOrStop(new Unbound(port, dir), (u) => u.spawn());
}
