/**
 * DNSSEC keys of the zones served here, as they live in the directory, and
 * the records made from them (RFC 4033–4035, RFC 6605, RFC 7344, RFC 8078).
 *
 * Each signed zone has one combined signing key (CSK: DNSKEY flags 257,
 * SEP set, RFC 4034 §2.1.1) of algorithm 13, ECDSA P-256 with SHA-256
 * (RFC 6605). Its private key is kept on the zone's apex entry, auxiliary
 * class `dnssecZone`, attribute `dnssecPrivateKey` (PKCS#8 PEM), which the
 * access policy shows to the administrator and the replication identities
 * only (access.ts). `dnssecWithdrawal` (a GeneralizedTime) marks a zone
 * whose signing is being withdrawn (DCMX_DNSSEC=off): it still signs, but
 * publishes the RFC 8078 §4 delete CDS/CDNSKEY, and its hosted parent no
 * longer serves its DS; once the grace period has passed the key goes
 * (dnssec-state.ts).
 *
 * Nothing of DNSKEY, CDS, CDNSKEY or the DS of a hosted child is stored: the
 * zone view (zones.ts) makes them from the key as it is read.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { RData, RR } from './records';

/** DNSKEY and CDNSKEY RDATA (RFC 4034 §2.1, RFC 7344 §3.2). */
export type DnskeyRData = Extract<RData, { type: 48 | 60 }>;
/** DS and CDS RDATA (RFC 4034 §5.1, RFC 7344 §3.1). */
export type DsRData = Extract<RData, { type: 43 | 59 }>;

/** ECDSA Curve P-256 with SHA-256 (RFC 6605 §2; RFC 8624 §3.1: MUST sign, RECOMMENDED). */
export const ALGORITHM_ECDSAP256SHA256 = 13;
/** DNSKEY flags of a combined signing key: Zone Key (bit 7) and Secure Entry Point (bit 15), RFC 4034 §2.1.1. */
export const CSK_FLAGS = 257;
/** DS digest type SHA-256 (RFC 4509 §2.2; RFC 8624 §3.3: MUST). */
export const DIGEST_SHA256 = 2;

/** The delete CDS, `0 0 0 00` (RFC 8078 §4, erratum 5049): the parent is asked to remove every DS. */
export const CDS_DELETE: DsRData = Object.freeze({ type: 59, keyTag: 0, algorithm: 0, digestType: 0, digest: Buffer.alloc(1) });
/** The delete CDNSKEY, `0 3 0 AA==` (RFC 8078 §4, erratum 5049). */
export const CDNSKEY_DELETE: DnskeyRData = Object.freeze({ type: 60, flags: 0, protocol: 3, algorithm: 0, publicKey: Buffer.alloc(1) });

/** A zone's key, ready to sign with. */
export interface SigningKey {
  privateKey: KeyObject;
  /** Its DNSKEY RDATA (type 48). */
  dnskey: DnskeyRData;
  /** RFC 4034 Appendix B, as RRSIG and DS name it. */
  keyTag: number;
}

/** A zone's signing state: its keys, and whether its signing is being withdrawn (RFC 8078 §4). */
export interface ZoneSigning {
  keys: SigningKey[];
  withdrawing: boolean;
}

/** Makes a new zone key: an ECDSA P-256 private key in PKCS#8 PEM (fast enough to make inside the write transaction). */
export function generateZoneKey(): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
}

/**
 * The DNSKEY RDATA of a P-256 public key (or of the public half of a
 * private one): protocol 3, algorithm 13, and the public key as the 64
 * octets x | y of the point (RFC 6605 §4). Throws for any other key.
 */
export function dnskeyOf(publicKey: KeyObject, flags = CSK_FLAGS): DnskeyRData & { type: 48 } {
  const pub = publicKey.type === 'private' ? createPublicKey(publicKey) : publicKey;
  const jwk = pub.export({ format: 'jwk' });
  if (pub.asymmetricKeyType !== 'ec' || jwk.crv !== 'P-256' || !jwk.x || !jwk.y) {
    throw new Error(`not an ECDSA P-256 key (${pub.asymmetricKeyType}${jwk.crv ? ' ' + jwk.crv : ''})`);
  }
  const point = Buffer.concat([Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]);
  return { type: 48, flags, protocol: 3, algorithm: ALGORITHM_ECDSAP256SHA256, publicKey: point };
}

/** The DNSKEY RDATA in wire form (RFC 4034 §2.1): flags, protocol, algorithm, public key. */
export function dnskeyWire(k: DnskeyRData): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt16BE(k.flags, 0);
  head[2] = k.protocol;
  head[3] = k.algorithm;
  return Buffer.concat([head, k.publicKey]);
}

/** The key tag of a DNSKEY (RFC 4034 Appendix B: the ones' complement-like sum over its RDATA; not for algorithm 1). */
export function keyTag(k: DnskeyRData): number {
  const rdata = dnskeyWire(k);
  let ac = 0;
  for (let i = 0; i < rdata.length; i++) ac += i & 1 ? rdata[i] : rdata[i] << 8;
  ac += (ac >>> 16) & 0xffff;
  return ac & 0xffff;
}

