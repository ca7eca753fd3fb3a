/**
 * glibc's malloc arenas capped at run time (native/mallocopt, README "Memory"). Left alone,
 * glibc gives each thread that allocates (V8's compiler and GC helpers, libuv's pool, worker
 * threads) an arena of its own, up to 8 per core, and each keeps what it once held.
 * MALLOC_ARENA_MAX in the environment does the same, but glibc reads it once, before main():
 * pm2's cluster mode hands a worker its app's environment too late. mallopt(M_ARENA_MAX) from
 * here applies to every arena made afterwards, whichever way the process was started.
 * Elsewhere than glibc on Linux, or without the optional addon, everything here is a no-op.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** What native/mallocopt/mallocopt.c exports (its header comment is the contract). */
interface MallocAddon {
  readonly glibc: boolean;
  arenaMax(n: number): boolean;
  arenas(): number;
  trim(): boolean;
}

/** The arenas the appliance allows when the operator did not say (README "Memory"). */
export const DEFAULT_ARENA_MAX = 2;

// From dist/server/: the project's native/mallocopt.
const ADDON = path.join(__dirname, '..', '..', 'native', 'mallocopt', 'build', 'Release', 'mallocopt.node');
let addon: MallocAddon | null | undefined;

/** The addon, or null where it cannot act (not Linux, not built, fails to load, not glibc). */
function loadAddon(): MallocAddon | null {
  if (addon !== undefined) return addon;
  addon = null;
  if (process.platform !== 'linux' || !fs.existsSync(ADDON)) return addon;
  try {
    const loaded = require(ADDON) as MallocAddon; // eslint-disable-line @typescript-eslint/no-require-imports
    if (loaded.glibc) addon = loaded;
  } catch {
    addon = null;
  }
  return addon;
}

/**
 * The arena limit to apply for `env`: an operator's MALLOC_ARENA_MAX (a positive integer) as
 * given, since glibc may have read it too late (pm2); undefined when the operator set the limit
 * some other way (an unreadable MALLOC_ARENA_MAX, glibc.malloc.arena_max in GLIBC_TUNABLES:
 * glibc's own reading stands); else DEFAULT_ARENA_MAX.
 */
export function arenaLimit(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const given = env.MALLOC_ARENA_MAX;
  if (given !== undefined) return /^[1-9]\d{0,5}$/.test(given.trim()) ? Number(given) : undefined;
  if (env.GLIBC_TUNABLES?.includes('glibc.malloc.arena_max')) return undefined;
  return DEFAULT_ARENA_MAX;
}

/**
 * Caps glibc's malloc arenas at arenaLimit(): called first thing in every entry point
 * (runtime.ts), before libuv's pool and worker threads exist. Returns the limit applied, or
 * undefined when none was (no glibc or no addon, or the operator's setting left to glibc).
 */
export function capArenas(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const limit = arenaLimit(env);
  const a = loadAddon();
  if (limit === undefined || !a) return undefined;
  return a.arenaMax(limit) ? limit : undefined;
}

/** How many malloc arenas the process has now; undefined where that cannot be known. */
export function mallocArenas(): number | undefined {
  const n = loadAddon()?.arenas() ?? -1;
  return n < 0 ? undefined : n;
}

/**
 * malloc_trim(0): glibc hands the free pages of its arenas back to the kernel. For once after
 * a start-up that freed much (the compiled zones' build); true when something was returned.
 */
export function trimMalloc(): boolean {
  return loadAddon()?.trim() ?? false;
}
