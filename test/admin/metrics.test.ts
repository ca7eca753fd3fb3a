/**
 * GET /metrics and the log a security tool reads, end to end: the built
 * appliance runs in its own process (two serving threads, DCMX_LOG_LEVEL=info),
 * real clients drive it (ldapsearch, ldapwhoami, dig, swaks, and AUTH over
 * STARTTLS from the SMTP fixture), then
 * - /metrics moved the counters of that traffic, and `promtool check
 *   metrics` accepts the body; a client outside DCMX_HTTP_ALLOW gets 403;
 * - the log is on stdout (stderr has no log line), with one line per
 *   message received, per refused recipient, per relay denial and per failed
 *   AUTH and bind, never the password tried; `fail2ban-regex` with the
 *   filter kept in contrib/fail2ban finds every failed authentication in it,
 *   with the client's address, and nothing else.
 * Then, in-process: counters never go back when a serving thread dies.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import {
  ADMIN_PASSWORD, ldapaddAt, run, runDcmx, startSpawned, startTestAppliance, stopChild, tempDirs, testEnv, type SpawnedAppliance,
} from '../helpers';
import { addUser, domainStatus, RawSmtp, swaks } from '../mta/fixture';
import { digRunner, status } from '../dns/fixture';
import { waitFor, waitForAsync } from '../fixtures/wait';
import { track } from '../fixtures/children';
import { spawnUnit, UNIT_IDENTITY } from '../mta/unit';
import { StubDns } from '../mta/stub-dns';

const newDir = tempDirs('dcmx-metrics-');
/** The filter the README gives for fail2ban. */
const FILTER = path.resolve(__dirname, '..', '..', '..', 'contrib', 'fail2ban', 'dcmx.conf');
/** Passwords tried and refused: none may appear in the log. */
const WRONG_BIND = 'wrong-bind-pw-5w7c';
const WRONG_AUTH = 'wrong-auth-pw-9k2q';

/** USER_LDIF's mail domain example.org made a zone: DNS answers for it. */
const ZONE = `dn: dc=example,dc=org,o=internet
changetype: modify
add: sOARecord
sOARecord: ns1.example.org. hostmaster.example.org. 100 3600 900 604800 60
-
add: nSRecord
nSRecord: ns1.example.org.
`;

let a: SpawnedAppliance;
let dataDir: string;
before(async () => {
  dataDir = newDir();
  a = await startSpawned(dataDir, { DCMX_THREADS: '2', DCMX_LOG_LEVEL: 'info', DCMX_HTTP_ALLOW: '127.0.0.1/32', ...UNIT_IDENTITY.env });
  await addUser(a.ports.ldap);
  const id = await ldapaddAt(a.ports.ldap, `dn: ou=services,o=internet\nobjectClass: organizationalUnit\nou: services\n\n${UNIT_IDENTITY.ldif}`);
  assert.equal(id.code, 0, id.stderr);
  const r = await run('ldapmodify', ['-x', '-H', `ldap://127.0.0.1:${a.ports.ldap}`, '-D', 'cn=admin,o=internet', '-w', ADMIN_PASSWORD], ZONE);
  assert.equal(r.code, 0, r.stderr);
});
after(async () => {
  if (a) await stopChild(a.child);
});

/** GET `p` on the admin port of 127.0.0.1 (or `o.host`) from `o.localAddress`: status, content type, body. */
function get(port: number, p: string, o: { localAddress?: string; headers?: Record<string, string>; host?: string } = {}): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: o.host ?? '127.0.0.1', port, path: p, localAddress: o.localAddress, headers: o.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
  });
}

/** The samples of an exposition: `name{labels}` (labels as written) → value. */
function samples(body: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of body.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** The value of one sample, 0 when absent. */
function value(s: Map<string, number>, name: string, labels: Record<string, string> = {}): number {
  const l = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',');
  return s.get(l ? `${name}{${l}}` : name) ?? 0;
}

async function scrape(port = a.ports.http, host?: string): Promise<Map<string, number>> {
  const r = await get(port, '/metrics', { host });
  assert.equal(r.status, 200, r.body);
  return samples(r.body);
}

