/**
 * Stored userPassword values (`{SCHEME}body`, RFC 3112 / RFC 2307 practice):
 * which schemes dcmx knows, how to read their parameters, how much work one
 * check costs, and how to check a clear-text password against one.
 *
 * Known: OpenLDAP's and Dovecot's names for the schemes user bases carry.
 * - Digests: {SHA} {SHA256} {SHA384} {SHA512} {MD5} {LDAP-MD5} (base64),
 *   {PLAIN-MD5} (hex), and the salted {SSHA} {SSHA256} {SSHA384} {SSHA512}
 *   {SMD5} (digest, then salt, base64).
 * - crypt(3) through libxcrypt: {CRYPT} with `$1$`, `$5$`, `$6$`,
 *   `$2a$`/`$2b$`/`$2y$`, `$y$` or DES (and bigcrypt); Dovecot's {MD5-CRYPT}, {SHA256-CRYPT},
 *   {SHA512-CRYPT}, {BLF-CRYPT}, {DES-CRYPT}, and {MD5} holding `$1$`.
 * - Argon2: {ARGON2} (OpenLDAP), {ARGON2I} and {ARGON2ID} (Dovecot), PHC strings.
 * - PBKDF2: {PBKDF2} {PBKDF2-SHA1} {PBKDF2-SHA256} {PBKDF2-SHA512}
 *   (`<iterations>$<salt>$<key>`, adapted base64, as OpenLDAP's pw-pbkdf2 and
 *   389-ds write them) and Dovecot's {PBKDF2} (`$1$<salt>$<rounds>$<hex>`).
 * - Clear text: {CLEARTEXT} {CLEAR} {PLAIN}.
 * Every work factor is capped (COST_CAPS): a value over a cap is refused on
 * write and never computed on verify.
 */
import * as crypto from 'node:crypto';
import { promisify } from 'node:util';
import * as argon2 from 'argon2';
import { xcrypt } from './xcrypt';

const pbkdf2 = promisify(crypto.pbkdf2);

/**
 * The most work one stored value may ask for; each is several times the
 * default of the schemes dcmx writes, and above what slapd, Dovecot,
 * mkpasswd and doveadm write by default.
 */
export const COST_CAPS = Object.freeze({
  /** PBKDF2 iterations (any digest); the derived key is at most one digest long. */
  pbkdf2Iterations: 1_000_000,
  /** SHA-256/SHA-512 crypt rounds (5000 when the value names none). */
  shaCryptRounds: 1_000_000,
  /** bcrypt cost (log2 of the rounds). */
  bcryptCost: 12,
  /** yescrypt memory × (1 + t), bytes. */
  yescryptWork: 128 * 1024 * 1024,
  /** Argon2 memory (KiB), passes and lanes. */
  argon2Memory: 65536,
  argon2Time: 8,
  argon2Parallelism: 4,
});

/** A stored value that dcmx can check a password against. */
export interface StoredPassword {
  /** The scheme name as written, upper-cased (`CRYPT`, `SSHA`, ...). */
  scheme: string;
  /** What is computed on a check: `sha512-crypt`, `bcrypt`, `argon2id`, `pbkdf2-sha512`, `ssha`, `cleartext`, ... */
  kind: string;
  /** The value after the `{SCHEME}` prefix. */
  body: string;
  /** Work parameters, where the scheme has them (rounds, iterations, cost, m/t/p). */
  params: Readonly<Record<string, number>>;
  /** Whether the value carries a salt (clear text and plain digests do not). */
  salted: boolean;
  /** Checks a clear-text password (UTF-8 bytes) against this value. */
  verify(clear: Buffer): Promise<boolean>;
}

/** Why a `{SCHEME}` value cannot be stored or checked. */
export type StoredProblem =
  | { problem: 'unknown'; scheme: string; message: string }
  | { problem: 'malformed'; scheme: string; message: string }
  | { problem: 'cost'; scheme: string; message: string };

/** The `{SCHEME}` prefix of a value, or undefined when it has none (clear text). */
export function schemeOf(value: string): string | undefined {
  return /^\{([A-Za-z0-9._-]+)\}/.exec(value)?.[1];
}

