/**
 * `dcmx queue ...`: the queue tools (server/mta/queue-admin.ts) on the
 * command line, after Postfix's postqueue -p, postcat and postsuper. It
 * opens the appliance's store, or on a remote transfer unit
 * (DCMX_ROLE=mta) the unit's queue store (another process: the running
 * appliance or unit notices the commit within queue-side.ts
 * QUEUE_WATCH_MS and acts on it).
 *
 * Exit status: 0 done; 1 refused (no such message, on hold for retry...);
 * 75 (EX_TEMPFAIL) when the message is being delivered at this moment
 * (delete, bounce: try again); 64 usage (cli.ts).
 */
import type { Config } from '../config';
import { openStore } from '../appliance';
import { openUnitStore } from '../remote-unit';
import { QueueStore } from '../../storage/queue';
import { Spool, spoolDir } from '../mta/spool';
import {
  MESSAGE_STATUSES, MessageActiveError, QueueAdmin, QueueAdminError, type MessageStatus, type QueueMessageDetail, type QueueMessageView,
} from '../mta/queue-admin';
import { flag, option, UsageError } from './cli-args';

/** The queue commands' lines of the usage text. */
export const QUEUE_USAGE = `  dcmx queue list [--domain D] [--status ${MESSAGE_STATUSES.join('|')}] [--json]
  dcmx queue show ID [--json]
  dcmx queue retry ID|--all
  dcmx queue hold ID
  dcmx queue release ID
  dcmx queue delete ID
  dcmx queue bounce ID`;

/** sysexits.h EX_TEMPFAIL: the message is being delivered now; the same command may succeed in a moment. */
export const EXIT_TEMPFAIL = 75;

/**
 * Runs `dcmx queue CMD ARGS...` with `config`; prints to stdout (errors to
 * stderr) and resolves with the exit status. Throws UsageError for bad usage.
 */
export async function runQueueCommand(cmd: string | undefined, args: string[], config: Config): Promise<number> {
  const json = (cmd === 'list' || cmd === 'show') && flag(args, '--json');
  const domain = cmd === 'list' ? option(args, '--domain') : undefined;
  const status = cmd === 'list' ? option(args, '--status') : undefined;
  const all = cmd === 'retry' && flag(args, '--all');
  if (status !== undefined && !(MESSAGE_STATUSES as readonly string[]).includes(status)) {
    throw new UsageError(`--status must be one of ${MESSAGE_STATUSES.join(', ')}, not '${status}'`);
  }
  const unexpected = args.find((a) => a.startsWith('-'));
  if (unexpected) throw new UsageError(`unknown option ${unexpected}`);
  let id: string | undefined;
  switch (cmd) {
    case 'list':
      if (args.length) throw new UsageError(`queue list takes no argument (${args[0]})`);
      break;
    case 'retry':
      if (all ? args.length !== 0 : args.length !== 1) throw new UsageError('queue retry takes one ID, or --all');
      id = args[0];
      break;
    case 'show': case 'hold': case 'release': case 'delete': case 'bounce':
      if (args.length !== 1) throw new UsageError(`queue ${cmd} takes one ID`);
      id = args[0];
      break;
    default:
      throw new UsageError(cmd ? `unknown command 'queue ${cmd}'` : 'queue needs a command');
  }

  const store = config.role === 'mta' ? openUnitStore(config.dataDir) : openStore(config).directory.store;
  const admin = new QueueAdmin({ queue: new QueueStore(store), spool: new Spool(spoolDir(config.dataDir)), hostname: config.hostname });
  try {
    switch (cmd) {
      case 'list': {
        const list = admin.list({ domain, status: status as MessageStatus | undefined });
        process.stdout.write(json ? JSON.stringify(list, null, 2) + '\n' : formatList(list));
        return 0;
      }
      case 'show': {
        const m = await admin.show(id!);
        process.stdout.write(json ? JSON.stringify(m, null, 2) + '\n' : formatMessage(m));
        return 0;
      }
      case 'retry':
        if (all) {
          const n = admin.retryAll();
          console.log(`${n} recipient${n === 1 ? '' : 's'} due now`);
        } else {
          const n = admin.retry(id!);
          console.log(`${id}: ${n} recipient${n === 1 ? '' : 's'} due now`);
        }
        return 0;
      case 'hold': {
        const r = admin.hold(id!);
        console.log(r.wasHeld ? `${id}: on hold already`
          : r.active ? `${id}: on hold (an attempt under way ends first; what it delivers is gone, the rest stays on hold)`
          : `${id}: on hold`);
        return 0;
      }
      case 'release':
        console.log(admin.release(id!) ? `${id}: released` : `${id}: was not on hold`);
        return 0;
      case 'delete':
        await admin.delete(id!);
        console.log(`${id}: deleted`);
        return 0;
      case 'bounce': {
        const r = await admin.bounce(id!);
        console.log(r.dsn
          ? `${id}: returned to the sender (DSN ${r.dsn}) for ${r.recipients.length} recipient${r.recipients.length === 1 ? '' : 's'}; removed`
          : `${id}: removed; no DSN sent (null sender, or the message is itself a DSN or an auto-reply)`);
        return 0;
      }
    }
    return 0;
  } catch (e) {
    if (!(e instanceof QueueAdminError)) throw e;
    console.error(`dcmx: ${e.message}`);
    return e instanceof MessageActiveError ? EXIT_TEMPFAIL : 1;
  } finally {
    store.close();
  }
}

