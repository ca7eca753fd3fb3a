/**
 * server/mta/dsn.ts: no bounce for bounces (null sender, a DSN original,
 * Auto-Submitted); a bounce is a well-formed multipart/report (checked with
 * a small splitter written here, and cross-checked with Python's email
 * package when python3 is present): the human part, the RFC 3464 fields
 * per message and per recipient, the original header section returned
 * exactly, the null-sender envelope back to the sender; the delayed variant;
 * 7bit-clean output with CRLF line ends and folded fields.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildDsn, MAX_RETURNED_HEADERS, type FailedRecipient } from '../../server/mta/dsn';
import type { QueuedMessage } from '../../server/mta/types';
import { tempDirs } from '../helpers';

const tmp = tempDirs('dcmx-dsn-');

const HOST = 'mx.dcmx.test';
const NOW = new Date(Date.UTC(2024, 2, 5, 12, 30, 45));
const RECEIVED = new Date(Date.UTC(2024, 2, 4, 8, 1, 2));

const HEADERS =
  'Received: from client.example.org (client.example.org [192.0.2.7])\r\n' +
  '\tby mx.dcmx.test with ESMTP id ABC123; Mon, 04 Mar 2024 08:01:02 +0000\r\n' +
  'From: Alice <alice@example.org>\r\n' +
  'To: bob@b.org, carol@c.org\r\n' +
  'Subject: quarterly numbers\r\n' +
  'Message-ID: <m1@example.org>\r\n' +
  'Content-Type: text/plain; charset=us-ascii\r\n';

function message(raw: string | Buffer, sender = 'alice@example.org'): QueuedMessage {
  const spoolPath = path.join(tmp(), 'ABC123');
  fs.writeFileSync(spoolPath, raw);
  return { id: 'ABC123', sender, receivedAt: RECEIVED, spoolPath, size: Buffer.byteLength(raw) };
}

const FAILED: FailedRecipient[] = [
  {
    recipient: 'bob@b.org',
    status: '5.1.1',
    diagnostic: 'smtp; 550 5.1.1 <bob@b.org>: Recipient address rejected: User unknown in virtual mailbox table',
    remoteMta: 'dns; mx.b.org',
    action: 'failed',
  },
  { recipient: 'carol@c.org', status: '5.2.2', diagnostic: 'x-local; mailbox full', action: 'failed' },
];

// ---- a small MIME splitter (no mailparser) ----

interface Part {
  headers: Map<string, string>; // lower-case name -> unfolded value (first occurrence)
  rawHeaders: string;
  body: string;
}

function splitEntity(raw: string): Part {
  const sep = raw.indexOf('\r\n\r\n');
  assert.ok(sep >= 0, 'header section ends with an empty line');
  const rawHeaders = raw.slice(0, sep + 2);
  const headers = new Map<string, string>();
  let last = '';
  for (const line of rawHeaders.split('\r\n')) {
    if (line === '') continue;
    if (line[0] === ' ' || line[0] === '\t') {
      headers.set(last, `${headers.get(last)} ${line.trim()}`);
      continue;
    }
    const c = line.indexOf(':');
    assert.ok(c > 0, `header line ${JSON.stringify(line)}`);
    last = line.slice(0, c).toLowerCase();
    if (!headers.has(last)) headers.set(last, line.slice(c + 1).trim());
  }
  return { headers, rawHeaders, body: raw.slice(sep + 4) };
}

function param(value: string, name: string): string | undefined {
  const m = new RegExp(`;\\s*${name}\\s*=\\s*("([^"]*)"|[^;\\s]+)`, 'i').exec(value);
  return m ? (m[2] ?? m[1]) : undefined;
}

/** Body parts of a multipart entity (RFC 2046 §5.1.1: the CRLF before a delimiter belongs to it). */
function splitMultipart(p: Part): Part[] {
  const boundary = param(p.headers.get('content-type') ?? '', 'boundary');
  assert.ok(boundary, 'multipart has a boundary');
  const body = '\r\n' + p.body;
  const delim = `\r\n--${boundary}`;
  const chunks = body.split(delim);
  const preamble = chunks.shift();
  assert.equal(preamble, '');
  const closing = chunks.pop()!;
  assert.ok(closing.startsWith('--'), 'close delimiter');
  return chunks.map((c) => {
    assert.ok(c.startsWith('\r\n'));
    return splitEntity(c.slice(2));
  });
}

