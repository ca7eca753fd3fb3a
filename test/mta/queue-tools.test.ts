/**
 * `dcmx queue` (server/admin/queue-cli.ts over server/mta/queue-admin.ts)
 * against a running appliance, the CLI being another process, as an
 * operator uses it: mail to a relay domain whose next hop (an SMTP sink on
 * loopback) answers 451 is deferred; the commands list, show, hold,
 * release, retry, delete and bounce it; the appliance acts on their changes
 * at once (DCMX_QUEUE_RETRY_BASE is an hour here: nothing is retried on
 * its own while a test runs, so every delivery seen follows a command).
 * An attempt under way (the sink keeps RCPT waiting) is neither deleted
 * nor bounced under it, and a hold made meanwhile holds what it leaves.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import nodemailer from 'nodemailer';
import { adminArgs, run, runDcmx, startTestAppliance, tempDirs, testEnv, type RunResult, type TestAppliance } from '../helpers';
import { mailbox, startNextHop, swaks, USER, USER_LDIF, waitFor, type HopReply, type NextHop } from './fixture';
import type { QueueMessageDetail, QueueMessageView } from '../../server/mta/queue-admin';

let t: TestAppliance;
let hop: NextHop;
const work = tempDirs('dcmx-queue-tools-');
const REFUSE: HopReply = { code: 451, text: '4.3.2 Not now, please' };

before(async () => {
  hop = await startNextHop();
  hop.rcpt = () => REFUSE;
  t = await startTestAppliance({ DCMX_SMTP_RELAY_PORT: String(hop.port), DCMX_QUEUE_RETRY_BASE: '3600' });
  const relay = (label: string) => `dn: dc=${label},dc=org,${t.config.suffix}
objectClass: domain
objectClass: mailDomain
dc: ${label}
mailRoutingSmartHost: 127.0.0.1
`;
  const r = await run('ldapadd', adminArgs(t), `${USER_LDIF}\n${relay('relayed')}\n${relay('other')}`);
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  await t?.close();
  await hop?.close();
});

/** Runs `dcmx queue ARGS...` on the appliance's data dir (another process). */
function queue(...args: string[]): Promise<RunResult> {
  return runDcmx(testEnv(t.dataDir), ['queue', ...args]);
}

async function listJson(...args: string[]): Promise<QueueMessageView[]> {
  const r = await queue('list', '--json', ...args);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as QueueMessageView[];
}

/** Sends one message from USER with swaks (`body`: its text, or `@FILE`); resolves with its queue id. */
async function send(to: string, subject: string, body = `body of ${subject}`): Promise<string> {
  const sw = await swaks(t.app.ports.smtp, { to, from: USER, subject, body });
  assert.equal(sw.code, 0, sw.out);
  const id = /<- {2}250 .*queued as (\w+)/.exec(sw.out)?.[1];
  assert.ok(id, sw.out);
  return id;
}

/** Waits until the appliance's first attempt at `id` has been recorded as deferred. */
async function deferred(id: string): Promise<void> {
  await waitFor(`${id} to be deferred`, () => t.app.mta.queue.recipients(id).some((r) => r.attempts > 0));
}

/** The messages the next hop got whose body has `Subject: subject`. */
const got = (subject: string) => hop.received.filter((m) => m.body.includes(`Subject: ${subject}`));

let first = '';

test('a message the next hop refuses with 451 is deferred; queue list shows it, as text and as JSON', async () => {
  first = await send('x@relayed.org', 'queue-one');
  await deferred(first);
  const r = await queue('list');
  assert.equal(r.code, 0, r.stderr);
  const block = r.stdout.split('\n\n').find((b) => b.includes(first));
  assert.ok(block, r.stdout);
  assert.match(block, new RegExp(`^${first} +deferred +\\d+ \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ +${USER}$`, 'm'));
  assert.match(block, /^ +\(4\.3\.2 .*Not now, please.*\)$/m, 'the reason it waits');
  assert.match(block, /^ +x@relayed\.org$/m);
  assert.match(r.stdout, /^-- \d+ Kbytes in 1 Request\.$/m);

  const [m] = await listJson();
  assert.equal(m.id, first);
  assert.equal(m.status, 'deferred');
  assert.equal(m.sender, USER);
  assert.equal(m.recipients.length, 1);
  assert.equal(m.recipients[0].address, 'x@relayed.org');
  assert.equal(m.recipients[0].attempts, 1);
  assert.match(m.recipients[0].lastError ?? '', /451/);
});

