/**
 * The LDAP endpoint: our own TCP server, one LdapConnection per accepted
 * socket (connection.ts: framing, flow, dispatch to one handler per
 * operation), the connection caps (ConnectionCaps: in all and per client,
 * refused with a Notice of Disconnection) and the idle timeouts, shortened
 * while the endpoint is busy. No LDAP library is involved: the BER codec
 * is ours (ber.ts, search-decode.ts, request-decode.ts).
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Directory } from '../directory/directory';
import type { Logger } from '../log';
import { noticeOfDisconnection } from '../ldap-framing';
import { SUPPORTED_CONTROLS } from './controls';
import { DEFAULT_FLOW_LIMITS, type FlowLimits } from './flow';
import { START_TLS_OID } from './request-decode';
import { CANCEL_OID, PASSWORD_MODIFY_OID, PROVISION_DOMAIN_OID, WHOAMI_OID } from './extended';
import type { DirectoryWriter } from '../directory/writes';
import { RESULT_CODES } from './results';
import type { TlsPair } from '../tls';
import { ConnectionCaps, type CapsMemory } from '../connection-caps';
import { clientKey } from '../net';
import { RepeatLimiter } from '../log';
import { passwordAttributes } from './operation-log';
import { LdapConnection } from './connection';
import { LdapOperationCounts, type LdapOperationFigures } from './op-counts';
import type { LdapContext, SyncFollower } from './context';

/**
 * At close, a connection whose client has sent nothing for this long (and
 * waits for no answer) is told goodbye: long enough for the next request of
 * an exchange under way (bind, then search, then unbind), short enough that
 * the clients that keep a connection open are let go at once.
 */
const DRAIN_QUIET_MS = 200;

export interface LdapServerOptions {
  host: string;
  port: number;
  maxPdu: number;
  maxDepth: number;
  /** Seconds of inactivity before a connection is closed. */
  idleTimeout: number;
  /** Seconds a client has to complete a PDU once its first byte has arrived; then the connection is closed. */
  pduTimeout: number;
  /** Concurrent connections; a new one beyond this gets a Notice of Disconnection (unavailable) and is closed. */
  maxConnections: number;
  /** Concurrent connections of one client address (IPv6: one /64); beyond, refused the same way. Default: maxConnections. */
  clientConnections?: number;
  /** Seconds of inactivity before a connection is closed while more than 3/4 of maxConnections are open. Default: idleTimeout. */
  busyIdleTimeout?: number;
  /** Bounds of each connection's request queue (flow.ts); DEFAULT_FLOW_LIMITS otherwise. */
  flow?: Partial<FlowLimits>;
  /** Where every write goes, as a command (writes.ts): the one writer. */
  writer: DirectoryWriter;
  /** Serves (and announces) the provisioning extended operation, a `provisionDomain` command. Default false. */
  provisioning?: boolean;
  /** The certificate for StartTLS (RFC 4513 §3); without it StartTLS is unavailable (52). */
  tls?: TlsPair;
  /**
   * Listen with SO_REUSEPORT, so that several threads of the process can
   * listen on the same port and the kernel spreads connections among them
   * (`net.Server.listen({ reusePort })`, Node.js 22.12 / 23.1 and later on
   * Linux; an older runtime ignores it). Default false.
   */
  reusePort?: boolean;
  /** The process's connection counts when several threads serve LDAP (connection-caps.ts). */
  caps?: CapsMemory;
  /** Bytes a Content Sync persist phase may leave unsent before its consumer is disconnected (sync.ts DEFAULT_SYNC_BACKLOG otherwise). */
  syncBacklog?: number;
}

/** A running LDAP endpoint. */
export interface LdapEndpoint {
  /** The bound port (useful with port 0). */
  port: number;
  /**
   * Stops accepting; each connection is served until its client closes it
   * or has been quiet for DRAIN_QUIET_MS (LdapConnection.drain), then gets a
   * Notice of Disconnection and is closed; those still open after `graceMs`
   * (default 5 s) are closed at once.
   */
  close(graceMs?: number): Promise<void>;
  /** Counters for tests and monitoring. */
  stats(): LdapStats;
  /** The Content Sync consumers in their persist phase now, oldest first. */
  followers(): FollowerFigures[];
}

/** A Content Sync consumer in its persist phase, as figures. */
export interface FollowerFigures {
  kind: SyncFollower['kind'];
  /** The last change number sent to it. */
  position: number;
  /** Bytes sent to it that it has not taken yet. */
  backlog: number;
  since: number;
}

/** A snapshot of the endpoint's connections. */
export interface LdapStats {
  /** Open connections (refused ones are not counted). */
  connections: number;
  /** Connections accepted since the start (refused ones are not counted). */
  accepted: number;
  /** Connections refused because `maxConnections` were open. */
  refused: number;
  /** Connections refused because their client had `clientConnections` open. */
  refusedPerClient: number;
  /** Connections closed because a PDU was not completed within `pduTimeout`. */
  pduTimeouts: number;
  /** Requests queued on all connections, not yet being handled. */
  queuedRequests: number;
  /** Bytes of those requests. */
  queuedBytes: number;
  /** Connections whose reading is paused by their full queue. */
  pausedConnections: number;
  /** Response bytes written but not yet taken by the kernel, on all connections. */
  bufferedOutput: number;
  /** Operations answered, by kind and result, and their latency (op-counts.ts). */
  operations: LdapOperationFigures;
}

/**
 * RFC 4512 §5.1 supportedFeatures: RFC 3673 all operational attributes, RFC 4526
 * absolute true/false, RFC 4529 objectClass lists, RFC 4525 §5 Modify-Increment,
 * and the subordinate ("children") search scope under the OID OpenLDAP
 * announces it with (LDAP_FEATURE_SUBORDINATE_SCOPE; the draft assigns none).
 */
