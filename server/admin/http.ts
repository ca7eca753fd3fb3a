/**
 * The admin HTTP endpoint: read-only JSON for operators and probes.
 *   GET /health  {"status":"ok","lastChangeNumber":N}; 503 with "status":"store removed"
 *                or "store replaced" when the store's file is no longer the open one.
 *                A remote transfer unit (DCMX_ROLE=mta): {"status":"ok","directory":...};
 *                503 with "status":"degraded" while its directory is unreachable
 *   GET /routes  the routing table and the change number it reflects
 *   GET /zones   the zones served and their serials
 *   GET /stats   cache, queue, delivery, DNS, LDAP and provisioning counters of the
 *                process: the serving threads' summed, and each thread's (`threads`)
 *   GET /metrics the same figures in the Prometheus text format (metrics.ts)
 * and, at `/`, `/login`, `/assets/` and `/api/`, the web console (console/index.ts),
 * the only part that takes changes (behind a login, with CSRF checks).
 * The JSON above changes nothing. /health answers anyone (load balancers, pm2 probes);
 * the rest names relay hosts, hosted domains and traffic figures, so it
 * answers only clients in DCMX_HTTP_ALLOW (default: loopback) and gives
 * everyone else 403, and only requests whose Host names this appliance
 * (hostMatcher): a web page in the operator's browser that rebinds its own
 * name to our address gets 421 Misdirected Request, not the data.
 *
 * The same handler may also be served over HTTPS (DCMX_HTTPS_PORT, off unless
 * set; RFC 9110 §4.2.2) with the appliance's certificate (tls.ts): the
 * console's Secure session cookie then works from another machine without a
 * tunnel or a TLS proxy. Both listeners share one handler, hence the same
 * DCMX_HTTP_ALLOW and Host checks.
 *
 * One path is for everyone, over HTTPS only: `/.well-known/mta-sts.txt` at
 * `mta-sts.<domain>` (the Host header), the MTA-STS policy of a hosted
 * domain (RFC 8461 §3.3; server/directory/mta-sts.ts), text/plain; 404 for
 * a domain that publishes none. Any other path at such a Host goes through
 * the checks above (and is misdirected: 421).
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { isIP, type AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { cidrList, inCidrList, ownAddressTest, parseHostPort } from '../net';
import type { Directory } from '../directory/directory';
import type { Zones } from '../directory/zones';
import { describeRoute, type RoutingTable } from '../directory/routing';
import type { Logger } from '../log';
import type { ApplianceMetrics } from './metrics';
import type { TlsPair } from '../tls';
import { listening } from '../listen';
import type { Config } from '../config';

/** The admin listeners: plain HTTP on `port`, and HTTPS on `httpsPort` when one was asked for. */
export interface HttpEndpoint {
  port: number;
  /** The HTTPS listener's port; undefined when DCMX_HTTPS_PORT is unset. */
  httpsPort: number | undefined;
  close(): Promise<void>;
}

/** What GET /health says: `healthy` false answers 503 (a load balancer takes the node out of rotation). */
export interface Health {
  healthy: boolean;
  body: Record<string, unknown>;
}

/** The appliance's health: its store takes writes. */
export function storeHealth(directory: Directory): Health {
  const store = directory.store.fileState();
  const lastChangeNumber = directory.changeRange().last;
  return store === 'ok' ? { healthy: true, body: { status: 'ok', lastChangeNumber } } : { healthy: false, body: { status: `store ${store}`, lastChangeNumber } };
}

export interface AdminViews {
  health: () => Health;
  /** The zones served (none on a remote transfer unit: /zones is then 404). */
  zones: Zones | undefined;
  /** The routing table of the thread that delivers. */
  routing: RoutingTable;
  /** The process's figures (the appliance asks every serving thread). */
  stats: () => Promise<unknown>;
  /** GET /metrics (absent: 404). */
  metrics?: ApplianceMetrics;
  /** The web console (the appliance's; none on a remote transfer unit). */
  console?: ConsoleDoor;
  /** The MTA-STS policy served for a request's Host, or undefined (404); absent: no policy is served. */
  mtaStsPolicy?: (host: string) => string | undefined;
}