test('queue show prints the envelope, each recipient\'s attempts and the header fields unfolded', async () => {
  // nodemailer folds a long Subject over several lines (RFC 5322 §2.2.3); show gives it back as one.
  const words = Array.from({ length: 30 }, (_, i) => `word${i}`).join(' ');
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: t.app.ports.smtp, secure: false, ignoreTLS: true, name: 'client.test' });
  let id: string;
  try {
    const info = await transport.sendMail({ from: USER, to: 'y@relayed.org', subject: `folded ${words}`, text: 'folded body' });
    id = /queued as (\w+)/.exec(info.response)?.[1] ?? '';
    assert.ok(id, info.response);
  } finally {
    transport.close();
  }
  await deferred(id);
  const r = await queue('show', id);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^\\*\\*\\* ENVELOPE RECORDS ${id} \\*\\*\\*$`, 'm'));
  assert.match(r.stdout, /^status: deferred$/m);
  assert.match(r.stdout, new RegExp(`^sender: ${USER}$`, 'm'));
  assert.match(r.stdout, /^stored: inline/m);
  assert.match(r.stdout, /^recipient: y@relayed\.org\n {2}state: queued\n {2}attempts: 1\n {2}last_attempt: \d{4}-[\d-]+ [\d:]+Z\n {2}last_error: 4\.3\.2 .*Not now.*\n {2}next_attempt: /m);
  assert.match(r.stdout, new RegExp(`^Subject: folded ${words}$`, 'm'), 'the folded Subject on one line');
  assert.match(r.stdout, /^Received: from client\.test .*by mx\.dcmx\.test \(dcmx\)/m, 'our Received: field, unfolded');
  assert.doesNotMatch(r.stdout, /folded body/, 'headers only');

  const j = await queue('show', '--json', id);
  assert.equal(j.code, 0, j.stderr);
  const m = JSON.parse(j.stdout) as QueueMessageDetail;
  assert.equal(m.id, id);
  assert.equal(m.headers?.find((h) => h.name === 'Subject')?.value, `folded ${words}`);
  assert.equal(m.recipients[0].attempts, 1);
  assert.ok(m.recipients[0].lastAttempt! >= m.receivedAt);
});

test('queue show writes a control character of a header field as \\xNN: a message cannot drive the operator\'s terminal', async () => {
  // An ESC in a header field (swaks passes it as given): the bytes are stored as received.
  const evil = await swaks(t.app.ports.smtp, { to: 'esc@relayed.org', from: USER, subject: 'queue-esc', body: 'x', extra: ['--add-header', 'X-Evil: \x1b]0;owned\x07\x1b[2Jgone'] });
  assert.equal(evil.code, 0, evil.out);
  const evilId = /<- {2}250 .*queued as (\w+)/.exec(evil.out)?.[1];
  assert.ok(evilId, evil.out);
  const r = await queue('show', evilId);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^X-Evil: \\x1b\]0;owned\\x07\\x1b\[2Jgone$/m);
  assert.doesNotMatch(r.stdout, /[\x00-\x08\x0b-\x1f\x7f]/, 'no control character but newlines');
  const j = JSON.parse((await queue('show', '--json', evilId)).stdout) as QueueMessageDetail;
  assert.equal(j.headers?.find((h) => h.name === 'X-Evil')?.value, '\x1b]0;owned\x07\x1b[2Jgone', 'JSON carries the value as stored');
  await deferred(evilId);
  assert.equal((await queue('delete', evilId)).code, 0);
});

test('hold: retry does nothing to a held message; release + retry delivers it at once', async () => {
  const h = await queue('hold', first);
  assert.equal(h.code, 0, h.stderr);
  assert.match(h.stdout, new RegExp(`^${first}: on hold$`, 'm'));
  assert.equal((await listJson('--status', 'hold')).map((m) => m.id).join(), first);

  const r = await queue('retry', first);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`message ${first} is on hold; release it first`));

  // The next hop accepts now. retry --all makes every other message due: they arrive, the held one does not.
  hop.rcpt = () => undefined;
  const all = await queue('retry', '--all');
  assert.equal(all.code, 0, all.stderr);
  await waitFor('the other messages at the next hop', () => got('folded word0').length === 1);
  await waitFor('the queue to keep only the held message', () => t.app.mta.queue.counts().messages === 1);
  assert.equal(got('queue-one').length, 0, 'the held message was not delivered');
  const [held] = await listJson();
  assert.equal(held.id, first);
  assert.equal(held.status, 'hold');

  const rel = await queue('release', first);
  assert.equal(rel.code, 0, rel.stderr);
  assert.match(rel.stdout, new RegExp(`^${first}: released$`, 'm'));
  const again = await queue('retry', first);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, new RegExp(`^${first}: 1 recipient due now$`, 'm'));
  // The appliance sees the CLI's commit within its watch (100 ms), not at its next scheduled pass (an hour away).
  await waitFor('the released message at the next hop', () => got('queue-one').length === 1);
  await waitFor('an empty queue', () => t.app.mta.queue.counts().messages === 0);
  const empty = await queue('list');
  assert.equal(empty.stdout, 'Mail queue is empty\n');
});

test('--status and --domain filter the list; bad filters are usage errors', async () => {
  hop.rcpt = () => REFUSE;
  const a = await send('a@relayed.org', 'filter-a');
  const b = await send('b@other.org', 'filter-b');
  await deferred(a);
  await deferred(b);
  assert.equal((await queue('hold', b)).code, 0);
  const ids = async (...args: string[]) => (await listJson(...args)).map((m) => m.id).sort().join();
  assert.equal(await ids(), [a, b].sort().join());
  assert.equal(await ids('--domain', 'relayed.org'), a);
  assert.equal(await ids('--domain', 'OTHER.org.'), b, 'case and a final dot do not matter');
  assert.equal(await ids('--domain', 'org'), '', 'a parent domain is not its subdomains');
  assert.equal(await ids('--status', 'deferred'), a);
  assert.equal(await ids('--status', 'hold'), b);
  assert.equal(await ids('--status', 'hold', '--domain', 'relayed.org'), '');
  assert.equal(await ids('--status', 'active'), '');

  const bad = await queue('list', '--status', 'frozen');
  assert.equal(bad.code, 64);
  assert.match(bad.stderr, /--status must be one of active, hold, deferred, queued, not 'frozen'/);
  const noValue = await queue('list', '--domain');
  assert.equal(noValue.code, 64);
  assert.match(noValue.stderr, /--domain needs a value/);
  for (const id of [a, b]) assert.equal((await queue('delete', id)).code, 0);
});

test('delete removes the rows and the spool file; an unknown id is exit 1 with a message', async () => {
  // Over the inline limit (256 KiB): the bytes go to a spool file.
  const file = path.join(work(), 'big.txt');
  fs.writeFileSync(file, ('x'.repeat(70) + '\n').repeat(5000));
  const id = await send('big@relayed.org', 'queue-big', `@${file}`);
  await deferred(id);
  const [m] = await listJson('--domain', 'relayed.org');
  const shown = JSON.parse((await queue('show', '--json', id)).stdout) as QueueMessageDetail;
  assert.equal(m.id, id);
  assert.ok(shown.spoolFile, 'stored in a spool file');
  assert.ok(fs.existsSync(shown.spoolFile));
  const d = await queue('delete', id);
  assert.equal(d.code, 0, d.stderr);
  assert.match(d.stdout, new RegExp(`^${id}: deleted$`, 'm'));
  assert.equal(fs.existsSync(shown.spoolFile), false, 'the spool file is gone');
  assert.equal(t.app.mta.queue.message(id), undefined);
  assert.deepEqual(await listJson(), []);

  for (const cmd of ['show', 'delete', 'hold', 'release', 'retry', 'bounce']) {
    const r = await queue(cmd, id);
    assert.equal(r.code, 1, `${cmd}: ${r.stdout}${r.stderr}`);
    assert.equal(r.stderr, `dcmx: no message ${id} in the queue\n`, cmd);
  }
  const usage = await queue('delete');
  assert.equal(usage.code, 64);
  assert.match(usage.stderr, /queue delete takes one ID/);
});

test('bounce sends a DSN (RFC 3464) to the sender\'s mailbox and removes the message', async () => {
  const id = await send('gone@relayed.org', 'queue-bounce');
  await deferred(id);
  const r = await queue('bounce', id);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^${id}: returned to the sender \\(DSN \\w+\\) for 1 recipient; removed$`, 'm'));
  assert.equal(t.app.mta.queue.message(id), undefined);
  const dsn = await waitFor('the DSN in the sender\'s Maildir', () => mailbox(t.dataDir, USER).find((m) => m.includes('Final-Recipient: rfc822; gone@relayed.org')));
  assert.match(dsn, /^Content-Type: multipart\/report; report-type=delivery-status;/m);
  assert.match(dsn, /^Action: failed$/m);
  assert.match(dsn, /^Status: 5\.0\.0$/m);
  assert.match(dsn, /^Diagnostic-Code: x-local; returned to the sender by the mail system's operator/m);
  assert.match(dsn, /Subject: queue-bounce/, 'the original header section is returned');
  assert.equal(got('queue-bounce').length, 0);
  await waitFor('an empty queue', () => t.app.mta.queue.counts().messages === 0);
});

