/**
 * The transfer unit, wired, in two parts that may run on different threads:
 * - the queue side (queue-side.ts startQueueSide): the durable queue and
 *   spool, delivery workers and their channels, the Maildir tmp/ sweep; one
 *   per process, on the thread that owns the writable store, so a message
 *   is never delivered twice;
 * - the intake side (startIntakeSide): SMTP intake, one per serving
 *   thread, which hands each accepted message to the queue side (a
 *   MessageQueue: its Delivery, or a forwarder to the thread that has it).
 * Each part reads the directory through its own views (mailViews): the
 * directory cache and routing table, following the change log. With
 * DCMX_THREADS=1 both run on one thread and share one set of views
 * (server/appliance.ts, server/endpoints.ts).
 */
import type { Config } from '../config';
import type { Logger } from '../log';
import type { Directory } from '../directory/directory';
import type { Zones } from '../directory/zones';
import { MailDirectory } from '../directory/mail';
import { LocalMailSource, type MailSource } from '../directory/mail-source';
import { RoutingTable } from '../directory/routing';
import { ChangeFollower } from '../directory/changes';
import type { QueueStore } from '../../storage/queue';
import { DirectoryCache } from './cache';
import { Spool, spoolDir } from './spool';
import { MailResolver } from './resolver';
import type { Delivery } from './delivery';
import type { QueueAdmin } from './queue-admin';
import { Intake, type MessageQueue, type UnknownDomainHook } from './intake';
import { provisioningPolicy, type PolicyProvisioning, type PolicyStats } from './policy';
import type { ProvisionLimiter } from './provision-limits';
import { SelfIdentity } from './self';
import type { TlsPair } from '../tls';
import type { CapsMemory } from '../connection-caps';

export type { MessageQueue } from './intake';

/**
 * The directory as the transfer unit reads it, on one thread: its source,
 * and the cache and routing table kept in step with it (the change log on
 * the appliance; Content Sync on a remote unit).
 */
export interface MailViews {
  source: MailSource;
  routing: RoutingTable;
  cache: DirectoryCache;
  resolver: MailResolver;
  self: SelfIdentity;
  /** Catches the cache and routing table up with the change log (writes by other threads and processes included). */
  sync(): void;
  stop(): void;
}

/**
 * The transfer unit's views of `directory`: its routing table and a
 * directory cache of `cacheSize` entries, both following the change log,
 * one reader of it for both (each commit is read once).
 */
export function mailViews(directory: Directory, zones: Zones, config: Config, cacheSize: number): MailViews {
  // The routing table re-reads the store synchronously (the follower runs inside directory.sync(),
  // so a lookup right after it sees the write); the cache reads through the MailSource.
  const mail = new MailDirectory(directory, zones.names);
  const source = new LocalMailSource(mail);
  const routing = new RoutingTable(config.hostname);
  routing.build(mail.domains(), directory.changeRange().last);
  const cache = new DirectoryCache(source, { max: cacheSize });
  const follower = new ChangeFollower(directory, {
    onChanges: (rows) => {
      routing.apply(rows, mail);
      cache.invalidate(rows);
    },
    onGap: () => {
      routing.build(mail.domains(), directory.changeRange().last);
      cache.flush();
    },
  }, { pollMs: config.mta.changePollMs, from: routing.version });
  const resolver = new MailResolver({ upstream: config.upstreamDns, zones });
  const self = new SelfIdentity({
    hostname: config.hostname, selfAddresses: config.selfAddresses, listen: config.listen, smtpPort: config.smtp.port, relayPort: config.mta.relayPort,
  }, resolver);
  // Before each lookup: one atomic load, and the follower reads the log only when the change clock moved.
  return { source, routing, cache, resolver, self, sync: () => directory.sync(), stop: () => follower.stop() };
}

