/**
 * Configuration: read once from the environment at start, validated, frozen.
 *
 * The variables and defaults are the configuration contract of ARCHITECTURE.md;
 * every one is optional. A bad value throws a ConfigError naming the variable,
 * and start-up stops with that message.
 */
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as net from 'node:net';
import { DnSyntaxError, parseDn, type Dn } from '../schema/dn';
import { loadSchema } from './directory/open';
import { COST_CAPS, PASSWORD_SCHEMES, type PasswordOptions, type PasswordScheme } from './directory/passwords';
import type { ThrottleOptions } from './directory/auth-throttle';
import { parseDkimAlgorithms, type DkimAlgorithm } from './directory/dkim';
import { MAX_POLICY_AGE, parseRua, type MtaStsOptions } from './directory/mta-sts';
import type { DnssecOptions } from './directory/dnssec-state';

export type { HostPort } from './net';
import { hostAddresses, parseHostPort, type HostPort } from './net';
import { parseDirectoryUrl } from './directory-client/client';

export type ProvisioningPolicy = 'off' | 'allowlist' | 'mx';

/** DCMX_ROLE: the whole appliance, or a transfer unit alone against a remote directory. */
export type Role = 'appliance' | 'mta';

/** The remote directory of a transfer unit (DCMX_ROLE=mta). */
export interface RemoteDirectory {
  /** DCMX_DIRECTORY_URL: ldap:// or ldaps://. */
  url: string;
  /**
   * DCMX_DIRECTORY_HOST (default: the URL's host): the mail host name of the
   * appliance that holds the directory — the MX target of the domains it
   * provisions, so the unit routes them as that appliance does, and the
   * holder of every mailbox without mailHost.
   */
  host: string;
  /** DCMX_DIRECTORY_STARTTLS: upgrade an ldap:// connection with StartTLS (RFC 4511 §4.14). */
  startTls: boolean;
  /** DCMX_DIRECTORY_CA: PEM certificates to trust for its TLS (default: the system's CAs). */
  ca: string | undefined;
  /** DCMX_DIRECTORY_BIND_DN / DCMX_DIRECTORY_PASSWORD: the identity the unit binds with. */
  bindDn: string;
  password: string;
}

