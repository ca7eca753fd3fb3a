/**
 * The main thread's side of the serving threads (DCMX_THREADS >= 2): it
 * starts them, answers what they forward, replaces one that dies, asks
 * them for their figures, and drains them at shutdown.
 *
 * - Start: the first thread binds the configured ports (0: any free port)
 *   and reports the ports it got; the others bind those, with reusePort.
 *   `startThreads` resolves when every thread listens.
 * - Forwarded work: each thread's directory writes (`write`, executed by
 *   the one writer), accepted messages (`enqueue`, into the one queue; the
 *   queue's owner is kicked after each), and the process's counts
 *   (process-state.ts).
 * - A thread that dies (an uncaught error, an exit) is logged at error and
 *   replaced on the same ports; the others keep serving. A slot whose
 *   threads keep dying waits longer before each new one (RESTART_DELAYS_MS),
 *   and is counted as fine again once a thread has served STABLE_MS.
 * - The LDAP, DNS (TCP) and SMTP connection caps count every thread's connections
 *   (connection-caps.ts: shared memory, a region per slot).
 * - Figures: `stats` asks every thread, each answer awaited at most
 *   `timeoutMs`; a thread that does not answer is left out.
 * - Drain: every thread closes its listeners (no new connections), lets
 *   its sessions finish (SMTP waits for them a few seconds, as with one
 *   thread), closes its store connection, and is ended.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Config } from '../config';
import { relogLine, type Logger } from '../log';
import type { Throttle } from '../directory/auth-throttle';
import type { DirectoryWriter } from '../directory/writes';
import type { ProvisionLimits } from '../mta/provision-limits';
import type { MessageQueue } from '../mta';
import type { ServingPorts } from '../listen';
import type { TlsPair } from '../tls';
import { capsBuffer } from '../connection-caps';
import { Channel } from './channel';
import { serveProcessState, type StateService } from './process-state';
import { THREAD_ERRORS, threadConfig, type MainMethods, type ServingData, type ThreadMethods } from './protocol';
import type { ThreadFigures } from './stats';

/** The worker entry (compiled next to this file). */
const SERVING = path.join(__dirname, 'serving.js');

/** Wait before the n-th consecutive replacement of a slot's thread (the last one repeats). */
const RESTART_DELAYS_MS = [0, 250, 1000, 5000, 30_000];
/** A thread that served this long resets its slot's count of consecutive deaths. */
const STABLE_MS = 60_000;

/** What the main thread serves to its threads. */
export interface HostServices {
  /** The one writer (LocalWriter over the writable store). */
  writer: DirectoryWriter;
  /** The one queue side (its Delivery): takes each message a thread received. */
  queue: MessageQueue;
  /** The process's guessing throttle and provisioning limits. */
  throttle: Throttle;
  limits: ProvisionLimits;
}

export interface ThreadHostOptions {
  config: Config;
  /** Serving threads (>= 2). */
  count: number;
  /** The change clock's shared memory. */
  clock: SharedArrayBuffer;
  tls: TlsPair;
  log: Logger;
  services: HostServices;
}

type ToThread = Channel<MainMethods, ThreadMethods>;

/** One slot: the thread serving in it now, and its history. */
interface Slot {
  index: number;
  worker?: Worker;
  channel?: ToThread;
  state?: StateService;
  /** Serving (answered `listen`). */
  listening: boolean;
  restarts: number;
  /** Deaths since a thread of this slot last served STABLE_MS. */
  failures: number;
  since: number;
  timer?: NodeJS.Timeout;
}

/** The running serving threads. */
export interface ThreadHost {
  /** The ports every thread listens on. */
  readonly ports: ServingPorts;
  /** Every thread's figures (those that answered within `timeoutMs`), by slot. */
  stats(timeoutMs?: number): Promise<ThreadFigures[]>;
  /** Threads listening now. */
  listening(): number;
  /** Ends the thread of `slot` (1..count) at once, as a crash would: it is replaced like any thread that dies (tests). */
  kill(slot: number): Promise<void>;
  /** Drains and ends every thread (see the module comment); no thread is replaced from then on. */
  close(): Promise<void>;
}