/** What the intake side needs besides its views. */
export interface IntakeSideDeps {
  /** Where accepted messages go. */
  queue: MessageQueue;
  /** With `provisioning` (a provisioner for its reads, the writer for its writes), unknown domains go through the provisioning policy. */
  provisioning?: PolicyProvisioning;
  /** The process's provisioning rate limits (shared by every thread); a fresh set when absent. */
  limits?: ProvisionLimiter;
  /** False while the store takes no writes. */
  storeWritable: () => boolean;
  /** A remote unit's directory reachability (intake.ts IntakeDeps.directoryReachable); absent on the appliance. */
  directoryReachable?: () => boolean;
  /**
   * Host names besides DCMX_HOSTNAME that an MX may name for the `mx`
   * provisioning policy to take the domain: on a remote unit, the appliance
   * holding the directory (DCMX_DIRECTORY_HOST). Only the policy's check:
   * for delivery they stay other hosts (the unit relays to them).
   */
  deploymentNames?: readonly string[];
  tls: TlsPair;
  /** Listen with SO_REUSEPORT (serving threads). */
  reusePort?: boolean;
  /** The process's connection counts, when several threads serve SMTP. */
  caps?: CapsMemory;
}

/** The intake side of the transfer unit (one per serving thread). */
export interface IntakeSide {
  port: number;
  intake: Intake;
  /** Provisioning policy counters (undefined without a provisioner). */
  policy: PolicyStats | undefined;
  close(): Promise<void>;
}

/** `self`, for which the host names `names` count as ours too (the provisioning policy's MX check). */
function deploymentSelf(self: SelfIdentity, names: readonly string[]): Pick<SelfIdentity, 'isSelfName' | 'isSelfAddress'> {
  if (names.length === 0) return self;
  const ours = new Set(names.map((n) => n.toLowerCase().replace(/\.$/, '')));
  return {
    isSelfName: (host) => self.isSelfName(host) || ours.has(host.toLowerCase().replace(/\.$/, '')),
    isSelfAddress: (ip) => self.isSelfAddress(ip),
  };
}

/** Starts SMTP intake over `views` on the configured port. */
export async function startIntakeSide(views: MailViews, config: Config, log: Logger, deps: IntakeSideDeps): Promise<IntakeSide> {
  const { source, cache, routing, resolver, self, sync } = views;
  const policy: (UnknownDomainHook & { stats: PolicyStats }) | undefined = deps.provisioning
    ? provisioningPolicy(config, deps.provisioning, resolver, deploymentSelf(self, deps.deploymentNames ?? []), log.child({ part: 'policy' }), { limits: deps.limits })
    : undefined;
  const intake = new Intake({
    host: config.listen, port: config.smtp.port, hostname: config.hostname, maxSize: config.smtp.maxSize,
    maxRecipients: config.smtp.maxRecipients, maxClients: config.smtp.maxClients, socketTimeoutMs: config.smtp.socketTimeout * 1000,
    clientConnections: config.smtp.clientConnections, busyTimeoutMs: config.smtp.busyTimeout * 1000,
    greetingDelayMs: config.smtp.greetingDelay, relayNetworks: config.smtp.relayNetworks, tls: deps.tls, authFailureLimit: config.smtp.authFailures, hopLimit: config.smtp.hopLimit,
    ownAddresses: [config.listen, ...config.selfAddresses], reusePort: deps.reusePort, caps: deps.caps,
  }, { source, cache, routing, queue: deps.queue, spool: new Spool(spoolDir(config.dataDir)), resolver, sync, log: log.child({ part: 'intake' }),
    unknownDomain: policy, self, storeWritable: deps.storeWritable, directoryReachable: deps.directoryReachable });
  const port = await intake.listen();
  self.smtpPort = port;
  log.info({ port }, 'smtp listening');
  return { port, intake, policy: policy?.stats, close: () => intake.close() };
}

/** The transfer unit of the appliance, as tests and the admin API see it (server/appliance.ts). */
export interface MtaEndpoint {
  port: number;
  cache: DirectoryCache;
  routing: RoutingTable;
  queue: QueueStore;
  delivery: Delivery;
  /** The queue tools (queue-admin.ts): what `dcmx queue` and the console's Queue page do. */
  admin: QueueAdmin;
  intake: Intake;
  resolver: MailResolver;
  source: MailSource;
  /** Provisioning policy counters (undefined without a provisioner). */
  policy: PolicyStats | undefined;
}