test('real traffic moves the counters of /metrics, and promtool accepts it', async () => {
  const before = await scrape();
  const ldap = `ldap://127.0.0.1:${a.ports.ldap}`;
  // LDAP: a search as the administrator (bind, search, unbind), a bind with a wrong password.
  const s = await run('ldapsearch', ['-x', '-H', ldap, '-D', 'cn=admin,o=internet', '-w', ADMIN_PASSWORD, '-b', 'o=internet', '-s', 'base']);
  assert.equal(s.code, 0, s.stderr);
  const w = await run('ldapwhoami', ['-x', '-H', ldap, '-D', 'cn=admin,o=internet', '-w', WRONG_BIND]);
  assert.equal(w.code, 49, w.stderr);
  // DNS: MX over UDP and TCP, a name that does not exist, a zone not ours.
  const dig = digRunner(a.ports.dns);
  assert.equal(status((await dig('MX', 'example.org')).stdout), 'NOERROR');
  assert.equal(status((await dig('+tcp', 'SOA', 'example.org')).stdout), 'NOERROR');
  assert.equal(status((await dig('A', 'nowhere.example.org')).stdout), 'NXDOMAIN');
  assert.equal(status((await dig('TXT', 'example.net')).stdout), 'REFUSED');
  // A zone transfer (TCP), refused: DCMX_AXFR_ALLOW is empty.
  assert.match((await dig('AXFR', 'example.org')).stdout, /Transfer failed/);
  // SMTP: a message to the user, an unknown user, a domain not hosted (relay), a failed AUTH.
  assert.equal((await swaks(a.ports.smtp, { to: 'user@example.org' })).code, 0);
  assert.match((await swaks(a.ports.smtp, { to: 'nobody@example.org', quitAfter: 'RCPT' })).replyTo('RCPT TO') ?? '', /^550 5\.1\.1/);
  assert.match((await swaks(a.ports.smtp, { to: 'someone@elsewhere.example', quitAfter: 'RCPT' })).replyTo('RCPT TO') ?? '', /^550 5\.7\.1/);
  // AUTH needs TLS first (RFC 4954 §4); swaks would need Net::SSLeay for it.
  const { client, greeting } = await RawSmtp.connect(a.ports.smtp);
  try {
    assert.equal(greeting.code, 220);
    assert.equal((await client.cmd('EHLO client.test')).code, 250);
    await client.starttls();
    assert.equal((await client.cmd('EHLO client.test')).code, 250);
    const auth = await client.cmd(`AUTH PLAIN ${Buffer.from(`\0user@example.org\0${WRONG_AUTH}`).toString('base64')}`);
    assert.equal(auth.code, 535);
    assert.match(auth.raw, /5\.7\.8/);
  } finally {
    client.destroy();
  }

  // The message is delivered to its Maildir (the main thread's delivery).
  let after = await scrape();
  await waitForAsync('the delivery counted', async () => {
    after = await scrape();
    return value(after, 'dcmx_deliveries_total', { channel: 'local', outcome: 'delivered' }) >= 1;
  }, 15_000);
  const moved = (name: string, labels: Record<string, string> = {}, by = 1) =>
    assert.ok(value(after, name, labels) - value(before, name, labels) >= by, `${name}${JSON.stringify(labels)}: ${value(before, name, labels)} -> ${value(after, name, labels)}`);
  moved('dcmx_ldap_operations_total', { op: 'bind', result: 'success' });
  moved('dcmx_ldap_operations_total', { op: 'bind', result: 'invalidCredentials' });
  moved('dcmx_ldap_operations_total', { op: 'search', result: 'success' });
  moved('dcmx_ldap_operations_total', { op: 'unbind', result: 'none' });
  moved('dcmx_ldap_operation_duration_seconds_count', { op: 'search' });
  moved('dcmx_ldap_operation_duration_seconds_bucket', { op: 'search', le: '+Inf' });
  moved('dcmx_ldap_connections_total', {}, 2);
  moved('dcmx_dns_queries_total', { transport: 'udp', qtype: 'MX', rcode: 'NOERROR' });
  moved('dcmx_dns_queries_total', { transport: 'tcp', qtype: 'SOA', rcode: 'NOERROR' });
  moved('dcmx_dns_queries_total', { transport: 'udp', qtype: 'A', rcode: 'NXDOMAIN' });
  moved('dcmx_dns_queries_total', { transport: 'udp', qtype: 'TXT', rcode: 'REFUSED' });
  moved('dcmx_dns_queries_total', { transport: 'tcp', qtype: 'AXFR', rcode: 'REFUSED' });
  moved('dcmx_smtp_sessions_total', {}, 4);
  moved('dcmx_smtp_recipients_total', { outcome: 'accepted' });
  moved('dcmx_smtp_recipients_total', { outcome: 'rejected' }, 2);
  moved('dcmx_smtp_relay_denied_total');
  moved('dcmx_smtp_messages_total', { outcome: 'accepted' });
  moved('dcmx_smtp_auth_failures_total');
  moved('dcmx_deliveries_total', { channel: 'local', outcome: 'delivered' });
  moved('dcmx_directory_cache_misses_total');
  assert.equal(value(after, 'dcmx_serving_threads'), 2);
  assert.ok(value(after, 'dcmx_changelog_last_change_number') >= 4, 'the entries added are in the change log');
  for (const thread of ['1', '2']) assert.ok(after.has(`dcmx_changelog_follower_lag{kind="thread",thread="${thread}",ordinal="0"}`), `thread ${thread}'s lag`);
  for (const status of ['queued', 'deferred', 'active', 'hold']) assert.ok(after.has(`dcmx_queue_messages{status="${status}"}`), status);
  assert.ok(after.has('dcmx_process_resident_memory_bytes'), 'the default process metrics');
  // No label names a domain, an address or a DN.
  assert.doesNotMatch([...after.keys()].join('\n'), /example|@|o=internet/);

  const body = await get(a.ports.http, '/metrics');
  assert.match(body.type, /^text\/plain; version=0\.0\.4/);
  const check = await run('promtool', ['check', 'metrics'], body.body);
  assert.equal(check.code, 0, `promtool check metrics:\n${check.stdout}${check.stderr}`);
});

