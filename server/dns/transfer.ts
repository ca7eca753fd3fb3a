/**
 * Zone transfers over TCP: AXFR (RFC 5936) and IXFR (RFC 1995), to clients
 * in DCMX_AXFR_ALLOW only.
 *
 * AXFR sends the SOA, every record, and the SOA again. IXFR is answered from
 * the zone journal when it covers the client's serial (deltas: old SOA,
 * removed records, new SOA, added records), with the single current SOA when
 * the client is up to date or newer (RFC 1995 §2), and otherwise with the
 * whole zone in AXFR form, which RFC 1995 §4 allows. An IXFR without the
 * client's SOA never gets here: answers.ts answers it FORMERR (RFC 1995 §3).
 *
 * The whole zone in AXFR form is built and encoded once per version of the
 * zone and shared by every transfer of that version (a burst of AXFRs from
 * secondaries after a NOTIFY, or one client pipelining hundreds of them,
 * costs one zone walk, not hundreds). A version is the zone's SOA serial,
 * which every write touching the zone bumps in its transaction. Each change
 * to DNS data this thread follows (Zones.onDnsChange, as for the answer
 * cache, answer-cache.ts) drops the versions it can change, and those
 * only: of each zone at or above a name it touches (the zone that holds the
 * name; above it, a parent whose cut, glue or DS a new, changed or removed
 * apex below it alters), of the catalog zone when an apex may have come or
 * gone (RFC 9432 §4.1), of every zone after a rename or a gap in the change
 * log. A write to one zone thus leaves the others' encodings to their
 * secondaries.
 *
 * A signed zone (Zones.signingOf) goes out signed, with its classic NSEC
 * chain and RRSIGs (signed-zone.ts), so that a secondary serves it as it
 * is: signed once per version and kept like any snapshot, and signed again
 * once the snapshot is RESIGN_AFTER old (dnssec-sign.ts), so that a
 * transfer never carries signatures near their expiry. Signatures come
 * through a sign cache of the transfers' own (SignCache: by RRset, kept
 * while the RRset is the same and for RESIGN_AFTER): a new version of a big
 * zone re-signs only the RRsets and NSEC records that changed, and a
 * transferred signature is at most 2 × RESIGN_AFTER old. It is not the
 * answerer's, so that signing a big zone does not evict the signatures
 * that online answers reuse. An IXFR for a signed
 * zone gets the whole zone (RFC 1995 §4): the journal holds the unsigned
 * deltas, and the signatures and NSEC records a delta would touch are not
 * journaled.
 */
import type { BlockList } from 'node:net';
import { LRUCache } from 'lru-cache';
import { inCidrList } from '../net';
import { serialGreater, type DnsChange, type Zones } from '../directory/zones';
import type { Logger } from '../log';
import { parseRRLine, RDataError, type RR } from '../directory/records';
import { encodeResponse, encodeTransfer } from './wire';
import { RESIGN_AFTER, SignCache } from './dnssec-sign';
import { signedZone } from './signed-zone';
import { OUR_UDP_SIZE, RCODE, type TransferRequest } from './answers';

const TYPE_AXFR = 252;
const CLASS_IN = 1;

/**
 * The messages that answer one transfer request, without TCP length
 * prefixes. They may be shared with other transfers and must not be
 * modified: each goes out with its header ID set to `id` (the request's).
 */
export interface TransferReply {
  messages: readonly Buffer[];
  id: number;
}

/** One version of a zone in AXFR form: its SOA, and the messages with a canonical question and ID 0. */
interface Snapshot {
  version: string;
  soa: RR;
  /** The question of the first message: the zone name in lower case, AXFR, IN. */
  questionWire: Buffer;
  messages: Buffer[];
  bytes: number;
  /** For a signed zone: when its signatures were made (seconds since the epoch). */
  signedAt?: number;
}

/** Bytes of encoded zones a process keeps for transfers (divided among its serving threads). */
export const TRANSFER_CACHE_BYTES = 32 * 1024 * 1024;

/** Answers transfer requests for one store's zones, with the AXFR-form cache described above. */
export class Transfers {
  private readonly cache: LRUCache<string, Snapshot>;

  /** Signatures of signed zones' RRsets, reused across versions. */
  private readonly signatures = new SignCache();

  /** `cacheBytes` bounds the encoded zones kept (a larger zone is encoded per request). */
  constructor(
    private readonly zones: Zones,
    private readonly allow: BlockList,
    private readonly log?: Logger,
    cacheBytes = TRANSFER_CACHE_BYTES,
  ) {
    this.cache = new LRUCache({ maxSize: Math.max(1, cacheBytes), sizeCalculation: (s) => Math.max(1, s.bytes) });
    zones.onDnsChange((c) => this.forget(c));
  }

  /** Drops the versions `c` can change (see the module comment). */
  private forget(c: DnsChange): void {
    if (c.all || c.renamed.size) {
      this.cache.clear(); // a rename moves a whole subtree, zones and all
      return;
    }
    for (const name of c.names) {
      for (let z: string | undefined = name; z !== undefined; z = parentOf(z)) this.cache.delete(z);
    }
    const catalog = this.zones.catalog;
    if (catalog !== undefined && (c.soa.size || c.zoneWide.size)) this.cache.delete(catalog);
  }

