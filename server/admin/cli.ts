#!/usr/bin/env node
/**
 * `dcmx`: the operator's command line. It opens the same store as the
 * running appliance (SQLite allows it) and writes through the same write
 * path (its own LocalWriter, writes.ts), so every change is validated,
 * indexed and logged in the change log.
 *
 *   dcmx ldif import FILE [--continue] [--skip-existing]
 *   dcmx ldif export [--base DN] [--no-operational]
 *   dcmx zone export ZONE      RFC 1035 master file of a zone
 *   dcmx zone list             the zones served, with their serials
 *   dcmx routes                the routing table, with the change number it reflects
 *   dcmx domain add NAME [--force]
 *                              provision a mail domain (entries, DNS records, one transaction);
 *                              --force also takes a public suffix or a new zone above our own names
 *   dcmx domain remove NAME    refuse its mail and withdraw its mail DNS records (MX, SPF, DMARC), keeping mailboxes and the zone
 *   dcmx domain list           hosted mail domains and their status
 *   dcmx schema export [--format openldap|ldif]
 *                              dcmx's schema for an OpenLDAP slapd replica (schema/openldap.ts): a file
 *                              to include after slapd's core, cosine, inetorgperson and nis schema
 *                              (openldap, the default), or the cn=config entry (ldif)
 *   dcmx dkim list|rotate DOMAIN
 *                              a domain's DKIM selectors; a new key at a new dated selector, the old
 *                              ones retired after DCMX_DKIM_RETIRE_AFTER (dkim-cli.ts)
 *   dcmx dnssec [status] [ZONE] each zone's DNSSEC state: signed, withdrawing, unsigned, key tags
 *   dcmx dnssec ds ZONE        the zone's DS record for the registrar (dnssec-cli.ts)
 *   dcmx queue list|show|retry|hold|release|delete|bounce ...
 *                              the mail queue, as Postfix's postqueue/postsuper/postcat (queue-cli.ts)
 *   dcmx verify [PATH]         check a data dir or a backup: SQLite integrity, queue against spool,
 *                              Maildirs, a backup's manifest; one line per problem (verify-cli.ts)
 *   dcmx restore SRC           the data dir rebuilt from a backup (backup-cli.ts)
 *   dcmx backup DEST [--no-mail]
 *                              a consistent backup of the data dir while the appliance runs, into a new
 *                              or empty DEST, manifest last (backup-cli.ts, server/backup/snapshot.ts)
 *
 * Every command first initialises the store as the appliance's first boot
 * does (the suffix and the administrator, when missing); `ldif import` of a
 * file that brings the suffix entry itself (a backup) does it after.
 *
 * Exit status: 0 done, 1 failed (verify: a problem found; backup, restore: refused or failed, the
 * reason on stderr), 2 bad configuration, 64 usage, 75 when a
 * queue command must wait for a delivery attempt under way (queue-cli.ts
 * EXIT_TEMPFAIL), 141 when the reader of stdout went away (EXIT_PIPE), 130/143 when SIGINT/SIGTERM
 * stopped a backup or a restore (what it wrote is removed; backup-cli.ts).
 */
import '../runtime'; // first: an older Node.js stops here, before any native addon loads
import * as os from 'node:os';
import { ConfigError, loadConfig, type Config } from '../config';
import type { Services } from '../directory/open';
import type { Directory } from '../directory/directory';
import { DirectoryError } from '../directory/errors';
import { initialAdminPassword, openStore } from '../appliance';
import { exportLdif, firstLdifRecord, importLdif } from './ldif-io';
import { progressPrinter } from './progress';
import { zoneMasterFile } from './zone-file';
import { MailDirectory } from '../directory/mail';
import { describeRoute, RoutingTable } from '../directory/routing';
import { Provisioner } from '../directory/provision';
import { ReservedDomainError } from '../directory/errors';
import { LocalWriter } from '../directory/writes';
import { openldapSchemaFile, openldapSchemaLdif } from '../../schema/openldap';
import { flag, option, UsageError } from './cli-args';
import { QUEUE_USAGE, runQueueCommand } from './queue-cli';
import { DKIM_USAGE, runDkimCommand } from './dkim-cli';
import { DNSSEC_USAGE, runDnssecCommand } from './dnssec-cli';
import { runVerifyCommand, VERIFY_USAGE } from './verify-cli';
import { BACKUP_USAGE, RESTORE_USAGE, runBackupCommand, runRestoreCommand } from './backup-cli';

