/**
 * A stub upstream DNS server for tests (DCMX_UPSTREAM_DNS=127.0.0.1:<port>),
 * so no test ever asks the machine's resolver. It listens on 127.0.0.1, UDP
 * and TCP on the same port (RFC 7766 framing), and answers from a mutable
 * table built with server/dns/wire.ts (screen() to read queries,
 * encodeResponse() to write answers):
 *
 * - a name with records answers them for their type (NODATA for other types);
 * - `*.zone` records answer for every name below `zone` that has none of its
 *   own (RFC 4592, simplified), e.g. an attacker's wildcard MX;
 * - `exists(name)` makes a name that has no records at all (NODATA);
 * - unknown names get NXDOMAIN;
 * - `silent` names are never answered (the client times out), `servfail`
 *   names get SERVFAIL;
 * - every question is counted (`queries`, `count(name?, type?)`).
 *
 *   const dns = await StubDns.start();
 *   dns.mx('new.example.org', 10, 'mx.dcmx.test').a('mx.dcmx.test', '127.0.0.1');
 *   dns.silent.add('slow.example.org');
 *   startTestAppliance({ DCMX_UPSTREAM_DNS: dns.address, ... });
 */
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { encodeResponse, screen } from '../../server/dns/wire';
import { RRTYPE, type RData, type RR } from '../../server/directory/records';

/** One question the stub received. */
export interface StubQuery {
  name: string;
  type: number;
  tcp: boolean;
  at: number;
}

function norm(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

export class StubDns {
  /** Every question received, in order. */
  readonly queries: StubQuery[] = [];
  /** Names never answered (lower case, no trailing dot). */
  readonly silent = new Set<string>();
  /** Names answered with SERVFAIL. */
  readonly servfail = new Set<string>();
  /** TTL of every answer. */
  ttl = 0;
  port = 0;
  private readonly records = new Map<string, RR[]>();
  private readonly names = new Set<string>();
  private udp: dgram.Socket | undefined;
  private tcp: net.Server | undefined;
  private readonly conns = new Set<net.Socket>();

  /** `127.0.0.1:<port>`, for DCMX_UPSTREAM_DNS. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Starts a stub on a free loopback port (UDP and TCP). */
  static async start(): Promise<StubDns> {
    const s = new StubDns();
    await s.listen();
    return s;
  }

  // ------------------------------------------------------------ the table

  /** Adds one record. */
  add(name: string, rdata: RData): this {
    const n = norm(name);
    const key = `${n}|${rdata.type}`;
    this.records.set(key, [...(this.records.get(key) ?? []), { name: n, ttl: this.ttl, rdata }]);
    this.names.add(n);
    return this;
  }

  /** An MX record (exchange '' with preference 0 is a null MX, RFC 7505). */
  mx(name: string, preference: number, exchange: string): this {
    return this.add(name, { type: RRTYPE.MX, preference, exchange: norm(exchange) });
  }

  /** A records. */
  a(name: string, ...addresses: string[]): this {
    for (const address of addresses) this.add(name, { type: RRTYPE.A, address });
    return this;
  }

  /** AAAA records. */
  aaaa(name: string, ...addresses: string[]): this {
    for (const address of addresses) this.add(name, { type: RRTYPE.AAAA, address });
    return this;
  }

  /** A name that exists with no records of its own (NODATA for every type). */
  exists(name: string): this {
    this.names.add(norm(name));
    return this;
  }

  /** Forgets a name (NXDOMAIN from now on), or only its records of `type`. */
  remove(name: string, type?: number): this {
    const n = norm(name);
    for (const key of [...this.records.keys()]) {
      if (key.startsWith(`${n}|`) && (type === undefined || key === `${n}|${type}`)) this.records.delete(key);
    }
    if (type === undefined) this.names.delete(n);
    return this;
  }

  /** Questions received for `name` (any name when undefined) of `type` (any type when undefined). */
  count(name?: string, type?: number): number {
    const n = name === undefined ? undefined : norm(name);
    return this.queries.filter((q) => (n === undefined || q.name === n) && (type === undefined || q.type === type)).length;
  }

  // ------------------------------------------------------------ the server

  /** The reply to one query packet, or undefined for none. */
  private respond(buf: Buffer, tcp: boolean): Buffer | undefined {
    const s = screen(buf);
    if (s.kind !== 'query') return undefined;
    const q = s.query;
    const name = norm(q.question.name);
    this.queries.push({ name, type: q.question.type, tcp, at: Date.now() });
    if (this.silent.has(name)) return undefined;
    const owner = this.owner(name);
    const rcode = this.servfail.has(name) ? 2 : owner !== undefined ? 0 : 3;
    const answer = rcode === 0 ? (this.records.get(`${owner}|${q.question.type}`) ?? []).map((rr) => ({ ...rr, name })) : [];
    const limit = tcp ? 65535 : q.edns ? Math.max(512, Math.min(q.edns.udpSize, 1232)) : 512;
    return encodeResponse(
      {
        id: q.id, opcode: 0, aa: true, rd: q.rd, cd: q.cd, rcode,
        questionWire: q.questionWire, answer, authority: [], additional: [],
        ...(q.edns ? { edns: { udpSize: 1232 } } : {}),
      },
      limit,
    );
  }

  /** The name whose records answer `name`: itself, or the closest wildcard above it. */
  private owner(name: string): string | undefined {
    if (this.names.has(name)) return name;
    for (let n = name; n.includes('.'); ) {
      n = n.slice(n.indexOf('.') + 1);
      if (this.names.has(`*.${n}`)) return `*.${n}`;
    }
    return undefined;
  }

  private async listen(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const udp = dgram.createSocket('udp4');
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(0, '127.0.0.1', () => {
          udp.off('error', reject);
          resolve();
        });
      });
      const port = (udp.address() as AddressInfo).port;
      const tcp = net.createServer((sock) => this.serveTcp(sock));
      const ok = await new Promise<boolean>((resolve) => {
        tcp.once('error', () => resolve(false));
        tcp.listen(port, '127.0.0.1', () => resolve(true));
      });
      if (!ok) {
        udp.close();
        if (attempt > 20) throw new Error('stub dns: no port free on both UDP and TCP');
        continue;
      }
      udp.on('message', (msg, rinfo) => {
        const out = this.respond(msg, false);
        if (out) udp.send(out, rinfo.port, rinfo.address);
      });
      udp.on('error', () => undefined);
      tcp.on('error', () => undefined);
      this.udp = udp;
      this.tcp = tcp;
      this.port = port;
      return;
    }
  }

  private serveTcp(sock: net.Socket): void {
    this.conns.add(sock);
    sock.on('close', () => this.conns.delete(sock));
    sock.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        const out = this.respond(msg, true);
        if (out) {
          const framed = Buffer.alloc(2 + out.length);
          framed.writeUInt16BE(out.length, 0);
          out.copy(framed, 2);
          sock.write(framed);
        }
      }
    });
  }

  /** Stops listening and drops open TCP connections. */
  async close(): Promise<void> {
    for (const c of this.conns) c.destroy();
    const udp = this.udp;
    const tcp = this.tcp;
    this.udp = undefined;
    this.tcp = undefined;
    if (udp) await new Promise<void>((r) => udp.close(() => r()));
    if (tcp) await new Promise<void>((r) => tcp.close(() => r()));
  }
}
