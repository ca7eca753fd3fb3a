#!/usr/bin/env node
// `npm test` after tsc: runs every compiled *.test.js under dist/test with node:test,
// two files at a time (the machine has 2 cores). Extra arguments filter by a substring of the path below dist/test.
// First, it stops on a Node.js older than 24 (native/runtime.js: every test and every child
// the tests spawn runs on process.execPath, this Node), and preflight.js checks that the
// programs the tests drive are installed.
// Stopping it (SIGINT, SIGTERM, SIGHUP, or its parent going away: npm's shell
// does not pass a SIGTERM on) stops the test run, whose files stop their
// children (test/fixtures/children.ts).
// A test file still running after FILE_BOUND_MS (DCMX_TEST_FILE_TIMEOUT_MS) is killed with
// its process tree and fails the run (test/watchdog.js): a file that never ends cannot
// hold the run.
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { preflight } = require('./preflight');
const { watchTestFiles } = require('./watchdog');

require('../native/runtime').requireRuntime();

const no = process.env.DCMX_TEST_NO_INSTALL;
if (!preflight({ install: !no || no === '0' })) process.exit(1);

function find(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = path.join(dir, d.name);
    return d.isDirectory() ? find(p) : d.name.endsWith('.test.js') ? [p] : [];
  });
}
const filters = process.argv.slice(2);
const testRoot = path.join(__dirname, '..', 'dist', 'test');
// The filters match the path below dist/test, never the checkout's own path (a clone in /work/wt-smtp matched "smtp" everywhere).
const files = find(testRoot)
  .filter((f) => filters.length === 0 || filters.some((s) => path.relative(testRoot, f).includes(s)))
  .sort();
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
// Node 24's default reporter is spec everywhere; Node 20 wrote TAP when the output was not a
// terminal, and logs (CI's too) are read as TAP: say which.
const reporter = process.stdout.isTTY ? 'spec' : 'tap';
const runner = spawn(process.execPath, ['--test', `--test-reporter=${reporter}`, '--test-concurrency=2', '--test-timeout=300000', ...files], { stdio: 'inherit' });
// Far above the slowest file on a loaded machine (about a minute), but below a CI job's limit.
const FILE_BOUND_MS = Number(process.env.DCMX_TEST_FILE_TIMEOUT_MS) || 10 * 60_000;
const killed = [];
const unwatch = watchTestFiles(runner.pid, files, {
  boundMs: FILE_BOUND_MS,
  onKill: (file) => {
    killed.push(file);
    console.error(`test file ${path.relative(process.cwd(), file)} did not finish within ${FILE_BOUND_MS / 1000} s: killed with its processes`);
  },
});
let stopping;
const stop = (sig) => {
  if (stopping) return;
  stopping = sig;
  // node --test stops its test files on SIGINT and SIGTERM (not on SIGHUP, which would orphan them).
  if (runner.exitCode === null && runner.signalCode === null) runner.kill(sig === 'SIGINT' ? 'SIGINT' : 'SIGTERM');
};
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => stop(sig));
const parent = process.ppid;
setInterval(() => process.ppid !== parent && stop('SIGTERM'), 500).unref();
runner.on('exit', (code, signal) => {
  unwatch();
  if (stopping) console.error(`test run stopped (${stopping})`);
  if (killed.length) {
    console.error(`killed, not finished: ${killed.map((f) => path.relative(process.cwd(), f)).join(', ')}`);
    process.exit(code || 1);
  }
  process.exit(code ?? (signal ? 128 + (require('node:os').constants.signals[signal] ?? 0) : 1));
});
