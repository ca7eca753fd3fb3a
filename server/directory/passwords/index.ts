/**
 * Password policy: how new userPassword values are hashed, which stored
 * values are accepted and from whom, and how a password is checked.
 *
 * - New hashes use the configured scheme (DCMX_PASSWORD_SCHEME):
 *   `SHA512-CRYPT` (default) writes `{CRYPT}$6$rounds=N$salt$hash`, which
 *   slapd's {CRYPT} and Dovecot's {CRYPT}/passdb verify with the system's
 *   crypt(3); `ARGON2ID` writes OpenLDAP's `{ARGON2}$argon2id$v=19$m=..,t=..,p=..$..`;
 *   `PBKDF2-SHA512` writes pw-pbkdf2's `{PBKDF2-SHA512}<iterations>$<salt>$<key>`.
 * - Users give clear text and get our hash; a value with a `{SCHEME}` prefix
 *   is the administrator's alone (migrations, LDIF import), in a known
 *   scheme (schemes.ts) under the work caps, else invalidAttributeSyntax (21)
 *   or constraintViolation (19). `{CLEARTEXT}` from the administrator is
 *   hashed like clear text.
 * - Every check of a stored value counts in `stats`, by the kind of work it
 *   did; a value over the caps is not computed at all.
 */
import * as crypto from 'node:crypto';
import * as argon2 from 'argon2';
import { DirectoryError } from '../errors';
import { ab64encode, COST_CAPS, isClearScheme, isProblem, parseStored, schemeOf, type StoredPassword } from './schemes';
import { xcrypt } from './xcrypt';

export { COST_CAPS } from './schemes';

/** The schemes new hashes can be made in (DCMX_PASSWORD_SCHEME). */
export const PASSWORD_SCHEMES = ['SHA512-CRYPT', 'ARGON2ID', 'PBKDF2-SHA512'] as const;
export type PasswordScheme = (typeof PASSWORD_SCHEMES)[number];

/** Argon2 parameters: memory in KiB, passes, lanes. */
export interface Argon2Params {
  memory: number;
  time: number;
  parallelism: number;
}

/** What the configuration decides about passwords. */
export interface PasswordOptions {
  /** Scheme of new hashes. */
  scheme: PasswordScheme;
  /** SHA-512 crypt rounds (DCMX_SHA_CRYPT_ROUNDS). */
  shaCryptRounds: number;
  /** PBKDF2-SHA512 iterations (DCMX_PBKDF2_ITERATIONS). */
  pbkdf2Iterations: number;
  /** Argon2id parameters (DCMX_ARGON2_PARAMS). */
  argon2: Argon2Params;
  /** Rehash a stored value of another scheme or cost at the next successful bind (DCMX_PASSWORD_REHASH). */
  rehash: boolean;
}

/**
 * Production defaults. 100,000 SHA-512 crypt rounds cost about what the
 * earlier 100,000 PBKDF2-SHA512 iterations did (some 40 ms of one core),
 * twenty times crypt(3)'s and Dovecot's default of 5000; Argon2id as OWASP
 * recommends (19 MiB, 2 passes, 1 lane).
 */
export const DEFAULT_PASSWORD_OPTIONS: Readonly<PasswordOptions> = Object.freeze({
  scheme: 'SHA512-CRYPT',
  shaCryptRounds: 100_000,
  pbkdf2Iterations: 100_000,
  argon2: Object.freeze({ memory: 19456, time: 2, parallelism: 1 }),
  rehash: true,
});

/** The work kind (StoredPassword.kind) each configured scheme computes. */
const KIND_OF: Record<PasswordScheme, string> = {
  'SHA512-CRYPT': 'sha512-crypt',
  ARGON2ID: 'argon2id',
  'PBKDF2-SHA512': 'pbkdf2-sha512',
};

/** Longest password accepted, in UTF-8 bytes (libxcrypt's limit; SHA-crypt's work grows with the length). */
export const MAX_PASSWORD_BYTES = 512;

/** Counters for tests and monitoring. */
export interface PasswordStats {
  /** Checks computed, by work kind (`sha512-crypt`, `ssha`, ...), the dummy checks of failed binds included. */
  verified: Record<string, number>;
  /** Stored values not computed because their work factor is over the caps. */
  overCap: number;
}

/** The password policy of one directory. */
export class Passwords {
  readonly stats: PasswordStats = { verified: {}, overCap: 0 };
  private dummy: Promise<StoredPassword> | undefined;

  constructor(readonly options: Readonly<PasswordOptions> = DEFAULT_PASSWORD_OPTIONS) {}

  /** Hashes a clear-text password in the configured scheme, off the event loop. */
  async hash(clear: string): Promise<string> {
    const pw = Buffer.from(clear, 'utf8');
    const o = this.options;
    switch (o.scheme) {
      case 'SHA512-CRYPT': {
        const x = xcrypt();
        return `{CRYPT}${await x.crypt(pw, x.gensalt('$6$', o.shaCryptRounds))}`;
      }
      case 'ARGON2ID': {
        const salt = crypto.randomBytes(16);
        const raw = await argon2.hash(pw, {
          type: argon2.argon2id, memoryCost: o.argon2.memory, timeCost: o.argon2.time, parallelism: o.argon2.parallelism, salt, raw: true,
        });
        // The PHC string in the reference order m,t,p: libargon2 (slapd) and libsodium (Dovecot) read no other.
        const b64 = (b: Buffer) => b.toString('base64').replace(/=+$/, '');
        return `{ARGON2}$argon2id$v=19$m=${o.argon2.memory},t=${o.argon2.time},p=${o.argon2.parallelism}$${b64(salt)}$${b64(raw)}`;
      }
      case 'PBKDF2-SHA512': {
        const salt = crypto.randomBytes(16);
        const dk = await new Promise<Buffer>((resolve, reject) =>
          crypto.pbkdf2(pw, salt, o.pbkdf2Iterations, 64, 'sha512', (err, key) => (err ? reject(err) : resolve(key))));
        return `{PBKDF2-SHA512}${o.pbkdf2Iterations}$${ab64encode(salt)}$${ab64encode(dk)}`;
      }
    }
  }

