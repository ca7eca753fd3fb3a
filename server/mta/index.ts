/**
 * The transfer unit, wired: directory cache and routing table following the
 * change log, the durable queue and spool, SMTP intake, delivery workers
 * and their channels.
 */
import * as path from 'node:path';
import type { Config } from '../config';
import type { Logger } from '../log';
import type { Directory } from '../directory/directory';
import type { Zones } from '../directory/zones';
import { MailDirectory } from '../directory/mail';
import { RoutingTable } from '../directory/routing';
import { ChangeFollower } from '../directory/changes';
import { QueueStore } from '../../storage/queue';
import { DirectoryCache } from './cache';
import { Spool } from './spool';
import { MailResolver } from './resolver';
import { Outbound } from './outbound';
import { Delivery } from './delivery';
import { Intake } from './intake';
import { startTmpSweeper } from './maildir';
import { provisioningPolicy, type PolicyProvisioning, type PolicyStats } from './policy';
import { SelfIdentity } from './self';
import type { TlsPair } from '../tls';

/** How often the Maildir tmp/ directories are swept after the sweep at start-up. */
const TMP_SWEEP_EVERY_MS = 6 * 60 * 60 * 1000;

export interface MtaEndpoint {
  port: number;
  cache: DirectoryCache;
  routing: RoutingTable;
  queue: QueueStore;
  delivery: Delivery;
  intake: Intake;
  resolver: MailResolver;
  mail: MailDirectory;
  /** Provisioning policy counters (undefined without a provisioner). */
  policy: PolicyStats | undefined;
  close(): Promise<void>;
}

/**
 * Starts the transfer unit with the appliance's certificate for STARTTLS; with
 * `provisioning` (a provisioner for its reads, the writer for its writes),
 * unknown domains go through the provisioning policy.
 */
export async function startMta(
  directory: Directory, zones: Zones, config: Config, log: Logger, tls: TlsPair, provisioning?: PolicyProvisioning,
): Promise<MtaEndpoint> {
  const mail = new MailDirectory(directory, zones.names);
  const routing = new RoutingTable(mail, config.hostname);
  routing.build(directory);
  const cache = new DirectoryCache(mail, { max: config.mta.cacheSize });
  // One reader of the change log for both views: each commit is read once.
  const follower = new ChangeFollower(directory, {
    onChanges: (rows) => {
      routing.apply(rows);
      cache.invalidate(rows);
    },
    onGap: () => {
      routing.build(directory);
      cache.flush();
    },
  }, { pollMs: config.mta.changePollMs, from: routing.version });
  // Before each lookup: one atomic load, and the follower reads the log only when the change clock moved.
  const sync = () => directory.sync();
  const queue = new QueueStore(directory.store);
  const spool = new Spool(path.join(config.dataDir, 'spool'));
  // Spool files with no queue row were written by a run that crashed before its commit: never acknowledged, safe to drop.
  const orphans = await spool.sweep(queue.spoolPaths());
  if (orphans) log.info({ orphans }, 'removed unacknowledged spool files');
  // maildir(5): tmp/ files a crash left behind (killed mid-delivery) go after 36 hours; now, then every 6 hours.
  const tmpLog = log.child({ part: 'maildir' });
  const sweeper = startTmpSweeper(path.join(config.dataDir, 'mail'), {
    everyMs: TMP_SWEEP_EVERY_MS,
    onResult: (r) => {
      if (r.removed || r.errors) tmpLog.info({ ...r }, 'swept old files from Maildir tmp/');
    },
    onError: (err) => tmpLog.warn({ err }, 'Maildir tmp/ sweep failed'),
  });
  const resolver = new MailResolver({ upstream: config.upstreamDns, zones });
  const self = new SelfIdentity({
    hostname: config.hostname, selfAddresses: config.selfAddresses, listen: config.listen, smtpPort: config.smtp.port, relayPort: config.mta.relayPort,
  }, resolver);
  const policy = provisioning ? provisioningPolicy(config, provisioning, resolver, self, log.child({ part: 'policy' })) : undefined;
  const outbound = new Outbound({ hostname: config.hostname, resolver, self, portOverride: config.mta.relayPort === 25 ? undefined : config.mta.relayPort });
  const delivery = new Delivery({
    hostname: config.hostname, dataDir: config.dataDir, concurrency: config.mta.concurrency,
    retryBase: config.mta.retryBase, retryMax: config.mta.retryMax, lifetime: config.mta.queueLifetime,
    ownAddresses: [config.listen, ...config.selfAddresses],
  }, { queue, spool, routing, cache, outbound, sync, self, log: log.child({ part: 'delivery' }) });
  routing.onUpdate((touched) => {
    // Domains that left hold: give their messages another go.
    const released = touched
      ? queue.releaseHeld(Date.now(), touched.filter((d) => routing.lookup(d)?.kind !== 'hold'))
      : queue.releaseHeld(Date.now());
    if (released) delivery.kick();
  });
  const intake = new Intake({
    host: config.listen, port: config.smtp.port, hostname: config.hostname, maxSize: config.smtp.maxSize,
    maxRecipients: config.smtp.maxRecipients, maxClients: config.smtp.maxClients, socketTimeoutMs: config.smtp.socketTimeout * 1000,
    clientConnections: config.smtp.clientConnections, busyTimeoutMs: config.smtp.busyTimeout * 1000,
    greetingDelayMs: config.smtp.greetingDelay, relayNetworks: config.smtp.relayNetworks, tls, authFailureLimit: config.smtp.authFailures, hopLimit: config.smtp.hopLimit,
    ownAddresses: [config.listen, ...config.selfAddresses],
  }, { mail, cache, routing, queue, spool, resolver, sync, log: log.child({ part: 'intake' }), onQueued: () => delivery.kick(), unknownDomain: policy, self,
    storeWritable: () => directory.store.fileState() === 'ok' });
  const port = await intake.listen();
  self.smtpPort = port;
  delivery.start();
  log.info({ port }, 'smtp listening');
  return {
    port, cache, routing, queue, delivery, intake, resolver, mail, policy: policy?.stats,
    async close() {
      await intake.close();
      // Attempts under way end (outbound connections closing) and record their outcome before the store closes.
      const stopped = delivery.stop();
      outbound.close();
      await stopped;
      follower.stop();
      await sweeper.stop();
    },
  };
}
