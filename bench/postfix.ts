/**
 * Postfix as an SMTP comparison target: a private instance (its own
 * main.cf, master.cf, queue and data directories in a temporary directory;
 * nothing under /etc/postfix or /var/spool/postfix is used or changed) whose
 * smtpd listens on a loopback port and whose virtual(8) delivery agent puts
 * the mail of one user into a Maildir, as dcmx does. Postfix's defaults
 * otherwise (process limits, in_flow_delay, fsync before 250). The master
 * runs in the foreground as a child of the benchmark, so it and its daemons
 * stop with it. Its whole process tree on the CPUs given (the benchmark's
 * server core), as the master's daemons inherit its affinity.
 *
 * Postfix's master must start as root (it runs its daemons as mail_owner
 * `postfix`); without root, or without the package, the comparison is not
 * measured and {@link postfixUnavailable} says why.
 *
 * Postfix logs through syslog; where no syslog daemon listens (/dev/log),
 * its lines go nowhere, as dcmx's do at DCMX_LOG_LEVEL=warn.
 * DCMX_BENCH_POSTFIX_LOG=1 sends them to a file instead (maillog_file), whose
 * end is quoted when the instance fails.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { freePort, spawnChild, waitForPort, which, type Child } from './proc';

/** Postfix's daemon directory (where `master` is), from postconf. */
function daemonDirectory(): string | undefined {
  try {
    return execFileSync(which('postconf')!, ['-h', 'daemon_directory'], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}

/** The numeric uid and gid of `user`, from id(1). */
function ids(user: string): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, user], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

/** The account the virtual delivery agent writes the Maildir as (any uid >= virtual_minimum_uid). */
const DELIVERY_USER = 'nobody';

/** Why Postfix cannot be measured here, or undefined when it can. */
export function postfixUnavailable(): string | undefined {
  if (!which('postconf') || !which('postfix')) return 'Postfix is not installed (Debian package postfix)';
  const dir = daemonDirectory();
  if (!dir || !fs.existsSync(path.join(dir, 'master'))) return 'Postfix\'s master daemon was not found (postconf -h daemon_directory)';
  if (process.getuid?.() !== 0) {
    return 'Postfix\'s master must start as root (it runs its daemons as the postfix user); this benchmark does not run as root';
  }
  try {
    ids('postfix');
    ids(DELIVERY_USER);
  } catch {
    return `the users postfix and ${DELIVERY_USER} must exist`;
  }
  return undefined;
}

/** A running private Postfix instance. */
export interface Postfix {
  /** The master; smtpd, cleanup, qmgr, virtual... are its children. */
  child: Child;
  port: number;
  /** The Maildir of `user@domain`. */
  maildir: string;
  /** The end of its log (DCMX_BENCH_POSTFIX_LOG=1), or a hint to turn it on. */
  log(): string;
}

/**
 * master.cf: the services of Postfix's own master.cf that this setup can
 * use, with their default limits, none chrooted; smtpd on 127.0.0.1:port.
 * Columns: service, type, private, unpriv, chroot, wakeup, maxproc, command.
 */
function masterCf(port: number): string {
  return [
    `127.0.0.1:${port} inet n - n - - smtpd`,
    'pickup unix n - n 60 1 pickup',
    'cleanup unix n - n - 0 cleanup',
    'qmgr unix n - n 300 1 qmgr',
    'rewrite unix - - n - - trivial-rewrite',
    'bounce unix - - n - 0 bounce',
    'defer unix - - n - 0 bounce',
    'trace unix - - n - 0 bounce',
    'verify unix - - n - 1 verify',
    'flush unix n - n 1000? 0 flush',
    'proxymap unix - - n - - proxymap',
    'proxywrite unix - - n - 1 proxymap',
    'smtp unix - - n - - smtp',
    'relay unix - - n - - smtp',
    'showq unix n - n - - showq',
    'error unix - - n - - error',
    'retry unix - - n - - error',
    'discard unix - - n - - discard',
    'local unix - n n - - local',
    'virtual unix - n n - - virtual',
    'lmtp unix - - n - - lmtp',
    'anvil unix - - n - 1 anvil',
    'scache unix - - n - 1 scache',
    'postlog unix-dgram n - n - 1 postlogd',
    '',
  ].join('\n');
}

/**
 * Creates the instance under `dir` (removed by the caller), starts its
 * master on a free loopback port (on `cpus`, a taskset list, when given),
 * and resolves once smtpd's port accepts.
 * `domain` is its one virtual mailbox domain, `user@domain` its one mailbox.
 */
export async function startPostfix(dir: string, domain: string, user: string, cpus?: string): Promise<Postfix> {
  const etc = path.join(dir, 'etc');
  const queue = path.join(dir, 'queue');
  const data = path.join(dir, 'data');
  const mail = path.join(dir, 'mail');
  for (const d of [etc, queue, data, mail]) fs.mkdirSync(d, { recursive: true });
  // The postfix user and the delivery user walk down to their directories.
  for (let d = dir; d !== path.dirname(d); d = path.dirname(d)) if ((fs.statSync(d).mode & 0o011) !== 0o011) fs.chmodSync(d, fs.statSync(d).mode | 0o011);
  const owner = ids('postfix');
  const delivery = ids(DELIVERY_USER);
  fs.chownSync(data, owner.uid, owner.gid);
  fs.chownSync(mail, delivery.uid, delivery.gid);
  const port = await freePort();
  const logFile = process.env.DCMX_BENCH_POSTFIX_LOG === '1' ? path.join(dir, 'maillog') : undefined;
  fs.writeFileSync(path.join(etc, 'main.cf'), [
    'compatibility_level = 3.6',
    `queue_directory = ${queue}`,
    `data_directory = ${data}`,
    `myhostname = mx.${domain}`,
    `mydomain = ${domain}`,
    'mydestination =',
    'inet_interfaces = 127.0.0.1',
    'inet_protocols = ipv4',
    'mynetworks = 127.0.0.0/8',
    'alias_maps =',
    'alias_database =',
    'relayhost =',
    'smtpd_relay_restrictions = permit_mynetworks reject_unauth_destination',
    `virtual_mailbox_domains = ${domain}`,
    `virtual_mailbox_base = ${mail}`,
    `virtual_mailbox_maps = inline:{ ${user}@${domain}=${domain}/${user}/ }`,
    `virtual_uid_maps = static:${delivery.uid}`,
    `virtual_gid_maps = static:${delivery.gid}`,
    ...(logFile ? [`maillog_file = ${logFile}`, `maillog_file_prefixes = ${dir}`] : []),
    '',
  ].join('\n'));
  fs.writeFileSync(path.join(etc, 'master.cf'), masterCf(port));
  const log = () =>
    logFile ? (fs.existsSync(logFile) ? `Postfix log:\n${fs.readFileSync(logFile, 'utf8').slice(-3000)}` : 'Postfix wrote no log') :
      '(set DCMX_BENCH_POSTFIX_LOG=1 to keep Postfix\'s log)';
  try {
    // `postfix check` creates the queue's subdirectories with their owners and modes.
    execFileSync(which('postfix')!, ['-c', etc, 'check'], { stdio: 'pipe' });
  } catch (e) {
    const err = e as { status?: number; stderr?: Buffer };
    throw new Error(`postfix -c ${etc} check failed (${err.status}): ${err.stderr ?? ''} ${log()}`);
  }
  const child = spawnChild(path.join(daemonDirectory()!, 'master'), ['-c', etc], undefined, undefined, cpus);
  try {
    await waitForPort(port, child);
  } catch (e) {
    child.proc.kill('SIGKILL');
    await child.exited;
    throw new Error(`${(e as Error).message}\n${log()}`);
  }
  return { child, port, maildir: path.join(mail, domain, user), log };
}
