/**
 * Wires the appliance: one store, one directory, and the endpoints that are
 * views of it. Used by main.ts and by tests that run the appliance in-process.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import { ConfigError, type Config } from './config';
import { listening, probePorts, type ServingPorts } from './listen';
import { dataDirTooOpen, prepareDataDir, storePath } from './data-dir';
import type { Logger } from './log';
import type { Directory } from './directory/directory';
import { DirectoryError } from './directory/errors';
import { openDirectory, type Services } from './directory/open';
import type { Zones } from './directory/zones';
import type { LdapEndpoint } from './ldap/server';
import { adminListen, startHttpServer, storeHealth, type HttpEndpoint } from './admin/http';
import { ApplianceMetrics } from './admin/metrics';
import { operationsTotal } from './ldap/op-counts';
import type { DnsEndpoint } from './dns/server';
import { startNotifier, type Notifier } from './dns/notify';
import { mailViews, type MtaEndpoint } from './mta';
import { startQueueSide } from './mta/queue-side';
import { ProvisionLimits } from './mta/provision-limits';
import { Provisioner } from './directory/provision';
import { LocalWriter, watchOtherWriters } from './directory/writes';
import { DkimKeyPool } from './directory/dkim';
import { startDkimRetirement } from './directory/dkim-rotation';
import { attachMtaSts, policyOf, refreshMtaStsIds } from './directory/mta-sts';
import { ChangeClock } from './directory/change-clock';
import { startEndpoints, type Endpoints } from './endpoints';
import { startThreads, type ThreadHost } from './threads/host';
import { passwordFigures, processStats, threadFigures, type ProcessStats, type ThreadFigures } from './threads/stats';
import type { QueueStore } from '../storage/queue';
import type { Delivery } from './mta/delivery';
import { startRetention, type Retention } from './directory/retention';
import { startDnssecDuty } from './directory/dnssec-state';
import { bindBeside, claimDataDir, type Ownership } from './succession';
import { loadTls } from './tls';
import { startConsole } from './admin/console/start';

/** How long after start the DKIM key pool begins to fill (ms). */
const KEY_POOL_DELAY_MS = 10_000;

/**
 * A running appliance. With DCMX_THREADS=1, `ldap`, `dns` and `mta` are the
 * endpoint objects serving on this thread. With more threads each serving
 * thread has its own endpoints: `ldap`, `dns`, `mta.intake` and
 * `mta.policy` throw when read, and `stats()` gives the process's figures;
 * `mta` is then this thread's queue side (queue, delivery, the views it
 * routes with).
 */
export interface Appliance {
  /** The writable directory (the one writer's). */
  directory: Directory;
  zones: Zones;
  /** `https`: the admin endpoint's HTTPS port, undefined when DCMX_HTTPS_PORT is unset. */
  ports: { ldap: number; dns: number; smtp: number; http: number; https: number | undefined };
  ldap: LdapEndpoint;
  dns: DnsEndpoint;
  mta: MtaEndpoint;
  provisioner: Provisioner;
  /** The one writer: every door's writes go through it as commands (writes.ts), whichever thread received them. */
  writer: LocalWriter;
  /** The last committed change number, published by the writer for every thread (change-clock.ts). */
  clock: ChangeClock;
  retention: Retention;
  /** NOTIFY to the secondaries (DCMX_NOTIFY), one per process. */
  notifier: Notifier;
  /** The serving threads (DCMX_THREADS >= 2). */
  threads: ThreadHost | undefined;
  /** The process's figures, as GET /stats gives them: the threads' summed, and each thread's. */
  stats(): Promise<ApplianceStats>;
  /**
   * The claim on the data dir (succession.ts): `owned` resolves at once,
   * or, for the successor of a running appliance (a reload), once that one
   * has ended; it rejects when it does not end (a second appliance started
   * by mistake): the caller stops this one then.
   */
  ownership: Ownership;
  /** GET /metrics: the same figures as Prometheus series, counters monotonic across thread restarts (admin/metrics.ts). */
  metrics: ApplianceMetrics;
  /** Closes the listeners, lets sessions finish, stops delivery, closes the store, and lets the data dir go. */
  close(): Promise<void>;
}

/** The figures of GET /stats (threads/stats.ts) with the main thread's parts. */
export type ApplianceStats = ProcessStats<
  ReturnType<QueueStore['counts']>, Delivery['stats'], ReturnType<Directory['changeRange']> & { journalRows: number } & Retention['stats']>;