/**
 * A name in canonical wire form (RFC 4034 §6.2): uncompressed, lower case.
 * `name` is in presentation form without the trailing dot ('' is the root),
 * labels free of escapes, as every name of the zone view is (zones.ts
 * dnsLabelProblem).
 */
export function canonicalNameWire(name: string): Buffer {
  const parts: Buffer[] = [];
  for (const label of name === '' ? [] : name.toLowerCase().split('.')) {
    const b = Buffer.from(label, 'latin1');
    parts.push(Buffer.from([b.length]), b);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

const DIGESTS: Record<number, string> = { 1: 'sha1', [DIGEST_SHA256]: 'sha256', 4: 'sha384' };

/**
 * The DS RDATA for the DNSKEY `k` of the zone `owner` (RFC 4034 §5.1.4):
 * digest = hash(canonical owner name | DNSKEY RDATA), with digest type 2,
 * SHA-256 (RFC 4509) by default; 1 (SHA-1) and 4 (SHA-384, RFC 6605) are
 * made on request. Throws on another digest type.
 */
export function dsOf(owner: string, k: DnskeyRData, digestType = DIGEST_SHA256): DsRData & { type: 43 } {
  const alg = DIGESTS[digestType];
  if (!alg) throw new Error(`unsupported DS digest type ${digestType}`);
  const digest = createHash(alg).update(canonicalNameWire(owner)).update(dnskeyWire(k)).digest();
  return { type: 43, keyTag: keyTag(k), algorithm: k.algorithm, digestType, digest };
}

/** A stored private key (PKCS#8 PEM) as a SigningKey. Throws when it is no ECDSA P-256 private key. */
export function signingKeyOf(pem: string): SigningKey {
  const privateKey = createPrivateKey(pem);
  const dnskey = dnskeyOf(privateKey);
  return { privateKey, dnskey, keyTag: keyTag(dnskey) };
}

/**
 * The records a signed zone publishes at its apex about its keys: a DNSKEY
 * per key, and for the parent CDS (SHA-256) and CDNSKEY per key (RFC 7344
 * §4), or, while the signing is withdrawn, the delete CDS and CDNSKEY
 * (RFC 8078 §4) instead. Owned by `zone`, with `ttl`.
 */
export function apexKeyRecords(zone: string, s: ZoneSigning, ttl: number): RR[] {
  const out: RR[] = s.keys.map((k) => ({ name: zone, ttl, rdata: k.dnskey }));
  if (s.withdrawing) {
    out.push({ name: zone, ttl, rdata: CDS_DELETE }, { name: zone, ttl, rdata: CDNSKEY_DELETE });
    return out;
  }
  for (const k of s.keys) out.push({ name: zone, ttl, rdata: { ...dsOf(zone, k.dnskey), type: 59 } });
  for (const k of s.keys) out.push({ name: zone, ttl, rdata: { ...k.dnskey, type: 60 } });
  return out;
}

/** The DS RRset the parent serves for a signed child zone `zone` (none while its signing is withdrawn: RFC 8078 §4). */
export function childDsRecords(zone: string, s: ZoneSigning, ttl: number): RR[] {
  return s.withdrawing ? [] : s.keys.map((k) => ({ name: zone, ttl, rdata: dsOf(zone, k.dnskey) }));
}

/** Attribute holding a signed zone's private keys (PKCS#8 PEM), on its apex entry. */
export const KEY_ATTRIBUTE = 'dnssecPrivateKey';
/** Attribute marking a withdrawal (GeneralizedTime of its start), on the apex entry. */
export const WITHDRAWAL_ATTRIBUTE = 'dnssecWithdrawal';
/** The auxiliary class of a signed zone's apex. */
export const ZONE_KEY_CLASS = 'dnssecZone';

/**
 * Parses the signing state of an apex entry's attributes, with `parse`
 * turning one PEM into a key (a cache, in the zone view). Undefined when
 * the entry holds no usable key: the zone is unsigned. A value that does
 * not parse is left out (the write path refuses such values).
 */
export function zoneSigningOf(attrs: Record<string, string[]>, parse: (pem: string) => SigningKey | undefined = tryKey): ZoneSigning | undefined {
  const pems = attrs[KEY_ATTRIBUTE];
  if (!pems?.length) return undefined;
  const keys: SigningKey[] = [];
  for (const p of pems) {
    const k = parse(p);
    if (k) keys.push(k);
  }
  if (keys.length === 0) return undefined;
  keys.sort((a, b) => a.keyTag - b.keyTag);
  return { keys, withdrawing: !!attrs[WITHDRAWAL_ATTRIBUTE]?.length };
}

function tryKey(pem: string): SigningKey | undefined {
  try {
    return signingKeyOf(pem);
  } catch {
    return undefined;
  }
}
