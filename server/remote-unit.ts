/**
 * Wires a remote transfer unit (DCMX_ROLE=mta): the transfer unit alone —
 * SMTP intake, the queue, delivery — in its own data dir with its own small
 * SQLite queue store (queue.sqlite: the directory's tables stay empty),
 * reading a remote directory over LDAP (RemoteMailSource: Content Sync over
 * one connection), and the admin HTTP endpoint (/health, /routes, /stats,
 * /metrics).
 * No LDAP or DNS listener, no directory of its own. One serving thread
 * (DCMX_THREADS does not apply).
 *
 * Directory unreachable (down, or not yet reached at start): the unit runs
 * degraded — cached recipients and the domain copy saved in the data dir
 * still answer, unknown recipients get 451 4.4.3, /health answers 503
 * `degraded` — and it reconnects with back-off, resuming from its cookie.
 */
import * as path from 'node:path';
import type { Config } from './config';
import type { Logger } from './log';
import { dataDirTooOpen, prepareDataDir } from './data-dir';
import { restrictStoreFiles } from './appliance';
import { listening, probePorts } from './listen';
import { bindBeside, claimDataDir, type Ownership } from './succession';
import { loadTls } from './tls';
import { adminListen, startHttpServer, type Health, type HttpEndpoint } from './admin/http';
import { ApplianceMetrics } from './admin/metrics';
import { mailFigures } from './threads/stats';
import { RoutingTable } from './directory/routing';
import { RemoteMailSource } from './directory-client/remote-source';
import { DirectoryCache } from './mta/cache';
import { MailResolver } from './mta/resolver';
import { SelfIdentity } from './mta/self';
import { startIntakeSide, type IntakeSide, type MailViews } from './mta';
import { startQueueSide, type QueueSide } from './mta/queue-side';
import type { PolicyProvisioning } from './mta/policy';
import { Store } from '../storage/store';

/** How long start-up waits for the first synchronization before it serves degraded. */
const FIRST_SYNC_WAIT_MS = 5000;

/** A running remote transfer unit. */
export interface RemoteUnit {
  ports: { smtp: number; http: number; https: number | undefined };
  /** The claim on the data dir, as the appliance's (Appliance.ownership): a reload hands the queue over the same way. */
  ownership: Ownership;
  source: RemoteMailSource;
  views: MailViews;
  queueSide: QueueSide;
  intake: IntakeSide;
  /** /health's answer. */
  health(): Health;
  close(): Promise<void>;
}

/** The queue store of a unit, in its data dir. */
export function unitStorePath(dataDir: string): string {
  return path.join(dataDir, 'queue.sqlite');
}

/**
 * What the provisioning policy writes with on a unit: the directory's
 * extended operation (RemoteMailSource.provision), which refuses the
 * names the appliance never provisions; the unit answers once the new
 * domain has come back by Content Sync.
 */
function remoteProvisioning(source: RemoteMailSource): PolicyProvisioning {
  return {
    provisioner: { assertProvisionable: () => undefined }, // the directory checks, in its write path
    writer: { execute: (cmd) => source.provision(cmd.name) },
  };
}

/** Readies a unit's data dir and opens its queue store (the unit and `dcmx queue` on it open it this way). */
export function openUnitStore(dataDir: string): Store {
  prepareDataDir(dataDir);
  const file = unitStorePath(dataDir);
  restrictStoreFiles(file);
  const store = Store.open(file, []);
  restrictStoreFiles(file);
  return store;
}