/**
 * The password for a new administrator entry when DCMX_ADMIN_PASSWORD is
 * unset: the one kept (mode 0600) in the data dir, or, on first boot, a new
 * one, written there and announced once. Called only when the entry is being
 * created (Directory.bootstrap), so a password changed over LDAP or restored
 * from a backup is never replaced, and no file appears for an existing entry.
 */
export function initialAdminPassword(config: Config, announce: (msg: string) => void): string {
  const file = path.join(config.dataDir, 'admin-password');
  const read = (): string | undefined => {
    try {
      return fs.readFileSync(file, 'utf8').trim() || undefined;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      return undefined;
    }
  };
  const kept = read();
  if (kept) return kept;
  const pw = crypto.randomBytes(18).toString('base64url');
  try {
    fs.writeFileSync(file, pw + '\n', { mode: 0o600, flag: 'wx' });
  } catch (e) {
    // Another process (the CLI, the appliance) created it first: use its password.
    const theirs = (e as NodeJS.ErrnoException).code === 'EEXIST' ? read() : undefined;
    if (theirs) return theirs;
    throw e;
  }
  announce(`dcmx: generated the administrator password for ${config.adminDN}: ${pw} (kept in ${file})`);
  return pw;
}

/**
 * Readies the data dir (prepareDataDir) and opens the store in it with the
 * configured indexes; the appliance and the CLI open it this way. A store
 * that cannot be opened is a ConfigError naming DCMX_DATA_DIR.
 */
export function openStore(config: Config, limits: { sizeLimit?: number; timeLimit?: number; clock?: ChangeClock } = {}): Services {
  prepareDataDir(config.dataDir);
  const file = storePath(config.dataDir);
  // Before: SQLite gives a new -wal/-shm the mode of the database file. After: a store just created.
  restrictStoreFiles(file);
  let services: Services;
  try {
    services = openDirectory({
      file, suffix: config.suffix, adminDN: config.adminDN, replicatorDNs: config.replicatorDNs, unitDNs: config.unitDNs, extraIndexes: config.ldap.extraIndexes,
      passwords: config.passwords, throttle: config.throttle, catalog: config.dns.catalog, dataDir: config.dataDir, dnssec: config.dns.dnssec.enabled,
      ...limits,
    });
  } catch (e) {
    if ((e as Error).name === 'SqliteError') throw new ConfigError('DCMX_DATA_DIR', `cannot open the store ${file}: ${(e as Error).message}`);
    throw e;
  }
  restrictStoreFiles(file);
  // A write that changes a domain's MX changes its MTA-STS policy: its id follows in the same transaction.
  attachMtaSts(services.directory, services.zones.names, config.newDomain.mtaSts);
  return services;
}

/**
 * Narrows the store and its -wal/-shm files to 0600 when they are wider
 * (made by an earlier version, or under a wider umask): they hold password
 * hashes. A file this user does not own is left as it is.
 */
export function restrictStoreFiles(file: string): void {
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      const st = fs.statSync(f);
      if (st.mode & 0o077) fs.chmodSync(f, 0o600);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'EPERM') throw e;
    }
  }
}

/** How often the store's file is checked when nothing writes (every write checks it too). */
const STORE_CHECK_MS = 1000;

/**
 * Checks the store's file every STORE_CHECK_MS and logs each change of its
 * state loudly: removed or replaced (writes refused, /health failing) at
 * error level, back in place at warn.
 */
function watchStoreFile(directory: Directory, log: Logger): { close(): Promise<void> } {
  const store = directory.store;
  const unsubscribe = store.onFileState((state, previous) => {
    if (state === 'ok') {
      log.warn({ previous }, 'the store file is in place again: writes are accepted');
      return;
    }
    log.error({ state, file: store.db.name },
      `the store file was ${state} while the appliance runs: every write is refused (SMTP 451 4.3.0, LDAP unavailable) and /health fails; ` +
      'what is written now would be lost at the next start. Put the store back, or stop dcmx and restore the data dir from a backup');
  });
  const timer = setInterval(() => {
    try {
      store.fileState();
    } catch (err) {
      log.error({ err }, 'cannot check the store file');
    }
  }, STORE_CHECK_MS);
  timer.unref();
  return {
    close: async () => {
      clearInterval(timer);
      unsubscribe();
    },
  };
}

/**
 * The endpoint objects of the one serving thread (DCMX_THREADS=1). With
 * several threads each has its own: reading one of these throws, naming
 * the way to the process's figures (Appliance.stats).
 */
function perThread<T extends object>(name: string, threads: number): T {
  return new Proxy({} as T, {
    get: (_t, key) => {
      throw new Error(`app.${name}.${String(key)} belongs to one serving thread; with DCMX_THREADS=${threads} read app.stats() (or set DCMX_THREADS=1)`);
    },
  });
}

