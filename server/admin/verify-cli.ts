/**
 * `dcmx verify [PATH]`: the command line of server/backup/verify.ts. PATH
 * is a backup tree (it holds manifest.json, or is not a data dir) or a data
 * dir; without it, the configuration's data dir (DCMX_DATA_DIR). Nothing is
 * opened for writing and no lock is taken: it runs beside a serving
 * appliance.
 *
 * A progress line on stderr while a backup's files are hashed, when it is a
 * terminal. Prints one line per problem on stdout (a path relative to PATH, what is
 * wrong) and a count on stderr, exit status 1; or one summary line on
 * stdout, exit status 0.
 */
import * as path from 'node:path';
import type { Config } from '../config';
import { count, isBackupTree, verifyTree } from '../backup/verify';
import { UsageError } from './cli-args';
import { progressPrinter } from './progress';

/** The verify command's line of the usage text. */
export const VERIFY_USAGE = '  dcmx verify [PATH]';

/** Runs `dcmx verify [PATH]`; resolves with the exit status (0 all well, 1 a problem found). Throws UsageError for bad usage. */
export async function runVerifyCommand(args: string[], config: Config): Promise<number> {
  if (args.length > 1 || args.some((a) => a.startsWith('-'))) throw new UsageError('verify takes at most one PATH');
  const root = path.resolve(args[0] ?? config.dataDir);
  const backup = isBackupTree(root, config.dataDir);
  const print = progressPrinter('files');
  let files = 0;
  let shown = 0;
  const report = await verifyTree(root, backup, (bytes, total) => {
    files++;
    if (Date.now() - shown < 100 && bytes < total) return;
    shown = Date.now();
    print({ done: bytes, total, count: files });
  });
  if (files && process.stderr.isTTY) process.stderr.write('\n');
  if (report.problems.length) {
    for (const p of report.problems) console.log(p);
    console.error(`dcmx verify: ${count(report.problems.length, 'problem')} in ${report.kind} ${root}`);
    return 1;
  }
  console.log(`ok: ${report.kind} ${root}: ${report.checked}`);
  return 0;
}
