/**
 * Binding the listeners: a bind failure becomes the ConfigError naming the
 * setting at fault (listenError), and the ports serving threads share are
 * probed first (probePorts).
 *
 * Every listener of the appliance (LDAP, DNS UDP and TCP, SMTP, admin
 * HTTP and HTTPS; in each serving thread, whatever DCMX_THREADS) binds with
 * SO_REUSEPORT, and so could a second dcmx (same user) started on the same
 * ports: the kernel would then quietly share the traffic between the two.
 * So before anything binds, the main thread binds each configured port once
 * WITHOUT reusePort and lets it go again: a port another program (or
 * another dcmx) holds is refused. With port 0 (any free port) there is
 * nothing to probe: the first thread binds and reports the ports it was
 * given, the others bind those.
 *
 * The one exception is a reload (succession.ts): while the previous
 * appliance on the same data dir still runs, its ports are ours to share,
 * and the probe is skipped: that is what reusePort everywhere is for.
 *
 * Under pm2's cluster mode (ecosystem.config.js) a listener without
 * reusePort would be bound by pm2's daemon, not by this process (Node's
 * cluster module); the probes bind `exclusive` so that they test the port
 * here and now.
 */
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { ConfigError } from './config';

/**
 * A listener's bind failure as a ConfigError naming the setting at fault:
 * `variable` (the endpoint's port) for a port in use or refused, DCMX_LISTEN
 * for an address this host does not have. Other errors are returned as they are.
 */
export function listenError(e: unknown, variable: string, host: string, port: number): unknown {
  const err = e as NodeJS.ErrnoException & { address?: string; port?: number };
  if (err?.syscall !== 'listen' && err?.syscall !== 'bind') return e;
  const h = err.address ?? host;
  const where = `${net.isIPv6(h) ? `[${h}]` : h}:${err.port ?? port}`;
  switch (err.code) {
    case 'EADDRINUSE':
      return new ConfigError(variable, `${where} is already in use`);
    case 'EADDRNOTAVAIL':
      return new ConfigError('DCMX_LISTEN', `${h} is not an address of this host`);
    case 'EACCES':
      return new ConfigError(variable, `no permission to listen on ${where} (ports below 1024 need privileges)`);
    default:
      return new ConfigError(variable, `cannot listen on ${where} (${err.code ?? err.message})`);
  }
}

/** Runs an endpoint's start, converting its bind failure (listenError). */
export async function listening<T>(variable: string, host: string, port: number, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (e) {
    throw listenError(e, variable, host, port);
  }
}

/** The ports the serving threads listen on (0: any free port, before the first thread bound it). */
export interface ServingPorts {
  ldap: number;
  dns: number;
  smtp: number;
}

/** The ports probed: the serving ports and the admin HTTP and HTTPS ports. */
export interface ProbedPorts extends ServingPorts {
  http: number;
  /** DCMX_HTTPS_PORT; undefined (off) is not probed. */
  https: number | undefined;
}

/** Binds a TCP listener on host:port without reusePort, then closes it. */
function probeTcp(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve()));
  });
}

/** Binds a UDP socket on host:port without reusePort, then closes it. */
function probeUdp(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket({ type: net.isIPv6(host) ? 'udp6' : 'udp4', reuseAddr: false });
    sock.once('error', (e) => {
      sock.close();
      reject(e);
    });
    sock.bind({ address: host, port, exclusive: true }, () => sock.close(() => resolve()));
  });
}

/**
 * Refuses ports in use before the listeners bind them with reusePort: each
 * configured port (0 is skipped) is bound once without it (TCP; DNS also
 * UDP) and released. Throws the ConfigError of listenError naming the
 * port's variable.
 */
export async function probePorts(host: string, ports: ProbedPorts): Promise<void> {
  const checks: [string, number, (h: string, p: number) => Promise<void>][] = [
    ['DCMX_LDAP_PORT', ports.ldap, probeTcp],
    ['DCMX_DNS_PORT', ports.dns, probeTcp],
    ['DCMX_DNS_PORT', ports.dns, probeUdp],
    ['DCMX_SMTP_PORT', ports.smtp, probeTcp],
    ['DCMX_HTTP_PORT', ports.http, probeTcp],
    ['DCMX_HTTPS_PORT', ports.https ?? 0, probeTcp],
  ];
  for (const [variable, port, probe] of checks) {
    if (port === 0) continue;
    try {
      await probe(host, port);
    } catch (e) {
      throw listenError(e, variable, host, port);
    }
  }
}
