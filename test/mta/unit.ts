/**
 * A remote transfer unit (DCMX_ROLE=mta) as a deployment runs it, for the
 * tests: its own process and data dir, listening on its own loopback
 * address, its directory the appliance's LDAP over StartTLS (the
 * appliance's generated certificate trusted, its name checked against
 * DCMX_DIRECTORY_HOST), mailboxes without mailHost relayed to the
 * appliance's SMTP port, new domains at RCPT provisioned under an
 * allow-list through the LDAP extended operation. It binds as a transfer
 * unit identity (UNIT_IDENTITY, which the appliance lists in DCMX_UNIT_DNS)
 * when told so, else as the administrator.
 */
import * as path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { ADMIN_PASSWORD, spawnAppliance, testEnv } from '../helpers';

/**
 * A transfer unit identity: its entry (below ou=services, which the test
 * adds) and, in the appliance's environment, DCMX_UNIT_DNS naming it.
 */
export const UNIT_IDENTITY = {
  dn: 'uid=unit,ou=services,o=internet',
  password: 'unit-secret-1',
  ldif: 'dn: uid=unit,ou=services,o=internet\nobjectClass: account\nobjectClass: simpleSecurityObject\nuid: unit\nuserPassword: unit-secret-1\n',
  env: { DCMX_UNIT_DNS: 'uid=unit,ou=services,o=internet' },
} as const;

export interface UnitOptions {
  /** Its data dir (reused across restarts). */
  dir: string;
  /** The loopback address it listens on (127.0.0.2, ...). */
  address: string;
  /** Its DCMX_HOSTNAME. */
  hostname: string;
  /** The appliance: its data dir (for its certificate), LDAP and SMTP ports. */
  appliance: { dir: string; ldap: number; smtp: number };
  /** DCMX_UPSTREAM_DNS (a StubDns address). */
  upstreamDns: string;
  /** DCMX_PROVISION_ALLOW (provisioning is `allowlist`). */
  provisionAllow: string;
  /** DCMX_SMTP_PORT (default 0: any). The appliance's port makes every host listen on one port, as all would on 25, so units relay to each other too. */
  smtpPort?: number;
  /** DCMX_HTTPS_PORT (default: unset, no admin HTTPS listener; 0: any free port). */
  httpsPort?: number;
  /** DCMX_PROVISIONING, when not `allowlist`. */
  provisioning?: 'mx' | 'off';
  /**
   * Another Content Sync provider to read the directory from (a slapd replica with syncprov): its URL,
   * bind identity and CA certificate. Default: the appliance, as its administrator, its certificate trusted.
   */
  directory?: { url: string; bindDn: string; password: string; ca: string };
  /** The identity it binds as on the appliance (default: the administrator); UNIT_IDENTITY is the narrow one. */
  bind?: { dn: string; password: string };
}

/** A running unit: its process, ports and output. */
export interface Unit {
  child: ChildProcess;
  smtp: number;
  http: number;
  /** The admin HTTPS port (httpsPort set). */
  https: number | undefined;
  dir: string;
  address: string;
  output: () => string;
}

/** Spawns a unit and resolves once it printed `dcmx ready`. */
export async function spawnUnit(o: UnitOptions): Promise<Unit> {
  const u = await spawnAppliance(unitEnv(o));
  const m = /smtp=(\d+) http=(\d+)/.exec(u.ready)!;
  const https = /https=(\d+)/.exec(u.ready);
  return { child: u.child, smtp: Number(m[1]), http: Number(m[2]), https: https ? Number(https[1]) : undefined, dir: o.dir, address: o.address, output: u.output };
}

/** The environment a unit runs with (a `dcmx` command on its data dir too). */
export function unitEnv(o: UnitOptions): Record<string, string> {
  return testEnv(o.dir, {
    DCMX_ROLE: 'mta',
    DCMX_LISTEN: o.address,
    DCMX_HOSTNAME: o.hostname,
    DCMX_DIRECTORY_URL: o.directory?.url ?? `ldap://127.0.0.1:${o.appliance.ldap}`,
    DCMX_DIRECTORY_BIND_DN: o.directory?.bindDn ?? o.bind?.dn ?? 'cn=admin,o=internet',
    DCMX_DIRECTORY_PASSWORD: o.directory?.password ?? o.bind?.password ?? ADMIN_PASSWORD,
    // The appliance's name: the directory's certificate is checked against it, and mailboxes without mailHost are its.
    DCMX_DIRECTORY_HOST: 'mx.dcmx.test',
    // StartTLS, the appliance's own (generated) certificate trusted, its name checked against DCMX_DIRECTORY_HOST.
    DCMX_DIRECTORY_STARTTLS: 'on',
    DCMX_DIRECTORY_CA: o.directory?.ca ?? path.join(o.appliance.dir, 'tls', 'smtp-cert.pem'),
    DCMX_UPSTREAM_DNS: o.upstreamDns,
    // Mailboxes without mailHost are the appliance's: relayed to its SMTP port.
    DCMX_SMTP_RELAY_PORT: String(o.appliance.smtp),
    DCMX_PROVISIONING: o.provisioning ?? 'allowlist',
    DCMX_PROVISION_ALLOW: o.provisionAllow,
    ...(o.smtpPort === undefined ? {} : { DCMX_SMTP_PORT: String(o.smtpPort) }),
    ...(o.httpsPort === undefined ? {} : { DCMX_HTTPS_PORT: String(o.httpsPort) }),
  });
}

/** GET /health of a unit: 200 and `ok` once synchronized, 503 `degraded` without its directory. */
export async function unitHealth(u: Unit): Promise<{ status: number; body: { status: string } }> {
  const r = await fetch(`http://${u.address}:${u.http}/health`);
  return { status: r.status, body: (await r.json()) as { status: string } };
}
