/**
 * DNS over TCP, connection by connection (RFC 7766 §6.2): pipelined
 * messages are answered in order, without letting one connection hold the
 * event loop or the process's memory.
 *
 * - Work is spread over turns of the event loop. A {@link TcpScheduler}
 *   gives each connection with work one step per round; a step answers up
 *   to `batch` messages, or a single long one (a zone transfer), and a round
 *   ends early once `roundMs` has passed. Between rounds the loop runs
 *   (setImmediate), so UDP, timers and the other endpoints are served while
 *   a client pipelines hundreds of AXFRs.
 * - One answer at a time per connection: the messages of a transfer go out
 *   as the socket takes them, waiting for 'drain' whenever its buffer is
 *   full, and the next request is taken only when the last message of the
 *   previous one is written. Further transfers wait in the queue and are
 *   answered one by one, as Knot and BIND do.
 * - Backpressure: reading stops (socket paused) while output waits for
 *   'drain', or while `maxQueued` messages or `maxQueuedBytes` wait to be
 *   answered; it resumes when there is room. Per connection, memory is
 *   bounded by the socket's high-water mark plus one message of output, and
 *   `maxQueuedBytes` plus one read (64 KiB) plus one partial message of input.
 * - A closed connection drops its queued work. A client that half-closes
 *   (FIN after its queries) gets every answer, then our FIN.
 * - Timers: the idle timeout (any read or write counts) and the deadline
 *   for a message to arrive once begun (slow-drip defence). The deadline runs
 *   only while the connection is being read: a paused client is waiting on us.
 */
import type * as net from 'node:net';

/** What answering one message produced. */
export interface TcpReply {
  /** Messages to send in order, without length prefixes. Never modified here: they may be shared. */
  messages: readonly Buffer[];
  /** When set, written into the ID field of each message as it goes out (shared, cached messages). */
  id?: number;
  /** A long answer (a zone transfer): the connection yields the loop after it. */
  long?: boolean;
}

/** Answers one complete message; undefined closes the connection. */
export type TcpHandler = (msg: Buffer) => TcpReply | undefined;

/** Bounds for one connection. */
export interface TcpLimits {
  /** Idle timeout in ms (recomputed at each read: shorter when the server is busy, RFC 7766 §6.2.3). */
  idleMs: () => number;
  /** A message begun must be complete within this many ms while we read. */
  messageMs: number;
  /** Messages waiting to be answered before reading pauses. */
  maxQueued: number;
  /** Bytes of messages waiting to be answered before reading pauses. */
  maxQueuedBytes: number;
  /** Messages answered per step (short answers). */
  batch: number;
}

/** Default bounds (see {@link TcpLimits}). */
export const TCP_DEFAULTS = { maxQueued: 64, maxQueuedBytes: 64 * 1024, batch: 16, roundMs: 5 } as const;

const NOTHING: readonly Buffer[] = [];

/** Round-robin turns among connections with work, one step each per round, a round bounded by `roundMs`. */
export class TcpScheduler {
  private ready: TcpConnection[] = [];
  private pending = false;

  constructor(private readonly roundMs: number = TCP_DEFAULTS.roundMs) {}

  /** Gives `c` a step in the next round (once, however often asked). */
  wake(c: TcpConnection): void {
    if (c.scheduled) return;
    c.scheduled = true;
    this.ready.push(c);
    if (!this.pending) {
      this.pending = true;
      setImmediate(this.round);
    }
  }

  private readonly round = (): void => {
    this.pending = false;
    const batch = this.ready;
    this.ready = [];
    const start = performance.now();
    let i = 0;
    for (; i < batch.length; i++) {
      if (i > 0 && performance.now() - start >= this.roundMs) break;
      const c = batch[i];
      c.scheduled = false;
      try {
        c.step();
      } catch {
        // step() does not throw (the handler catches); were it to, that connection ends, not the process or the round.
        c.destroy();
      }
    }
    // Who did not get a step this round goes first in the next one.
    if (i < batch.length) this.ready = [...batch.slice(i), ...this.ready];
    if (this.ready.length && !this.pending) {
      this.pending = true;
      setImmediate(this.round);
    }
  };
}

