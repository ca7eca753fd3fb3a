/**
 * From a screened packet to the reply bytes, for one transport: the named
 * outcomes at the door (STYLE.md), the lookup, the RCODE/AA mapping, EDNS
 * and the size limit, and a cache of ready wire answers.
 *
 * The cache keeps encoded answers keyed by (name, type, class, EDNS, limit)
 * (wire.ts answerKey), the limit left out for a small complete answer, the
 * same over UDP and TCP (keyFor), each with what it was built from
 * (answer-cache.ts); a plain query whose answer is cached is answered from
 * its octets, without decoding (cachedReply). Every query first brings this
 * thread's view up to the change clock (Zones.sync, one atomic load when
 * nothing changed), and each change to DNS data the change log shows drops
 * the answers it can change (Zones.onDnsChange), so a query issued after a
 * write's response always sees the write, whichever thread or process made it.
 */
import type { Zone, Zones } from '../directory/zones';
import { AnswerCache, AnswerDeps, recordingView } from './answer-cache';
import { lookup, type Answer } from './lookup';
import { signAnswer } from './dnssec-answer';
import { RESIGN_AFTER, SignCache, type SignerKey } from './dnssec-sign';
import { answerKey, encodeResponse, plainQuery, screen, type Query, type Response } from './wire';
import type { Logger } from '../log';
import { DnsQueryCounts } from './query-counts';

/** DNS RCODEs (RFC 1035 §4.1.1, RFC 6891 §9). */
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, BADVERS: 16 } as const;

/** Opcodes (RFC 1035 §4.1.1, RFC 1996). */
export const OPCODE = { QUERY: 0, NOTIFY: 4 } as const;

/** Where the question starts: after the 12-octet header (RFC 1035 §4.1.1). */
const QUESTION = 12;

/** The size limit in the key of an answer that is the same at every limit (keyFor). */
const ANY_LIMIT = 0;

/** The UDP payload size we advertise and use at most (DNS flag day 2020: no fragmentation). */
export const OUR_UDP_SIZE = 1232;

const TYPE_AXFR = 252;
const TYPE_IXFR = 251;
/** RFC 9824 §3.5: a meta-type; an explicit query for it is answered FORMERR. */
const TYPE_NXNAME = 128;

/** Where a query came from and over what. */
export interface Transport {
  tcp: boolean;
  /** The client's address, when the transport has it at hand (the answer does not depend on it). */
  remote?: string;
}

/** A zone transfer request, handed to the transfer module by the TCP transport. */
export interface TransferRequest {
  query: Query;
  zone: string;
  kind: 'axfr' | 'ixfr';
}

/** What answering a packet produced. */
export type Outcome =
  | { kind: 'none' }
  | { kind: 'reply'; bytes: Buffer }
  | { kind: 'transfer'; request: TransferRequest };

function rcodeOf(a: Answer): number {
  switch (a.result) {
    case 'nxdomain':
      return RCODE.NXDOMAIN;
    case 'refused':
      return RCODE.REFUSED;
    default:
      return RCODE.NOERROR;
  }
}

/** The reply size limit: RFC 1035 §4.2.1 512 bytes over UDP without EDNS; the client's EDNS size (RFC 6891 §6.2.5) capped at ours; 65535 over TCP. */
export function sizeLimit(q: Pick<Query, 'edns'>, tcp: boolean): number {
  return tcp ? 65535 : q.edns ? ednsLimit(q.edns.udpSize) : 512;
}

/** The UDP reply size limit for an EDNS payload size: at least 512 (RFC 6891 §6.2.5), at most ours. */
function ednsLimit(udpSize: number): number {
  return Math.max(512, Math.min(udpSize, OUR_UDP_SIZE));
}

/** Answers packets for one store's zones. */
export class Answerer {
  /** Ready answers (undefined when disabled); public for the admin API and tests. */
  readonly cache: AnswerCache | undefined;
  /** Signatures of RRsets, kept across data changes while the RRset stays the same (dnssec-sign.ts). */
  readonly signatures = new SignCache();
  /** Counters for the admin API and benchmarks. */
  readonly stats = { queries: 0, cacheHits: 0, dropped: 0, formerr: 0, servfail: 0 };
  /** Queries answered by transport, type and RCODE (zone transfers: counted by the transport that sends them, countTransfer). */
  readonly counts = new DnsQueryCounts();

