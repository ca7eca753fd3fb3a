/**
 * The runtime (README, Runtime): dcmx runs on Node.js 24 or newer. Started on an older Node,
 * every entry point stops with one line before any native addon loads; the install step
 * (native/runtime.js) makes every native addon load in the Node that runs dcmx.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { tempDirs, testEnv, type RunResult } from './helpers';
import { track } from './fixtures/children';

const ROOT = path.resolve(__dirname, '..', '..');
const OLD_NODE = path.join(__dirname, 'fixtures', 'old-node.js');
const dataDir = tempDirs('dcmx-runtime-');

/** Runs `node ...args` (this Node) with `env` over process.env, in a temporary folder. */
function runNode(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    track(execFile(process.execPath, args, { env: { ...process.env, ...env }, cwd: os.tmpdir(), timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as unknown as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    }));
  });
}

// Each with arguments that would end it quickly, and harmlessly, were the check missing.
const ENTRY_POINTS: [string, string[]][] = [
  ['the appliance (npm start)', [path.join(ROOT, 'dist', 'server', 'main.js')]],
  ['the dcmx command', [path.join(ROOT, 'dist', 'server', 'admin', 'cli.js'), 'routes']],
  ['the benchmarks (npm run bench)', [path.join(ROOT, 'dist', 'bench', 'run.js'), 'no-such-benchmark']],
  ['the test runner (npm test)', [path.join(ROOT, 'test', 'run.js'), 'no-such-test-file']],
  ['the test preflight (npm test)', [path.join(ROOT, 'test', 'preflight.js'), '--no-install']],
];

for (const [name, args] of ENTRY_POINTS) {
  test(`${name} started on Node.js 20 stops with one line, before any native addon loads`, async () => {
    const r = await runNode(['-r', OLD_NODE, ...args], { ...testEnv(dataDir()), DCMX_TEST_NO_INSTALL: '1' });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, '');
    const lines = r.stderr.split('\n').filter(Boolean);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /^dcmx: Node\.js 20\.20\.2 is too old: dcmx needs Node\.js 24 or newer\. .*npm start, npm test, npm run dcmx/);
  });
}

test('the package list of the test preflight is printed on any Node (.ci/run asks for it before npm ci)', async () => {
  const r = await runNode(['-r', OLD_NODE, path.join(ROOT, 'test', 'preflight.js'), '--packages']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\bldap-utils\b/);
});

test('the install step loads every native addon in this Node, the one that runs dcmx', async () => {
  assert.ok(Number(process.versions.node.split('.')[0]) >= 24, `the tests run on Node.js ${process.versions.node}`);
  // As npm runs it (postinstall), from this Node.
  const r = await runNode([path.join(ROOT, 'native', 'runtime.js')], { npm_node_execpath: process.execPath });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stderr.includes(`Node.js ${process.versions.node}`), r.stderr);
  assert.doesNotMatch(r.stderr, /does not load|building/);
});
