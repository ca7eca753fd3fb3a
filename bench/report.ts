/** What a benchmark module returns, and how run.ts prints it. */

/** A table of figures with notes under it. */
export interface Table {
  title: string;
  columns: string[];
  rows: string[][];
  notes: string[];
}

/** One measured figure with the label of the row it comes from. */
export interface Figure {
  label: string;
  /** NaN when it was not measured. */
  value: number;
  /** CPU that other processes used while it was measured, as a share of one core (0.64 = 64%). */
  others?: number;
  /** The server's CPU per operation meanwhile, in microseconds (its process and descendants, from /proc). */
  cpuPerOp?: number;
}

/** Above this share of a core used by other processes during a measurement, its ratios are marked disturbed. */
export const DISTURBED = 0.2;

/**
 * A ratio of two measured figures (`of` / `to`), checked against one of the
 * issue's goals when `goal` is given: the ratio must be at least `goal`, or
 * at most `goal` with `atMost` (latencies, times, memory). With `pairs`
 * (the ratios of alternating windows, see alternate.ts) the ratio is their
 * median, and the figures are the medians of each side's windows.
 */
export interface Ratio {
  measure: string;
  of: Figure;
  to: Figure;
  goal?: number;
  atMost?: boolean;
  pairs?: number[];
}

/** The resident memory of one dcmx appliance: right after start, and after the benchmark's load. */
export interface Memory {
  bench: string;
  server: string;
  load: string;
  idleBytes: number;
  afterBytes: number;
  /** Of afterBytes, when known: anonymous memory (heap, stacks) and mapped files (RssAnon, RssFile). */
  afterParts?: { anon: number; file: number };
}

/** A benchmark's output: tables of figures, free-form text blocks (profiles), ratios and dcmx's memory for the summary. */
export interface Report {
  tables: Table[];
  text: string[];
  ratios?: Ratio[];
  memory?: Memory[];
}

/** A benchmark module: run.ts runs each in turn. `log` prints progress. */
export interface Benchmark {
  name: string;
  description: string;
  run(log: (msg: string) => void): Promise<Report>;
}

/** Formats a table with columns padded; numbers right-aligned. */
export function formatTable(t: Table): string {
  const widths = t.columns.map((c, i) => Math.max(c.length, ...t.rows.map((r) => (r[i] ?? '').length)));
  const numeric = t.columns.map((_, i) => t.rows.every((r) => /^(-|[-+\d.,%]+( ?(x|MiB))?)?$/.test(r[i] ?? '')));
  const line = (cells: string[]) =>
    cells.map((c, i) => (numeric[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  const out = [t.title, line(t.columns), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const r of t.rows) out.push(line(r));
  for (const n of t.notes) out.push(`  * ${n}`);
  return out.join('\n');
}

/** Number formatting for the tables. */
export const fmt = {
  int: (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-'),
  ms: (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : '-'),
  pct: (n: number): string => (Number.isFinite(n) ? `${Math.round(n)}%` : '-'),
  mib: (bytes: number): string => (Number.isFinite(bytes) ? `${(bytes / 1048576).toFixed(1)} MiB` : '-'),
  ratio: (r: number): string => (Number.isFinite(r) ? `${r.toFixed(2)}x` : '-'),
  /** A figure of any size: whole numbers from 100 up, three significant digits below. */
  num: (n: number): string => (!Number.isFinite(n) ? '-' : Math.abs(n) >= 100 ? Math.round(n).toLocaleString('en-US') : n.toPrecision(3)),
};

/** The median of `xs` (NaN when empty); NaN values are left out. */
export function median(xs: number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** The ratio a Ratio stands for: the median of its pairs when it has them, else of / to; NaN when a figure is missing. */
export function ratioValue(r: Ratio): number {
  if (!(r.of.value > 0) || !(r.to.value > 0)) return NaN;
  return r.pairs?.length ? median(r.pairs) : r.of.value / r.to.value;
}

/**
 * PASS or MISS against the goal, `info` without one, `not measured` when a
 * figure is missing; `, disturbed` added when other processes used more than
 * {@link DISTURBED} of a core while either figure was measured.
 */
export function verdict(r: Ratio): string {
  const x = ratioValue(r);
  if (!Number.isFinite(x)) return 'not measured';
  const v = r.goal === undefined ? 'info' : (r.atMost ? x <= r.goal : x >= r.goal) ? 'PASS' : 'MISS';
  return Math.max(r.of.others ?? 0, r.to.others ?? 0) > DISTURBED ? `${v}, disturbed` : v;
}

/** The summary table of the ratios, each computed here from its two figures. */
export function ratiosTable(ratios: Ratio[], notes: string[]): Table {
  const cpu = (f: Figure) => (f.cpuPerOp === undefined ? '-' : fmt.num(f.cpuPerOp));
  return {
    title: 'Goals (issue 14, one core each): ratios of the figures measured above',
    columns: ['measure', 'dcmx', 'figure', 'CPU µs/op', 'against', 'figure', 'CPU µs/op', 'ratio', 'per pair', 'goal', 'verdict', 'others\' CPU'],
    rows: ratios.map((r) => [
      r.measure, r.of.label, fmt.num(r.of.value), cpu(r.of), r.to.label, fmt.num(r.to.value), cpu(r.to), fmt.ratio(ratioValue(r)),
      r.pairs?.length ? r.pairs.map((p) => (Number.isFinite(p) ? p.toFixed(2) : '-')).join(' ') : '-',
      r.goal === undefined ? '-' : `${r.atMost ? '<=' : '>='} ${r.goal.toFixed(2)}x`, verdict(r),
      `${fmt.pct(100 * (r.of.others ?? NaN))} / ${fmt.pct(100 * (r.to.others ?? NaN))}`,
    ]),
    notes,
  };
}

/** The summary table of dcmx's resident memory. */
export function memoryTable(memory: Memory[]): Table {
  return {
    title: 'dcmx resident memory (VmRSS of the one process, all its threads, from /proc/<pid>/status)',
    columns: ['bench', 'server', 'idle after start', 'after the load', 'anon', 'file', 'the load'],
    rows: memory.map((m) => [
      m.bench, m.server, fmt.mib(m.idleBytes), fmt.mib(m.afterBytes), fmt.mib(m.afterParts?.anon ?? NaN), fmt.mib(m.afterParts?.file ?? NaN), m.load,
    ]),
    notes: ['anon, file: of the memory after the load, RssAnon (heap, stacks: what code changes move) and RssFile (mapped files: ' +
      'the node binary\'s and addons\' touched pages, a floor)'],
  };
}