/** pino's levels; `silent` logs nothing. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The whole validated configuration. Each endpoint receives its slice. */
export interface Config {
  /** DCMX_ROLE. */
  role: Role;
  /** The remote directory (DCMX_ROLE=mta only). */
  directory: RemoteDirectory | undefined;
  dataDir: string;
  /** pino level of the process log (DCMX_LOG_LEVEL). */
  logLevel: LogLevel;
  /**
   * Serving threads (DCMX_THREADS): 1 serves everything on the main thread;
   * N >= 2 runs N worker threads, each listening on every port with
   * reusePort (server/threads/host.ts).
   */
  threads: number;
  listen: string;
  hostname: string;
  suffix: string;
  adminDN: string;
  /**
   * Replication identities (DCMX_REPLICATOR_DNS, separated by `;`): entries
   * below the suffix that, bound, read every attribute of every entry,
   * userPassword included, as a Content Sync consumer (an OpenLDAP replica)
   * needs. The administrator does anyway.
   */
  replicatorDNs: string[];
  /**
   * Transfer unit identities (DCMX_UNIT_DNS, separated by `;`): entries below
   * the suffix that a remote transfer unit binds as. Bound, they read as a
   * user does (no one's userPassword), are held to no size or time limit,
   * and may call the provisioning extended operation.
   */
  unitDNs: string[];
  /** Undefined when the password is to be generated (or read back) from the data dir. */
  adminPassword: string | undefined;
  ldap: {
    port: number;
    /** Largest LDAP PDU accepted, in bytes (server/ldap-framing.ts). */
    maxPdu: number;
    /** Deepest BER nesting accepted (filters nest; RFC 4511 sets no limit). */
    maxDepth: number;
    /** Default and ceiling for search size limits (entries). */
    sizeLimit: number;
    /** Default and ceiling for search time limits (seconds). */
    timeLimit: number;
    /** Seconds an idle connection is kept. */
    idleTimeout: number;
    /** Seconds a client has to complete a request PDU once its first byte has arrived. */
    pduTimeout: number;
    /** Concurrent LDAP connections; more are refused with a Notice of Disconnection (unavailable). */
    maxConnections: number;
    /** Concurrent LDAP connections of one client address (IPv6: one /64); more are refused the same way. */
    clientConnections: number;
    /** Seconds an idle connection is kept while more than 3/4 of maxConnections are open (never more than idleTimeout). */
    busyIdleTimeout: number;
    /** Extra attribute names to index besides the built-in set. */
    extraIndexes: string[];
    /** Bytes a Content Sync persist phase may leave unsent before its consumer is disconnected (server/ldap/sync.ts). */
    syncBacklog: number;
  };
  dns: {
    port: number;
    axfrAllow: string[];
    notify: HostPort[];
    /** Ready wire answers kept (0 disables the cache). */
    cacheEntries: number;
    /** UDP response rate limit per client network and response, per second (0 = off). */
    rrlRate: number;
    /** Every slip-th limited response goes out truncated (0 = drop all). */
    rrlSlip: number;
    /** DCMX_DNS_UDP_BATCH: serve UDP through native/udpbatch (recvmmsg/sendmmsg) where it is available. */
    udpBatch: boolean;
    /** The catalog zone served (RFC 9432, directory/catalog.ts), lower case without the trailing dot; none when unset. */
    catalog: string | undefined;
    /** DCMX_DNSSEC and DCMX_DNSSEC_WITHDRAW_GRACE (seconds, kept here in ms): directory/dnssec-state.ts. */
    dnssec: DnssecOptions;
  };
  smtp: {
    port: number;
    relayNetworks: string[];
    /** Largest message accepted (SIZE, RFC 1870), bytes. */
    maxSize: number;
    /** Recipients per message (RFC 5321 §4.5.3.1.8 requires at least 100). */
    maxRecipients: number;
    /** Concurrent SMTP clients. */
    maxClients: number;
    /** Concurrent SMTP connections of one client address (IPv6: one /64), as Postfix's smtpd_client_connection_count_limit; DCMX_RELAY_NETWORKS are exempt. */
    clientConnections: number;
    /** Idle seconds before a session is closed while more than 3/4 of maxClients are connected (Postfix's stress-mode smtpd_timeout). */
    busyTimeout: number;
    /** Idle seconds before a session is closed (RFC 5321 §4.5.3.2 suggests 5 min). */
    socketTimeout: number;
    /** Early-talker delay before the greeting, ms, for non-loopback clients (loopback gets none). */
    greetingDelay: number;
    /** PEM certificate and key for STARTTLS; when unset, a self-signed pair is generated once in the data dir. */
    tlsCert: string | undefined;
    tlsKey: string | undefined;
    /** AUTH failures in one session after which it is closed with 421 (Postfix's smtpd_hard_error_limit, for AUTH). */
    authFailures: number;
    /** Received: header fields at which a message is refused as a loop (554 5.4.6). */
    hopLimit: number;
  };
  mta: {
    /** Entries in the transfer unit's directory cache. */
    cacheSize: number;
    /** Milliseconds between change log checks for writes made by other processes. */
    changePollMs: number;
    /** Seconds a message may stay queued before it bounces (RFC 5321 §4.5.4.1: 4-5 days). */
    queueLifetime: number;
    /** First retry after this many seconds, doubling up to retryMax. */
    retryBase: number;
    retryMax: number;
    /** Messages delivered at once. */
    concurrency: number;
    /** Port of outbound SMTP next hops (25; tests point it at a loopback sink). */
    relayPort: number;
    /**
     * DCMX_MAIL_GROUP, as a gid: the group that shares the Maildirs (an IMAP
     * server's mail user, e.g. Dovecot's vmail, is in it). Undefined: the
     * Maildirs are this process's user's alone (0700, messages 0600).
     */
    mailGroup: number | undefined;
  };
  http: {
    port: number;
    /** DCMX_HTTPS_PORT: the same endpoint over TLS with the appliance's certificate (admin/http.ts); undefined: off. 0: any free port. */
    httpsPort: number | undefined;
    /** CIDRs that may read everything but /health (routes, zones, stats). */
    allow: string[];
    /** Host names besides DCMX_HOSTNAME that requests may name in Host (a reverse proxy's); see admin/http.ts. */
    hosts: string[];
    /** The web console's sessions (admin/console/sessions.ts): idle expiry and longest life, ms (DCMX_CONSOLE_IDLE / DCMX_CONSOLE_MAX_AGE, seconds). */
    console: { idleMs: number; maxAgeMs: number };
  };
  /** History kept in the store (server/directory/retention.ts); 0 = everything. */
  retention: {
    changelogKeep: number;
    journalKeep: number;
  };
  provisioning: ProvisioningPolicy;
  provisionAllow: string[];
  /**
   * How many new domains the SMTP door may create (server/mta/policy.ts);
   * past a limit an RCPT for a new domain gets 450 4.7.1 and nothing is written.
   */
  provisionLimits: {
    /** New domains per client (IPv4 address, IPv6 /64) per minute. */
    perClientPerMinute: number;
    /** New domains per minute, all clients together. */
    perMinute: number;
    /** New domains per hour, all clients together. */
    perHour: number;
  };
  /** What a new domain gets (Mail-in-a-Box style defaults). */
  newDomain: {
    /** Accept any local part into the domain's catch-all mailbox. */
    catchall: boolean;
    /** SPF TXT at the domain ('' for none). */
    spf: string;
    /** DMARC TXT at _dmarc.<domain> ('' for none). */
    dmarc: string;
    /** DKIM keys a new domain gets (server/directory/dkim.ts); empty: none. */
    dkim: DkimAlgorithm[];
    /** MTA-STS policy and TLSRPT record a new domain publishes (server/directory/mta-sts.ts). */
    mtaSts: MtaStsOptions;
  };
  /** DKIM key rotation (server/directory/dkim-rotation.ts). */
  dkim: {
    /** DCMX_DKIM_RETIRE_AFTER: seconds a rotated-out selector stays published before its entry (key record and key) goes. */
    retireAfter: number;
  };
  /**
   * DCMX_MTA_STS_CA: PEM certificates trusted besides the system's CAs when
   * outbound delivery checks a recipient domain's MTA-STS policy host and MX
   * hosts (server/mta/mta-sts.ts); undefined: the system's only.
   */
  mtaStsCa: string | undefined;
  upstreamDns: HostPort[];
  selfAddresses: string[];
  /** How new passwords are hashed, and whether stored ones are rehashed at bind (server/directory/passwords). */
  passwords: PasswordOptions;
  /** The guessing throttle of LDAP binds and SMTP AUTH (server/directory/auth-throttle.ts). */
  throttle: ThrottleOptions;
}