  constructor(
    private readonly zones: Zones,
    private readonly log: Logger,
    opts: { cacheEntries?: number } = {},
  ) {
    const max = opts.cacheEntries ?? 20_000;
    this.cache = max > 0 ? new AnswerCache(max, zones.catalog) : undefined; // 0 disables the cache
    zones.onDnsChange((c) => this.cache?.invalidate(c));
  }

  /** Answers one packet. Never throws: anything unexpected becomes SERVFAIL (one try/catch per packet). */
  answer(buf: Buffer, t: Transport): Outcome {
    this.stats.queries++;
    const fast = this.cache ? this.cachedReply(buf, t.tcp) : undefined;
    if (fast?.kind === 'reply') return fast;
    const s = screen(buf);
    const out = this.outcome(s, t, fast?.keys);
    if (out.kind === 'reply' && s.kind !== 'drop') {
      // The RCODE's low four bits are in the header (RFC 1035 §4.1.1); BADVERS's high bits in the OPT (RFC 6891 §6.1.3).
      this.counts.answered(t.tcp, s.kind === 'query' ? s.query.question.type : s.question?.type, s.kind === 'badvers' ? RCODE.BADVERS : out.bytes[3] & 0x0f);
    }
    return out;
  }

  /**
   * The fast path: the reply to a plain query (wire.ts plainQuery) whose
   * answer is cached, made from the packet's octets without screening or
   * decoding it. It is the reply the full path gives: the same sync first,
   * the same key (the question, the EDNS state, the size limit: all a cached
   * answer depends on), the same personalization. Otherwise the full path
   * answers: undefined for a packet that is not a plain query; for one
   * whose answer is not cached, the keys it was looked up under, which are
   * those the full path would build (answerQuery: the same octets, EDNS
   * state and limit), so that it neither builds nor looks them up again.
   */
  private cachedReply(buf: Buffer, tcp: boolean): { kind: 'reply'; bytes: Buffer } | Missed | undefined {
    const p = plainQuery(buf);
    if (!p) return undefined;
    this.zones.sync();
    const limit = tcp ? 65535 : p.edns ? ednsLimit(p.udpSize) : 512;
    const any = answerKey(buf, QUESTION, p.questionEnd, p.edns, ANY_LIMIT);
    let bytes = this.cached(any);
    if (!bytes) {
      const own = answerKey(buf, QUESTION, p.questionEnd, p.edns, limit);
      bytes = this.cached(own);
      if (!bytes) return { kind: 'missed', keys: { any, own } };
    }
    this.stats.cacheHits++;
    this.counts.answered(tcp, (buf[p.questionEnd - 4] << 8) | buf[p.questionEnd - 3], bytes.charCodeAt(3) & 0x0f);
    return { kind: 'reply', bytes: personalize(bytes, (buf[0] << 8) | buf[1], (buf[2] & 0x01) !== 0, (buf[3] & 0x10) !== 0, buf, QUESTION, p.questionEnd) };
  }

  /** The cached answer under `key`, unless it is a signed one whose signatures have grown too old (AnswerCache.get). */
  private cached(key: string): string | undefined {
    return this.cache?.get(key);
  }

  /** Counts a zone transfer's reply by its first message's RCODE (a refusal, a failure or the transfer). */
  countTransfer(q: Query, first: Buffer | undefined): void {
    if (first && first.length > 3) this.counts.answered(true, q.question.type, first[3] & 0x0f);
  }

  /** `looked`: the keys cachedReply looked the answer up under, in vain (the cache is not asked again). */
  private outcome(s: ReturnType<typeof screen>, t: Transport, looked?: CacheKeys): Outcome {
    switch (s.kind) {
      case 'drop':
        this.stats.dropped++;
        return { kind: 'none' };
      case 'formerr':
        this.stats.formerr++;
        return this.reply({ id: s.id, opcode: s.opcode, aa: false, rd: s.rd, cd: false, rcode: RCODE.FORMERR, question: s.question, questionWire: s.questionWire, answer: [], authority: [], additional: [] }, 512);
      case 'notimp':
        return this.reply({ id: s.id, opcode: s.opcode, aa: false, rd: s.rd, cd: false, rcode: RCODE.NOTIMP, question: s.question, questionWire: s.questionWire, answer: [], authority: [], additional: [] }, 512);
      case 'badvers':
        // RFC 6891 §6.1.3: BADVERS, with an OPT of the highest version we support (0).
        return this.reply({
          id: s.id, opcode: s.opcode, aa: false, rd: s.rd, cd: false, rcode: RCODE.BADVERS, question: s.question,
          questionWire: s.questionWire, answer: [], authority: [], additional: [], edns: { udpSize: OUR_UDP_SIZE, do: s.edns.do },
        }, sizeLimit({ edns: s.edns }, t.tcp));
    }
    const q = s.query;
    try {
      return this.answerQuery(q, t, looked);
    } catch (err) {
      this.stats.servfail++;
      this.log.error({ err, qname: q.question.name, qtype: q.question.type }, 'dns query failed');
      return this.reply(this.base(q, RCODE.SERVFAIL, false), sizeLimit(q, t.tcp));
    }
  }

