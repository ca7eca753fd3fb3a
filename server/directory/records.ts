/**
 * DNS resource records as the directory holds them: attribute values in
 * master-file RDATA syntax (RFC 1035 §5.1), as PowerDNS's LDAP backend reads
 * them in "tree" mode, e.g. `mXRecord: 10 mx.example.org`. Names in RDATA are
 * absolute with or without the trailing dot.
 *
 * This module parses and formats RDATA; it knows nothing of wire format.
 */
import * as net from 'node:net';

/** RR type codes (RFC 1035 §3.2.2 and later RFCs). */
export const RRTYPE = {
  A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, HINFO: 13, MX: 15, TXT: 16, AAAA: 28, SRV: 33, NAPTR: 35,
  OPT: 41, DS: 43, SSHFP: 44, RRSIG: 46, NSEC: 47, DNSKEY: 48, TLSA: 52, CDS: 59, CDNSKEY: 60, SPF: 99,
  NXNAME: 128, IXFR: 251, AXFR: 252, ANY: 255, CAA: 257,
} as const;

/** Type names by code, for presentation. */
export const RRTYPE_NAME: Record<number, string> = Object.fromEntries(Object.entries(RRTYPE).map(([k, v]) => [v, k]));

export type RData =
  | { type: 1; address: string }
  | { type: 28; address: string }
  | { type: 2 | 5 | 12; target: string }
  | { type: 15; preference: number; exchange: string }
  | { type: 16; strings: Buffer[] }
  | { type: 33; priority: number; weight: number; port: number; target: string }
  | { type: 257; flags: number; tag: string; value: Buffer }
  | { type: 6; mname: string; rname: string; serial: number; refresh: number; retry: number; expire: number; minimum: number }
  | { type: 13; cpu: Buffer; os: Buffer }
  | { type: 44; algorithm: number; fptype: number; fingerprint: Buffer }
  | { type: 52; usage: number; selector: number; matching: number; data: Buffer }
  /** DS and CDS (RFC 4034 §5.1, RFC 7344 §3.1). */
  | { type: 43 | 59; keyTag: number; algorithm: number; digestType: number; digest: Buffer }
  /** DNSKEY and CDNSKEY (RFC 4034 §2.1, RFC 7344 §3.2). */
  | { type: 48 | 60; flags: number; protocol: number; algorithm: number; publicKey: Buffer }
  /** RRSIG (RFC 4034 §3.1); expiration and inception in seconds since the epoch, serial-number arithmetic (§3.1.5). */
  | {
    type: 46; typeCovered: number; algorithm: number; labels: number; originalTtl: number;
    expiration: number; inception: number; keyTag: number; signer: string; signature: Buffer;
  }
  /** NSEC (RFC 4034 §4.1): the next owner name and the types present at the owner. */
  | { type: 47; next: string; types: number[] };

/** A resource record. Names are lower case, without the trailing dot ('' is the root). */
export interface RR {
  name: string;
  ttl: number;
  rdata: RData;
}

/** Which attribute holds which type (the Uninett/PowerDNS schema and RFC 1274/4524). */
export const RECORD_ATTRIBUTES: Record<string, number> = {
  arecord: RRTYPE.A,
  aaaarecord: RRTYPE.AAAA,
  nsrecord: RRTYPE.NS,
  cnamerecord: RRTYPE.CNAME,
  soarecord: RRTYPE.SOA,
  ptrrecord: RRTYPE.PTR,
  hinforecord: RRTYPE.HINFO,
  mxrecord: RRTYPE.MX,
  txtrecord: RRTYPE.TXT,
  srvrecord: RRTYPE.SRV,
  sshfprecord: RRTYPE.SSHFP,
  tlsarecord: RRTYPE.TLSA,
  caarecord: RRTYPE.CAA,
  // DS at a delegation to a signed child hosted elsewhere, written by the operator (RFC 4035 §2.4). DNSKEY, RRSIG,
  // NSEC, CDS and CDNSKEY are not record attributes: dcmx makes them from the zone's key as it answers.
  dsrecord: RRTYPE.DS,
};

