/**
 * Change sequence numbers (CSNs) as OpenLDAP writes them,
 * `YYYYmmddHHMMSS.uuuuuuZ#cccccc#sid#mmmmmm` (time to the microsecond, a
 * count, the server id, a modification number; hexadecimal after the time):
 * what a Content Sync consumer (RFC 4533) finds in our cookies, in entryCSN
 * and in the root DSE's contextCSN, and compares as strings.
 *
 * Each change of the log gets one (migration 007 stores it beside the change
 * number), strictly greater than the one before even when the clock steps
 * back, so that string order is commit order. dcmx is one provider: its
 * server id is 000.
 */

/** An OpenLDAP CSN (slapd's `csn=` cookie field, entryCSN and contextCSN values). */
export const CSN_PATTERN = /^(\d{14})\.(\d{6})Z#([0-9a-f]{6})#([0-9a-f]{3})#([0-9a-f]{6})$/;

/** Our server id in CSNs and cookies (one provider). */
export const SERVER_ID = '000';

/** The CSN before every change: the position of a store whose log is empty. */
export const ZERO_CSN = '19700101000000.000000Z#000000#000#000000';

/** The CSN for a time in microseconds since the epoch (count and modification number 0). */
export function csnAt(micros: number): string {
  const ms = Math.floor(micros / 1000);
  const time = new Date(ms).toISOString().replace(/[-:T]/g, '').slice(0, 14);
  const us = String(micros - Math.floor(micros / 1_000_000) * 1_000_000).padStart(6, '0');
  return `${time}.${us}Z#000000#${SERVER_ID}#000000`;
}

/** Microseconds since the epoch of a CSN's time part, or undefined when `csn` is not one. */
export function csnMicros(csn: string): number | undefined {
  const m = CSN_PATTERN.exec(csn);
  if (!m) return undefined;
  const t = m[1];
  const ms = Date.UTC(+t.slice(0, 4), +t.slice(4, 6) - 1, +t.slice(6, 8), +t.slice(8, 10), +t.slice(10, 12), +t.slice(12, 14));
  return Number.isNaN(ms) ? undefined : ms * 1000 + Number(m[2]);
}

/**
 * The CSN of a new change: now, or one microsecond after `last` (the
 * previous change's) when the clock has not moved past it.
 */
export function nextCsn(last: string | undefined, nowMs = Date.now()): string {
  const now = nowMs * 1000;
  const prev = last === undefined ? undefined : csnMicros(last);
  // A later time part sorts after `last` whatever its count (legacy rows have counts, migration 007).
  return csnAt(prev !== undefined && prev >= now ? prev + 1 : now);
}

/** The server id of a CSN (slapd: the third field). */
export function csnServerId(csn: string): string | undefined {
  return CSN_PATTERN.exec(csn)?.[4];
}
