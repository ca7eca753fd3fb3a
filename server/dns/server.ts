/**
 * The DNS endpoint: UDP and TCP on one port, answers from the directory's
 * zones (answers.ts), transfers over TCP (transfer.ts). NOTIFY to
 * secondaries goes out once per process, apart (notify.ts startNotifier).
 *
 * TCP follows RFC 7766: several queries per connection, pipelined and
 * answered in order, messages split across segments (even one byte at a
 * time), an idle timeout, and a bound on how long one message may take to
 * arrive so a slow-drip client cannot hold a connection forever. The work
 * of a connection is spread over turns of the event loop and paced by its
 * socket (tcp.ts), so a client pipelining transfers or never reading its
 * answers costs neither the other clients' latency nor unbounded memory.
 */
import { ResponseRateLimiter, truncatedReply, type RrlOptions } from './rrl';
import * as net from 'node:net';
import type { Zones } from '../directory/zones';
import type { Logger } from '../log';
import { Answerer } from './answers';
import { Transfers } from './transfer';
import { TCP_DEFAULTS, TcpConnection, TcpScheduler, type TcpReply } from './tcp';
import { cidrList } from '../net';
import { ConnectionCaps, type CapsMemory } from '../connection-caps';
import { bindUdp, type UdpSource, type UdpStats } from './udp-batch';

/** A UDP query's transport: the answer does not depend on the client's address (RRL, after it, does). */
const UDP = { tcp: false } as const;

export interface DnsServerOptions {
  host: string;
  port: number;
  axfrAllow: readonly string[];
  /** Close a TCP connection idle this long (RFC 7766 §6.2.3 suggests seconds). */
  tcpIdleMs?: number;
  /** Close a TCP connection whose current message is not complete after this long. */
  tcpMessageMs?: number;
  /** Concurrent TCP connections accepted. */
  maxTcpConnections?: number;
  /** Answer cache size (0 disables it). */
  cacheEntries?: number;
  /** Bytes of encoded zones kept for transfers (default TRANSFER_CACHE_BYTES). */
  transferCacheBytes?: number;
  /** UDP response rate limiting (rrl.ts); absent = off. */
  rrl?: RrlOptions;
  /**
   * Bind the TCP and UDP sockets with SO_REUSEPORT, so that every serving
   * thread of the process listens on the port and the kernel spreads
   * connections and datagrams among them. Default false.
   */
  reusePort?: boolean;
  /** The process's TCP connection count when several threads serve DNS (connection-caps.ts). */
  caps?: CapsMemory;
  /** Serve UDP through the native batch path (udp-batch.ts) where it is available. Default true. */
  udpBatch?: boolean;
}

export interface DnsEndpoint {
  port: number;
  answerer: Answerer;
  /** The UDP response rate limiter, when configured. */
  rrl: ResponseRateLimiter | undefined;
  /** Open TCP connections, how many are not being read, and what waits in them, summed (tests, diagnostics). */
  /** The UDP socket's counters, and whether the native batch path serves it. */
  udpStats(): UdpStats;
  tcpStats(): { connections: number; paused: number; queued: number; queuedBytes: number; partialBytes: number; outputBytes: number };
  close(): Promise<void>;
}