/** RFC 8461 §3.3: where a Policy Host serves its policy. */
const MTA_STS_PATH = '/.well-known/mta-sts.txt';

/** The web console as the endpoint dispatches to it (console/index.ts Console). */
export interface ConsoleDoor {
  owns(path: string): boolean;
  handle(req: http.IncomingMessage, res: http.ServerResponse, path: string): Promise<void>;
}

async function body(v: AdminViews, url: string): Promise<unknown> {
  switch (url) {
    case '/routes':
      return {
        version: v.routing.version,
        routes: v.routing.entries().map(([domain, route]) => ({ domain, route: describeRoute(route) })),
      };
    case '/zones': {
      const zones = v.zones;
      return zones?.zoneNames().map((name) => ({ name, serial: zones.zoneOf(name)?.soa.rdata.serial }));
    }
    case '/stats':
      return v.stats();
    default:
      return undefined;
  }
}

/** Names and addresses a request's Host header may give (startHttpServer). */
export interface HostNames {
  /** DCMX_HOSTNAME. */
  hostname: string;
  /** DCMX_HTTP_HOSTS: further names the operator reaches the API by (a reverse proxy's). */
  names: readonly string[];
  /** DCMX_LISTEN and DCMX_SELF_ADDRESSES. */
  addresses: readonly string[];
}

/**
 * A test of a request's Host header (RFC 9110 §7.2), against DNS rebinding:
 * true for our host name, the names of `names`, `localhost` and `*.localhost`
 * (RFC 6761 §6.3: they never leave the machine), and our addresses
 * (ownAddressTest: loopback, `addresses`, the host's interfaces, the address
 * the request came in on); any port. A request without Host (HTTP/1.0) names nothing and
 * passes: a browser always sends one.
 */
export function hostMatcher(names: HostNames): (host: string | undefined, localAddress: string | undefined) => boolean {
  const ours = new Set([names.hostname, ...names.names].map((n) => n.toLowerCase().replace(/\.$/, '')));
  const ourAddress = ownAddressTest(names.addresses);
  return (host, localAddress) => {
    if (host === undefined) return true;
    const hp = parseHostPort(host, 0);
    if (!hp) return false;
    const name = hp.host.toLowerCase();
    if (!isIP(name)) return ours.has(name) || name === 'localhost' || name.endsWith('.localhost');
    return ourAddress(name, localAddress);
  };
}

/** Where and how startHttpServer listens. */
export interface HttpListenOptions {
  host: string;
  /** DCMX_HTTP_PORT (0: any free port). */
  port: number;
  /** CIDRs that may read beyond /health (DCMX_HTTP_ALLOW). */
  allow: readonly string[];
  names: HostNames;
  reusePort?: boolean;
  /** DCMX_HTTPS_PORT (0: any free port) and the certificate served there; absent: no HTTPS. */
  https?: { port: number; tls: TlsPair };
  /** Wraps each bind (succession.ts bindBeside during a reload); default: binds at once. */
  bind?: <T>(start: () => Promise<T>) => Promise<T>;
}

/**
 * The listen options of the configuration: DCMX_LISTEN, DCMX_HTTP_PORT,
 * DCMX_HTTPS_PORT with `tls` (the certificate of SMTP and LDAP), DCMX_HTTP_ALLOW,
 * the Host names (DCMX_HOSTNAME, DCMX_HTTP_HOSTS, our addresses); reusePort as every listener.
 */
export function adminListen(config: Config, tls: TlsPair, bind: HttpListenOptions['bind']): HttpListenOptions {
  return {
    host: config.listen, port: config.http.port, allow: config.http.allow, reusePort: true,
    names: { hostname: config.hostname, names: config.http.hosts, addresses: [config.listen, ...config.selfAddresses] },
    https: config.http.httpsPort === undefined ? undefined : { port: config.http.httpsPort, tls },
    bind,
  };
}

