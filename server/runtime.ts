/**
 * The runtime check, imported first by every entry point (the appliance, the `dcmx` command,
 * the benchmarks): on a Node.js older than 24 (package.json `engines`) it prints one line on
 * stderr and exits 1, before any native addon loads (better-sqlite3, built for Node 24's ABI,
 * would otherwise fail with a loader error). The check and its words are native/runtime.js's,
 * which `npm test` and the install use too. Then glibc's malloc arenas are capped (malloc.ts).
 */
import * as path from 'node:path';
import { capArenas } from './malloc';

// From dist/server/: the project's native/runtime.js (plain JavaScript, as npm runs it before tsc).
const runtime = require(path.join(__dirname, '..', '..', 'native', 'runtime.js')) as { requireRuntime(): void }; // eslint-disable-line @typescript-eslint/no-require-imports
runtime.requireRuntime();

// Second: glibc's malloc arenas capped before libuv's pool and any worker thread exist (malloc.ts).
capArenas();
