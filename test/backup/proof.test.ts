/**
 * The proof of issue 15: a backup taken under load restores to an appliance
 * that has everything acknowledged before the backup's snapshot, and nothing
 * of it twice. Real sockets and real clients throughout: the appliance is
 * the built dist/server/main.js in its own process (so it can be killed -9),
 * mail goes in with nodemailer, directory writes with ldapjs, the checks are
 * ldapsearch, dig and the files on disk; a stub upstream DNS sends far.test's
 * mail to a loopback next hop (smtp-server) that defers (451) until the
 * restored appliance runs.
 *
 * 1. Load (SMTP: inbound to Maildirs, queued to Maildirs, to a domain on hold,
 *    to the next hop, mixed; LDAP: names added to a zone, one name's A record
 *    rewritten) runs while `dcmx backup DEST` runs, each acknowledgement timed.
 *    Then the appliance is killed -9, its data dir removed, `dcmx restore DEST`
 *    rebuilds it at another path (another machine) and it starts there; the
 *    held domain is made active and the next hop accepts. Asserted:
 *    - every LDAP write acknowledged before the snapshot (the manifest's
 *      `created`) has a change number at most the manifest's; every write at
 *      most that number is there (ldapsearch, dig), none after it: the restore
 *      is exactly the snapshot's prefix of the change log;
 *    - every zone's SOA serial is not lower than the highest served before the
 *      destroy; its DNSKEY set is the same (the keys came with the store);
 *    - every message acknowledged before the snapshot, and every recipient of
 *      the restored queue, is delivered exactly once (Maildirs by Message-ID
 *      and file name, the next hop by Message-ID), local deliveries made
 *      between the snapshot and the Maildir copy included; no message anywhere
 *      twice; nothing acknowledged after the backup ended comes back.
 * 2. A backup during which the appliance is killed -9 is either complete
 *    (exit 0, a manifest, `dcmx verify` passes, the restore starts and serves
 *    what was acknowledged before the backup began) or refused (non-zero, no
 *    manifest, `dcmx restore` refuses and writes nothing).
 * 3. A backup killed -9 itself (in its SQLite step, in its Maildir copy)
 *    leaves no manifest; `dcmx restore` (writing nothing) and `dcmx verify`
 *    refuse what it left.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { spawn, type ChildProcess } from 'node:child_process';
import {
  ADMIN_PASSWORD, DCMX_CLI, ldapaddAt, run, runDcmx, startSpawned, stopChild, tempDirs, testEnv, type RunResult, type SpawnedAppliance,
} from '../helpers';
import { track } from '../fixtures/children';
import { waitFor, waitForAsync } from '../fixtures/wait';
import { StubDns } from '../mta/stub-dns';
import { startNextHop, type NextHop } from '../mta/fixture';
import { section, soaSerial } from '../dns/fixture';
import {
  changeLog, changeNumbers, FAR, LdapLoad, mailFiles, MOD_NAME, sendLarge, setupLdif, SmtpLoad, ZONES, type LdapWrite, type SentMessage,
} from './load';

const tempDir = tempDirs('dcmx-proof-');
const running = new Set<SpawnedAppliance>();
/** The loads started: a test that fails half-way leaves them to the after hook, which stops them first. */
const loads = new Set<{ stop(): Promise<void> }>();
let dns: StubDns | undefined;
let hop: NextHop | undefined;
after(async () => {
  for (const l of loads) l.stop().catch(() => undefined);
  for (const a of running) await stopChild(a.child, 'SIGKILL');
  await Promise.all([...loads].map((l) => l.stop()));
  await hop?.close();
  await dns?.close();
});

/** The appliance's settings besides testEnv's: one serving thread, far.test through the stub to the next hop, retries every 2 s at most. */
function settings(): Record<string, string> {
  return {
    DCMX_THREADS: '1', DCMX_UPSTREAM_DNS: dns!.address, DCMX_RELAY_NETWORKS: '127.0.0.2/32', DCMX_SMTP_RELAY_PORT: String(hop!.port),
    DCMX_QUEUE_RETRY_MAX: '2',
  };
}

