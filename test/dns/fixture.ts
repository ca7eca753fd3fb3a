/**
 * Fixtures for the DNS endpoint tests: the example.org test zone as LDIF,
 * dig/kdig runners against a loopback port, parsers of their output, the
 * regression packets (packets/), and a tally of outcomes.
 */
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { run, type RunResult } from '../helpers';

// ------------------------------------------------------------------ the zone

/**
 * The example.org zone as LDIF for ldapadd: `dc=org`, the apex (SOA serial
 * 100, NS ns1, MX 10 mx, A 192.0.2.1 and, unless `spf` is false, the TXT
 * "v=spf1 mx -all"), ns1 (A 192.0.2.53), mx (A 192.0.2.25) and www (CNAME
 * mx), then the `extra` entries in order.
 */
export function exampleOrgZone(opts: { spf?: boolean; extra?: string[] } = {}): string {
  const apex = `dn: dc=example,dc=org,o=internet
objectClass: dNSDomain2
objectClass: domain
dc: example
dNSTTL: 300
sOARecord: ns1.example.org. hostmaster.example.org. 100 3600 900 604800 60
nSRecord: ns1.example.org.
mXRecord: 10 mx.example.org.
aRecord: 192.0.2.1
${opts.spf === false ? '' : 'tXTRecord: "v=spf1 mx -all"\n'}`;
  return [
    'dn: dc=org,o=internet\nobjectClass: domain\ndc: org\n',
    apex,
    'dn: dc=ns1,dc=example,dc=org,o=internet\nobjectClass: dNSDomain2\ndc: ns1\naRecord: 192.0.2.53\n',
    'dn: dc=mx,dc=example,dc=org,o=internet\nobjectClass: dNSDomain2\ndc: mx\naRecord: 192.0.2.25\n',
    'dn: dc=www,dc=example,dc=org,o=internet\nobjectClass: dNSDomain2\ndc: www\ncNAMERecord: mx.example.org.\n',
    ...(opts.extra ?? []),
  ].join('\n');
}

/** caa.example.org: a CAA, an SRV and an AAAA record. */
export const CAA_ENTRY = `dn: dc=caa,dc=example,dc=org,o=internet
objectClass: dNSDomain2
dc: caa
cAARecord: 0 issue "letsencrypt.org"
sRVRecord: 10 5 5060 mx.example.org.
aAAARecord: 2001:db8::1
`;

// ------------------------------------------------------------------ dig and kdig

/** A dig or kdig bound to one server: the arguments are the query's. */
export type DigRunner = (...args: string[]) => Promise<RunResult>;

/** A port, or a getter for one assigned later (in a `before` hook). */
type PortOf = number | (() => number);
const portOf = (p: PortOf): string => String(typeof p === 'number' ? p : p());

/** `dig @127.0.0.1 -p <port> +norec +time=2 +tries=1 <args>`; `timeoutMs` bounds the process (run's default when omitted). */
export function digRunner(port: PortOf, timeoutMs?: number): DigRunner {
  return (...args) => run('dig', ['@127.0.0.1', '-p', portOf(port), '+norec', '+time=2', '+tries=1', ...args], undefined, timeoutMs);
}

/** `kdig @127.0.0.1 -p <port> +norec +time=2 +retry=0 <args>`. */
export function kdigRunner(port: PortOf, timeoutMs?: number): DigRunner {
  return (...args) => run('kdig', ['@127.0.0.1', '-p', portOf(port), '+norec', '+time=2', '+retry=0', ...args], undefined, timeoutMs);
}

/** A server's answer to name/type as dig or kdig `dig` gives it: its status, then the sorted ANSWER section, one line each. */
export async function sortedAnswer(dig: DigRunner, name: string, type: string): Promise<string> {
  const r = await dig(name, type);
  return `${status(r.stdout)}\n${section(r.stdout, 'ANSWER').sort().join('\n')}`;
}

/** The RCODE name of dig/kdig output (`status: NOERROR`), or 'none'. */
export function status(out: string): string {
  return /status: (\w+)/.exec(out)?.[1] ?? 'none';
}

/** The header flags of dig output (`flags: qr aa;`). */
export function flags(out: string): string[] {
  return (/flags: ([a-z ]+);/.exec(out)?.[1] ?? '').trim().split(/\s+/);
}

/** The records of one section of dig/kdig output, white space folded. */
export function section(out: string, name: 'ANSWER' | 'AUTHORITY' | 'ADDITIONAL'): string[] {
  const m = new RegExp(`;; ${name} SECTION:\\n([\\s\\S]*?)(\\n\\n|\\n;;|$)`).exec(out);
  return m ? m[1].split('\n').filter((l) => l && !l.startsWith(';')).map((l) => l.replace(/\s+/g, ' ').trim()) : [];
}

/** The serial of the first SOA record in `out`, or -1. */
export function soaSerial(out: string): number {
  const m = /\bSOA\s+\S+\s+\S+\s+(\d+)/.exec(out);
  return m ? Number(m[1]) : -1;
}

