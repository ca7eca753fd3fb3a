/**
 * A serving thread (worker_threads entry; the main thread starts it from
 * host.ts). It opens its own connection to the store, starts LDAP, DNS and
 * SMTP intake on the process's ports with reusePort when the main thread
 * asks (`listen`), and keeps its own caches (the DNS answer cache, the
 * transfer unit's directory cache), each its share of the process's budget.
 *
 * Nothing is written here: every directory write goes to the main thread's
 * writer as a command (RemoteWriter), every accepted message to its queue
 * (RemoteQueue: the spool file is fsynced here first, the row committed
 * there, and only then the client gets its 250), and the guessing throttle
 * and provisioning limits are the process's (process-state.ts).
 */
import { isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { forwardingLogger, type Logger } from '../log';
import { openDirectory } from '../directory/open';
import { Provisioner } from '../directory/provision';
import { ChangeClock } from '../directory/change-clock';
import type { DirectoryWriter, ResultOf, WriteCommand } from '../directory/writes';
import type { QueueMessageRow } from '../../storage/queue';
import { mailViews, type MessageQueue } from '../mta';
import { startEndpoints, type Endpoints } from '../endpoints';
import { storePath } from '../data-dir';
import type { ServingPorts } from '../listen';
import { Channel } from './channel';
import { RemoteLimits, RemoteThrottle } from './process-state';
import { THREAD_ERRORS, type MainMethods, type ServingData, type ThreadMethods } from './protocol';
import { threadFigures } from './stats';

type ToMain = Channel<ThreadMethods, MainMethods>;

/** The one writer, on the main thread: each command is answered after its commit. */
export class RemoteWriter implements DirectoryWriter {
  constructor(private readonly channel: ToMain) {}

  async execute<C extends WriteCommand>(cmd: C): Promise<ResultOf<C>> {
    return (await this.channel.request('write', cmd)) as ResultOf<C>;
  }
}

/** The queue side, on the main thread: resolves once the message is on disk there (MessageQueue). */
export class RemoteQueue implements MessageQueue {
  constructor(private readonly channel: ToMain) {}

  async accept(message: QueueMessageRow, rcpts: { rcpt: string; held: boolean }[], now: number): Promise<void> {
    await this.channel.request('enqueue', { message, rcpts, now });
  }
}

/** A serving thread's directory, views and endpoints. */
interface Running {
  endpoints: Endpoints;
  close(): Promise<void>;
}

async function start(data: ServingData, channel: ToMain, ports: ServingPorts, log: Logger): Promise<Running> {
  const config = data.config;
  // A reader: a read-only connection of its own, following the writer's change clock.
  const { directory, zones } = openDirectory({
    file: storePath(config.dataDir), suffix: config.suffix, adminDN: config.adminDN, replicatorDNs: config.replicatorDNs, unitDNs: config.unitDNs,
    extraIndexes: config.ldap.extraIndexes, readOnly: true, catalog: config.dns.catalog,
    clock: new ChangeClock(data.clock), passwords: config.passwords, sharedThrottle: new RemoteThrottle(channel),
    sizeLimit: config.ldap.sizeLimit, timeLimit: config.ldap.timeLimit, dataDir: config.dataDir,
  });
  let views;
  try {
    const writer = new RemoteWriter(channel);
    directory.useWriter(writer);
    const provisioner = new Provisioner(directory, zones, { hostname: config.hostname, ...config.newDomain });
    views = mailViews(directory, zones, config, config.mta.cacheSize);
    const endpoints = await startEndpoints(directory, zones, config, log, {
      ports, views, queue: new RemoteQueue(channel), provisioner, writer, limits: new RemoteLimits(channel),
      tls: { cert: Buffer.from(data.tls.cert), key: Buffer.from(data.tls.key) }, reusePort: true,
      caps: {
        ldap: { buffer: data.caps.ldap, region: data.slot - 1 },
        dns: { buffer: data.caps.dns, region: data.slot - 1 },
        smtp: { buffer: data.caps.smtp, region: data.slot - 1 },
      },
    });
    const v = views;
    return {
      endpoints,
      async close() {
        await endpoints.close();
        v.stop();
        directory.store.close();
      },
    };
  } catch (e) {
    views?.stop();
    directory.store.close();
    throw e;
  }
}

/** Runs this thread: answers the main thread's requests on `port`. */
function serve(data: ServingData, port: MessagePort): void {
  const channel: ToMain = new Channel<ThreadMethods, MainMethods>(port, THREAD_ERRORS);
  const log = forwardingLogger(data.logLevel, (line) => channel.notify('log', line));
  let running: Running | undefined;
  channel.handle('listen', async (ports) => {
    if (running) return running.endpoints.ports;
    running = await start(data, channel, ports, log);
    return running.endpoints.ports;
  });
  channel.handle('stats', () => {
    if (!running) throw new Error('not listening yet');
    return threadFigures(data.slot, data.restarts, running.endpoints);
  });
  channel.handle('drain', async () => {
    const r = running;
    running = undefined;
    await r?.close();
    return null;
  });
}

if (!isMainThread && parentPort) serve(workerData as ServingData, parentPort);