async function start(dataDir: string): Promise<SpawnedAppliance> {
  const a = await startSpawned(dataDir, settings());
  running.add(a);
  return a;
}

async function kill9(a: SpawnedAppliance): Promise<void> {
  await stopChild(a.child, 'SIGKILL');
  running.delete(a);
}

/** The `dcmx` CLI over `dataDir` with the appliance's settings. */
const dcmx = (dataDir: string, args: string[]): Promise<RunResult> => runDcmx(testEnv(dataDir, settings()), args);

/** A `dcmx backup DEST` run: its process, and when it started and ended (performance.now()). */
interface BackupRun {
  child: ChildProcess;
  startedAt: number;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; endedAt: number; stdout: string; stderr: string }>;
}

function backup(dataDir: string, dest: string): BackupRun {
  const child = track(spawn(process.execPath, [DCMX_CLI, 'backup', dest], { env: { ...process.env, ...testEnv(dataDir, settings()) }, stdio: ['ignore', 'pipe', 'pipe'] }));
  const startedAt = performance.now();
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; endedAt: number; stdout: string; stderr: string }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, endedAt: performance.now(), stdout, stderr })));
  return { child, startedAt, done };
}

/** GET /stats of a spawned appliance's admin API. */
/** The queue's counts in GET /stats: messages, and recipients by state. */
interface QueueCounts {
  messages: number;
  queued: number;
  held: number;
}

async function stats(a: SpawnedAppliance): Promise<{ queue: QueueCounts }> {
  const res = await fetch(`http://127.0.0.1:${a.ports.http}/stats`);
  return (await res.json()) as { queue: QueueCounts };
}

/** Resolves once `done` holds of the appliance's queue counts (GET /stats); else fails with what `dcmx queue list` shows. */
async function queueWait(a: SpawnedAppliance, dataDir: string, what: string, done: (q: QueueCounts) => boolean): Promise<void> {
  try {
    await waitForAsync(what, async () => done((await stats(a)).queue), 30_000, 250);
  } catch (e) {
    const q = await dcmx(dataDir, ['queue', 'list']);
    throw new Error(`${(e as Error).message}; dcmx queue list:\n${q.stdout}${q.stderr}\nnext hop: ${hop!.received.length} received`);
  }
}

/** The last change number, from GET /health. */
async function lastChange(a: SpawnedAppliance): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${a.ports.http}/health`);
  return ((await res.json()) as { lastChangeNumber: number }).lastChangeNumber;
}

/** dig at the appliance, with several questions in one run (`[name, type]` pairs): the ANSWER lines of all, whitespace made single spaces. */
async function dig(a: SpawnedAppliance, questions: [string, string][]): Promise<string[]> {
  const answers: string[] = [];
  // dig asks its questions in turn; a few hundred per process keeps the command line short.
  for (let i = 0; i < questions.length; i += 200) {
    const args = ['@127.0.0.1', '-p', String(a.ports.dns), '+norec', '+time=3', '+tries=2', '+noall', '+answer'];
    for (const [name, type] of questions.slice(i, i + 200)) args.push(name, type);
    const r = await run('dig', args);
    assert.equal(r.code, 0, r.stderr);
    answers.push(...r.stdout.split('\n').filter((l) => l && !l.startsWith(';')).map((l) => l.replace(/\s+/g, ' ').trim()));
  }
  return answers;
}

/** The SOA serial each zone of ZONES serves. */
async function serials(a: SpawnedAppliance): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const z of ZONES) {
    const r = await run('dig', ['@127.0.0.1', '-p', String(a.ports.dns), '+norec', '+time=3', '+tries=2', z, 'SOA']);
    const s = soaSerial(section(r.stdout, 'ANSWER').join('\n'));
    assert.ok(s > 0, `${z} SOA: ${r.stdout}`);
    out.set(z, s);
  }
  return out;
}

/** Each zone's DNSKEY records, sorted (TTLs as served). */
async function dnskeys(a: SpawnedAppliance): Promise<string[]> {
  return (await dig(a, ZONES.map((z) => [z, 'DNSKEY']))).filter((l) => / DNSKEY /.test(l)).sort();
}

/** The A records below dc=proof,dc=test (one level), by DN, as ldapsearch shows them. */
async function aRecords(a: SpawnedAppliance): Promise<Map<string, string>> {
  const r = await run('ldapsearch', ['-x', '-H', `ldap://127.0.0.1:${a.ports.ldap}`, '-D', 'cn=admin,o=internet', '-w', ADMIN_PASSWORD,
    '-LLL', '-o', 'ldif-wrap=no', '-b', 'dc=proof,dc=test,o=internet', '-s', 'one', '(aRecord=*)', 'aRecord']);
  assert.equal(r.code, 0, r.stderr);
  const out = new Map<string, string>();
  for (const block of r.stdout.split(/\n\n+/)) {
    const dn = /^dn: (.*)$/m.exec(block)?.[1];
    const aRec = /^aRecord: (.*)$/m.exec(block)?.[1];
    if (dn && aRec) out.set(dn.toLowerCase(), aRec);
  }
  return out;
}

