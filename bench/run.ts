/**
 * `npm run bench`: runs each benchmark module in turn and prints its figures.
 * `node dist/bench/run.js ldap` runs only the named module(s).
 */
import '../server/runtime'; // first: an older Node.js stops here, before any native addon loads
import { formatTable, type Benchmark } from './report';
import { ldapBenchmark } from './ldap';
import { dnsBenchmark } from './dns';
import { smtpBenchmark } from './smtp';
import { provisionBenchmark } from './provision';

/** The benchmark modules, in the order they run. */
const BENCHMARKS: Benchmark[] = [ldapBenchmark, dnsBenchmark, smtpBenchmark, provisionBenchmark];

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((w) => !BENCHMARKS.some((b) => b.name === w));
  if (unknown.length) {
    console.error(`unknown benchmark ${unknown.join(', ')}; available: ${BENCHMARKS.map((b) => b.name).join(', ')}`);
    process.exit(2);
  }
  const selected = wanted.length ? BENCHMARKS.filter((b) => wanted.includes(b.name)) : BENCHMARKS;
  let failed = false;
  for (const b of selected) {
    console.log(`== ${b.name}: ${b.description}`);
    const t0 = Date.now();
    try {
      const report = await b.run((msg) => console.error(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`));
      for (const t of report.tables) console.log(`\n${formatTable(t)}`);
      for (const t of report.text) console.log(`\n${t}`);
    } catch (e) {
      failed = true;
      console.error(`${b.name} failed:`, e instanceof Error ? e.stack ?? e.message : e);
    }
    console.log('');
  }
  process.exit(failed ? 1 : 0);
}

void main();
