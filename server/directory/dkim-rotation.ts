/**
 * DKIM key rotation (RFC 6376 §3.1: selectors let a domain roll its keys;
 * M3AAWG's key rotation practice: publish the new key, sign with it, keep
 * the old one published for a grace period so mail signed with it in
 * transit still verifies, then withdraw it).
 *
 * - `rotateDkim` gives a hosted mail domain a new key per algorithm it signs
 *   with, at a new dated selector, in one transaction of the write path: its
 *   TXT is served by our DNS from the commit on, and signing (dkim.ts
 *   signingKeys: the latest published selector of each algorithm) uses it
 *   from then on.
 * - A selector is `active` while it is the latest of its algorithm in its
 *   domain; an older one is `retiring` until the grace period has passed
 *   since its successor was made (the successor's createTimestamp), then
 *   `retireDkim` deletes its entry: key record and private key go together.
 *   The duty runs in the process that owns the data dir (succession.ts),
 *   as the other sweeps do.
 */
import type { Directory } from './directory';
import type { Logger } from '../log';
import type { StoredEntry } from '../../storage/store';
import { DirectoryError } from './errors';
import { isServedMailDomain } from './provision';
import { dkimKeyEntries, dkimSelector, dkimSelectorEntry, generateDkimKey, isDkimKeyRecord, storedKeyAlgorithm, type DkimAlgorithm, type DkimKey } from './dkim';

/** A selector of a domain and where it stands. */
export interface DkimSelectorState {
  selector: string;
  algorithm: DkimAlgorithm;
  /** `active`: signs; `retiring`: published until `retireAt`; `withdrawn`: its record is not served (a removed domain). */
  state: 'active' | 'retiring' | 'withdrawn';
  /** When its entry was made. */
  created: Date;
  /** When a retiring selector's entry goes. */
  retireAt?: Date;
}

/** The normalised DN of a domain's entry (DomainNames.toNdn). */
export type DomainNdn = (name: string) => string | undefined;

/** The selectors of `domain` (normalised DN `domainNdn`), by algorithm then newest first. */
export function dkimSelectors(directory: Directory, domainNdn: string, graceMs: number): DkimSelectorState[] {
  const out: DkimSelectorState[] = [];
  for (const [algorithm, entries] of byAlgorithm(dkimKeyEntries(directory, domainNdn))) {
    const successorMade = (i: number) => createdOf(entries[i - 1]);
    entries.forEach((e, i) => {
      const base = { selector: e.attrs.dc![0], algorithm, created: createdOf(e) };
      if (i === 0) out.push({ ...base, state: published(e) ? 'active' : 'withdrawn' });
      else out.push({ ...base, state: published(e) ? 'retiring' : 'withdrawn', retireAt: new Date(successorMade(i).getTime() + graceMs) });
    });
  }
  return out;
}

/**
 * Rotates the keys of hosted mail domain `name`: a new key at a new dated
 * selector for each algorithm it has a key of (`fallback` when it has
 * none), in one transaction. Returns the new keys' selectors. Throws
 * DirectoryError noSuchObject when `name` is not a mail domain in service.
 */
export function rotateDkim(directory: Directory, ndnOf: DomainNdn, name: string, fallback: readonly DkimAlgorithm[], now = new Date()): string[] {
  const ndn = ndnOf(name);
  const made: string[] = [];
  directory.write(() => {
    const domain = ndn === undefined ? undefined : directory.getByNdn(ndn);
    if (!domain || !isServedMailDomain(domain)) throw new DirectoryError('noSuchObject', `${name} is not a mail domain in service here`);
    const admin = directory.systemIdentity();
    const base = `dc=_domainkey,${domain.dn}`;
    if (!directory.getByNdn(directory.normalize(base))) {
      directory.addSync(admin, base, [{ type: 'objectClass', values: ['top', 'domain'] }, { type: 'dc', values: ['_domainkey'] }], { relax: true });
    }
    const entries = dkimKeyEntries(directory, ndn!);
    const taken = new Set(entries.map((e) => e.attrs.dc![0].toLowerCase()));
    const have = [...byAlgorithm(entries).keys()];
    const algorithms = have.length ? have : fallback;
    if (!algorithms.length) throw new DirectoryError('unwillingToPerform', `${name} has no DKIM key and DCMX_NEW_DOMAIN_DKIM is off`);
    for (const algorithm of algorithms) {
      const key: DkimKey = { ...generateDkimKey(algorithm, now), selector: freeSelector(algorithm, now, taken) };
      taken.add(key.selector);
      directory.addSync(admin, `dc=${key.selector},${base}`, dkimSelectorEntry(name, key), { relax: true });
      made.push(key.selector);
    }
  });
  return made;
}

