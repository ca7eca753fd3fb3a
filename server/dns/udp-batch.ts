/**
 * The DNS port's UDP socket, read and written in batches by the native
 * addon native/udpbatch (Linux: recvmmsg/sendmmsg, one call into JavaScript
 * per batch of up to SLOTS datagrams), with Node's dgram as the fallback
 * (another system, the addon not built, or DCMX_DNS_UDP_BATCH=0). Both give
 * each datagram to the same `answer` function; the replies, the RRL verdicts
 * and what is counted are the same.
 */
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

/** What native/udpbatch/udpbatch.c exports (its header comment is the contract). */
interface UdpBatchAddon {
  SLOTS: number;
  SLOT_BYTES: number;
  open(host: string, port: number, ipv6: boolean, reusePort: boolean, rcvbuf: number): object;
  start(sock: object, input: Buffer, lengths: Int32Array, replies: Buffer, meta: Int32Array, onBatch: (count: number) => number): void;
  source(sock: object, i: number): string;
  stats(sock: object): number[];
  close(sock: object): void;
}

const ADDON = path.join('native', 'udpbatch', 'build', 'Release', 'udpbatch.node');
let addon: UdpBatchAddon | null | undefined;

/** The addon, or null where it cannot serve (not Linux, not built, fails to load). */
function loadAddon(): UdpBatchAddon | null {
  if (addon !== undefined) return addon;
  addon = null;
  if (process.platform !== 'linux') return addon;
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const file = path.join(dir, ADDON);
    if (fs.existsSync(file)) {
      try {
        addon = require(file) as UdpBatchAddon; // eslint-disable-line @typescript-eslint/no-require-imports
      } catch {
        addon = null;
      }
      return addon;
    }
    if (path.dirname(dir) === dir) return addon;
  }
}

/**
 * Where a datagram came from. Its address is made into a string only when
 * asked for (rate limiting, a log line): most answers never need it. Valid
 * during the call it is given to only.
 */
export interface UdpSource {
  address(): string;
}

/**
 * What to do with one datagram: return the reply's octets, or undefined for
 * none (answer() said none, RRL dropped it). Never throws.
 */
export type UdpAnswer = (msg: Buffer, source: UdpSource) => Uint8Array | undefined;

/** Counters of a UDP socket (tests, diagnostics). */
export interface UdpStats {
  /** True when the native batch path serves the socket. */
  native: boolean;
  datagrams: number;
  /** recvmmsg calls that returned datagrams (native only; 0 on dgram). */
  batches: number;
  replies: number;
  /** Replies the kernel would not take (send buffer full): dropped, as UDP may. */
  sendDropped: number;
  sendErrors: number;
}

export interface UdpSocket {
  stats(): UdpStats;
  close(): Promise<void>;
}

export interface UdpOptions {
  host: string;
  port: number;
  reusePort: boolean;
  /** Use the native batch path when it is available (default true). */
  batch?: boolean;
}

/** A 4 MiB receive buffer absorbs bursts (the 208 KiB default drops good queries behind a few large datagrams). */
const RCVBUF = 4 * 1024 * 1024;

/** Binds the UDP socket; a bind failure rejects with the system's error (code EADDRINUSE...). */
export async function bindUdp(opts: UdpOptions, answer: UdpAnswer, onError: (err: unknown) => void): Promise<UdpSocket> {
  const native = opts.batch !== false ? loadAddon() : null;
  const ipv6 = net.isIPv6(opts.host);
  return native ? bindNative(native, opts, ipv6, answer) : bindDgram(opts, ipv6, answer, onError);
}

function bindNative(a: UdpBatchAddon, opts: UdpOptions, ipv6: boolean, answer: UdpAnswer): UdpSocket {
  const sock = a.open(opts.host, opts.port, ipv6, opts.reusePort, RCVBUF);
  const input = Buffer.allocUnsafeSlow(a.SLOTS * a.SLOT_BYTES);
  const lengths = new Int32Array(a.SLOTS);
  // Each reply at its own slot: a UDP reply is at most 65,535 octets.
  const replies = Buffer.allocUnsafeSlow(a.SLOTS * a.SLOT_BYTES);
  const meta = new Int32Array(3 * a.SLOTS);
  const slot = a.SLOT_BYTES;
  // The datagram being answered: its address made only when asked (rate limiting, a log line).
  let at = 0;
  const source: UdpSource = { address: () => a.source(sock, at) };
  a.start(sock, input, lengths, replies, meta, (count) => {
    let k = 0;
    for (let i = 0; i < count; i++) {
      const len = lengths[i];
      if (len < 0) continue; // truncated by the kernel (cannot happen with 64 KiB slots): dropped
      at = i;
      const out = answer(input.subarray(i * slot, i * slot + len), source);
      if (!out || out.length > slot) continue;
      replies.set(out, k * slot);
      meta[3 * k] = i;
      meta[3 * k + 1] = k * slot;
      meta[3 * k + 2] = out.length;
      k++;
    }
    return k;
  });
  const read = (): UdpStats => {
    const s = a.stats(sock);
    return { native: true, datagrams: s[0], batches: s[1], replies: s[2], sendDropped: s[3], sendErrors: s[4] };
  };
  let last: UdpStats | undefined; // the figures at close()
  return {
    stats: () => last ?? read(),
    close: async () => {
      if (last) return;
      last = read();
      a.close(sock);
    },
  };
}

/**
 * The lookup of a UDP socket of `family` (4 or 6). Every address the socket
 * is handed is a literal of its family: the bind address (DCMX_LISTEN must be
 * an IP address) and each reply's destination, the source of a datagram.
 * dgram's default lookup tests the literal with a regular expression and
 * defers the send to the next tick (a closure and a tick per reply); this
 * one answers at once, so a reply goes to the kernel within send().
 */
function literalLookup(family: 4 | 6): NonNullable<dgram.SocketOptions['lookup']> {
  return (address, _options, callback) => callback(null, address, family);
}

async function bindDgram(opts: UdpOptions, ipv6: boolean, answer: UdpAnswer, onError: (err: unknown) => void): Promise<UdpSocket> {
  const family = ipv6 ? 6 : 4;
  const udp = dgram.createSocket({
    type: ipv6 ? 'udp6' : 'udp4', reuseAddr: false, reusePort: opts.reusePort, recvBufferSize: RCVBUF, lookup: literalLookup(family),
  });
  // A failed send is an 'error' event (onError logs it), as before.
  const counts = { datagrams: 0, replies: 0 };
  let from = '';
  const source: UdpSource = { address: () => from };
  udp.on('message', (msg, rinfo) => {
    counts.datagrams++;
    from = rinfo.address;
    const out = answer(msg, source);
    if (!out) return;
    counts.replies++;
    udp.send(out, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(opts.port, opts.host, () => {
      udp.off('error', reject);
      resolve();
    });
  });
  udp.on('error', onError);
  return {
    stats: () => ({ native: false, datagrams: counts.datagrams, batches: 0, replies: counts.replies, sendDropped: 0, sendErrors: 0 }),
    close: () => new Promise<void>((resolve) => udp.close(() => resolve())),
  };
}
