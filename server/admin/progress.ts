/**
 * The one-line progress bar of long `dcmx` commands (ldif import, backup),
 * on stderr when it is a terminal; each command prints its own final summary.
 */

/** Where a long command stands: `done` out of `total` (any unit), `count` items so far, `failed` of them. */
export interface Progress {
  done: number;
  total: number;
  count: number;
  failed?: number;
}

/**
 * A printer of Progress as one rewritten line on stderr (`[####....]  42%
 * 1200 records  300/s`), with `noun` naming the items; it prints nothing when
 * stderr is not a terminal. The caller calls it at most every ~100 ms, and
 * ends the line ('\n') when done.
 */
export function progressPrinter(noun: string): (p: Progress) => void {
  const tty = process.stderr.isTTY;
  const started = Date.now();
  return (p) => {
    if (!tty) return;
    const frac = p.total ? Math.min(1, p.done / p.total) : 1;
    const width = 30;
    const filled = Math.round(frac * width);
    const rate = Math.round(p.count / Math.max(0.001, (Date.now() - started) / 1000));
    process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}%  ${p.count} ${noun}  ${rate}/s${p.failed ? `  ${p.failed} failed` : ''}  `);
  };
}
