/**
 * Long operations in slices: a search (search.ts) or a Content Sync refresh
 * (sync.ts) runs a slice at a time, the event loop going on between two, so
 * that a costly one delays neither the other connections nor DNS and SMTP.
 */
import { performance } from 'node:perf_hooks';
import type { RequestConnection } from './context';

/** How long one slice of a search may run before the event loop goes on (ms). */
export const SEARCH_SLICE_MS = 10;

/** How long a slice waits, when the connection has more than `maxBacklog` bytes unsent, before it looks again (ms). */
const BACKLOG_WAIT_MS = 20;

/**
 * Runs `step` in slices of at most about SEARCH_SLICE_MS, the first now,
 * the next ones on later turns of the event loop, the writes of each slice
 * corked into one; `step` returns true once it is over. With `maxBacklog`,
 * a slice waits while more than that many bytes are unsent, so that a
 * client that reads slowly does not make us buffer what it has not read.
 * Stops, without calling `step` again, once the connection has gone;
 * `ended` is called either way.
 */
export function inSlices(conn: RequestConnection, step: (stop: () => boolean) => boolean, ended: () => void, maxBacklog?: number): void {
  const slice = (): void => {
    if (conn.destroyed) return ended();
    // The client reads slower than we find entries: wait for it rather than buffer (a client that
    // never reads is closed by its idle timeout, and then this ends).
    if (maxBacklog !== undefined && conn.backlog > maxBacklog) {
      setTimeout(slice, BACKLOG_WAIT_MS);
      return;
    }
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

