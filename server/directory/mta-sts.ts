/**
 * MTA-STS (RFC 8461) and SMTP TLS reporting (RFC 8460) of hosted domains, as
 * they live in the directory. A domain provisioned while DCMX_MTA_STS is not
 * `off` gets, in the provisioning transaction:
 * - `dc=_mta-sts,<domain>`: TXT `v=STSv1; id=<id>` (RFC 8461 §3.1);
 * - `dc=mta-sts,<domain>`: CNAME to this appliance (DCMX_HOSTNAME, the MX
 *   target), the "Policy Host" whose HTTPS endpoint serves the policy
 *   (RFC 8461 §3.3; server/admin/http.ts);
 * - `dc=_smtp,dc=_tls,<domain>`: TXT `v=TLSRPTv1; rua=<...>` (RFC 8460 §3).
 *
 * The policy itself is not stored: it is made when asked for from the
 * configured mode and max_age and the MX hosts the domain's zone names
 * (`policyOf`). Its id is a digest of that text, so any change of the policy
 * changes the id: a write that changes a domain's MX records rewrites the
 * TXT in the same transaction (the commit hook of `attachMtaSts`), and a
 * start with another mode or max_age rewrites every one (`refreshMtaStsIds`).
 * With DCMX_MTA_STS=off, domains that publish a policy keep their records
 * and serve `mode: none` under a new id, the way RFC 8461 §8.3 asks a domain
 * to withdraw its policy; new domains get none.
 */
import { createHash } from 'node:crypto';
import type { StoredEntry } from '../../storage/store';
import type { AppliedChange, Directory } from './directory';
import type { Identity } from './access';
import { parseRData, RRTYPE } from './records';
import { quoteTxt } from './dkim';
import type { ZoneView, DnsNames } from './zones';

/** DCMX_MTA_STS: the mode published for hosted domains, or `off` (no records for new domains). */
export type MtaStsMode = 'testing' | 'enforce' | 'off';

/** What hosted domains publish (config.newDomain.mtaSts). */
export interface MtaStsOptions {
  mode: MtaStsMode;
  /** max_age of the policy, seconds (RFC 8461 §3.2: at most 31557600). */
  maxAge: number;
  /** The `rua` of the TLSRPT record: URIs with `{domain}` standing for the domain; '' for no record. */
  rua: string;
}

/** RFC 8461 §3.2: max_age is at most 31557600 seconds (one year). */
export const MAX_POLICY_AGE = 31557600;

/** The name of a domain's Policy Host (RFC 8461 §3.3). */
export function policyHost(domain: string): string {
  return `mta-sts.${domain}`;
}

/**
 * The policy text (RFC 8461 §3.2): version, mode (`none` when publishing is
 * off), one `mx` line per MX host, max_age; LF line ends.
 */
export function policyText(mode: MtaStsMode, maxAge: number, mxHosts: readonly string[]): string {
  const lines = ['version: STSv1', `mode: ${mode === 'off' ? 'none' : mode}`];
  for (const mx of [...new Set(mxHosts.map((h) => h.toLowerCase().replace(/\.$/, '')))].sort()) lines.push(`mx: ${mx}`);
  lines.push(`max_age: ${maxAge}`);
  return lines.join('\n') + '\n';
}

/** The policy id of a policy text (RFC 8461 §3.1: 1 to 32 letters and digits): 32 hex digits of its SHA-256. */
export function policyId(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 32);
}

/** The `_mta-sts` TXT value for a policy text. */
export function stsRecord(text: string): string {
  return `v=STSv1; id=${policyId(text)}`;
}

/** Is this TXT value (master-file form or plain) an MTA-STS record (RFC 8461 §3.1)? */
export function isStsRecord(v: string): boolean {
  return /^"?v=STSv1\s*(;|"|$)/.test(v.trim());
}

/** Is this TXT value a TLSRPT record (RFC 8460 §3)? */
export function isTlsRptRecord(v: string): boolean {
  return /^"?v=TLSRPTv1\s*(;|"|$)/.test(v.trim());
}

/** The TLSRPT record of `domain` (RFC 8460 §3), or undefined when `rua` is ''. */
export function tlsRptRecord(domain: string, rua: string): string | undefined {
  return rua ? `v=TLSRPTv1; rua=${rua.replace(/\{domain\}/g, domain)}` : undefined;
}

/**
 * Parses DCMX_TLSRPT_RUA: comma-separated `mailto:` or `https:` URIs (RFC 8460
 * §3, `{domain}` allowed in them), or `off`/'' for none. Throws on anything else.
 */
export function parseRua(value: string): string {
  const v = value.trim();
  if (v === '' || v.toLowerCase() === 'off') return '';
  const uris = v.split(',').map((s) => s.trim());
  for (const u of uris) {
    if (!/^(mailto:[^\s,;!@]+@[^\s,;!@]+|https:\/\/[^\s,;!]+)$/i.test(u)) throw new Error(`'${u}' is not a mailto: or https: URI`);
  }
  return uris.join(',');
}

