/**
 * Dot-unstuffing on receipt (RFC 5321 §4.5.2): "if the first character is a
 * period and there are other characters on the line, the first character is
 * deleted". A raw client sends lines `.x`, `..y`, `. z`, `..`, `...` (also
 * as the first line of DATA, and split across TCP writes right after the
 * dot); the Maildir file holds them without their first period, and the
 * lone `.` still ends the message.
 *
 * Needs patches/smtp-server+3.21.6.patch applied to node_modules (smtp-server
 * itself only removes a period followed by another period).
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { adminArgs, run, startTestAppliance, type TestAppliance } from '../helpers';
import { mailbox, RawSmtp, USER, USER_LDIF, waitFor } from './fixture';

let t: TestAppliance;
before(async () => {
  t = await startTestAppliance();
  const r = await run('ldapadd', adminArgs(t), USER_LDIF);
  assert.equal(r.code, 0, r.stderr);
});
after(async () => {
  await t?.close();
});

/** The DATA lines sent (as on the wire, without CRLF) and the lines a reader must find in the Maildir file. */
const LINES: [sent: string, stored: string][] = [
  ['.X-Dot: first line of DATA', 'X-Dot: first line of DATA'],
  ['Subject: SUBJECT', 'Subject: SUBJECT'],
  ['', ''],
  ['.x', 'x'],
  ['..y', '.y'],
  ['. z', ' z'],
  ['..', '.'],
  ['...', '..'],
  ['.\tt', '\tt'],
  ['a.b', 'a.b'],
  ['end', 'end'],
];

function body(subject: string): { wire: string[]; want: string[] } {
  return {
    wire: LINES.map(([sent]) => sent.replace('SUBJECT', subject)),
    want: LINES.map(([, kept]) => kept.replace('SUBJECT', subject)),
  };
}

/** The Maildir message with this subject, split after its header block into lines. */
async function stored(subject: string): Promise<string[]> {
  const text = await waitFor(`delivery of ${subject}`, () => mailbox(t.dataDir, USER).find((m) => m.includes(`Subject: ${subject}\n`)), 15_000);
  const lines = text.split('\n'); // Maildir files have LF line ends
  // Return-Path, Delivered-To and Received come before the message as sent.
  const start = lines.findIndex((l) => /^\.?X-Dot:/.test(l));
  assert.ok(start > 0, `the first DATA line is missing:\n${text}`);
  return lines.slice(start, -1); // the file ends with a line end
}

test('leading periods are removed from every line that has more on it (one write)', async () => {
  const { wire, want } = body('dots-one-write');
  const { client } = await RawSmtp.connect(t.app.ports.smtp);
  try {
    assert.equal((await client.cmd('EHLO dots.test')).code, 250);
    assert.equal((await client.cmd('MAIL FROM:<sender@elsewhere.test>')).code, 250);
    assert.equal((await client.cmd(`RCPT TO:<${USER}>`)).code, 250);
    assert.equal((await client.cmd('DATA')).code, 354);
    const r = await client.cmd(`${wire.join('\r\n')}\r\n.`);
    assert.equal(r.code, 250, r.raw);
  } finally {
    await client.quit();
  }
  assert.deepEqual(await stored('dots-one-write'), want);
});

test('the same when every period arrives in its own TCP segment', async () => {
  const { wire, want } = body('dots-split');
  const { client } = await RawSmtp.connect(t.app.ports.smtp);
  try {
    for (const [cmd, code] of [['EHLO dots.test', 250], ['MAIL FROM:<sender@elsewhere.test>', 250], [`RCPT TO:<${USER}>`, 250], ['DATA', 354]] as [string, number][]) {
      await client.expect(cmd, code);
    }
    // Each line: its period alone, then the rest (for the lone terminator too), each write handed
    // to the kernel, then a pause: the scenario is a client whose segments arrive apart (the server
    // then reads the period in a chunk of its own). The pause shapes the traffic; nothing waits on it.
    const apart = () => new Promise((r) => setTimeout(r, 15));
    for (const line of [...wire, '.']) {
      if (line.startsWith('.')) {
        await client.write('.');
        await apart();
        await client.write(`${line.slice(1)}\r\n`);
      } else {
        await client.write(`${line}\r\n`);
      }
      await apart();
    }
    const r = await client.reply();
    assert.equal(r.code, 250, r.raw);
  } finally {
    await client.quit();
  }
  assert.deepEqual(await stored('dots-split'), want);
});