  /** Ready answers in the cache now (0 when it is disabled). */
  get cacheSize(): number {
    return this.cache?.size ?? 0;
  }

  /**
   * SERVFAIL for a screened query whose answer could not be built or
   * encoded (a transfer, say), counted in stats: the one reply for that
   * query (RFC 5936 §2.2.1: a transfer that fails says so with an RCODE).
   */
  failure(q: Query, tcp: boolean): Buffer {
    this.stats.servfail++;
    return encodeResponse(this.base(q, RCODE.SERVFAIL, false), sizeLimit(q, tcp));
  }

  private base(q: Query, rcode: number, aa: boolean): Response {
    return {
      id: q.id, opcode: q.opcode, aa, rd: q.rd, cd: q.cd, rcode, question: q.question, questionWire: q.questionWire,
      // RFC 3225 §3: the DO bit of the query is copied into the response's OPT.
      answer: [], authority: [], additional: [], edns: q.edns ? { udpSize: OUR_UDP_SIZE, do: q.edns.do } : undefined,
    };
  }

  private reply(r: Response, limit: number): Outcome {
    return { kind: 'reply', bytes: encodeResponse(r, limit) };
  }

  private answerQuery(q: Query, t: Transport, looked?: CacheKeys): Outcome {
    this.zones.sync();
    if (q.opcode !== OPCODE.QUERY) {
      // We are a primary: NOTIFY sent to us is not something we act on (RFC 1996 §3.7 concerns secondaries).
      return this.reply(this.base(q, RCODE.NOTIMP, false), 512);
    }
    const name = q.question.name.toLowerCase();
    const type = q.question.type;
    if (type === TYPE_AXFR || type === TYPE_IXFR) {
      const zone = this.zones.zoneOf(name);
      if (!zone || zone.name !== name || q.question.class !== 1) return this.reply(this.base(q, RCODE.REFUSED, false), sizeLimit(q, t.tcp));
      if (type === TYPE_IXFR && q.authoritySoaSerial === undefined) {
        // RFC 1995 §3: an IXFR query carries the client's SOA of the zone in the authority section. Without
        // exactly one such SOA it is malformed, over UDP or TCP (BIND and Knot answer FORMERR too).
        return this.reply(this.base(q, RCODE.FORMERR, false), sizeLimit(q, t.tcp));
      }
      if (!t.tcp) {
        if (type === TYPE_IXFR) {
          // RFC 1995 §2: over UDP, a reply with only the current SOA tells the client to try TCP.
          const r = this.base(q, RCODE.NOERROR, true);
          r.answer = [zone.soa];
          return this.reply(r, sizeLimit(q, false));
        }
        // RFC 5936 §4.2: AXFR is TCP only.
        return this.reply(this.base(q, RCODE.REFUSED, false), sizeLimit(q, false));
      }
      return { kind: 'transfer', request: { query: q, zone: zone.name, kind: type === TYPE_AXFR ? 'axfr' : 'ixfr' } };
    }

    const limit = sizeLimit(q, t.tcp);
    const edns = q.edns ? (q.edns.do ? (q.edns.co ? 3 : 2) : 1) : 0; // CO matters only with DO (RFC 9824 §4)
    let keys = looked;
    if (!keys) {
      keys = { any: answerKey(q.questionWire, 0, q.questionWire.length, edns, ANY_LIMIT), own: answerKey(q.questionWire, 0, q.questionWire.length, edns, limit) };
      const cached = this.cached(keys.any) ?? this.cached(keys.own);
      if (cached) {
        this.stats.cacheHits++;
        return { kind: 'reply', bytes: personalize(cached, q.id, q.rd, q.cd, q.questionWire, 0, q.questionWire.length) };
      }
    }
    const deps = new AnswerDeps();
    const view = recordingView(this.zones, deps);
    const a = lookup(view, { name, type, class: q.question.class });
    // RFC 2308 §2.1, §2.2: a negative answer carries the zone's SOA; an NXDOMAIN without a CNAME chain read names of that zone only.
    if (a.denied && a.zone !== undefined) deps.soa(a.zone, a.result === 'nxdomain' && a.answer.length === 0);
    const signing = q.edns?.do && a.zone !== undefined ? this.zones.signingOf(a.zone) : undefined;
    // The lookup read the zone already: the recording view gives it again.
    if (signing) return this.signedReply(q, a, view.zoneOf(a.zone!)!, signing.keys, keys, limit, deps);
    const r = this.base(q, rcodeOf(a), a.aa);
    r.answer = a.answer;
    r.authority = a.authority;
    r.additional = a.additional;
    const bytes = encodeResponse(r, limit);
    this.cache?.set(keyFor(bytes, r, keys), bytes, deps);
    return { kind: 'reply', bytes };
  }

