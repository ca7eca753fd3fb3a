/**
 * glibc's malloc arenas capped at run time (server/malloc.ts, native/mallocopt, README
 * "Memory"): every entry point caps them first thing (runtime.ts), at 2 unless the operator's
 * MALLOC_ARENA_MAX says otherwise, also when that arrives after the process started (pm2's
 * cluster mode); threads started afterwards make no arena beyond the cap.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { arenaLimit, DEFAULT_ARENA_MAX, mallocArenas, trimMalloc } from '../server/malloc';
import { track } from './fixtures/children';

const ROOT = path.resolve(__dirname, '..', '..');
const RUNTIME = path.join(ROOT, 'dist', 'server', 'runtime.js');
const MALLOC = path.join(ROOT, 'dist', 'server', 'malloc.js');

/**
 * A Node process that (with `cap`) loads runtime.js as the entry points do, then runs 8 worker
 * threads that allocate; prints the arenas before the threads (`start`: with the cap, once it is
 * applied) and at the end. With `arenasMore`, MALLOC_ARENA_MAX is put into process.env first, at
 * that many arenas above those the process has (as pm2 hands a worker its app's environment:
 * after glibc started), and printed as `limit`.
 */
function arenasWithThreads(cap: boolean, arenasMore?: number): Promise<{ start: number; end: number; limit?: number }> {
  const script = `
    const m = require(${JSON.stringify(MALLOC)});
    // The operator's limit, a few arenas above those the process has made by now (how many varies with the machine's load).
    const limit = ${arenasMore ?? 0} ? m.mallocArenas() + ${arenasMore ?? 0} : undefined;
    if (limit) process.env.MALLOC_ARENA_MAX = String(limit);
    if (${cap}) require(${JSON.stringify(RUNTIME)});
    const start = m.mallocArenas();
    const { Worker } = require('node:worker_threads');
    // Each worker waits, its memory held, until all 8 have allocated: on a busy machine one that
    // ended first would hand its arena to the next (glibc's free list) and the premise would not hold.
    const code = "const { parentPort, workerData } = require('node:worker_threads'); const n = new Int32Array(workerData); const a = []; for (let i = 0; i < 2000; i++) a.push(Buffer.allocUnsafeSlow(4096 + i)); Atomics.add(n, 0, 1); Atomics.notify(n, 0); for (let v; (v = Atomics.load(n, 0)) < 8;) Atomics.wait(n, 0, v, 1000); parentPort.postMessage(a.length)";
    const together = new SharedArrayBuffer(4);
    Promise.all(Array.from({ length: 8 }, () => new Promise((resolve, reject) => {
      const w = new Worker(code, { eval: true, workerData: together });
      w.once('message', () => { resolve(); });
      w.once('error', reject);
    }))).then(() => { console.log(JSON.stringify({ start, end: m.mallocArenas(), limit })); process.exit(0); });`;
  const env = { ...process.env };
  delete env.MALLOC_ARENA_MAX;
  delete env.GLIBC_TUNABLES;
  return new Promise((resolve, reject) => {
    track(execFile(process.execPath, ['-e', script], { env, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as { start: number; end: number; limit?: number });
    }));
  });
}

test('the arena limit: 2 by default, an operator\'s MALLOC_ARENA_MAX or GLIBC_TUNABLES arena_max stands', () => {
  assert.equal(DEFAULT_ARENA_MAX, 2);
  assert.equal(arenaLimit({}), 2);
  assert.equal(arenaLimit({ MALLOC_ARENA_MAX: '8' }), 8);
  assert.equal(arenaLimit({ MALLOC_ARENA_MAX: ' 1 ' }), 1);
  // Not a number this code can read: glibc's own reading of it stands, nothing is applied.
  assert.equal(arenaLimit({ MALLOC_ARENA_MAX: 'two' }), undefined);
  assert.equal(arenaLimit({ MALLOC_ARENA_MAX: '0' }), undefined);
  assert.equal(arenaLimit({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=3' }), undefined);
  assert.equal(arenaLimit({ GLIBC_TUNABLES: 'glibc.malloc.tcache_count=0' }), 2);
});

test('the addon is built here and reads the arenas (Linux, glibc: what the appliance runs on)', () => {
  const arenas = mallocArenas();
  assert.ok(arenas !== undefined && arenas >= 1, `arenas: ${arenas}`);
  assert.equal(typeof trimMalloc(), 'boolean');
});

test('threads started after runtime.js make no arena beyond the cap; without it they do', async () => {
  const free = await arenasWithThreads(false);
  // What the test stands on: 8 allocating threads make arenas of their own when nothing caps them.
  assert.ok(free.end >= free.start + 2, `uncapped: ${JSON.stringify(free)}`);
  const capped = await arenasWithThreads(true);
  // Arenas made before the cap (V8's own threads, at start) stay; no thread adds one.
  assert.ok(capped.end <= Math.max(capped.start, DEFAULT_ARENA_MAX), `capped: ${JSON.stringify(capped)}`);
});

test('an operator\'s MALLOC_ARENA_MAX that arrives after the start (pm2) is the cap applied, not 2', async () => {
  const r = await arenasWithThreads(true, 3);
  const limit = r.limit!;
  assert.ok(limit > DEFAULT_ARENA_MAX, JSON.stringify(r));
  assert.ok(r.end > Math.max(r.start, DEFAULT_ARENA_MAX) && r.end <= limit, `MALLOC_ARENA_MAX=${limit}: ${JSON.stringify(r)}`);
});
