/**
 * OpenLDAP slapd, configured the one way dcmx runs it: unprivileged, every
 * file in one directory, back-mdb, OpenLDAP's standard core, cosine,
 * inetorgperson and nis schema plus dcmx's own as `dcmx schema export` gives
 * it (schema/openldap.ts: the one source of dcmx's schema for slapd).
 * writeSlapdConf writes that configuration (the replica tests add syncrepl to
 * it, test/fixtures/slapd.ts); startSlapd runs it as the benchmark's
 * comparison target: suffix o=internet, rootdn cn=admin,o=internet,
 * `index mail eq`, on a loopback port, with its default number of threads,
 * on the CPUs given (the benchmark's server core).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { freePort, spawnChild, waitForPort, which, type Child } from './proc';
import { ADMIN_DN, ADMIN_PASSWORD, SUFFIX } from './dit';
import { openldapSchemaFile, SLAPD_STANDARD_FILES } from '../schema/openldap';

/** Where Debian's slapd package puts OpenLDAP's schema files (`.schema` and `.ldif`). */
export const SLAPD_SCHEMA_DIR = '/etc/ldap/schema';
const MODULE_DIRS = ['/usr/lib/ldap', '/usr/lib/openldap', '/usr/lib64/openldap', '/usr/libexec/openldap'];

/** Why slapd cannot be used here, or undefined when it can. */
export function slapdUnavailable(): string | undefined {
  if (!which('slapd')) return 'slapd is not installed (DEBIAN_FRONTEND=noninteractive apt-get install -y slapd)';
  for (const s of SLAPD_STANDARD_FILES) {
    if (!fs.existsSync(path.join(SLAPD_SCHEMA_DIR, `${s}.schema`))) return `${SLAPD_SCHEMA_DIR}/${s}.schema is missing`;
  }
  return undefined;
}

/** The directory holding back_mdb.so when slapd loads backends as modules (Debian does), else undefined (built in). */
export function slapdModuleDir(): string | undefined {
  return MODULE_DIRS.find((d) => fs.existsSync(path.join(d, 'back_mdb.so')));
}

/** One mdb database of a generated slapd configuration. */
export interface SlapdDatabase {
  suffix: string;
  rootDn: string;
  rootPw: string;
  /** Its files (created when missing). */
  directory: string;
  /** More slapd.conf lines for the database section (index, overlay, syncrepl, limits, ...). */
  lines?: string[];
  /** More lines for the global section (TLS settings, ...). */
  global?: string[];
  /** Modules to load besides back_mdb, where slapd loads modules (syncprov, ...). */
  modules?: string[];
}

/**
 * Writes `dir/dcmx.schema` (dcmx schema export --format openldap) and
 * `dir/slapd.conf` (global section, then the mdb database); returns the
 * configuration's path. Its pid and args files are in `dir` too.
 */
export function writeSlapdConf(dir: string, db: SlapdDatabase): string {
  fs.mkdirSync(db.directory, { recursive: true });
  const schema = path.join(dir, 'dcmx.schema');
  fs.writeFileSync(schema, openldapSchemaFile());
  const moduleDir = slapdModuleDir();
  const conf = [
    ...SLAPD_STANDARD_FILES.map((s) => `include ${path.join(SLAPD_SCHEMA_DIR, `${s}.schema`)}`),
    `include ${schema}`,
    `pidfile ${path.join(dir, 'slapd.pid')}`,
    `argsfile ${path.join(dir, 'slapd.args')}`,
    ...(moduleDir ? [`modulepath ${moduleDir}`, ...['back_mdb', ...(db.modules ?? [])].map((m) => `moduleload ${m}`)] : []),
    ...(db.global ?? []),
    'loglevel 0',
    'database mdb',
    'maxsize 1073741824',
    `suffix "${db.suffix}"`,
    `rootdn "${db.rootDn}"`,
    `rootpw ${db.rootPw}`,
    `directory ${db.directory}`,
    ...(db.lines ?? []),
    '',
  ].join('\n');
  const confFile = path.join(dir, 'slapd.conf');
  fs.writeFileSync(confFile, conf);
  return confFile;
}

export interface Slapd {
  child: Child;
  port: number;
  dbDir: string;
}

/** Writes the benchmark's configuration under `dir` and starts slapd on a free loopback port (on `cpus`, a taskset list, when given). */
export async function startSlapd(dir: string, cpus?: string): Promise<Slapd> {
  fs.mkdirSync(dir, { recursive: true });
  const dbDir = path.join(dir, 'db');
  const confFile = writeSlapdConf(dir, {
    suffix: SUFFIX,
    rootDn: ADMIN_DN,
    rootPw: ADMIN_PASSWORD,
    directory: dbDir,
    lines: ['index objectClass eq', 'index mail eq'],
  });
  const port = await freePort();
  // -d 0: stay in the foreground (no detach) with no debug output.
  const child = spawnChild(which('slapd')!, ['-f', confFile, '-h', `ldap://127.0.0.1:${port}/`, '-d', '0'], undefined, undefined, cpus);
  await waitForPort(port, child);
  return { child, port, dbDir };
}