/** Constant-time comparison of two buffers of possibly different lengths. */
export function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

const DIGESTS: Record<string, { algo: string; salted: boolean; hex?: boolean }> = {
  SHA: { algo: 'sha1', salted: false },
  SHA256: { algo: 'sha256', salted: false },
  SHA384: { algo: 'sha384', salted: false },
  SHA512: { algo: 'sha512', salted: false },
  MD5: { algo: 'md5', salted: false },
  'LDAP-MD5': { algo: 'md5', salted: false },
  'PLAIN-MD5': { algo: 'md5', salted: false, hex: true },
  SSHA: { algo: 'sha1', salted: true },
  SSHA256: { algo: 'sha256', salted: true },
  SSHA384: { algo: 'sha384', salted: true },
  SSHA512: { algo: 'sha512', salted: true },
  SMD5: { algo: 'md5', salted: true },
};

/** Which crypt(3) methods each scheme name admits (Dovecot's names pin one). */
const CRYPT_SCHEMES: Record<string, readonly CryptMethod[]> = {
  CRYPT: ['md5', 'sha256', 'sha512', 'bcrypt', 'yescrypt', 'des'],
  'MD5-CRYPT': ['md5'],
  'SHA256-CRYPT': ['sha256'],
  'SHA512-CRYPT': ['sha512'],
  'BLF-CRYPT': ['bcrypt'],
  'DES-CRYPT': ['des'],
};

type CryptMethod = 'md5' | 'sha256' | 'sha512' | 'bcrypt' | 'yescrypt' | 'des';

const ARGON2_SCHEMES: Record<string, readonly string[]> = {
  ARGON2: ['argon2i', 'argon2id'],
  ARGON2I: ['argon2i'],
  ARGON2ID: ['argon2id'],
};

const PBKDF2_DIGESTS: Record<string, string> = {
  PBKDF2: 'sha1',
  'PBKDF2-SHA1': 'sha1',
  'PBKDF2-SHA256': 'sha256',
  'PBKDF2-SHA512': 'sha512',
};

const CLEAR_SCHEMES = new Set(['CLEARTEXT', 'CLEAR', 'PLAIN']);

/** True for the names of clear-text "schemes" ({CLEARTEXT} and Dovecot's {CLEAR}, {PLAIN}). */
export function isClearScheme(scheme: string): boolean {
  return CLEAR_SCHEMES.has(scheme.toUpperCase());
}

/**
 * Reads a stored value. undefined when it has no `{SCHEME}` prefix (clear
 * text); a StoredProblem when the scheme is unknown, the body malformed or
 * its work factor over COST_CAPS.
 */
export function parseStored(value: string): StoredPassword | StoredProblem | undefined {
  const written = schemeOf(value);
  if (written === undefined) return undefined;
  const scheme = written.toUpperCase();
  const body = value.slice(written.length + 2);
  const bad = (problem: StoredProblem['problem'], message: string): StoredProblem => ({ problem, scheme, message: `{${written}}: ${message}` });
  if (CLEAR_SCHEMES.has(scheme)) {
    return stored(scheme, 'cleartext', body, {}, false, async (clear) => sameBytes(clear, Buffer.from(body, 'utf8')));
  }
  // Dovecot's {MD5} is MD5-CRYPT; OpenLDAP's is a base64 digest.
  if (scheme === 'MD5' && body.startsWith('$1$')) return parseCrypt(scheme, body, ['md5'], bad);
  const digest = DIGESTS[scheme];
  if (digest) return parseDigest(scheme, body, digest, bad);
  const crypt = CRYPT_SCHEMES[scheme];
  if (crypt) return parseCrypt(scheme, body, crypt, bad);
  const argon = ARGON2_SCHEMES[scheme];
  if (argon) return parseArgon2(scheme, body, argon, bad);
  const kdf = PBKDF2_DIGESTS[scheme];
  if (kdf) return scheme === 'PBKDF2' && body.startsWith('$1$') ? parseDovecotPbkdf2(scheme, body, bad) : parsePbkdf2(scheme, body, kdf, bad);
  return { problem: 'unknown', scheme, message: `unknown password storage scheme {${written}}` };
}

