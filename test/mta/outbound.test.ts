/**
 * The smtp/relay channel against smtp-server next hops on loopback, with MX
 * lookups answered by a loopback stub DNS server (never the machine's own
 * resolver): envelopes and bytes as sent, per-recipient results for 4xx/5xx
 * at RCPT and DATA, connection failures and MX fallback, opportunistic
 * STARTTLS, connection reuse, the null sender and 8BITMIME.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { RRTYPE, type RData } from '../../server/directory/records';
import { MailResolver } from '../../server/mta/resolver';
import { Outbound, type OutboundJob } from '../../server/mta/outbound';
import { SelfIdentity } from '../../server/mta/self';
import type { DeliveryResult, QueuedMessage } from '../../server/mta/types';
import { StubDns } from './stub-dns';

// ------------------------------------------------------------ test SMTP servers

interface Received {
  mailFrom: string;
  mailArgs: Record<string, unknown>;
  rcptTo: string[];
  body: Buffer;
  secure: boolean;
}

interface Behaviour {
  /** SMTP reply code (with text) to refuse a recipient with. */
  rcpt?: (address: string) => { code: number; text: string } | undefined;
  mail?: (address: string) => { code: number; text: string } | undefined;
  /** Reply to the end of data. */
  data?: { code: number; text: string };
  server?: Partial<SMTPServerOptions>;
}

interface TestServer {
  port: number;
  connections: number;
  received: Received[];
  close(): Promise<void>;
}

function smtpError(r: { code: number; text: string }): Error {
  const e = new Error(r.text) as Error & { responseCode: number };
  e.responseCode = r.code;
  return e;
}

async function startSmtp(b: Behaviour = {}): Promise<TestServer> {
  const state: TestServer = { port: 0, connections: 0, received: [], close: async () => undefined };
  const server = new SMTPServer({
    authOptional: true,
    disableReverseLookup: true,
    logger: false,
    hideSTARTTLS: true,
    size: 10 * 1024 * 1024,
    onConnect(_session, cb) {
      state.connections++;
      cb();
    },
    onMailFrom(address, _session, cb) {
      const r = b.mail?.(address.address);
      cb(r ? smtpError(r) : undefined);
    },
    onRcptTo(address, _session, cb) {
      const r = b.rcpt?.(address.address);
      cb(r ? smtpError(r) : undefined);
    },
    onData(stream, session: SMTPServerSession, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        if (b.data) return cb(smtpError(b.data));
        const env = session.envelope;
        const from = env.mailFrom;
        state.received.push({
          mailFrom: from ? from.address : '<false>',
          mailArgs: (from ? (from.args as Record<string, unknown>) : {}) || {},
          rcptTo: env.rcptTo.map((r) => r.address),
          body: Buffer.concat(chunks),
          secure: session.secure,
        });
        cb(null, 'Ok: queued');
      });
    },
    ...b.server,
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.server.address() as AddressInfo).port;
  state.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return state;
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

// ------------------------------------------------------------ messages

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dcmx-outbound-'));
let seq = 0;

function spool(content: string | Buffer, sender = 'alice@origin.test'): QueuedMessage {
  const id = `Q${++seq}`;
  const spoolPath = path.join(tmp, id);
  fs.writeFileSync(spoolPath, content);
  return { id, sender, receivedAt: new Date(), spoolPath, size: fs.statSync(spoolPath).size };
}

const MESSAGE =
  'Received: from client.origin.test by mx.dcmx.test; Mon, 1 Jan 2024 00:00:00 +0000\r\n' +
  'From: Alice <alice@origin.test>\r\n' +
  'To: bob@a.test\r\n' +
  'Subject: test\r\n' +
  '\r\n' +
  'Hello.\r\n' +
  '.leading dot must survive dot-stuffing\r\n' +
  '..two dots\r\n' +
  '\r\n' +
  'Bye.\r\n';

function okResult(r: DeliveryResult | undefined): void {
  assert.ok(r, 'has a result');
  assert.equal(r.ok, true, `expected ok, got ${JSON.stringify(r)}`);
}