/** The MX hosts of `domain` in `zones` (lower case, no trailing dot); the domain itself when it has none (RFC 5321 §5.1). */
export function mxHostsOf(zones: ZoneView, domain: string): string[] {
  const mx = zones.node(domain)?.rrsets.get(RRTYPE.MX) ?? [];
  const hosts = mx.flatMap((rr) => (rr.rdata.type === RRTYPE.MX && rr.rdata.exchange !== '' ? [rr.rdata.exchange.replace(/\.$/, '')] : []));
  return hosts.length ? hosts : [domain];
}

/**
 * The policy served for `host` (the Host of a request, port and trailing dot
 * allowed): when it is `mta-sts.<domain>` for a domain that publishes an
 * MTA-STS record here, the policy text; otherwise undefined (404).
 */
export function policyOf(zones: ZoneView, opts: Pick<MtaStsOptions, 'mode' | 'maxAge'>, host: string): string | undefined {
  const name = host.toLowerCase().replace(/:\d+$/, '').replace(/\.$/, '');
  if (!name.startsWith('mta-sts.')) return undefined;
  const domain = name.slice('mta-sts.'.length);
  if (!domain.includes('.')) return undefined;
  const published = zones.node(`_mta-sts.${domain}`)?.rrsets.get(RRTYPE.TXT) ?? [];
  const sts = published.some((rr) => rr.rdata.type === RRTYPE.TXT && isStsRecord(Buffer.concat(rr.rdata.strings).toString('utf8')));
  return sts ? policyText(opts.mode, opts.maxAge, mxHostsOf(zones, domain)) : undefined;
}

/** The MX hosts of a domain entry's own mXRecord values (provisioning's view, before the zone view follows). */
function entryMxHosts(e: StoredEntry | { attrs: Record<string, string[]> }, domain: string): string[] {
  const hosts: string[] = [];
  for (const v of e.attrs.mXRecord ?? []) {
    try {
      const r = parseRData(RRTYPE.MX, v);
      if (r.type === RRTYPE.MX && r.exchange !== '') hosts.push(r.exchange.replace(/\.$/, ''));
    } catch {
      // a bad value is refused by the zone hook
    }
  }
  return hosts.length ? hosts : [domain];
}

/** One record entry below a domain: a dNSDomain2 whose own name is `fqdn`, holding `record` among its TXT. */
function ensureTxtEntry(dir: Directory, who: Identity, dn: string, label: string, fqdn: string, record: string, isOurs: (v: string) => boolean, created: string[]): void {
  const e = dir.getByNdn(dir.normalize(dn));
  if (!e) {
    dir.addSync(who, dn, [
      { type: 'objectClass', values: ['top', 'dNSDomain2', 'domainRelatedObject'] }, { type: 'dc', values: [label] },
      { type: 'associatedDomain', values: [fqdn] }, { type: 'tXTRecord', values: [quoteTxt(record)] },
    ], { relax: true });
    created.push(dn);
    return;
  }
  const ours = (e.attrs.tXTRecord ?? []).filter(isOurs);
  if (ours.length === 1 && unquote(ours[0]) === record) return;
  const classes = (e.attrs.objectClass ?? []).some((c) => /^dnsdomain2?$/i.test(c)) ? [] : ['dNSDomain2'];
  if (!(e.attrs.objectClass ?? []).some((c) => c.toLowerCase() === 'domainrelatedobject')) classes.push('domainRelatedObject');
  const own = (e.attrs.associatedDomain ?? []).some((v) => v.toLowerCase().replace(/\.$/, '') === fqdn);
  dir.modifySync(who, e.dn, [
    ...(classes.length ? [{ op: 'add' as const, type: 'objectClass', values: classes }] : []),
    ...(own ? [] : [{ op: 'add' as const, type: 'associatedDomain', values: [fqdn] }]),
    ...(ours.length ? [{ op: 'delete' as const, type: 'tXTRecord', values: ours }] : []),
    { op: 'add', type: 'tXTRecord', values: [quoteTxt(record)] },
  ], { relax: true });
}

