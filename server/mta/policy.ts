/**
 * The provisioning policy at RCPT time (DCMX_PROVISIONING): never an open door.
 * - `off`: unknown domains are relayed for relaying clients, refused for others;
 * - `allowlist`: a name under one of DCMX_PROVISION_ALLOW is provisioned;
 * - `mx` (default): the domain's MX, looked up through DCMX_UPSTREAM_DNS, must
 *   name this appliance (DCMX_HOSTNAME, or an address in DCMX_SELF_ADDRESSES);
 *   on a remote transfer unit, the unit or the appliance holding the
 *   directory (DCMX_DIRECTORY_HOST): both serve the deployment's mail.
 * When the check fails, a client allowed to relay still relays (its mail is
 * outbound). Anyone else gets 550 5.1.2 (RFC 3463 "bad destination system
 * address", issue 5's reply for a failed check) with the policy's reason in
 * the text: not a valid domain name, no such domain, a null MX (RFC 7505),
 * an MX (or implicit MX) that is not this appliance, outside the allow-list.
 * Nothing is written. With provisioning `off` there is no policy to consult,
 * and a non-hosted domain is a plain relay attempt: 550 5.7.1 from intake.
 * Any temporary upstream failure that leaves the answer open — the MX
 * lookup, or the address of an MX target when no other target is this
 * appliance — gives 450 4.4.3 so the sender retries. Concurrent RCPTs for
 * one new domain share one check and create the domain once.
 *
 * Before any lookup, a name provisioning never takes (a public suffix, a new
 * zone above our host name or a hosted name: Provisioner.assertProvisionable)
 * is refused like a failed check, 550 5.1.2 with the reason. A domain is
 * created only within the rate limits (provision-limits.ts): past one, the
 * RCPT gets 450 4.7.1 (try later), never 250, and nothing is written. A
 * client not allowed to relay is held to them before its upstream lookup,
 * too, so a flood of names costs no lookups once the limit is reached.
 */
import type { SMTPServerSession } from 'smtp-server';
import type { Config } from '../config';
import type { Logger } from '../log';
import { InvalidDomainError, ReservedDomainError } from '../directory/errors';
import { normalizeDomainName, type ProvisionResult, type Provisioner } from '../directory/provision';
import { MailResolveError, type MailResolver } from './resolver';
import { SmtpReply, type UnknownDomainDecision, type UnknownDomainHook } from './intake';
import { ProvisionLimits, type ProvisionLimiter } from './provision-limits';
import type { SelfIdentity } from './self';

export interface PolicyStats {
  provisioned: number;
  refused: number;
  deferred: number;
  /** RCPTs answered 450 4.7.1 by a rate limit. */
  limited: number;
}

/**
 * What the policy provisions with: the provisioner for its reads (which
 * names are never provisioned), the writer for the `provisionDomain` command.
 * On the appliance, its Provisioner and writer; on a remote transfer unit,
 * the LDAP extended operation to the directory (server/remote-unit.ts).
 */
export interface PolicyProvisioning {
  provisioner: Pick<Provisioner, 'assertProvisionable'>;
  writer: { execute(cmd: { kind: 'provisionDomain'; name: string }): Promise<ProvisionResult> };
}

/**
 * Builds the intake hook for the configured policy; `self` tells which MX
 * targets are this appliance. `limits` are the process's rate limits when
 * several threads share them (default: a set of this hook's own).
 */