  /**
   * The reply to a transfer request from `remote`. Entries whose dc chain is
   * not a DNS name (old data) are left out and logged. Throws if the zone
   * cannot be encoded; the transport answers SERVFAIL then.
   */
  answer(req: TransferRequest, remote: string): TransferReply {
    const q = req.query;
    const refuse = (): TransferReply => ({
      id: q.id,
      messages: [encodeResponse({
        id: q.id, opcode: q.opcode, aa: false, rd: q.rd, cd: q.cd, rcode: RCODE.REFUSED, question: q.question,
        questionWire: q.questionWire, answer: [], authority: [], additional: [], edns: q.edns ? { udpSize: OUR_UDP_SIZE, do: q.edns.do } : undefined,
      }, 65535)],
    });
    if (!inCidrList(this.allow, remote)) return refuse();
    const snap = this.snapshot(req.zone);
    if (!snap) return refuse();
    const soa = snap.soa;
    const current = soa.rdata.type === 6 ? soa.rdata.serial : 0;
    if (req.kind === 'ixfr' && q.authoritySoaSerial !== undefined) {
      if (q.authoritySoaSerial === current || serialGreater(q.authoritySoaSerial, current)) {
        // RFC 1995 §2: a client at the same or a newer version (RFC 1982 order) gets the single current SOA.
        return { id: q.id, messages: encodeTransfer(q.id, q.question, q.questionWire, [soa]) };
      }
      const deltas = snap.signedAt === undefined ? incremental(this.zones, req.zone, soa, q.authoritySoaSerial) : undefined;
      if (deltas) return { id: q.id, messages: encodeTransfer(q.id, q.question, q.questionWire, deltas) };
    }
    // The whole zone: the shared messages, the first one with the client's question (its case, AXFR or IXFR).
    if (!sameName(q.questionWire, snap.questionWire)) return refuse(); // not the zone's name on the wire
    const first = Buffer.from(snap.messages[0]);
    q.questionWire.copy(first, 12);
    first.writeUInt16BE(q.id, 0);
    return { id: q.id, messages: [first, ...snap.messages.slice(1)] };
  }

  /** The zone in AXFR form at its current version, built when the cache does not hold it; undefined when it is no zone now. */
  private snapshot(zone: string): Snapshot | undefined {
    const apex = this.zones.zoneOf(zone);
    if (apex?.name !== zone) {
      this.cache.delete(zone);
      return undefined;
    }
    const version = String(apex.soa.rdata.serial);
    const now = Date.now() / 1000;
    const hit = this.cache.get(zone);
    if (hit?.version === version && (hit.signedAt === undefined || (now >= hit.signedAt && now - hit.signedAt < RESIGN_AFTER))) return hit;
    const contents = this.zones.zoneContents(zone);
    if (!contents) {
      this.cache.delete(zone);
      return undefined;
    }
    for (const s of contents.skipped) this.log?.warn({ zone, dn: s.dn, problem: s.problem }, 'dns transfer: entry left out, not a DNS name');
    const soa = contents.rrs[0];
    const signing = this.zones.signingOf(zone);
    const rrs = signing ? signedZone(contents.rrs, zone, signing.keys, now, (set, key, z, at) => this.signatures.sign(set, key, z, at)) : contents.rrs;
    const questionWire = canonicalQuestion(zone);
    const messages = encodeTransfer(0, undefined, questionWire, [...rrs, soa]);
    const snap: Snapshot = { version, soa, questionWire, messages, bytes: messages.reduce((n, m) => n + m.length, 0), signedAt: signing ? now : undefined };
    this.cache.set(zone, snap);
    return snap;
  }
}

/** The name one label up, or undefined at a top-level name. */
function parentOf(name: string): string | undefined {
  const dot = name.indexOf('.');
  return dot < 0 ? undefined : name.slice(dot + 1);
}

/** `<zone> AXFR IN` in wire form, the name in lower case. */
function canonicalQuestion(zone: string): Buffer {
  const labels = zone === '' ? [] : zone.toLowerCase().split('.').map((l) => Buffer.from(l, 'latin1'));
  const tail = Buffer.from([0, TYPE_AXFR >> 8, TYPE_AXFR & 255, CLASS_IN >> 8, CLASS_IN & 255]);
  return Buffer.concat([...labels.flatMap((l) => [Buffer.from([l.length]), l]), tail]);
}

/** Do two questions name the same name (ASCII case folded, RFC 4343)? Type and class are not compared. */
function sameName(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length - 4; i++) {
    const x = a[i] >= 0x41 && a[i] <= 0x5a ? a[i] | 0x20 : a[i];
    const y = b[i] >= 0x41 && b[i] <= 0x5a ? b[i] | 0x20 : b[i];
    if (x !== y) return false;
  }
  return true;
}

/** The IXFR answer from the journal, or undefined when the journal does not reach back to `from`. */
function incremental(zones: Zones, zone: string, soa: RR, from: number): RR[] | undefined {
  if (soa.rdata.type !== 6) return undefined;
  const rows = zones.directory.store.journal(zone);
  const start = rows.findIndex((r) => r.serialFrom === from);
  if (start < 0) return undefined;
  const chain = rows.slice(start);
  for (let i = 1; i < chain.length; i++) if (chain[i].serialFrom !== chain[i - 1].serialTo) return undefined;
  if (chain[chain.length - 1].serialTo !== soa.rdata.serial) return undefined;
  const soaAt = (serial: number): RR => ({ ...soa, rdata: { ...(soa.rdata as Extract<RR['rdata'], { type: 6 }>), serial } });
  const out: RR[] = [soa];
  try {
    for (const r of chain) {
      out.push(soaAt(r.serialFrom), ...r.removed.map(parseRRLine), soaAt(r.serialTo), ...r.added.map(parseRRLine));
    }
  } catch (err) {
    if (err instanceof RDataError) return undefined; // a journal line we cannot read: the whole zone (RFC 1995 §4)
    throw err;
  }
  out.push(soa);
  return out;
}
