/**
 * NOTIFY (RFC 1996) to the secondaries in DCMX_NOTIFY when a zone's serial
 * changes, retried with back-off until each acknowledges (§3.6: "the master
 * SHOULD retry"), superseded when a newer serial of the same zone is
 * announced. Sent from its own UDP socket so replies never mix with queries.
 */
import * as dgram from 'node:dgram';
import { randomInt } from 'node:crypto';
import { isIPv6 } from 'node:net';
import type { HostPort } from '../config';
import type { Logger } from '../log';
import { encodeNotify, parseNotifyReply } from './wire';
import type { RR } from '../directory/records';
import type { Zone, Zones } from '../directory/zones';
import { ChangeFollower } from '../directory/changes';
import type { Store } from '../../storage/store';

/** The store's meta key that asks the next start to announce every zone (set by a restore, cleared once announced). */
export const ANNOUNCE_AT_START_KEY = 'announceAtStart';

/**
 * Asks the next appliance started over `store` to NOTIFY every zone once:
 * for serials moved while no appliance ran (server/backup/restore.ts),
 * which no running notifier followed. Inside the write's transaction.
 */
export function announceAtStart(store: Store): void {
  store.setMeta(ANNOUNCE_AT_START_KEY, new Date().toISOString());
}

interface Pending {
  zone: string;
  serial: number;
  /** Sent in the answer section so the secondary learns the new serial at once (RFC 1996 §3.7). */
  soa?: RR;
  target: HostPort;
  id: number;
  tries: number;
  timer?: NodeJS.Timeout;
}

/** First retry after this many ms, doubling, at most MAX_TRIES sends. */
const FIRST_RETRY_MS = 1000;
const MAX_TRIES = 8;

export class Notifier {
  private readonly sockets: { v4?: dgram.Socket; v6?: dgram.Socket } = {};
  private readonly pending = new Map<string, Pending>(); // key: zone|host|port
  private readonly byId = new Map<number, Pending>();
  private closed = false;
  private readonly closers: (() => void)[] = [];
  /** Acknowledged NOTIFYs, for tests and the admin API. */
  readonly acked: { zone: string; serial: number; target: HostPort }[] = [];

  constructor(private readonly targets: readonly HostPort[], private readonly log: Logger) {}

  private socket(host: string): dgram.Socket {
    const v6 = isIPv6(host);
    const key = v6 ? 'v6' : 'v4';
    let s = this.sockets[key];
    if (!s) {
      s = dgram.createSocket(v6 ? 'udp6' : 'udp4');
      s.on('message', (msg) => this.onReply(msg));
      s.on('error', (err) => this.log.warn({ err: err.message }, 'notify socket error'));
      s.unref();
      this.sockets[key] = s;
    }
    return s;
  }

  /** Announces a new serial of `zone` to every target. */
  announce(zone: string, serial: number, soa?: RR): void {
    if (this.closed) return;
    for (const target of this.targets) {
      const key = `${zone}|${target.host}|${target.port}`;
      const old = this.pending.get(key);
      if (old) this.forget(key, old);
      const p: Pending = { zone, serial, soa, target, id: this.freshId(), tries: 0 };
      this.pending.set(key, p);
      this.byId.set(p.id, p);
      this.send(key, p);
    }
  }

  private freshId(): number {
    let id: number;
    do id = randomInt(0, 0x10000);
    while (this.byId.has(id));
    return id;
  }

  private send(key: string, p: Pending): void {
    if (this.closed) return;
    p.tries++;
    const msg = encodeNotify(p.id, p.zone, p.soa);
    this.socket(p.target.host).send(msg, p.target.port, p.target.host, (err) => {
      if (err) this.log.debug({ err: err.message, zone: p.zone }, 'notify send failed');
    });
    if (p.tries >= MAX_TRIES) {
      p.timer = setTimeout(() => {
        this.log.warn({ zone: p.zone, target: `${p.target.host}:${p.target.port}` }, 'notify not acknowledged, giving up');
        this.forget(key, p);
      }, FIRST_RETRY_MS * 2 ** p.tries);
    } else {
      p.timer = setTimeout(() => this.send(key, p), FIRST_RETRY_MS * 2 ** (p.tries - 1));
    }
    p.timer.unref();
  }

