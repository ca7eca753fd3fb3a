/**
 * Hostile input against the running SMTP endpoint. The appliance runs in its
 * own process (a crash shows as a dead process, not as a swallowed
 * exception), with DCMX_SMTP_MAX_SIZE = 64 KiB. After every case the process
 * is alive and a normal swaks delivery to the local user gets its 250
 * promptly; at the end every such check message is in the Maildir exactly
 * once and nothing a hostile case sent without a 250 is.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tls from 'node:tls';
import type { ChildProcess } from 'node:child_process';
import { run, startSpawned, stopChild, tempDir } from '../helpers';
import { addUser, ls, maildir, RawSmtp, USER as RCPT, waitFor, within, type SmtpReply } from './fixture';
import { waitForAsync } from '../fixtures/wait';

const MAX_SIZE = 64 * 1024;
const MAX_CLIENTS = 200; // the default of DCMX_SMTP_MAX_CLIENTS

let child: ChildProcess;
let output: () => string;
/** The output of every appliance process of this file (there is a restart). */
const outputs: (() => string)[] = [];
let port = 0;
let ldapPort = 0;
let dataDir = '';
const mailbox = () => maildir(dataDir, RCPT);
const spoolDir = () => path.join(dataDir, 'spool');

async function start(): Promise<void> {
  const a = await startSpawned(dataDir, { DCMX_SMTP_MAX_SIZE: String(MAX_SIZE) });
  child = a.child;
  output = a.output;
  outputs.push(a.output);
  port = a.ports.smtp;
  ldapPort = a.ports.ldap;
}

function stop(): Promise<number | null> {
  return stopChild(child);
}

