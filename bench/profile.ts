/**
 * A tiny summariser for V8 `.cpuprofile` files (as written by
 * `node --cpu-prof`): self time per function, summed over the profile's
 * samples, with each function's inclusive time, and self time per package.
 *
 * `node dist/bench/profile.js FILE.cpuprofile [N]` prints the top N (25).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

/** The JSON of a .cpuprofile (Chrome DevTools Protocol `Profiler.Profile`). */
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/** One function's figures, in microseconds. */
export interface FunctionTime {
  name: string;
  location: string;
  pkg: string;
  selfUs: number;
  totalUs: number;
}

export interface ProfileSummary {
  /** Sampled time, microseconds. */
  totalUs: number;
  /** Sampled time not spent idle. */
  busyUs: number;
  functions: FunctionTime[];
  packages: { pkg: string; selfUs: number }[];
}

const REPO = path.resolve(__dirname, '..', '..');

function shortUrl(url: string): string {
  let u = url.startsWith('file://') ? url.slice(7) : url;
  const nm = u.lastIndexOf('/node_modules/');
  if (nm >= 0) return u.slice(nm + 1);
  if (u.startsWith(REPO + '/')) u = u.slice(REPO.length + 1);
  return u;
}

/** The package (or dcmx folder) a script belongs to. */
function packageOf(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native)';
  const u = shortUrl(url);
  if (u.startsWith('node:')) return 'node core';
  const m = /^node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u);
  if (m) return m[1];
  const d = /^dist\/(server\/[^/]+|[^/]+)\//.exec(u);
  if (d) return `dcmx ${d[1]}`;
  return u;
}

/** Sums self and inclusive time per function. */
export function summarise(p: CpuProfile): ProfileSummary {
  const samples = p.samples ?? [];
  const deltas = p.timeDeltas ?? [];
  const selfByNode = new Map<number, number>();
  // Sample i lasts until sample i+1 (timeDeltas[i+1]); the last one until endTime.
  let t = p.startTime;
  const stamps: number[] = new Array(samples.length);
  for (let i = 0; i < samples.length; i++) stamps[i] = t += deltas[i] ?? 0;
  for (let i = 0; i < samples.length; i++) {
    const dur = i + 1 < samples.length ? stamps[i + 1] - stamps[i] : Math.max(0, p.endTime - stamps[i]);
    selfByNode.set(samples[i], (selfByNode.get(samples[i]) ?? 0) + dur);
  }

  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const keyOf = (n: ProfileNode) => {
    const c = n.callFrame;
    return `${c.functionName}\u0000${c.url}\u0000${c.lineNumber}\u0000${c.columnNumber}`;
  };
  const fns = new Map<string, FunctionTime>();
  const fnOf = (n: ProfileNode): FunctionTime => {
    const k = keyOf(n);
    let f = fns.get(k);
    if (!f) {
      const c = n.callFrame;
      f = {
        name: c.functionName || '(anonymous)',
        location: c.url ? `${shortUrl(c.url)}:${c.lineNumber + 1}` : '',
        pkg: packageOf(c.url, c.functionName),
        selfUs: 0,
        totalUs: 0,
      };
      fns.set(k, f);
    }
    return f;
  };

  // Inclusive time: a node's self time plus its subtree's, credited once per
  // function even when it recurses (only when not already on the stack).
  const onStack = new Map<string, number>();
  const childIds = new Set<number>();
  for (const n of p.nodes) for (const c of n.children ?? []) childIds.add(c);
  const walk = (n: ProfileNode): number => {
    const k = keyOf(n);
    const depth = onStack.get(k) ?? 0;
    onStack.set(k, depth + 1);
    let total = selfByNode.get(n.id) ?? 0;
    for (const c of n.children ?? []) total += walk(byId.get(c)!);
    onStack.set(k, depth);
    const f = fnOf(n);
    f.selfUs += selfByNode.get(n.id) ?? 0;
    if (depth === 0) f.totalUs += total;
    return total;
  };
  let totalUs = 0;
  for (const n of p.nodes) if (!childIds.has(n.id)) totalUs += walk(n);

  const idle = [...fns.values()].filter((f) => f.name === '(idle)').reduce((s, f) => s + f.selfUs, 0);
  const pk = new Map<string, number>();
  for (const f of fns.values()) pk.set(f.pkg, (pk.get(f.pkg) ?? 0) + f.selfUs);
  return {
    totalUs,
    busyUs: totalUs - idle,
    functions: [...fns.values()].filter((f) => f.name !== '(root)').sort((a, b) => b.selfUs - a.selfUs),
    packages: [...pk].map(([pkg, selfUs]) => ({ pkg, selfUs })).sort((a, b) => b.selfUs - a.selfUs),
  };
}

/** The top `n` functions by self time, and self time per package, as text. */
export function formatSummary(s: ProfileSummary, n = 25): string {
  const ms = (us: number) => (us / 1000).toFixed(1).padStart(9);
  const pct = (us: number) => ((100 * us) / s.totalUs).toFixed(1).padStart(6);
  const lines = [
    `sampled ${(s.totalUs / 1e6).toFixed(2)} s, busy ${(s.busyUs / 1e6).toFixed(2)} s (${((100 * s.busyUs) / s.totalUs).toFixed(1)}%)`,
    `top ${n} functions by self time (% of sampled time; total = inclusive):`,
    `  ${'self ms'.padStart(9)} ${'self%'.padStart(6)} ${'total%'.padStart(6)}  function  (location)`,
  ];
  for (const f of s.functions.slice(0, n)) {
    lines.push(`  ${ms(f.selfUs)} ${pct(f.selfUs)} ${pct(f.totalUs)}  ${f.name}${f.location ? `  (${f.location})` : ''}`);
  }
  lines.push('self time by package:');
  for (const p of s.packages.slice(0, 15)) lines.push(`  ${ms(p.selfUs)} ${pct(p.selfUs)}  ${p.pkg}`);
  return lines.join('\n');
}

/**
 * The profiles wanted (DCMX_BENCH_PROFILE, a comma-separated list): `1`,
 * `true` or `all` ask every module for its profiles; else the named ones
 * (`search`, `load` for ldap; `dns`; `smtp`). Whether `names` (any of them) is asked for.
 */
export function profileWanted(...names: string[]): boolean {
  const words = (process.env.DCMX_BENCH_PROFILE ?? '').toLowerCase().split(',').map((w) => w.trim());
  return words.some((w) => w === '1' || w === 'true' || w === 'all' || names.includes(w));
}

/** The summary of the one .cpuprofile that `node --cpu-prof --cpu-prof-dir=dir` wrote (an error if there is not exactly one). */
export function summariseDir(dir: string, n = 25): string {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length !== 1) throw new Error(`expected one .cpuprofile in ${dir}, found ${files.length}`);
  return summariseFile(path.join(dir, files[0]), n);
}

/** Reads and summarises a .cpuprofile file. */
export function summariseFile(file: string, n = 25): string {
  return formatSummary(summarise(JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile), n);
}

if (require.main === module) {
  const [file, n] = process.argv.slice(2);
  if (!file) {
    console.error('usage: node dist/bench/profile.js FILE.cpuprofile [N]');
    process.exit(2);
  }
  console.log(summariseFile(file, n ? Number(n) : 25));
}
