/**
 * The provisioning policy at RCPT time (DCMX_PROVISIONING): never an open door.
 * - `off`: unknown domains are relayed for relaying clients, refused for others;
 * - `allowlist`: a name under one of DCMX_PROVISION_ALLOW is provisioned;
 * - `mx` (default): the domain's MX, looked up through DCMX_UPSTREAM_DNS, must
 *   name this appliance (DCMX_HOSTNAME, or an address in DCMX_SELF_ADDRESSES).
 * When the check fails, a client allowed to relay still relays (its mail is
 * outbound); anyone else gets 550 5.1.2 and nothing is written. An upstream
 * timeout gives 450 4.4.3 so the sender retries. Concurrent RCPTs for one
 * new domain share one check and create the domain once.
 */
import type { SMTPServerSession } from 'smtp-server';
import type { Config } from '../config';
import type { Logger } from '../log';
import { InvalidDomainError, normalizeDomainName, type Provisioner } from '../directory/provision';
import { MailResolveError, type MailResolver } from './resolver';
import { SmtpReply, type UnknownDomainHook } from './intake';

export interface PolicyStats {
  provisioned: number;
  refused: number;
  deferred: number;
}

/** Builds the intake hook for the configured policy. `mayRelay` tells whether a session may relay. */
export function provisioningPolicy(
  config: Pick<Config, 'provisioning' | 'provisionAllow' | 'hostname' | 'selfAddresses'>,
  provisioner: Provisioner,
  resolver: MailResolver,
  log: Logger,
  stats: PolicyStats = { provisioned: 0, refused: 0, deferred: 0 },
): UnknownDomainHook & { stats: PolicyStats } {
  const inflight = new Map<string, Promise<'accept' | 'relay-check'>>();
  const self = new Set([config.hostname.toLowerCase(), ...config.selfAddresses]);

  const refuse = (domain: string, why: string): never => {
    stats.refused++;
    throw new SmtpReply(550, '5.1.2', `Domain ${domain} is not served here: ${why}`);
  };

  async function check(name: string, session: SMTPServerSession, relaying: boolean): Promise<'accept' | 'relay-check'> {
    if (config.provisioning === 'allowlist') {
      const ok = config.provisionAllow.some((s) => name === s || name.endsWith('.' + s));
      if (!ok) return relaying ? 'relay-check' : refuse(name, 'not in the provisioning allow-list');
    } else {
      let targets;
      try {
        targets = await resolver.lookupMx(name);
      } catch (e) {
        if (e instanceof MailResolveError && !e.permanent) {
          if (relaying) return 'relay-check';
          stats.deferred++;
          throw new SmtpReply(450, '4.4.3', `Cannot check the MX of ${name} right now, try again later`);
        }
        return relaying ? 'relay-check' : refuse(name, e instanceof MailResolveError ? e.kind : 'MX lookup failed');
      }
      const here = targets.some((t) => self.has(t.host.toLowerCase()) || t.addresses.some((a) => self.has(a)));
      if (!here) return relaying ? 'relay-check' : refuse(name, targets.length ? 'its MX does not point to this server' : 'it has no MX record');
    }
    const r = provisioner.provisionDomain(name);
    if (!r.existed) {
      stats.provisioned++;
      log.info({ domain: name, created: r.created.length, zone: r.zone, serial: r.serial, remote: session.remoteAddress }, 'domain provisioned at RCPT');
    }
    return 'accept';
  }

  const hook = async (domain: string, session: SMTPServerSession, relaying = false): Promise<'accept' | 'relay-check'> => {
    if (config.provisioning === 'off') return 'relay-check';
    let name: string;
    try {
      name = normalizeDomainName(domain);
    } catch (e) {
      if (e instanceof InvalidDomainError) return relaying ? 'relay-check' : refuse(domain, 'not a valid domain name');
      throw e;
    }
    const key = `${name}|${relaying ? 1 : 0}`;
    let p = inflight.get(key);
    if (!p) {
      p = check(name, session, relaying).finally(() => inflight.delete(key));
      inflight.set(key, p);
    }
    return p;
  };
  return Object.assign(hook, { stats });
}
