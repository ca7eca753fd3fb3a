/**
 * Counting mail across crashes: messages with a unique Message-ID each, and
 * a ledger of one Maildir (and the spool) that says which arrived, how many
 * times, and whether the queue has drained. For the kill -9 tests
 * (mta/durability, threads/crash).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { SpawnedAppliance } from '../helpers';
import { ls, maildir, RawSmtp } from './fixture';
import { waitForAsync } from '../fixtures/wait';

/** A message to `rcpt` whose Message-ID is `<id@tag>` and whose last line names it. */
export function ledgerMessage(id: string, rcpt: string, tag: string): string {
  const filler = Array.from({ length: 14 }, (_, i) => `${id} line ${String(i).padStart(2, '0')} ${'x'.repeat(50)}`).join('\r\n');
  return `From: <sender@elsewhere.test>\r\nTo: <${rcpt}>\r\nSubject: ${tag} ${id}\r\nMessage-ID: <${id}@${tag}>\r\n` +
    `Date: ${new Date().toUTCString()}\r\n\r\n${filler}\r\nend of ${id}\r\n`;
}

/**
 * Sends one ledgerMessage per id in `ids` to `rcpt` over `sessions` parallel
 * SMTP sessions to `host:port` (each reusing its connection). Every id that
 * got a 250 after its DATA goes into `acked` (and `onAck` is called). A
 * session stops at its first failure (the server died); ids it did not send
 * are not acked.
 */
export async function sendLedger(
  o: { port: number; host?: string; ids: string[]; rcpt: string; tag: string; sessions: number },
  acked: Set<string>, onAck: () => void,
): Promise<{ failures: string[] }> {
  let next = 0;
  const failures: string[] = [];
  const worker = async () => {
    let s: RawSmtp | undefined;
    try {
      const opened = await RawSmtp.connect(o.port, 15_000, { host: o.host });
      s = opened.client;
      if (opened.greeting.code !== 220) throw new Error(`greeting ${opened.greeting.text}`);
      await s.expect(`EHLO ${o.tag}`, 250, 15_000);
      while (next < o.ids.length) {
        const id = o.ids[next++];
        await s.expect('MAIL FROM:<sender@elsewhere.test>', 250, 15_000);
        await s.expect(`RCPT TO:<${o.rcpt}>`, 250, 15_000);
        await s.expect('DATA', 354, 15_000);
        const r = await s.cmd(`${ledgerMessage(id, o.rcpt, o.tag)}.`, 15_000);
        if (r.code !== 250) throw new Error(`DATA for ${id}: ${r.text}`);
        acked.add(id);
        onAck();
      }
    } catch (e) {
      failures.push((e as Error).message);
    } finally {
      s?.destroy();
    }
  };
  await Promise.all(Array.from({ length: o.sessions }, worker));
  return { failures };
}

/** The appliance's queue counts (GET /stats of its admin API). */
async function queueCounts(r: SpawnedAppliance): Promise<{ messages: number }> {
  const res = await fetch(`http://127.0.0.1:${r.ports.http}/stats`);
  return ((await res.json()) as { queue: { messages: number } }).queue;
}

/** The messages of `tag` in `rcpt`'s Maildir under `dataDir`, and the spool beside it. */
export class MaildirLedger {
  readonly mailbox: string;
  private readonly spoolDir: string;

  constructor(dataDir: string, rcpt: string, private readonly tag: string) {
    this.mailbox = maildir(dataDir, rcpt);
    this.spoolDir = path.join(dataDir, 'spool');
  }

  /** How many files new/ and cur/ hold (cheap: no reads). */
  count(): number {
    return ls(path.join(this.mailbox, 'new')).length + ls(path.join(this.mailbox, 'cur')).length;
  }

  /** Message-ID -> how many Maildir files carry it; and files whose body is not intact. */
  ids(): { ids: Map<string, number>; broken: string[] } {
    const ids = new Map<string, number>();
    const broken: string[] = [];
    const idLine = new RegExp(`^Message-ID: <([^@>]+)@${this.tag.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}>`, 'im');
    for (const sub of ['new', 'cur']) {
      for (const f of ls(path.join(this.mailbox, sub))) {
        const text = fs.readFileSync(path.join(this.mailbox, sub, f), 'latin1');
        const m = idLine.exec(text);
        if (!m) {
          broken.push(`${sub}/${f}: no Message-ID`);
          continue;
        }
        ids.set(m[1], (ids.get(m[1]) ?? 0) + 1);
        if (!text.includes(`\nend of ${m[1]}\n`)) broken.push(`${sub}/${f}: body of ${m[1]} is not intact`);
      }
    }
    return { ids, broken };
  }

  /** Spool files (messages too large to live in their queue row). */
  spoolFiles(): string[] {
    return ls(this.spoolDir).filter((f) => f.endsWith('.eml'));
  }

  /** Waits until the queue is empty (GET /stats), no spool file is left and every acked id is in the Maildir. */
  async waitDrained(acked: Set<string>, r: SpawnedAppliance, timeoutMs = 90_000): Promise<void> {
    await waitForAsync('the queue to drain', async () => {
      assert.equal(r.child.exitCode, null, `the appliance exited:\n${r.output()}`);
      if ((await queueCounts(r)).messages > 0 || this.spoolFiles().length > 0) return false;
      const { ids } = this.ids();
      return [...acked].every((id) => ids.has(id));
    }, timeoutMs, 250).catch(() => {
      const { ids } = this.ids();
      const missing = [...acked].filter((id) => !ids.has(id));
      assert.fail(`queue not drained after ${timeoutMs} ms: ${this.spoolFiles().length} spool files, ${this.count()} in the Maildir, ` +
        `${missing.length} acknowledged missing (e.g. ${missing.slice(0, 5).join(', ')})\n${r.output()}`);
    });
  }

  /** Every acked id exactly once, no id at all twice, every body intact. */
  assertExactlyOnce(acked: Set<string>, label: string): { present: number; unackedPresent: number } {
    const { ids, broken } = this.ids();
    assert.deepEqual(broken, [], `${label}: damaged Maildir files`);
    const missing = [...acked].filter((id) => !ids.has(id));
    assert.deepEqual(missing, [], `${label}: ${missing.length} acknowledged message(s) lost`);
    const dups = [...ids].filter(([, n]) => n > 1).map(([id, n]) => `${id} x${n}`);
    assert.deepEqual(dups, [], `${label}: duplicate deliveries`);
    return { present: ids.size, unackedPresent: [...ids.keys()].filter((id) => !acked.has(id)).length };
  }
}