/** Thrown for a bad configuration value; the message names the variable. */
export class ConfigError extends Error {
  constructor(readonly variable: string, problem: string) {
    super(`${variable}: ${problem}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** The most serving threads DCMX_THREADS may ask for. */
const MAX_THREADS = 256;

function str(env: Env, name: string, fallback: string): string {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  return v;
}

function port(env: Env, name: string, fallback: number): number {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  if (!/^\d+$/.test(v) || Number(v) > 65535) {
    throw new ConfigError(name, `'${v}' is not a port number (0-65535)`);
  }
  return Number(v);
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
    throw new ConfigError(name, `'${v}' is not an integer between ${min} and ${max}`);
  }
  return Number(v);
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  if (/^(1|true|on|yes)$/i.test(v)) return true;
  if (/^(0|false|off|no)$/i.test(v)) return false;
  throw new ConfigError(name, `'${v}' is not on or off`);
}

/**
 * DCMX_MTA_STS (`testing`, the default; `enforce`; `off`), DCMX_MTA_STS_MAX_AGE
 * and DCMX_TLSRPT_RUA. `enforce` tells senders to refuse mail they cannot
 * deliver over TLS that verifies: only for a certificate of the operator's
 * (DCMX_TLS_CERT), never the self-signed one made in the data dir.
 */
function mtaStsOptions(env: Env): MtaStsOptions {
  const mode = str(env, 'DCMX_MTA_STS', 'testing').toLowerCase();
  if (mode !== 'testing' && mode !== 'enforce' && mode !== 'off') throw new ConfigError('DCMX_MTA_STS', `'${mode}' is not one of testing, enforce, off`);
  if (mode === 'enforce' && !env.DCMX_TLS_CERT) {
    throw new ConfigError('DCMX_MTA_STS', 'enforce needs a real certificate for the policy host and the MX (DCMX_TLS_CERT): senders would refuse the self-signed one made in the data dir');
  }
  let rua: string;
  try {
    rua = parseRua(env.DCMX_TLSRPT_RUA ?? 'mailto:postmaster@{domain}');
  } catch (err) {
    throw new ConfigError('DCMX_TLSRPT_RUA', (err as Error).message);
  }
  return { mode, maxAge: int(env, 'DCMX_MTA_STS_MAX_AGE', 604800, 86400, MAX_POLICY_AGE), rua };
}

/** DCMX_NEW_DOMAIN_DKIM: `rsa` (default), `ed25519`, `rsa,ed25519`, or `off`. */
function dkimAlgorithms(env: Env): DkimAlgorithm[] {
  try {
    return parseDkimAlgorithms(env.DCMX_NEW_DOMAIN_DKIM ?? 'rsa');
  } catch (err) {
    throw new ConfigError('DCMX_NEW_DOMAIN_DKIM', (err as Error).message);
  }
}

function list(env: Env, name: string): string[] {
  const v = env[name];
  if (!v) return [];
  return v.split(/[\s,]+/).filter(Boolean);
}

/** A list of address:port pairs; addresses must be IP literals (no lookups at start-up). */
function hostPorts(env: Env, name: string, defaultPort: number): HostPort[] {
  return list(env, name).map((s) => {
    const hp = parseHostPort(s, defaultPort);
    if (!hp) throw new ConfigError(name, `'${s}' is not address:port`);
    if (!net.isIP(hp.host)) throw new ConfigError(name, `'${hp.host}' is not an IP address`);
    return hp;
  });
}

/** True when `s` is an address or an address/prefix CIDR (v4 or v6). */
export function isCidr(s: string): boolean {
  const [addr, bits, ...rest] = s.split('/');
  if (rest.length) return false;
  const fam = net.isIP(addr);
  if (!fam) return false;
  if (bits === undefined) return true;
  if (!/^\d+$/.test(bits)) return false;
  return Number(bits) <= (fam === 4 ? 32 : 128);
}

/** DCMX_DNS_CATALOG: the catalog zone's name (a DNS name, trailing dot optional), or unset. */
function catalogName(env: Env): string | undefined {
  const v = str(env, 'DCMX_DNS_CATALOG', '');
  if (v === '') return undefined;
  if (v === '.' || !HOST_SHAPE.test(v)) throw new ConfigError('DCMX_DNS_CATALOG', `'${v}' is not a DNS name (e.g. catalog.invalid.)`);
  return v.toLowerCase().replace(/\.$/, '');
}

function cidrs(env: Env, name: string): string[] {
  const l = list(env, name);
  for (const c of l) if (!isCidr(c)) throw new ConfigError(name, `'${c}' is not an address or CIDR`);
  return l;
}

/** Parses an RFC 4514 DN (schema/dn.ts) whose attribute types the schema knows; an empty DN is refused. */
function dn(name: string, value: string): Dn {
  let parsed: Dn;
  try {
    parsed = parseDn(value);
    loadSchema().normalizeDn(parsed);
  } catch (e) {
    if (e instanceof DnSyntaxError) throw new ConfigError(name, `'${value}' is not a DN (${e.message.replace(/^invalid DN '.*': /s, '')})`);
    throw e;
  }
  if (parsed.length === 0) throw new ConfigError(name, 'is empty; a DN is needed');
  return parsed;
}

/** The lower-case canonical name of an RDN's only attribute type; undefined for a multi-valued RDN. */
function rdnType(dn: Dn): string | undefined {
  return dn[0].length === 1 ? loadSchema().attr(dn[0][0].type)?.lname : undefined;
}

/** Naming attributes the suffix entry can be created with (Directory.bootstrap). */
const SUFFIX_TYPES = ['o', 'dc', 'ou', 'c'];

/**
 * Reads a PEM file named by `name`: the certificate (`cert`) or the private
 * key (`key`). Unreadable, not PEM or not parseable is a ConfigError.
 */
function pemFile(name: string, file: string, kind: 'cert' | 'key'): crypto.X509Certificate | crypto.KeyObject {
  let pem: Buffer;
  try {
    pem = fs.readFileSync(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new ConfigError(name, `cannot read ${file} (${err.code ?? err.message})`);
  }
  const label = kind === 'cert' ? /-----BEGIN CERTIFICATE-----/ : /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/;
  if (!label.test(pem.toString('latin1'))) {
    throw new ConfigError(name, `${file} is not a PEM ${kind === 'cert' ? 'certificate' : 'private key'}`);
  }
  try {
    return kind === 'cert' ? new crypto.X509Certificate(pem) : crypto.createPrivateKey(pem);
  } catch (e) {
    throw new ConfigError(name, `${file} is not a usable PEM ${kind === 'cert' ? 'certificate' : 'private key'} (${(e as Error).message})`);
  }
}

const HOST_SHAPE = /^(?=.{1,253}\.?$)([A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** DCMX_ARGON2_PARAMS: `m=<KiB>,t=<passes>,p=<lanes>` (any order, each at most once), within COST_CAPS. */
function argon2Params(env: Env): PasswordOptions['argon2'] {
  const name = 'DCMX_ARGON2_PARAMS';
  const v = str(env, name, 'm=19456,t=2,p=1');
  const got: Record<string, number> = {};
  for (const kv of v.split(',')) {
    const m = /^\s*([mtp])=(\d{1,7})\s*$/.exec(kv);
    if (!m || m[1] in got) throw new ConfigError(name, `'${v}' is not m=<KiB>,t=<passes>,p=<lanes>`);
    got[m[1]] = Number(m[2]);
  }
  const { m = 19456, t = 2, p = 1 } = got;
  if (m < 8 * p || m > COST_CAPS.argon2Memory) throw new ConfigError(name, `m=${m} is not between ${8 * p} (8 KiB per lane) and ${COST_CAPS.argon2Memory} KiB`);
  if (t < 1 || t > COST_CAPS.argon2Time) throw new ConfigError(name, `t=${t} is not between 1 and ${COST_CAPS.argon2Time}`);
  if (p < 1 || p > COST_CAPS.argon2Parallelism) throw new ConfigError(name, `p=${p} is not between 1 and ${COST_CAPS.argon2Parallelism}`);
  return { memory: m, time: t, parallelism: p };
}

/** The password settings (DCMX_PASSWORD_SCHEME and the work factors of new hashes). */
function passwordOptions(env: Env): PasswordOptions {
  const scheme = str(env, 'DCMX_PASSWORD_SCHEME', 'SHA512-CRYPT').toUpperCase();
  if (!(PASSWORD_SCHEMES as readonly string[]).includes(scheme)) {
    throw new ConfigError('DCMX_PASSWORD_SCHEME', `'${env.DCMX_PASSWORD_SCHEME}' is not one of ${PASSWORD_SCHEMES.join(', ')}`);
  }
  return {
    scheme: scheme as PasswordScheme,
    // crypt(3) uses at least 1000 rounds.
    shaCryptRounds: int(env, 'DCMX_SHA_CRYPT_ROUNDS', 100_000, 1000, COST_CAPS.shaCryptRounds),
    pbkdf2Iterations: int(env, 'DCMX_PBKDF2_ITERATIONS', 100_000, 1000, COST_CAPS.pbkdf2Iterations),
    argon2: argon2Params(env),
    rehash: bool(env, 'DCMX_PASSWORD_REHASH', true),
  };
}

/** The guessing throttle's settings (DCMX_AUTH_*); the delays stay below the window. */
function throttleOptions(env: Env): ThrottleOptions {
  const window = int(env, 'DCMX_AUTH_WINDOW', 900, 1, 86400);
  const delayMs = int(env, 'DCMX_AUTH_DELAY', 500, 0, 60_000);
  const maxDelayMs = int(env, 'DCMX_AUTH_DELAY_MAX', 8000, 0, 60_000);
  if (maxDelayMs < delayMs) throw new ConfigError('DCMX_AUTH_DELAY_MAX', `${maxDelayMs} is below DCMX_AUTH_DELAY (${delayMs})`);
  return {
    windowMs: window * 1000,
    accountFailures: int(env, 'DCMX_AUTH_FAILURES', 10, 1, 100_000),
    clientFailures: int(env, 'DCMX_AUTH_CLIENT_FAILURES', 50, 1, 1_000_000),
    delayMs,
    maxDelayMs,
  };
}

const DIRECTORY_VARIABLES = ['DCMX_DIRECTORY_URL', 'DCMX_DIRECTORY_BIND_DN', 'DCMX_DIRECTORY_PASSWORD', 'DCMX_DIRECTORY_STARTTLS', 'DCMX_DIRECTORY_CA', 'DCMX_DIRECTORY_HOST'];

/**
 * DCMX_ROLE and, for `mta`, the remote directory: a URL (required), the
 * bind identity (a DN and its password, both or neither), StartTLS, a CA
 * file. The DCMX_DIRECTORY_* variables belong to the `mta` role: set for
 * the appliance, which is the directory, they are a mistake and stop
 * start-up.
 */
function roleAndDirectory(env: Env): { role: Role; directory: RemoteDirectory | undefined } {
  const role = str(env, 'DCMX_ROLE', 'appliance');
  if (role !== 'appliance' && role !== 'mta') throw new ConfigError('DCMX_ROLE', `'${role}' is not one of appliance, mta`);
  if (role === 'appliance') {
    const stray = DIRECTORY_VARIABLES.find((v) => env[v]);
    if (stray) throw new ConfigError(stray, 'is for DCMX_ROLE=mta only (the appliance holds the directory itself)');
    return { role, directory: undefined };
  }
  const url = env.DCMX_DIRECTORY_URL;
  if (!url) throw new ConfigError('DCMX_DIRECTORY_URL', 'is required with DCMX_ROLE=mta (ldap://host:port or ldaps://host:port of the directory)');
  let parsed;
  try {
    parsed = parseDirectoryUrl(url);
  } catch (e) {
    throw new ConfigError('DCMX_DIRECTORY_URL', (e as Error).message);
  }
  const bindDn = env.DCMX_DIRECTORY_BIND_DN ?? '';
  if (bindDn) dn('DCMX_DIRECTORY_BIND_DN', bindDn);
  const password = env.DCMX_DIRECTORY_PASSWORD ?? '';
  if (!bindDn !== !password) {
    throw new ConfigError(bindDn ? 'DCMX_DIRECTORY_PASSWORD' : 'DCMX_DIRECTORY_BIND_DN', 'DCMX_DIRECTORY_BIND_DN and DCMX_DIRECTORY_PASSWORD are set together');
  }
  const startTls = bool(env, 'DCMX_DIRECTORY_STARTTLS', false);
  if (startTls && parsed.secure) throw new ConfigError('DCMX_DIRECTORY_STARTTLS', 'is for ldap:// URLs (ldaps:// is TLS from the start)');
  const ca = env.DCMX_DIRECTORY_CA || undefined;
  if (ca) pemFile('DCMX_DIRECTORY_CA', ca, 'cert');
  const host = str(env, 'DCMX_DIRECTORY_HOST', parsed.host).replace(/\.$/, '').toLowerCase();
  if (!HOST_SHAPE.test(host) && !net.isIP(host)) throw new ConfigError('DCMX_DIRECTORY_HOST', `'${host}' is not a host name`);
  return { role, directory: { url, host, startTls, ca: ca && fs.readFileSync(ca, 'utf8'), bindDn, password } };
}

/**
 * DCMX_MAIL_GROUP: a gid (digits), or a group name looked up through the
 * system's name service (`getent group`, so NSS groups count too). Empty or
 * unset: undefined.
 */
function mailGroup(env: Env): number | undefined {
  const v = (env.DCMX_MAIL_GROUP ?? '').trim();
  if (v === '') return undefined;
  if (/^\d+$/.test(v)) {
    const gid = Number(v);
    if (gid > 0xfffffffe) throw new ConfigError('DCMX_MAIL_GROUP', `'${v}' is not a group id`);
    return gid;
  }
  if (!/^[A-Za-z_][A-Za-z0-9_.-]*\$?$/.test(v)) throw new ConfigError('DCMX_MAIL_GROUP', `'${v}' is not a group name or id`);
  let line: string;
  try {
    line = execFileSync('getent', ['group', v], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
  } catch {
    throw new ConfigError('DCMX_MAIL_GROUP', `no group '${v}' on this system (getent group ${v})`);
  }
  const gid = Number(line.split(':')[2]);
  if (!Number.isInteger(gid)) throw new ConfigError('DCMX_MAIL_GROUP', `getent group ${v} gave no group id`);
  return gid;
}

/** Reads and validates the configuration from `env` (default: process.env). */
export function loadConfig(env: Env = process.env): Readonly<Config> {
  const dataDir = path.resolve(str(env, 'DCMX_DATA_DIR', './data'));
  const listen = str(env, 'DCMX_LISTEN', '0.0.0.0');
  if (!net.isIP(listen)) throw new ConfigError('DCMX_LISTEN', `'${listen}' is not an IP address`);

  const hostname = str(env, 'DCMX_HOSTNAME', os.hostname()).replace(/\.$/, '').toLowerCase();
  if (!HOST_SHAPE.test(hostname)) throw new ConfigError('DCMX_HOSTNAME', `'${hostname}' is not a host name`);

  const logLevel = str(env, 'DCMX_LOG_LEVEL', 'info') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError('DCMX_LOG_LEVEL', `'${logLevel}' is not one of ${LOG_LEVELS.join(', ')}`);

  const schema = loadSchema();
  const suffix = str(env, 'DCMX_SUFFIX', 'o=internet');
  const suffixDn = dn('DCMX_SUFFIX', suffix);
  if (!SUFFIX_TYPES.includes(rdnType(suffixDn) ?? '')) {
    throw new ConfigError('DCMX_SUFFIX', `'${suffix}' must be named by one of ${SUFFIX_TYPES.join(', ')} (a single-valued first RDN)`);
  }
  const adminDN = str(env, 'DCMX_ADMIN_DN', `cn=admin,${suffix}`);
  const adminDn = dn('DCMX_ADMIN_DN', adminDN);
  if (rdnType(adminDn) !== 'cn') throw new ConfigError('DCMX_ADMIN_DN', `'${adminDN}' must be named by cn (cn=...,${suffix})`);
  const suffixNdn = schema.normalizeDn(suffixDn);
  if (!schema.normalizeDn(adminDn).endsWith(',' + suffixNdn)) {
    throw new ConfigError('DCMX_ADMIN_DN', `'${adminDN}' is not below DCMX_SUFFIX '${suffix}'`);
  }

  /** DNs below the suffix, separated by `;` (DNs contain commas). */
  const dnsBelowSuffix = (name: string): string[] => {
    const dns = (env[name] ?? '').split(';').map((v) => v.trim()).filter(Boolean);
    for (const r of dns) {
      if (!schema.normalizeDn(dn(name, r)).endsWith(',' + suffixNdn)) throw new ConfigError(name, `'${r}' is not below DCMX_SUFFIX '${suffix}'`);
    }
    return dns;
  };
  const replicatorDNs = dnsBelowSuffix('DCMX_REPLICATOR_DNS');
  const unitDNs = dnsBelowSuffix('DCMX_UNIT_DNS');

  const adminPassword = env.DCMX_ADMIN_PASSWORD || undefined;
  if (adminPassword !== undefined && adminPassword.length < 8) {
    throw new ConfigError('DCMX_ADMIN_PASSWORD', 'must be at least 8 characters');
  }

  const provisioning = str(env, 'DCMX_PROVISIONING', 'mx');
  if (provisioning !== 'off' && provisioning !== 'allowlist' && provisioning !== 'mx') {
    throw new ConfigError('DCMX_PROVISIONING', `'${provisioning}' is not one of off, allowlist, mx`);
  }
  const provisionAllow = list(env, 'DCMX_PROVISION_ALLOW').map((s) => s.replace(/^\.|\.$/g, '').toLowerCase());
  for (const s of provisionAllow) {
    if (!HOST_SHAPE.test(s)) throw new ConfigError('DCMX_PROVISION_ALLOW', `'${s}' is not a domain name`);
  }
  const selfAddresses = env.DCMX_SELF_ADDRESSES ? list(env, 'DCMX_SELF_ADDRESSES') : hostAddresses({ routable: true });
  for (const a of selfAddresses) {
    if (!net.isIP(a)) throw new ConfigError('DCMX_SELF_ADDRESSES', `'${a}' is not an IP address`);
  }
  const httpHosts = list(env, 'DCMX_HTTP_HOSTS').map((s) => s.replace(/\.$/, '').toLowerCase());
  for (const h of httpHosts) {
    if (!HOST_SHAPE.test(h)) throw new ConfigError('DCMX_HTTP_HOSTS', `'${h}' is not a host name`);
  }
  const extraIndexes = list(env, 'DCMX_LDAP_INDEXES');
  for (const a of extraIndexes) {
    if (!/^[A-Za-z][A-Za-z0-9-]*$/.test(a)) throw new ConfigError('DCMX_LDAP_INDEXES', `'${a}' is not an attribute name`);
    if (!schema.attr(a)) throw new ConfigError('DCMX_LDAP_INDEXES', `'${a}' is not an attribute type of the schema`);
  }

  if (!!env.DCMX_TLS_CERT !== !!env.DCMX_TLS_KEY) {
    throw new ConfigError(env.DCMX_TLS_CERT ? 'DCMX_TLS_KEY' : 'DCMX_TLS_CERT', 'DCMX_TLS_CERT and DCMX_TLS_KEY are set together');
  }
  if (env.DCMX_TLS_CERT && env.DCMX_TLS_KEY) {
    const cert = pemFile('DCMX_TLS_CERT', env.DCMX_TLS_CERT, 'cert') as crypto.X509Certificate;
    const key = pemFile('DCMX_TLS_KEY', env.DCMX_TLS_KEY, 'key') as crypto.KeyObject;
    if (!cert.checkPrivateKey(key)) {
      throw new ConfigError('DCMX_TLS_KEY', `${env.DCMX_TLS_KEY} is not the private key of the certificate in DCMX_TLS_CERT`);
    }
  }
  const config: Config = {
    ...roleAndDirectory(env),
    dataDir,
    logLevel,
    threads: int(env, 'DCMX_THREADS', Math.min(MAX_THREADS, os.availableParallelism()), 1, MAX_THREADS),
    listen,
    hostname,
    suffix,
    adminDN,
    replicatorDNs,
    unitDNs,
    adminPassword,
    ldap: {
      port: port(env, 'DCMX_LDAP_PORT', 1389),
      maxPdu: int(env, 'DCMX_LDAP_MAX_PDU', 1024 * 1024, 1024, 256 * 1024 * 1024),
      maxDepth: int(env, 'DCMX_LDAP_MAX_DEPTH', 64, 8, 1000),
      sizeLimit: int(env, 'DCMX_LDAP_SIZE_LIMIT', 10000, 1, 100_000_000),
      timeLimit: int(env, 'DCMX_LDAP_TIME_LIMIT', 60, 1, 86400),
      idleTimeout: int(env, 'DCMX_LDAP_IDLE_TIMEOUT', 900, 1, 86400),
      pduTimeout: int(env, 'DCMX_LDAP_PDU_TIMEOUT', 30, 1, 3600),
      maxConnections: int(env, 'DCMX_LDAP_MAX_CONNECTIONS', 1024, 1, 1_000_000),
      clientConnections: int(env, 'DCMX_LDAP_CLIENT_CONNECTIONS', 64, 1, 1_000_000),
      busyIdleTimeout: int(env, 'DCMX_LDAP_BUSY_IDLE_TIMEOUT', 10, 1, 86400),
      extraIndexes,
      syncBacklog: int(env, 'DCMX_LDAP_SYNC_BACKLOG', 16 * 1024 * 1024, 64 * 1024, 1024 * 1024 * 1024),
    },
    dns: {
      port: port(env, 'DCMX_DNS_PORT', 1053),
      axfrAllow: cidrs(env, 'DCMX_AXFR_ALLOW'),
      notify: hostPorts(env, 'DCMX_NOTIFY', 53),
      cacheEntries: int(env, 'DCMX_DNS_CACHE_ENTRIES', 20_000, 0, 10_000_000),
      rrlRate: int(env, 'DCMX_DNS_RRL', 0, 0, 1_000_000),
      rrlSlip: int(env, 'DCMX_DNS_RRL_SLIP', 2, 0, 10),
      udpBatch: bool(env, 'DCMX_DNS_UDP_BATCH', true),
      catalog: catalogName(env),
      dnssec: {
        enabled: bool(env, 'DCMX_DNSSEC', true),
        withdrawGraceMs: int(env, 'DCMX_DNSSEC_WITHDRAW_GRACE', 7 * 86400, 1, 366 * 86400) * 1000,
      },
    },
    smtp: {
      port: port(env, 'DCMX_SMTP_PORT', 2525),
      relayNetworks: cidrs(env, 'DCMX_RELAY_NETWORKS'),
      maxSize: int(env, 'DCMX_SMTP_MAX_SIZE', 25 * 1024 * 1024, 1024, 2 * 1024 * 1024 * 1024),
      maxRecipients: int(env, 'DCMX_SMTP_MAX_RECIPIENTS', 100, 1, 100_000),
      maxClients: int(env, 'DCMX_SMTP_MAX_CLIENTS', 200, 1, 100_000),
      clientConnections: int(env, 'DCMX_SMTP_CLIENT_CONNECTIONS', 20, 1, 100_000),
      busyTimeout: int(env, 'DCMX_SMTP_BUSY_TIMEOUT', 10, 1, 3600),
      socketTimeout: int(env, 'DCMX_SMTP_TIMEOUT', 300, 1, 3600),
      greetingDelay: int(env, 'DCMX_SMTP_GREETING_DELAY', 100, 0, 60_000),
      tlsCert: env.DCMX_TLS_CERT || undefined,
      tlsKey: env.DCMX_TLS_KEY || undefined,
      authFailures: int(env, 'DCMX_SMTP_AUTH_FAILURES', 3, 1, 100),
      hopLimit: int(env, 'DCMX_SMTP_HOP_LIMIT', 50, 2, 1000),
    },
    mta: {
      cacheSize: int(env, 'DCMX_CACHE_SIZE', 10_000, 10, 10_000_000),
      changePollMs: int(env, 'DCMX_CHANGE_POLL_MS', 2000, 10, 3_600_000),
      queueLifetime: int(env, 'DCMX_QUEUE_LIFETIME', 5 * 86400, 1, 365 * 86400),
      retryBase: int(env, 'DCMX_QUEUE_RETRY_BASE', 300, 1, 86400),
      retryMax: int(env, 'DCMX_QUEUE_RETRY_MAX', 4 * 3600, 1, 7 * 86400),
      concurrency: int(env, 'DCMX_DELIVERY_CONCURRENCY', 16, 1, 1000),
      relayPort: port(env, 'DCMX_SMTP_RELAY_PORT', 25),
      mailGroup: mailGroup(env),
    },
    http: {
      port: port(env, 'DCMX_HTTP_PORT', 8080),
      httpsPort: env.DCMX_HTTPS_PORT === undefined || env.DCMX_HTTPS_PORT === '' ? undefined : port(env, 'DCMX_HTTPS_PORT', 0),
      allow: env.DCMX_HTTP_ALLOW === undefined ? ['127.0.0.0/8', '::1/128'] : cidrs(env, 'DCMX_HTTP_ALLOW'),
      hosts: httpHosts,
      console: {
        idleMs: int(env, 'DCMX_CONSOLE_IDLE', 15 * 60, 10, 86400) * 1000,
        maxAgeMs: int(env, 'DCMX_CONSOLE_MAX_AGE', 8 * 3600, 60, 7 * 86400) * 1000,
      },
    },
    retention: {
      changelogKeep: int(env, 'DCMX_CHANGELOG_KEEP', 100_000, 0, 1_000_000_000),
      journalKeep: int(env, 'DCMX_ZONE_JOURNAL_KEEP', 1000, 0, 1_000_000_000),
    },
    provisioning,
    provisionAllow,
    provisionLimits: {
      perClientPerMinute: int(env, 'DCMX_PROVISION_CLIENT_RATE', 10, 1, 1_000_000),
      perMinute: int(env, 'DCMX_PROVISION_RATE', 30, 1, 1_000_000),
      perHour: int(env, 'DCMX_PROVISION_HOURLY', 100, 1, 1_000_000),
    },
    newDomain: {
      catchall: bool(env, 'DCMX_NEW_DOMAIN_CATCHALL', true),
      spf: env.DCMX_NEW_DOMAIN_SPF ?? 'v=spf1 mx -all',
      dmarc: env.DCMX_NEW_DOMAIN_DMARC ?? 'v=DMARC1; p=quarantine',
      dkim: dkimAlgorithms(env),
      mtaSts: mtaStsOptions(env),
    },
    dkim: {
      retireAfter: int(env, 'DCMX_DKIM_RETIRE_AFTER', 7 * 86400, 1, 365 * 86400),
    },
    mtaStsCa: env.DCMX_MTA_STS_CA ? (pemFile('DCMX_MTA_STS_CA', env.DCMX_MTA_STS_CA, 'cert'), fs.readFileSync(env.DCMX_MTA_STS_CA, 'utf8')) : undefined,
    upstreamDns: hostPorts(env, 'DCMX_UPSTREAM_DNS', 53),
    selfAddresses,
    passwords: passwordOptions(env),
    throttle: throttleOptions(env),
  };
  return deepFreeze(config);
}

function deepFreeze<T>(o: T): Readonly<T> {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