function failed(r: DeliveryResult | undefined, permanent: boolean): Extract<DeliveryResult, { ok: false }> {
  assert.ok(r, 'has a result');
  assert.equal(r.ok, false, `expected a failure, got ${JSON.stringify(r)}`);
  if (r.ok) throw new Error('unreachable');
  assert.equal(r.permanent, permanent, `permanent=${permanent} expected: ${JSON.stringify(r)}`);
  assert.match(r.status, permanent ? /^5\.\d+\.\d+$/ : /^4\.\d+\.\d+$/);
  return r;
}

// ------------------------------------------------------------ tests

describe('Outbound', () => {
  let dns: StubDns;
  let resolver: MailResolver;
  const open: Outbound[] = [];
  const servers: TestServer[] = [];

  const outbound = (port: number, extra: Partial<ConstructorParameters<typeof Outbound>[0]> = {}) => {
    const o = new Outbound({ hostname: 'mx.dcmx.test', resolver, portOverride: port, connectTimeoutMs: 3000, ...extra });
    open.push(o);
    return o;
  };
  const server = async (b?: Behaviour) => {
    const s = await startSmtp(b);
    servers.push(s);
    return s;
  };
  const job = (message: QueuedMessage, recipients: string[], domain = 'a.test'): OutboundJob => ({ message, recipients, route: { kind: 'smtp', domain } });

  before(async () => {
    dns = await StubDns.start();
    dns
      .add('a.test', mx(10, 'mx.a.test'))
      .add('mx.a.test', a('127.0.0.1'))
      // First MX on an address nothing listens on (127.0.0.2 is loopback too), second on the test server.
      .add('two.test', mx(10, 'mx1.two.test'))
      .add('two.test', mx(20, 'mx2.two.test'))
      .add('mx1.two.test', a('127.0.0.2'))
      .add('mx2.two.test', a('127.0.0.1'))
      .add('implicit.test', a('127.0.0.1'))
      .add('nullmx.test', mx(0, ''))
      .add('relay.test', a('127.0.0.1'));
    dns.servfail.add('broken.test');
    resolver = new MailResolver({ upstream: [{ host: '127.0.0.1', port: dns.port }], timeoutMs: 300 });
  });

  after(async () => {
    for (const o of open) o.close();
    await Promise.all(servers.map((s) => s.close()));
    await dns?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('accepted: envelope and bytes as spooled', async () => {
    const s = await server();
    const o = outbound(s.port);
    const msg = spool(MESSAGE);
    const res = await o.deliver(job(msg, ['bob@a.test', 'Carol@A.Test']));
    okResult(res.get('bob@a.test'));
    okResult(res.get('Carol@A.Test'));
    assert.equal(res.size, 2);
    assert.equal(s.received.length, 1);
    const r = s.received[0];
    assert.equal(r.mailFrom, 'alice@origin.test');
    assert.deepEqual(r.rcptTo, ['bob@a.test', 'Carol@a.test']);
    assert.ok(r.body.equals(fs.readFileSync(msg.spoolPath)), 'byte-identical body');
    assert.equal(r.mailArgs.BODY, undefined, 'no BODY= for 7-bit content');
    assert.equal(r.secure, false);
  });

  test('implicit MX and IP-literal domains', async () => {
    const s = await server();
    const o = outbound(s.port);
    okResult((await o.deliver(job(spool(MESSAGE), ['x@implicit.test'], 'implicit.test'))).get('x@implicit.test'));
    okResult((await o.deliver(job(spool(MESSAGE), ['x@[127.0.0.1]'], '[127.0.0.1]'))).get('x@[127.0.0.1]'));
    assert.deepEqual(s.received.map((r) => r.rcptTo[0]), ['x@implicit.test', 'x@[127.0.0.1]']);
  });

  test('null sender goes out as MAIL FROM:<>', async () => {
    const s = await server();
    const o = outbound(s.port);
    const res = await o.deliver(job(spool(MESSAGE, ''), ['bob@a.test']));
    okResult(res.get('bob@a.test'));
    assert.equal(s.received[0].mailFrom, '', 'smtp-server parsed an empty reverse-path');
  });

  test('8-bit content is sent with BODY=8BITMIME, bytes intact', async () => {
    const s = await server();
    const o = outbound(s.port);
    const body = Buffer.concat([Buffer.from('Subject: caf\xc3\xa9\r\nContent-Transfer-Encoding: 8bit\r\n\r\n', 'latin1'), Buffer.from('Grüße, naïve café\r\n\xff\xfe raw\r\n', 'latin1')]);
    const msg = spool(body);
    const res = await o.deliver(job(msg, ['bob@a.test']));
    okResult(res.get('bob@a.test'));
    assert.equal(s.received[0].mailArgs.BODY, '8BITMIME');
    assert.ok(s.received[0].body.equals(body));
  });

  test('SMTPUTF8 (RFC 6531 §3.2): a UTF-8 local part goes with SMTPUTF8 to a next hop that offers it', async () => {
    const s = await server();
    const msg = { ...spool(Buffer.from('From: jöhn@origin.test\r\nSubject: Grüße\r\n\r\nHallo\r\n', 'utf8'), 'jöhn@origin.test'), smtpUtf8: true };
    const res = await outbound(s.port).deliver(job(msg, ['zoë@a.test']));
    okResult(res.get('zoë@a.test'));
    assert.equal(s.received.length, 1);
    assert.equal(s.received[0].mailArgs.SMTPUTF8, true, `MAIL FROM args ${JSON.stringify(s.received[0].mailArgs)}`);
    assert.equal(s.received[0].mailFrom, 'jöhn@origin.test');
    assert.deepEqual(s.received[0].rcptTo, ['zoë@a.test']);
  });

  test('SMTPUTF8 not offered: UTF-8 recipients fail 5.6.7, never sent raw; an ASCII recipient of the same message still goes', async () => {
    const s = await server({ server: { hideSMTPUTF8: true } });
    const msg = { ...spool(MESSAGE), smtpUtf8: true };
    const res = await outbound(s.port).deliver(job(msg, ['zoë@a.test', 'bob@a.test']));
    const r = failed(res.get('zoë@a.test'), true);
    assert.equal(r.status, '5.6.7');
    assert.match(r.diagnostic, /SMTPUTF8/);
    assert.equal(r.remoteMta, 'dns; mx.a.test');
    okResult(res.get('bob@a.test'));
    assert.equal(s.received.length, 1);
    assert.deepEqual(s.received[0].rcptTo, ['bob@a.test'], 'the UTF-8 address never reached the next hop');

    // A UTF-8 sender: nobody can get it. UTF-8 header fields of an SMTPUTF8 message: likewise.
    const fromUtf8 = await outbound(s.port).deliver(job({ ...spool(MESSAGE, 'jöhn@origin.test'), smtpUtf8: true }, ['bob@a.test']));
    assert.equal(failed(fromUtf8.get('bob@a.test'), true).status, '5.6.7');
    const utf8Headers = { ...spool(Buffer.from('From: alice@origin.test\r\nSubject: Grüße\r\n\r\nhi\r\n', 'utf8')), smtpUtf8: true };
    assert.equal(failed((await outbound(s.port).deliver(job(utf8Headers, ['bob@a.test']))).get('bob@a.test'), true).status, '5.6.7');
    assert.equal(s.received.length, 1, 'nothing more was sent');
  });

  test('BODY=8BITMIME not offered (RFC 6152 §3): declared 8-bit content fails 5.6.3 and is not sent; 7-bit content declared 8BITMIME goes', async () => {
    const s = await server({ server: { hide8BITMIME: true } });
    const eight = Buffer.from('Subject: x\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße\r\n', 'utf8');
    const res = await outbound(s.port).deliver(job({ ...spool(eight), eightBitMime: true }, ['bob@a.test']));
    const r = failed(res.get('bob@a.test'), true);
    assert.equal(r.status, '5.6.3');
    assert.match(r.diagnostic, /8BITMIME/);
    assert.equal(s.received.length, 0, 'not sent raw');
    okResult((await outbound(s.port).deliver(job({ ...spool(MESSAGE), eightBitMime: true }, ['bob@a.test']))).get('bob@a.test'));
    assert.equal(s.received.length, 1);
    assert.equal(s.received[0].mailArgs.BODY, undefined);
  });

  test('BODY=8BITMIME offered: declared 8-bit content goes with BODY=8BITMIME, bytes intact', async () => {
    const s = await server();
    const eight = Buffer.from('Subject: x\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße\r\n', 'utf8');
    const msg = { ...spool(eight), eightBitMime: true };
    okResult((await outbound(s.port).deliver(job(msg, ['bob@a.test']))).get('bob@a.test'));
    assert.equal(s.received[0].mailArgs.BODY, '8BITMIME');
    assert.ok(s.received[0].body.equals(eight));
  });

  test('451 at RCPT: temporary for that recipient', async () => {
    const s = await server({ rcpt: (a) => (a.startsWith('grey') ? { code: 451, text: '4.7.1 Greylisted, try later' } : undefined) });
    const o = outbound(s.port);
    const res = await o.deliver(job(spool(MESSAGE), ['grey@a.test']));
    const r = failed(res.get('grey@a.test'), false);
    assert.equal(r.status, '4.7.1');
    assert.equal(r.diagnostic, 'smtp; 451 4.7.1 Greylisted, try later');
    assert.equal(r.remoteMta, 'dns; mx.a.test');
    assert.equal(s.received.length, 0);
  });

  test('550 for one RCPT, 250 for another: mixed results', async () => {
    const s = await server({
      rcpt: (a) => (a === 'nobody@a.test' ? { code: 550, text: '5.1.1 <nobody@a.test>: Recipient address rejected' } : a === 'grey@a.test' ? { code: 450, text: 'mailbox busy' } : undefined),
    });
    const o = outbound(s.port);
    const res = await o.deliver(job(spool(MESSAGE), ['bob@a.test', 'nobody@a.test', 'grey@a.test']));
    okResult(res.get('bob@a.test'));
    const bad = failed(res.get('nobody@a.test'), true);
    assert.equal(bad.status, '5.1.1');
    assert.equal(bad.diagnostic, 'smtp; 550 5.1.1 <nobody@a.test>: Recipient address rejected');
    assert.equal(bad.remoteMta, 'dns; mx.a.test');
    const grey = failed(res.get('grey@a.test'), false);
    assert.equal(grey.status, '4.0.0', 'no enhanced code in the reply: class.0.0');
    assert.match(grey.diagnostic, /^smtp; 450 .*mailbox busy/);
    assert.deepEqual(s.received.map((r) => r.rcptTo), [['bob@a.test']]);
  });

  test('552 at the end of DATA: permanent for all', async () => {
    const s = await server({ data: { code: 552, text: '5.3.4 Message too big for system' } });
    const o = outbound(s.port);
    const res = await o.deliver(job(spool(MESSAGE), ['bob@a.test', 'carol@a.test']));
    for (const rcpt of ['bob@a.test', 'carol@a.test']) {
      const r = failed(res.get(rcpt), true);
      assert.equal(r.status, '5.3.4');
      assert.match(r.diagnostic, /^smtp; 552 5\.3\.4 Message too big/);
    }
  });

  test('451 at the end of DATA: temporary for all', async () => {
    const s = await server({ data: { code: 451, text: 'local error in processing' } });
    const res = await outbound(s.port).deliver(job(spool(MESSAGE), ['bob@a.test', 'carol@a.test']));
    for (const rcpt of ['bob@a.test', 'carol@a.test']) assert.match(failed(res.get(rcpt), false).diagnostic, /^smtp; 451 /);
  });

  test('5xx at MAIL FROM: permanent for all; 4xx: temporary', async () => {
    const s = await server({ mail: (a) => (a === 'spammer@origin.test' ? { code: 553, text: '5.7.1 Sender rejected' } : { code: 421, text: '4.3.2 Try again later' }) });
    const o = outbound(s.port);
    const res = await o.deliver(job(spool(MESSAGE, 'spammer@origin.test'), ['bob@a.test', 'carol@a.test']));
    assert.equal(failed(res.get('bob@a.test'), true).status, '5.7.1');
    assert.equal(failed(res.get('carol@a.test'), true).status, '5.7.1');
    const res2 = await o.deliver(job(spool(MESSAGE), ['bob@a.test']));
    assert.equal(failed(res2.get('bob@a.test'), false).status, '4.3.2');
  });

  test('a 554 greeting refuses the session, not the message: temporary', async () => {
    const s = await server({ server: { onConnect: (_session, cb) => cb(Object.assign(new Error('5.7.1 Go away'), { responseCode: 554 })) } });
    const r = failed((await outbound(s.port).deliver(job(spool(MESSAGE), ['bob@a.test']))).get('bob@a.test'), false);
    assert.equal(r.status, '4.7.1');
    assert.match(r.diagnostic, /^smtp; 554 /);
  });

  test('a message over the peer\'s SIZE limit: permanent 5.3.4 without sending it', async () => {
    const s = await server({ server: { size: 100 } });
    const r = failed((await outbound(s.port).deliver(job(spool(MESSAGE + 'x'.repeat(200) + '\r\n'), ['bob@a.test']))).get('bob@a.test'), true);
    assert.equal(r.status, '5.3.4');
    assert.equal(s.received.length, 0);
  });

  test('connection refused: temporary', async () => {
    const port = await closedPort();
    const res = await outbound(port).deliver(job(spool(MESSAGE), ['bob@a.test', 'carol@a.test']));
    for (const rcpt of ['bob@a.test', 'carol@a.test']) {
      const r = failed(res.get(rcpt), false);
      assert.equal(r.status, '4.4.1');
      assert.match(r.diagnostic, /connect to mx\.a\.test\[127\.0\.0\.1\]:\d+: .*ECONNREFUSED/);
      assert.equal(r.remoteMta, 'dns; mx.a.test');
    }
  });

  test('first MX refuses connections, second accepts: delivered via the second', async () => {
    const s = await server();
    const res = await outbound(s.port).deliver(job(spool(MESSAGE), ['bob@two.test'], 'two.test'));
    const r = res.get('bob@two.test');
    okResult(r);
    assert.match((r as { detail?: string }).detail ?? '', /mx2\.two\.test/);
    assert.equal(s.received.length, 1);
  });

  test('relay hosts are tried in order (host:port, [host]:port)', async () => {
    const s = await server();
    const dead = await closedPort();
    const o = outbound(1); // the relay hosts name their ports
    const res = await o.deliver({ message: spool(MESSAGE), recipients: ['x@far.test'], route: { kind: 'relay', hosts: [`127.0.0.1:${dead}`, `nope.test:${s.port}`, `[relay.test]:${s.port}`] } });
    okResult(res.get('x@far.test'));
    assert.equal(s.received.length, 1);
    const none = await o.deliver({ message: spool(MESSAGE), recipients: ['x@far.test'], route: { kind: 'relay', hosts: ['nope.test'] } });
    failed(none.get('x@far.test'), false);
  });

  test('a relay host that is this appliance is skipped for the next one; when none is left, 5.4.6 at once', async () => {
    const s = await server();
    const ourPort = await closedPort();
    // We listen on 127.0.0.1:ourPort; DCMX_SELF_ADDRESSES is 192.0.2.10 (reached on the relay port, 1 here).
    const self = new SelfIdentity({ hostname: 'mx.dcmx.test', selfAddresses: ['192.0.2.10'], listen: '127.0.0.1', smtpPort: ourPort, relayPort: 1 }, resolver);
    const o = outbound(1, { self });
    // Our own address and port first: skipped; a local address on another port (a content filter) is somebody else.
    const res = await o.deliver({ message: spool(MESSAGE), recipients: ['x@far.test'], route: { kind: 'relay', hosts: [`127.0.0.1:${ourPort}`, `mx.dcmx.test:1`, `127.0.0.1:${s.port}`] } });
    okResult(res.get('x@far.test'));
    assert.equal(s.received.length, 1);
    for (const hosts of [[`127.0.0.1:${ourPort}`], ['[192.0.2.10]'], ['mx.dcmx.test'], [`mx.dcmx.test:${ourPort}`]]) {
      const r = failed((await o.deliver({ message: spool(MESSAGE), recipients: ['x@far.test'], route: { kind: 'relay', hosts } })).get('x@far.test'), true);
      assert.equal(r.status, '5.4.6', `${hosts}: ${JSON.stringify(r)}`);
      assert.match(r.diagnostic, /mail for far\.test loops back to myself/);
    }
    // A loop among hosts that fail for now is not final: those are retried.
    const dead = await closedPort();
    failed((await o.deliver({ message: spool(MESSAGE), recipients: ['x@far.test'], route: { kind: 'relay', hosts: [`127.0.0.1:${ourPort}`, `127.0.0.1:${dead}`] } })).get('x@far.test'), false);
  });

  test('null MX, NXDOMAIN, SERVFAIL: per the resolver', async () => {
    const o = outbound(await closedPort());
    assert.equal(failed((await o.deliver(job(spool(MESSAGE), ['u@nullmx.test'], 'nullmx.test'))).get('u@nullmx.test'), true).status, '5.1.10');
    assert.equal(failed((await o.deliver(job(spool(MESSAGE), ['u@nope.test'], 'nope.test'))).get('u@nope.test'), true).status, '5.1.2');
    assert.equal(failed((await o.deliver(job(spool(MESSAGE), ['u@broken.test'], 'broken.test'))).get('u@broken.test'), false).status, '4.4.3');
  });

  test('bad addresses and a missing spool file never throw', async () => {
    const s = await server();
    const o = outbound(s.port);
    const res = await o.deliver(job(spool(MESSAGE), ['bob@a.test', 'evil>@a.test', 'no-domain']));
    okResult(res.get('bob@a.test'));
    failed(res.get('evil>@a.test'), true);
    failed(res.get('no-domain'), true);
    const gone = spool(MESSAGE);
    fs.rmSync(gone.spoolPath);
    assert.equal(failed((await o.deliver(job(gone, ['bob@a.test']))).get('bob@a.test'), false).status, '4.3.0');
  });

  test('STARTTLS offered: used, certificate not checked', async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const selfsigned = require('selfsigned') as { generate(attrs: { name: string; value: string }[], opts?: object): Promise<{ private: string; cert: string }> };
    const pems = await selfsigned.generate([{ name: 'commonName', value: 'mx.a.test' }], { keySize: 2048, days: 1 });
    const s = await server({ server: { hideSTARTTLS: false, key: pems.private, cert: pems.cert } });
    const res = await outbound(s.port).deliver(job(spool(MESSAGE), ['bob@a.test']));
    okResult(res.get('bob@a.test'));
    assert.equal(s.received[0].secure, true, 'the session was upgraded');
  });

  test('STARTTLS handshake failure: falls back to cleartext (RFC 7435)', async () => {
    // The server only speaks TLS 1.0/1.1, which Node's client refuses: the handshake fails.
    const s = await server({ server: { hideSTARTTLS: false, minVersion: 'TLSv1', maxVersion: 'TLSv1.1' } as Partial<SMTPServerOptions> });
    const o = outbound(s.port);
    const res = await o.deliver(job(spool(MESSAGE), ['bob@a.test']));
    okResult(res.get('bob@a.test'));
    assert.equal(s.received.length, 1);
    assert.equal(s.received[0].secure, false);
    // Remembered: the next message goes straight to cleartext.
    okResult((await o.deliver(job(spool(MESSAGE), ['bob@a.test']))).get('bob@a.test'));
    assert.equal(s.received.length, 2);
  });

  test('connection reuse: 5 messages to one host share a connection', async () => {
    const s = await server();
    const o = outbound(s.port);
    for (let i = 0; i < 5; i++) okResult((await o.deliver(job(spool(MESSAGE), [`u${i}@a.test`]))).get(`u${i}@a.test`));
    assert.equal(s.received.length, 5);
    assert.equal(s.connections, 1);

    const s2 = await server();
    const o2 = outbound(s2.port, { maxConnectionsPerHost: 2 });
    const all = await Promise.all([0, 1, 2, 3, 4].map((i) => o2.deliver(job(spool(MESSAGE), [`p${i}@a.test`]))));
    all.forEach((res, i) => okResult(res.get(`p${i}@a.test`)));
    assert.equal(s2.received.length, 5);
    assert.ok(s2.connections >= 1 && s2.connections <= 2, `${s2.connections} connections`);
  });

  test('maxMessagesPerConnection replaces the connection', async () => {
    const s = await server();
    const o = outbound(s.port, { maxMessagesPerConnection: 2 });
    for (let i = 0; i < 5; i++) okResult((await o.deliver(job(spool(MESSAGE), [`m${i}@a.test`]))).get(`m${i}@a.test`));
    assert.equal(s.connections, 3);
  });
});

function mx(preference: number, exchange: string): RData {
  return { type: RRTYPE.MX, preference, exchange };
}

function a(address: string): RData {
  return { type: RRTYPE.A, address };
}