export function provisioningPolicy(
  config: Pick<Config, 'provisioning' | 'provisionAllow' | 'provisionLimits'>,
  { provisioner, writer }: PolicyProvisioning,
  resolver: MailResolver,
  self: Pick<SelfIdentity, 'isSelfName' | 'isSelfAddress'>,
  log: Logger,
  opts: { limits?: ProvisionLimiter } = {},
): UnknownDomainHook & { stats: PolicyStats } {
  const stats: PolicyStats = { provisioned: 0, refused: 0, deferred: 0, limited: 0 };
  const inflight = new Map<string, Promise<UnknownDomainDecision>>();
  const limits = opts.limits ?? new ProvisionLimits(config.provisionLimits);

  /** The check failed: 550 5.1.2 with the reason (relaying clients relay it, and learn from the next hop). */
  const bad = (domain: string, why: string, relaying: boolean): UnknownDomainDecision => {
    if (relaying) return { kind: 'foreign' };
    stats.refused++;
    throw new SmtpReply(550, '5.1.2', `Domain ${domain} is not served here: ${why}`);
  };
  const defer = (name: string, relaying: boolean): UnknownDomainDecision => {
    if (relaying) return { kind: 'foreign' };
    stats.deferred++;
    throw new SmtpReply(450, '4.4.3', `Cannot check the MX of ${name} right now, try again later`);
  };
  /** 450 4.7.1: `session`'s client may not create a domain now, `why`. */
  const limited = (name: string, session: SMTPServerSession, why: string): never => {
    stats.limited++;
    log.info({ domain: name, remote: session.remoteAddress, why }, 'new domain refused for now: provisioning rate limit');
    throw new SmtpReply(450, '4.7.1', `Domain ${name} cannot be set up now: ${why}, try again later`);
  };

  async function check(name: string, session: SMTPServerSession, relaying: boolean): Promise<UnknownDomainDecision> {
    try {
      provisioner.assertProvisionable(name);
    } catch (e) {
      if (e instanceof ReservedDomainError) return bad(name, e.reason, relaying);
      throw e;
    }
    if (!relaying) {
      const why = await limits.refusal(session.remoteAddress);
      if (why !== undefined) limited(name, session, why);
    }
    if (config.provisioning === 'allowlist') {
      const ok = config.provisionAllow.some((s) => name === s || name.endsWith('.' + s));
      if (!ok) return bad(name, 'not in the provisioning allow-list', relaying);
    } else {
      let targets;
      try {
        targets = await resolver.lookupMx(name);
      } catch (e) {
        if (e instanceof MailResolveError && !e.permanent) return defer(name, relaying);
        if (e instanceof MailResolveError && e.kind === 'nullmx') return bad(name, 'it does not accept mail (null MX)', relaying);
        return bad(name, e instanceof MailResolveError ? 'no such domain' : 'MX lookup failed', relaying);
      }
      const here = targets.some((t) => self.isSelfName(t.host) || t.addresses.some((a) => self.isSelfAddress(a)));
      if (!here) {
        // A target whose address we could not learn may be us: no answer yet, not a "no".
        if (targets.some((t) => t.temporary)) return defer(name, relaying);
        return bad(name, targets.length ? 'its MX does not point to this server' : 'it has no MX record', relaying);
      }
    }
    // Counted again now, and the creation with it (before the writer is asked, so RCPTs on any thread meanwhile see it):
    // other RCPTs may have created domains while this one waited for its lookup. Taken back if nothing was created.
    const client = session.remoteAddress;
    const reservation = await limits.reserve(client);
    if ('refused' in reservation) return limited(name, session, reservation.refused);
    let r;
    try {
      r = await writer.execute({ kind: 'provisionDomain', name });
    } catch (e) {
      limits.forget(client, reservation.at);
      if (e instanceof ReservedDomainError) return bad(name, e.reason, relaying);
      throw e;
    }
    if (r.existed) limits.forget(client, reservation.at);
    else {
      stats.provisioned++;
      log.info({ domain: name, created: r.created.length, zone: r.zone, serial: r.serial, remote: session.remoteAddress }, 'domain provisioned at RCPT');
    }
    return { kind: 'accept' };
  }

  const hook = async (domain: string, session: SMTPServerSession, relaying = false): Promise<UnknownDomainDecision> => {
    if (config.provisioning === 'off') return { kind: 'foreign' };
    let name: string;
    try {
      name = normalizeDomainName(domain);
    } catch (e) {
      if (e instanceof InvalidDomainError) return bad(domain, 'not a valid domain name', relaying);
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