/** Starts `count` serving threads; resolves once every one listens, rejects (all ended) if one cannot. */
export async function startThreads(opts: ThreadHostOptions): Promise<ThreadHost> {
  const { log, services } = opts;
  const config = threadConfig(opts.config, opts.count);
  const logLevel = log.level;
  const slots: Slot[] = Array.from({ length: opts.count }, (_, i) => ({ index: i + 1, listening: false, restarts: 0, failures: 0, since: 0 }));
  let ports: ServingPorts = { ldap: config.ldap.port, dns: config.dns.port, smtp: config.smtp.port };
  let closing = false;
  const caps = { ldap: capsBuffer(opts.count), dns: capsBuffer(opts.count), smtp: capsBuffer(opts.count) };

  /** Starts the thread of `slot` and asks it to listen on `ports`. */
  const spawn = async (slot: Slot): Promise<ServingPorts> => {
    const data: ServingData = { slot: slot.index, restarts: slot.restarts, config, clock: opts.clock, caps, tls: opts.tls, logLevel };
    const worker = new Worker(SERVING, { workerData: data });
    const channel: ToThread = new Channel<MainMethods, ThreadMethods>(worker, THREAD_ERRORS);
    const threadLog = log.child({ thread: slot.index });
    channel.handle('log', (line) => {
      relogLine(threadLog, line);
      return null;
    });
    channel.handle('write', (cmd) => services.writer.execute(cmd));
    channel.handle('enqueue', async ({ message, rcpts, now }) => {
      // Structured clone hands a Buffer over as a Uint8Array.
      const body = message.body ? Buffer.from(message.body.buffer, message.body.byteOffset, message.body.byteLength) : message.body;
      await services.queue.accept({ ...message, body }, rcpts, now);
      return null;
    });
    slot.worker = worker;
    slot.channel = channel;
    slot.state = serveProcessState(channel, services.throttle, services.limits);
    slot.listening = false;
    let errored: Error | undefined;
    worker.on('error', (err) => {
      errored = err;
    });
    worker.once('exit', (code) => {
      const wasListening = slot.listening;
      slot.listening = false;
      channel.close(errored ? `thread ${slot.index} failed: ${errored.message}` : `thread ${slot.index} exited (${code})`);
      slot.state?.releaseAttempts();
      if (slot.worker === worker) {
        slot.worker = undefined;
        slot.channel = undefined;
      }
      if (closing) return;
      log.error({ thread: slot.index, code, err: errored }, 'serving thread died; replacing it');
      if (wasListening && Date.now() - slot.since >= STABLE_MS) slot.failures = 0;
      replace(slot);
    });
    const bound = await channel.request('listen', ports);
    slot.listening = true;
    slot.since = Date.now();
    return bound;
  };

  /** A new thread in a dead one's slot, after the slot's back-off. */
  const replace = (slot: Slot): void => {
    const delay = RESTART_DELAYS_MS[Math.min(slot.failures, RESTART_DELAYS_MS.length - 1)];
    slot.failures++;
    slot.restarts++;
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      if (closing) return;
      spawn(slot).then(
        () => log.warn({ thread: slot.index, restarts: slot.restarts }, 'serving thread replaced'),
        (err) => {
          // It exits (or is ended) and its exit replaces it again, later.
          log.error({ thread: slot.index, err }, 'replacement serving thread could not listen');
          void slot.worker?.terminate();
        },
      );
    }, delay);
    slot.timer.unref();
  };

  const end = async (slot: Slot): Promise<void> => {
    if (slot.timer) clearTimeout(slot.timer);
    const { worker, channel } = slot;
    if (!worker) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    try {
      await channel?.request('drain', null);
    } catch (err) {
      log.warn({ thread: slot.index, err }, 'serving thread did not drain');
    }
    await worker.terminate();
    await exited;
  };

  const closeAll = async () => {
    closing = true;
    await Promise.all(slots.map(end));
  };

  try {
    // The first thread binds the configured ports (0: any), the others what it got.
    ports = await spawn(slots[0]);
    await Promise.all(slots.slice(1).map(spawn));
  } catch (e) {
    await closeAll();
    throw e;
  }
  log.info({ threads: opts.count, ...ports }, 'serving threads listening');

  return {
    ports,
    listening: () => slots.filter((s) => s.listening).length,
    async kill(index) {
      await slots[index - 1]?.worker?.terminate();
    },
    async stats(timeoutMs = 2000) {
      const answers = await Promise.all(slots.map((s) => (s.listening && s.channel
        ? s.channel.request('stats', null, { timeoutMs }).catch(() => undefined)
        : undefined)));
      return answers.filter((a): a is ThreadFigures => a !== undefined);
    },
    close: closeAll,
  };
}
