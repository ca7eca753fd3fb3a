#!/usr/bin/env node
// Checks, before any test runs, that the system programs the tests drive are
// on PATH (the table is test/programs.txt). When some are missing: as root
// with apt-get, installs their Debian packages; otherwise prints the exact
// command to run and exits 1. `--no-install` (or DCMX_TEST_NO_INSTALL=1)
// never installs. `--packages` prints every package of the table (tests and
// benchmarks) on one line, for .ci/run, on any Node (it runs before `npm ci`); otherwise
// it first stops on a Node.js older than 24 (native/runtime.js).
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const TABLE = path.join(__dirname, 'programs.txt');

/** The table's rows: { program, pkg, use } with use 'test' or 'bench'. */
function programs() {
  return fs.readFileSync(TABLE, 'utf8').split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean).map((l) => {
    const [program, pkg, use] = l.split(/\s+/);
    if (!program || !pkg || (use !== 'test' && use !== 'bench')) throw new Error(`${TABLE}: bad line "${l}" (want: program package test|bench)`);
    return { program, pkg, use };
  });
}

/** The path of an executable `program` in one of `dirs`, or undefined. */
function findIn(program, dirs) {
  for (const d of dirs) {
    const p = path.join(d, program);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

const pathDirs = (env) => (env.PATH ?? '').split(path.delimiter).filter(Boolean);

/** Whether a row's program is there: on PATH, or, given as an absolute path (a package with no program, such as phpldapadmin), that file. */
const present = (r, env) => (path.isAbsolute(r.program) ? fs.existsSync(r.program) : !!findIn(r.program, pathDirs(env)));

/** The test rows whose program is not there (see `present`). */
function missing(env = process.env) {
  return programs().filter((r) => r.use === 'test' && !present(r, env));
}

const unique = (xs) => [...new Set(xs)];

/** Where a program left off PATH is installed: system directories a user's PATH often lacks (knotd is in /usr/sbin). */
const elsewhere = (r) => (path.isAbsolute(r.program) ? undefined : findIn(r.program, ['/usr/local/sbin', '/usr/sbin', '/sbin']));

/** The packages that would provide `rows` (those installed off PATH need PATH, not a package). */
const packagesFor = (rows) => unique(rows.filter((r) => !elsewhere(r)).map((r) => r.pkg));

/** What to tell the user about `rows`, with the command that installs them. */
function report(rows, asRoot) {
  const lines = ['npm test needs programs that are not on PATH:'];
  for (const r of rows) {
    const at = elsewhere(r);
    if (at) lines.push(`  ${r.program} is installed at ${at}: add ${path.dirname(at)} to PATH`);
  }
  const pkgs = packagesFor(rows);
  for (const pkg of pkgs) {
    lines.push(`  ${rows.filter((r) => r.pkg === pkg && !elsewhere(r)).map((r) => r.program).join(', ')} (Debian package ${pkg})`);
  }
  if (pkgs.length) {
    const sudo = asRoot ? '' : 'sudo ';
    lines.push('Install them, then run the tests again:');
    lines.push(`  ${sudo}apt-get update && ${sudo}apt-get install -y --no-install-recommends ${pkgs.join(' ')}`);
  }
  return lines.join('\n');
}

/**
 * Returns true when every program the tests need is on PATH, installing the
 * missing packages first when allowed (root, apt-get on PATH, `install`).
 * Otherwise prints what to run on stderr and returns false.
 */
function preflight({ install = true, env = process.env } = {}) {
  let absent = missing(env);
  if (absent.length === 0) return true;
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const aptGet = findIn('apt-get', pathDirs(env));
  const pkgs = packagesFor(absent);
  if (install && asRoot && aptGet && pkgs.length) {
    console.error(`npm test: installing ${pkgs.join(' ')} (for ${absent.filter((r) => pkgs.includes(r.pkg)).map((r) => r.program).join(', ')})`);
    const aptEnv = { ...env, DEBIAN_FRONTEND: 'noninteractive' };
    const ok = [['update'], ['install', '-y', '--no-install-recommends', ...pkgs]].every(
      (args) => spawnSync(aptGet, args, { env: aptEnv, stdio: ['ignore', 2, 2] }).status === 0,
    );
    absent = missing(env);
    if (absent.length === 0) return true;
    if (!ok) console.error('npm test: apt-get failed (see above).');
  }
  console.error(report(absent, asRoot));
  return false;
}

module.exports = { programs, missing, preflight, TABLE };

if (require.main === module) {
  const args = process.argv.slice(2);
  if (args.includes('--packages')) {
    console.log(unique(programs().map((r) => r.pkg)).join(' '));
    process.exit(0);
  }
  require('../native/runtime').requireRuntime();
  const no = process.env.DCMX_TEST_NO_INSTALL;
  const forbid = args.includes('--no-install') || (!!no && no !== '0');
  process.exit(preflight({ install: !forbid }) ? 0 : 1);
}
