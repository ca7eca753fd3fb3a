/**
 * MTA-STS honoured outbound (RFC 8461 §4, §5), over real sockets on loopback:
 * the smtp channel (server/mta/outbound.ts) with its policy cache
 * (server/mta/mta-sts.ts), a stub upstream DNS serving the `_mta-sts` TXT
 * records and MX, a policy host (node https, certificate from a test CA,
 * trusted through DCMX_MTA_STS_CA's option) on 127.x.y.z:443, and
 * smtp-server next hops offering STARTTLS, one with a certificate from the
 * test CA for its MX name and one self-signed.
 *
 * - enforce: delivered over verified TLS to an MX the policy names; deferred
 *   (4.7.5, message not sent) when the certificate does not verify or the MX
 *   matches no mx pattern;
 * - testing: the same failures are logged and the mail goes;
 * - the cache: one fetch across two messages, a new fetch when the TXT id
 *   changes, the cached policy kept when discovery fails;
 * - a policy served with a redirect or the wrong type is no policy.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import selfsigned from 'selfsigned';
import { SMTPServer } from 'smtp-server';
import { RRTYPE } from '../../server/directory/records';
import { MailResolver } from '../../server/mta/resolver';
import { Outbound } from '../../server/mta/outbound';
import { FETCH_TIMEOUT_MS, mxMatches, parsePolicy, StsPolicies, stsRecordId } from '../../server/mta/mta-sts';
import type { DeliveryResult, QueuedMessage } from '../../server/mta/types';
import { StubDns } from './stub-dns';
import { Store } from '../../storage/store';
import { StsPolicyStore } from '../../storage/sts-cache';
import { runDcmx, startTestAppliance, testEnv } from '../helpers';
import { swaks, waitFor } from './fixture';
import { waitForAsync } from '../fixtures/wait';

/** A random loopback address of its own, away from 127.0.0.1 (tests run in parallel; port 443 is shared). */
function loopback(): string {
  const b = () => 2 + Math.floor(Math.random() * 250);
  return `127.${100 + Math.floor(Math.random() * 100)}.${b()}.${b()}`;
}

interface Hop {
  address: string;
  received: { rcpt: string[]; secure: boolean }[];
  close(): Promise<void>;
}

