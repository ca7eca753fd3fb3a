/**
 * The environment side of the benchmarks: knobs read from this process's
 * environment, and the environment and entry points of a dcmx child.
 */
import * as path from 'node:path';
import { loopbackEnv } from '../test/env';

/**
 * Whether this is a short run (`npm run bench -- --short`, which run.ts
 * turns into DCMX_BENCH_SHORT=1): smaller data sets and shorter windows, the
 * same rows.
 */
export function shortRun(): boolean {
  return process.env.DCMX_BENCH_SHORT === '1';
}

/**
 * A whole-number knob: when unset or empty, `fallback` (or `shortFallback`
 * in a short run); else at least `min` (default 1) or an error.
 */
export function envInt(name: string, fallback: number, min = 1, shortFallback = fallback): number {
  const v = process.env[name];
  if (v === undefined || v === '') return shortRun() ? shortFallback : fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name}: '${v}' is not ${min === 1 ? 'a positive integer' : `an integer >= ${min}`}`);
  return n;
}

/** An on/off knob: on unless set to '0'. */
export function envOn(name: string): boolean {
  return process.env[name] !== '0';
}

/** The length of a measured window in seconds: DCMX_BENCH_SECONDS (5; 2 in a short run). */
export function windowSeconds(): number {
  return envInt('DCMX_BENCH_SECONDS', 5, 1, 2);
}

/** The pairs of alternating windows (alternate.ts) of each comparison: DCMX_BENCH_ROUNDS (3; 2 in a short run). */
export function rounds(): number {
  return envInt('DCMX_BENCH_ROUNDS', 3, 1, 2);
}

/** Whether to measure dcmx with two threads on every core as well (information): DCMX_BENCH_TWO_THREADS=0 skips it. */
export function twoThreads(): boolean {
  return envOn('DCMX_BENCH_TWO_THREADS');
}

/** The dcmx entry point in this build. */
export const DCMX_MAIN = path.resolve(__dirname, '..', 'server', 'main.js');
/** The dcmx command-line tool in this build. */
export const DCMX_CLI = path.resolve(__dirname, '..', 'server', 'admin', 'cli.js');

/**
 * The environment of a dcmx child (the appliance or the CLI): this
 * process's, then `dataDir` on loopback with ephemeral ports, then `extra`,
 * and log level warn (so whatever it logs is worth a note).
 */
export function dcmxEnv(dataDir: string, extra: Record<string, string>): NodeJS.ProcessEnv {
  return { ...process.env, ...loopbackEnv(dataDir), ...extra, DCMX_LOG_LEVEL: 'warn' };
}
