/** A directory over an in-memory store, bootstrapped, for unit tests. */
import { openDirectory } from '../../server/directory/open';
import type { Directory } from '../../server/directory/directory';
import type { Identity } from '../../server/directory/access';

process.env.DCMX_PBKDF2_ITERATIONS ??= '1000';

export const SUFFIX = 'o=internet';
export const ADMIN = 'cn=admin,o=internet';

export async function memoryDirectory(): Promise<{ dir: Directory; admin: Identity }> {
  const dir = openDirectory({ file: ':memory:', suffix: SUFFIX, adminDN: ADMIN });
  await dir.bootstrap('secret-admin');
  return { dir, admin: dir.systemIdentity() };
}

/** Shorthand for attribute inputs: { cn: 'x', objectClass: ['a', 'b'] }. */
export function attrs(o: Record<string, string | string[]>): { type: string; values: string[] }[] {
  return Object.entries(o).map(([type, v]) => ({ type, values: Array.isArray(v) ? v : [v] }));
}
