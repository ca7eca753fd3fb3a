/**
 * The queue side of the transfer unit, one per process, on the thread that
 * owns the writable store: the durable queue and spool, delivery workers
 * and their channels (nodemailer), the Maildir tmp/ sweep. Serving threads
 * never load it: their intake hands messages to it (mta/index.ts).
 */
import * as path from 'node:path';
import { ConfigError, type Config } from '../config';
import type { Logger } from '../log';
import { QueueStore } from '../../storage/queue';
import { StsPolicyStore } from '../../storage/sts-cache';
import type { Store } from '../../storage/store';
import { Spool, spoolDir } from './spool';
import { Outbound } from './outbound';
import { MessageSigner } from './dkim-sign';
import { StsPolicies } from './mta-sts';
import { Delivery } from './delivery';
import { prepareMailRoot, startTmpSweeper } from './maildir';
import { QueueAdmin } from './queue-admin';
import type { MailViews } from './index';

/** How often the Maildir tmp/ directories are swept after the sweep at start-up. */
const TMP_SWEEP_EVERY_MS = 6 * 60 * 60 * 1000;

/** How often the queue side looks for another process's commits (the queue tools of `dcmx queue`). */
export const QUEUE_WATCH_MS = 100;

/** The queue side of the transfer unit (one per process). */
export interface QueueSide {
  views: MailViews;
  queue: QueueStore;
  delivery: Delivery;
  /** The queue tools (queue-admin.ts) over this queue; a change made through it looks for due work at once. */
  admin: QueueAdmin;
  close(): Promise<void>;
}

/**
 * Starts the queue side over `views` (the appliance's mailViews, or a
 * remote unit's), its queue in the writable `store` (the appliance's own,
 * or a remote unit's queue store): removes spool files
 * no queue row names (left by a crash before their commit: never
 * acknowledged), clears the leases of attempts a previous run left
 * (none is under way now), sweeps Maildir tmp/, and starts delivery,
 * which also looks for due work within QUEUE_WATCH_MS of another process's
 * commit to the store (`dcmx queue retry`, `release`...). Must run before
 * any intake accepts mail (the spool sweep would take an intake's file
 * whose row is not committed yet).
 *
 * With `owned` (a successor during a reload, succession.ts), the queue
 * takes mail at once (and the queue tools work) but the rest waits until
 * `owned` resolves, when the previous appliance has ended: only then are
 * the sweeps run (the spool's only over files older than this call, which
 * this process's intake cannot have made), the leases cleared (before, they
 * are the previous appliance's attempts under way) and delivery started.
 * Resolves without waiting for it.
 */
export async function startQueueSide(views: MailViews, store: Store, config: Config, log: Logger, owned?: Promise<void>): Promise<QueueSide> {
  const since = Date.now();
  const queue = new QueueStore(store);
  const spool = new Spool(spoolDir(config.dataDir));
  const group = config.mta.mailGroup;
  if (group !== undefined) {
    await prepareMailRoot(config.dataDir, group).catch((e: NodeJS.ErrnoException) => {
      throw new ConfigError('DCMX_MAIL_GROUP', `cannot share ${path.join(config.dataDir, 'mail')} with group ${group} (${e.code ?? e.message}): run dcmx as root or as a member of the group`);
    });
  }
  /** What only the owner of the data dir may do at start: no other process's intake or attempt is under way then. */
  const tidy = async (before?: number) => {
    const orphans = await spool.sweep(queue.spoolPaths(), before);
    if (orphans) log.info({ orphans }, 'removed unacknowledged spool files');
    const leases = queue.clearLeases();
    if (leases) log.info({ leases }, 'cleared the delivery leases a previous run left');
  };
  // maildir(5): tmp/ files a crash left behind (killed mid-delivery) go after 36 hours; now, then every 6 hours.
  const tmpLog = log.child({ part: 'maildir' });
  const startSweeper = () => startTmpSweeper(path.join(config.dataDir, 'mail'), {
    everyMs: TMP_SWEEP_EVERY_MS,
    onResult: (r) => {
      if (r.removed || r.errors) tmpLog.info({ ...r }, 'swept old files from Maildir tmp/');
    },
    onError: (err) => tmpLog.warn({ err }, 'Maildir tmp/ sweep failed'),
  });
  const { routing, cache, resolver, self, sync } = views;
  const dkimKeys = views.source.dkimKeys?.bind(views.source);
  const maySendAs = views.source.maySendAs?.bind(views.source);
  const signLog = log.child({ part: 'dkim' });
  const signer = dkimKeys && new MessageSigner(dkimKeys, maySendAs, (fields, msg) => signLog.info(fields, msg));
  // MTA-STS policies of recipient domains (RFC 8461), cached in the queue's store (across restarts).
  const sts = new StsPolicies({ resolver, ca: config.mtaStsCa, persist: new StsPolicyStore(store) });
  const outbound = new Outbound({
    hostname: config.hostname, resolver, self, sts, log: log.child({ part: 'outbound' }),
    portOverride: config.mta.relayPort === 25 ? undefined : config.mta.relayPort,
  });
  const delivery = new Delivery({
    hostname: config.hostname, dataDir: config.dataDir, mailGroup: config.mta.mailGroup, concurrency: config.mta.concurrency,
    retryBase: config.mta.retryBase, retryMax: config.mta.retryMax, lifetime: config.mta.queueLifetime,
    ownAddresses: [config.listen, ...config.selfAddresses],
  }, { queue, spool, routing, cache, outbound, sync, signer, self, directoryHost: views.source.directoryHost, log: log.child({ part: 'delivery' }) });
  routing.onUpdate((touched) => {
    // Domains that left hold: give their messages another go.
    const released = touched
      ? queue.releaseHeld(Date.now(), touched.filter((d) => routing.lookup(d)?.kind !== 'hold'))
      : queue.releaseHeld(Date.now());
    if (released) delivery.kick();
  });
  let sweeper: ReturnType<typeof startTmpSweeper> | undefined;
  let closed = false;
  const begin = () => {
    sweeper = startSweeper();
    delivery.start();
  };
  if (owned) {
    owned.then(async () => {
      await tidy(since);
      if (!closed) begin();
    }).catch((err: unknown) => {
      if (!closed) log.error({ err }, 'the queue side did not start delivery');
    });
  } else {
    await tidy();
    begin();
  }
  const stopWatch = store.watchOtherCommits(QUEUE_WATCH_MS, () => delivery.kick());
  const admin = new QueueAdmin({ queue, spool, hostname: config.hostname, onChange: () => delivery.kick() });
  return {
    views, queue, delivery, admin,
    async close() {
      closed = true;
      stopWatch();
      // Attempts under way end (outbound connections closing) and record their outcome before the store closes.
      const stopped = delivery.stop();
      outbound.close();
      await stopped;
      views.stop();
      await sweeper?.stop();
    },
  };
}
