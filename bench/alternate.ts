/**
 * Alternating windows (issue 14): dcmx and the server it is compared with,
 * both running, measured in turn on the same load, dcmx, peer, dcmx, peer...,
 * so that whatever else the machine does drifts over both; the ratio of each
 * pair of windows, and their median, make the comparison.
 */
import type { Figure, Ratio } from './report';
import { median } from './report';

/** One measured window of one server. */
export interface Window {
  /** The figure (ops/s, a latency, seconds...); NaN when the window does not count. */
  value: number;
  /** The server's CPU per operation over the window, in microseconds. */
  cpuPerOp: number;
  /** The share of a core that other processes used meanwhile. */
  others: number;
}

/**
 * Runs `rounds` pairs of windows, `a` then `b` in each; resolves with every
 * window of each side, in order (a[i] and b[i] are pair i).
 */
export async function alternate<T>(rounds: number, a: (round: number) => Promise<T>, b: (round: number) => Promise<T>): Promise<{ a: T[]; b: T[] }> {
  const out = { a: [] as T[], b: [] as T[] };
  for (let i = 0; i < rounds; i++) {
    out.a.push(await a(i));
    out.b.push(await b(i));
  }
  return out;
}

/** The figure of one side's windows: the median of their values and CPU per op; others' CPU: the most any window saw. */
export function windowsFigure(label: string, windows: Window[]): Figure {
  return {
    label,
    value: median(windows.map((w) => w.value)),
    cpuPerOp: median(windows.map((w) => w.cpuPerOp)),
    others: Math.max(0, ...windows.map((w) => w.others)),
  };
}

/**
 * The ratio of dcmx's windows `a` to the peer's `b`, pair by pair (a[i] /
 * b[i]), for the summary; `goal` as in {@link Ratio}. A pair with a window
 * that does not count gives no ratio (NaN, left out of the median); so does
 * a side with no windows at all (then the summary says "not measured").
 */
export function pairedRatio(
  measure: string, aLabel: string, a: Window[], bLabel: string, b: Window[], goal?: { goal: number; atMost?: boolean },
): Ratio {
  const pairs = a.slice(0, b.length).map((w, i) => w.value / b[i].value);
  return { measure, of: windowsFigure(aLabel, a), to: windowsFigure(bLabel, b), pairs, ...goal };
}