before(async () => {
  dataDir = tempDir('dcmx-smtp-hostile-');
  await start();
  await addUser(ldapPort);
});
after(async () => {
  await stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

// ------------------------------------------------------------------ helpers

/** Message-ID (left part) -> number of Maildir files whose header carries it. */
function maildirIds(): Map<string, number> {
  const ids = new Map<string, number>();
  for (const sub of ['new', 'cur']) {
    for (const f of ls(path.join(mailbox(), sub))) {
      const text = fs.readFileSync(path.join(mailbox(), sub, f), 'latin1');
      const end = text.search(/\r?\n\r?\n/);
      const head = end < 0 ? text : text.slice(0, end);
      for (const m of head.matchAll(/^Message-ID:\s*<([^@>]+)@[^>]*>/gim)) ids.set(m[1], (ids.get(m[1]) ?? 0) + 1);
    }
  }
  return ids;
}

const spoolFiles = () => ls(spoolDir());

/** Waits until the queue is empty (no spool file left); after `ms` the caller's assertion says what is left. */
async function drained(ms = 10_000): Promise<void> {
  await waitFor('an empty spool', () => spoolFiles().length === 0, ms).catch(() => undefined);
}

/** Check messages sent by stillDelivers, all of which got 250. */
const checks: string[] = [];
/** Message-IDs of hostile messages that never got a 250: must never be delivered. */
const mustNotArrive: string[] = [];

/** The appliance is alive and a normal swaks delivery gets 250 (swaks gives up after 5 s of silence). */
async function stillDelivers(label: string, extra: string[] = []): Promise<void> {
  assert.equal(child.exitCode, null, `the appliance died after ${label}:\n${output()}`);
  assert.equal(child.signalCode, null, `the appliance was killed after ${label}:\n${output()}`);
  const id = `check-${checks.length}-${label.replace(/[^a-z0-9]+/gi, '-')}`;
  const r = await run('swaks', [
    '--server', `127.0.0.1:${port}`, '--to', RCPT, '--from', 'checker@elsewhere.test', '--helo', 'checker.test',
    '--header', `Message-ID: <${id}@hostile.test>`, '--timeout', '5', ...extra,
  ], undefined, 10_000);
  assert.equal(r.code, 0, `swaks after ${label} failed:\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /<~?-\s+250 [^\n]*queued as/, `no 250 for the message after ${label}:\n${r.stdout}`);
  checks.push(id);
}

type Reply = SmtpReply;

/** A raw SMTP connection to the appliance (fixtures/smtp.ts) that sees every byte the server sends; `from`: the source address (127.x.y.z stands for a client of its own). */
class Raw extends RawSmtp {
  constructor(opts: { from?: string } = {}) {
    super(port, { encoding: 'latin1', localAddress: opts.from });
  }
}

/**
 * One of `clients` loopback source addresses for the i-th of many
 * connections: each client stays within DCMX_SMTP_CLIENT_CONNECTIONS (20)
 * while the connections together test the total.
 */
const client = (i: number, clients: number) => `127.0.3.${1 + (i % clients)}`;

/** Opens a session through EHLO. */
async function session(from?: string): Promise<Raw> {
  const c = new Raw({ from });
  assert.ok(await c.waitReplies(1), `no greeting: ${c.data} ${c.error ?? ''}`);
  assert.equal(c.replies()[0].code, 220, c.data);
  const r = await c.cmd('EHLO hostile.test');
  assert.equal(r?.code, 250, c.data);
  return c;
}

function msg(id: string, body = 'hello\r\n'): string {
  return `From: <sender@elsewhere.test>\r\nTo: <${RCPT}>\r\nSubject: ${id}\r\nMessage-ID: <${id}@hostile.test>\r\n\r\n${body}`;
}

/** One full transaction on a fresh connection; resolves with the reply to the final dot. */
async function transaction(id: string, from?: string): Promise<Reply | undefined> {
  const c = await session(from);
  try {
    assert.equal((await c.cmd('MAIL FROM:<sender@elsewhere.test>'))?.code, 250, c.data);
    assert.equal((await c.cmd(`RCPT TO:<${RCPT}>`))?.code, 250, c.data);
    assert.equal((await c.cmd('DATA'))?.code, 354, c.data);
    const r = await c.cmd(`${msg(id)}.`, 10_000);
    c.write('QUIT\r\n');
    return r;
  } finally {
    c.destroy();
  }
}

/** STARTTLS (RFC 3207) upgrades a session and EHLO is answered inside TLS (swaks here lacks Net::SSLeay). */
async function starttlsWorks(): Promise<void> {
  const c = await session();
  const r = await c.cmd('STARTTLS');
  assert.equal(r?.code, 220, `STARTTLS: ${r?.text}`);
  const reply = await new Promise<string>((resolve, reject) => {
    const s = tls.connect({ socket: c.sock, servername: 'mx.dcmx.test', rejectUnauthorized: false });
    let got = '';
    const timer = setTimeout(() => (s.destroy(), reject(new Error(`no EHLO reply inside TLS: ${got}`))), 5000);
    s.once('secureConnect', () => s.write('EHLO tls.test\r\n'));
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (/^250 /m.test(got)) {
        clearTimeout(timer);
        s.end('QUIT\r\n');
        s.destroy();
        resolve(got);
      }
    });
    s.once('error', (e) => (clearTimeout(timer), reject(e)));
  });
  assert.match(reply, /^250[ -]/m);
  assert.doesNotMatch(reply, /STARTTLS/, 'STARTTLS is not offered again inside TLS');
  c.destroy();
}

// ------------------------------------------------------------------ the cases

test('a normal delivery works before anything hostile', async () => {
  await stillDelivers('start');
  await starttlsWorks();
});

test('garbage bytes get protocol errors or a close, never a crash', async () => {
  let seed = 4242;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
  const conns: Raw[] = [];
  for (let i = 0; i < 40; i++) {
    const b = Buffer.alloc(1 + (rnd() % 600));
    for (let j = 0; j < b.length; j++) b[j] = rnd();
    if (i % 3 === 0) b[b.length - 1] = 0x0a; // some end in a line feed
    const c = new Raw();
    conns.push(c);
    await c.open();
    c.write(b);
  }
  // NULs, high bytes, CR without LF, a lone dot, a command word followed by binary.
  const fixed = [
    Buffer.from([0, 0, 0, 0x0d, 0x0a]), Buffer.from('\xff\xfe\xfd\r\n', 'latin1'), Buffer.from('EHLO \x00\x01\x02\r\n', 'latin1'),
    Buffer.from('\r\r\r\r\r\r\r\r'), Buffer.from('.\r\n'), Buffer.from('MAIL FROM:<\x00@x>\r\nRCPT TO:<\xff>\r\n', 'latin1'),
  ];
  for (const b of fixed) {
    const c = new Raw();
    conns.push(c);
    await c.open();
    c.write(b);
  }
  // Then a line end and QUIT on each: the server answers all it read and closes (or had closed already).
  for (const c of conns) c.write('\r\nQUIT\r\n');
  for (const c of conns) assert.ok(await c.waitClosed(20_000), `still open after QUIT: ${JSON.stringify(c.data)}`);
  for (const c of conns) {
    // Whatever came back is SMTP replies: the greeting, 4xx/5xx, and the goodbye.
    for (const r of c.replies()) assert.ok(r.code === 220 || r.code === 221 || (r.code >= 400 && r.code < 600), `unexpected reply ${JSON.stringify(r.text)}`);
    c.destroy();
  }
  await stillDelivers('garbage');
});

test('a 100 kB command line gets an error reply and/or a close', async () => {
  for (const line of [
    `MAIL FROM:<${'a'.repeat(100_000)}@elsewhere.test>\r\n`,
    `RCPT TO:<${'b'.repeat(100_000)}@example.org>\r\n`,
    'x'.repeat(100_000), // no line end at all
    `EHLO ${'h'.repeat(1_000_000)}`, // 1 MB, unterminated
  ]) {
    const c = await session();
    c.write(line);
    c.write('NOOP\r\nQUIT\r\n');
    assert.ok(await c.waitClosed(), `no close after QUIT: ${JSON.stringify(c.replies().slice(2))}`);
    const after = c.replies().slice(2); // greeting and EHLO
    // Observed: 421 4.4.2 "Error: Command line too long" and a close before QUIT was read (no 221).
    const closedFirst = !after.some((r) => r.code === 221);
    assert.ok(closedFirst || after.some((r) => r.code >= 500), `neither a close nor a 5xx for a ${line.length}-byte line: ${JSON.stringify(after)}`);
    if (after.length) assert.ok(after[0].code >= 400, `the long line was accepted: ${after[0].text}`);
    c.destroy();
  }
  await stillDelivers('long-line');
});

test('bare LF line endings: commands, DATA, and no SMTP smuggling', async (t) => {
  // Commands ending in bare LF (RFC 5321 §2.3.8 says clients MUST send CRLF).
  const c = new Raw();
  await c.waitReplies(1);
  c.write('EHLO lf.test\n');
  await c.waitReplies(2, 3000);
  c.write('MAIL FROM:<sender@elsewhere.test>\n');
  await c.waitReplies(3, 3000);
  c.write(`RCPT TO:<${RCPT}>\n`);
  await c.waitReplies(4, 3000);
  c.write('DATA\n');
  await c.waitReplies(5, 3000);
  const codes = c.replies().map((r) => r.code);
  t.diagnostic(`commands ending in bare LF: replies ${codes.join(' ')}`);
  assert.equal(codes.length, 5, `every bare-LF command got a reply: ${c.data}`);
  // A DATA body with bare LF line ends and a bare-LF "\n.\n", then the real end (CRLF.CRLF) and QUIT.
  // Had "\n.\n" ended DATA, the real end would be read as commands (two more replies before 221).
  c.write('Subject: bare lf\nMessage-ID: <bare-lf-1@hostile.test>\n\nline one\n.\n\r\n.\r\nQUIT\r\n');
  assert.ok(await c.waitClosed(), `no close after QUIT: ${c.data}`);
  const afterData = c.replies().slice(5).map((r) => r.code);
  t.diagnostic(`after the bare-LF body, CRLF.CRLF and QUIT: replies ${afterData.join(' ')}`);
  assert.deepEqual(afterData, [250, 221], '"\\n.\\n" does not end DATA (the server waits for CRLF.CRLF, RFC 5321 §4.1.1.4)');
  checks.push('bare-lf-1');
  c.destroy();
  await stillDelivers('bare-lf');

  // Smuggling (CVE-2023-51764 family): a non-CRLF end-of-data lookalike followed by a second transaction.
  for (const [k, fake] of ['\n.\n', '\n.\r\n', '\r\n.\n', '\r.\r\n', '\r\n.\r'].entries()) {
    const s = await session();
    assert.equal((await s.cmd('MAIL FROM:<sender@elsewhere.test>'))?.code, 250);
    assert.equal((await s.cmd(`RCPT TO:<${RCPT}>`))?.code, 250);
    assert.equal((await s.cmd('DATA'))?.code, 354);
    const before = s.replies().length;
    s.write(msg(`smuggle-outer-${k}`, 'outer text') + fake +
      `MAIL FROM:<smuggler@elsewhere.test>\r\nRCPT TO:<${RCPT}>\r\nDATA\r\n` +
      `Subject: smuggled\r\nMessage-ID: <smuggle-inner-${k}@hostile.test>\r\n\r\ninner text\r\n.\r\n`);
    // QUIT: every reply of a smuggled transaction comes before the 221 and the close.
    s.write('QUIT\r\n');
    assert.ok(await s.waitClosed(), `no close after QUIT: ${s.data}`);
    const got = s.replies().slice(before);
    assert.equal(got.length, 2, `${JSON.stringify(fake)} split the message: ${JSON.stringify(got.map((r) => r.text))}`);
    assert.equal(got[0].code, 250, got[0].text);
    assert.equal(got[1].code, 221, got[1].text);
    mustNotArrive.push(`smuggle-inner-${k}`);
    s.destroy();
  }
  await stillDelivers('smuggling');
});

test('a TLS ClientHello on the plain port fails, STARTTLS still works', async () => {
  // The handshake ends in an error or a close (the greeting is no ServerHello), never in a session.
  const outcome = await within('the TLS handshake on the plain port to end', new Promise<string>((resolve) => {
    const s = tls.connect({ port, host: '127.0.0.1', servername: 'mx.dcmx.test', rejectUnauthorized: false });
    s.once('secureConnect', () => (s.destroy(), resolve('handshake completed')));
    s.once('error', (e: NodeJS.ErrnoException) => (s.destroy(), resolve(`error ${e.code}`)));
    s.once('close', () => resolve('closed'));
  }), 30_000);
  assert.notEqual(outcome, 'handshake completed');
  // A raw ClientHello-looking record followed by more binary, on several connections at once,
  // then a line end and QUIT: the server answers with SMTP replies only, and closes.
  const hello = Buffer.concat([Buffer.from('16030100f4010000f00303', 'hex'), Buffer.alloc(240, 0x2a)]);
  const raws = Array.from({ length: 10 }, () => new Raw());
  for (const r of raws) {
    await r.open();
    r.write(Buffer.concat([hello, Buffer.from('\r\nQUIT\r\n')]));
  }
  for (const r of raws) {
    assert.ok(await r.waitClosed(20_000), `still open after QUIT: ${JSON.stringify(r.data)}`);
    for (const x of r.replies()) assert.ok(x.code === 220 || x.code === 221 || x.code >= 400, `unexpected reply ${JSON.stringify(x.text)}`);
    r.destroy();
  }
  await stillDelivers('tls-hello');
  await starttlsWorks();
});

test('50 concurrent connections each complete a transaction with 250', async () => {
  const ids = Array.from({ length: 50 }, (_, i) => `concurrent-${i}`);
  const replies = await Promise.all(ids.map((id, i) => transaction(id, client(i, 5))));
  const bad = replies.map((r, i) => [ids[i], r]).filter(([, r]) => (r as Reply | undefined)?.code !== 250);
  assert.deepEqual(bad, [], 'every transaction got 250');
  checks.push(...ids);
  await stillDelivers('concurrent');
});

test(`300 connections at once: at most ${MAX_CLIENTS} served, the rest 421 or refused, and all freed after the drop`, async (t) => {
  const conns = Array.from({ length: 300 }, (_, i) => new Raw({ from: client(i, 20) }));
  // A failed assertion must not leave them holding the slots of the tests that follow.
  t.after(() => {
    for (const c of conns) c.destroy();
  });
  await Promise.all(conns.map((c) => c.waitReplies(1, 5000)));
  const kinds = new Map<string, number>();
  for (const c of conns) {
    const first = c.replies()[0];
    const k = first ? String(first.code) : c.error ? `error ${c.error}` : c.closed ? 'closed' : 'silent';
    kinds.set(k, (kinds.get(k) ?? 0) + 1);
  }
  t.diagnostic(`300 at once: ${[...kinds].map(([k, n]) => `${k}: ${n}`).join(', ')}`);
  assert.ok((kinds.get('220') ?? 0) <= MAX_CLIENTS, 'no more than maxClients greeted');
  assert.ok((kinds.get('220') ?? 0) >= MAX_CLIENTS - 5, 'about maxClients greeted');
  for (const [k, n] of kinds) if (k !== '220') assert.ok(k === '421' || k.startsWith('error') || k === 'closed', `${n} connections got ${k}`);
  for (const c of conns) c.destroy();
  // Every slot comes back once the server has seen the closes: MAX_CLIENTS - 1 new connections
  // (and swaks) are all greeted with 220. A round that is not is closed, and tried again.
  let greeted = 0;
  await waitForAsync('the slots of the dropped connections to be freed', async () => {
    const again = Array.from({ length: MAX_CLIENTS - 1 }, (_, i) => new Raw({ from: client(i, 20) }));
    await Promise.all(again.map((c) => c.waitReplies(1, 5000)));
    greeted = again.filter((c) => c.replies()[0]?.code === 220).length;
    for (const c of again) c.write('QUIT\r\n');
    await Promise.all(again.map((c) => c.waitClosed(5000)));
    for (const c of again) c.destroy();
    return greeted === MAX_CLIENTS - 1;
  }, 30_000).catch(() => undefined);
  assert.equal(greeted, MAX_CLIENTS - 1, 'the slots of the dropped connections were freed');
  await stillDelivers('300-connections');
});

test('a client that disconnects in the middle of DATA: nothing delivered, no spool file left (also after a restart)', async () => {
  // Each sends part of a message; once the bytes are handed to the kernel, the connection goes.
  const cases: [string, (c: Raw) => Promise<void>][] = [
    ['mid-data-headers', (c) => c.write('Subject: half\r\nMessage-ID: <mid-data-headers@hostile.test>\r\n')],
    ['mid-data-body', (c) => c.write(msg('mid-data-body', 'first line\r\nsecond line\r\n'))],
    ['mid-data-large', (c) => c.write(msg('mid-data-large', `${'y'.repeat(998)}\r\n`.repeat(50)))],
    ['mid-data-dot', (c) => c.write(`${msg('mid-data-dot', 'almost done')}\r\n.`)], // the final CRLF never comes
    ['mid-data-reset', async (c) => {
      await c.write(msg('mid-data-reset', 'z\r\n'.repeat(1000)));
      c.sock.resetAndDestroy();
    }],
  ];
  for (const [id, send] of cases) {
    const c = await session();
    assert.equal((await c.cmd('MAIL FROM:<sender@elsewhere.test>'))?.code, 250);
    assert.equal((await c.cmd(`RCPT TO:<${RCPT}>`))?.code, 250);
    assert.equal((await c.cmd('DATA'))?.code, 354);
    await send(c);
    c.destroy();
    mustNotArrive.push(id);
  }
  // A full transaction after the half ones, delivered: the server has dealt with their closes by then.
  await stillDelivers('mid-data');
  await waitFor('the check message in the Maildir', () => maildirIds().has(checks[checks.length - 1]));
  await drained();
  assert.deepEqual(spoolFiles(), [], 'the half messages left spool files behind');
  const ids = maildirIds();
  for (const [id] of cases) assert.ok(!ids.has(id), `${id} was delivered although it never got a 250`);

  // Restart on the same data dir: still nothing stray, nothing delivered.
  assert.equal(await stop(), 0, `clean shutdown:\n${output()}`);
  await start();
  await drained();
  assert.deepEqual(spoolFiles(), [], 'spool files after the restart');
  const ids2 = maildirIds();
  for (const [id] of cases) assert.ok(!ids2.has(id), `${id} was delivered after the restart`);
  await stillDelivers('mid-data-restart');
});

test(`DATA larger than DCMX_SMTP_MAX_SIZE (${MAX_SIZE}) gets 552 and nothing is queued`, async () => {
  // Declared too big in MAIL FROM (RFC 1870 §6.1).
  const c = await session();
  const declared = await c.cmd(`MAIL FROM:<sender@elsewhere.test> SIZE=${MAX_SIZE * 2}`);
  assert.equal(declared?.code, 552, `SIZE above the limit: ${declared?.text}`);
  // Not declared: the whole message is sent, refused at the final dot.
  assert.equal((await c.cmd('MAIL FROM:<sender@elsewhere.test>'))?.code, 250, c.data);
  assert.equal((await c.cmd(`RCPT TO:<${RCPT}>`))?.code, 250);
  assert.equal((await c.cmd('DATA'))?.code, 354);
  const big = msg('oversize-1', `${'o'.repeat(998)}\r\n`.repeat(Math.ceil((MAX_SIZE * 1.6) / 1000)));
  const r = await c.cmd(`${big}.`, 10_000);
  assert.equal(r?.code, 552, `oversized DATA: ${r?.text}`);
  mustNotArrive.push('oversize-1');
  // The session goes on: a small message on the same connection is accepted.
  assert.equal((await c.cmd('MAIL FROM:<sender@elsewhere.test>'))?.code, 250, c.data);
  assert.equal((await c.cmd(`RCPT TO:<${RCPT}>`))?.code, 250);
  assert.equal((await c.cmd('DATA'))?.code, 354);
  assert.equal((await c.cmd(`${msg('after-oversize')}.`))?.code, 250, c.data);
  checks.push('after-oversize');
  c.write('QUIT\r\n');
  c.destroy();
  await drained();
  assert.deepEqual(spoolFiles(), [], 'the oversized message left a spool file');
  assert.ok(!maildirIds().has('oversize-1'), 'the oversized message was delivered');
  await stillDelivers('oversize');
});

test('an oversized DATA is not written to disk beyond the limit while it streams in', async () => {
  // 8 MiB against a 64 KiB limit: the spool must not grow to the size of what the client sends.
  const c = await session();
  assert.equal((await c.cmd('MAIL FROM:<sender@elsewhere.test>'))?.code, 250);
  assert.equal((await c.cmd(`RCPT TO:<${RCPT}>`))?.code, 250);
  assert.equal((await c.cmd('DATA'))?.code, 354);
  const before = c.replies().length;
  c.write(msg('oversize-stream', ''));
  const line = `${'s'.repeat(1022)}\r\n`;
  let peak = 0;
  const sample = () => {
    for (const f of spoolFiles()) {
      try {
        peak = Math.max(peak, fs.statSync(path.join(spoolDir(), f)).size);
      } catch {
        /* removed meanwhile */
      }
    }
  };
  const sampler = setInterval(sample, 5);
  const chunk = line.repeat(64); // 64 KiB
  try {
    for (let i = 0; i < 128; i++) {
      if (!c.sock.write(chunk)) await new Promise((r) => c.sock.once('drain', r));
    }
    c.write('.\r\n');
    await c.waitReplies(before + 1, 15_000);
  } finally {
    clearInterval(sampler);
  }
  assert.equal(c.replies()[before]?.code, 552, c.replies()[before]?.text);
  mustNotArrive.push('oversize-stream');
  c.destroy();
  await drained();
  assert.deepEqual(spoolFiles(), []);
  assert.ok(peak <= 4 * MAX_SIZE, `the spool file of an oversized message grew to ${peak} bytes (limit ${MAX_SIZE}): ` +
    'a client can fill the disk with one DATA');
  await stillDelivers('oversize-stream');
});

test('a client trickling a command one byte at a time does not block others', async () => {
  const slow = await session();
  const line = 'MAIL FROM:<slow@elsewhere.test>\r\n';
  // One byte per write (each in its own segment), all but the line end: the command stays incomplete
  // while another client runs a whole transaction; its last byte goes once that one got its 250.
  for (const ch of line.slice(0, -2)) await slow.write(ch);
  assert.equal((await transaction('during-trickle'))?.code, 250);
  checks.push('during-trickle');
  assert.equal(slow.replies().length, 2, 'the trickled command is still incomplete: no reply yet');
  await stillDelivers('during-trickle');
  await slow.write('\r\n');
  assert.ok(await slow.waitReplies(3), `the trickled command got no reply: ${slow.data}`);
  assert.equal(slow.replies()[2].code, 250, slow.replies()[2].text);
  slow.write('QUIT\r\n');
  slow.destroy();
  await stillDelivers('trickle');
});

test('every acknowledged message arrived exactly once, and none of the hostile ones', async (t) => {
  let ids = maildirIds();
  await waitFor('every acknowledged message in the Maildir', () => checks.every((id) => (ids = maildirIds()).has(id)), 20_000).catch(() => undefined);
  const missing = checks.filter((id) => !ids.has(id));
  assert.deepEqual(missing, [], 'acknowledged messages missing from the Maildir');
  const dups = [...ids].filter(([, n]) => n > 1);
  assert.deepEqual(dups, [], 'duplicates');
  const leaked = mustNotArrive.filter((id) => ids.has(id));
  assert.deepEqual(leaked, [], 'messages that never got a 250 were delivered');
  assert.equal(child.exitCode, null);
  // What the appliance logged at warn and above during the hostile cases (for the record).
  const logged = new Map<string, number>();
  for (const l of outputs.map((o) => o()).join('\n').split('\n')) {
    const m = /"level":(\d+).*"msg":"([^"]*)"/.exec(l);
    if (m) logged.set(`level ${m[1]}: ${m[2]}`, (logged.get(`level ${m[1]}: ${m[2]}`) ?? 0) + 1);
  }
  for (const [k, n] of logged) t.diagnostic(`appliance logged ${n} x ${k}`);
});
