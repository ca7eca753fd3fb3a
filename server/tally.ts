/**
 * Counting on the hot paths of the serving threads without allocating: a
 * table of counts keyed by small integers (an operation, a result, a
 * transport), and latency histograms with fixed buckets. Each reads out as
 * plain nested objects (threads/stats.ts sends them to the main thread,
 * which sums them and exposes them at GET /metrics, admin/metrics.ts).
 */

/** Counts by cell of a fixed grid of dimensions; `figures` names the non-zero cells. */
export class CountTable {
  private readonly counts: Float64Array;
  private readonly strides: number[];

  /** `dimensions`: the names of each dimension's values, in index order. */
  constructor(private readonly dimensions: readonly (readonly string[])[]) {
    this.strides = [];
    let size = 1;
    for (let d = dimensions.length - 1; d >= 0; d--) {
      this.strides[d] = size;
      size *= dimensions[d].length;
    }
    this.counts = new Float64Array(size);
  }

  /** Counts one in the cell at indexes `i`, `j`, `k` (as many as the dimensions). */
  add(i: number, j = 0, k = 0): void {
    const s = this.strides;
    this.counts[i * s[0] + (s.length > 1 ? j * s[1] : 0) + (s.length > 2 ? k * s[2] : 0)]++;
  }

  /** The non-zero counts as nested objects by value name: `{udp: {A: {NOERROR: 3}}}`. */
  figures(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    this.counts.forEach((n, cell) => {
      if (n === 0) return;
      let node = out;
      let rest = cell;
      this.dimensions.forEach((names, d) => {
        const index = Math.floor(rest / this.strides[d]);
        rest %= this.strides[d];
        const name = names[index];
        if (d === this.dimensions.length - 1) node[name] = n;
        else node = (node[name] ??= {}) as Record<string, unknown>;
      });
    });
    return out;
  }
}

/** A histogram as figures: cumulative counts by upper bound (`le`, '+Inf' last), the sum of the values and their count. */
export interface HistogramFigures {
  buckets: Record<string, number>;
  sum: number;
  count: number;
}

/** Latency histograms, one per series index, over fixed upper bounds in seconds. */
export class LatencyHistograms {
  private readonly counts: Float64Array;
  private readonly sums: Float64Array;
  private readonly width: number;

  constructor(private readonly series: readonly string[], private readonly bounds: readonly number[]) {
    this.width = bounds.length + 1;
    this.counts = new Float64Array(series.length * this.width);
    this.sums = new Float64Array(series.length);
  }

  /** Observes `seconds` in the histogram of series `i`. */
  observe(i: number, seconds: number): void {
    let b = 0;
    while (b < this.bounds.length && seconds > this.bounds[b]) b++;
    this.counts[i * this.width + b]++;
    this.sums[i] += seconds;
  }

  /** The histograms observed so far, by series name (cumulative buckets). */
  figures(): Record<string, HistogramFigures> {
    const out: Record<string, HistogramFigures> = {};
    this.series.forEach((name, i) => {
      let acc = 0;
      const buckets: Record<string, number> = {};
      for (let b = 0; b < this.width; b++) {
        acc += this.counts[i * this.width + b];
        buckets[b < this.bounds.length ? String(this.bounds[b]) : '+Inf'] = acc;
      }
      if (acc > 0) out[name] = { buckets, sum: this.sums[i], count: acc };
    });
    return out;
  }
}
