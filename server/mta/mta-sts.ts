/**
 * The sending side of MTA-STS (RFC 8461): discovers, fetches, caches and
 * applies the policy of a recipient domain before mail goes to its MX hosts
 * (outbound.ts).
 *
 * Discovery (§3.1): the `_mta-sts.<domain>` TXT record through the
 * appliance's resolver (our zones, else DCMX_UPSTREAM_DNS); exactly one
 * record that begins with `v=STSv1` and carries an id, or none.
 * Fetch (§3.3): `GET https://mta-sts.<domain>/.well-known/mta-sts.txt`, the
 * policy host's address looked up through the same resolver, its
 * certificate verified for that name (the system's CAs and DCMX_MTA_STS_CA),
 * 200 with `text/plain` only (a redirect is not followed), at most
 * MAX_POLICY_BYTES in FETCH_TIMEOUT_MS.
 * Cache (§5.1): a fetched policy is kept until its max_age runs out, keyed
 * by domain with its id; it is fetched again when the TXT id differs, and a
 * cached unexpired policy stays in force when discovery or the fetch fails
 * (a record that vanishes does not switch the policy off, §10.2). A cached
 * policy past half its max_age is fetched again in the background when the
 * domain is mailed, so that it does not lapse (§5.1 "Policy Refresh").
 *
 * The cache is kept in the queue side's store (`persist`, storage/sts-cache.ts),
 * so a policy stays in force across a restart, with a copy in memory.
 * Lookups run per delivery on the queue side, never at RCPT.
 */
import * as https from 'node:https';
import { rootCertificates } from 'node:tls';
import { MAX_POLICY_AGE } from '../directory/mta-sts';
import type { MailResolver } from './resolver';

/** A policy as fetched (RFC 8461 §3.2). */
export interface StsPolicy {
  /** The id of the TXT record it was fetched under. */
  id: string;
  mode: 'enforce' | 'testing' | 'none';
  /** The mx patterns, lower case: a host name, or `*.` and a domain (one leftmost label, §4.1). */
  mx: string[];
  /** Seconds it may be cached. */
  maxAge: number;
}

/** What applies to a delivery: the policy (none: the domain has none we know of) and, when discovery or a fetch failed, why. */
export interface StsLookup {
  policy?: StsPolicy;
  problem?: string;
}

/** RFC 8461 §3.3 leaves the limits to the sender; 64 KiB is ample for any policy (Postfix's resolver uses the same). */
export const MAX_POLICY_BYTES = 64 * 1024;
/** The whole fetch, connect to last byte, every address of the policy host tried within it. */
export const FETCH_TIMEOUT_MS = 10_000;

/** Why a policy could not be had. */
export class StsFetchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StsFetchError';
  }
}

/**
 * Parses a policy text (RFC 8461 §3.2): `key: value` lines ended by LF or
 * CRLF; `version: STSv1`, a mode, max_age (0 to 31557600) and, unless the
 * mode is none, at least one mx pattern; unknown keys (any name the
 * grammar allows, `-` and `.` included) are ignored. Throws
 * StsFetchError naming what is wrong.
 */