/** A TXT value in master-file form without its quotes (quoteTxt's inverse for one string). */
function unquote(v: string): string {
  const t = v.trim();
  return t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1).replace(/\\(["\\])/g, '$1') : t;
}

/**
 * Inside provisioning's transaction: publishes the MTA-STS and TLSRPT
 * records of `domain` (entry `dn`, whose MX records are set) as the module
 * comment says; nothing when the mode is `off`. Entries made are appended to
 * `created`. Records of another kind at those names stay; a CNAME the
 * operator put at `mta-sts.<domain>` stays as it is.
 */
export function publishMtaSts(dir: Directory, who: Identity, domain: string, dn: string, hostname: string, opts: MtaStsOptions, created: string[]): void {
  if (opts.mode === 'off') return;
  const leaf = dir.getByNdn(dir.normalize(dn))!;
  const text = policyText(opts.mode, opts.maxAge, entryMxHosts(leaf, domain));
  ensureTxtEntry(dir, who, `dc=_mta-sts,${dn}`, '_mta-sts', `_mta-sts.${domain}`, stsRecord(text), isStsRecord, created);
  const hostDn = `dc=mta-sts,${dn}`;
  const host = dir.getByNdn(dir.normalize(hostDn));
  if (!host) {
    dir.addSync(who, hostDn, [
      { type: 'objectClass', values: ['top', 'dNSDomain2', 'domainRelatedObject'] }, { type: 'dc', values: ['mta-sts'] },
      { type: 'associatedDomain', values: [policyHost(domain)] }, { type: 'cNAMERecord', values: [`${hostname}.`] },
    ], { relax: true });
    created.push(hostDn);
  }
  const rpt = tlsRptRecord(domain, opts.rua);
  if (rpt) {
    const tls = `dc=_tls,${dn}`;
    if (!dir.getByNdn(dir.normalize(tls))) {
      dir.addSync(who, tls, [{ type: 'objectClass', values: ['top', 'domain'] }, { type: 'dc', values: ['_tls'] }], { relax: true });
      created.push(tls);
    }
    ensureTxtEntry(dir, who, `dc=_smtp,${tls}`, '_smtp', `_smtp._tls.${domain}`, rpt, isTlsRptRecord, created);
  }
}

/** Inside removeDomain's transaction: withdraws the MTA-STS and TLSRPT TXT records of the domain entry `dn` (the entries stay). */
export function withdrawMtaSts(dir: Directory, who: Identity, dn: string): void {
  for (const [at, isOurs] of [[`dc=_mta-sts,${dn}`, isStsRecord], [`dc=_smtp,dc=_tls,${dn}`, isTlsRptRecord]] as const) {
    const e = dir.getByNdn(dir.normalize(at));
    const ours = (e?.attrs.tXTRecord ?? []).filter(isOurs);
    if (e && ours.length) dir.modifySync(who, e.dn, [{ op: 'delete', type: 'tXTRecord', values: ours }], { relax: true });
  }
}

/**
 * Rewrites the `_mta-sts` TXT of the domain entry `e` (name `domain`) when
 * its id is not that of the policy served now; only where one is
 * published. Inside a write transaction.
 */
function refreshId(dir: Directory, who: Identity, e: { dn: string; attrs: Record<string, string[]> }, domain: string, opts: MtaStsOptions): void {
  const sts = dir.getByNdn(dir.normalize(`dc=_mta-sts,${e.dn}`));
  const ours = (sts?.attrs.tXTRecord ?? []).filter(isStsRecord);
  if (!sts || !ours.length) return;
  const want = stsRecord(policyText(opts.mode, opts.maxAge, entryMxHosts(e, domain)));
  if (ours.length === 1 && unquote(ours[0]) === want) return;
  dir.modifySync(who, sts.dn, [{ op: 'delete', type: 'tXTRecord', values: ours }, { op: 'add', type: 'tXTRecord', values: [quoteTxt(want)] }], { relax: true });
}

/** Do two value lists hold the same values (order aside)? */
function sameValues(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  const x = [...(a ?? [])].sort();
  const y = [...(b ?? [])].sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/**
 * Registers, first among the commit hooks (so that the zone serial and
 * journal see its write), the hook that keeps each published policy id
 * true: a transaction that changes a domain entry's MX records rewrites
 * that domain's `_mta-sts` TXT with the id of the policy it now serves.
 */
export function attachMtaSts(dir: Directory, names: DnsNames, opts: MtaStsOptions): void {
  dir.addCommitHook((changes: readonly AppliedChange[]) => {
    // The hook's own writes join `changes`; they touch no MX, so a plain loop ends.
    for (let i = 0; i < changes.length; i++) {
      const c = changes[i];
      if (!c.after || sameValues(c.before?.attrs.mXRecord, c.after.attrs.mXRecord)) continue;
      const domain = names.fromDn(c.after.dn, c.after.ndn);
      if (domain !== undefined) refreshId(dir, dir.systemIdentity(), c.after, domain, opts);
    }
  }, true);
}

/**
 * At start: rewrites every published `_mta-sts` id that is not the one of
 * the policy served now (DCMX_MTA_STS or DCMX_MTA_STS_MAX_AGE changed since
 * the records were written), in one transaction. Returns how many domains
 * had a policy published (rewritten or not).
 */
export function refreshMtaStsIds(dir: Directory, names: DnsNames, opts: MtaStsOptions): number {
  const base = dir.getByNdn(dir.suffixNdn);
  if (!base) return 0;
  let count = 0;
  const filter = { type: 'eq' as const, attr: dir.schema.objectClassType, norm: 'maildomain' };
  const domains = [...dir.store.candidates({ base, scope: 'sub', filter })];
  dir.write(() => {
    for (const e of domains) {
      const domain = names.fromDn(e.dn, e.ndn);
      if (domain === undefined || !dir.getByNdn(dir.normalize(`dc=_mta-sts,${e.dn}`))) continue;
      count++;
      refreshId(dir, dir.systemIdentity(), e, domain, opts);
    }
  });
  return count;
}
