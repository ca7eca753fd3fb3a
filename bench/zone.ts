/**
 * The DNS benchmark's zone, bench.test, in the two forms the servers read:
 * LDIF for dcmx (`dcmx ldif import`) and an RFC 1035 master file for NSD and
 * Knot, from one list of records, so every server answers the same data;
 * and the UDP question the benchmark uses to see that a server serves it.
 */
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import type { Child } from './proc';

export const ZONE = 'bench.test';
export const SUFFIX = 'o=internet';
export const ADMIN_DN = `cn=admin,${SUFFIX}`;
export const ADMIN_PASSWORD = 'bench-admin-secret';

const TTL = 300;
const SOA = `ns1.${ZONE}. hostmaster.${ZONE}. 1 3600 900 604800 60`;
const NS = `ns1.${ZONE}.`;
const MX = `10 mx.${ZONE}.`;
/** The hosts other than h<i>: the name server and the mail exchanger the MX records name. */
const FIXED_HOSTS: [string, string][] = [['ns1', '10.255.0.53'], ['mx', '10.255.0.25']];

const ipOf = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

/** Writes `count` pieces of text made by `part` to `file`, by chunks. */
export function writeParts(file: string, count: number, part: (i: number) => string): void {
  const fd = fs.openSync(file, 'w');
  try {
    let buf = '';
    for (let i = 0; i < count; i++) {
      buf += part(i);
      if (buf.length > 1 << 20) {
        fs.writeSync(fd, buf);
        buf = '';
      }
    }
    fs.writeSync(fd, buf);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The zone with `names` hosts h0..h(names-1), each an A and an MX, as LDIF.
 * It starts with the suffix entry: the store is fresh and the appliance,
 * which creates the suffix on first boot, has not run yet.
 */
export function writeZoneLdif(file: string, names: number): void {
  const head = [
    `dn: ${SUFFIX}\nobjectClass: organization\no: internet\n`,
    `dn: dc=test,${SUFFIX}\nobjectClass: domain\ndc: test\n`,
    `dn: dc=bench,dc=test,${SUFFIX}\nobjectClass: dNSDomain2\nobjectClass: domain\ndc: bench\ndNSTTL: ${TTL}\n` +
      `sOARecord: ${SOA}\nnSRecord: ${NS}\n`,
    ...FIXED_HOSTS.map(([h, ip]) => `dn: dc=${h},dc=bench,dc=test,${SUFFIX}\nobjectClass: dNSDomain2\ndc: ${h}\naRecord: ${ip}\n`),
  ];
  writeParts(file, head.length + names, (i) =>
    i < head.length
      ? `${head[i]}\n`
      : `dn: dc=h${i - head.length},dc=bench,dc=test,${SUFFIX}\nobjectClass: dNSDomain2\ndc: h${i - head.length}\n` +
        `aRecord: ${ipOf(i - head.length)}\nmXRecord: ${MX}\n\n`,
  );
}

/**
 * A new mail domain p<i>.test, a zone of its own (SOA, NS, MX), as an LDAP
 * entry under dc=test (which the LDIF above creates): what provisioning adds.
 */
export function newDomainEntry(i: number): { dn: string; attrs: [string, string[]][] } {
  return {
    dn: `dc=p${i},dc=test,${SUFFIX}`,
    attrs: [
      ['objectClass', ['top', 'domain', 'dNSDomain', 'dNSDomain2', 'mailDomain']], ['dc', [`p${i}`]], ['dNSTTL', [String(TTL)]],
      ['sOARecord', [`ns1.${ZONE}. hostmaster.p${i}.test. 1 3600 900 604800 60`]], ['nSRecord', [NS]], ['mXRecord', [MX]],
    ],
  };
}

/** The same zone as a master file (RFC 1035 §5), for NSD and Knot. */
export function writeZoneFile(file: string, names: number): void {
  const head = [`$ORIGIN ${ZONE}.\n$TTL ${TTL}\n@ IN SOA ${SOA}\n@ IN NS ${NS}\n`, ...FIXED_HOSTS.map(([h, ip]) => `${h} IN A ${ip}\n`)];
  writeParts(file, head.length + names, (i) =>
    i < head.length ? head[i] : `h${i - head.length} IN A ${ipOf(i - head.length)}\nh${i - head.length} IN MX ${MX}\n`,
  );
}

/** A running DNS comparison server (NSD, Knot): its main process (helpers are its descendants) and port. */
export interface DnsPeer {
  child: Child;
  port: number;
}

/** One UDP query (with an OPT RR setting DO when `dnssecOk`, RFC 3225); resolves with the reply, or undefined after `timeoutMs`. */
export function udpAsk(port: number, name: string, type: number, timeoutMs = 2000, dnssecOk = false): Promise<Buffer | undefined> {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(0x4242, 0);
  h.writeUInt16BE(1, 4);
  h.writeUInt16BE(dnssecOk ? 1 : 0, 10);
  const opt = dnssecOk ? Buffer.from('00 0029 0fa0 00008000 0000'.replace(/ /g, ''), 'hex') : Buffer.alloc(0); // root, OPT, 4000 octets, DO, no options
  const q = Buffer.concat([h, ...name.split('.').flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)]), Buffer.from([0, 0, type, 0, 1]), opt]);
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      resolve(undefined);
    }, timeoutMs);
    s.on('message', (m) => {
      clearTimeout(timer);
      s.close();
      resolve(m);
    });
    s.send(q, port, '127.0.0.1');
  });
}

/** Why the server on `port` does not serve the zone yet (h1 A and MX: NOERROR, one answer each), or undefined when it does. */
export async function zoneProblem(port: number): Promise<string | undefined> {
  for (const type of [1, 15]) {
    const r = await udpAsk(port, `h1.${ZONE}`, type, 500);
    if (!r) return `no answer for h1.${ZONE} type ${type}`;
    const rcode = r[3] & 0x0f;
    if (rcode !== 0 || r.readUInt16BE(6) !== 1) return `h1.${ZONE} type ${type}: rcode ${rcode}, ${r.readUInt16BE(6)} answers`;
  }
  return undefined;
}

/** Resolves once the server `child` on `port` serves the zone; rejects if it exits first or after `timeoutMs`. */
export async function waitForZone(port: number, child: Child, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const problem = await zoneProblem(port);
    if (!problem) return;
    if (child.proc.exitCode !== null || child.proc.signalCode !== null) throw new Error(`pid ${child.pid} exited:\n${child.output()}`);
    if (Date.now() > until) throw new Error(`the server on port ${port} does not serve ${ZONE} after ${timeoutMs} ms (${problem}):\n${child.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
