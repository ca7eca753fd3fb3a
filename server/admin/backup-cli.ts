/**
 * `dcmx restore SRC`: the command line of server/backup/. It never opens or
 * creates a store in the data dir before it has checked the backup and
 * the data dir (restore.ts restoreBackup): the data dir is the
 * configuration's (DCMX_DATA_DIR), missing or empty, and no appliance runs
 * on it.
 */
import type { Config } from '../config';
import { restoreBackup, RestoreError, type RestoreSummary } from '../backup/restore';
import { UsageError } from './cli-args';

/** The restore command's line of the usage text. */
export const RESTORE_USAGE = '  dcmx restore SRC';

/** What a restore did, as the lines it prints. */
export function restoreReport(src: string, r: RestoreSummary): string[] {
  const m = r.manifest;
  const lines = [
    `restored ${r.files} files, ${r.bytes} bytes from ${src} into ${r.dataDir} in ${r.seconds.toFixed(1)} s`,
    `backup of ${m.host} taken ${m.created} at change ${m.changeNumber}${m.mail ? '' : ' (without the Maildirs: --no-mail)'}`,
    `queue: ${m.queue.messages} messages, ${m.queue.recipients} recipients (${r.spoolRows} spool files now under ${r.dataDir})`,
  ];
  if (r.serials) {
    lines.push(`zone serials moved forward by ${r.step} (ms since the backup, RFC 1982), so that secondaries follow:`);
    for (const z of r.serials.zones) lines.push(`  ${z.zone}.\t${z.from} -> ${z.to}`);
    lines.push(`  zone set (catalog)\t${r.serials.catalog.from} -> ${r.serials.catalog.to}`);
  }
  lines.push('start the appliance on it; Content Sync consumers ahead of the backup get a full refresh');
  return lines;
}

/**
 * Runs `dcmx restore SRC` with `config`: prints what was restored and
 * resolves with 0, or prints why nothing was (every mismatch of the tree
 * with its manifest, one a line) and resolves with 1. Throws UsageError for
 * bad usage.
 */
export async function runRestoreCommand(args: string[], config: Config): Promise<number> {
  if (args.length !== 1 || args[0].startsWith('-')) throw new UsageError('restore takes one SRC (a backup made by dcmx backup)');
  const src = args[0];
  try {
    const r = await restoreBackup(src, config);
    for (const l of restoreReport(src, r)) console.log(l);
    return 0;
  } catch (e) {
    if (!(e instanceof RestoreError)) throw e;
    console.error(`dcmx: restore refused: ${e.message}`);
    for (const p of e.problems) console.error(`  ${p}`);
    return 1;
  }
}
