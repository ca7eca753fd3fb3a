/**
 * `dcmx dkim ...`: a hosted domain's DKIM selectors on the command line
 * (server/directory/dkim-rotation.ts). Like the other commands it opens the
 * appliance's store and writes through the write path: the running
 * appliance serves a new selector's TXT from the commit on and signs with
 * its key, and its retirement duty removes the old selector after
 * DCMX_DKIM_RETIRE_AFTER. Whoever can run it can read the data dir: the
 * administrator.
 *
 *   dcmx dkim list DOMAIN     selectors, algorithm, state (active, retiring until, withdrawn), made
 *   dcmx dkim rotate DOMAIN   a new key at a new dated selector per algorithm
 */
import type { Config } from '../config';
import type { Services } from '../directory/open';
import { dkimSelectors, rotateDkim } from '../directory/dkim-rotation';
import { normalizeDomainName } from '../directory/provision';
import { UsageError } from './cli-args';

/** The dkim commands' lines of the usage text. */
export const DKIM_USAGE = `  dcmx dkim list DOMAIN
  dcmx dkim rotate DOMAIN`;

/**
 * Runs `dcmx dkim CMD DOMAIN` on the opened store; prints to stdout and
 * resolves with the exit status (1: not a hosted domain). Throws UsageError
 * for bad usage, InvalidDomainError for a name that is no domain.
 */
export async function runDkimCommand(cmd: string | undefined, args: string[], config: Config, services: Services): Promise<number> {
  if (cmd !== 'list' && cmd !== 'rotate') throw new UsageError(`unknown command 'dkim ${cmd ?? ''}'`.trim());
  if (args.length !== 1) throw new UsageError(`dkim ${cmd} takes one DOMAIN`);
  const name = normalizeDomainName(args[0]);
  const ndn = services.zones.names.toNdn(name);
  const graceMs = config.dkim.retireAfter * 1000;
  if (cmd === 'rotate') {
    const made = rotateDkim(services.directory, (n) => services.zones.names.toNdn(n), name, config.newDomain.dkim);
    for (const s of made) console.log(`published ${s}._domainkey.${name}: new mail is signed with it`);
    console.log(`older selectors retire ${config.dkim.retireAfter} s from now (DCMX_DKIM_RETIRE_AFTER)`);
    return 0;
  }
  const selectors = ndn === undefined ? [] : dkimSelectors(services.directory, ndn, graceMs);
  if (!selectors.length) {
    console.error(`dcmx: ${name} has no DKIM selector here`);
    return 1;
  }
  for (const s of selectors) {
    const state = s.state === 'retiring' ? `retiring until ${s.retireAt!.toISOString()}` : s.state;
    console.log(`${s.selector}\t${s.algorithm}\t${state}\tmade ${s.created.toISOString()}`);
  }
  return 0;
}
