/**
 * The signed state of the zones, as DCMX_DNSSEC wants it (dnssec-keys.ts
 * holds the keys and the records made from them).
 *
 * - On (the default): a zone born in a transaction, through any door
 *   (provisioning at RCPT, the CLI, the LDAP extended operation, a plain
 *   LDAP add or modify that gives an entry its sOARecord, an LDIF import),
 *   gets its key in that transaction (keyBirth, a commit hook). A zone
 *   unsigned when the appliance starts with DNSSEC on is signed with a new
 *   key by the owner's duty (reconcile); a zone still being withdrawn keeps
 *   its key and only loses the withdrawal mark: its parent may still hold
 *   the DS of that key, and resolvers its DNSKEY (a new key at once would
 *   make the zone bogus, RFC 6781 §4.1: keys change by rollover only).
 * - Off: new zones get no key, and each signed zone is withdrawn (RFC 8078
 *   §4): `dnssecWithdrawal` is set, so the zone publishes the delete CDS
 *   `0 0 0 00` and CDNSKEY `0 3 0 AA==` and keeps signing, and a parent zone
 *   served here drops its DS at once. Once DCMX_DNSSEC_WITHDRAW_GRACE has
 *   passed (long enough for the parent to act on the CDS and for the DS
 *   TTL to run out in resolvers) the key is removed and the zone is served
 *   unsigned.
 *
 * - Either way, a zone that signs (signed or withdrawing) and whose SOA
 *   serial has not moved for SERIAL_REFRESH_MS gets a new serial, and so a
 *   NOTIFY: a secondary re-transfers only on a new serial, and the
 *   signatures of its copy (made at transfer, valid 14 days) must be
 *   renewed before they expire.
 *
 * Each step is an ordinary write on the one write path: the serial goes up,
 * NOTIFY goes out, caches drop, and the zone's IXFR journal is dropped
 * (zones.ts bumpSerials), so the next IXFR gets the whole zone.
 *
 * Only the process that owns the data dir runs the duty (server/succession.ts):
 * during a reload the old appliance must not undo what the new one's setting asks.
 */
import type { Logger } from '../log';
import { normalizerFor } from '../../schema/matching';
import type { CommitHook, Directory, Modification } from './directory';
import { generalizedTimeNow } from './entry';
import { generateZoneKey, KEY_ATTRIBUTE, WITHDRAWAL_ATTRIBUTE, ZONE_KEY_CLASS } from './dnssec-keys';
import type { StoredEntry } from '../../storage/store';
import type { DnsNames, Zones } from './zones';

/** DCMX_DNSSEC and its grace period. */
export interface DnssecOptions {
  /** DCMX_DNSSEC: sign zones (on) or withdraw their signing (off). */
  enabled: boolean;
  /** DCMX_DNSSEC_WITHDRAW_GRACE, ms: how long a withdrawn zone keeps its key and signatures after the delete CDS appears. */
  withdrawGraceMs: number;
}

/** A zone's signed state, as `dcmx dnssec` shows it. */
export type SignedState = 'signed' | 'withdrawing' | 'unsigned';

/** The modifications that give the apex entry `e` a new key (and the class that holds it), replacing any old key and withdrawal. */
function newKeyMods(e: StoredEntry): Modification[] {
  const mods: Modification[] = [];
  if (!(e.attrs.objectClass ?? []).some((c) => c.toLowerCase() === ZONE_KEY_CLASS.toLowerCase())) {
    mods.push({ op: 'add', type: 'objectClass', values: [ZONE_KEY_CLASS] });
  }
  mods.push({ op: 'replace', type: KEY_ATTRIBUTE, values: [generateZoneKey()] });
  if (e.attrs[WITHDRAWAL_ATTRIBUTE]?.length) mods.push({ op: 'replace', type: WITHDRAWAL_ATTRIBUTE, values: [] });
  return mods;
}

/**
 * The commit hook of DNSSEC on: every entry that became a zone apex in the
 * transaction (added with an sOARecord, or given one by a modify), whose
 * name is a DNS name and that holds no key yet (an LDIF import may bring
 * one), gets a new key in the same transaction, written by the system
 * identity. Registered before the serial bump (zones.ts attachZones), so
 * the key is in the zone's first version.
 */