  /**
   * The reply to a DO query answered by `zone`, a signed zone (dnssec-answer.ts),
   * cached for at most {@link RESIGN_AFTER}, so that no cached answer carries
   * signatures much older than the sign cache allows.
   */
  private signedReply(q: Query, a: Answer, zone: Zone, signers: readonly SignerKey[], keys: CacheKeys, limit: number, deps: AnswerDeps): Outcome {
    if (q.question.type === TYPE_NXNAME) return this.reply(this.base(q, RCODE.FORMERR, false), limit);
    const now = Date.now();
    const compactOk = q.edns?.co === true;
    const s = signAnswer(a, zone, { keys: signers, cache: this.signatures, now: now / 1000 }, compactOk);
    // RFC 9824 §3.2: a name that does not exist is NOERROR (it "exists" with no data), NXDOMAIN again with CO (§4).
    const r = this.base(q, s.nxdomain ? RCODE.NXDOMAIN : a.result === 'nxdomain' ? RCODE.NOERROR : rcodeOf(a), a.aa);
    r.answer = s.answer;
    r.authority = s.authority;
    r.additional = s.additional;
    if (compactOk) r.edns!.co = true; // RFC 9824 §4: the CO flag is echoed
    const bytes = encodeResponse(r, limit);
    // A signed referral's proof of no DS is an NSEC with the SOA's negative TTL (RFC 4035 §2.3, dnssec-answer.ts denial).
    if (a.cut) deps.soa(zone.name);
    this.cache?.set(keyFor(bytes, r, keys), bytes, deps, now + RESIGN_AFTER * 1000);
    return { kind: 'reply', bytes };
  }
}

/**
 * The keys a query's answer may be cached under: `any`, the limit-free one
 * (ANY_LIMIT), and `own`, with the query's size limit. Hits look under `any`
 * first.
 */
interface CacheKeys {
  any: string;
  own: string;
}

/** A plain query whose answer is not cached, with the keys it was looked up under (Answerer.cachedReply). */
interface Missed {
  kind: 'missed';
  keys: CacheKeys;
}

/**
 * The key to keep `bytes`, the encoding of `r`, under: the limit-free one
 * when the reply is complete (no TC, no additional RR left out, RFC 2181 §9)
 * and within 512 octets, the least limit there is (RFC 1035 §4.2.1): the
 * encoder then writes the same octets whatever the limit, so UDP queries
 * with any EDNS payload size and TCP queries share it. Otherwise the key of
 * the reply's own limit.
 */
function keyFor(bytes: Buffer, r: Response, keys: CacheKeys): string {
  const complete = (bytes[2] & 0x02) === 0 && // TC
    ((bytes[6] << 8) | bytes[7]) === r.answer.length &&
    ((bytes[8] << 8) | bytes[9]) === r.authority.length &&
    ((bytes[10] << 8) | bytes[11]) === r.additional.length + (r.edns ? 1 : 0);
  return complete && bytes.length <= 512 ? keys.any : keys.own;
}

/**
 * A cached answer (its octets, AnswerCache.get) for another query of the
 * same key: copy, then set the message id, the RD and CD bits and the
 * question bytes `wire[start, end)` (same length, case as the client sent
 * it, RFC 4343 §4.1).
 */
function personalize(cached: string, id: number, rd: boolean, cd: boolean, wire: Buffer, start: number, end: number): Buffer {
  const b = Buffer.from(cached, 'latin1');
  b[0] = id >>> 8;
  b[1] = id & 0xff;
  b[2] = (b[2] & ~0x01) | (rd ? 0x01 : 0);
  b[3] = (b[3] & ~0x10) | (cd ? 0x10 : 0);
  for (let i = start, o = QUESTION; i < end; i++, o++) b[o] = wire[i]; // a short run: a loop beats Buffer.copy's call
  return b;
}
