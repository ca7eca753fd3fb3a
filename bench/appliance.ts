/**
 * The dcmx appliance as a benchmark child: started with a given number of
 * serving threads (DCMX_THREADS) on ephemeral loopback ports, with the ports
 * and the thread count read from its `dcmx ready` line, and labelled for the
 * tables with the thread count it reported (or, while it reports none, the
 * setting it was given).
 */
import { spawnChild, rssBytes, waitForLine, type Child } from './proc';
import { DCMX_MAIN } from './env';

/** A running appliance. */
export interface Appliance {
  child: Child;
  ports: { ldap: number; dns: number; smtp: number; http: number };
  /** DCMX_THREADS as given to it; undefined when left to the appliance's default. */
  setting: number | undefined;
  /** The thread count on its ready line (`threads=N`), undefined when the line has none. */
  reported: number | undefined;
  /** The row label: `dcmx, N threads` (reported) or `dcmx, DCMX_THREADS=N` (the setting only). */
  label: string;
}

/** The row label of an appliance with `setting` and `reported` threads (see {@link Appliance.label}). */
export function applianceLabel(setting: number | undefined, reported: number | undefined): string {
  if (reported !== undefined) {
    const shown = `dcmx, ${reported} thread${reported === 1 ? '' : 's'}`;
    return setting === undefined || setting === reported ? shown : `${shown} (DCMX_THREADS=${setting})`;
  }
  return setting === undefined ? 'dcmx' : `dcmx, DCMX_THREADS=${setting}`;
}

/** The note that says where the thread counts in the row labels come from. */
export function threadsNote(apps: Appliance[]): string {
  const reported = apps.filter((a) => a.reported !== undefined);
  if (reported.length === apps.length) return 'dcmx thread counts: as the appliance reported them on its ready line (threads=N)';
  if (reported.length === 0) {
    return 'dcmx thread counts: the DCMX_THREADS setting given to the appliance (its ready line reports no thread count, ' +
      'so this build may not honour the setting: then the rows run the same code)';
  }
  return 'dcmx thread counts: as reported on the ready line (threads=N) where it says, else the DCMX_THREADS setting';
}

/**
 * Starts dist/server/main.js with `env` (see dcmxEnv) and, when `threads` is
 * given, DCMX_THREADS=threads; `nodeArgs` go before the script (--cpu-prof).
 * Resolves once it printed its ready line.
 */
export async function startAppliance(env: NodeJS.ProcessEnv, threads?: number, nodeArgs: string[] = []): Promise<Appliance> {
  const childEnv = threads === undefined ? env : { ...env, DCMX_THREADS: String(threads) };
  const child = spawnChild(process.execPath, [...nodeArgs, DCMX_MAIN], childEnv);
  try {
    const m = await waitForLine(child, /dcmx ready .*/);
    const port = (name: string): number => {
      const p = new RegExp(`\\b${name}=(\\d+)`).exec(m[0]);
      if (!p) throw new Error(`no ${name}= on the ready line: ${m[0]}`);
      return Number(p[1]);
    };
    const t = /\bthreads=(\d+)/.exec(m[0]);
    const reported = t ? Number(t[1]) : undefined;
    return {
      child,
      ports: { ldap: port('ldap'), dns: port('dns'), smtp: port('smtp'), http: port('http') },
      setting: threads,
      reported,
      label: applianceLabel(threads, reported),
    };
  } catch (e) {
    child.proc.kill('SIGKILL');
    await child.exited;
    throw e;
  }
}

/** The appliance's resident memory: one process, all its threads (VmRSS). */
export function applianceRss(app: Appliance): number {
  return rssBytes(app.child.pid);
}