/** The manifest of a backup tree, or undefined when it has none. */
function manifestOf(dest: string): { changeNumber: number; zones: Record<string, number>; created: string; queue?: Record<string, number> } | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dest, 'manifest.json'), 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** A directory's entries; none when it does not exist. */
function entries(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** Makes HELD active, as the administrator over LDAP. */
async function release(a: SpawnedAppliance): Promise<void> {
  const r = await run('ldapmodify', ['-x', '-H', `ldap://127.0.0.1:${a.ports.ldap}`, '-D', 'cn=admin,o=internet', '-w', ADMIN_PASSWORD],
    `dn: dc=held,dc=test,o=internet\nchangetype: modify\nreplace: mailDomainStatus\nmailDomainStatus: active\n`);
  assert.equal(r.code, 0, r.stderr);
}

/** The next hop's deliveries: Message-ID + ' ' + recipient → how many times. */
function hopCounts(h: NextHop): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of h.received) {
    const id = /^Message-ID:\s*(<[^>]*>)/im.exec(m.body)?.[1] ?? '?';
    for (const r of m.rcptTo) out.set(`${id} ${r.toLowerCase()}`, (out.get(`${id} ${r.toLowerCase()}`) ?? 0) + 1);
  }
  return out;
}

/** `load`, remembered for the after hook. */
function tracked<T extends { stop(): Promise<void> }>(load: T): T {
  loads.add(load);
  return load;
}

/** Starts the stub upstream and the next hop once; far.test's MX is the next hop on 127.0.0.1. The hop defers while `deferring` is set. */
let deferring = true;
async function outside(): Promise<void> {
  if (dns) return;
  dns = await StubDns.start();
  dns.mx(FAR, 10, `mail.${FAR}`).a(`mail.${FAR}`, '127.0.0.1');
  hop = await startNextHop();
  hop.rcpt = () => (deferring ? { code: 451, text: '4.3.0 not now (the backup proof holds this)' } : undefined);
}

