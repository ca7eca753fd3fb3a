/**
 * Response rate limiting for UDP, in the manner of BIND/NSD/Knot RRL
 * (Vixie & Schryver, "DNS Response Rate Limiting", 2012): an authoritative
 * server answering spoofed queries is an amplifier, so identical responses
 * to one client network are capped per second.
 *
 * - Client networks: IPv4 /24, IPv6 /56 (the customary defaults).
 * - Buckets: a positive answer counts against (network, qname, qtype); every
 *   NXDOMAIN to a network shares one bucket (random-subdomain floods do not
 *   escape by varying the name); errors (REFUSED, FORMERR, ...) share another.
 * - Over the limit a response is dropped, except every `slip`-th, which goes
 *   out truncated (TC=1, no records): a real client retries over TCP
 *   (RFC 7766), which is never limited, while a spoofed victim gets a reply
 *   no larger than the query.
 * - Counting windows are one second; the table holds only the last second's
 *   keys, so memory is bounded by one second of traffic.
 */
import { ipv6Groups } from '../net';

export type RrlVerdict = 'send' | 'drop' | 'slip';

export interface RrlOptions {
  /** Identical responses per second per client network (> 0). */
  rate: number;
  /** Every slip-th limited response is sent truncated; 0 drops them all. */
  slip: number;
}

/** The client network a source address belongs to, as a short string. */
export function clientNetwork(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+)\.\d+$/i.exec(ip);
  if (mapped) return mapped[1];
  const g = ipv6Groups(ip);
  if (!g) return ip.slice(0, ip.lastIndexOf('.'));
  // The first 56 bits: three groups and the high byte of the fourth.
  return `${g[0]}:${g[1]}:${g[2]}:${g[3].slice(0, 2)}`;
}

/**
 * The bucket a response belongs to, from the reply bytes: RCODE from the
 * header (RFC 1035 §4.1.1) and, for positive answers, the question's name
 * (lower-cased) and type.
 */
export function responseBucket(reply: Buffer): string {
  const rcode = reply.length >= 4 ? reply[3] & 0x0f : -1;
  if (rcode === 3) return 'nx';
  if (rcode !== 0 || reply.length < 12 || reply.readUInt16BE(4) !== 1) return 'err';
  // The question name in a reply we encoded is uncompressed: walk its labels.
  let i = 12;
  while (i < reply.length && reply[i] !== 0) i += reply[i] + 1;
  if (i + 5 > reply.length) return 'err';
  return reply.toString('latin1', 12, i + 3).toLowerCase();
}

/** A truncated copy of `reply`: header and question, TC set, no records (RFC 1035 §4.1.1). */
export function truncatedReply(reply: Buffer): Buffer {
  let end = 12;
  if (reply.length >= 12 && reply.readUInt16BE(4) === 1) {
    while (end < reply.length && reply[end] !== 0) end += reply[end] + 1;
    end = Math.min(end + 5, reply.length);
  }
  const out = Buffer.from(reply.subarray(0, end));
  out[2] |= 0x02; // TC
  out.writeUInt16BE(end > 12 ? 1 : 0, 4);
  out.fill(0, 6, 12); // ANCOUNT, NSCOUNT, ARCOUNT
  return out;
}

export class ResponseRateLimiter {
  private window = -1;
  private counts = new Map<string, number>();
  /** Counters for the admin API: responses dropped and sent truncated. */
  readonly stats = { dropped: 0, slipped: 0 };

  constructor(private readonly opts: RrlOptions) {}

  /** What to do with `reply` to `remote` now. */
  check(remote: string, reply: Buffer, now = Date.now()): RrlVerdict {
    const second = Math.floor(now / 1000);
    if (second !== this.window) {
      this.window = second;
      this.counts = new Map();
    }
    const key = clientNetwork(remote) + '|' + responseBucket(reply);
    const n = (this.counts.get(key) ?? 0) + 1;
    this.counts.set(key, n);
    if (n <= this.opts.rate) return 'send';
    if (this.opts.slip > 0 && (n - this.opts.rate) % this.opts.slip === 0) {
      this.stats.slipped++;
      return 'slip';
    }
    this.stats.dropped++;
    return 'drop';
  }
}