export function parsePolicy(text: string, id: string): StsPolicy {
  const fields = new Map<string, string[]>();
  for (const line of text.split(/\r?\n/)) {
    if (line === '') continue;
    // RFC 8461 §3.2: a field name is (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / "."), so an extension such as `x-foo` is ignored, not an error.
    const m = /^([A-Za-z0-9][A-Za-z0-9_.-]{0,31}):[ \t]*(.*?)[ \t]*$/.exec(line);
    if (!m) throw new StsFetchError(`policy line is not 'key: value': ${JSON.stringify(line.slice(0, 80))}`);
    const k = m[1].toLowerCase();
    fields.set(k, [...(fields.get(k) ?? []), m[2]]);
  }
  const one = (k: string) => {
    const v = fields.get(k);
    if (!v) throw new StsFetchError(`policy has no ${k}`);
    if (v.length > 1) throw new StsFetchError(`policy has more than one ${k}`);
    return v[0];
  };
  if (one('version') !== 'STSv1') throw new StsFetchError(`policy version is not STSv1: ${one('version')}`);
  const mode = one('mode');
  if (mode !== 'enforce' && mode !== 'testing' && mode !== 'none') throw new StsFetchError(`policy mode is not enforce, testing or none: ${mode}`);
  const age = one('max_age');
  if (!/^\d{1,10}$/.test(age) || Number(age) > MAX_POLICY_AGE) throw new StsFetchError(`policy max_age is not 0 to ${MAX_POLICY_AGE}: ${age}`);
  const mx = (fields.get('mx') ?? []).map((p) => p.toLowerCase().replace(/\.$/, ''));
  for (const p of mx) {
    if (!/^(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*$/.test(p)) throw new StsFetchError(`policy mx is not a host name pattern: ${p}`);
  }
  if (mode !== 'none' && mx.length === 0) throw new StsFetchError('policy names no mx');
  return { id, mode, mx, maxAge: Number(age) };
}

/**
 * Does MX host `host` match a policy's mx patterns (RFC 8461 §4.1)? A
 * pattern is a host name, or `*.` and a domain, matching exactly one
 * leftmost label more (`*.example.com` matches `mx.example.com`, neither
 * `example.com` nor `a.b.example.com`).
 */
export function mxMatches(policy: StsPolicy, host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return policy.mx.some((p) => {
    if (!p.startsWith('*.')) return p === h;
    const dot = h.indexOf('.');
    return dot > 0 && h.slice(dot + 1) === p.slice(2);
  });
}

/** The id of the one `v=STSv1` record among a name's TXT records (RFC 8461 §3.1), or undefined for none, several, or one without an id. */
export function stsRecordId(records: readonly string[]): string | undefined {
  // RFC 8461 §3.1 ABNF: sts-field-delim = *WSP ";" *WSP, so `v=STSv1 ; id=...` is a record too.
  const sts = records.filter((r) => /^v=STSv1[ \t]*;/.test(r));
  if (sts.length !== 1) return undefined;
  const fields = new Map(sts[0].split(';').map((f) => f.trim()).filter(Boolean).map((f) => {
    const eq = f.indexOf('=');
    return [f.slice(0, eq < 0 ? f.length : eq).trim(), eq < 0 ? '' : f.slice(eq + 1).trim()] as const;
  }));
  const id = fields.get('id');
  return id !== undefined && /^[A-Za-z0-9]{1,32}$/.test(id) ? id : undefined;
}

/** A store of fetched policies, by domain (storage/sts-cache.ts StsPolicyStore). */
export interface StsPolicyCache {
  load(domain: string): (StsPolicy & { expires: number }) | undefined;
  save(domain: string, policy: StsPolicy & { expires: number }): void;
  delete(domain: string): void;
}

/** How policies are looked up. */
export interface StsOptions {
  resolver: Pick<MailResolver, 'lookupTxt' | 'lookupHost'>;
  /** Where fetched policies are kept across restarts (none: in memory only). */
  persist?: StsPolicyCache;
  /** PEM certificates trusted besides the system's (DCMX_MTA_STS_CA). */
  ca?: string;
  now?: () => number;
}

/** The trust of policy hosts and MX hosts: the system's CAs, plus DCMX_MTA_STS_CA when set (undefined: Node's default, the same roots). */
export function trustedCas(extra: string | undefined): string[] | undefined {
  return extra ? [...rootCertificates, extra] : undefined;
}

/** Policies of recipient domains, with the cache of RFC 8461 §5.1. One per queue side. */
export class StsPolicies {
  private readonly cache = new Map<string, { policy: StsPolicy; expires: number }>();
  /** Lookups under way, so that concurrent deliveries to a domain share one. */
  private readonly pending = new Map<string, Promise<StsLookup>>();
  /** Domains whose cached policy is being fetched again in the background. */
  private readonly refreshing = new Set<string>();
  private readonly ca: string[] | undefined;
  /** How many policies this cache fetched (successful HTTPS fetches, refreshes included). */
  fetched = 0;

  constructor(private readonly opts: StsOptions) {
    this.ca = trustedCas(opts.ca);
  }

  /** The certificate authorities MX hosts are verified against (undefined: Node's default roots). */
  get trust(): string[] | undefined {
    return this.ca;
  }

  /**
   * The policy that applies to mail for `domain` now (see the module
   * comment). Never throws: a failure is `problem`, with the cached
   * unexpired policy if there is one.
   */
  lookup(domain: string): Promise<StsLookup> {
    const d = domain.toLowerCase().replace(/\.$/, '');
    let p = this.pending.get(d);
    if (!p) {
      p = this.discover(d).finally(() => this.pending.delete(d));
      this.pending.set(d, p);
    }
    return p;
  }

  private now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  private async discover(domain: string): Promise<StsLookup> {
    const hit = this.cache.get(domain) ?? this.loadKept(domain);
    const cached = hit && hit.expires > this.now() ? hit.policy : undefined;
    if (hit && !cached) {
      this.cache.delete(domain);
      this.opts.persist?.delete(domain);
    }
    let id: string | undefined;
    try {
      id = stsRecordId(await this.opts.resolver.lookupTxt(`_mta-sts.${domain}`));
    } catch (err) {
      return { policy: cached, problem: `_mta-sts.${domain} TXT lookup failed: ${(err as Error).message}` };
    }
    // No record: a cached policy stays in force until it expires (§5.1, §10.2).
    if (id === undefined) return { policy: cached };
    if (cached?.id === id) {
      // §5.1: refreshed before it expires, so that a domain that is mailed keeps its policy; in the background.
      if (hit!.expires - this.now() < (cached.maxAge * 1000) / 2 && !this.refreshing.has(domain)) {
        this.refreshing.add(domain);
        void this.fetchAndKeep(domain, id).catch(() => undefined).finally(() => this.refreshing.delete(domain));
      }
      return { policy: cached };
    }
    try {
      return { policy: await this.fetchAndKeep(domain, id) };
    } catch (err) {
      return { policy: cached, problem: `policy of ${domain} (id ${id}) not fetched: ${(err as Error).message}` };
    }
  }

  /** Fetches the policy of `domain` under `id` and caches it for its max_age (memory and `persist`). */
  private async fetchAndKeep(domain: string, id: string): Promise<StsPolicy> {
    const policy = await this.fetch(domain, id);
    this.fetched++;
    const expires = this.now() + policy.maxAge * 1000;
    this.cache.set(domain, { policy, expires });
    this.opts.persist?.save(domain, { ...policy, expires });
    return policy;
  }

  /** The policy kept for `domain` in `persist` (a previous run's), put in memory too. */
  private loadKept(domain: string): { policy: StsPolicy; expires: number } | undefined {
    const kept = this.opts.persist?.load(domain);
    if (!kept) return undefined;
    const { expires, ...policy } = kept;
    this.cache.set(domain, { policy, expires });
    return { policy, expires };
  }

  /**
   * Fetches and parses the policy of `domain` (RFC 8461 §3.3), all of it
   * within FETCH_TIMEOUT_MS (RFC 8461 §3.3 leaves the limit to the sender;
   * one deadline for every address, so that a host of unanswering addresses
   * holds delivery no longer); throws StsFetchError or the lookup's error.
   */
  private async fetch(domain: string, id: string): Promise<StsPolicy> {
    const host = `mta-sts.${domain}`;
    const addresses = await this.opts.resolver.lookupHost(host);
    const deadline = AbortSignal.timeout(FETCH_TIMEOUT_MS);
    let last: Error | undefined;
    for (const address of addresses.slice(0, 4)) {
      if (deadline.aborted) break;
      try {
        return parsePolicy(await this.get(host, address, deadline), id);
      } catch (err) {
        last = err as Error;
        // A reply that came (a status, a bad body) is the host's answer; only a connection failure tries the next address.
        if (err instanceof StsFetchError) throw err;
      }
    }
    throw new StsFetchError(`https://${host}: ${last?.message ?? 'no address'}`);
  }

  /** One HTTPS GET of the policy at `address`, verified for `host`, given up when `signal` aborts; resolves with the body text. */
  private get(host: string, address: string, signal: AbortSignal): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = https.request({
        host: address, port: 443, path: '/.well-known/mta-sts.txt', method: 'GET',
        servername: host, headers: { host, accept: 'text/plain' }, agent: false,
        ca: this.ca, rejectUnauthorized: true, signal,
      }, (res) => {
        const fail = (why: string) => {
          res.destroy();
          reject(new StsFetchError(`https://${host}/.well-known/mta-sts.txt: ${why}`));
        };
        // RFC 8461 §3.3: redirects are not followed; only 200 is a policy.
        if (res.statusCode !== 200) return fail(`HTTP ${res.statusCode}${res.headers.location ? ' (redirect not followed)' : ''}`);
        if (!/^text\/plain\s*(;|$)/i.test(res.headers['content-type'] ?? '')) return fail(`Content-Type ${res.headers['content-type'] ?? 'missing'}, not text/plain`);
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_POLICY_BYTES) fail(`policy larger than ${MAX_POLICY_BYTES} bytes`);
          else chunks.push(c);
        });
        res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  }
}