export const SUPPORTED_FEATURES = [
  '1.3.6.1.4.1.4203.1.5.1', '1.3.6.1.4.1.4203.1.5.3', '1.3.6.1.4.1.4203.1.5.2', '1.3.6.1.1.14', '1.3.6.1.4.1.4203.666.8.1',
];

/** Starts the LDAP endpoint on `opts.host:opts.port`. */
export async function startLdapServer(directory: Directory, opts: LdapServerOptions, log: Logger): Promise<LdapEndpoint> {
  const secureContext = opts.tls ? tls.createSecureContext({ cert: opts.tls.cert, key: opts.tls.key, minVersion: 'TLSv1.2' }) : undefined;
  const ctx: LdapContext = { directory, writer: opts.writer, log, provisioning: opts.provisioning, tls: secureContext, syncBacklog: opts.syncBacklog, followers: new Set() };
  const connections = new Set<LdapConnection>();
  const counters = { accepted: 0, refused: 0, refusedPerClient: 0, pduTimeouts: 0 };
  // Busy (more than 3/4 of the slots, in the whole process): every connection's idle timeout becomes busyIdleMs.
  const caps = new ConnectionCaps({
    max: opts.maxConnections, perClient: opts.clientConnections ?? opts.maxConnections, shared: opts.caps, onBusy: () => hurryIdle(),
  });
  const refusalLog = new RepeatLimiter();
  const idleMs = opts.idleTimeout * 1000;
  const busyIdleMs = Math.min(opts.busyIdleTimeout ?? opts.idleTimeout, opts.idleTimeout) * 1000;
  /** Connections whose idle timeout was shortened while busy. */
  const hurried = new WeakSet<LdapConnection>();
  /** Busy: every connection's idle timeout becomes busyIdleMs (restarting it: at most that long from now). */
  const hurryIdle = () => {
    for (const c of connections) {
      if (hurried.has(c)) continue;
      hurried.add(c);
      c.setIdleTimeout(busyIdleMs);
    }
  };
  const settings = {
    ctx,
    framing: { maxPdu: opts.maxPdu, maxDepth: opts.maxDepth },
    flow: { ...DEFAULT_FLOW_LIMITS, ...opts.flow } satisfies FlowLimits,
    pduTimeoutMs: opts.pduTimeout * 1000,
    idleMs,
    secret: passwordAttributes(directory.schema),
    onPduTimeout: () => counters.pduTimeouts++,
    counts: new LdapOperationCounts(),
  };

  const accept = (sock: net.Socket) => {
    const remote = sock.remoteAddress ?? '';
    const refused = caps.admit(remote);
    if (refused) {
      // RFC 4511 §4.4.1: unavailable, then close.
      if (refused === 'total') counters.refused++;
      else counters.refusedPerClient++;
      const admitted = refusalLog.admit(refused === 'client' ? `client:${clientKey(remote)}` : 'total');
      if (admitted) {
        log.warn({ remote, max: refused === 'client' ? opts.clientConnections : opts.maxConnections, suppressed: admitted.suppressed },
          refused === 'client' ? 'ldap connection refused: too many connections from this client' : 'ldap connection refused: too many connections');
      }
      sock.on('error', () => undefined);
      sock.end(noticeOfDisconnection(RESULT_CODES.unavailable, refused === 'client' ? 'too many connections from your address' : 'too many connections'));
      setTimeout(() => sock.destroy(), 1000).unref();
      return;
    }
    const conn = new LdapConnection(sock, settings);
    counters.accepted++;
    connections.add(conn);
    sock.once('close', () => {
      connections.delete(conn);
      caps.release(remote);
    });
    if (caps.busy) hurryIdle();
  };

  const server = net.createServer(accept);

  directory.announce({
    supportedControl: SUPPORTED_CONTROLS,
    supportedExtension: [WHOAMI_OID, PASSWORD_MODIFY_OID, CANCEL_OID, ...(secureContext ? [START_TLS_OID] : []), ...(opts.provisioning ? [PROVISION_DOMAIN_OID] : [])],
    supportedFeatures: SUPPORTED_FEATURES,
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // reusePort is not in Node 20's ListenOptions; only set, it is passed on.
    const listenOptions: net.ListenOptions & { reusePort?: boolean } = { port: opts.port, host: opts.host, ...(opts.reusePort ? { reusePort: true } : {}) };
    server.listen(listenOptions, () => {
      server.off('error', reject);
      server.on('error', (err) => log.error({ err }, 'ldap server error'));
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  log.info({ port }, 'ldap listening');

  return {
    port,
    followers: () => [...ctx.followers].map((f) => ({ kind: f.kind, position: f.position(), backlog: f.backlog(), since: f.since })),
    stats: () => {
      const st: LdapStats = { connections: connections.size, ...counters, queuedRequests: 0, queuedBytes: 0, pausedConnections: 0, bufferedOutput: 0,
        operations: settings.counts.figures(),
      };
      for (const c of connections) {
        st.queuedRequests += c.flow.queued;
        st.queuedBytes += c.flow.queuedBytes;
        st.pausedConnections += c.flow.paused ? 1 : 0;
        st.bufferedOutput += c.flow.bufferedOutput;
      }
      return st;
    },
    close: async (graceMs = 5000) => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
      const ended = new Set<LdapConnection>();
      await Promise.race([Promise.all([...connections].map((c) => c.drain(DRAIN_QUIET_MS).then(() => ended.add(c)))), late]);
      clearTimeout(timer);
      // Those still busy go now; the others close once the client has read its notice (or soon after: LdapConnection).
      for (const c of connections) if (!ended.has(c)) c.destroy();
      await closed;
    },
  };
}
