/**
 * DNSSEC signatures over RRsets (RFC 4034 §3, §6; RFC 4035 §2.2), made with
 * ECDSA P-256/SHA-256 (algorithm 13, RFC 6605), for online signing of
 * answers and for signed zone transfers.
 *
 * A signature covers the RRSIG RDATA without its Signature field followed by
 * the RRset in canonical form (RFC 4034 §3.1.8.1): owner lower case and
 * uncompressed, class IN, the original TTL, RDATA in canonical form, the RRs
 * sorted by their canonical RDATA and without duplicates (§6.2–6.3).
 *
 * Validity (the design of issue 13): inception one hour back, expiration 14
 * days ahead, both rounded down to the hour, so signatures made within the
 * same hour are identical in all but the ECDSA nonce. {@link SignCache} keeps
 * a signature until its RRset changes or it is a day old, so a cached
 * signature always has 13 days or more to run.
 */
import { sign as ecdsaSign, type KeyObject } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { RData, RR } from '../directory/records';
import { ALGORITHM_ECDSAP256SHA256 } from '../directory/dnssec-keys';
import { canonicalName, canonicalRData } from './wire';
import { lazily } from '../lazy';

/** RRSIG RDATA (RFC 4034 §3.1). */
export type RrsigData = Extract<RData, { type: 46 }>;

/** An RRSIG RR. */
export type RrsigRR = RR & { rdata: RrsigData };

/** What signing needs of a zone's key: the P-256 private key and the key tag of its DNSKEY (RFC 4034 Appendix B). */
export interface SignerKey {
  privateKey: KeyObject;
  keyTag: number;
}

/** Seconds a signature is valid before the moment it is made (clock skew of validators), before rounding. */
export const INCEPTION_BACK = 3600;
/** Seconds a signature is valid after the moment it is made, before rounding. */
export const VALIDITY = 14 * 86400;
/** A cached signature older than this is made again (RFC 6781 §4.4.2: re-sign well before expiry). */
export const RESIGN_AFTER = 86400;

const HOUR = 3600;
const TYPE_RRSIG = 46;

/** The validity window of a signature made at `now` (seconds since the epoch): both ends rounded down to the hour. */
export function validity(now: number): { inception: number; expiration: number } {
  return {
    inception: Math.floor((now - INCEPTION_BACK) / HOUR) * HOUR,
    expiration: Math.floor((now + VALIDITY) / HOUR) * HOUR,
  };
}

/**
 * The Labels field for an owner name (RFC 4034 §3.1.3): its labels, not
 * counting the root nor a leading wildcard label `*`. `name` is in
 * presentation form without the trailing dot ('' is the root); escaped dots
 * (`\.`) do not separate labels.
 */
export function labelCount(name: string): number {
  if (name === '' || name === '.') return 0;
  let n = 1;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x5c) i++; // `\X` or `\DDD`: the next character is never a separator
    else if (c === 0x2e && i < name.length - 1) n++;
  }
  return name === '*' || name.startsWith('*.') ? n - 1 : n;
}

/** u16 TYPE, u16 CLASS IN, u32 TTL, u16 RDLENGTH. */
function rrHeader(type: number, ttl: number, rdlength: number): Buffer {
  const b = Buffer.allocUnsafe(10);
  b.writeUInt16BE(type, 0);
  b.writeUInt16BE(1, 2);
  b.writeUInt32BE(ttl >>> 0, 4);
  b.writeUInt16BE(rdlength, 8);
  return b;
}

/**
 * An RRset in canonical form (RFC 4034 §6.2–6.3) as it enters a signature
 * (§3.1.8.1): for each RR, sorted by canonical RDATA (unsigned octet
 * order, a shorter prefix first) and without duplicates, owner | type |
 * class | `originalTtl` | RDLENGTH | RDATA. `owner` is the name as signed:
 * for a wildcard expansion the wildcard name (`*.` + the last `labels` labels),
 * here always the RRs' own owner since dcmx signs synthesized answers under
 * the query name. Throws TypeError for an empty or mixed RRset.
 */
export function canonicalRRset(rrs: readonly RR[], originalTtl = rrs[0]?.ttl ?? 0): Buffer {
  if (rrs.length === 0) throw new TypeError('dnssec: an empty RRset cannot be signed');
  const owner = rrs[0].name;
  const type = rrs[0].rdata.type;
  const rdatas: Buffer[] = [];
  for (const rr of rrs) {
    if (rr.name !== owner || rr.rdata.type !== type) throw new TypeError(`dnssec: ${rr.name}/${rr.rdata.type} is not in the RRset ${owner}/${type}`);
    rdatas.push(canonicalRData(rr.rdata, owner));
  }
  rdatas.sort(Buffer.compare);
  const ownerWire = canonicalName(owner);
  const parts: Buffer[] = [];
  for (let i = 0; i < rdatas.length; i++) {
    if (i > 0 && rdatas[i].equals(rdatas[i - 1])) continue; // RFC 4034 §6.3: duplicates are removed
    parts.push(ownerWire, rrHeader(type, originalTtl, rdatas[i].length), rdatas[i]);
  }
  return Buffer.concat(parts);
}

/** The RRSIG RDATA fields before the Signature (RFC 4034 §3.1.8.1), the signer's name canonical. */
function rrsigPrefix(d: Omit<RrsigData, 'signature'>): Buffer {
  const fixed = Buffer.allocUnsafe(18);
  fixed.writeUInt16BE(d.typeCovered, 0);
  fixed[2] = d.algorithm;
  fixed[3] = d.labels;
  fixed.writeUInt32BE(d.originalTtl >>> 0, 4);
  fixed.writeUInt32BE(d.expiration >>> 0, 8);
  fixed.writeUInt32BE(d.inception >>> 0, 12);
  fixed.writeUInt16BE(d.keyTag, 16);
  return Buffer.concat([fixed, canonicalName(d.signer)]);
}

