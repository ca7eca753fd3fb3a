/**
 * Wires the appliance: one store, one directory, and the endpoints that are
 * views of it. Used by main.ts and by tests that run the appliance in-process.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import type { Config } from './config';
import type { Logger } from './log';
import type { Directory } from './directory/directory';
import { openDirectory } from './directory/open';
import type { Zones } from './directory/zones';
import { startLdapServer, type LdapEndpoint } from './ldap/server';
import { startHttpServer, type HttpEndpoint } from './admin/http';
import { startDnsServer, type DnsEndpoint } from './dns/server';
import { startMta, type MtaEndpoint } from './mta';
import { Provisioner } from './directory/provision';
import { startRetention, type Retention } from './directory/retention';
import { loadTls } from './tls';

/** A running appliance. */
export interface Appliance {
  directory: Directory;
  zones: Zones;
  ports: { ldap: number; dns: number; smtp: number; http: number };
  ldap: LdapEndpoint;
  dns: DnsEndpoint;
  mta: MtaEndpoint;
  provisioner: Provisioner;
  retention: Retention;
  close(): Promise<void>;
}

/** Path of the SQLite store in the data dir. */
export function storePath(dataDir: string): string {
  return path.join(dataDir, 'dcmx.sqlite');
}

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

/** Opens the store and starts every endpoint. */
export async function startAppliance(config: Config, log: Logger, announce: (msg: string) => void = console.log): Promise<Appliance> {
  fs.mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const { directory, zones } = openDirectory({
    file: storePath(config.dataDir),
    suffix: config.suffix,
    adminDN: config.adminDN,
    extraIndexes: config.ldap.extraIndexes,
    sizeLimit: config.ldap.sizeLimit,
    timeLimit: config.ldap.timeLimit,
  });
  const started: { close(): Promise<void> }[] = [];
  try {
    // DCMX_ADMIN_PASSWORD is the operator's configuration: applied at every start.
    await directory.bootstrap(config.adminPassword
      ? { kind: 'configured', password: config.adminPassword }
      : { kind: 'initial', password: () => initialAdminPassword(config, announce) });
    const provisioner = new Provisioner(directory, zones, { hostname: config.hostname, ...config.newDomain });
    const retention = startRetention(directory, config.retention, log.child({ ep: 'retention' }));
    started.push({ close: async () => retention.stop() });
    void retention.run(); // a backlog left by an older version or a larger setting
    // One certificate for SMTP STARTTLS and LDAP StartTLS.
    const tls = await loadTls({ dataDir: config.dataDir, hostname: config.hostname, cert: config.smtp.tlsCert, key: config.smtp.tlsKey });
    const ldap: LdapEndpoint = await startLdapServer(directory, {
      host: config.listen, port: config.ldap.port, maxPdu: config.ldap.maxPdu, maxDepth: config.ldap.maxDepth,
      idleTimeout: config.ldap.idleTimeout, pduTimeout: config.ldap.pduTimeout, maxConnections: config.ldap.maxConnections,
      provisioner, tls,
    }, log.child({ ep: 'ldap' }));
    started.push(ldap);
    const dns = await startDnsServer(zones, {
      host: config.listen, port: config.dns.port, axfrAllow: config.dns.axfrAllow, notify: config.dns.notify,
      cacheEntries: config.dns.cacheEntries,
      rrl: config.dns.rrlRate > 0 ? { rate: config.dns.rrlRate, slip: config.dns.rrlSlip } : undefined,
    }, log.child({ ep: 'dns' }));
    started.push(dns);
    const mta = await startMta(directory, zones, config, log.child({ ep: 'smtp' }), tls, provisioner);
    started.push(mta);
    const http: HttpEndpoint = await startHttpServer({ directory, zones, mta, dns, retention }, { host: config.listen, port: config.http.port, allow: config.http.allow }, log.child({ ep: 'http' }));
    started.push(http);
    return {
      directory,
      zones,
      ldap,
      dns,
      mta,
      provisioner,
      retention,
      ports: { ldap: ldap.port, dns: dns.port, smtp: mta.port, http: http.port },
      async close() {
        for (const s of started.reverse()) await s.close();
        directory.store.close();
      },
    };
  } catch (e) {
    for (const s of started.reverse()) await s.close().catch(() => undefined);
    directory.store.close();
    throw e;
  }
}
