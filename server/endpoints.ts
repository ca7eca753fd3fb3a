/**
 * The serving endpoints of one thread: LDAP, DNS (UDP and TCP) and SMTP
 * intake, over that thread's directory and its views. The appliance starts
 * them once on the main thread (DCMX_THREADS=1), or each serving thread
 * starts its own (server/threads/serving.ts), listening with reusePort.
 */
import type { Config } from './config';
import type { Logger } from './log';
import type { Directory } from './directory/directory';
import type { Zones } from './directory/zones';
import type { Provisioner } from './directory/provision';
import type { DirectoryWriter } from './directory/writes';
import { listening, type ServingPorts } from './listen';
import { trimMalloc } from './malloc';
import { startLdapServer, type LdapEndpoint } from './ldap/server';
import { startDnsServer, type DnsEndpoint } from './dns/server';
import { TRANSFER_CACHE_BYTES } from './dns/transfer';
import { startIntakeSide, type IntakeSide, type MailViews, type MessageQueue } from './mta';
import type { ProvisionLimiter } from './mta/provision-limits';
import type { TlsPair } from './tls';
import type { CapsMemory } from './connection-caps';

/** What the endpoints of a thread are given besides its directory. */
export interface EndpointDeps {
  /** The ports to bind (0: any free port). */
  ports: ServingPorts;
  /** The transfer unit's views of this thread's directory. */
  views: MailViews;
  /** Where accepted mail goes. */
  queue: MessageQueue;
  /** Serves provisioning (LDAP extended operation, SMTP at RCPT under the policy): the provisioner for its reads. */
  provisioner: Provisioner;
  /** The one writer (this thread's, or the main thread's over the channel): every write goes to it as a command. */
  writer: DirectoryWriter;
  /** The process's provisioning rate limits, when another thread keeps them. */
  limits?: ProvisionLimiter;
  tls: TlsPair;
  /** Listen with SO_REUSEPORT: several threads on each port. */
  reusePort: boolean;
  /** The process's LDAP, DNS (TCP) and SMTP connection counts, when several threads serve (connection-caps.ts). */
  caps?: { ldap: CapsMemory; dns: CapsMemory; smtp: CapsMemory };
}

/** A thread's running endpoints. */
export interface Endpoints {
  /** The thread's directory they serve. */
  directory: Directory;
  ldap: LdapEndpoint;
  dns: DnsEndpoint;
  smtp: IntakeSide;
  views: MailViews;
  /** The ports bound. */
  ports: ServingPorts;
  /** Closes the listeners and their connections (the views and the store are the caller's). */
  close(): Promise<void>;
}

/**
 * Starts LDAP, DNS and SMTP on `deps.ports`; a bind failure is the
 * ConfigError naming the port's setting (listen.ts), and what was started
 * is closed again.
 */
export async function startEndpoints(directory: Directory, zones: Zones, config: Config, log: Logger, deps: EndpointDeps): Promise<Endpoints> {
  const started: { close(): Promise<void> }[] = [];
  const host = config.listen;
  const { ports, tls, reusePort } = deps;
  try {
    const ldap = await listening('DCMX_LDAP_PORT', host, ports.ldap, () => startLdapServer(directory, {
      host, port: ports.ldap, maxPdu: config.ldap.maxPdu, maxDepth: config.ldap.maxDepth,
      idleTimeout: config.ldap.idleTimeout, pduTimeout: config.ldap.pduTimeout, maxConnections: config.ldap.maxConnections,
      clientConnections: config.ldap.clientConnections, busyIdleTimeout: config.ldap.busyIdleTimeout,
      writer: deps.writer, provisioning: true, tls, reusePort, caps: deps.caps?.ldap, syncBacklog: config.ldap.syncBacklog,
    }, log.child({ ep: 'ldap' })));
    started.push(ldap);
    // The zones compiled before the DNS port opens (zone-index.ts): the first queries do not wait for the scan.
    zones.compile();
    // What the scan freed (the store's page cache, Store.releaseCache) handed back to the kernel
    // (malloc.ts): ~5 MiB less at ready for a 10,000-name zone.
    trimMalloc();
    const dns = await listening('DCMX_DNS_PORT', host, ports.dns, () => startDnsServer(zones, {
      host, port: ports.dns, axfrAllow: config.dns.axfrAllow, cacheEntries: config.dns.cacheEntries,
      // The process's budget, shared among its serving threads (as the answer cache's, threads/protocol.ts threadConfig).
      transferCacheBytes: Math.floor(TRANSFER_CACHE_BYTES / config.threads),
      rrl: config.dns.rrlRate > 0 ? { rate: config.dns.rrlRate, slip: config.dns.rrlSlip } : undefined, reusePort, caps: deps.caps?.dns,
      udpBatch: config.dns.udpBatch,
    }, log.child({ ep: 'dns' })));
    started.push(dns);
    const smtp = await listening('DCMX_SMTP_PORT', host, ports.smtp, () => startIntakeSide(deps.views, { ...config, smtp: { ...config.smtp, port: ports.smtp } }, log.child({ ep: 'smtp' }), {
      queue: deps.queue, provisioning: { provisioner: deps.provisioner, writer: deps.writer }, limits: deps.limits, tls, reusePort, caps: deps.caps?.smtp,
      storeWritable: () => directory.store.fileState() === 'ok',
    }));
    started.push(smtp);
    return {
      directory, ldap, dns, smtp, views: deps.views,
      ports: { ldap: ldap.port, dns: dns.port, smtp: smtp.port },
      async close() {
        // SMTP first: its sessions may still be finishing a message (smtp-server's close waits for them).
        await Promise.all([smtp.close(), ldap.close(), dns.close()]);
      },
    };
  } catch (e) {
    for (const s of started.reverse()) await s.close().catch(() => undefined);
    throw e;
  }
}