  private forget(key: string, p: Pending): void {
    if (p.timer) clearTimeout(p.timer);
    this.pending.delete(key);
    this.byId.delete(p.id);
  }

  private onReply(msg: Buffer): void {
    const r = parseNotifyReply(msg);
    if (!r) return;
    const p = this.byId.get(r.id);
    if (!p) return;
    this.forget(`${p.zone}|${p.target.host}|${p.target.port}`, p);
    if (r.rcode !== 0) {
      // NOTAUTH, REFUSED...: the secondary will not take it; retrying would not help.
      this.log.warn({ zone: p.zone, target: `${p.target.host}:${p.target.port}`, rcode: r.rcode }, 'notify refused by secondary');
      return;
    }
    this.acked.push({ zone: p.zone, serial: p.serial, target: p.target });
    if (this.acked.length > 1000) this.acked.splice(0, this.acked.length - 1000);
    this.log.info({ zone: p.zone, serial: p.serial, target: `${p.target.host}:${p.target.port}`, rcode: r.rcode }, 'notify acknowledged');
  }

  /** Calls `f` at close (what feeds the notifier stops then). */
  onClose(f: () => void): void {
    this.closers.push(f);
  }

  /** Stops retrying and closes the sockets. */
  close(): void {
    this.closed = true;
    for (const f of this.closers.splice(0)) f();
    for (const [key, p] of this.pending) this.forget(key, p);
    for (const s of Object.values(this.sockets)) s?.close();
  }
}

/**
 * The NOTIFY sender of the process: announces every new serial of the
 * zones to `targets` (DCMX_NOTIFY). One per process, on the writer's thread,
 * whatever the number of serving threads. It follows the change log
 * (Zones.soaChanges), not this process's commits: the writer publishes
 * other processes' commits too (the `dcmx` command, writes.ts
 * watchOtherWriters), so their changes are announced like ours, once per
 * change. The catalog zone, when one is served (Zones.catalogView), is
 * announced whenever its serial moved (a zone added or removed). Should the
 * log have been trimmed past its position, every zone is announced; and
 * at start, when a restore asked for it (announceAtStart), once.
 */
export function startNotifier(zones: Zones, targets: readonly HostPort[], log: Logger): Notifier {
  const notifier = new Notifier(targets, log);
  if (targets.length === 0) return notifier;
  const announce = (list: Zone[]) => {
    for (const z of list) notifier.announce(z.name, z.soa.rdata.serial, z.soa);
  };
  const announceAll = () => announce(zones.zoneNames().map((n) => zones.zoneOf(n)).filter((z) => z !== undefined));
  const store = zones.directory.store;
  if (store.getMeta(ANNOUNCE_AT_START_KEY)) {
    // RFC 1996 §3.1: the serials a restore moved on are changes the secondaries must hear of.
    announceAll();
    store.setMeta(ANNOUNCE_AT_START_KEY, '');
  }
  // RFC 9432 §4: the catalog zone is a zone like any other; a new serial of it (a zone added or removed) is announced too.
  // One meta read per batch of changes; the catalog itself (a walk of every zone apex) is built only when it moved.
  let catalogSerial = zones.catalog === undefined ? undefined : zones.catalogSerial();
  const withCatalog = (list: Zone[]): Zone[] => {
    if (zones.catalog === undefined) return list;
    const serial = zones.catalogSerial();
    if (serial === catalogSerial) return list;
    catalogSerial = serial;
    return [...list, { name: zones.catalog, soa: zones.catalogView().soa }];
  };
  const follower = new ChangeFollower(zones.directory, {
    onChanges: (rows) => announce(withCatalog(zones.soaChanges(rows))),
    onGap: announceAll,
  });
  notifier.onClose(() => follower.stop());
  return notifier;
}