test('under SMTP and LDAP load, backup, destroy, restore, restart: everything acknowledged before the snapshot is there, once', { timeout: 120_000 }, async (t) => {
  await outside();
  deferring = true;
  const dataDir = tempDir();
  const dest = path.join(tempDir(), 'backup');
  let app = await start(dataDir);
  const setup = await ldapaddAt(app.ports.ldap, setupLdif());
  assert.equal(setup.code, 0, setup.stderr);
  const setupChange = await lastChange(app);

  // ---- load, and the backup in the middle of it
  const smtp = tracked(new SmtpLoad(app.ports.smtp, { sessions: 3, relayFrom: '127.0.0.2', tag: 'p' }));
  const writes = tracked(new LdapLoad(app.ports.ldap, { tag: 'p' }));
  await waitFor('the load under way', () => smtp.sent.length >= 30 && writes.writes.length >= 30, 30_000);
  const b = backup(dataDir, dest);
  const ended = await b.done;
  // The load goes on a little after the backup: what it acknowledges then must not come back.
  await new Promise((r) => setTimeout(r, 400));
  await smtp.stop();
  await writes.stop();
  assert.deepEqual(smtp.failures, [], 'every message accepted while the appliance ran');
  assert.deepEqual(writes.failures, [], 'every LDAP write accepted while the appliance ran');
  assert.equal(ended.code, 0, `dcmx backup failed:\n${ended.stdout}\n${ended.stderr}`);
  const manifest = manifestOf(dest);
  assert.ok(manifest, 'a complete backup has its manifest');
  const M = manifest.changeNumber;
  // The manifest's `created` is taken just before the snapshot's read transaction begins: what was acknowledged
  // before it was committed before it, so it is in the snapshot (a tighter bound than the command's start).
  // On this process's monotonic clock, with 2 ms for the two clocks' rounding.
  const snapshotAt = Date.parse(manifest.created) - performance.timeOrigin - 2;
  assert.ok(snapshotAt > b.startedAt - 5 && snapshotAt < ended.endedAt, `created ${manifest.created} is within the backup's run`);
  t.diagnostic(`backup: ${((ended.endedAt - b.startedAt) / 1000).toFixed(2)} s (snapshot ${((snapshotAt - b.startedAt) / 1000).toFixed(2)} s after its start), ` +
    `change number ${M}; ${`${ended.stdout}${ended.stderr}`.trim().split('\n').pop()}`);

  // ---- what the appliance served before the destroy
  const highest = await serials(app);
  const keysBefore = await dnskeys(app);
  const rows = await changeLog(app.ports.ldap, setupChange);
  for (const z of ZONES) assert.ok(manifest.zones[z] !== undefined && manifest.zones[z] <= highest.get(z)!, `${z}: manifest serial ${manifest.zones[z]}, served ${highest.get(z)}`);

  // ---- destroy, restore on "another machine" (another path: nothing may point into the old one), restart
  await kill9(app);
  fs.rmSync(dataDir, { recursive: true, force: true });
  const moved = path.join(tempDir(), 'data');
  const restored = await dcmx(moved, ['restore', dest]);
  assert.equal(restored.code, 0, `dcmx restore failed:\n${restored.stdout}\n${restored.stderr}`);
  // The snapshot's queue, read from the restored data dir before the appliance starts: each of its
  // recipients must be delivered exactly once. And the Maildirs as restored: a local delivery made
  // between the snapshot and the Maildir copy is there AND still queued (the appliance must see it).
  const listed = await dcmx(moved, ['queue', 'list', '--json']);
  assert.equal(listed.code, 0, listed.stderr);
  const snapshotQueue = JSON.parse(listed.stdout) as { id: string; recipients: { address: string }[] }[];
  assert.equal(snapshotQueue.length, manifest.queue?.messages, 'the restored queue holds the messages the manifest counts');
  const restoredMail = new Set(mailFiles(moved).map((f) => `${f.messageId} ${f.mailbox}`));
  deferring = false;
  app = await start(moved);
  // HELD leaves hold at once, while the restored queue's first attempts (which find it held) are under way.
  await release(app);
  await queueWait(app, moved, 'the restored queue to drain', (q) => q.messages === 0);

  // ---- the directory: exactly the snapshot's prefix of the writes
  const cn = changeNumbers(writes.writes, rows);
  const missing = writes.writes.filter((w) => cn.get(w) === undefined);
  assert.deepEqual(missing.map((w) => `${w.kind} ${w.dn} ${w.address}`), [], 'every acknowledged write is in the change log of the appliance that acknowledged it');
  const before = (w: LdapWrite) => w.ackAt < snapshotAt;
  const late = writes.writes.filter((w) => before(w) && cn.get(w)! > M);
  assert.deepEqual(late.map((w) => `${w.dn} #${cn.get(w)}`), [], `writes acknowledged before the snapshot are at or below its change number ${M}`);
  const inSnapshot = (w: LdapWrite) => cn.get(w)! <= M;
  const found = await aRecords(app);
  const adds = writes.writes.filter((w) => w.kind === 'add');
  const deletedIn = new Set(writes.writes.filter((w) => w.kind === 'delete' && inSnapshot(w)).map((w) => w.dn));
  // The names the snapshot holds: added at or below the change number, and not deleted at or below it.
  const held = adds.filter((w) => inSnapshot(w) && !deletedIn.has(w.dn));
  const lost = held.filter((w) => found.get(w.dn.toLowerCase()) !== w.address);
  assert.deepEqual(lost.map((w) => `${w.dn} #${cn.get(w)}`), [], 'every entry added (and not deleted) at or below the change number is restored');
  const extra = adds.filter((w) => !held.includes(w) && found.has(w.dn.toLowerCase()));
  assert.deepEqual(extra.map((w) => `${w.dn} #${cn.get(w)}`), [], 'no entry added after the change number, nor deleted at or below it, is restored');
  const mods = writes.writes.filter((w) => w.kind === 'modify' && inSnapshot(w)).sort((x, y) => cn.get(x)! - cn.get(y)!);
  const modExpected = mods.length ? mods[mods.length - 1].address : '10.1.0.0';
  assert.equal(found.get('dc=mod,dc=proof,dc=test,o=internet'), modExpected, `${MOD_NAME} holds the last A record written at or below ${M}`);

  // ---- the zones: every answer, serials forward, the same keys
  // Every name ever added is asked: those the snapshot does not hold must not answer.
  const expectedA = [...held.map((w) => `${w.name}. A ${w.address}`), `${MOD_NAME}. A ${modExpected}`].sort();
  const answered = await dig(app, [...adds.map((w) => [w.name, 'A'] as [string, string]), [MOD_NAME, 'A']]);
  const gotA = answered.filter((l) => / IN A /.test(l)).map((l) => l.replace(/ \d+ IN A /, ' A ')).sort();
  assert.deepEqual(gotA, expectedA, 'dig answers every name and address of the snapshot');
  const after = await serials(app);
  for (const z of ZONES) assert.ok(after.get(z)! >= highest.get(z)!, `${z}: serial ${after.get(z)} after the restore, ${highest.get(z)} served before the destroy`);
  assert.deepEqual(await dnskeys(app), keysBefore, 'the zones are signed with the same keys');

  // ---- the mail: once each, to every recipient
  const files = mailFiles(moved);
  const perMailbox = new Map<string, number>();
  for (const f of files) perMailbox.set(`${f.messageId} ${f.mailbox}`, (perMailbox.get(`${f.messageId} ${f.mailbox}`) ?? 0) + 1);
  const hopped = hopCounts(hop!);
  const twice = [...perMailbox, ...hopped].filter(([, n]) => n > 1).map(([k, n]) => `${k} x${n}`);
  assert.deepEqual(twice, [], 'no message delivered twice (Maildirs by Message-ID, the next hop by Message-ID)');
  const names = files.map((f) => `${f.mailbox}/${f.file.replace(/^(new|cur)\//, '').replace(/:2,.*$/, '')}`);
  assert.equal(new Set(names).size, names.length, 'no Maildir file name twice (new/ and cur/ together)');
  const count = (m: SentMessage) => [
    ...m.local.map((r) => perMailbox.get(`${m.messageId} ${r}`) ?? 0),
    ...m.far.map((r) => hopped.get(`${m.messageId} ${r}`) ?? 0),
  ];
  const beforeBackup = smtp.sent.filter((m) => m.ackAt < snapshotAt);
  const notOnce = beforeBackup.filter((m) => count(m).some((n) => n !== 1));
  assert.deepEqual(notOnce.map((m) => `${m.messageId} ${m.kind} ${count(m).join(',')}`), [], 'every message acknowledged before the snapshot is delivered once to each recipient');
  const byQueueId = new Map(smtp.sent.map((m) => [m.queueId, m]));
  const strangers = snapshotQueue.filter((q) => !byQueueId.has(q.id)).map((q) => q.id);
  assert.deepEqual(strangers, [], 'every message of the restored queue is one the load sent');
  const queued = snapshotQueue.flatMap((q) => q.recipients.map((r) => ({ m: byQueueId.get(q.id)!, rcpt: r.address.toLowerCase() })));
  const timesDelivered = ({ m, rcpt }: { m: SentMessage; rcpt: string }) =>
    m.far.includes(rcpt) ? hopped.get(`${m.messageId} ${rcpt}`) ?? 0 : perMailbox.get(`${m.messageId} ${rcpt}`) ?? 0;
  const queuedNotOnce = queued.filter((q) => timesDelivered(q) !== 1);
  assert.deepEqual(queuedNotOnce.map((q) => `${q.m.messageId} ${q.rcpt} x${timesDelivered(q)}`), [], 'every recipient queued in the snapshot is delivered exactly once');
  const windowCases = queued.filter((q) => restoredMail.has(`${q.m.messageId} ${q.rcpt}`)).length;
  const afterBackup = smtp.sent.filter((m) => m.ackAt > ended.endedAt);
  const back = afterBackup.filter((m) => count(m).some((n) => n !== 0));
  assert.deepEqual(back.map((m) => `${m.messageId} ${m.kind}`), [], 'nothing acknowledged after the backup ended comes back');
  const during = smtp.sent.filter((m) => m.ackAt >= snapshotAt && m.ackAt <= ended.endedAt);
  const kinds = (xs: { kind: string }[]) => Object.entries(Object.groupBy(xs, (x) => x.kind)).map(([k, v]) => `${k} ${v!.length}`).join(', ');
  t.diagnostic(`SMTP: ${beforeBackup.length} acknowledged before the snapshot (${kinds(beforeBackup)}), ${during.length} between it and the backup's end ` +
    `(${during.filter((m) => count(m).every((n) => n === 1)).length} restored), ${afterBackup.length} after its end`);
  t.diagnostic(`queue in the snapshot: ${snapshotQueue.length} messages, ${queued.length} recipients, ${windowCases} of them delivered to a Maildir ` +
    `between the snapshot and the Maildir copy (in both, delivered once)`);
  t.diagnostic(`LDAP: ${writes.writes.length} writes (${kinds(writes.writes)}), ${writes.writes.filter(inSnapshot).length} at or below ${M}; ` +
    `serials ${ZONES.map((z) => `${z} ${manifest.zones[z]} (backup) ${highest.get(z)} (destroy) ${after.get(z)} (restored)`).join('; ')}`);
  await kill9(app);
});