/** RFC 3464 §2.1: header-like field groups separated by empty lines. */
function statusGroups(body: string): Map<string, string>[] {
  return body
    .replace(/\r\n$/, '')
    .split('\r\n\r\n')
    .map((g) => splitEntity(g + '\r\n\r\n').headers);
}

function decodeQp(s: string): Buffer {
  const soft = s.replace(/=\r\n/g, '');
  const bytes: number[] = [];
  for (let i = 0; i < soft.length; i++) {
    if (soft[i] === '=' && /^[0-9A-F]{2}$/i.test(soft.slice(i + 1, i + 3))) {
      bytes.push(parseInt(soft.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(soft.charCodeAt(i));
  }
  return Buffer.from(bytes);
}

function checkWireForm(raw: Buffer): void {
  assert.ok(!raw.some((b) => b >= 0x80 || b === 0), '7bit: ASCII only');
  const text = raw.toString('latin1');
  assert.ok(!/[^\r]\n/.test(text) && !/\r[^\n]/.test(text), 'CRLF line ends only');
  for (const line of text.split('\r\n')) assert.ok(line.length <= 998, 'no line over 998');
}

describe('buildDsn: when not to bounce', () => {
  test('null sender -> undefined', async () => {
    assert.equal(await buildDsn(message(HEADERS + '\r\nbody\r\n', ''), FAILED, { hostname: HOST, now: NOW }), undefined);
  });
  test('Auto-Submitted other than "no" -> undefined', async () => {
    for (const v of ['auto-replied', 'auto-generated', 'Auto-Notified (vacation)', 'x-custom']) {
      const m = message(`${HEADERS}Auto-Submitted: ${v}\r\n\r\nbody\r\n`);
      assert.equal(await buildDsn(m, FAILED, { hostname: HOST, now: NOW }), undefined, v);
    }
  });
  test('Auto-Submitted: no (even with a comment) still bounces', async () => {
    for (const v of ['no', 'No (a human wrote this)']) {
      const m = message(`${HEADERS}Auto-Submitted: ${v}\r\n\r\nbody\r\n`);
      assert.ok(await buildDsn(m, FAILED, { hostname: HOST, now: NOW }), v);
    }
  });
  test('an original that is itself a DSN -> undefined (also folded, quoted, any case)', async () => {
    const cts = [
      'multipart/report; report-type=delivery-status; boundary="b1"',
      'Multipart/Report;\r\n\treport-type="Delivery-Status";\r\n\tboundary="b1"',
      'multipart/report; boundary=b1; report-type=delivery-status',
    ];
    for (const ct of cts) {
      const m = message(`From: MAILER-DAEMON@x.org\r\nContent-Type: ${ct}\r\n\r\n--b1--\r\n`);
      assert.equal(await buildDsn(m, FAILED, { hostname: HOST, now: NOW }), undefined, ct);
    }
  });
  test('a Content-Type that only mentions delivery-status elsewhere still bounces', async () => {
    const m = message('Content-Type: multipart/mixed; boundary="report-type=delivery-status"\r\n\r\nx\r\n');
    assert.ok(await buildDsn(m, FAILED, { hostname: HOST, now: NOW }));
  });
  test('no recipients to report -> undefined', async () => {
    assert.equal(await buildDsn(message(HEADERS + '\r\nx\r\n'), [], { hostname: HOST, now: NOW }), undefined);
  });
});

describe('buildDsn: the report', () => {
  test('a failure: envelope, top-level headers, three parts, RFC 3464 fields, original headers exactly', async () => {
    const m = message(`${HEADERS}\r\nThe body is not returned.\r\n`);
    const dsn = await buildDsn(m, FAILED, { hostname: HOST, now: NOW });
    assert.ok(dsn);
    assert.equal(dsn.from, '');
    assert.deepEqual(dsn.to, ['alice@example.org']);
    checkWireForm(dsn.raw);

    const top = splitEntity(dsn.raw.toString('latin1'));
    for (const line of top.rawHeaders.split('\r\n')) assert.ok(line.length <= 78, `folded: ${line}`);
    const h = top.headers;
    assert.match(h.get('from')!, /^"?Mail Delivery System"? <MAILER-DAEMON@mx\.dcmx\.test>$/);
    assert.equal(h.get('to'), 'alice@example.org');
    assert.equal(h.get('subject'), 'Undelivered Mail Returned to Sender');
    assert.equal(h.get('date'), 'Tue, 05 Mar 2024 12:30:45 +0000');
    assert.match(h.get('message-id')!, /^<[^<>@\s]+@mx\.dcmx\.test>$/);
    assert.equal(h.get('auto-submitted'), 'auto-replied');
    assert.equal(h.get('mime-version'), '1.0');
    const ct = h.get('content-type')!;
    assert.match(ct, /^multipart\/report\s*;/i);
    assert.equal(param(ct, 'report-type'), 'delivery-status');

    const parts = splitMultipart(top);
    assert.equal(parts.length, 3);
    const [human, status, headers] = parts;

    assert.match(human.headers.get('content-type')!, /^text\/plain\b/);
    const humanText = human.headers.get('content-transfer-encoding') === 'quoted-printable' ? decodeQp(human.body).toString() : human.body;
    assert.match(humanText, /<bob@b\.org>.*5\.1\.1/);
    assert.match(humanText.replace(/\s+/g, ' '), /User unknown in virtual mailbox table/);
    assert.match(humanText, /<carol@c\.org>[^]*mailbox full/);

    assert.equal(status.headers.get('content-type'), 'message/delivery-status');
    for (const line of status.body.split('\r\n')) assert.ok(line.length <= 78, `folded: ${line}`);
    const groups = statusGroups(status.body);
    assert.equal(groups.length, 3);
    assert.equal(groups[0].get('reporting-mta'), 'dns; mx.dcmx.test');
    assert.equal(groups[0].get('arrival-date'), 'Mon, 04 Mar 2024 08:01:02 +0000');
    assert.equal(groups[1].get('final-recipient'), 'rfc822; bob@b.org');
    assert.equal(groups[1].get('action'), 'failed');
    assert.equal(groups[1].get('status'), '5.1.1');
    assert.equal(groups[1].get('remote-mta'), 'dns; mx.b.org');
    assert.equal(groups[1].get('diagnostic-code'), FAILED[0].diagnostic);
    assert.equal(groups[1].get('last-attempt-date'), 'Tue, 05 Mar 2024 12:30:45 +0000');
    assert.equal(groups[2].get('final-recipient'), 'rfc822; carol@c.org');
    assert.equal(groups[2].get('status'), '5.2.2');
    assert.equal(groups[2].get('diagnostic-code'), 'x-local; mailbox full');
    assert.equal(groups[2].has('remote-mta'), false);

    assert.equal(headers.headers.get('content-type'), 'text/rfc822-headers');
    assert.equal(headers.body, HEADERS);
    assert.ok(!dsn.raw.toString().includes('The body is not returned.'));
  });

  test('delayed: subject, Action: delayed, a 4.x.x status', async () => {
    const dsn = await buildDsn(
      message(`${HEADERS}\r\nx\r\n`),
      [{ recipient: 'bob@b.org', status: '4.4.1', diagnostic: 'x-dcmx; connection refused by mx.b.org', action: 'delayed' }],
      { hostname: HOST, now: NOW },
    );
    assert.ok(dsn);
    const top = splitEntity(dsn.raw.toString('latin1'));
    assert.equal(top.headers.get('subject'), 'Delayed Mail (still being retried)');
    const [human, status] = splitMultipart(top);
    assert.match(human.body, /warning only/);
    const groups = statusGroups(status.body);
    assert.equal(groups[1].get('action'), 'delayed');
    assert.equal(groups[1].get('status'), '4.4.1');
  });

  test('statuses that contradict the action, and untyped diagnostics, are made valid', async () => {
    const dsn = await buildDsn(
      message(`${HEADERS}\r\nx\r\n`),
      [
        { recipient: 'a@b.org', status: '4.2.2', diagnostic: 'mailbox full', action: 'failed' },
        { recipient: 'b@b.org', status: 'bogus', diagnostic: 'smtp; 451 try later', remoteMta: 'mx.b.org', action: 'delayed' },
      ],
      { hostname: HOST, now: NOW },
    );
    assert.ok(dsn);
    const groups = statusGroups(splitMultipart(splitEntity(dsn.raw.toString('latin1')))[1].body);
    assert.equal(groups[1].get('status'), '5.0.0');
    assert.equal(groups[1].get('diagnostic-code'), 'x-dcmx; mailbox full');
    assert.equal(groups[2].get('status'), '4.0.0');
    assert.equal(groups[2].get('remote-mta'), 'dns; mx.b.org');
    // Subject follows the worst action.
    assert.equal(splitEntity(dsn.raw.toString('latin1')).headers.get('subject'), 'Undelivered Mail Returned to Sender');
  });

  test('an expired message fails with Status: 4.4.7 (RFC 3463 §3.5), not 5.0.0', async () => {
    const dsn = await buildDsn(
      message(`${HEADERS}\r\nx\r\n`),
      [{ recipient: 'a@b.org', status: '4.4.7', diagnostic: 'smtp; 451 4.7.1 try later (message expired after 432000 s)', remoteMta: 'mx.b.org', action: 'failed' }],
      { hostname: HOST, now: NOW },
    );
    assert.ok(dsn);
    const top = splitEntity(dsn.raw.toString('latin1'));
    assert.equal(top.headers.get('subject'), 'Undelivered Mail Returned to Sender');
    const [human, status] = splitMultipart(top);
    const groups = statusGroups(status.body);
    assert.equal(groups[1].get('action'), 'failed');
    assert.equal(groups[1].get('status'), '4.4.7');
    assert.match(human.body, /delivery failed, status 4\.4\.7/);
  });

  test('non-ASCII recipient and diagnostic stay 7bit (RFC 6533 utf-8 address type)', async () => {
    const dsn = await buildDsn(
      message(`${HEADERS}\r\nx\r\n`),
      [{ recipient: 'jöhn@b.org', status: '5.1.1', diagnostic: 'smtp; 550 Benutzer unbekannt: jöhn\r\nsecond line', action: 'failed' }],
      { hostname: HOST, now: NOW },
    );
    assert.ok(dsn);
    checkWireForm(dsn.raw);
    const groups = statusGroups(splitMultipart(splitEntity(dsn.raw.toString('latin1')))[1].body);
    assert.equal(groups[1].get('final-recipient'), 'utf-8; j\\x{F6}hn@b.org');
    assert.equal(groups[1].get('diagnostic-code'), 'smtp; 550 Benutzer unbekannt: j?hn second line');
  });

  test('an LF spool file: headers returned with CRLF', async () => {
    const lf = HEADERS.replace(/\r\n/g, '\n');
    const dsn = await buildDsn(message(`${lf}\nbody\n`), FAILED, { hostname: HOST, now: NOW });
    assert.ok(dsn);
    checkWireForm(dsn.raw);
    assert.equal(splitMultipart(splitEntity(dsn.raw.toString('latin1')))[2].body, HEADERS);
  });

  test('8-bit original headers: quoted-printable, decoding to the original bytes', async () => {
    const h = `${HEADERS}X-Note: grüße\r\n`;
    const dsn = await buildDsn(message(Buffer.from(`${h}\r\nx\r\n`, 'utf8')), FAILED, { hostname: HOST, now: NOW });
    assert.ok(dsn);
    checkWireForm(dsn.raw);
    const part = splitMultipart(splitEntity(dsn.raw.toString('latin1')))[2];
    assert.match(part.headers.get('content-type')!, /^text\/rfc822-headers/);
    assert.equal(part.headers.get('content-transfer-encoding'), 'quoted-printable');
    assert.ok(decodeQp(part.body).equals(Buffer.from(h, 'utf8')));
  });

  test('a huge header section is capped at 64 KiB of whole fields', async () => {
    let h = '';
    for (let i = 0; Buffer.byteLength(h) < 100 * 1024; i++) h += `X-Filler-${i}: ${'y'.repeat(60)}\r\n\t${'z'.repeat(60)}\r\n`;
    const dsn = await buildDsn(message(`${h}\r\nbody\r\n`), FAILED, { hostname: HOST, now: NOW });
    assert.ok(dsn);
    const part = splitMultipart(splitEntity(dsn.raw.toString('latin1')))[2];
    assert.ok(part.body.length <= MAX_RETURNED_HEADERS);
    assert.ok(part.body.length > MAX_RETURNED_HEADERS - 200);
    assert.ok(h.startsWith(part.body));
    assert.match(part.body, /\tz+\r\n$/); // ends after a whole field, continuation included
  });

  test('spool file gone: still a report, with two parts', async () => {
    const m = message(HEADERS);
    fs.unlinkSync(m.spoolPath);
    const dsn = await buildDsn(m, FAILED, { hostname: HOST, now: NOW });
    assert.ok(dsn);
    const parts = splitMultipart(splitEntity(dsn.raw.toString('latin1')));
    assert.equal(parts.length, 2);
    assert.equal(parts[1].headers.get('content-type'), 'message/delivery-status');
  });

  test("Python's email package reads the same structure", async () => {
    const dsn = await buildDsn(message(`${HEADERS}\r\nx\r\n`), FAILED, { hostname: HOST, now: NOW });
    assert.ok(dsn);
    const script = [
      'import sys, json, email, email.policy',
      'm = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.compat32)',
      'parts = m.get_payload()',
      'ds = parts[1].get_payload()',
      'print(json.dumps({"type": m.get_content_type(), "rt": m.get_param("report-type"), "defects": [str(d) for p in m.walk() for d in p.defects],',
      '  "parts": [p.get_content_type() for p in parts],',
      '  "groups": [dict((k.lower(), " ".join(v.split())) for k, v in g.items()) for g in ds],',
      '  "headers": parts[2].get_payload()}))',
    ].join('\n');
    const r = spawnSync('python3', ['-c', script], { input: dsn.raw, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const py = JSON.parse(r.stdout);
    assert.equal(py.type, 'multipart/report');
    assert.equal(py.rt, 'delivery-status');
    assert.deepEqual(py.defects, []);
    assert.deepEqual(py.parts, ['text/plain', 'message/delivery-status', 'text/rfc822-headers']);
    assert.equal(py.groups.length, 3);
    assert.equal(py.groups[0]['reporting-mta'], 'dns; mx.dcmx.test');
    assert.equal(py.groups[1]['final-recipient'], 'rfc822; bob@b.org');
    assert.equal(py.groups[1]['diagnostic-code'], FAILED[0].diagnostic);
    assert.equal(py.groups[2].action, 'failed');
    assert.equal(py.headers.replace(/\r\n/g, '\n'), HEADERS.replace(/\r\n/g, '\n'));
  });
});