export function keyBirth(directory: Directory, names: DnsNames): CommitHook {
  return (changes) => {
    const born = new Set<string>();
    for (const c of changes) if (c.after?.attrs.sOARecord?.length && !c.before?.attrs.sOARecord?.length) born.add(c.after.ndn);
    for (const ndn of born) {
      // As the entry stands now: a later change of the same transaction may have moved or removed it.
      const e = directory.store.getByNdn(ndn);
      if (!e?.attrs.sOARecord?.length || e.attrs[KEY_ATTRIBUTE]?.length || names.fromDn(e.dn, e.ndn) === undefined) continue;
      directory.modifySync(directory.systemIdentity(), e.dn, newKeyMods(e), { relax: true });
    }
  };
}

const normalizeTime = normalizerFor('generalizedTimeMatch');

/** Milliseconds since the epoch of a GeneralizedTime, or undefined. */
function timeOf(v: string | undefined): number | undefined {
  const n = v === undefined ? undefined : normalizeTime(v);
  if (n === undefined) return undefined;
  const ms = Date.UTC(+n.slice(0, 4), +n.slice(4, 6) - 1, +n.slice(6, 8), +n.slice(8, 10), +n.slice(10, 12), +n.slice(12, 14));
  return Number.isNaN(ms) ? undefined : ms;
}

/** A zone's signed state as stored on its apex entry. */
export function signedStateOf(e: StoredEntry): { state: SignedState; since?: number } {
  if (!e.attrs[KEY_ATTRIBUTE]?.length) return { state: 'unsigned' };
  const w = e.attrs[WITHDRAWAL_ATTRIBUTE]?.[0];
  return w === undefined ? { state: 'signed' } : { state: 'withdrawing', since: timeOf(w) };
}

/**
 * A signing zone whose serial is this old gets a new one: half the validity
 * of a signature (14 days, server/dns/dnssec-sign.ts), so a secondary's
 * copy is re-transferred, with fresh signatures, a week before they expire.
 */
export const SERIAL_REFRESH_MS = 7 * 86_400_000;

/**
 * What one reconcile pass did, by zone name (`refreshed`: a new serial for
 * the secondaries; `resumed`: a withdrawal called off, the key kept);
 * `nextDueMs`: when the next withdrawal ends or serial is due, if any.
 */
export interface ReconcileResult {
  signed: string[];
  resumed: string[];
  withdrawn: string[];
  unsigned: string[];
  refreshed: string[];
  nextDueMs?: number;
}


/**
 * Brings every zone's signed state to what `opts` asks, each zone in its
 * own transaction (see the module comment): on, unsigned zones get a new
 * key and withdrawing ones keep theirs, withdrawal called off; off, signed zones start their withdrawal and those
 * whose grace has passed lose their key. Writer side only.
 */