/** An smtp-server next hop on `address`:`port` (0: any) offering STARTTLS with `tls`. */
async function startHop(address: string, port: number, tls: { key: string; cert: string }): Promise<Hop & { port: number }> {
  const received: Hop['received'] = [];
  const server = new SMTPServer({
    authOptional: true, disableReverseLookup: true, logger: false, key: tls.key, cert: tls.cert,
    onData(stream, session, cb) {
      stream.resume();
      stream.on('end', () => {
        received.push({ rcpt: session.envelope.rcptTo.map((r) => r.address), secure: session.secure });
        cb(null, 'Ok: queued');
      });
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(port, address, resolve));
  return {
    address, received, port: (server.server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dcmx-sts-out-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let seq = 0;

function message(to: string): QueuedMessage {
  const id = `S${++seq}`;
  const spoolPath = path.join(tmp, id);
  fs.writeFileSync(spoolPath, `From: a@origin.test\r\nTo: ${to}\r\nSubject: sts ${seq}\r\n\r\nHello.\r\n`);
  return { id, sender: 'a@origin.test', receivedAt: new Date(), spoolPath, size: fs.statSync(spoolPath).size };
}

function deferred(r: DeliveryResult | undefined, why: RegExp): void {
  assert.ok(r && !r.ok, `expected a deferral, got ${JSON.stringify(r)}`);
  if (r.ok) return;
  assert.equal(r.permanent, false, JSON.stringify(r));
  assert.equal(r.status, '4.7.5', JSON.stringify(r));
  assert.match(r.diagnostic, why);
}

describe('MTA-STS honoured outbound', () => {
  let dns: StubDns;
  let good: Hop & { port: number };
  let bad: Hop;
  let policyHost: https.Server;
  let outbound: Outbound;
  let sts: StsPolicies;
  const logged: { level: number; msg: string }[] = [];
  /** The policy each policy host name serves, and the requests it got. */
  const policies = new Map<string, { status: number; type: string; body: string; location?: string }>();
  const requests: string[] = [];
  const policyAddress = loopback();
  const caFile = path.join(tmp, 'ca.pem');

  before(async () => {
    const ca = await selfsigned.generate([{ name: 'commonName', value: 'dcmx test CA' }], {
      keySize: 2048, algorithm: 'sha256',
      extensions: [{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true }],
    });
    const issue = (names: string[]) => selfsigned.generate([{ name: 'commonName', value: names[0] }], {
      keySize: 2048, algorithm: 'sha256', ca: { key: ca.private, cert: ca.cert },
      extensions: [{ name: 'subjectAltName', altNames: names.map((value) => ({ type: 2, value })) }],
    });
    const mxCert = await issue(['mx.sts.test']);
    const webCert = await issue(['mta-sts.sts.test', 'mta-sts.testing.test', 'mta-sts.bad.test', 'mta-sts.moved.test', 'mta-sts.html.test']);
    // Untrusted: self-signed, though it names its host.
    const selfCert = await selfsigned.generate([{ name: 'commonName', value: 'mx.bad.test' }], {
      keySize: 2048, algorithm: 'sha256', extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'mx.bad.test' }, { type: 2, value: 'mx.testing.test' }] }],
    });

    good = await startHop(loopback(), 0, { key: mxCert.private, cert: mxCert.cert });
    bad = await startHop(loopback(), good.port, { key: selfCert.private, cert: selfCert.cert });

    policyHost = https.createServer({ key: webCert.private, cert: webCert.cert }, (req, res) => {
      const host = (req.headers.host ?? '').toLowerCase();
      requests.push(`${host}${req.url}`);
      const p = policies.get(host);
      if (!p || req.url !== '/.well-known/mta-sts.txt') {
        res.writeHead(404);
        return res.end();
      }
      res.writeHead(p.status, { 'content-type': p.type, ...(p.location ? { location: p.location } : {}) });
      res.end(p.body);
    });
    await new Promise<void>((resolve, reject) => {
      policyHost.once('error', reject);
      policyHost.listen(443, policyAddress, resolve);
    });

    const txt = (name: string, value: string) => dns.add(name, { type: RRTYPE.TXT, strings: [Buffer.from(value)] });
    dns = await StubDns.start();
    // sts.test: enforce, MX mx.sts.test (the good hop).
    dns.mx('sts.test', 10, 'mx.sts.test').a('mx.sts.test', good.address);
    txt('_mta-sts.sts.test', 'v=STSv1; id=first');
    dns.a('mta-sts.sts.test', policyAddress);
    policies.set('mta-sts.sts.test', { status: 200, type: 'text/plain', body: 'version: STSv1\r\nmode: enforce\r\nmx: mx.sts.test\r\nmx: *.backup.sts.test\r\nmax_age: 86400\r\n' });
    // bad.test: enforce, its MX has a self-signed certificate.
    dns.mx('bad.test', 10, 'mx.bad.test').a('mx.bad.test', bad.address);
    txt('_mta-sts.bad.test', 'v=STSv1; id=1');
    dns.a('mta-sts.bad.test', policyAddress);
    policies.set('mta-sts.bad.test', { status: 200, type: 'text/plain; charset=utf-8', body: 'version: STSv1\nmode: enforce\nmx: mx.bad.test\nmax_age: 86400\n' });
    // testing.test: testing; its MX has a self-signed certificate and is not in the policy either.
    dns.mx('testing.test', 10, 'mx.testing.test').a('mx.testing.test', bad.address);
    txt('_mta-sts.testing.test', 'v=STSv1; id=t1');
    dns.a('mta-sts.testing.test', policyAddress);
    policies.set('mta-sts.testing.test', { status: 200, type: 'text/plain', body: 'version: STSv1\nmode: testing\nmx: mx.testing.test\nmax_age: 86400\n' });
    // moved.test and html.test: policies that are none (a redirect, the wrong type); their MX matches nothing.
    for (const d of ['moved.test', 'html.test']) {
      dns.mx(d, 10, `other.${d}`).a(`other.${d}`, good.address);
      txt(`_mta-sts.${d}`, 'v=STSv1; id=x');
      dns.a(`mta-sts.${d}`, policyAddress);
    }
    policies.set('mta-sts.moved.test', { status: 301, type: 'text/plain', body: '', location: 'https://mta-sts.sts.test/.well-known/mta-sts.txt' });
    policies.set('mta-sts.html.test', { status: 200, type: 'text/html', body: 'version: STSv1\nmode: enforce\nmx: nowhere.test\nmax_age: 86400\n' });

    fs.writeFileSync(caFile, ca.cert);
    const resolver = new MailResolver({ upstream: [{ host: '127.0.0.1', port: dns.port }], timeoutMs: 1000 });
    sts = new StsPolicies({ resolver, ca: fs.readFileSync(caFile, 'utf8') });
    const log = pino({ level: 'info' }, { write: (line: string) => logged.push(JSON.parse(line) as { level: number; msg: string }) });
    outbound = new Outbound({ hostname: 'mx.dcmx.test', resolver, sts, log, portOverride: good.port, connectTimeoutMs: 5000 });
  });
  after(async () => {
    outbound?.close();
    await good?.close();
    await bad?.close();
    await new Promise<void>((resolve) => (policyHost ? policyHost.close(() => resolve()) : resolve()));
    policyHost?.closeAllConnections();
    await dns?.close();
  });

  const send = async (to: string) => (await outbound.deliver({ message: message(to), recipients: [to], route: { kind: 'smtp', domain: to.slice(to.indexOf('@') + 1) } })).get(to);

  test('enforce, MX in the policy with a certificate that verifies: delivered over TLS; the policy fetched once for two messages', async () => {
    const r1 = await send('one@sts.test');
    assert.equal(r1?.ok, true, JSON.stringify(r1));
    const r2 = await send('two@sts.test');
    assert.equal(r2?.ok, true, JSON.stringify(r2));
    assert.deepEqual(good.received.map((m) => [m.rcpt, m.secure]), [[['one@sts.test'], true], [['two@sts.test'], true]]);
    assert.equal(requests.filter((r) => r.startsWith('mta-sts.sts.test')).length, 1, `one fetch: ${requests.join(' ')}`);
    assert.equal(dns.count('_mta-sts.sts.test', RRTYPE.TXT) >= 2, true, 'the TXT record is checked for each delivery');
  });

  test('enforce, a certificate that does not verify: deferred with the reason, nothing sent, no cleartext fallback', async () => {
    const r = await send('x@bad.test');
    deferred(r, /MTA-STS policy of bad\.test \(enforce, id 1\): TLS with mx\.bad\.test\[[\d.]+\]:\d+ did not verify: .*self[- ]signed/i);
    assert.equal(bad.received.length, 0);
  });

  test('enforce, an MX the policy does not name: deferred, nothing sent', async () => {
    dns.remove('sts.test', RRTYPE.MX).mx('sts.test', 10, 'rogue.sts.test').a('rogue.sts.test', good.address);
    try {
      const before = good.received.length;
      deferred(await send('three@sts.test'), /MX host rogue\.sts\.test matches none of its mx patterns/);
      assert.equal(good.received.length, before);
      // One label under the wildcard matches (RFC 8461 §4.1)...
      assert.ok(mxMatches(parsePolicy('version: STSv1\nmode: enforce\nmx: *.backup.sts.test\nmax_age: 1\n', 'x'), 'a.backup.sts.test'));
      // ...two do not, nor the bare domain.
      assert.ok(!mxMatches(parsePolicy('version: STSv1\nmode: enforce\nmx: *.backup.sts.test\nmax_age: 1\n', 'x'), 'a.b.backup.sts.test'));
      assert.ok(!mxMatches(parsePolicy('version: STSv1\nmode: enforce\nmx: *.backup.sts.test\nmax_age: 1\n', 'x'), 'backup.sts.test'));
    } finally {
      dns.remove('sts.test', RRTYPE.MX).mx('sts.test', 10, 'mx.sts.test');
    }
  });

  test('testing: the failure is logged and the mail goes as without a policy', async () => {
    logged.length = 0;
    const r = await send('t@testing.test');
    assert.equal(r?.ok, true, JSON.stringify(r));
    assert.equal(bad.received.length, 1, 'delivered to the MX whose certificate does not verify');
    assert.ok(logged.some((l) => l.level === 40 && /MTA-STS policy of testing\.test \(testing, id t1\): TLS with mx\.testing\.test.* did not verify/.test(l.msg)), JSON.stringify(logged));
  });

  test('cache: a new TXT id fetches again; when discovery fails the cached policy stays in force', async () => {
    const fetches = () => requests.filter((r) => r.startsWith('mta-sts.sts.test')).length;
    const before = fetches();
    dns.remove('_mta-sts.sts.test').add('_mta-sts.sts.test', { type: RRTYPE.TXT, strings: [Buffer.from('v=STSv1; id=second')] });
    assert.equal((await send('four@sts.test'))?.ok, true);
    assert.equal(fetches(), before + 1, 'fetched again for the new id');
    // The TXT now fails (SERVFAIL), and the MX is a rogue one: the cached enforce policy still defers.
    dns.servfail.add('_mta-sts.sts.test');
    dns.remove('sts.test', RRTYPE.MX).mx('sts.test', 10, 'rogue.sts.test');
    try {
      deferred(await send('five@sts.test'), /matches none of its mx patterns/);
      // The record gone altogether (NXDOMAIN): still the cached policy (RFC 8461 §10.2).
      dns.servfail.delete('_mta-sts.sts.test');
      dns.remove('_mta-sts.sts.test');
      deferred(await send('six@sts.test'), /matches none of its mx patterns/);
      assert.equal(fetches(), before + 1, 'no fetch without a new id');
    } finally {
      dns.servfail.delete('_mta-sts.sts.test');
      dns.remove('_mta-sts.sts.test').add('_mta-sts.sts.test', { type: RRTYPE.TXT, strings: [Buffer.from('v=STSv1; id=second')] });
      dns.remove('sts.test', RRTYPE.MX).mx('sts.test', 10, 'mx.sts.test');
    }
  });

  test('the cache is kept in the queue store: after a restart the policy is in force without a fetch, even with the record gone', async () => {
    const store = Store.open(path.join(tmp, 'queue.sqlite'), []);
    try {
      const resolver = new MailResolver({ upstream: [{ host: '127.0.0.1', port: dns.port }], timeoutMs: 1000 });
      const first = new StsPolicies({ resolver, persist: new StsPolicyStore(store), ca: fs.readFileSync(caFile, 'utf8') });
      const fetched = await first.lookup('bad.test');
      assert.equal(fetched.policy?.mode, 'enforce', JSON.stringify(fetched));
      assert.equal(first.fetched, 1);
      // A new process: its cache starts from the store. The record is stripped (as an attacker would).
      dns.remove('_mta-sts.bad.test');
      try {
        const again = new StsPolicies({ resolver, persist: new StsPolicyStore(store) });
        const kept = await again.lookup('bad.test');
        assert.deepEqual(kept.policy, fetched.policy);
        assert.equal(again.fetched, 0, 'no fetch');
        // An expired policy is dropped (from the store too).
        const later = new StsPolicies({ resolver, persist: new StsPolicyStore(store), now: () => Date.now() + 86_401_000 });
        assert.equal((await later.lookup('bad.test')).policy, undefined);
        assert.equal(new StsPolicyStore(store).load('bad.test'), undefined);
      } finally {
        dns.add('_mta-sts.bad.test', { type: RRTYPE.TXT, strings: [Buffer.from('v=STSv1; id=1')] });
      }
    } finally {
      store.close();
    }
  });

  test('a cached policy past half its max_age is fetched again in the background; the mail does not wait for it', async () => {
    let clock = Date.now();
    const resolver = new MailResolver({ upstream: [{ host: '127.0.0.1', port: dns.port }], timeoutMs: 1000 });
    const p = new StsPolicies({ resolver, ca: fs.readFileSync(caFile, 'utf8'), now: () => clock });
    assert.equal((await p.lookup('bad.test')).policy?.mode, 'enforce');
    assert.equal(p.fetched, 1);
    clock += 40_000_000; // under half of max_age (86400 s): nothing to do
    await p.lookup('bad.test');
    assert.equal(p.fetched, 1);
    clock += 10_000_000; // past half
    assert.equal((await p.lookup('bad.test')).policy?.mode, 'enforce', 'the cached policy applies meanwhile');
    await waitFor('the background refresh', () => p.fetched === 2 || undefined);
    clock += 40_000_000; // 90,000 s after the first fetch: expired, but the refresh renewed it
    const renewed = await p.lookup('bad.test');
    assert.equal(renewed.policy?.mode, 'enforce');
    assert.equal(p.fetched, 2, 'the renewed policy is not refetched');
  });

  test('a policy behind a redirect, or not text/plain, is no policy: the mail goes', async () => {
    for (const d of ['moved.test', 'html.test']) {
      const r = await send(`y@${d}`);
      assert.equal(r?.ok, true, `${d}: ${JSON.stringify(r)}`);
    }
    assert.equal(requests.filter((r) => r === 'mta-sts.moved.test/.well-known/mta-sts.txt').length, 1, 'asked once, the redirect not followed');
    assert.ok(logged.some((l) => /moved\.test.*HTTP 301 \(redirect not followed\)/.test(l.msg)), JSON.stringify(logged));
    assert.ok(logged.some((l) => /html\.test.*Content-Type text\/html, not text\/plain/.test(l.msg)), JSON.stringify(logged));
  });

  test('through the appliance (DCMX_MTA_STS_CA): mail relayed to an enforce domain whose MX does not verify waits in the queue with the reason; queue list shows it', async () => {
    const t = await startTestAppliance({
      DCMX_UPSTREAM_DNS: dns.address, DCMX_RELAY_NETWORKS: '127.0.0.1/32', DCMX_SMTP_RELAY_PORT: String(good.port), DCMX_MTA_STS_CA: caFile,
    });
    try {
      const before = bad.received.length;
      const sent = await swaks(t.app.ports.smtp, { to: 'queued@bad.test', from: 'someone@client.test', subject: 'mta-sts e2e' });
      assert.equal(sent.code, 0, sent.out);
      const id = /<- {2}250 .*queued as (\w+)/.exec(sent.out)?.[1];
      assert.ok(id, sent.out);
      const [rcpt] = await waitFor('the first attempt recorded', () => {
        const rs = t.app.mta.queue.recipients(id).filter((r) => r.attempts > 0);
        return rs.length ? rs : undefined;
      });
      assert.match(rcpt.lastError ?? '', /4\.7\.5 .*MTA-STS policy of bad\.test \(enforce, id 1\).*did not verify/, rcpt.lastError ?? '');
      assert.equal(bad.received.length, before, 'nothing sent to the MX');
      // Once the attempt's lease is released, the message is deferred, with the reason.
      const list = await waitForAsync('queue list to show the message deferred', async () => {
        const r = await runDcmx(testEnv(t.dataDir), ['queue', 'list']);
        assert.equal(r.code, 0, r.stderr);
        return new RegExp(`^${id} +deferred `, 'm').test(r.stdout) ? r.stdout : undefined;
      }, 20_000, 200);
      assert.match(list, /\(4\.7\.5 X-dcmx; MTA-STS policy of bad\.test \(enforce, id 1\): TLS with mx\.bad\.test\[[\d.]+\]:\d+ did not verify: self-signed certificate \(RFC 8461 §4\.2\)\)/);
      // And an enforce domain whose MX verifies gets its mail from the appliance, over TLS, its policy fetched.
      const fetched = requests.filter((r) => r.startsWith('mta-sts.sts.test')).length;
      const ok = await swaks(t.app.ports.smtp, { to: 'fine@sts.test', from: 'someone@client.test', subject: 'mta-sts e2e ok' });
      assert.equal(ok.code, 0, ok.out);
      const got = await waitFor('delivery to sts.test', () => good.received.find((m) => m.rcpt.includes('fine@sts.test')));
      assert.equal(got.secure, true);
      assert.equal(requests.filter((r) => r.startsWith('mta-sts.sts.test')).length, fetched + 1, 'the appliance fetched the policy');
    } finally {
      await t.close();
    }
  });

  test('a policy host whose addresses never answer: the fetch gives up within FETCH_TIMEOUT_MS for all of them, as no policy', async () => {
    const silent: net.Server[] = [];
    const sockets: net.Socket[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const server = net.createServer((c) => sockets.push(c)); // accepts, never speaks TLS
        const address = loopback();
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(443, address, resolve);
        });
        silent.push(server);
        dns.a('mta-sts.slow.test', address);
      }
      dns.add('_mta-sts.slow.test', { type: RRTYPE.TXT, strings: [Buffer.from('v=STSv1; id=slow')] });
      const t0 = Date.now();
      const got = await sts.lookup('slow.test');
      const took = Date.now() - t0;
      assert.equal(got.policy, undefined);
      assert.match(got.problem ?? '', /policy of slow\.test \(id slow\) not fetched/);
      // Two addresses, one deadline: not 2 x FETCH_TIMEOUT_MS.
      assert.ok(took < FETCH_TIMEOUT_MS + 4000, `took ${took} ms`);
    } finally {
      for (const c of sockets) c.destroy();
      await Promise.all(silent.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    }
  });

  test('the _mta-sts record and the policy text are read as RFC 8461 §3.1 and §3.2 say', () => {
    assert.equal(stsRecordId(['v=STSv1; id=20160831085700Z;']), '20160831085700Z');
    assert.equal(stsRecordId(['v=spf1 -all', 'v=STSv1; id=abc']), 'abc');
    assert.equal(stsRecordId(['v=STSv1; id=a', 'v=STSv1; id=b']), undefined, 'two records: none');
    assert.equal(stsRecordId(['v=STSv1;']), undefined, 'no id');
    assert.equal(stsRecordId(['v=STSv1; id=has-dash']), undefined);
    assert.equal(stsRecordId(['v=STSv1 ; id=wsp']), 'wsp', '§3.1: WSP may come before the ";"');
    assert.equal(stsRecordId(['v=STSv1 ; id=a', 'v=STSv1; id=b']), undefined, 'two records, one with WSP: none');
    assert.equal(stsRecordId(['v=STSv10; id=a']), undefined);
    assert.throws(() => parsePolicy('version: STSv1\nmode: enforce\nmax_age: 10\n', 'x'), /no mx/);
    assert.throws(() => parsePolicy('version: STSv2\nmode: enforce\nmx: a.b\nmax_age: 10\n', 'x'), /version/);
    assert.throws(() => parsePolicy('version: STSv1\nmode: strict\nmx: a.b\nmax_age: 10\n', 'x'), /mode/);
    assert.throws(() => parsePolicy('version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 99999999999\n', 'x'), /max_age/);
    assert.deepEqual(parsePolicy('version: STSv1\nmode: none\nmax_age: 0\nfuture_key: ignored\n', 'x'), { id: 'x', mode: 'none', mx: [], maxAge: 0 });
    // §3.2 sts-policy-ext-name admits '-' and '.': such an extension is ignored, the policy stands.
    assert.deepEqual(parsePolicy('version: STSv1\r\nmode: enforce\r\nx-vendor.note: hi\r\nmx: mx.a.b\r\nmax_age: 60\r\n', 'x'), { id: 'x', mode: 'enforce', mx: ['mx.a.b'], maxAge: 60 });
    assert.throws(() => parsePolicy('version: STSv1\nmode: enforce\n-bad: x\nmx: a.b\nmax_age: 10\n', 'x'), /not 'key: value'/);
    assert.throws(() => parsePolicy(`version: STSv1\nmode: enforce\n${'k'.repeat(33)}: x\nmx: a.b\nmax_age: 10\n`, 'x'), /not 'key: value'/);
  });
});
