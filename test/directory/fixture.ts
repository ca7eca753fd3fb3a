/** A directory over an in-memory store, bootstrapped, for unit tests. */
import { openDirectory } from '../../server/directory/open';
import type { Directory } from '../../server/directory/directory';
import type { Identity } from '../../server/directory/access';
import type { Zones } from '../../server/directory/zones';
import { DEFAULT_PASSWORD_OPTIONS, type PasswordOptions } from '../../server/directory/passwords';
import { settle, unsettle, type DirectoryWriter, type WriteCommand } from '../../server/directory/writes';

/** Password hashing as cheap as the schemes allow: tests check behaviour, not cost. */
export const CHEAP_PASSWORDS: PasswordOptions = {
  ...DEFAULT_PASSWORD_OPTIONS, shaCryptRounds: 1000, pbkdf2Iterations: 1000, argon2: { memory: 1024, time: 1, parallelism: 1 },
};

export const SUFFIX = 'o=internet';
export const ADMIN = 'cn=admin,o=internet';

/** `dnssec`: zones born get their DNSSEC key (DCMX_DNSSEC=on; off by default here, as in openDirectory). */
export async function memoryDirectory(opts: { catalog?: string; dnssec?: boolean } = {}): Promise<{ dir: Directory; admin: Identity; zones: Zones }> {
  const { directory: dir, zones } = openDirectory({
    file: ':memory:', suffix: SUFFIX, adminDN: ADMIN, passwords: CHEAP_PASSWORDS, catalog: opts.catalog, dnssec: opts.dnssec,
  });
  await dir.bootstrap({ kind: 'configured', password: 'secret-admin' });
  return { dir, admin: dir.systemIdentity(), zones };
}

/** Shorthand for attribute inputs: { cn: 'x', objectClass: ['a', 'b'] }. */
export function attrs(o: Record<string, string | string[]>): { type: string; values: string[] }[] {
  return Object.entries(o).map(([type, v]) => ({ type, values: Array.isArray(v) ? v : [v] }));
}

/**
 * A writer as a serving thread sees it: each command, and the outcome the
 * writer sends back (its result, or its error as data), crosses a
 * structured clone as a postMessage would. `sent` counts the commands.
 */
export function cloningWriter(writer: DirectoryWriter): DirectoryWriter & { sent: WriteCommand['kind'][] } {
  const sent: WriteCommand['kind'][] = [];
  return {
    sent,
    async execute<C extends WriteCommand>(cmd: C) {
      sent.push(cmd.kind);
      return unsettle<C>(structuredClone(await settle(writer, structuredClone(cmd))));
    },
  };
}
