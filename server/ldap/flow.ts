/**
 * Per-connection flow control, as slapd does it: requests are answered in
 * order, one per event-loop turn, and only while the client keeps up.
 *
 * - Framed PDUs are queued; one is handled per turn (setImmediate between
 *   two), so a client that pipelines a thousand searches in one TCP write
 *   takes its turn with every other connection and with the DNS and SMTP
 *   endpoints instead of holding the loop until all are answered.
 * - A request starts only when the previous one is complete (its response
 *   written), so a pipelined request never overtakes a bind (RFC 4511 §4.2.1)
 *   or an update it follows.
 * - The queue is bounded (requests and bytes): when full, the socket stops
 *   being read until it has drained to half, and TCP pushes back on the client.
 * - A request starts only while the connection's output is under the
 *   socket's high-water mark; otherwise the flow waits for 'drain'. A client
 *   that does not read its results therefore stops being served, then read.
 * - Closing the connection drops whatever is queued.
 */

/** What the flow reads from: the TCP socket, or the TLS socket after StartTLS. */
export interface FlowReader {
  pause(): unknown;
  resume(): unknown;
}

/** What the flow's responses are written to (a net.Socket or tls.TLSSocket). */
export interface FlowWriter {
  readonly writableNeedDrain: boolean;
  readonly writableLength: number;
  once(event: 'drain', cb: () => void): unknown;
}

/** Bounds of one connection's request queue. */
export interface FlowLimits {
  /** Requests queued before reading pauses (at least 1). */
  maxQueued: number;
  /** Bytes of queued requests before reading pauses. */
  maxQueuedBytes: number;
}

/**
 * Handles one request. `done` must be called once the whole response has
 * been written (or the request needs none); the next request starts on a
 * later turn. May throw: the flow then reports the error through `onError`
 * and stops.
 */
export type RequestHandler = (pdu: Buffer, done: () => void) => void;

/** Default bounds: slapd's default per-connection pending limit is 100 (conn_max_pending). */
export const DEFAULT_FLOW_LIMITS: Readonly<FlowLimits> = { maxQueued: 64, maxQueuedBytes: 1024 * 1024 };

/** The request queue of one connection. */
export class RequestFlow {
  private queue: Buffer[] = [];
  private head = 0;
  private bytes = 0;
  private busy = false;
  private scheduled = false;
  private waitingDrain = false;
  private closed = false;
  private readPaused = false;
  /** Waiting for every request received to be answered (whenIdle). */
  private idleWaiters: (() => void)[] = [];

  constructor(
    private reader: FlowReader,
    private writer: FlowWriter,
    private readonly limits: FlowLimits,
    private readonly handle: RequestHandler,
    private readonly onError: (err: unknown) => void,
    /** Told when reading is paused (true) or resumed (false) by the flow. */
    private readonly onPause: (paused: boolean) => void = () => undefined,
  ) {}

  /** Requests waiting (not counting the one being handled). */
  get queued(): number {
    return this.queue.length - this.head;
  }

  /** Bytes of the requests waiting. */
  get queuedBytes(): number {
    return this.bytes;
  }

  /** True while the flow keeps the socket from being read. */
  get paused(): boolean {
    return this.readPaused;
  }

  /** Bytes written but not yet handed to the kernel. */
  get bufferedOutput(): number {
    return this.writer.writableLength;
  }

  /** Switches to other streams (StartTLS); call only between requests or from the handler of the last one. */
  setStreams(reader: FlowReader, writer: FlowWriter): void {
    this.reader = reader;
    this.writer = writer;
    this.readPaused = false;
  }

  /** Queues framed PDUs, in order; pauses reading when the queue is full. */
  push(pdus: readonly Buffer[]): void {
    if (this.closed) return;
    for (const p of pdus) {
      this.queue.push(p);
      this.bytes += p.length;
    }
    if (!this.readPaused && (this.queued >= this.limits.maxQueued || this.bytes >= this.limits.maxQueuedBytes)) {
      this.readPaused = true;
      this.reader.pause();
      this.onPause(true);
    }
    this.schedule();
  }

  /** Drops the queue and handles nothing more (the connection is gone). */
  close(): void {
    this.closed = true;
    this.queue = [];
    this.head = 0;
    this.bytes = 0;
    this.wakeIdle();
  }

  /** Resolves once every request queued so far is answered (at once when none is), or the flow is closed. */
  whenIdle(): Promise<void> {
    if (this.closed || (!this.busy && this.queued === 0)) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private wakeIdle(): void {
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private schedule(): void {
    if (this.busy || this.scheduled || this.waitingDrain || this.closed || this.queued === 0) return;
    this.scheduled = true;
    setImmediate(this.run);
  }

  private readonly run = (): void => {
    this.scheduled = false;
    if (this.closed || this.busy || this.queued === 0) return;
    if (this.writer.writableNeedDrain) {
      // The client is not reading what it asked for: answer nothing more until it does.
      this.waitingDrain = true;
      this.writer.once('drain', () => {
        this.waitingDrain = false;
        this.schedule();
      });
      return;
    }
    const pdu = this.queue[this.head];
    this.queue[this.head++] = EMPTY;
    this.bytes -= pdu.length;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    if (this.readPaused && this.queued <= this.limits.maxQueued >> 1 && this.bytes < this.limits.maxQueuedBytes >> 1) {
      this.readPaused = false;
      this.reader.resume();
      this.onPause(false);
    }
    this.busy = true;
    let finished = false;
    const done = () => {
      if (finished) return;
      finished = true;
      this.busy = false;
      if (this.queued === 0) this.wakeIdle();
      this.schedule();
    };
    try {
      this.handle(pdu, done);
    } catch (err) {
      this.close();
      this.onError(err);
    }
  };
}

const EMPTY = Buffer.alloc(0);