// ------------------------------------------------------------------ packets

/** The regression packets kept in the repository (test/dns/packets; test files run from dist/test/dns). */
export const PACKETS_DIR = path.resolve(__dirname, '..', '..', '..', 'test', 'dns', 'packets');

/** One regression packet, with what wire.screen() must make of it (packets/index.txt). */
export interface RegressionPacket {
  file: string;
  packet: Buffer;
  /** Outcome as is: the kind, and `:reason` for drop and formerr. */
  asIs: string;
  /** Outcome once its header is made a plain QUERY (QR=0, opcode 0; see asQuery()). */
  asQuery: string;
  why: string;
}

/** The regression packets, in the order of packets/index.txt; throws when a listed file is missing or a file is not listed. */
export function regressionPackets(): RegressionPacket[] {
  const rows = fs.readFileSync(path.join(PACKETS_DIR, 'index.txt'), 'utf8').split('\n').filter((l) => l.trim() && !l.startsWith('#'));
  const out = rows.map((l) => {
    const [file, asIs, asQuery, ...why] = l.trim().split(/\s+/);
    return { file, packet: fs.readFileSync(path.join(PACKETS_DIR, file)), asIs, asQuery, why: why.join(' ') };
  });
  const unlisted = packetFiles(PACKETS_DIR).filter((f) => !out.some((p) => p.file === f));
  if (unlisted.length) throw new Error(`packets not listed in ${PACKETS_DIR}/index.txt: ${unlisted.join(', ')}`);
  return out;
}

/** The packet files (*.pkt) of a directory, sorted: the regression packets, or a corpus such as Knot's. */
export function packetFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => f.endsWith('.pkt')).sort();
}

/** The same bytes as a plain QUERY (QR=0, opcode 0), so that a response goes through the whole walk; shorter than 4 octets: as is. */
export function asQuery(pkt: Buffer): Buffer {
  if (pkt.length < 4) return pkt;
  const m = Buffer.from(pkt);
  m[2] &= 0x07;
  return m;
}

/** The 18-byte packet of native-dns-packet issue #18: the question name is a pointer to itself. */
export const ISSUE18 = Buffer.from('000001000001000000000000c00c00010001', 'hex');

/** Counts of outcomes by key, printed most frequent first. */
export class Tally {
  readonly counts = new Map<string, number>();
  add(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }
  get(key: string): number {
    return this.counts.get(key) ?? 0;
  }
  toString(): string {
    return [...this.counts.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}=${v}`).join(' ');
  }
}

/** Sends one UDP packet to 127.0.0.1:`port`; resolves with the first reply, or undefined after `waitMs`. */
export function udpQuery(port: number, packet: Buffer, waitMs = 1000): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      resolve(undefined);
    }, waitMs);
    s.on('message', (m) => {
      clearTimeout(timer);
      s.close();
      resolve(m);
    });
    s.send(packet, port, '127.0.0.1');
  });
}

/** Header fields of a test query that differ from a plain one (id 0x1234, no flags, one question). */
export interface QueryOpts {
  id?: number;
  flags?: number;
  qdcount?: number;
  nscount?: number;
  arcount?: number;
  /** Bytes after the question (authority/additional records, as the counts say). */
  extra?: Buffer;
}

/** A query for `name`/`type`, class IN (RFC 1035 §4.1), built byte by byte as a test client would. */
export function queryPacket(name: string, type: number, o: QueryOpts = {}): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE((o.id ?? 0x1234) & 0xffff, 0);
  header.writeUInt16BE(o.flags ?? 0, 2);
  header.writeUInt16BE(o.qdcount ?? 1, 4);
  header.writeUInt16BE(o.nscount ?? 0, 8);
  header.writeUInt16BE(o.arcount ?? 0, 10);
  const labels = name.split('.').flatMap((l) => [Buffer.from([l.length]), Buffer.from(l, 'latin1')]);
  return Buffer.concat([header, ...labels, Buffer.from([0, type >> 8, type & 255, 0, 1]), o.extra ?? Buffer.alloc(0)]);
}

/** A DNS message over TCP: two-octet length prefix, then the message (RFC 1035 §4.2.2). */
export function tcpFrame(b: Buffer): Buffer {
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 255]), b]);
}

/** A 'data' listener for a TCP connection that hands each whole message (prefix removed, RFC 1035 §4.2.2) to `onMessage`. */
export function tcpMessages(onMessage: (m: Buffer) => void): (d: Buffer) => void {
  let acc: Buffer = Buffer.alloc(0);
  return (d) => {
    acc = acc.length ? Buffer.concat([acc, d]) : d;
    while (acc.length >= 2 && acc.length >= 2 + acc.readUInt16BE(0)) {
      onMessage(acc.subarray(2, 2 + acc.readUInt16BE(0)));
      acc = acc.subarray(2 + acc.readUInt16BE(0));
    }
  };
}