/**
 * Opens the store and starts every endpoint: on this thread with
 * DCMX_THREADS=1, else in that many serving threads (threads/host.ts),
 * this thread keeping the writer, the queue and delivery, the admin HTTP
 * endpoint, NOTIFY and retention.
 *
 * When another appliance runs on the same data dir (a reload), this one is
 * its successor (succession.ts): it shares its ports (every listener binds
 * with reusePort; the probe for ports in use is only made when no appliance
 * ran), serves at once, and starts delivery, the sweeps and retention once
 * the other has ended. A predecessor that holds a port without reusePort (a
 * version before this) is waited for, and the port bound after it.
 */
export async function startAppliance(config: Config, log: Logger, announce: (msg: string) => void = console.log): Promise<Appliance> {
  const clock = new ChangeClock();
  prepareDataDir(config.dataDir);
  const ownership = claimDataDir(config.dataDir, log.child({ part: 'succession' }));
  let services: Services;
  try {
    services = openStore(config, { sizeLimit: config.ldap.sizeLimit, timeLimit: config.ldap.timeLimit, clock });
  } catch (e) {
    ownership.release();
    throw e;
  }
  const { directory, zones } = services;
  const owned = ownership.first ? undefined : ownership.owned;
  const bind = <T>(start: () => Promise<T>): Promise<T> => bindBeside(ownership, log, start);
  const mode = dataDirTooOpen(config.dataDir, config.mta.mailGroup);
  if (mode !== undefined) {
    log.warn({ dataDir: config.dataDir, mode: mode.toString(8) }, 'the data dir is open to other users (mail, keys, password hashes); chmod 700 it');
  }
  const started: { close(): Promise<void> }[] = [];
  started.push(watchStoreFile(directory, log.child({ part: 'store' })));
  try {
    // DCMX_ADMIN_PASSWORD is the operator's configuration: applied at every start.
    await directory.bootstrap(config.adminPassword
      ? { kind: 'configured', password: config.adminPassword }
      : { kind: 'initial', password: () => initialAdminPassword(config, announce) }).catch((e: unknown) => {
      // The suffix and the administrator are the configuration's (their names were checked by loadConfig).
      if (e instanceof DirectoryError) throw new ConfigError('DCMX_ADMIN_DN', `cannot create the administrator ${config.adminDN}: ${e.message}`);
      throw e;
    });
    // New domains' DKIM keys, made ahead of time off the writer's event loop (dkim.ts DkimKeyPool): the
    // pool fills a little after start (not at once: a start should not spend its first second on keys)
    // and after each domain takes a key.
    const keyPool = config.newDomain.dkim.length > 0 ? new DkimKeyPool(config.newDomain.dkim) : undefined;
    const warmKeys = keyPool && setTimeout(() => void keyPool.fill(), KEY_POOL_DELAY_MS).unref();
    started.push({ close: async () => { clearTimeout(warmKeys); keyPool?.close(); } });
    // Policies served with another mode or max_age than at the last start get new ids (RFC 8461 §3.1).
    refreshMtaStsIds(directory, zones.names, config.newDomain.mtaSts);
    const provisioner = new Provisioner(directory, zones, { hostname: config.hostname, ...config.newDomain, keyPool });
    const writer = new LocalWriter(directory, provisioner);
    const otherWriters = watchOtherWriters(directory);
    started.push({ close: async () => otherWriters.stop() });
    const retention = startRetention(directory, config.retention, log.child({ ep: 'retention' }), owned);
    started.push({ close: async () => retention.stop() });
    void retention.run(); // a backlog left by an older version or a larger setting
    // Rotated-out DKIM selectors go after their grace period: a duty of the data dir's owner, as retention is.
    const dkimRetirement = startDkimRetirement(directory, config.dkim.retireAfter * 1000, log.child({ part: 'dkim' }), owned);
    started.push({ close: async () => dkimRetirement.stop() });
    // Zones signed, withdrawn or unsigned as DCMX_DNSSEC says, by the owner (dnssec-state.ts).
    const dnssecDuty = startDnssecDuty(directory, zones, config.dns.dnssec, log.child({ part: 'dnssec' }), owned);
    started.push({ close: async () => dnssecDuty.stop() });
    // One certificate for SMTP STARTTLS, LDAP StartTLS and the admin HTTPS port.
    const tls = await loadTls({ dataDir: config.dataDir, hostname: config.hostname, cert: config.smtp.tlsCert, key: config.smtp.tlsKey });
    const notifier = startNotifier(zones, config.dns.notify, log.child({ ep: 'dns' }));
    started.push({ close: async () => notifier.close() });
    // Before any intake accepts mail: its spool sweep drops files no committed row names.
    const queueSide = await startQueueSide(mailViews(directory, zones, config, config.mta.cacheSize), directory.store, config, log.child({ ep: 'smtp' }), owned);
    started.push(queueSide);
    const configured = { ldap: config.ldap.port, dns: config.dns.port, smtp: config.smtp.port };
    let serving: { ports: ServingPorts; figures(): Promise<ThreadFigures[]> };
    let endpoints: Endpoints | undefined;
    let threads: ThreadHost | undefined;
    // A port another program holds is refused; the previous appliance's are ours to share.
    if (!owned) await probePorts(config.listen, { ...configured, http: config.http.port, https: config.http.httpsPort });
    if (config.threads === 1) {
      const e = await bind(() => startEndpoints(directory, zones, config, log, {
        ports: configured, views: queueSide.views, queue: queueSide.delivery, provisioner, writer, tls, reusePort: true,
      }));
      endpoints = e;
      started.push(e);
      serving = { ports: e.ports, figures: async () => [threadFigures(0, 0, e)] };
    } else {
      const host = await bind(() => startThreads({
        config, count: config.threads, clock: clock.buffer, tls, log,
        services: {
          writer, queue: queueSide.delivery,
          throttle: directory.throttle, limits: new ProvisionLimits(config.provisionLimits),
        },
      }));
      threads = host;
      started.push(host);
      serving = { ports: host.ports, figures: () => host.stats() };
    }
    queueSide.views.self.smtpPort = serving.ports.smtp;
    const stats = async (): Promise<ApplianceStats> => processStats(await serving.figures(), {
      queue: queueSide.queue.counts(),
      delivery: queueSide.delivery.stats,
      routingVersion: queueSide.views.routing.version,
      history: { ...directory.changeRange(), journalRows: directory.store.journalSize(), ...retention.stats },
      passwords: threads ? passwordFigures(directory) : undefined,
    });
    const metrics = new ApplianceMetrics({
      threads: () => serving.figures(), queue: queueSide.admin, delivery: queueSide.delivery.stats, lastChange: () => clock.current(),
      mainPasswords: threads ? () => passwordFigures(directory) : undefined,
    });
    // The dashboard plots LDAP operations as one total.
    const consoleStats = async () => {
      const s = await stats();
      return { ...s, ldap: { ...s.ldap, operations: operationsTotal(s.ldap.operations) } };
    };
    const webConsole = startConsole({
      directory, zones, writer, routing: queueSide.views.routing, queue: queueSide.admin, stats: consoleStats, endpoints: () => ({ listen: config.listen, ports: serving.ports }),
    },
      config.http.console, log.child({ ep: 'console' }));
    started.push({ close: async () => webConsole.close() });
    const http: HttpEndpoint = await startHttpServer({
      health: () => storeHealth(directory), zones, routing: queueSide.views.routing, stats, metrics, console: webConsole,
      mtaStsPolicy: (host) => policyOf(zones, config.newDomain.mtaSts, host),
    }, adminListen(config, tls, bind), log.child({ ep: 'http' }));
    started.push(http);
    const { views, queue, delivery, admin } = queueSide;
    const queueParts = { port: serving.ports.smtp, cache: views.cache, routing: views.routing, queue, delivery, admin, resolver: views.resolver, source: views.source };
    const mta: MtaEndpoint = endpoints
      ? { ...queueParts, intake: endpoints.smtp.intake, policy: endpoints.smtp.policy }
      : Object.defineProperties(queueParts, {
        intake: { get: () => perThread('mta.intake', config.threads) },
        policy: { get: () => perThread('mta.policy', config.threads) },
      }) as MtaEndpoint;
    return {
      directory,
      zones,
      ldap: endpoints?.ldap ?? perThread<LdapEndpoint>('ldap', config.threads),
      dns: endpoints?.dns ?? perThread<DnsEndpoint>('dns', config.threads),
      mta,
      provisioner,
      writer,
      clock,
      retention,
      notifier,
      threads,
      stats,
      ownership,
      metrics,
      ports: { ...serving.ports, http: http.port, https: http.httpsPort },
      async close() {
        for (const s of started.reverse()) await s.close();
        directory.store.close();
        ownership.release();
      },
    };
  } catch (e) {
    for (const s of started.reverse()) await s.close().catch(() => undefined);
    directory.store.close();
    ownership.release();
    throw e;
  }
}