/** True when parseStored's result is a StoredProblem. */
export function isProblem(p: StoredPassword | StoredProblem | undefined): p is StoredProblem {
  return p !== undefined && 'problem' in p;
}

function stored(
  scheme: string, kind: string, body: string, params: Record<string, number>, salted: boolean, verify: (clear: Buffer) => Promise<boolean>,
): StoredPassword {
  return { scheme, kind, body, params: Object.freeze(params), salted, verify };
}

type Bad = (problem: StoredProblem['problem'], message: string) => StoredProblem;

function parseDigest(scheme: string, body: string, d: { algo: string; salted: boolean; hex?: boolean }, bad: Bad): StoredPassword | StoredProblem {
  const len = crypto.createHash(d.algo).digest().length;
  let raw: Buffer;
  if (d.hex) {
    if (!/^[0-9a-fA-F]+$/.test(body) || body.length !== 2 * len) return bad('malformed', `not ${2 * len} hex digits`);
    raw = Buffer.from(body, 'hex');
  } else {
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) return bad('malformed', 'not base64');
    raw = Buffer.from(body, 'base64');
  }
  if (d.salted ? raw.length <= len || raw.length > len + 64 : raw.length !== len) {
    return bad('malformed', d.salted ? `not a ${d.algo} digest followed by a salt of 1 to 64 bytes` : `not a ${d.algo} digest`);
  }
  const want = raw.subarray(0, len);
  const salt = raw.subarray(len);
  return stored(scheme, scheme.toLowerCase(), body, {}, d.salted, async (clear) =>
    sameBytes(crypto.createHash(d.algo).update(clear).update(salt).digest(), want));
}

const B64C = '[./0-9A-Za-z]';
const CRYPT_FORMS: { method: CryptMethod; re: RegExp }[] = [
  { method: 'md5', re: new RegExp(`^\\$1\\$[^$]{0,8}\\$${B64C}{22}$`) },
  { method: 'sha256', re: new RegExp(`^\\$5\\$(?:rounds=(\\d{1,10})\\$)?[^$]{0,16}\\$${B64C}{43}$`) },
  { method: 'sha512', re: new RegExp(`^\\$6\\$(?:rounds=(\\d{1,10})\\$)?[^$]{0,16}\\$${B64C}{86}$`) },
  { method: 'bcrypt', re: new RegExp(`^\\$2[aby]\\$(\\d\\d)\\$${B64C}{53}$`) },
  { method: 'yescrypt', re: new RegExp(`^\\$y\\$(${B64C}+)\\$${B64C}+\\$${B64C}{43}$`) },
  // Traditional DES, or bigcrypt (11 more characters per 8 more of the password) as slappasswd writes it for long passwords.
  { method: 'des', re: new RegExp(`^${B64C}{13}(?:${B64C}{11}){0,7}$`) },
];

/** The `$id$` prefixes of CRYPT_FORMS. */
const CRYPT_IDS = new Set(['1', '5', '6', '2a', '2b', '2y', 'y']);

