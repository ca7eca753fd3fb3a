/**
 * NSD as a real secondary of a dcmx appliance, for the interop tests: the
 * README's `zone:` stanza (request-xfr from the appliance, allow-notify from
 * it), run in the foreground (`nsd -d`) as whoever runs the tests (no
 * chroot, no privilege drop, no remote control), on loopback, with every
 * file it writes (zone file, xfrd state, log, pid) in a temporary directory
 * that stop() removes. Tracked: killed should the test process end with it
 * running (fixtures/children.ts).
 *
 *   const port = await freeDualPort();                 // before the appliance: DCMX_NOTIFY needs it
 *   const nsd = await startNsd({ port, primaryPort: dnsPort, zone: 'example.org' });
 *   ...
 *   await nsd.stop();
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { run, tempDir } from '../helpers';
import { DirServer, startOrStop } from '../fixtures/children';
import { nsdServerConfig } from '../../bench/nsd';

export interface NsdOptions {
  /** nsd's port on 127.0.0.1 (see freeDualPort in knot.ts). */
  port: number;
  /** The primary: dcmx's DNS port on 127.0.0.1. */
  primaryPort: number;
  /** The zone nsd is a secondary for. */
  zone: string;
}

function nsdConfig(dir: string, o: NsdOptions): string {
  return `# dcmx interop test: NSD as a secondary of dcmx
${nsdServerConfig(dir, o.port, { servers: 1, verbosity: 2 })}
zone:
    name: ${o.zone}
    zonefile: "${dir}/${o.zone}.zone"
    request-xfr: 127.0.0.1@${o.primaryPort} NOKEY
    allow-notify: 127.0.0.1 NOKEY
`;
}

/** A running nsd. */
export class Nsd extends DirServer {
  constructor(
    /** nsd's port on 127.0.0.1. */
    readonly port: number,
    /** The temporary directory holding its configuration and every file it writes. */
    dir: string,
  ) {
    super(dir);
  }

  /** What nsd logged so far (its log file). */
  override get log(): string {
    try {
      return fs.readFileSync(path.join(this.dir, 'nsd.log'), 'utf8');
    } catch {
      return '';
    }
  }

  /** Spawns nsd in the foreground; rejects with a clear message if it cannot run. */
  async spawn(confFile: string): Promise<void> {
    await this.launch('nsd', ['-d', '-c', confFile], 'is the "nsd" package installed?');
  }

}

/** Writes nsd's configuration into a fresh temporary directory, checks it with nsd-checkconf, and starts nsd. */
export async function startNsd(o: NsdOptions): Promise<Nsd> {
  const dir = tempDir('dcmx-nsd-');
  const confFile = path.join(dir, 'nsd.conf');
  fs.writeFileSync(confFile, nsdConfig(dir, o));
  return startOrStop(new Nsd(o.port, dir), async (nsd) => {
    const check = await run('nsd-checkconf', [confFile]);
    if (check.code !== 0) throw new Error(`nsd cannot run here: "nsd-checkconf ${confFile}" failed (code ${check.code}):\n${check.stdout}${check.stderr}`);
    await nsd.spawn(confFile);
  });
}