/** The one request handler of both listeners: access checks, then the routes above. */
function adminHandler(views: AdminViews, opts: HttpListenOptions, log: Logger): http.RequestListener {
  const allowed = cidrList(opts.allow);
  const ourHost = hostMatcher(opts.names);
  return async (req, res) => {
    const send = (code: number, payload: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(payload) + '\n');
    };
    try {
      const url = (req.url ?? '').split('?')[0];
      const host = req.headers.host?.toLowerCase();
      // RFC 8461 §3.3: the policy over HTTPS, to any sender, at the name mta-sts.<domain>.
      if (url === MTA_STS_PATH && views.mtaStsPolicy && (req.socket as TLSSocket).encrypted && host?.startsWith('mta-sts.')) {
        if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, { error: 'method not allowed' });
        const policy = views.mtaStsPolicy(host);
        if (policy === undefined) return send(404, { error: 'not found' });
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-cache' });
        return res.end(policy);
      }
      if (req.method !== 'GET' && !views.console?.owns(url)) return send(405, { error: 'method not allowed' });
      if (url !== '/health' && !inCidrList(allowed, req.socket.remoteAddress ?? '')) return send(403, { error: 'forbidden' });
      // RFC 9110 §15.5.20: a Host that is not ours (DNS rebinding) is misdirected.
      if (url !== '/health' && !ourHost(req.headers.host, req.socket.localAddress)) return send(421, { error: 'misdirected request: unknown Host' });
      if (views.console?.owns(url)) return await views.console.handle(req, res, url);
      if (url === '/health') {
        const h = views.health();
        return send(h.healthy ? 200 : 503, h.body);
      }
      if (url === '/metrics' && views.metrics) {
        const m = await views.metrics.render();
        res.writeHead(200, { 'content-type': m.contentType });
        return res.end(m.body);
      }
      const payload = await body(views, url);
      if (payload === undefined) return send(404, { error: 'not found' });
      send(200, payload);
    } catch (err) {
      log.error({ err }, 'http request failed');
      send(500, { error: 'internal error' });
    }
  };
}

/** Binds `server` on host:port (reusePort: listen.ts); resolves with the port bound and its closer. */
async function serve(server: http.Server, host: string, port: number, reusePort: boolean): Promise<{ port: number; close(): Promise<void> }> {
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, reusePort }, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

/**
 * Starts the admin endpoint: the HTTP listener and, with `opts.https`, the
 * HTTPS one, both serving one handler. A bind failure is the ConfigError
 * naming DCMX_HTTP_PORT or DCMX_HTTPS_PORT (listen.ts listening); when the
 * HTTPS bind fails the HTTP listener is closed again.
 */
export async function startHttpServer(views: AdminViews, opts: HttpListenOptions, log: Logger): Promise<HttpEndpoint> {
  const handler = adminHandler(views, opts, log);
  const bind = opts.bind ?? ((start) => start());
  const reusePort = opts.reusePort === true;
  const plain = await bind(() => listening('DCMX_HTTP_PORT', opts.host, opts.port, () => serve(http.createServer(handler), opts.host, opts.port, reusePort)));
  let secure: { port: number; close(): Promise<void> } | undefined;
  if (opts.https) {
    const { port, tls } = opts.https;
    try {
      secure = await bind(() => listening('DCMX_HTTPS_PORT', opts.host, port, () => serve(https.createServer({ cert: tls.cert, key: tls.key }, handler), opts.host, port, reusePort)));
    } catch (e) {
      await plain.close();
      throw e;
    }
  }
  return {
    port: plain.port,
    httpsPort: secure?.port,
    async close() {
      await Promise.all([plain.close(), secure?.close()]);
    },
  };
}