  /**
   * Hashes a password given in clear (whatever it looks like): refused with
   * constraintViolation (19) when empty, holding a NUL or longer than
   * MAX_PASSWORD_BYTES.
   */
  async hashClear(clear: string): Promise<string> {
    if (clear === '') throw new DirectoryError('constraintViolation', 'userPassword: the password is empty');
    if (clear.includes('\0')) throw new DirectoryError('constraintViolation', 'userPassword: the password contains a NUL character');
    if (Buffer.byteLength(clear, 'utf8') > MAX_PASSWORD_BYTES) {
      throw new DirectoryError('constraintViolation', `userPassword: the password is longer than ${MAX_PASSWORD_BYTES} bytes`);
    }
    return this.hash(clear);
  }

  /**
   * Checks `clear` against one stored value. Clear text stored without a
   * scheme, unknown schemes, malformed values and values over the caps never
   * match; the last are not computed.
   */
  async verify(clear: string, value: string): Promise<boolean> {
    const p = parseStored(value);
    if (p === undefined || isProblem(p)) return false;
    return this.run(p, clear);
  }

  /**
   * Checks `clear` against the stored values of one entry (none when there
   * is no such entry) and returns the value it matches, if any. When no value
   * could be computed (none, or all unknown, malformed or over the caps), it
   * spends the work of a check against a dummy of the configured scheme
   * instead, so the time a failure takes tells nothing about the entry.
   */
  async match(clear: string, values: readonly string[]): Promise<string | undefined> {
    let computed = false;
    for (const value of values) {
      const p = parseStored(value);
      if (p === undefined) continue;
      if (isProblem(p)) {
        if (p.problem === 'cost') this.stats.overCap++;
        continue;
      }
      computed = true;
      if (await this.run(p, clear)) return value;
    }
    if (!computed) {
      this.dummy ??= this.hash(crypto.randomBytes(18).toString('base64')).then((h) => parseStored(h) as StoredPassword);
      await this.run(await this.dummy, clear);
    }
    return undefined;
  }

  private async run(p: StoredPassword, clear: string): Promise<boolean> {
    this.stats.verified[p.kind] = (this.stats.verified[p.kind] ?? 0) + 1;
    return p.verify(Buffer.from(clear, 'utf8'));
  }

  /**
   * The value to store for a userPassword value given by `fromAdmin` (the
   * administrator) or a user: clear text is hashed; a `{SCHEME}` value is
   * stored as given when it is the administrator's and storable
   * (checkStorable), `{CLEARTEXT}` hashed. A user's `{SCHEME}` value is
   * refused (50): users give their password, the server hashes it.
   */
  async prepare(value: string, fromAdmin: boolean): Promise<string> {
    const scheme = schemeOf(value);
    if (scheme === undefined) return this.hashClear(value);
    if (!fromAdmin) {
      throw new DirectoryError('insufficientAccessRights', `a pre-hashed password ({${scheme}}) is accepted from the administrator only; give the password itself`);
    }
    if (isClearScheme(scheme)) return this.hashClear(value.slice(scheme.length + 2));
    this.checkStorable(value);
    return value;
  }

  /**
   * Refuses a value that may not be stored: no `{SCHEME}` or clear text
   * (values reach the store hashed), an unknown scheme or a malformed value
   * (invalidAttributeSyntax, 21, naming the scheme), a work factor over the
   * caps (constraintViolation, 19).
   */
  checkStorable(value: string): void {
    const p = parseStored(value);
    if (p === undefined || (!isProblem(p) && p.kind === 'cleartext')) {
      throw new DirectoryError('invalidAttributeSyntax', 'userPassword: a clear-text value cannot be stored');
    }
    if (isProblem(p)) {
      throw new DirectoryError(p.problem === 'cost' ? 'constraintViolation' : 'invalidAttributeSyntax', `userPassword: ${p.message}`);
    }
  }

  /** True when a stored value (one that verified) is not in the configured scheme at the configured cost. */
  needsRehash(value: string): boolean {
    const p = parseStored(value);
    if (p === undefined || isProblem(p)) return false;
    const o = this.options;
    if (p.kind !== KIND_OF[o.scheme]) return true;
    switch (o.scheme) {
      case 'SHA512-CRYPT':
        return p.params.rounds !== o.shaCryptRounds;
      case 'ARGON2ID':
        return p.params.m !== o.argon2.memory || p.params.t !== o.argon2.time || p.params.p !== o.argon2.parallelism;
      case 'PBKDF2-SHA512':
        return p.params.iterations !== o.pbkdf2Iterations || p.params.keyLength !== 64 || p.params.saltLength < 16;
    }
  }
}
