/** A directory over an in-memory store, bootstrapped, for unit tests. */
import { openDirectory } from '../../server/directory/open';
import type { Directory } from '../../server/directory/directory';
import type { Identity } from '../../server/directory/access';
import type { Zones } from '../../server/directory/zones';

process.env.DCMX_PBKDF2_ITERATIONS ??= '1000';

export const SUFFIX = 'o=internet';
export const ADMIN = 'cn=admin,o=internet';

export async function memoryDirectory(): Promise<{ dir: Directory; admin: Identity; zones: Zones }> {
  const { directory: dir, zones } = openDirectory({ file: ':memory:', suffix: SUFFIX, adminDN: ADMIN });
  await dir.bootstrap({ kind: 'configured', password: 'secret-admin' });
  return { dir, admin: dir.systemIdentity(), zones };
}

/** Shorthand for attribute inputs: { cn: 'x', objectClass: ['a', 'b'] }. */
export function attrs(o: Record<string, string | string[]>): { type: string; values: string[] }[] {
  return Object.entries(o).map(([type, v]) => ({ type, values: Array.isArray(v) ? v : [v] }));
}
