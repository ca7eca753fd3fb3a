/**
 * Small address helpers every endpoint shares: CIDR lists (DCMX_AXFR_ALLOW,
 * DCMX_RELAY_NETWORKS), loopback detection, and `host:port` parsing.
 */
import { BlockList, isIP, isIPv6 } from 'node:net';
import * as os from 'node:os';

/** A BlockList of the given addresses and CIDRs (validated by config). */
export function cidrList(cidrs: readonly string[]): BlockList {
  const bl = new BlockList();
  for (const c of cidrs) {
    const [addr, bits] = c.split('/');
    const type = isIPv6(addr) ? 'ipv6' : 'ipv4';
    if (bits === undefined) bl.addAddress(addr, type);
    else bl.addSubnet(addr, Number(bits), type);
  }
  return bl;
}

/** True when `ip` is in the list; IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are checked as IPv4. */
export function inCidrList(bl: BlockList, ip: string): boolean {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (m) return bl.check(m[1], 'ipv4');
  if (!isIP(ip)) return false;
  return bl.check(ip, isIPv6(ip) ? 'ipv6' : 'ipv4');
}

/** True for 127.0.0.0/8 and ::1, plain or IPv4-mapped. */
export function isLoopback(ip: string): boolean {
  return ip === '::1' || ip.startsWith('127.') || ip.startsWith('::ffff:127.');
}

/**
 * The eight 16-bit groups of an IPv6 address as four lower-case hex digits
 * each (`::` expanded, an embedded IPv4 tail as two groups, a zone index
 * dropped); undefined when `ip` is not an IPv6 address.
 */
export function ipv6Groups(ip: string): string[] | undefined {
  let addr = ip.replace(/%.*$/, '');
  if (!isIPv6(addr)) return undefined;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(addr);
  if (v4) {
    const o = v4[1].split('.').map(Number);
    addr = addr.slice(0, -v4[1].length) + ((o[0] << 8) | o[1]).toString(16) + ':' + ((o[2] << 8) | o[3]).toString(16);
  }
  const [head, tail] = addr.split('::');
  const h = head ? head.split(':') : [];
  const t = tail === undefined ? [] : tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.map((g) => g.padStart(4, '0').toLowerCase());
}

/**
 * The client an address stands for, as the per-client limits count them
 * (connections, failed authentications, new domains): an IPv4 address as it
 * is (also IPv4-mapped), an IPv6 address by its /64, since one host or site
 * is handed a whole /64 and could otherwise step around a limit.
 */
export function clientKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1];
  const groups = ipv6Groups(address);
  return groups ? `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64` : address;
}

/** An address as compared: IPv4-mapped IPv6 as IPv4, IPv6 in its canonical (RFC 5952) form. */
export function canonicalIp(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (m) return m[1];
  if (!isIPv6(ip)) return ip;
  try {
    return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  } catch {
    return ip.toLowerCase();
  }
}

/**
 * The addresses of this host's network interfaces (canonical, zone index
 * dropped, each once). `routable`: loopback and link-local left out, the
 * addresses another host can reach us by (the default of DCMX_SELF_ADDRESSES:
 * an MX can usefully name neither of the others).
 */
export function hostAddresses(opts: { routable?: boolean } = {}): string[] {
  const out = new Set<string>();
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) {
      if (opts.routable && (a.internal || /^fe80:/i.test(a.address) || a.address.startsWith('169.254.'))) continue;
      out.add(canonicalIp(a.address.replace(/%.*$/, '')));
    }
  }
  return [...out];
}

/**
 * A test of "this is one of our addresses": loopback, the given addresses
 * (DCMX_LISTEN, DCMX_SELF_ADDRESSES; the wildcards 0.0.0.0 and :: are
 * skipped), the host's interfaces (read once, here), and the local address
 * of the connection asking (`localAddress`), which a client reached us on.
 */
export function ownAddressTest(addresses: readonly string[]): (ip: string, localAddress?: string) => boolean {
  const ours = new Set([...addresses.filter((a) => a !== '0.0.0.0' && a !== '::'), ...hostAddresses()].map(canonicalIp));
  return (ip, localAddress) => {
    if (!isIP(ip)) return false;
    const c = canonicalIp(ip);
    return isLoopback(c) || ours.has(c) || (localAddress !== undefined && c === canonicalIp(localAddress));
  };
}

/** A host and port. */
export interface HostPort {
  host: string;
  port: number;
}

/**
 * Parses `host`, `host:port`, `[host]`, `[host]:port`, `[IPv6:addr]` (the
 * SMTP address literal, RFC 5321 §4.1.3) or a bare IPv6 address; a trailing
 * dot on a name is dropped. undefined when it is none of those.
 */
export function parseHostPort(spec: string, defaultPort: number): HostPort | undefined {
  const s = spec.trim();
  let host: string;
  let port: string | undefined;
  const br = /^\[(?:IPv6:)?([^\]]+)\](?::(\d+))?$/i.exec(s);
  if (br) {
    host = br[1];
    port = br[2];
  } else if (isIPv6(s)) {
    host = s;
  } else {
    const m = /^([^\s:[\]]+)(?::(\d+))?$/.exec(s);
    if (!m) return undefined;
    host = m[1];
    port = m[2];
  }
  if (port !== undefined && (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535)) return undefined;
  return { host: host.replace(/\.$/, ''), port: port === undefined ? defaultPort : Number(port) };
}