function parseCrypt(scheme: string, body: string, allowed: readonly CryptMethod[], bad: Bad): StoredPassword | StoredProblem {
  const form = CRYPT_FORMS.find((f) => f.re.test(body));
  if (!form) {
    const id = /^\$([^$]*)\$/.exec(body)?.[1];
    return id !== undefined && !CRYPT_IDS.has(id)
      ? { problem: 'unknown', scheme, message: `{${scheme}}: crypt(3) method $${id}$ is not supported` }
      : bad('malformed', 'not a crypt(3) hash dcmx knows');
  }
  if (!allowed.includes(form.method)) return bad('malformed', `holds a ${form.method} crypt(3) hash`);
  const m = form.re.exec(body)!;
  const params: Record<string, number> = {};
  switch (form.method) {
    case 'sha256':
    case 'sha512': {
      // crypt(3): 5000 rounds when the setting names none; libxcrypt clamps to at least 1000.
      params.rounds = m[1] === undefined ? 5000 : Math.max(1000, Number(m[1]));
      if (params.rounds > COST_CAPS.shaCryptRounds) return bad('cost', `${params.rounds} rounds exceed the cap of ${COST_CAPS.shaCryptRounds}`);
      break;
    }
    case 'bcrypt':
      params.cost = Number(m[1]);
      if (params.cost < 4) return bad('malformed', `bcrypt cost ${params.cost} is below 4`);
      if (params.cost > COST_CAPS.bcryptCost) return bad('cost', `bcrypt cost ${params.cost} exceeds the cap of ${COST_CAPS.bcryptCost}`);
      break;
    case 'yescrypt': {
      const y = yescryptParams(m[1]);
      if (!y) return bad('malformed', 'yescrypt parameters unreadable, or with ROM or upgrades');
      Object.assign(params, y);
      const work = 128 * y.N * y.r * y.p * (1 + y.t);
      if (work > COST_CAPS.yescryptWork) return bad('cost', `yescrypt work of ${work} bytes exceeds the cap of ${COST_CAPS.yescryptWork}`);
      break;
    }
    default:
      break;
  }
  const check = xcrypt().checksalt(body);
  if (check !== 0 && check !== 3) return bad('malformed', 'libxcrypt refuses the setting');
  const kind = form.method === 'bcrypt' || form.method === 'yescrypt' ? form.method : `${form.method}-crypt`;
  return stored(scheme, kind, body, params, true, async (clear) => {
    if (clear.includes(0)) return false;
    try {
      return sameBytes(Buffer.from(await xcrypt().crypt(clear, body), 'latin1'), Buffer.from(body, 'latin1'));
    } catch {
      return false; // libxcrypt refused (e.g. a phrase over its 512 bytes)
    }
  });
}

const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/**
 * yescrypt's variable-length parameter integers (libxcrypt
 * alg-yescrypt-common.c, decode64_uint32): flavor, log2 N, r, then an
 * optional "have" mask for p, t, g and ROM. undefined when unreadable or
 * when it asks for upgrades (g) or a ROM, which dcmx does not allow.
 */
export function yescryptParams(s: string): { N: number; r: number; p: number; t: number } | undefined {
  let i = 0;
  const next = (min: number): number | undefined => {
    let c = ITOA64.indexOf(s[i++] ?? '');
    if (c < 0) return undefined;
    let start = 0;
    let end = 47;
    let chars = 1;
    let bits = 0;
    let v = min;
    while (c > end) {
      v += (end + 1 - start) * 2 ** bits;
      start = end + 1;
      end = start + Math.floor((62 - end) / 2);
      chars++;
      bits += 6;
    }
    v += (c - start) * 2 ** bits;
    while (--chars) {
      c = ITOA64.indexOf(s[i++] ?? '');
      if (c < 0) return undefined;
      bits -= 6;
      v += c * 2 ** bits;
    }
    return v;
  };
  const flavor = next(0);
  const nLog2 = next(1);
  const r = next(1);
  if (flavor === undefined || nLog2 === undefined || r === undefined || nLog2 > 40) return undefined;
  let p = 1;
  let t = 0;
  if (i < s.length) {
    const have = next(1);
    if (have === undefined || have & ~3) return undefined; // 4: upgrades (g), 8: ROM
    if (have & 1) {
      const v = next(2);
      if (v === undefined) return undefined;
      p = v;
    }
    if (have & 2) {
      const v = next(1);
      if (v === undefined) return undefined;
      t = v;
    }
  }
  if (i !== s.length) return undefined;
  return { N: 2 ** nLog2, r, p, t };
}