/** Starts the unit. `config.directory` must be set (loadConfig guarantees it for DCMX_ROLE=mta). */
export async function startRemoteUnit(config: Config, log: Logger): Promise<RemoteUnit> {
  const remote = config.directory;
  if (!remote) throw new Error('startRemoteUnit: DCMX_ROLE=mta without a directory');
  const store = openUnitStore(config.dataDir);
  const mode = dataDirTooOpen(config.dataDir, config.mta.mailGroup);
  if (mode !== undefined) log.warn({ dataDir: config.dataDir, mode: mode.toString(8) }, 'the data dir is open to other users (mail, keys); chmod 700 it');
  let ownership: Ownership;
  try {
    ownership = claimDataDir(config.dataDir, log.child({ part: 'succession' }));
  } catch (e) {
    store.close();
    throw e;
  }
  const owned = ownership.first ? undefined : ownership.owned;
  const started: { close(): Promise<void> }[] = [];
  try {
    const source = new RemoteMailSource({ directory: remote, suffix: config.suffix, dataDir: config.dataDir, log: log.child({ ep: 'directory' }) });
    // "This deployment" is this unit and the appliance holding the directory (the MX of the domains it
    // provisions): such a domain is local here; placement (mailHost) then says whose each mailbox is.
    const routing = new RoutingTable([config.hostname, remote.host]);
    const cache = new DirectoryCache(source, { max: config.mta.cacheSize });
    const resolver = new MailResolver({ upstream: config.upstreamDns });
    const self = new SelfIdentity({
      hostname: config.hostname, selfAddresses: config.selfAddresses, listen: config.listen, smtpPort: config.smtp.port, relayPort: config.mta.relayPort,
    }, resolver);
    const views: MailViews = { source, routing, cache, resolver, self, sync: () => undefined, stop: () => source.stop() };
    source.start({ cache, routing });
    started.push({ close: async () => source.stop() });
    const first = await Promise.race([source.whenSynced().then(() => true), new Promise<false>((r) => setTimeout(() => r(false), FIRST_SYNC_WAIT_MS).unref())]);
    if (!first) log.warn({ url: remote.url }, 'the directory is not reachable yet: starting degraded (reconnecting in the background)');
    // Before intake accepts mail: its spool sweep drops files no committed row names.
    const queueSide = await startQueueSide(views, store, config, log.child({ ep: 'smtp' }), owned);
    started.push(queueSide);
    const tls = await loadTls({ dataDir: config.dataDir, hostname: config.hostname, cert: config.smtp.tlsCert, key: config.smtp.tlsKey });
    // As the appliance's: reusePort everywhere, ports in use refused unless a predecessor on this data dir holds them (succession.ts).
    if (!owned) await probePorts(config.listen, { ldap: 0, dns: 0, smtp: config.smtp.port, http: config.http.port, https: config.http.httpsPort });
    const intake = await bindBeside(ownership, log, () => listening('DCMX_SMTP_PORT', config.listen, config.smtp.port, () => startIntakeSide(views, config, log.child({ ep: 'smtp' }), {
      queue: queueSide.delivery,
      provisioning: config.provisioning === 'off' ? undefined : remoteProvisioning(source),
      storeWritable: () => store.fileState() === 'ok',
      directoryReachable: () => source.reachable,
      deploymentNames: [remote.host],
      tls, reusePort: true,
    })));
    started.push(intake);
    self.smtpPort = intake.port;
    const health = (): Health => source.reachable
      ? { healthy: true, body: { status: 'ok', role: 'mta', directory: 'synchronized', domains: source.domainCount } }
      : { healthy: false, body: { status: 'degraded', role: 'mta', directory: 'unreachable', domains: source.domainCount } };
    const stats = async () => ({
      role: 'mta',
      directory: { reachable: source.reachable, ...source.stats },
      cache: cache.stats,
      routingVersion: routing.version,
      queue: queueSide.queue.counts(),
      delivery: queueSide.delivery.stats,
      smtp: intake.intake.stats,
      policy: intake.policy,
    });
    const metrics = new ApplianceMetrics({
      threads: async () => [{ thread: 0, restarts: 0, ...mailFigures(intake, views) }],
      queue: queueSide.admin,
      delivery: queueSide.delivery.stats,
      directory: () => ({ reachable: source.reachable, changes: source.stats.changes, reloads: source.stats.reloads, connects: source.stats.connects }),
    });
    const http: HttpEndpoint = await startHttpServer({ health, zones: undefined, routing, stats, metrics },
      adminListen(config, tls, (start) => bindBeside(ownership, log, start)), log.child({ ep: 'http' }));
    started.push(http);
    return {
      ports: { smtp: intake.port, http: http.port, https: http.httpsPort },
      source,
      views,
      queueSide,
      intake,
      health,
      ownership,
      async close() {
        for (const s of started.reverse()) await s.close();
        store.close();
        ownership.release();
      },
    };
  } catch (e) {
    for (const s of started.reverse()) await s.close().catch(() => undefined);
    store.close();
    ownership.release();
    throw e;
  }
}
