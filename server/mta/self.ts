/**
 * Who "this appliance" is, for the transfer unit: the provisioning check
 * ("does this MX point here?"), the route of a hosted domain whose own mail
 * hosts are us, and loop detection on the way out.
 *
 * A next hop is this appliance when
 * - its name is DCMX_HOSTNAME, on the port next hops are reached on
 *   (DCMX_SMTP_RELAY_PORT) or on our own SMTP port;
 * - its address is in DCMX_SELF_ADDRESSES (the addresses the world reaches us
 *   by, perhaps through a NAT or a port redirect), on the port next hops are
 *   reached on;
 * - its address is one our SMTP server listens on (DCMX_LISTEN; every local
 *   and loopback address when that is the wildcard), on our SMTP port.
 * A local address on another port (a content filter on 127.0.0.1:10025) is
 * somebody else. Names are resolved through MailResolver only: our own zones
 * for what we hold, DCMX_UPSTREAM_DNS for the rest.
 */
import * as net from 'node:net';
import type { BlockList } from 'node:net';
import { LRUCache } from 'lru-cache';
import { cidrList, hostAddresses, inCidrList, isLoopback, parseHostPort } from '../net';
import { MailResolveError, type MailResolver, type SelfTest } from './resolver';

export interface SelfOptions {
  /** DCMX_HOSTNAME. */
  hostname: string;
  /** DCMX_SELF_ADDRESSES. */
  selfAddresses: readonly string[];
  /** DCMX_LISTEN. */
  listen: string;
  /** The port our SMTP server is bound to (set once it listens, when it was 0). */
  smtpPort: number;
  /** DCMX_SMTP_RELAY_PORT: the port of every next hop that names none. */
  relayPort: number;
}

/** Whether a set of hosts is this appliance: one of them is (`self`), none is (`other`), or a lookup failed for now (`unknown`). */
export type Holder = 'self' | 'other' | 'unknown';

/** How long what a host name resolves to is remembered. */
const HOST_TTL_MS = 60_000;

export class SelfIdentity implements SelfTest {
  private readonly hostname: string;
  private readonly selfAddresses: BlockList;
  private readonly listenAny: boolean;
  private readonly listenAddresses: BlockList;
  /** Host name → whether it resolves to one of our addresses (on the relay port). */
  private readonly hosts = new LRUCache<string, boolean>({ max: 1000, ttl: HOST_TTL_MS });

  constructor(private readonly opts: SelfOptions, private readonly resolver: MailResolver) {
    this.hostname = opts.hostname.toLowerCase().replace(/\.$/, '');
    this.selfAddresses = cidrList(opts.selfAddresses);
    this.listenAny = opts.listen === '0.0.0.0' || opts.listen === '::';
    const local = this.listenAny ? hostAddresses() : [opts.listen].filter((a) => net.isIP(a));
    this.listenAddresses = cidrList(local);
  }

  /** Our SMTP port, once known (the listener may have been given port 0). */
  set smtpPort(port: number) {
    this.opts.smtpPort = port;
  }

  get relayPort(): number {
    return this.opts.relayPort;
  }

  /** Whether `host` is our host name (case and trailing dot ignored). */
  isSelfName(host: string): boolean {
    return host.toLowerCase().replace(/\.$/, '') === this.hostname;
  }

  /** Whether an MX target's address is us: reached on the relay port, as every MX is. */
  isSelfAddress(ip: string): boolean {
    return this.isSelfHop(ip, this.opts.relayPort);
  }

  /** Whether connecting to `ip`:`port` reaches this appliance (see the module comment). */
  isSelfHop(ip: string, port: number): boolean {
    if (port === this.opts.relayPort && inCidrList(this.selfAddresses, ip)) return true;
    if (port !== this.opts.smtpPort) return false;
    return inCidrList(this.listenAddresses, ip) || (this.listenAny && isLoopback(ip));
  }

  /** Whether a host named `host` on `port` is us by its name alone. */
  isSelfNamedHop(host: string, port: number): boolean {
    return this.isSelfName(host) && (port === this.opts.relayPort || port === this.opts.smtpPort);
  }

  /**
   * Whether the hosts of a domain (its MX targets or `mailRoutingHosts`:
   * `host`, `host:port`, `[address]`...) include this appliance, by name or
   * by address. Addresses are looked up through the resolver and remembered
   * for a minute; a lookup that fails for now makes the answer `unknown`
   * unless another host is us.
   */
  async holder(specs: readonly string[]): Promise<Holder> {
    const each = await Promise.all(specs.map((s) => this.isSelfSpec(s)));
    if (each.includes('self')) return 'self';
    return each.includes('unknown') ? 'unknown' : 'other';
  }

  private async isSelfSpec(spec: string): Promise<Holder> {
    const hp = parseHostPort(spec, this.opts.relayPort);
    if (!hp) return 'other';
    if (net.isIP(hp.host)) return this.isSelfHop(hp.host, hp.port) ? 'self' : 'other';
    if (this.isSelfNamedHop(hp.host, hp.port)) return 'self';
    const key = `${hp.host.toLowerCase()}|${hp.port}`;
    const known = this.hosts.get(key);
    if (known !== undefined) return known ? 'self' : 'other';
    let addresses: string[];
    try {
      addresses = await this.resolver.lookupHost(hp.host);
    } catch (err) {
      if (err instanceof MailResolveError && err.permanent) addresses = [];
      else return 'unknown';
    }
    const self = addresses.some((a) => this.isSelfHop(a, hp.port));
    this.hosts.set(key, self);
    return self ? 'self' : 'other';
  }
}