function parseArgon2(scheme: string, body: string, variants: readonly string[], bad: Bad): StoredPassword | StoredProblem {
  const m = /^\$(argon2(?:i|d|id))\$(?:v=(\d+)\$)?([^$]+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/.exec(body);
  if (!m) return bad('malformed', 'not an Argon2 PHC string ($argon2id$v=19$m=...,t=...,p=...$salt$hash)');
  if (!variants.includes(m[1])) return bad('malformed', `${m[1]} is not one of ${variants.join(', ')}`);
  const params: Record<string, number> = {};
  for (const kv of m[3].split(',')) {
    const p = /^([mtp])=(\d{1,10})$/.exec(kv);
    if (!p || p[1] in params) return bad('malformed', `unexpected Argon2 parameter '${kv}'`);
    params[p[1]] = Number(p[2]);
  }
  if (params.m === undefined || params.t === undefined || params.p === undefined) return bad('malformed', 'Argon2 needs m, t and p');
  if (params.m > COST_CAPS.argon2Memory || params.t > COST_CAPS.argon2Time || params.p > COST_CAPS.argon2Parallelism) {
    return bad('cost', `Argon2 m=${params.m},t=${params.t},p=${params.p} exceeds the cap of m=${COST_CAPS.argon2Memory},t=${COST_CAPS.argon2Time},p=${COST_CAPS.argon2Parallelism}`);
  }
  return stored(scheme, m[1], body, params, true, async (clear) => {
    try {
      return await argon2.verify(body, clear);
    } catch {
      return false;
    }
  });
}

/** OpenLDAP's and passlib's adapted base64: '.' for '+', no padding. */
export function ab64encode(b: Buffer): string {
  return b.toString('base64').replace(/\+/g, '.').replace(/=+$/, '');
}

function ab64decode(s: string): Buffer {
  return Buffer.from(s.replace(/\./g, '+'), 'base64');
}

function pbkdf2Params(iterations: number, keyLength: number, digest: string, bad: Bad): StoredProblem | undefined {
  const max = crypto.createHash(digest).digest().length;
  if (iterations < 1) return bad('malformed', 'no iterations');
  if (keyLength < 16 || keyLength > max) return bad('malformed', `a derived key of ${keyLength} bytes (16 to ${max} expected)`);
  if (iterations > COST_CAPS.pbkdf2Iterations) return bad('cost', `${iterations} iterations exceed the cap of ${COST_CAPS.pbkdf2Iterations}`);
  return undefined;
}

function parsePbkdf2(scheme: string, body: string, digest: string, bad: Bad): StoredPassword | StoredProblem {
  const m = /^(\d{1,10})\$([./A-Za-z0-9+]+)\$([./A-Za-z0-9+]+)$/.exec(body);
  if (!m) return bad('malformed', 'not <iterations>$<salt>$<key>');
  const iterations = Number(m[1]);
  const salt = ab64decode(m[2]);
  const want = ab64decode(m[3]);
  const problem = pbkdf2Params(iterations, want.length, digest, bad);
  if (problem) return problem;
  return stored(scheme, `pbkdf2-${digest}`, body, { iterations, keyLength: want.length, saltLength: salt.length }, true, async (clear) =>
    sameBytes(await pbkdf2(clear, salt, iterations, want.length, digest), want));
}

/** Dovecot's PBKDF2 (PBKDF2-SHA1): `$1$<salt>$<rounds>$<hex key>`, the salt used as its characters. */
function parseDovecotPbkdf2(scheme: string, body: string, bad: Bad): StoredPassword | StoredProblem {
  const m = /^\$1\$([^$]{1,64})\$(\d{1,10})\$([0-9a-f]+)$/.exec(body);
  if (!m) return bad('malformed', "not Dovecot's $1$<salt>$<rounds>$<hex>");
  const iterations = Number(m[2]);
  const want = Buffer.from(m[3], 'hex');
  const problem = pbkdf2Params(iterations, want.length, 'sha1', bad);
  if (problem) return problem;
  const salt = Buffer.from(m[1], 'utf8');
  return stored(scheme, 'pbkdf2-sha1', body, { iterations, keyLength: want.length, saltLength: salt.length }, true, async (clear) =>
    sameBytes(await pbkdf2(clear, salt, iterations, want.length, 'sha1'), want));
}