/** Thrown for an RDATA value that does not parse; the message says why. */
export class RDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RDataError';
  }
}

const LABEL = /^(?:\*|[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)$/;

/** Normalises a domain name: lower case, no trailing dot. Throws RDataError for a bad name. */
export function normalizeName(s: string): string {
  let n = s.trim().toLowerCase();
  if (n === '.' || n === '') return '';
  if (n.endsWith('.')) n = n.slice(0, -1);
  if (n.length > 253) throw new RDataError(`name too long: ${s}`);
  for (const l of n.split('.')) if (!LABEL.test(l)) throw new RDataError(`bad label '${l}' in ${s}`);
  return n;
}

function u16(s: string | undefined, what: string): number {
  if (s === undefined || !/^\d+$/.test(s) || Number(s) > 65535) throw new RDataError(`bad ${what}: ${s}`);
  return Number(s);
}

function u8(s: string | undefined, what: string): number {
  if (s === undefined || !/^\d+$/.test(s) || Number(s) > 255) throw new RDataError(`bad ${what}: ${s}`);
  return Number(s);
}

function u32(s: string | undefined, what: string): number {
  if (s === undefined || !/^\d+$/.test(s) || Number(s) > 0xffffffff) throw new RDataError(`bad ${what}: ${s}`);
  return Number(s);
}

/**
 * Splits RDATA text into fields: whitespace separates, double quotes group
 * (with \" and \DDD escapes, RFC 1035 §5.1). Quoted fields come back as bytes.
 */
export function splitFields(s: string): { text: string; quoted: boolean; bytes: Buffer }[] {
  const out: { text: string; quoted: boolean; bytes: Buffer }[] = [];
  let i = 0;
  while (i < s.length) {
    while (i < s.length && /\s/.test(s[i])) i++;
    if (i >= s.length) break;
    const quoted = s[i] === '"';
    if (quoted) i++;
    const bytes: number[] = [];
    let text = '';
    while (i < s.length) {
      const c = s[i];
      if (quoted ? c === '"' : /\s/.test(c)) break;
      if (c === '\\' && i + 1 < s.length) {
        const d = /^\d{3}/.exec(s.slice(i + 1));
        if (d && Number(d[0]) < 256) {
          bytes.push(Number(d[0]));
          text += String.fromCharCode(Number(d[0]));
          i += 4;
        } else {
          for (const b of Buffer.from(s[i + 1], 'utf8')) bytes.push(b);
          text += s[i + 1];
          i += 2;
        }
        continue;
      }
      for (const b of Buffer.from(c, 'utf8')) bytes.push(b);
      text += c;
      i++;
    }
    if (quoted) {
      if (s[i] !== '"') throw new RDataError('unterminated quoted string');
      i++;
    }
    out.push({ text, quoted, bytes: Buffer.from(bytes) });
  }
  return out;
}

/** Largest RDATA we accept: well under the 65,535-byte RDLENGTH, so every record fits a message (RFC 1035 §3.2.1). */
export const MAX_RDATA_TEXT = 16 * 1024;

/** Parses one attribute value into RDATA for `type`. Throws RDataError. */
export function parseRData(type: number, value: string): RData {
  if (value.length > MAX_RDATA_TEXT) throw new RDataError(`value longer than ${MAX_RDATA_TEXT} characters`);
  const f = splitFields(value);
  const t = f.map((x) => x.text);
  const need = (n: number) => {
    if (f.length !== n) throw new RDataError(`${RRTYPE_NAME[type]} needs ${n} fields, got ${f.length}: '${value}'`);
  };
  switch (type) {
    case RRTYPE.A:
      need(1);
      if (!net.isIPv4(t[0])) throw new RDataError(`not an IPv4 address: ${t[0]}`);
      return { type: 1, address: t[0] };
    case RRTYPE.AAAA:
      need(1);
      if (!net.isIPv6(t[0]) || t[0].includes('%')) throw new RDataError(`not an IPv6 address: ${t[0]}`);
      return { type: 28, address: t[0] };
    case RRTYPE.NS:
    case RRTYPE.CNAME:
    case RRTYPE.PTR:
      need(1);
      return { type, target: normalizeName(t[0]) };
    case RRTYPE.MX:
      need(2);
      return { type: 15, preference: u16(t[0], 'MX preference'), exchange: normalizeName(t[1]) };
    case RRTYPE.SRV:
      need(4);
      return { type: 33, priority: u16(t[0], 'priority'), weight: u16(t[1], 'weight'), port: u16(t[2], 'port'), target: normalizeName(t[3]) };
    case RRTYPE.TXT: {
      if (f.length === 0) throw new RDataError('empty TXT');
      // Unquoted values (as many LDAP tools write them) are one text; split into <=255-byte strings (RFC 1035 §3.3.14).
      const whole = f.every((x) => x.quoted) ? f.map((x) => x.bytes) : [Buffer.from(value, 'utf8')];
      const strings: Buffer[] = [];
      for (const b of whole) {
        if (b.length === 0) strings.push(b);
        for (let i = 0; i < b.length; i += 255) strings.push(b.subarray(i, i + 255));
      }
      return { type: 16, strings };
    }
    case RRTYPE.CAA: {
      need(3);
      const tag = t[1];
      if (!/^[A-Za-z0-9]{1,15}$/.test(tag)) throw new RDataError(`bad CAA tag: ${tag}`);
      return { type: 257, flags: u8(t[0], 'CAA flags'), tag: tag.toLowerCase(), value: f[2].bytes };
    }
    case RRTYPE.SOA:
      need(7);
      return {
        type: 6, mname: normalizeName(t[0]), rname: normalizeName(t[1]), serial: u32(t[2], 'serial'),
        refresh: u32(t[3], 'refresh'), retry: u32(t[4], 'retry'), expire: u32(t[5], 'expire'), minimum: u32(t[6], 'minimum'),
      };
    case RRTYPE.HINFO:
      need(2);
      if (f[0].bytes.length > 255 || f[1].bytes.length > 255) throw new RDataError('HINFO strings are at most 255 bytes');
      return { type: 13, cpu: f[0].bytes, os: f[1].bytes };
    case RRTYPE.SSHFP:
      need(3);
      if (!/^[0-9a-fA-F]+$/.test(t[2]) || t[2].length % 2) throw new RDataError('bad SSHFP fingerprint');
      return { type: 44, algorithm: u8(t[0], 'algorithm'), fptype: u8(t[1], 'fp type'), fingerprint: Buffer.from(t[2], 'hex') };
    case RRTYPE.TLSA:
      need(4);
      if (!/^[0-9a-fA-F]+$/.test(t[3]) || t[3].length % 2) throw new RDataError('bad TLSA data');
      return { type: 52, usage: u8(t[0], 'usage'), selector: u8(t[1], 'selector'), matching: u8(t[2], 'matching type'), data: Buffer.from(t[3], 'hex') };
    case RRTYPE.DS:
    case RRTYPE.CDS: {
      if (f.length < 4) throw new RDataError(`${RRTYPE_NAME[type]} needs key tag, algorithm, digest type and digest: '${value}'`);
      const algorithm = u8(t[1], 'algorithm');
      const hex = t.slice(3).join('');
      // RFC 8078 §4 (erratum 5049): the delete CDS is `0 0 0 00`; `0 0 0 0` is accepted for it too.
      const digest = algorithm === 0 && /^0{1,2}$/.test(hex) ? Buffer.alloc(1) : hexField(hex, 'digest');
      return { type, keyTag: u16(t[0], 'key tag'), algorithm, digestType: u8(t[2], 'digest type'), digest };
    }
    case RRTYPE.DNSKEY:
    case RRTYPE.CDNSKEY: {
      if (f.length < 4) throw new RDataError(`${RRTYPE_NAME[type]} needs flags, protocol, algorithm and key: '${value}'`);
      const algorithm = u8(t[2], 'algorithm');
      const b64 = t.slice(3).join('');
      // RFC 8078 §4 (erratum 5049): the delete CDNSKEY is `0 3 0 AA==`; `0 3 0 0` is accepted for it too.
      const publicKey = algorithm === 0 && b64 === '0' ? Buffer.alloc(1) : base64Field(b64, 'public key');
      return { type, flags: u16(t[0], 'flags'), protocol: u8(t[1], 'protocol'), algorithm, publicKey };
    }
    case RRTYPE.RRSIG: {
      if (f.length < 9) throw new RDataError(`RRSIG needs 9 fields, got ${f.length}: '${value}'`);
      const typeCovered = typeCode(t[0]);
      if (typeCovered === undefined) throw new RDataError(`unknown type covered: ${t[0]}`);
      return {
        type: 46, typeCovered, algorithm: u8(t[1], 'algorithm'), labels: u8(t[2], 'labels'), originalTtl: u32(t[3], 'original TTL'),
        expiration: sigTime(t[4]), inception: sigTime(t[5]), keyTag: u16(t[6], 'key tag'), signer: normalizeName(t[7]),
        signature: base64Field(t.slice(8).join(''), 'signature'),
      };
    }
    case RRTYPE.NSEC: {
      if (f.length < 1) throw new RDataError('NSEC needs a next name');
      const types: number[] = [];
      for (const m of t.slice(1)) {
        const c = typeCode(m);
        if (c === undefined) throw new RDataError(`unknown type in NSEC bitmap: ${m}`);
        if (!types.includes(c)) types.push(c);
      }
      return { type: 47, next: normalizeNsecNext(t[0]), types: types.sort((a, b) => a - b) };
    }
    default:
      throw new RDataError(`unsupported type ${type}`);
  }
}

function hexField(s: string, what: string): Buffer {
  if (!/^[0-9a-fA-F]+$/.test(s) || s.length % 2) throw new RDataError(`bad ${what}: not hexadecimal`);
  return Buffer.from(s, 'hex');
}

function base64Field(s: string, what: string): Buffer {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(s) || s.length % 4) throw new RDataError(`bad ${what}: not base64`);
  return Buffer.from(s, 'base64');
}

