/**
 * The command line of server/backup/: `dcmx backup DEST [--no-mail]` and
 * `dcmx restore SRC`.
 *
 * `dcmx backup` copies the data dir while the appliance (or a remote
 * transfer unit) runs (server/backup/snapshot.ts): a progress line on
 * stderr when it is a terminal, always a final line with the files, the
 * size, the time taken and the change number. Exit status: 0 done (a
 * manifest was written); 1 refused (DEST not empty, inside the data dir, no
 * store) or failed (what was written is removed); 64 usage (cli.ts);
 * 128 + the signal's number when SIGINT or SIGTERM stopped it (what was
 * written is removed).
 *
 * `dcmx restore` never opens or
 * creates a store in the data dir before it has checked the backup and
 * the data dir (restore.ts restoreBackup): the data dir is the
 * configuration's (DCMX_DATA_DIR), missing or empty, and no appliance runs
 * on it. Exit status: 0 done; 1 refused (nothing written); 2 bad
 * configuration; 64 usage; 128 + the signal's number when SIGINT or SIGTERM
 * stopped it before the data dir was put in place (what it wrote is removed).
 */
import * as os from 'node:os';
import { ConfigError, type Config } from '../config';
import { restoreBackup, RestoreError, type RestoreSummary } from '../backup/restore';
import { backupDataDir, BackupRefusedError } from '../backup/snapshot';
import { count } from '../backup/verify';
import { flag, UsageError } from './cli-args';
import { progressPrinter } from './progress';

/** The restore command's line of the usage text. */
export const RESTORE_USAGE = '  dcmx restore SRC';

/** What a restore did, as the lines it prints. */
export function restoreReport(src: string, r: RestoreSummary): string[] {
  const m = r.manifest;
  const lines = [
    `restored ${count(r.files, 'file')}, ${r.bytes} bytes from ${src} into ${r.dataDir} in ${r.seconds.toFixed(1)} s`,
    `backup of ${m.host} taken ${m.created} at change ${m.changeNumber}${m.mail ? '' : ' (without the Maildirs: --no-mail)'}`,
    `queue: ${count(m.queue.messages, 'message')}, ${count(m.queue.recipients, 'recipient')} (${count(r.spoolRows, 'spool file')} now under ${r.dataDir})`,
  ];
  if (r.serials) {
    lines.push(`zone serials moved forward by ${r.step} (ms since the backup, RFC 1982), so that secondaries follow:`);
    for (const z of r.serials.zones) lines.push(`  ${z.zone}.\t${z.from} -> ${z.to}`);
    lines.push(`  zone set (catalog)\t${r.serials.catalog.from} -> ${r.serials.catalog.to}`);
    if (r.clockBehindMs > 0) {
      lines.push(`warning: this machine's clock is ${(r.clockBehindMs / 1000).toFixed(1)} s behind the backup's time: the serials moved by 1 only, and secondaries ` +
        'that took more than one serial after the backup keep their copy; set the clock right (NTP) and raise the serials (a change to each zone) before they transfer');
    }
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
  const printers = { check: progressPrinter('files checked'), copy: progressPrinter('files restored') };
  let phase: 'check' | 'copy' | undefined;
  let shown = 0;
  try {
    const r = await interruptible((signal) => restoreBackup(src, config, {
      signal,
      onProgress: (now, p) => {
        // A line per phase, redrawn at most every 100 ms, and at its end.
        if (now === phase && p.bytes < p.totalBytes && Date.now() - shown < 100) return;
        if (phase !== now && phase && process.stderr.isTTY) process.stderr.write('\n');
        phase = now;
        shown = Date.now();
        printers[now]({ done: p.bytes, total: p.totalBytes, count: p.files });
      },
    }));
    if (phase && process.stderr.isTTY) process.stderr.write('\n');
    for (const l of restoreReport(src, r)) console.log(l);
    return 0;
  } catch (e) {
    if (phase && process.stderr.isTTY) process.stderr.write('\n');
    if (e instanceof InterruptedError) {
      console.error(`dcmx: restore interrupted by ${e.signal}: nothing restored`);
      return e.status;
    }
    if (!(e instanceof RestoreError)) {
      if (e instanceof ConfigError) throw e;
      // A failure part-way (ENOSPC, EIO, a data dir's parent that cannot be made): restoreBackup removed what it wrote.
      console.error(`dcmx: restore failed: ${e instanceof Error ? e.message : String(e)}; nothing restored`);
      return 1;
    }
    console.error(`dcmx: restore refused: ${e.message}`);
    for (const p of e.problems) console.error(`  ${p}`);
    return 1;
  }
}

/** The backup command's line of the usage text. */
export const BACKUP_USAGE = '  dcmx backup DEST [--no-mail]';

/** Bytes as the final line shows them (1 decimal, binary units). */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  for (; n >= 1024 && i < units.length - 1; i++) n /= 1024;
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

/** Runs `dcmx backup ARGS...` with `config`; resolves with the exit status. Throws UsageError for bad usage. */
export async function runBackupCommand(args: string[], config: Config): Promise<number> {
  const mail = !flag(args, '--no-mail');
  const unexpected = args.find((a) => a.startsWith('-'));
  if (unexpected) throw new UsageError(`unknown option ${unexpected}`);
  if (args.length !== 1) throw new UsageError('backup takes one DEST');
  const print = progressPrinter('files');
  try {
    const { manifest: m, seconds } = await interruptible((signal) => backupDataDir(config, args[0], {
      mail,
      signal,
      onProgress: (p) => print({ done: p.bytes, total: p.totalBytes, count: p.files }),
      onWarning: (w) => process.stderr.write(`${process.stderr.isTTY ? '\n' : ''}dcmx: warning: ${w}\n`),
    }));
    if (process.stderr.isTTY) process.stderr.write('\n');
    const finished = m.queue.finishedDuringBackup ? `, ${count(m.queue.finishedDuringBackup, 'message')} finished during the backup left out` : '';
    console.error(`backed up ${config.dataDir} to ${args[0]}: ${count(m.totals.files, 'file')}, ${formatBytes(m.totals.bytes)}, ${seconds.toFixed(1)} s, change ${m.changeNumber}`
      + `, ${count(m.queue.messages, 'queued message')}${finished}${mail ? '' : ', without the Maildirs'}`);
    return 0;
  } catch (e) {
    if (process.stderr.isTTY) process.stderr.write('\n');
    if (e instanceof BackupRefusedError) {
      console.error(`dcmx: backup refused: ${e.message}`);
      return 1;
    }
    if (e instanceof InterruptedError) {
      console.error(`dcmx: backup interrupted by ${e.signal}: what it wrote is removed`);
      return e.status;
    }
    // A failure part-way (ENOSPC, EIO, a store that cannot be read): backupDataDir removed what it wrote.
    console.error(`dcmx: backup failed: ${e instanceof Error ? e.message : String(e)}; what it wrote is removed`);
    return 1;
  }
}

/** A command stopped by a signal. */
class InterruptedError extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
    this.name = 'InterruptedError';
  }

  /** The exit status, as a shell reports a process the signal ended: 128 + its number. */
  get status(): number {
    return 128 + os.constants.signals[this.signal];
  }
}

/**
 * Runs `work` with an AbortSignal that SIGINT or SIGTERM (Ctrl-C, a
 * service stop) aborts with an InterruptedError, instead of ending the
 * process: the command stops between two files and removes what it wrote.
 */
async function interruptible<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const stop = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => stop.abort(new InterruptedError(sig));
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  try {
    return await work(stop.signal);
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
  }
}
