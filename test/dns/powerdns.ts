/**
 * PowerDNS (pdns_server) with its LDAP backend in tree mode over dcmx's
 * directory, for the interop test: the README's recipe, run in the
 * foreground as whoever runs the tests, on loopback, with its configuration
 * and control socket in a temporary directory that stop() removes, and no
 * outside lookup (no security poll). Tracked: killed should the test
 * process end with it running (fixtures/children.ts).
 *
 *   const pdns = await startPowerDns({ port: await freeDualPort(), ldapPort: t.app.ports.ldap, basedn: 'o=internet' });
 *   ...
 *   await pdns.stop();
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir } from '../helpers';
import { DirServer, startOrStop } from '../fixtures/children';

export interface PowerDnsOptions {
  /** pdns_server's port on 127.0.0.1 (see freeDualPort in knot.ts). */
  port: number;
  /** dcmx's LDAP port on 127.0.0.1. */
  ldapPort: number;
  /** The DC tree's suffix (DCMX_SUFFIX). */
  basedn: string;
}

/** The README's pdns.conf, with the test's ports and directory, and no caches. */
export function powerDnsConfig(dir: string, o: PowerDnsOptions): string {
  return `# dcmx interop test: PowerDNS answering from dcmx's directory
launch=ldap
ldap-host=ldap://127.0.0.1:${o.ldapPort}/
ldap-basedn=${o.basedn}
ldap-method=tree
local-address=127.0.0.1:${o.port}
socket-dir=${dir}
zone-cache-refresh-interval=0
security-poll-suffix=
# the test changes the directory and asks again at once: no packet or query cache
cache-ttl=0
negquery-cache-ttl=0
query-cache-ttl=0
guardian=no
daemon=no
disable-syslog=yes
write-pid=no
loglevel=6
`;
}

/** A running pdns_server. */
export class PowerDns extends DirServer {
  constructor(readonly port: number, dir: string) {
    super(dir);
  }

  /** Spawns pdns_server in the foreground; rejects with a clear message if it cannot run. */
  async spawn(): Promise<void> {
    await this.launch('pdns_server', [`--config-dir=${this.dir}`], 'are the "pdns-server" and "pdns-backend-ldap" packages installed?');
  }

}

/** Writes pdns.conf into a fresh temporary directory and starts pdns_server on it. */
export async function startPowerDns(o: PowerDnsOptions): Promise<PowerDns> {
  const dir = tempDir('dcmx-pdns-');
  fs.writeFileSync(path.join(dir, 'pdns.conf'), powerDnsConfig(dir, o));
  return startOrStop(new PowerDns(o.port, dir), (pdns) => pdns.spawn());
}