test('/metrics answers only DCMX_HTTP_ALLOW, and only our Host', async () => {
  assert.equal((await get(a.ports.http, '/metrics', { localAddress: '127.0.0.2' })).status, 403);
  assert.equal((await get(a.ports.http, '/metrics', { localAddress: '127.0.0.1' })).status, 200);
  // A page whose name was rebound to our address (RFC 9110 §15.5.20).
  assert.equal((await get(a.ports.http, '/metrics', { headers: { host: 'evil.example' } })).status, 421);
});

test('the change-log lag of each follower, a remote transfer unit\'s and a Content Sync consumer\'s; the unit\'s own /metrics', async () => {
  // The unit relays the appliance's mailboxes to mx.dcmx.test (DCMX_DIRECTORY_HOST): its address, from a stub resolver.
  const dns = await StubDns.start();
  dns.a('mx.dcmx.test', '127.0.0.1');
  const unit = await spawnUnit({
    dir: newDir(), address: '127.0.0.2', hostname: 'unit.dcmx.test', appliance: { dir: dataDir, ldap: a.ports.ldap, smtp: a.ports.smtp },
    upstreamDns: dns.address, provisionAllow: '', provisioning: 'off', bind: UNIT_IDENTITY,
  });
  // ldapsearch as a Content Sync consumer in refreshAndPersist (RFC 4533 §3.4): it runs until killed.
  const consumer = track(spawn('ldapsearch', ['-x', '-H', `ldap://127.0.0.1:${a.ports.ldap}`, '-D', 'cn=admin,o=internet', '-w', ADMIN_PASSWORD,
    '-b', 'o=internet', '-E', 'sync=rp', '1.1'], { stdio: 'ignore' }));
  try {
    const lags = (s: Map<string, number>, kind: string) => [...s].filter(([k]) => k.startsWith(`dcmx_changelog_follower_lag{kind="${kind}"`));
    await waitForAsync('the unit and the consumer listed', async () => {
      const s = await scrape();
      return lags(s, 'unit').length === 1 && lags(s, 'consumer').length === 1;
    }, 20_000);
    const mod = await run('ldapmodify', ['-x', '-H', `ldap://127.0.0.1:${a.ports.ldap}`, '-D', 'cn=admin,o=internet', '-w', ADMIN_PASSWORD],
      'dn: uid=user,ou=people,dc=example,dc=org,o=internet\nchangetype: modify\nreplace: cn\ncn: Renamed User\n');
    assert.equal(mod.code, 0, mod.stderr);
    // Both follow the change at once: their lag is back to 0 (the last change number moved past what they had).
    const s = await waitForAsync('both followed the change', async () => {
      const s = await scrape();
      return [...lags(s, 'unit'), ...lags(s, 'consumer')].every(([, v]) => v === 0) && lags(s, 'unit').length === 1 ? s : undefined;
    }, 10_000);
    assert.ok(value(s, 'dcmx_changelog_last_change_number') > 0);
    assert.ok([...s.keys()].some((k) => /^dcmx_changelog_follower_backlog_bytes\{kind="unit",thread="[12]",ordinal="0"\}$/.test(k)));

    // The unit's own /metrics: a message for the appliance's user goes through its relay channel.
    assert.equal((await swaks(unit.smtp, { to: 'user@example.org', server: unit.address })).code, 0);
    const u = await waitForAsync('the unit relayed the message', async () => {
      const m = await scrape(unit.http, unit.address);
      return value(m, 'dcmx_deliveries_total', { channel: 'relay', outcome: 'delivered' }) === 1 ? m : undefined;
    }, 20_000);
    assert.equal(value(u, 'dcmx_smtp_messages_total', { outcome: 'accepted' }), 1);
    assert.equal(value(u, 'dcmx_unit_directory_reachable'), 1);
    assert.ok(value(u, 'dcmx_unit_directory_sync_total', { event: 'connect' }) >= 1);
    assert.ok(!u.has('dcmx_ldap_connections') && !u.has('dcmx_changelog_last_change_number'), 'a unit has no LDAP endpoint, no change clock');
    const body = await get(unit.http, '/metrics', { host: unit.address });
    const check = await run('promtool', ['check', 'metrics'], body.body);
    assert.equal(check.code, 0, `promtool check metrics (unit):\n${check.stdout}${check.stderr}`);
  } finally {
    consumer.kill();
    await stopChild(unit.child);
    await dns.close();
  }
});

