/**
 * Connection caps shared by the SMTP and LDAP endpoints: a cap on all
 * connections, a cap on those of one client (as Postfix's
 * smtpd_client_connection_count_limit), and a "busy" state once more than
 * 3/4 of the total are open, in which the endpoints close idle connections
 * sooner, as the DNS TCP server does (RFC 7766 §6.2.3) and Postfix's stress
 * mode does (smtpd_timeout of 10 s). One client can then hold only its share
 * of the slots, and idle ones cannot hold the rest for long.
 *
 * The caps are the process's, whatever the number of serving threads: with
 * `shared` (CapsMemory), each thread counts its own connections in its own
 * region of shared memory, and admits a connection against the sum over
 * every thread's region. Per client, the counts are kept in CLIENT_BUCKETS
 * buckets by a hash of the client (clientKey) seeded per process: two
 * clients that fall in one bucket share its cap. A thread that dies leaves
 * its region to its replacement, which clears it (its connections died
 * with it). A connection is counted before the caps are checked, so two
 * threads admitting at the same instant never pass a cap together (at its
 * edge, both may refuse). When an admission finds the process busy, every
 * thread hears of it (`onBusy`, woken through the shared memory), so that each
 * shortens the idle timeouts of its own connections.
 */
import type { BlockList } from 'node:net';
import { randomInt } from 'node:crypto';
import { clientKey, inCidrList } from './net';

/** Past this share of the total cap an endpoint is busy. */
export const BUSY_SHARE = 0.75;

/** Why a connection was not admitted: the total cap, or its client's. */
export type Refusal = 'total' | 'client';

/** Buckets of the per-client counts in shared memory (see the module comment). */
const CLIENT_BUCKETS = 4096;
/** Int32 cells of one thread's region: its total, then its per-client buckets. */
const REGION = 1 + CLIENT_BUCKETS;
/** Cells before the regions: the hash seed, and the count of busy admissions (threads wait on it). */
const SEED = 0;
const BUSY = 1;
const HEADER = 2;

/**
 * The shared memory of one endpoint's caps in every serving thread: a seed
 * for the client hash, then one region per thread. Made by the main thread,
 * handed to each thread (workerData shares it), which counts in `region`.
 */
export interface CapsMemory {
  buffer: SharedArrayBuffer;
  /** This thread's region, 0..threads-1. */
  region: number;
}

/** Shared memory for one endpoint's caps over `threads` threads (give each its CapsMemory with its region). */
export function capsBuffer(threads: number): SharedArrayBuffer {
  const buffer = new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT * (HEADER + threads * REGION));
  new Int32Array(buffer)[SEED] = randomInt(1, 0x7fffffff);
  return buffer;
}

/** FNV-1a of `s`, from `seed`: a client's bucket. */
function bucketOf(s: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % CLIENT_BUCKETS;
}

/** The connections of one endpoint, counted in all and per client (clientKey): in this thread, or in the whole process (`shared`). */
export class ConnectionCaps {
  /** This thread's connections by client, to release them. */
  private readonly perKey = new Map<string, number>();
  private open = 0;
  /** Every thread's cells (shared), or undefined. */
  private readonly cells: Int32Array | undefined;
  private readonly mine: number;
  private readonly regions: number;
  private readonly seed: number;

  constructor(private readonly opts: {
    /** Connections in all. */
    max: number;
    /** Connections of one client. */
    perClient: number;
    /** Clients not held to `perClient` (they count in the total). */
    exempt?: BlockList;
    /** The process's counts, when several threads serve the endpoint. */
    shared?: CapsMemory;
    /**
     * Called when an admission finds the endpoint busy: at once on the
     * admitting thread, and (shared) soon after on every other thread.
     */
    onBusy?: () => void;
  }) {
    if (opts.shared) {
      this.cells = new Int32Array(opts.shared.buffer);
      this.seed = this.cells[SEED];
      this.regions = (this.cells.length - HEADER) / REGION;
      this.mine = HEADER + opts.shared.region * REGION;
      // The previous thread of this region died with its connections.
      for (let i = this.mine; i < this.mine + REGION; i++) Atomics.store(this.cells, i, 0);
      if (opts.onBusy) this.watchBusy(opts.onBusy);
    } else {
      this.seed = 0;
      this.regions = 0;
      this.mine = 0;
    }
  }

  /** Sum over every thread's region of cell `offset` (0: the total; 1 + bucket: a client). */
  private sum(offset: number): number {
    const cells = this.cells!;
    let n = 0;
    for (let r = 0; r < this.regions; r++) n += Atomics.load(cells, HEADER + r * REGION + offset);
    return n;
  }

  /** Connections open now (admitted, not yet released), in the whole process when shared. */
  get total(): number {
    return this.cells ? this.sum(0) : this.open;
  }

  /** Connections this thread admitted and has not released. */
  get here(): number {
    return this.open;
  }

  /** More than 3/4 of `max` are open: idle connections are to be closed sooner. */
  get busy(): boolean {
    return this.total > this.opts.max * BUSY_SHARE;
  }

  /** Connections `address`'s client has open now (when shared: its bucket's, in the whole process). */
  of(address: string): number {
    return this.ofKey(clientKey(address));
  }

  /** Connections of the client `key` (clientKey) open now. */
  private ofKey(key: string): number {
    return this.cells ? this.sum(1 + bucketOf(key, this.seed)) : this.perKey.get(key) ?? 0;
  }

  /**
   * Admits a connection from `address`, or says which cap it would pass.
   * Each admitted connection must be released once, when it closes.
   */
  admit(address: string): Refusal | undefined {
    const key = clientKey(address);
    // Counted first, checked after: two threads admitting at the same instant each see the
    // other's count, so neither passes a cap (at its edge both may refuse).
    this.count(key, 1);
    let refusal: Refusal | undefined;
    if (this.total > this.opts.max) refusal = 'total';
    else if (this.ofKey(key) > this.opts.perClient && !(this.opts.exempt && inCidrList(this.opts.exempt, address))) refusal = 'client';
    if (refusal) {
      this.count(key, -1);
      return refusal;
    }
    if (this.busy) {
      this.opts.onBusy?.();
      if (this.cells) {
        Atomics.add(this.cells, BUSY, 1);
        Atomics.notify(this.cells, BUSY);
      }
    }
    return undefined;
  }

  /**
   * Calls `onBusy` whenever another thread's admission finds the process busy
   * (the BUSY cell moves). A pending wait does not keep the thread alive; a
   * spurious call is harmless (the callback acts only while busy).
   */
  private watchBusy(onBusy: () => void): void {
    const cells = this.cells!;
    const wait = (): void => {
      const w = Atomics.waitAsync(cells, BUSY, Atomics.load(cells, BUSY));
      if (!w.async) {
        setImmediate(wait);
        return;
      }
      void w.value.then(() => {
        if (this.busy) onBusy();
        wait();
      });
    };
    wait();
  }

  /** Releases a connection admitted for `address`. */
  release(address: string): void {
    const key = clientKey(address);
    if (!this.perKey.has(key)) return;
    this.count(key, -1);
  }

  private count(key: string, by: 1 | -1): void {
    const n = (this.perKey.get(key) ?? 0) + by;
    if (n <= 0) this.perKey.delete(key);
    else this.perKey.set(key, n);
    this.open += by;
    if (this.cells) {
      Atomics.add(this.cells, this.mine, by);
      Atomics.add(this.cells, this.mine + 1 + bucketOf(key, this.seed), by);
    }
  }
}
