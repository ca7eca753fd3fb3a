/**
 * The test preflight (test/preflight.js) as a newcomer meets it: run with a
 * PATH that lacks a program the tests need, it names the program and its
 * Debian package, gives the command to install it and exits non-zero, before
 * any test; as root with apt-get it installs the package itself. apt-get here
 * is a stand-in on the temporary PATH that records its arguments.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { tempDirs } from './helpers';

const ROOT = path.resolve(__dirname, '..', '..');
const PREFLIGHT = path.join(ROOT, 'test', 'preflight.js');
const { programs } = require(PREFLIGHT) as { programs(): { program: string; pkg: string; use: 'test' | 'bench' }[] };
const newDir = tempDirs('dcmx-preflight-');
const asRoot = process.getuid?.() === 0;

/** Where `program` is on this machine's PATH (the preflight already made sure the test ones are). */
function which(program: string): string {
  for (const d of (process.env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(d, program);
    if (fs.existsSync(p)) return p;
  }
  throw new Error(`${program} is not on PATH`);
}

/** A directory for PATH holding every program the tests need, except `without` (files named by absolute path stay where they are). */
function pathWithout(...without: string[]): string {
  const dir = newDir();
  for (const r of programs()) {
    if (r.use === 'test' && !path.isAbsolute(r.program) && !without.includes(r.program)) fs.symlinkSync(which(r.program), path.join(dir, r.program));
  }
  return dir;
}

function preflight(pathDir: string, args: string[] = [], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [PREFLIGHT, ...args], { env: { PATH: pathDir, ...env }, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('the table names a Debian package for every program, and lists swaks and ldapsearch', () => {
  const rows = programs();
  assert.ok(rows.some((r) => r.program === 'ldapsearch' && r.pkg === 'ldap-utils' && r.use === 'test'));
  assert.ok(rows.some((r) => r.program === 'swaks' && r.pkg === 'swaks' && r.use === 'test'));
  assert.equal(new Set(rows.map((r) => r.program)).size, rows.length, 'one line per program');
});

test('with every program on PATH it says nothing and exits 0', () => {
  const r = preflight(pathWithout(), ['--no-install']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
});

test('a missing program is named with its package and the install command; exit 1, nothing installed', () => {
  const ways: { args: string[]; env: Record<string, string> }[] = [{ args: ['--no-install'], env: {} }, { args: [], env: { DCMX_TEST_NO_INSTALL: '1' } }];
  for (const forbid of ways) {
    const dir = pathWithout('swaks', 'ldapwhoami');
    fs.writeFileSync(path.join(dir, 'apt-get'), `#!/bin/sh\necho "$@" >> ${dir}/apt-get.log\n`, { mode: 0o755 });
    const r = preflight(dir, forbid.args, forbid.env);
    assert.equal(r.code, 1, JSON.stringify(forbid));
    assert.match(r.stderr, /^ {2}swaks \(Debian package swaks\)$/m);
    assert.match(r.stderr, /^ {2}ldapwhoami \(Debian package ldap-utils\)$/m);
    const sudo = asRoot ? '' : 'sudo ';
    assert.ok(r.stderr.includes(`  ${sudo}apt-get update && ${sudo}apt-get install -y --no-install-recommends ldap-utils swaks\n`), r.stderr);
    assert.ok(!fs.existsSync(path.join(dir, 'apt-get.log')), 'apt-get was not run');
  }
});

test('as root with apt-get it installs the missing packages (noninteractive), then succeeds', () => {
  const dir = pathWithout('swaks');
  // The stand-in records its arguments and DEBIAN_FRONTEND, and "installs" swaks by putting it on PATH.
  fs.writeFileSync(
    path.join(dir, 'apt-get'),
    `#!/bin/sh\necho "$DEBIAN_FRONTEND $*" >> ${dir}/apt-get.log\n[ "$1" = install ] && /bin/ln -s ${which('swaks')} ${dir}/swaks\nexit 0\n`,
    { mode: 0o755 },
  );
  const r = preflight(dir);
  const log = fs.existsSync(path.join(dir, 'apt-get.log')) ? fs.readFileSync(path.join(dir, 'apt-get.log'), 'utf8') : '';
  if (asRoot) {
    assert.equal(r.code, 0, r.stderr);
    assert.equal(log, 'noninteractive update\nnoninteractive install -y --no-install-recommends swaks\n');
  } else {
    // Not root: it never runs apt-get, and says to run it with sudo.
    assert.equal(r.code, 1);
    assert.equal(log, '');
    assert.match(r.stderr, /sudo apt-get install -y --no-install-recommends swaks$/m);
  }
});

test('--packages lists every package once, benchmarks included, for .ci/run', () => {
  const r = preflight(pathWithout(), ['--packages']);
  assert.equal(r.code, 0, r.stderr);
  const pkgs = r.stdout.trim().split(' ');
  assert.deepEqual(pkgs, [...new Set(programs().map((p) => p.pkg))]);
  assert.ok(pkgs.includes('ldap-utils') && pkgs.includes('postfix'));
});
