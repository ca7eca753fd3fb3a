/**
 * `npm run bench`: runs each benchmark module in turn and prints its figures,
 * then a summary: the ratios against the goals and dcmx's memory.
 * `node dist/bench/run.js ldap` runs only the named module(s); `--short`
 * (or DCMX_BENCH_SHORT=1) runs them on smaller data sets and shorter windows.
 */
import '../server/runtime'; // first: an older Node.js stops here, before any native addon loads
import * as os from 'node:os';
import { DISTURBED, formatTable, memoryTable, ratiosTable, type Benchmark, type Memory, type Ratio } from './report';
import { ldapBenchmark } from './ldap';
import { dnsBenchmark } from './dns';
import { smtpBenchmark } from './smtp';
import { provisionBenchmark } from './provision';
import { unitsBenchmark } from './units';
import { shortRun } from './env';
import { pinning, pinSelf } from './proc';

/** The benchmark modules, in the order they run. */
const BENCHMARKS: Benchmark[] = [ldapBenchmark, dnsBenchmark, smtpBenchmark, provisionBenchmark, unitsBenchmark];

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--short')) process.env.DCMX_BENCH_SHORT = '1';
  const wanted = args.filter((a) => a !== '--short');
  const unknown = wanted.filter((w) => !BENCHMARKS.some((b) => b.name === w));
  if (unknown.length) {
    console.error(`unknown benchmark ${unknown.join(', ')}; available: ${BENCHMARKS.map((b) => b.name).join(', ')} (and --short)`);
    process.exit(2);
  }
  const selected = wanted.length ? BENCHMARKS.filter((b) => wanted.includes(b.name)) : BENCHMARKS;
  const started = Date.now();
  // The in-process load generators (LDAP searches, provisioning) run on the generator's core.
  pinSelf();
  console.log(
    `dcmx benchmarks${shortRun() ? ' (short run)' : ''}: ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? 'unknown'}), ` +
      `Node ${process.version}; ${pinning().note}; load average at start ` +
      os.loadavg().map((l) => l.toFixed(2)).join(' '),
  );
  let failed = false;
  const ratios: Ratio[] = [];
  const memory: Memory[] = [];
  const missing: string[] = [];
  for (const b of selected) {
    console.log(`\n== ${b.name}: ${b.description}`);
    const t0 = Date.now();
    try {
      const report = await b.run((msg) => console.error(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`));
      for (const t of report.tables) console.log(`\n${formatTable(t)}`);
      for (const t of report.text) console.log(`\n${t}`);
      ratios.push(...(report.ratios ?? []));
      memory.push(...(report.memory ?? []));
    } catch (e) {
      failed = true;
      missing.push(b.name);
      console.error(`${b.name} failed:`, e instanceof Error ? e.stack ?? e.message : e);
    }
    console.log(`\n(${b.name}: ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  }
  if (ratios.length || missing.length) {
    const notes = [
      'ratio = the dcmx figure / the figure against it, both measured in this run; where the two were measured in alternating ' +
        'windows (dcmx, peer, dcmx, peer...), "per pair" lists the ratio of each pair and the ratio is their median, the figures the ' +
        'medians of each side\'s windows; verdict PASS when the ratio reaches the goal (at least, or at most for times, latencies and ' +
        'memory), MISS when not, info for a comparison the issue sets no goal for; CPU µs/op: the server\'s CPU per operation',
      `others' CPU: what every other process on the machine used while each of the two figures was measured, in per cent of one ` +
        `core; above ${Math.round(100 * DISTURBED)}% the verdict says "disturbed": someone else was using the machine, run it again`,
    ];
    if (missing.length) notes.push(`no figures from ${missing.join(', ')} (it failed: see above)`);
    console.log(`\n${formatTable(ratiosTable(ratios, notes))}`);
  }
  if (memory.length) console.log(`\n${formatTable(memoryTable(memory))}`);
  console.log(`\nall benchmarks: ${((Date.now() - started) / 1000).toFixed(0)} s; load average at the end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  process.exit(failed ? 1 : 0);
}

void main();
