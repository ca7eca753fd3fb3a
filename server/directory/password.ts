/**
 * userPassword storage schemes (RFC 3112 style `{SCHEME}` prefixes).
 *
 * New passwords are hashed with PBKDF2-SHA512 in the format of OpenLDAP's
 * pw-pbkdf2 module and 389-ds (`{PBKDF2-SHA512}<iterations>$<salt>$<hash>`,
 * adapted base64: '.' for '+', no padding), so an export can be loaded into
 * either. `{SSHA}`, `{SSHA256}`, `{SSHA512}`, `{SHA}` and `{CLEARTEXT}` values
 * are accepted on import and verified, never produced.
 */
import * as crypto from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2 = promisify(crypto.pbkdf2);

/** Iterations for new hashes; DCMX_PBKDF2_ITERATIONS overrides (tests lower it). */
export const DEFAULT_ITERATIONS = 100_000;

const KNOWN = /^\{(PBKDF2-SHA512|PBKDF2-SHA256|PBKDF2-SHA1|PBKDF2|SSHA512|SSHA256|SSHA|SHA512|SHA256|SHA|CLEARTEXT)\}/i;

function ab64encode(b: Buffer): string {
  return b.toString('base64').replace(/\+/g, '.').replace(/=+$/, '');
}

function ab64decode(s: string): Buffer {
  return Buffer.from(s.replace(/\./g, '+'), 'base64');
}

/** True when the value already carries a storage scheme we know (it is stored as given). */
export function isHashed(value: string): boolean {
  return KNOWN.test(value);
}

/** Hashes a clear-text password with PBKDF2-SHA512 and a 16-byte random salt. */
export async function hashPassword(clear: string, iterations = iterationsFromEnv()): Promise<string> {
  const salt = crypto.randomBytes(16);
  const dk = await pbkdf2(clear, salt, iterations, 64, 'sha512');
  return `{PBKDF2-SHA512}${iterations}$${ab64encode(salt)}$${ab64encode(dk)}`;
}

/** Synchronous variant for server-internal writes inside a transaction (bootstrap, CLI). */
export function hashPasswordSync(clear: string, iterations = iterationsFromEnv()): string {
  const salt = crypto.randomBytes(16);
  const dk = crypto.pbkdf2Sync(clear, salt, iterations, 64, 'sha512');
  return `{PBKDF2-SHA512}${iterations}$${ab64encode(salt)}$${ab64encode(dk)}`;
}

function iterationsFromEnv(): number {
  const v = Number(process.env.DCMX_PBKDF2_ITERATIONS);
  return Number.isInteger(v) && v >= 1000 ? v : DEFAULT_ITERATIONS;
}

/** Constant-time comparison of two buffers of possibly different lengths. */
function same(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

/**
 * Checks `clear` against one stored userPassword value. Unknown schemes and
 * malformed values never match. Runs the slow hash off the event loop.
 */
export async function verifyPassword(clear: string, stored: string): Promise<boolean> {
  const m = KNOWN.exec(stored);
  if (!m) return false; // never compare clear text stored without a scheme
  const scheme = m[1].toUpperCase();
  const body = stored.slice(m[0].length);
  const pw = Buffer.from(clear, 'utf8');
  switch (scheme) {
    case 'CLEARTEXT':
      return same(pw, Buffer.from(body, 'utf8'));
    case 'PBKDF2':
    case 'PBKDF2-SHA1':
    case 'PBKDF2-SHA256':
    case 'PBKDF2-SHA512': {
      const parts = body.split('$');
      if (parts.length !== 3 || !/^\d+$/.test(parts[0])) return false;
      const iterations = Number(parts[0]);
      if (iterations < 1 || iterations > 10_000_000) return false;
      const digest = scheme === 'PBKDF2-SHA512' ? 'sha512' : scheme === 'PBKDF2-SHA256' ? 'sha256' : 'sha1';
      const salt = ab64decode(parts[1]);
      const want = ab64decode(parts[2]);
      if (want.length === 0) return false;
      const got = await pbkdf2(pw, salt, iterations, want.length, digest);
      return same(got, want);
    }
    default: {
      // {SHA}, {SSHA}, {SHA256}, ...: base64(digest [+ salt]), salt appended (RFC 2307 practice).
      const algo = scheme.replace(/^S?SHA/, 'sha').replace(/^sha$/, 'sha1');
      const salted = scheme.startsWith('SS');
      const raw = Buffer.from(body, 'base64');
      const len = crypto.createHash(algo).digest().length;
      if (raw.length < len || (!salted && raw.length !== len)) return false;
      const h = crypto.createHash(algo).update(pw);
      if (salted) h.update(raw.subarray(len));
      return same(h.digest(), raw.subarray(0, len));
    }
  }
}