/** RFC 4034 §3.2: YYYYMMDDHHmmSS (UTC), or seconds since the epoch as a decimal number. */
function sigTime(s: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(s);
  if (m) {
    const ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
    if (Number.isNaN(ms)) throw new RDataError(`bad signature time: ${s}`);
    return (ms / 1000) % 0x100000000;
  }
  return u32(s, 'signature time');
}

/** YYYYMMDDHHmmSS of a signature time (RFC 4034 §3.2). */
function sigTimeText(t: number): string {
  return new Date(t * 1000).toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/**
 * The NSEC next name. Compact denial (RFC 9824 §3.1) uses the owner with a
 * first label of one zero octet, which no directory name has; it is kept in
 * presentation form, `\\000.<owner>` (RFC 1035 §5.1), as the wire encoder reads it.
 */
function normalizeNsecNext(s: string): string {
  // splitFields has already turned the \\000 escape into the character U+0000.
  return s.startsWith('\u0000.') ? '\\000.' + normalizeName(s.slice(2)) : normalizeName(s);
}

function quote(b: Buffer): string {
  let s = '"';
  for (const x of b) {
    if (x === 0x22 || x === 0x5c) s += '\\' + String.fromCharCode(x);
    else if (x < 0x20 || x > 0x7e) s += '\\' + String(x).padStart(3, '0');
    else s += String.fromCharCode(x);
  }
  return s + '"';
}

/** A name in master-file form (absolute, trailing dot). */
export function fqdn(name: string): string {
  return name === '' ? '.' : name + '.';
}

/** Formats RDATA in master-file syntax (RFC 1035 §5.1), names absolute. */
export function formatRData(r: RData): string {
  switch (r.type) {
    case 1:
    case 28:
      return r.address;
    case 2:
    case 5:
    case 12:
      return fqdn(r.target);
    case 15:
      return `${r.preference} ${fqdn(r.exchange)}`;
    case 16:
      return r.strings.map(quote).join(' ');
    case 33:
      return `${r.priority} ${r.weight} ${r.port} ${fqdn(r.target)}`;
    case 257:
      return `${r.flags} ${r.tag} ${quote(r.value)}`;
    case 6:
      return `${fqdn(r.mname)} ${fqdn(r.rname)} ${r.serial} ${r.refresh} ${r.retry} ${r.expire} ${r.minimum}`;
    case 13:
      return `${quote(r.cpu)} ${quote(r.os)}`;
    case 44:
      return `${r.algorithm} ${r.fptype} ${r.fingerprint.toString('hex').toUpperCase()}`;
    case 52:
      return `${r.usage} ${r.selector} ${r.matching} ${r.data.toString('hex').toUpperCase()}`;
    case 43:
    case 59:
      return `${r.keyTag} ${r.algorithm} ${r.digestType} ${r.digest.toString('hex').toUpperCase()}`;
    case 48:
    case 60:
      return `${r.flags} ${r.protocol} ${r.algorithm} ${r.publicKey.toString('base64')}`;
    case 46:
      return `${typeName(r.typeCovered)} ${r.algorithm} ${r.labels} ${r.originalTtl} ${sigTimeText(r.expiration)} ${sigTimeText(r.inception)} ` +
        `${r.keyTag} ${fqdn(r.signer)} ${r.signature.toString('base64')}`;
    case 47:
      return [fqdn(r.next), ...r.types.map(typeName)].join(' ');
  }
}

/** The mnemonic of a type, or TYPEnnn (RFC 3597 §5). */
export function typeName(code: number): string {
  return RRTYPE_NAME[code] ?? `TYPE${code}`;
}

/** One line of a master file: `name. ttl IN TYPE rdata`. */
export function formatRR(rr: RR): string {
  return `${fqdn(rr.name)}\t${rr.ttl}\tIN\t${typeName(rr.rdata.type)}\t${formatRData(rr.rdata)}`;
}

/** Type code for a presentation name ('MX' → 15), or undefined. */
export function typeCode(name: string): number | undefined {
  const u = name.toUpperCase();
  const generic = /^TYPE(\d{1,5})$/.exec(u);
  if (generic && Number(generic[1]) <= 65535) return Number(generic[1]);
  return (RRTYPE as Record<string, number>)[u];
}

/** Parses a line produced by formatRR back into an RR. Throws RDataError. */
export function parseRRLine(line: string): RR {
  const m = /^(\S+)\t(\d+)\tIN\t(\S+)\t(.*)$/.exec(line);
  if (!m) throw new RDataError(`not an RR line: ${line}`);
  const type = typeCode(m[3]);
  if (type === undefined) throw new RDataError(`unknown type ${m[3]}`);
  // Owners are directory names (any label zones.ts accepts, e.g. 'a+b'), not just host names as in RDATA.
  const owner = m[1] === '.' ? '' : m[1].toLowerCase().replace(/\.$/, '');
  const badLabel = owner !== '' && owner.split('.').some((l) => l === '' || l.length > 63);
  if (owner.length > 253 || badLabel) throw new RDataError(`bad owner ${m[1]}`);
  return { name: owner, ttl: Number(m[2]), rdata: parseRData(type, m[4]) };
}