/**
 * Deletes every selector entry whose grace period has ended at `now`
 * (see dkimSelectors), in one transaction; returns `<selector>._domainkey.<domain>`
 * of each. Selectors of removed domains (withdrawn) go by the same rule.
 */
export function retireDkim(directory: Directory, graceMs: number, now = new Date()): string[] {
  const due: StoredEntry[] = [];
  for (const base of domainKeyBases(directory)) {
    for (const entries of byAlgorithm(dkimKeyEntries(directory, base.parentNdn)).values()) {
      // Never leave an algorithm unsigned: while the newest key is not published, a published older one stays.
      if (!published(entries[0]) && entries.some(published)) continue;
      for (let i = 1; i < entries.length; i++) {
        if (createdOf(entries[i - 1]).getTime() + graceMs <= now.getTime()) due.push(entries[i]);
      }
    }
  }
  if (!due.length) return [];
  const admin = directory.systemIdentity();
  directory.write(() => {
    for (const e of due) if (directory.getByNdn(e.ndn)) directory.delete(admin, e.dn);
  });
  return due.map((e) => e.attrs.associatedDomain?.[0] ?? e.dn);
}

/** The retirement duty: retireDkim now (once `owned` resolves) and every `everyMs` after. */
export function startDkimRetirement(directory: Directory, graceMs: number, log: Logger, owned?: Promise<void>): { stop(): void } {
  // Often enough that a selector goes within a tenth of the grace period of its time; at least once an hour.
  const everyMs = Math.max(200, Math.min(graceMs / 10, 3600_000));
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const run = () => {
    if (stopped) return;
    try {
      const gone = retireDkim(directory, graceMs);
      if (gone.length) log.info({ selectors: gone }, 'retired DKIM selectors after their grace period');
    } catch (err) {
      log.error({ err }, 'retiring DKIM selectors failed');
    }
    timer = setTimeout(run, everyMs);
    timer.unref();
  };
  (owned ?? Promise.resolve()).then(run, () => undefined);
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/** The first of `d<date>-<alg>`, `d<date>a-<alg>` ... `d<date>z-<alg>` not in `taken`: later rotations sort after earlier ones. */
function freeSelector(algorithm: DkimAlgorithm, day: Date, taken: Set<string>): string {
  const plain = dkimSelector(algorithm, day);
  if (!taken.has(plain)) return plain;
  const date = plain.slice(0, plain.indexOf('-'));
  for (let c = 97; c <= 122; c++) {
    const s = `${date}${String.fromCharCode(c)}-${algorithm}`;
    if (!taken.has(s)) return s;
  }
  throw new DirectoryError('unwillingToPerform', `no free ${algorithm} selector left for ${day.toISOString().slice(0, 10)}: 27 rotations in one day`);
}

/** Selector entries with a usable key, by algorithm, newest (greatest selector) first. */
function byAlgorithm(entries: StoredEntry[]): Map<DkimAlgorithm, StoredEntry[]> {
  const out = new Map<DkimAlgorithm, StoredEntry[]>();
  for (const e of entries) {
    const alg = storedKeyAlgorithm(e);
    if (!alg || !e.attrs.dc?.[0]) continue;
    const l = out.get(alg);
    if (l) l.push(e);
    else out.set(alg, [e]);
  }
  for (const l of out.values()) l.sort((a, b) => (a.attrs.dc![0] < b.attrs.dc![0] ? 1 : -1));
  return out;
}

/** Whether a selector entry's key record is served. */
function published(e: StoredEntry): boolean {
  return (e.attrs.tXTRecord ?? []).some(isDkimKeyRecord);
}

/** An entry's createTimestamp (GeneralizedTime, RFC 4517 §3.3.13, as the write path stamps it). */
function createdOf(e: StoredEntry): Date {
  const m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)/.exec(e.attrs.createTimestamp?.[0] ?? '');
  return m ? new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6])) : new Date(0);
}

/** Every `dc=_domainkey` entry below the suffix, with its parent's normalised DN. */
function domainKeyBases(directory: Directory): { parentNdn: string }[] {
  const suffix = directory.getByNdn(directory.suffixNdn);
  if (!suffix) return [];
  const filter = { type: 'eq' as const, attr: directory.schema.attr('dc')!, norm: '_domainkey' };
  return [...directory.store.candidates({ base: suffix, scope: 'sub', filter })]
    .filter((e) => e.ndn.startsWith('dc=_domainkey,'))
    .map((e) => ({ parentNdn: e.ndn.slice('dc=_domainkey,'.length) }));
}
