/**
 * The DNS endpoint: UDP and TCP on one port, answers from the directory's
 * zones (answers.ts), transfers over TCP (transfer.ts), NOTIFY to
 * secondaries (notify.ts).
 *
 * TCP follows RFC 7766: several queries per connection, pipelined and
 * answered in order, messages split across segments (even one byte at a
 * time), an idle timeout, and a bound on how long one message may take to
 * arrive so a slow-drip client cannot hold a connection forever.
 */
import { ResponseRateLimiter, truncatedReply, type RrlOptions } from './rrl';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import type { HostPort } from '../config';
import type { Zones } from '../directory/zones';
import type { Logger } from '../log';
import { Answerer } from './answers';
import { Notifier } from './notify';
import { Transfers } from './transfer';
import { cidrList } from '../net';

export interface DnsServerOptions {
  host: string;
  port: number;
  axfrAllow: readonly string[];
  notify: readonly HostPort[];
  /** Close a TCP connection idle this long (RFC 7766 §6.2.3 suggests seconds). */
  tcpIdleMs?: number;
  /** Close a TCP connection whose current message is not complete after this long. */
  tcpMessageMs?: number;
  /** Concurrent TCP connections accepted. */
  maxTcpConnections?: number;
  /** Answer cache size (0 disables it). */
  cacheEntries?: number;
  /** UDP response rate limiting (rrl.ts); absent = off. */
  rrl?: RrlOptions;
}

export interface DnsEndpoint {
  port: number;
  answerer: Answerer;
  notifier: Notifier;
  /** The UDP response rate limiter, when configured. */
  rrl: ResponseRateLimiter | undefined;
  close(): Promise<void>;
}

/** Starts UDP and TCP listeners on the same port (the TCP port is chosen first when 0). */
export async function startDnsServer(zones: Zones, opts: DnsServerOptions, log: Logger): Promise<DnsEndpoint> {
  const answerer = new Answerer(zones, log, { cacheEntries: opts.cacheEntries });
  const rrl = opts.rrl ? new ResponseRateLimiter(opts.rrl) : undefined;
  const transfers = new Transfers(zones, cidrList(opts.axfrAllow), log);
  const notifier = new Notifier(opts.notify, log);
  zones.onSerialChange((changed) => {
    for (const z of changed) notifier.announce(z.name, z.serial, zones.zoneOf(z.name)?.soa);
  });
  const idleMs = opts.tcpIdleMs ?? 10_000;
  const messageMs = opts.tcpMessageMs ?? 5_000;
  const maxConns = opts.maxTcpConnections ?? 256;

  /**
   * The replies to one TCP message. A transfer that cannot be built or
   * encoded gets SERVFAIL and the connection goes on; anything else thrown
   * (answer() itself never throws) closes this connection only (undefined).
   * Either way it is logged, and no other client notices.
   */
  const tcpReplies = (msg: Buffer, remote: string): Buffer[] | undefined => {
    try {
      const out = answerer.answer(msg, { tcp: true, remote });
      if (out.kind === 'reply') return [out.bytes];
      if (out.kind === 'none') return [];
      const req = out.request;
      try {
        const t = transfers.answer(req, remote);
        // The messages may be shared with other transfers: each goes out as a copy with this request's ID.
        return t.messages.map((m) => {
          const b = Buffer.from(m);
          b.writeUInt16BE(t.id, 0);
          return b;
        });
      } catch (err) {
        log.error({ err, zone: req.zone, kind: req.kind, remote }, 'dns zone transfer failed');
        return [answerer.failure(req.query, true)];
      }
    } catch (err) {
      log.error({ err, remote }, 'dns tcp message failed; closing the connection');
      return undefined;
    }
  };

  // ---- TCP
  const sockets = new Set<net.Socket>();
  const tcp = net.createServer((sock) => {
    if (sockets.size >= maxConns) {
      sock.destroy();
      return;
    }
    sockets.add(sock);
    sock.setNoDelay(true);
    // RFC 7766 §6.2.3: under load, idle connections get a much shorter timeout so new clients are not shut out.
    const idleTimeout = () => (sockets.size > maxConns * 0.75 ? Math.min(idleMs, 1000) : idleMs);
    sock.setTimeout(idleTimeout(), () => sock.destroy());
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    const remote = sock.remoteAddress ?? '';
    let buf = Buffer.alloc(0);
    let messageTimer: NodeJS.Timeout | undefined;
    sock.on('data', (chunk) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      sock.cork();
      try {
        while (buf.length >= 2) {
          const len = buf.readUInt16BE(0);
          if (buf.length < 2 + len) break;
          const msg = buf.subarray(2, 2 + len);
          buf = buf.subarray(2 + len);
          if (len === 0) continue;
          const replies = tcpReplies(msg, remote);
          if (!replies) {
            sock.destroy();
            return;
          }
          for (const r of replies) {
            const prefix = Buffer.allocUnsafe(2);
            prefix.writeUInt16BE(r.length, 0);
            sock.write(prefix);
            sock.write(r);
          }
        }
      } finally {
        sock.uncork();
        sock.setTimeout(idleTimeout());
      }
      // A partial message must complete in time (slow-drip defence).
      if (buf.length > 0 && !messageTimer) {
        messageTimer = setTimeout(() => sock.destroy(), messageMs);
        messageTimer.unref();
      } else if (buf.length === 0 && messageTimer) {
        clearTimeout(messageTimer);
        messageTimer = undefined;
      }
    });
    sock.on('close', () => messageTimer && clearTimeout(messageTimer));
  });
  tcp.on('error', (err) => log.error({ err }, 'dns tcp server error'));

  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(opts.port, opts.host, () => {
      tcp.off('error', reject);
      resolve();
    });
  });
  const port = (tcp.address() as net.AddressInfo).port;

  // ---- UDP
  // A 4 MiB receive buffer absorbs bursts (the 208 KiB default drops good queries behind a few large datagrams).
  const udp = dgram.createSocket({ type: net.isIPv6(opts.host) ? 'udp6' : 'udp4', reuseAddr: false, recvBufferSize: 4 * 1024 * 1024 });
  udp.on('message', (msg, rinfo) => {
    try {
      const out = answerer.answer(msg, { tcp: false, remote: rinfo.address });
      if (out.kind !== 'reply') return;
      const verdict = rrl ? rrl.check(rinfo.address, out.bytes) : 'send';
      if (verdict === 'send') udp.send(out.bytes, rinfo.port, rinfo.address);
      else if (verdict === 'slip') udp.send(truncatedReply(out.bytes), rinfo.port, rinfo.address);
    } catch (err) {
      // answer() never throws; should it, this datagram goes unanswered and the socket keeps serving.
      log.error({ err, remote: rinfo.address }, 'dns udp message failed');
    }
  });
  udp.on('error', (err) => log.error({ err }, 'dns udp socket error'));

  try {
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(port, opts.host, () => {
        udp.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    tcp.close();
    throw e;
  }
  log.info({ port }, 'dns listening');

  return {
    port,
    answerer,
    notifier,
    rrl,
    close: async () => {
      notifier.close();
      await new Promise<void>((resolve) => {
        tcp.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      await new Promise<void>((resolve) => udp.close(() => resolve()));
    },
  };
}