test('a backup while the appliance is killed -9 is complete or refused; a backup killed -9 leaves nothing restore or verify accepts', { timeout: 120_000 }, async (t) => {
  await outside();
  deferring = true;
  const dataDir = tempDir();
  let app = await start(dataDir);
  const setup = await ldapaddAt(app.ports.ldap, setupLdif());
  assert.equal(setup.code, 0, setup.stderr);

  // ---- the appliance killed -9 once the backup has begun, under load
  const smtp = tracked(new SmtpLoad(app.ports.smtp, { sessions: 2, relayFrom: '127.0.0.2', tag: 'k', stopOnFailure: true }));
  const writes = tracked(new LdapLoad(app.ports.ldap, { tag: 'k', stopOnFailure: true }));
  await waitFor('the load under way', () => smtp.sent.length >= 10 && writes.writes.length >= 20, 30_000);
  const dest = path.join(tempDir(), 'backup');
  const b = backup(dataDir, dest);
  await waitFor('the backup to begin writing', () => entries(dest).length > 0 || b.child.exitCode !== null, 30_000, 1);
  await kill9(app);
  const ended = await b.done;
  await smtp.stop();
  await writes.stop();
  const manifest = manifestOf(dest);
  const target = path.join(tempDir(), 'restored');
  if (ended.code === 0) {
    assert.ok(manifest, `exit 0 without a manifest:\n${ended.stdout}\n${ended.stderr}`);
    // verify is given the backup's path; its data dir (unused) is a directory of its own, not the restore's target.
    const v = await runDcmx(testEnv(tempDir(), settings()), ['verify', dest]);
    assert.equal(v.code, 0, `dcmx verify of the backup:\n${v.stdout}\n${v.stderr}`);
    const r = await dcmx(target, ['restore', dest]);
    assert.equal(r.code, 0, `dcmx restore:\n${r.stdout}\n${r.stderr}`);
    app = await start(target);
    const found = await aRecords(app);
    const lost = writes.writes.filter((w) => w.kind === 'add' && w.ackAt < b.startedAt && !writes.deleting.has(w.dn) && found.get(w.dn.toLowerCase()) !== w.address);
    assert.deepEqual(lost.map((w) => w.dn), [], 'the restored appliance has every entry acknowledged before the backup began (and never deleted)');
    await kill9(app);
    t.diagnostic(`appliance killed -9 during the backup: the backup completed (change number ${manifest.changeNumber}), verified and restored`);
  } else {
    assert.equal(manifest, undefined, `a failed backup (${ended.code ?? ended.signal}) left a manifest`);
    const r = await dcmx(target, ['restore', dest]);
    assert.notEqual(r.code, 0, `dcmx restore accepted a backup without a manifest:\n${r.stdout}`);
    assert.deepEqual(entries(path.dirname(target)), [], 'the refused restore wrote nothing (nor a work dir beside the data dir)');
    t.diagnostic(`appliance killed -9 during the backup: the backup was refused (exit ${ended.code}: ${ended.stderr.trim().split('\n').pop()})`);
  }

  // ---- the backup itself killed -9: in its SQLite step, and in its Maildir copy
  app = await start(dataDir);
  // Some megabytes of Maildir, so that the backup is still copying when it is killed.
  await sendLarge(app.ports.smtp, 8, 2 * 1024 * 1024);
  const phases: [string, (dest: string) => boolean][] = [
    ['as soon as it has begun writing', (d) => entries(d).length > 0],
    ['once it copies the Maildirs', (d) => entries(path.join(d, 'mail')).length > 0],
  ];
  for (const [when, begun] of phases) {
    const dest2 = path.join(tempDir(), 'backup');
    const b2 = backup(dataDir, dest2);
    await waitFor(`the backup to be under way (${when})`, () => begun(dest2) || b2.child.exitCode !== null, 30_000, 1);
    b2.child.kill('SIGKILL');
    const ended2 = await b2.done;
    assert.equal(ended2.signal, 'SIGKILL', `the backup ended before it was killed ${when} (exit ${ended2.code}): make the data dir larger`);
    assert.equal(manifestOf(dest2), undefined, `a backup killed ${when} has no manifest`);
    const target2 = path.join(tempDir(), 'restored');
    const r2 = await dcmx(target2, ['restore', dest2]);
    assert.notEqual(r2.code, 0, `dcmx restore accepted a backup killed ${when}:\n${r2.stdout}`);
    assert.deepEqual(entries(path.dirname(target2)), [], 'the refused restore wrote nothing (nor a work dir beside the data dir)');
    const v2 = await runDcmx(testEnv(tempDir(), settings()), ['verify', dest2]);
    assert.notEqual(v2.code, 0, `dcmx verify accepted a backup killed ${when}:\n${v2.stdout}`);
    t.diagnostic(`backup killed -9 ${when}, with ${entries(dest2).join(', ')} written: restore exit ${r2.code}, verify exit ${v2.code}`);
  }
  await kill9(app);
});