/**
 * The signature input of RFC 4034 §3.1.8.1: RRSIG RDATA without the
 * signature, then the RRset in canonical form with the RRSIG's original TTL.
 */
export function signatureInput(rrsig: Omit<RrsigData, 'signature'>, rrs: readonly RR[]): Buffer {
  return Buffer.concat([rrsigPrefix(rrsig), canonicalRRset(rrs, rrsig.originalTtl)]);
}

/**
 * Signs one RRset (all RRs with one owner and type) for zone `signer` with
 * `key` at `now` (seconds since the epoch; the clock when omitted). The
 * RRSIG covers the RRs' own owner (labels per RFC 4034 §3.1.3), has their TTL
 * as original TTL and as its own TTL (RFC 4034 §3), unless `originalTtl`
 * says the TTL in the zone is another (a negative answer's SOA, RFC 2308
 * §5). The signature is r | s, 64 octets (RFC 6605 §4). Throws TypeError
 * for an empty or mixed RRset or a key that is not an EC key.
 */
export function signRRset(rrs: readonly RR[], key: SignerKey, signer: string, now = Date.now() / 1000, originalTtl?: number): RrsigRR {
  if (rrs.length === 0) throw new TypeError('dnssec: an empty RRset cannot be signed');
  const orig = originalTtl ?? rrs[0].ttl;
  return signCanonical(rrs, canonicalRRset(rrs, orig), key, signer, now, orig);
}

/** {@link signRRset} with the RRset's canonical form at hand. */
function signCanonical(rrs: readonly RR[], covered: Buffer, key: SignerKey, signer: string, now: number, originalTtl: number): RrsigRR {
  if (key.privateKey.asymmetricKeyType !== 'ec') throw new TypeError('dnssec: algorithm 13 needs an EC P-256 key');
  const { inception, expiration } = validity(now);
  const fields = {
    type: TYPE_RRSIG as 46, typeCovered: rrs[0].rdata.type, algorithm: ALGORITHM_ECDSAP256SHA256, labels: labelCount(rrs[0].name),
    originalTtl, expiration, inception, keyTag: key.keyTag, signer,
  };
  // RFC 6605 §4: the signature is r and s, each 32 octets, big-endian (IEEE P1363), not DER.
  const signature = ecdsaSign('sha256', Buffer.concat([rrsigPrefix(fields), covered]), { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  return { name: rrs[0].name, ttl: rrs[0].ttl, rdata: { ...fields, signature } };
}

/** A number per private key object, for sign cache keys (a KeyObject is kept per PEM by the zone view). */
const keyIds = new WeakMap<KeyObject, number>();
let nextKeyId = 0;

function keyId(k: KeyObject): number {
  let id = keyIds.get(k);
  if (id === undefined) keyIds.set(k, (id = nextKeyId++));
  return id;
}

interface CachedSignature {
  /** The canonical RRset the signature covers (with its original TTL): a changed RRset never finds an old signature. */
  covered: Buffer;
  /** When it was made (seconds since the epoch). */
  made: number;
  rrsig: RrsigRR;
}

/**
 * Signatures by (zone, owner, type, key: the key itself, not just its tag,
 * RFC 4034 Appendix B), each kept while the RRset it covers is the same,
 * byte for byte in canonical form, and for at most
 * {@link RESIGN_AFTER} seconds. Comparing the covered data rather than
 * trusting a zone serial keeps "a query after a write's reply sees the
 * write" true for signatures whatever changed the data (a child's DS, a
 * key), and lets signatures of RRsets a write left alone survive it.
 * Bounded (LRU); one per thread.
 */
export class SignCache {
  /** Made at the first signature: an LRUCache allocates its slots up front (~1.5 MiB), which unsigned zones need not hold. */
  private readonly cache: () => LRUCache<string, CachedSignature>;
  /** Signatures made and found, for benchmarks and the admin API. */
  readonly stats = { signed: 0, hits: 0 };

  constructor(max = 50_000) {
    this.cache = lazily(() => new LRUCache<string, CachedSignature>({ max }));
  }

  /**
   * The RRSIG over `rrs` by `key` for zone `signer`, cached; see
   * {@link signRRset} for the arguments. The RRSIG's TTL is the RRs' TTL.
   */
  sign(rrs: readonly RR[], key: SignerKey, signer: string, now = Date.now() / 1000, originalTtl?: number): RrsigRR {
    const ttl = rrs[0].ttl;
    const orig = originalTtl ?? ttl;
    // By the key itself, not only its tag: key tags collide (RFC 4034 Appendix B), and a new key with an old
    // key's tag must never be served the old key's signatures.
    const k = `${signer}\u0000${rrs[0].name}\u0000${rrs[0].rdata.type}\u0000${key.keyTag}\u0000${keyId(key.privateKey)}`;
    const covered = canonicalRRset(rrs, orig);
    const hit = this.cache().get(k);
    if (hit && now - hit.made < RESIGN_AFTER && now >= hit.made && hit.covered.equals(covered)) {
      this.stats.hits++;
      return hit.rrsig.ttl === ttl ? hit.rrsig : { ...hit.rrsig, ttl };
    }
    const rrsig = signCanonical(rrs, covered, key, signer, now, orig);
    this.stats.signed++;
    this.cache().set(k, { covered, made: now, rrsig });
    return rrsig;
  }

  /** Forgets every signature (a key withdrawn: nothing signed with it may be served again). */
  clear(): void {
    this.cache().clear();
  }
}
