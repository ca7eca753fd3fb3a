/**
 * OpenLDAP slapd as a comparison target: run unprivileged from a generated
 * slapd.conf in a temp dir (mdb backend, suffix o=internet, rootdn
 * cn=admin,o=internet, OpenLDAP's core/cosine/inetorgperson schemas plus the
 * few definitions in {@link SLAPD_EXTRA_SCHEMA}, `index mail eq`), on a
 * loopback port, with its default number of threads; not pinned.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { freePort, spawnChild, waitForPort, which, type Child } from './proc';
import { ADMIN_DN, ADMIN_PASSWORD, SLAPD_EXTRA_SCHEMA, SUFFIX } from './dit';

const SCHEMA_DIR = '/etc/ldap/schema';
const SCHEMAS = ['core.schema', 'cosine.schema', 'inetorgperson.schema'];
const MODULE_DIRS = ['/usr/lib/ldap', '/usr/lib/openldap', '/usr/lib64/openldap', '/usr/libexec/openldap'];

/** Why slapd cannot be used here, or undefined when it can. */
export function slapdUnavailable(): string | undefined {
  if (!which('slapd')) return 'slapd is not installed (DEBIAN_FRONTEND=noninteractive apt-get install -y slapd)';
  for (const s of SCHEMAS) if (!fs.existsSync(path.join(SCHEMA_DIR, s))) return `${SCHEMA_DIR}/${s} is missing`;
  return undefined;
}

export interface Slapd {
  child: Child;
  port: number;
  dbDir: string;
}

/** Writes the configuration under `dir` and starts slapd on a free loopback port. */
export async function startSlapd(dir: string): Promise<Slapd> {
  fs.mkdirSync(dir, { recursive: true });
  const dbDir = path.join(dir, 'db');
  fs.mkdirSync(dbDir);
  fs.writeFileSync(path.join(dir, 'dcmx-bench.schema'), SLAPD_EXTRA_SCHEMA);
  const moduleDir = MODULE_DIRS.find((d) => fs.existsSync(path.join(d, 'back_mdb.so')));
  const conf = [
    ...SCHEMAS.map((s) => `include ${path.join(SCHEMA_DIR, s)}`),
    `include ${path.join(dir, 'dcmx-bench.schema')}`,
    `pidfile ${path.join(dir, 'slapd.pid')}`,
    `argsfile ${path.join(dir, 'slapd.args')}`,
    ...(moduleDir ? [`modulepath ${moduleDir}`, 'moduleload back_mdb'] : []),
    'loglevel 0',
    'database mdb',
    'maxsize 1073741824',
    `suffix "${SUFFIX}"`,
    `rootdn "${ADMIN_DN}"`,
    `rootpw ${ADMIN_PASSWORD}`,
    `directory ${dbDir}`,
    'index objectClass eq',
    'index mail eq',
    '',
  ].join('\n');
  const confFile = path.join(dir, 'slapd.conf');
  fs.writeFileSync(confFile, conf);
  const port = await freePort();
  // -d 0: stay in the foreground (no detach) with no debug output.
  const child = spawnChild(which('slapd')!, ['-f', confFile, '-h', `ldap://127.0.0.1:${port}/`, '-d', '0']);
  await waitForPort(port, child);
  return { child, port, dbDir };
}