const USAGE = `usage:
  dcmx ldif import FILE [--continue] [--skip-existing]
  dcmx ldif export [--base DN] [--no-operational]
  dcmx zone export ZONE
  dcmx zone list
  dcmx routes
  dcmx domain add NAME [--force]
  dcmx domain remove NAME
  dcmx domain list
  dcmx schema export [--format openldap|ldif]
${DKIM_USAGE}
${DNSSEC_USAGE}
${QUEUE_USAGE}
${BACKUP_USAGE}
${RESTORE_USAGE}
${VERIFY_USAGE}`;


/**
 * Creates the suffix and the administrator when missing, as the appliance's
 * first boot does (a generated password is kept and announced once); an
 * existing administrator's password is the appliance's business, never the CLI's.
 */
async function bootstrap(config: Config, directory: Directory): Promise<void> {
  const configured = config.adminPassword;
  await directory.bootstrap({
    kind: 'initial',
    password: () => configured ?? initialAdminPassword(config, (m) => console.error(m)),
  }).catch((e: unknown) => {
    // As at appliance start: the suffix and the administrator are the configuration's.
    if (e instanceof DirectoryError) throw new ConfigError('DCMX_ADMIN_DN', `cannot create the administrator ${config.adminDN}: ${e.message}`);
    throw e;
  });
}

/** Opens the store, initialised (see bootstrap). */
async function openFor(config: Config): Promise<Services> {
  const services = openStore(config);
  try {
    await bootstrap(config, services.directory);
  } catch (e) {
    services.directory.store.close();
    throw e;
  }
  return services;
}

/** True when `file` begins with the entry of the suffix (a backup of the whole tree) and the store has none yet. */
async function bringsSuffix(directory: Directory, file: string): Promise<boolean> {
  if (directory.getByNdn(directory.suffixNdn)) return false;
  const first = await firstLdifRecord(file).catch(() => undefined); // a bad file is reported by the import itself
  if (first?.kind !== 'entry' && first?.kind !== 'add') return false;
  try {
    return directory.normalize(first.dn) === directory.suffixNdn;
  } catch {
    return false;
  }
}

/** Resolves once what was written to stdout so far has been handed to the OS (or failed). */
function stdoutWritten(): Promise<void> {
  return new Promise((resolve) => process.stdout.write('', () => resolve()));
}

/**
 * EXIT_PIPE: the status when the reader of stdout went away (`dcmx ldif
 * export | head`): 128 + SIGPIPE, as a shell reports `cat` or `yes` killed
 * by SIGPIPE, so that `set -o pipefail` does not take a cut-short export for
 * a complete one. Nothing is printed.
 */
export const EXIT_PIPE = 141;

/** Ends the process quietly on EPIPE on stdout, with one line for any other stdout error. */
function onStdoutError(err: NodeJS.ErrnoException): void {
  if (err.code === 'EPIPE') process.exit(EXIT_PIPE);
  console.error(`dcmx: cannot write to stdout: ${err.message}`);
  process.exit(1);
}

