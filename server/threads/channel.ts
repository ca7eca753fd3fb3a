/**
 * The request/response bridge between two threads of the process, one
 * implementation used both ways: the main thread holds one Channel per
 * serving thread (over its Worker), each serving thread one (over its
 * parentPort). Either side may `request` a method the other `handle`s and
 * await its result, or `notify` it (no answer). Everything crosses as data
 * (structured clone): an error thrown by a handler is turned into data on
 * its side (the codec's `toData`) and back into a typed error on the
 * asking side (`fromData`), so `instanceof` keeps working across threads.
 *
 * When the other side goes away (the port closes, the worker exits) every
 * request still waiting rejects with ChannelClosedError; so does a request
 * made after that. A request may set a timeout (ChannelTimeoutError).
 */
import type { TransferListItem } from 'node:worker_threads';

/** What a channel runs over: a Worker (main side) or a MessagePort / parentPort (thread side). */
export interface PortLike {
  postMessage(value: unknown, transferList?: readonly TransferListItem[]): void;
  on(event: 'message', listener: (value: unknown) => void): unknown;
  off(event: 'message', listener: (value: unknown) => void): unknown;
}

/** How errors cross: `toData` on the side that threw, `fromData` on the side that asked. */
export interface ErrorCodec {
  toData(e: unknown): unknown;
  fromData(d: unknown): Error;
}

/** The methods one side serves: each with the data it takes and the data it answers. */
export type Methods = Record<string, { args: unknown; result: unknown }>;

/** The other side is gone (or this channel was closed): nothing will answer. */
export class ChannelClosedError extends Error {
  constructor(reason: string) {
    super(`the other thread is gone: ${reason}`);
    this.name = 'ChannelClosedError';
  }
}

/** No answer came within the request's timeout. */
export class ChannelTimeoutError extends Error {
  constructor(method: string, ms: number) {
    super(`no answer to ${method} within ${ms} ms`);
    this.name = 'ChannelTimeoutError';
  }
}

/** A plain codec: name and message (the default; the appliance passes the directory's). */
export const PLAIN_ERRORS: ErrorCodec = {
  toData: (e) => ({ name: (e as Error)?.name ?? 'Error', message: (e as Error)?.message ?? String(e) }),
  fromData: (d) => {
    const { name, message } = (d ?? {}) as { name?: string; message?: string };
    const e = new Error(message ?? 'error in another thread');
    if (name) e.name = name;
    return e;
  },
};

/** The frames on the port. `c` tags them, so a port may carry other traffic too. */
type Frame =
  | { c: 'req'; id: number; method: string; args: unknown }
  | { c: 'res'; id: number; value: unknown }
  | { c: 'err'; id: number; error: unknown }
  | { c: 'note'; method: string; args: unknown };

const KINDS = new Set(['req', 'res', 'err', 'note']);

interface Waiting {
  method: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer?: NodeJS.Timeout;
}

/**
 * One end of the bridge. `Mine` are the methods this side serves (handle),
 * `Theirs` those the other side serves (request, notify).
 */
export class Channel<Mine extends Methods, Theirs extends Methods> {
  private nextId = 1;
  private readonly waiting = new Map<number, Waiting>();
  private readonly handlers = new Map<string, (args: never) => unknown>();
  private closedBy: string | undefined;
  private readonly listener = (v: unknown) => this.receive(v);

  constructor(private readonly port: PortLike, private readonly errors: ErrorCodec = PLAIN_ERRORS) {
    port.on('message', this.listener);
  }

  /** Serves `method`: its result (or what its promise resolves with) is the answer; what it throws is the error. */
  handle<K extends keyof Mine & string>(method: K, fn: (args: Mine[K]['args']) => Mine[K]['result'] | Promise<Mine[K]['result']>): void {
    this.handlers.set(method, fn as (args: never) => unknown);
  }

  /** Asks the other side; resolves with its answer, rejects with its error (decoded), ChannelClosedError or ChannelTimeoutError. */
  request<K extends keyof Theirs & string>(
    method: K, args: Theirs[K]['args'], opts: { timeoutMs?: number; transfer?: readonly TransferListItem[] } = {},
  ): Promise<Theirs[K]['result']> {
    if (this.closedBy !== undefined) return Promise.reject(new ChannelClosedError(this.closedBy));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const w: Waiting = { method, resolve: resolve as (v: unknown) => void, reject };
      if (opts.timeoutMs !== undefined) {
        w.timer = setTimeout(() => {
          this.waiting.delete(id);
          reject(new ChannelTimeoutError(method, opts.timeoutMs!));
        }, opts.timeoutMs);
      }
      this.waiting.set(id, w);
      try {
        this.port.postMessage({ c: 'req', id, method, args } satisfies Frame, opts.transfer);
      } catch (e) {
        this.settle(id)?.reject(e as Error);
      }
    });
  }

  /** Tells the other side, expecting no answer (dropped silently once closed). */
  notify<K extends keyof Theirs & string>(method: K, args: Theirs[K]['args']): void {
    if (this.closedBy !== undefined) return;
    this.port.postMessage({ c: 'note', method, args } satisfies Frame);
  }

  /** Requests sent and not answered yet. */
  get pending(): number {
    return this.waiting.size;
  }

  /** Ends the channel: waiting requests reject with ChannelClosedError(reason); later ones too. */
  close(reason: string): void {
    if (this.closedBy !== undefined) return;
    this.closedBy = reason;
    this.port.off('message', this.listener);
    const waiting = [...this.waiting.keys()];
    for (const id of waiting) this.settle(id)?.reject(new ChannelClosedError(reason));
  }

  private settle(id: number): Waiting | undefined {
    const w = this.waiting.get(id);
    if (!w) return undefined;
    this.waiting.delete(id);
    if (w.timer) clearTimeout(w.timer);
    return w;
  }

  private receive(v: unknown): void {
    const f = v as Frame;
    if (!f || typeof f !== 'object' || !KINDS.has(f.c)) return;
    switch (f.c) {
      case 'res':
        this.settle(f.id)?.resolve(f.value);
        return;
      case 'err':
        this.settle(f.id)?.reject(this.errors.fromData(f.error));
        return;
      case 'note':
        void this.run(f.method, f.args).catch(() => undefined);
        return;
      case 'req':
        this.run(f.method, f.args).then(
          (value) => this.reply({ c: 'res', id: f.id, value }),
          (e) => this.reply({ c: 'err', id: f.id, error: this.errors.toData(e) }),
        );
        return;
    }
  }

  private async run(method: string, args: unknown): Promise<unknown> {
    const fn = this.handlers.get(method);
    if (!fn) throw new Error(`no such method: ${method}`);
    return fn(args as never);
  }

  private reply(f: Frame): void {
    if (this.closedBy !== undefined) return;
    try {
      this.port.postMessage(f);
    } catch (e) {
      // An answer that cannot be cloned: the asker gets an error rather than waiting forever.
      if (f.c === 'res') this.port.postMessage({ c: 'err', id: f.id, error: this.errors.toData(e) } satisfies Frame);
    }
  }
}
