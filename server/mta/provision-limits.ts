/**
 * How fast the SMTP door may create domains (DCMX_PROVISION_CLIENT_RATE,
 * DCMX_PROVISION_RATE, DCMX_PROVISION_HOURLY): new domains per client per
 * minute, per minute overall, per hour overall, counted over sliding
 * windows of the domains actually created. A client is an IPv4 address (an
 * IPv4-mapped IPv6 address counts as IPv4) or an IPv6 /64, the smallest
 * network a site is given (RFC 6177), so one host cannot step around the
 * limit by walking its own prefix.
 *
 * The counts live in this process, one set for all its serving threads
 * (the main thread keeps them, the others ask it: server/threads), and
 * start from zero at a restart; the hourly cap bounds what a restart could
 * let through.
 */
import { clientKey } from '../net';

export interface ProvisionLimitsOptions {
  perClientPerMinute: number;
  perMinute: number;
  perHour: number;
}

const MINUTE = 60_000;
const HOUR = 3_600_000;

/** Times of events within the last `windowMs`, oldest first. */
class Window {
  private readonly times: number[] = [];
  constructor(private readonly windowMs: number) {}

  count(now: number): number {
    let drop = 0;
    while (drop < this.times.length && this.times[drop] <= now - this.windowMs) drop++;
    if (drop) this.times.splice(0, drop);
    return this.times.length;
  }

  add(now: number): void {
    this.times.push(now);
  }

  /** Takes back one event added at `at`, if it is still counted. */
  remove(at: number): void {
    const i = this.times.lastIndexOf(at);
    if (i >= 0) this.times.splice(i, 1);
  }
}

/** A reservation: refused (the sentence), or counted at `at` (given back with `forget` if no domain is created). */
export type Reservation = { refused: string } | { at: number };

/**
 * The limits as an SMTP door uses them, wherever they are kept: here
 * (ProvisionLimits) or on the main thread, asked over a channel (hence the
 * promises).
 */
export interface ProvisionLimiter {
  /** Why `client` may not create a domain now, or undefined when it may (counts nothing). */
  refusal(client: string): string | undefined | Promise<string | undefined>;
  /**
   * Checks and counts at once: refused, or one domain counted for `client`
   * now, so that creations under way together cannot all slip under a
   * limit. A creation that does not happen after all is given back (`forget`).
   */
  reserve(client: string): Reservation | Promise<Reservation>;
  /** Takes back a reservation of `client` whose domain was not created (it existed, or the write failed). */
  forget(client: string, at: number): void;
}

export class ProvisionLimits implements ProvisionLimiter {
  private readonly minute = new Window(MINUTE);
  private readonly hour = new Window(HOUR);
  private readonly clients = new Map<string, Window>();

  constructor(private readonly opts: ProvisionLimitsOptions) {}

  /**
   * Why `client` may not create a domain now (a sentence for the 4.7.1
   * reply), or undefined when it may.
   */
  refusal(client: string, now = Date.now()): string | undefined {
    if ((this.clients.get(clientKey(client))?.count(now) ?? 0) >= this.opts.perClientPerMinute) {
      return `too many new domains from ${clientKey(client)} (${this.opts.perClientPerMinute} a minute)`;
    }
    if (this.minute.count(now) >= this.opts.perMinute) return `too many new domains right now (${this.opts.perMinute} a minute)`;
    if (this.hour.count(now) >= this.opts.perHour) return `too many new domains this hour (${this.opts.perHour} an hour)`;
    return undefined;
  }

  reserve(client: string, now = Date.now()): Reservation {
    const refused = this.refusal(client, now);
    if (refused !== undefined) return { refused };
    this.record(client, now);
    return { at: now };
  }

  /** Counts one domain created for `client`. */
  record(client: string, now = Date.now()): void {
    const key = clientKey(client);
    let w = this.clients.get(key);
    if (!w) {
      // Clients whose last minute is empty are forgotten: the map holds at most a minute's creators.
      for (const [k, old] of this.clients) if (old.count(now) === 0) this.clients.delete(k);
      w = new Window(MINUTE);
      this.clients.set(key, w);
    }
    w.add(now);
    this.minute.add(now);
    this.hour.add(now);
  }

  /**
   * Takes back a domain counted by `reserve` (or `record(client, at)`) that
   * was not created after all (it existed, or the write failed): a door
   * counts before it asks the writer, so that RCPTs running meanwhile count it.
   */
  forget(client: string, at: number): void {
    this.clients.get(clientKey(client))?.remove(at);
    this.minute.remove(at);
    this.hour.remove(at);
  }
}
