// The per-file bound of a test run. node --test has none: its --test-timeout
// bounds each test, not a file's hooks nor a file whose tests are over but
// whose process something (a socket, a timer: a reconnect loop) keeps alive,
// which then holds the whole run forever. The watchdog finds the test files'
// processes among the runner's descendants (Linux /proc: each is a node
// process whose arguments name its file), and one still running `boundMs`
// after it started is stopped with its whole process tree: SIGTERM (a test
// file stops its own children then, test/fixtures/children.ts), SIGKILL to
// every process of the tree still there `graceMs` later, or once the file's
// process is gone, or when the run ends. node --test then
// reports the file failed; the watchdog names it on stderr.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

/** pid → { ppid, argv } of every process /proc lists (empty where there is no /proc). */
function processes() {
  const all = new Map();
  let pids;
  try {
    pids = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return all;
  }
  for (const d of pids) {
    try {
      // The field after the command name, which is in parentheses and may hold anything (proc(5)).
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const argv = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      all.set(Number(d), { ppid, argv });
    } catch {
      // it exited meanwhile
    }
  }
  return all;
}

/** `root`'s descendants (not `root`), parents before their children. */
function descendants(all, root) {
  const out = [];
  const queue = [root];
  while (queue.length) {
    const p = queue.shift();
    for (const [pid, info] of all) if (info.ppid === p) (out.push(pid), queue.push(pid));
  }
  return out;
}

function signal(pid, sig) {
  try {
    process.kill(pid, sig);
  } catch {
    // gone already
  }
}

/**
 * Watches the test files (absolute paths) the process `runnerPid` runs; a file
 * still running after `boundMs` is killed with its process tree. `onKill(file)`
 * is told. Returns a function that stops watching and kills at once what is
 * left of the trees of the files killed (the run is ending: nothing may stay).
 */
function watchTestFiles(runnerPid, files, { boundMs, graceMs = 10_000, everyMs = 2000, onKill }) {
  const wanted = new Set(files.map((f) => path.resolve(f)));
  /** pid → { file, since } of each test file process running. */
  const seen = new Map();
  /** pid → argv of every process of a killed file's tree (the argv tells a reused pid). */
  const doomed = new Map();
  const killDoomed = (all) => {
    for (const [p, argv] of doomed) {
      const now = all.get(p);
      if (!now || now.argv.join('\0') !== argv.join('\0')) doomed.delete(p);
      else signal(p, 'SIGKILL');
    }
  };
  const timer = setInterval(() => {
    const all = processes();
    const now = Date.now();
    for (const pid of descendants(all, runnerPid)) {
      const file = all.get(pid).argv.find((a) => a && wanted.has(path.resolve(a)));
      if (file && !seen.has(pid)) seen.set(pid, { file, since: now });
    }
    for (const [pid, s] of seen) {
      if (!all.has(pid)) {
        seen.delete(pid);
      } else if (now - s.since > boundMs && !doomed.has(pid)) {
        for (const p of [pid, ...descendants(all, pid)]) doomed.set(p, all.get(p).argv);
        onKill(s.file);
        signal(pid, 'SIGTERM');
        setTimeout(() => killDoomed(processes()), graceMs).unref();
      }
    }
    // A killed file's process is gone: what it left behind goes at once.
    if ([...doomed.keys()].some((p) => seen.has(p) === false && !all.has(p))) killDoomed(all);
  }, everyMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    if (doomed.size) killDoomed(processes());
  };
}

module.exports = { watchTestFiles };
