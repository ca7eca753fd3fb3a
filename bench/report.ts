/** What a benchmark module returns, and how run.ts prints it. */

/** A table of figures with notes under it. */
export interface Table {
  title: string;
  columns: string[];
  rows: string[][];
  notes: string[];
}

/** A benchmark's output: tables of figures and free-form text blocks (profiles). */
export interface Report {
  tables: Table[];
  text: string[];
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
  const numeric = t.columns.map((_, i) => t.rows.every((r) => /^[-+\d.,%]*$/.test(r[i] ?? '')));
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
  mib: (bytes: number): string => `${(bytes / 1048576).toFixed(1)} MiB`,
};