/** Starts UDP and TCP listeners on the same port (the TCP port is chosen first when 0). */
export async function startDnsServer(zones: Zones, opts: DnsServerOptions, log: Logger): Promise<DnsEndpoint> {
  const answerer = new Answerer(zones, log, { cacheEntries: opts.cacheEntries });
  const rrl = opts.rrl ? new ResponseRateLimiter(opts.rrl) : undefined;
  const transfers = new Transfers(zones, cidrList(opts.axfrAllow), log, opts.transferCacheBytes);
  const idleMs = opts.tcpIdleMs ?? 10_000;
  const messageMs = opts.tcpMessageMs ?? 5_000;
  const maxConns = opts.maxTcpConnections ?? 256;

  /**
   * The reply to one TCP message. A transfer that cannot be built or
   * encoded gets SERVFAIL and the connection goes on; anything else thrown
   * (answer() itself never throws) closes this connection only (undefined).
   * Either way it is logged, and no other client notices.
   */
  const tcpReply = (msg: Buffer, remote: string): TcpReply | undefined => {
    try {
      const out = answerer.answer(msg, { tcp: true, remote });
      if (out.kind === 'reply') return { messages: [out.bytes] };
      if (out.kind === 'none') return { messages: [] };
      const req = out.request;
      let reply: TcpReply;
      try {
        reply = { ...transfers.answer(req, remote), long: true };
      } catch (err) {
        log.error({ err, zone: req.zone, kind: req.kind, remote }, 'dns zone transfer failed');
        reply = { messages: [answerer.failure(req.query, true)], long: true };
      }
      answerer.countTransfer(req.query, reply.messages[0]);
      return reply;
    } catch (err) {
      log.error({ err, remote }, 'dns tcp message failed; closing the connection');
      return undefined;
    }
  };

  // ---- TCP (tcp.ts: in order, one step per connection per turn of the loop, paced by the socket)
  const scheduler = new TcpScheduler();
  const connections = new Set<TcpConnection>();
  // Counted in the whole process when several threads serve (no per-client share: perClient is the total).
  const caps = new ConnectionCaps({ max: maxConns, perClient: maxConns, shared: opts.caps });
  // RFC 7766 §6.2.3: under load, idle connections get a much shorter timeout so new clients are not shut out.
  const idleTimeout = () => (caps.busy ? Math.min(idleMs, 1000) : idleMs);
  const limits = { idleMs: idleTimeout, messageMs, maxQueued: TCP_DEFAULTS.maxQueued, maxQueuedBytes: TCP_DEFAULTS.maxQueuedBytes, batch: TCP_DEFAULTS.batch };
  // allowHalfOpen: a client that sends its queries then FIN still gets every answer (tcp.ts ends our side after them).
  const tcp = net.createServer({ allowHalfOpen: true }, (sock) => {
    const remote = sock.remoteAddress ?? '';
    if (caps.admit(remote)) {
      sock.destroy();
      return;
    }
    sock.setNoDelay(true);
    const conn = new TcpConnection(sock, (msg) => tcpReply(msg, remote), limits, scheduler);
    connections.add(conn);
    sock.on('close', () => {
      connections.delete(conn);
      caps.release(remote);
    });
  });
  // A bind failure rejects (the caller names the setting); errors after it are logged.
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen({ port: opts.port, host: opts.host, reusePort: opts.reusePort === true }, () => {
      tcp.off('error', reject);
      resolve();
    });
  });
  tcp.on('error', (err) => log.error({ err }, 'dns tcp server error'));
  const port = (tcp.address() as net.AddressInfo).port;

  // ---- UDP (udp-batch.ts: native batches where available, else dgram)
  const udpAnswer = (msg: Buffer, source: UdpSource): Uint8Array | undefined => {
    try {
      const out = answerer.answer(msg, UDP);
      if (out.kind !== 'reply') return undefined;
      const verdict = rrl ? rrl.check(source.address(), out.bytes) : 'send';
      if (verdict === 'send') return out.bytes;
      return verdict === 'slip' ? truncatedReply(out.bytes) : undefined;
    } catch (err) {
      // answer() never throws; should it, this datagram goes unanswered and the socket keeps serving.
      log.error({ err, remote: source.address() }, 'dns udp message failed');
      return undefined;
    }
  };
  let udp;
  try {
    udp = await bindUdp({ host: opts.host, port, reusePort: opts.reusePort === true, batch: opts.udpBatch },
      udpAnswer, (err) => log.error({ err }, 'dns udp socket error'));
  } catch (e) {
    tcp.close();
    throw e;
  }
  log.info({ port }, 'dns listening');

  return {
    port,
    answerer,
    rrl,
    udpStats: () => udp.stats(),
    tcpStats: () => {
      const sum = { connections: connections.size, paused: 0, queued: 0, queuedBytes: 0, partialBytes: 0, outputBytes: 0 };
      for (const c of connections) {
        const b = c.backlog;
        if (b.paused) sum.paused++;
        sum.queued += b.queued;
        sum.queuedBytes += b.queuedBytes;
        sum.partialBytes += b.partialBytes;
        sum.outputBytes += b.outputBytes;
      }
      return sum;
    },
    close: async () => {
      await new Promise<void>((resolve) => {
        tcp.close(() => resolve());
        for (const c of connections) c.destroy();
      });
      await udp.close();
    },
  };
}