/** Runs one CLI invocation (with `given`, or else the environment's configuration); resolves with the exit status. */
export async function runCli(argv: string[], given?: Config): Promise<number> {
  const args = [...argv];
  const [group, cmd] = [args.shift(), args.shift()];
  if (group === 'schema' && cmd === 'export') {
    // The schema is the software's, not the store's or the configuration's: nothing is read or opened.
    const format = option(args, '--format') ?? 'openldap';
    if (args.length) throw new UsageError(`unexpected argument ${args[0]}`);
    if (format !== 'openldap' && format !== 'ldif') throw new UsageError(`--format must be openldap or ldif, not '${format}'`);
    process.stdout.write(format === 'ldif' ? openldapSchemaLdif() : openldapSchemaFile());
    await stdoutWritten();
    return 0;
  }
  const config = given ?? loadConfig();
  /** The words after a one-word command (backup, restore, verify): `cmd` is its first argument. */
  const operands = cmd === undefined ? args : [cmd, ...args];
  // Before anything opens (and so creates) a store in the data dir, for either role.
  if (group === 'restore') return runRestoreCommand(operands, config);
  // A remote transfer unit has a queue of its own.
  if (group === 'queue') return runQueueCommand(cmd, args, config);
  // Any data dir (a remote transfer unit's too) or backup; read-only, the store is not initialised.
  if (group === 'verify') return runVerifyCommand(operands, config);
  // Either role's data dir; the store is only read, never initialised.
  if (group === 'backup') return runBackupCommand(operands, config);
  if (config.role === 'mta') {
    // A remote transfer unit holds no directory: the commands would make an empty store in its data dir.
    throw new ConfigError('DCMX_ROLE', `mta: this data dir is a remote transfer unit's, it holds no directory; run dcmx ${group ?? ''} on the appliance (${config.directory!.url}), or read the unit's GET /routes and /stats`);
  }
  if (group === 'ldif' && cmd === 'import') {
    const continueOnError = flag(args, '--continue') || flag(args, '-c');
    const skipExisting = flag(args, '--skip-existing');
    const file = args.shift();
    if (!file || args.length) throw new UsageError('ldif import takes one FILE');
    const { directory: dir } = openStore(config);
    try {
      // A backup brings the suffix (and perhaps the administrator, with its password): initialise after it.
      const after = await bringsSuffix(dir, file);
      const print = progressPrinter('records');
      if (!after) await bootstrap(config, dir);
      const r = await importLdif(dir, new LocalWriter(dir), file, {
        continueOnError,
        skipExisting,
        // Records dealt with, not bytes read: the reader runs ahead of the writes.
        onProgress: (p) => print({ done: p.done, total: p.total, count: p.records, failed: p.failed }),
        onError: (line, dn, err) => process.stderr.write(`\nline ${line}: ${dn}: ${err.message}\n`),
      });
      if (process.stderr.isTTY) process.stderr.write('\n');
      if (after) await bootstrap(config, dir);
      console.error(`imported ${r.records} records${r.skipped ? `, skipped ${r.skipped} existing` : ''}${r.failed ? `, ${r.failed} failed` : ''}`);
      return r.failed ? 1 : 0;
    } finally {
      dir.store.close();
    }
  }
  if (group === 'ldif' && cmd === 'export') {
    const base = option(args, '--base');
    const operational = !flag(args, '--no-operational');
    if (args.length) throw new UsageError(`unexpected argument ${args[0]}`);
    const { directory: dir } = await openFor(config);
    try {
      let buf = '';
      const n = exportLdif(dir, (s) => {
        buf += s;
        if (buf.length > 1 << 16) {
          process.stdout.write(buf);
          buf = '';
        }
      }, { base, operational });
      process.stdout.write(buf);
      await stdoutWritten(); // a reader that went away ends the process (141) before the summary
      console.error(`exported ${n} entries`);
      return 0;
    } finally {
      dir.store.close();
    }
  }
  if (group === 'zone' && cmd === 'export') {
    const zone = args.shift();
    if (!zone || args.length) throw new UsageError('zone export takes one ZONE');
    const { directory, zones } = await openFor(config);
    try {
      const skipped: string[] = [];
      const text = zoneMasterFile(zones, zone.replace(/\.$/, '').toLowerCase(), skipped);
      if (text === undefined) {
        console.error(`dcmx: no zone ${zone}`);
        return 1;
      }
      process.stdout.write(text);
      for (const s of skipped) console.error(`dcmx: warning: ${s}`);
      return 0;
    } finally {
      directory.store.close();
    }
  }
  if (group === 'zone' && cmd === 'list') {
    const { directory, zones } = await openFor(config);
    try {
      for (const name of zones.zoneNames()) {
        const z = zones.zoneOf(name);
        console.log(`${name}.\t${z?.soa.rdata.serial ?? '-'}`);
      }
      return 0;
    } finally {
      directory.store.close();
    }
  }
  if (group === 'domain' && (cmd === 'add' || cmd === 'remove' || cmd === 'list')) {
    const services = await openFor(config);
    try {
      const p = new Provisioner(services.directory, services.zones, { hostname: config.hostname, ...config.newDomain });
      // This process is the writer of its own writes: the store's commit serialises them with the appliance's.
      const writer = new LocalWriter(services.directory, p);
      if (cmd === 'list') {
        if (args.length) throw new UsageError('domain list takes no argument');
        for (const d of p.listDomains()) console.log(`${d.name}\t${d.status}\tzone ${d.zone || '-'}`);
        return 0;
      }
      const force = cmd === 'add' && flag(args, '--force');
      const name = args.shift();
      if (!name || args.length) throw new UsageError(`domain ${cmd} takes one NAME`);
      if (cmd === 'remove') {
        await writer.execute({ kind: 'removeDomain', name });
        console.log(`removed ${name}: mail refused, MX/SPF/DMARC records withdrawn, mailboxes and zone kept`);
        return 0;
      }
      let r;
      try {
        r = await writer.execute({ kind: 'provisionDomain', name, force });
      } catch (e) {
        if (e instanceof ReservedDomainError) throw new Error(`${e.message} (domain add --force provisions it all the same)`);
        throw e;
      }
      if (r.existed) console.log(`${r.name} exists already (zone ${r.zone}, serial ${r.serial})`);
      else {
        for (const dn of r.created) console.log(`created ${dn}`);
        console.log(`${r.name} provisioned in zone ${r.zone}, serial ${r.serial}`);
      }
      return 0;
    } finally {
      services.directory.store.close();
    }
  }
  if (group === 'dkim') {
    const services = await openFor(config);
    try {
      return await runDkimCommand(cmd, args, config, services);
    } finally {
      services.directory.store.close();
    }
  }
  if (group === 'dnssec') {
    const services = await openFor(config);
    try {
      return runDnssecCommand(cmd, args, services, config);
    } finally {
      services.directory.store.close();
    }
  }
  if (group === 'routes' && cmd === undefined) {
    const { directory, zones } = await openFor(config);
    try {
      const table = new RoutingTable(config.hostname);
      table.build(new MailDirectory(directory, zones.names).domains(), directory.changeRange().last);
      console.log(`# routing table at change ${table.version}`);
      for (const [domain, route] of table.entries()) console.log(`${domain}\t${describeRoute(route)}`);
      console.log('*\tsmtp (MX, relaying clients only)');
      return 0;
    } finally {
      directory.store.close();
    }
  }
  throw new UsageError(group ? `unknown command '${[group, cmd].filter(Boolean).join(' ')}'` : 'no command');
}

if (require.main === module) {
  // As the appliance (main.ts): the store, its WAL and the password file it may create are private.
  process.umask(0o077);
  // ldif import hashes passwords on libuv's thread pool: one thread per core
  // (4 at least, as libuv's default). The pool is created on first use, after this line.
  process.env.UV_THREADPOOL_SIZE ??= String(Math.min(16, Math.max(4, os.availableParallelism())));
  process.stdout.on('error', onStdoutError);
  runCli(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      if (err instanceof UsageError) {
        console.error(`dcmx: ${err.message}\n${USAGE}`);
        process.exitCode = 64;
      } else if (err instanceof ConfigError) {
        console.error(`dcmx: bad configuration: ${err.message}`);
        process.exitCode = 2;
      } else {
        console.error(`dcmx: ${err instanceof Error ? err.message : err}`);
        process.exitCode = 1;
      }
    },
  );
}