/** One DNS/TCP connection: framing, the queue of messages, pacing, timers. */
export class TcpConnection {
  /** In the scheduler's ready list. */
  scheduled = false;
  private inbuf: Buffer = Buffer.alloc(0);
  private readonly queue: Buffer[] = [];
  private queuedBytes = 0;
  /** The answer being written, and how far. */
  private out: readonly Buffer[] = NOTHING;
  private outAt = 0;
  private outId: number | undefined;
  private waitingDrain = false;
  private reading = true;
  private ended = false;
  private closed = false;
  private messageTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly sock: net.Socket,
    private readonly handler: TcpHandler,
    private readonly limits: TcpLimits,
    private readonly scheduler: TcpScheduler,
  ) {
    sock.setTimeout(limits.idleMs(), () => sock.destroy());
    sock.on('data', (chunk: Buffer) => this.received(chunk));
    sock.on('end', () => {
      this.ended = true;
      this.inbuf = Buffer.alloc(0); // an unfinished message will not be finished
      this.clearMessageTimer();
      if (this.idle()) sock.end();
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', () => {
      this.closed = true;
      this.queue.length = 0;
      this.queuedBytes = 0;
      this.out = NOTHING;
      this.clearMessageTimer();
    });
  }

  /** Whether reading is paused, and what waits here: queued input, partial input, output the socket has not sent. */
  get backlog(): { paused: boolean; queued: number; queuedBytes: number; partialBytes: number; outputBytes: number } {
    return { paused: !this.reading, queued: this.queue.length, queuedBytes: this.queuedBytes, partialBytes: this.inbuf.length, outputBytes: this.sock.writableLength };
  }

  /** Closes the connection now; queued work is dropped. */
  destroy(): void {
    this.sock.destroy();
  }

  private received(chunk: Buffer): void {
    let buf = this.inbuf.length ? Buffer.concat([this.inbuf, chunk]) : chunk;
    let completed = false;
    while (buf.length >= 2) {
      const len = buf.readUInt16BE(0);
      if (buf.length < 2 + len) break;
      completed = true;
      if (len > 0) {
        // A copy: a subarray would keep the whole read buffer alive while the message waits.
        this.queue.push(Buffer.from(buf.subarray(2, 2 + len)));
        this.queuedBytes += len;
      }
      buf = buf.subarray(2 + len);
    }
    this.inbuf = buf.length ? Buffer.from(buf) : Buffer.alloc(0);
    // The deadline is per message: one completed, the next one begun (if any) gets its own.
    if (completed) this.clearMessageTimer();
    this.sock.setTimeout(this.limits.idleMs());
    if (this.queue.length) this.scheduler.wake(this);
    this.updateReading();
  }

  /** One turn: finish writing the current answer, then answer up to `batch` messages (or one long one). */
  step(): void {
    if (this.closed || this.sock.destroyed) return;
    this.sock.cork();
    try {
      let answered = 0;
      for (;;) {
        if (!this.flush()) return; // 'drain' wakes us
        if (this.queue.length === 0) break;
        if (answered >= this.limits.batch) {
          this.scheduler.wake(this);
          return;
        }
        const msg = this.queue.shift()!;
        this.queuedBytes -= msg.length;
        const reply = this.handler(msg);
        if (!reply) {
          this.sock.destroy();
          return;
        }
        this.out = reply.messages;
        this.outAt = 0;
        this.outId = reply.id;
        answered = reply.long ? this.limits.batch : answered + 1;
      }
      if (this.ended) this.sock.end(); // the client half-closed: every answer is written, now our FIN
    } finally {
      this.sock.uncork();
      if (!this.sock.destroyed) this.updateReading();
    }
  }

  /** Writes the current answer while the socket takes it; false when it waits for 'drain'. */
  private flush(): boolean {
    while (this.outAt < this.out.length) {
      if (this.sock.writableNeedDrain) {
        if (!this.waitingDrain) {
          this.waitingDrain = true;
          this.sock.once('drain', () => {
            this.waitingDrain = false;
            this.scheduler.wake(this);
          });
        }
        return false;
      }
      const m = this.out[this.outAt++];
      const framed = Buffer.allocUnsafe(2 + m.length);
      framed.writeUInt16BE(m.length, 0);
      m.copy(framed, 2);
      if (this.outId !== undefined && m.length >= 2) framed.writeUInt16BE(this.outId, 2);
      this.sock.write(framed);
    }
    this.out = NOTHING;
    return true;
  }

  /** Nothing queued, nothing being written. */
  private idle(): boolean {
    return this.queue.length === 0 && this.outAt >= this.out.length;
  }

  /** Reads while there is room for more work; the message deadline runs only while reading. */
  private updateReading(): void {
    const room = !this.waitingDrain && this.queue.length < this.limits.maxQueued && this.queuedBytes < this.limits.maxQueuedBytes;
    if (room && !this.reading) {
      this.reading = true;
      this.sock.resume();
    } else if (!room && this.reading) {
      this.reading = false;
      this.sock.pause();
    }
    if (this.reading && this.inbuf.length > 0 && !this.ended) {
      if (!this.messageTimer) {
        this.messageTimer = setTimeout(() => this.sock.destroy(), this.limits.messageMs);
        this.messageTimer.unref();
      }
    } else {
      this.clearMessageTimer();
    }
  }

  private clearMessageTimer(): void {
    if (this.messageTimer) {
      clearTimeout(this.messageTimer);
      this.messageTimer = undefined;
    }
  }
}