/** A time as the queue tools print it: UTC, to the second. */
function time(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

/**
 * Text from a message (headers, addresses) made safe for a terminal: C0/C1
 * controls and DEL (an escape sequence would drive the operator's terminal)
 * are written as \xNN.
 */
function printable(s: string): string {
  return s.replace(/[\x00-\x08\x0a-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * The queue as `postqueue -p` shows it: one block per message (id, status,
 * size, arrival, sender), its recipients below, each with the reason it
 * waits; a summary line at the end.
 */
export function formatList(list: QueueMessageView[]): string {
  if (list.length === 0) return 'Mail queue is empty\n';
  const lines = [`${'-Queue ID-'.padEnd(22)} ${'-Status-'.padEnd(9)} ${'--Size--'.padStart(9)} ${'-Arrival Time (UTC)-'.padEnd(20)}  -Sender/Recipient-`];
  let bytes = 0;
  for (const m of list) {
    bytes += m.size;
    lines.push(`${m.id.padEnd(22)} ${m.status.padEnd(9)} ${String(m.size).padStart(9)} ${time(m.receivedAt).padEnd(20)}  ${printable(m.sender) || 'MAILER-DAEMON'}`);
    for (const r of m.recipients) {
      if (r.lastError) lines.push(`${' '.repeat(23)}(${printable(r.lastError)})`);
      lines.push(`${' '.repeat(65)}${printable(r.address)}`);
    }
    lines.push('');
  }
  lines.push(`-- ${Math.ceil(bytes / 1024)} Kbytes in ${list.length} Request${list.length === 1 ? '' : 's'}.`);
  return lines.join('\n') + '\n';
}

/** One message as `postcat -e -h` shows it: the envelope (with each recipient's attempts), then the header fields. */
export function formatMessage(m: QueueMessageDetail): string {
  const lines = [
    `*** ENVELOPE RECORDS ${m.id} ***`,
    `status: ${m.status}`,
    `message_size: ${m.size}`,
    `message_arrival_time: ${time(m.receivedAt)}`,
    `sender: ${printable(m.sender)}`,
    `smtputf8: ${m.smtpUtf8 ? 'yes' : 'no'}`,
    `body: ${m.eightBitMime ? '8bitmime' : '7bit'}`,
    `stored: ${m.spoolFile || 'inline (in the queue row)'}`,
  ];
  if (m.heldAt !== null) lines.push(`held_since: ${time(m.heldAt)}`);
  if (m.deliveringSince !== null) lines.push(`delivering_since: ${time(m.deliveringSince)}`);
  for (const r of m.recipients) {
    lines.push(`recipient: ${printable(r.address)}`);
    lines.push(`  state: ${r.state}`);
    lines.push(`  attempts: ${r.attempts}`);
    if (r.lastAttempt !== null) lines.push(`  last_attempt: ${time(r.lastAttempt)}`);
    if (r.lastError) lines.push(`  last_error: ${printable(r.lastError)}`);
    lines.push(`  next_attempt: ${m.status === 'hold' ? 'none while on hold' : time(r.nextAttempt)}`);
  }
  lines.push(`*** HEADER RECORDS ${m.id} ***`);
  if (m.headers === null) lines.push('(the message bytes cannot be read: its spool file is gone)');
  else for (const h of m.headers) lines.push(`${printable(h.name)}: ${printable(h.value)}`);
  lines.push(`*** END OF MESSAGE ${m.id} ***`);
  return lines.join('\n') + '\n';
}