/** The JSON log records the appliance wrote on stdout. */
function records(): Record<string, unknown>[] {
  return a.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('the log is on stdout: a line per message, refused recipient, relay denial, failed AUTH and bind; never the password', async () => {
  await waitFor('the failed AUTH logged', () => records().some((r) => r.event === 'auth_failed' && r.proto === 'smtp'), 5000);
  assert.doesNotMatch(a.errors(), /^\{/m, 'no log line on stderr');
  const recs = records();
  const received = recs.find((r) => r.event === 'message_received');
  assert.ok(received, 'message received');
  assert.equal(received.from, 'sender@client.test');
  assert.equal(received.nrcpt, 1);
  assert.equal(received.remote, '127.0.0.1');
  assert.ok(typeof received.id === 'string' && (received.size as number) > 0);
  const refused = recs.find((r) => r.event === 'recipient_refused');
  assert.ok(refused, 'recipient refused');
  assert.deepEqual([refused.to, refused.code, refused.status, refused.remote], ['nobody@example.org', 550, '5.1.1', '127.0.0.1']);
  assert.match(String(refused.reply), /User unknown/);
  const relay = recs.find((r) => r.event === 'relay_denied');
  assert.ok(relay, 'relay denied');
  assert.deepEqual([relay.to, relay.code, relay.status, relay.remote], ['someone@elsewhere.example', 550, '5.7.1', '127.0.0.1']);
  const failures = recs.filter((r) => r.event === 'auth_failed');
  assert.deepEqual(failures.map((r) => [r.proto, r.remote]).sort(), [['ldap', '127.0.0.1'], ['smtp', '127.0.0.1']]);
  assert.equal(failures.find((r) => r.proto === 'ldap')!.dn, 'cn=admin,o=internet');
  assert.equal(failures.find((r) => r.proto === 'smtp')!.user, 'user@example.org');
  for (const secret of [WRONG_BIND, WRONG_AUTH, ADMIN_PASSWORD]) assert.ok(!a.output().includes(secret), `the log shows ${secret}`);
  assert.doesNotMatch(a.output(), /\{(PBKDF2|SSHA|CRYPT|ARGON2)/i, 'no password hash');
});

test('fail2ban-regex with contrib/fail2ban/dcmx.conf finds each failed authentication and its client, nothing else', async () => {
  const log = path.join(newDir(), 'dcmx-out.log');
  const lines = a.output().split('\n').filter((l) => l.startsWith('{'));
  fs.writeFileSync(log, lines.join('\n') + '\n');
  const r = await run('fail2ban-regex', ['--out', 'ip', log, FILTER]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const ips = r.stdout.split('\n').filter(Boolean);
  const expected = lines.filter((l) => l.includes('"event":"auth_failed"')).length;
  assert.ok(expected >= 2);
  assert.deepEqual(ips, Array(expected).fill('127.0.0.1'), r.stdout + r.stderr);
});

test('the queue by status, as `dcmx queue list` shows it: a message waiting for its domain is deferred, then on hold', async () => {
  await domainStatus(a.ports.ldap, 'hold');
  const before = records().filter((r) => r.event === 'message_received').length;
  assert.equal((await swaks(a.ports.smtp, { to: 'user@example.org' })).code, 0);
  const rec = await waitFor('the message logged', () => records().filter((r) => r.event === 'message_received')[before]);
  let s = await waitForAsync('the message deferred (its domain on hold)', async () => {
    const m = await scrape();
    return value(m, 'dcmx_queue_messages', { status: 'deferred' }) === 1 ? m : undefined;
  });
  assert.equal(value(s, 'dcmx_queue_recipients', { status: 'deferred' }), 1);
  // The operator holds it with the queue tools (another process): it is counted on hold, its age growing.
  const held = await runDcmx(testEnv(dataDir), ['queue', 'hold', String(rec.id)]);
  assert.equal(held.code, 0, held.stderr);
  await new Promise((r) => setTimeout(r, 1100));
  s = await scrape();
  assert.equal(value(s, 'dcmx_queue_messages', { status: 'hold' }), 1);
  assert.equal(value(s, 'dcmx_queue_messages', { status: 'deferred' }), 0);
  assert.ok(value(s, 'dcmx_queue_oldest_message_age_seconds', { status: 'hold' }) >= 1);
  assert.equal(value(s, 'dcmx_queue_oldest_message_age_seconds', { status: 'deferred' }), 0);
});

test('counters never go back when a serving thread dies and is replaced', async () => {
  const t = await startTestAppliance({ DCMX_THREADS: '2' });
  try {
    const dig = digRunner(t.app.ports.dns);
    for (let i = 0; i < 20; i++) await dig('SOA', 'example.org');
    const first = await scrape(t.app.ports.http);
    const queries = (s: Map<string, number>) => [...s].filter(([k]) => k.startsWith('dcmx_dns_queries_total')).reduce((n, [, v]) => n + v, 0);
    assert.ok(queries(first) >= 20, `${queries(first)} queries counted`);
    await t.app.threads!.kill(1);
    await waitFor('thread 1 replaced', () => t.app.threads!.listening() === 2, 15_000);
    const second = await scrape(t.app.ports.http);
    assert.equal(value(second, 'dcmx_serving_thread_restarts_total', { thread: '1' }), 1);
    for (const [k, v] of first) {
      if (/_total(\{|$)|_count(\{|$)|_bucket\{|_sum(\{|$)/.test(k) && !k.startsWith('dcmx_process_') && !k.startsWith('dcmx_nodejs_')) {
        assert.ok((second.get(k) ?? 0) >= v, `${k}: ${v} -> ${second.get(k)}`);
      }
    }
    await dig('SOA', 'example.org');
    assert.ok(queries(await scrape(t.app.ports.http)) > queries(first));
  } finally {
    await t.close();
  }
});