export function reconcile(directory: Directory, zones: Zones, opts: DnssecOptions, now = Date.now()): ReconcileResult {
  const out: ReconcileResult = { signed: [], resumed: [], withdrawn: [], unsigned: [], refreshed: [] };
  const due = (ms: number) => (out.nextDueMs = Math.min(out.nextDueMs ?? Infinity, ms));
  const sys = directory.systemIdentity();
  for (const name of zones.apexNames()) {
    const ndn = zones.names.toNdn(name);
    const e = ndn === undefined ? undefined : directory.getByNdn(ndn);
    if (!e?.attrs.sOARecord?.length) continue;
    const { state, since } = signedStateOf(e);
    if (opts.enabled ? state === 'signed' : state === 'withdrawing') {
      // Every serial bump sets the apex's modifyTimestamp (zones.ts bumpSerials).
      const changed = timeOf(e.attrs.modifyTimestamp?.[0]) ?? now;
      if (changed + SERIAL_REFRESH_MS <= now) {
        // A write to the apex is a new version of the zone: bumpSerials gives it the next serial (RFC 1982).
        directory.write(() => directory.modifySync(sys, e.dn, [{ op: 'replace', type: 'sOARecord', values: e.attrs.sOARecord }], { relax: true }));
        out.refreshed.push(name);
        due(now + SERIAL_REFRESH_MS);
      } else {
        due(changed + SERIAL_REFRESH_MS);
      }
    }
    if (opts.enabled) {
      if (state === 'signed') continue;
      if (state === 'withdrawing') {
        // The parent may not have acted on the delete CDS yet (RFC 8078 §4): its DS still names this key.
        directory.write(() => directory.modifySync(sys, e.dn, [{ op: 'replace', type: WITHDRAWAL_ATTRIBUTE, values: [] }], { relax: true }));
        out.resumed.push(name);
        continue;
      }
      directory.write(() => directory.modifySync(sys, e.dn, newKeyMods(e), { relax: true }));
      out.signed.push(name);
    } else if (state === 'signed') {
      directory.write(() => directory.modifySync(sys, e.dn, [{ op: 'replace', type: WITHDRAWAL_ATTRIBUTE, values: [generalizedTimeNow(new Date(now))] }], { relax: true }));
      out.withdrawn.push(name);
      due(now + opts.withdrawGraceMs);
    } else if (state === 'withdrawing') {
      // A withdrawal with an unreadable start is taken to start now.
      const end = (since ?? now) + opts.withdrawGraceMs;
      if (end > now) {
        due(end);
        continue;
      }
      const mods: Modification[] = [
        { op: 'replace', type: KEY_ATTRIBUTE, values: [] },
        { op: 'replace', type: WITHDRAWAL_ATTRIBUTE, values: [] },
        { op: 'delete', type: 'objectClass', values: [ZONE_KEY_CLASS] },
      ];
      if (!(e.attrs.objectClass ?? []).some((c) => c.toLowerCase() === ZONE_KEY_CLASS.toLowerCase())) mods.pop();
      directory.write(() => directory.modifySync(sys, e.dn, mods, { relax: true }));
      out.unsigned.push(name);
    }
  }
  return out;
}

/** Longest wait between two reconcile passes: a zone added by hand while DNSSEC is off is seen within it. */
const MAX_PASS_INTERVAL_MS = 3_600_000;

/** The owner's DNSSEC duty: see the module comment. */
export interface DnssecDuty {
  /** Runs a pass now (nothing before the data dir is owned). */
  run(): ReconcileResult | undefined;
  stop(): void;
}

/**
 * Starts the duty: a pass once the data dir is `owned` (at once without
 * it), then one when the earliest withdrawal or serial refresh is due, and
 * at least every hour.
 */
export function startDnssecDuty(directory: Directory, zones: Zones, opts: DnssecOptions, log: Logger, owned?: Promise<void>): DnssecDuty {
  let allowed = owned === undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const run = (): ReconcileResult | undefined => {
    if (!allowed || stopped) return undefined;
    if (timer) clearTimeout(timer);
    timer = undefined;
    let r: ReconcileResult | undefined;
    try {
      r = reconcile(directory, zones, opts);
      for (const [what, names] of [
        ['signed with a new key', r.signed], ['DNSSEC withdrawal called off (the key is kept)', r.resumed], ['DNSSEC withdrawal begun (CDS delete published)', r.withdrawn],
        ['unsigned: key removed after the withdrawal grace', r.unsigned], ['new serial, so that secondaries renew their signatures', r.refreshed],
      ] as const) {
        if (names.length) log.info({ zones: names }, `dnssec: ${what}`);
      }
    } catch (err) {
      log.error({ err }, 'dnssec: bringing the zones to DCMX_DNSSEC failed');
    }
    const wait = Math.min(MAX_PASS_INTERVAL_MS, Math.max(0, (r?.nextDueMs ?? Infinity) - Date.now()));
    timer = setTimeout(run, wait + 10);
    timer.unref();
    return r;
  };
  if (allowed) run();
  owned?.then(() => {
    allowed = true;
    run();
  }, () => undefined);
  return {
    run,
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
