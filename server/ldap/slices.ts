/**
 * Long operations in slices: a search (search.ts) or a Content Sync refresh
 * (sync.ts) runs a slice at a time, the event loop going on between two, so
 * that a costly one delays neither the other connections nor DNS and SMTP.
 */
import { performance } from 'node:perf_hooks';
import type { RequestConnection } from './context';

/** How long one slice of a search may run before the event loop goes on (ms). */
export const SEARCH_SLICE_MS = 10;

/**
 * Runs `step` in slices of at most about SEARCH_SLICE_MS, the first now,
 * the next ones on later turns of the event loop, the writes of each slice
 * corked into one; `step` returns true once it is over. Stops, without
 * calling `step` again, once the connection has gone; `ended` is called
 * either way.
 */
export function inSlices(conn: RequestConnection, step: (stop: () => boolean) => boolean, ended: () => void): void {
  const slice = (): void => {
    if (conn.destroyed) return ended();
    const deadline = performance.now() + SEARCH_SLICE_MS;
    let over = false;
    conn.cork();
    try {
      over = step(() => performance.now() >= deadline);
    } finally {
      conn.uncork();
    }
    if (over) ended();
    else setImmediate(slice);
  };
  slice();
}

