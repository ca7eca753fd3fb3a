/**
 * The dcmx appliance as a benchmark child: started with a given number of
 * serving threads (DCMX_THREADS) on ephemeral loopback ports, with the ports
 * read from its `dcmx ready` line and the thread count it reports (a
 * `threads=N` on that line, else the length of the per-thread list of GET
 * /stats), and labelled for the tables with that count (or, while it
 * reports none, the setting it was given).
 */
import * as http from 'node:http';
import { spawnChild, rssBytes, rssParts, waitForLine, type Child } from './proc';
import { DCMX_MAIN } from './env';

/** A running appliance. */
export interface Appliance {
  child: Child;
  ports: { ldap: number; dns: number; smtp: number; http: number };
  /** DCMX_THREADS as given to it; undefined when left to the appliance's default. */
  setting: number | undefined;
  /** The thread count it reports (ready line or GET /stats), undefined when it reports none. */
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
  if (reported.length === apps.length) return 'dcmx thread counts: as the appliance reported them (its ready line, or the per-thread figures of GET /stats)';
  if (reported.length === 0) {
    return 'dcmx thread counts: the DCMX_THREADS setting given to the appliance (it reports no thread count, on its ready ' +
      'line or in GET /stats, so this build may not honour the setting: then the rows run the same code)';
  }
  return 'dcmx thread counts: as reported (ready line or GET /stats) where it says, else the DCMX_THREADS setting';
}

/**
 * The Node options the appliance is started with in production: `npm start`
 * and ecosystem.config.js (`node_args`) give the same (README, Memory). The
 * benchmark measures the appliance as operators run it.
 */
export const SERVER_NODE_ARGS: readonly string[] = ['--max-semi-space-size=8'];

/**
 * Starts dist/server/main.js with `env` (see dcmxEnv) and, when `threads` is
 * given, DCMX_THREADS=threads; SERVER_NODE_ARGS, then `nodeArgs`, go before the script (--cpu-prof);
 * on the CPUs `cpus` (a taskset list, see proc.ts pinning) when given.
 * Resolves once it printed its ready line.
 */
export async function startAppliance(env: NodeJS.ProcessEnv, threads?: number, nodeArgs: string[] = [], cpus?: string): Promise<Appliance> {
  const childEnv = threads === undefined ? env : { ...env, DCMX_THREADS: String(threads) };
  const child = spawnChild(process.execPath, [...SERVER_NODE_ARGS, ...nodeArgs, DCMX_MAIN], childEnv, undefined, cpus);
  try {
    const m = await waitForLine(child, /dcmx ready .*/);
    const port = (name: string): number => {
      const p = new RegExp(`\\b${name}=(\\d+)`).exec(m[0]);
      if (!p) throw new Error(`no ${name}= on the ready line: ${m[0]}`);
      return Number(p[1]);
    };
    const ports = { ldap: port('ldap'), dns: port('dns'), smtp: port('smtp'), http: port('http') };
    const t = /\bthreads=(\d+)/.exec(m[0]);
    const reported = t ? Number(t[1]) : (await perThread(ports.http))?.length;
    return { child, ports, setting: threads, reported, label: applianceLabel(threads, reported) };
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

/** The appliance's resident memory, VmRSS with its anonymous and file-backed parts (proc.ts rssParts). */
export function applianceMemory(app: Appliance): { rss: number; anon: number; file: number } {
  return rssParts(app.child.pid);
}

/** GET /stats of the admin endpoint on `port`, parsed; undefined when it cannot be had. */
function stats(port: number): Promise<Record<string, unknown> | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/stats', timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        try {
          resolve(res.statusCode === 200 ? (JSON.parse(body) as Record<string, unknown>) : undefined);
        } catch {
          resolve(undefined);
        }
      });
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

/** The per-thread figures of GET /stats (its `threads` list), undefined when the appliance gives none. */
async function perThread(port: number): Promise<Record<string, unknown>[] | undefined> {
  const s = await stats(port);
  return Array.isArray(s?.threads) ? (s.threads as Record<string, unknown>[]) : undefined;
}

/**
 * How the work was spread over the serving threads: the counter at `path`
 * (e.g. ['dns', 'queries']) of each thread in GET /stats, as
 * `label: what per thread a / b (a% / b%)`; undefined with fewer than two
 * threads or no such figures.
 */
export async function threadSpread(app: Appliance, what: string, path: string[]): Promise<string | undefined> {
  const threads = await perThread(app.ports.http);
  if (!threads || threads.length < 2) return undefined;
  const values = threads.map((t) => path.reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], t));
  if (!values.every((v) => typeof v === 'number')) return undefined;
  const n = values as number[];
  const total = n.reduce((a, b) => a + b, 0);
  const pct = n.map((v) => `${total ? Math.round((100 * v) / total) : 0}%`).join(' / ');
  return `${app.label}: ${what} per thread ${n.map((v) => v.toLocaleString('en-US')).join(' / ')} (${pct}), since start`;
}