test('an attempt under way: delete and bounce wait for it (exit 75); a hold made meanwhile holds what it leaves', async () => {
  // The next hop keeps RCPT waiting until we answer: the attempt is under way meanwhile.
  let answer: (r: HopReply) => void = () => undefined;
  const waiting = new Promise<void>((resolve) => {
    hop.rcpt = () => new Promise<HopReply>((r) => {
      answer = r;
      resolve();
    });
  });
  const id = await send('slow@relayed.org', 'queue-slow');
  await waiting;
  assert.equal((await listJson('--status', 'active')).map((m) => m.id).join(), id);
  for (const cmd of ['delete', 'bounce']) {
    const r = await queue(cmd, id);
    assert.equal(r.code, 75, `${cmd}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, new RegExp(`message ${id} is being delivered now; try again when the attempt has ended`));
  }
  const h = await queue('hold', id);
  assert.equal(h.code, 0, h.stderr);
  assert.match(h.stdout, /on hold \(an attempt under way ends first/);
  answer(REFUSE);
  await waitFor('the attempt to be recorded', () => t.app.mta.queue.recipients(id).some((r) => r.attempts === 1));
  const [m] = await listJson();
  assert.equal(m.status, 'hold', 'what the attempt left stays on hold');
  assert.equal(m.deliveringSince, null, 'the attempt has ended');

  // Released and retried, it goes once; a second retry finds nothing.
  hop.rcpt = () => undefined;
  assert.equal((await queue('release', id)).code, 0);
  assert.equal((await queue('retry', id)).code, 0);
  await waitFor('the message at the next hop', () => got('queue-slow').length === 1);
  await waitFor('an empty queue', () => t.app.mta.queue.counts().messages === 0);
  const none = await queue('retry', id);
  assert.equal(none.code, 1);
  assert.equal(got('queue-slow').length, 1, 'delivered once');
});
