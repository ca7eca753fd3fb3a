/**
 * A directory reader on a second, read-only SQLite connection, in the same
 * thread as the running appliance (the one writer): an LDAP and a DNS
 * endpoint answer through it, its writes go to the appliance's writer as
 * data (each command and its outcome cross a structured clone, as they would
 * a postMessage), and it follows the writer's change clock. What serving
 * threads will be, without the threads (those tests are the threads' own).
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import {
  adminArgs, ADMIN_PASSWORD, caughtUp, ldapResultCode, run, runDcmx, startTestAppliance, tempDirs, testEnv, type RunResult, type TestAppliance,
} from '../helpers';
import { silentLogger } from '../../server/log';
import { storePath } from '../../server/data-dir';
import { openDirectory, type Services } from '../../server/directory/open';
import { ChangeClock } from '../../server/directory/change-clock';
import { LocalWriter } from '../../server/directory/writes';
import { Provisioner } from '../../server/directory/provision';
import { ReaderWriteError } from '../../server/directory/errors';
import { StorageError } from '../../storage/db';
import { startLdapServer, type LdapEndpoint } from '../../server/ldap/server';
import { startDnsServer, type DnsEndpoint } from '../../server/dns/server';
import { digRunner, exampleOrgZone, section, status } from '../dns/fixture';
import { attrs, cloningWriter } from './fixture';

let t: TestAppliance;
let reader: Services;
let forward: ReturnType<typeof cloningWriter>;
let ldap: LdapEndpoint;
let dns: DnsEndpoint;
const SUFFIX = 'o=internet';
const newDir = tempDirs('dcmx-reader-');

/** Opens a reader over the appliance's store, following its clock through the clock's shared buffer. */
function openReader(extra: { extraIndexes?: string[]; file?: string } = {}): Services {
  const c = t.config;
  return openDirectory({
    file: extra.file ?? storePath(t.dataDir), suffix: c.suffix, adminDN: c.adminDN, extraIndexes: extra.extraIndexes ?? c.ldap.extraIndexes,
    passwords: c.passwords, throttle: c.throttle, readOnly: true, clock: new ChangeClock(t.app.clock.buffer),
  });
}

const readerDig = digRunner(() => dns.port);
const writerDig = digRunner(() => t.app.ports.dns);
const readerUrl = () => `ldap://127.0.0.1:${ldap.port}`;
const asAdmin = (url: string) => ['-x', '-H', url, '-D', t.adminDN, '-w', ADMIN_PASSWORD];
const answer = async (dig: typeof readerDig, name: string, type: string) => {
  const r = await dig(name, type);
  return { status: status(r.stdout), answer: section(r.stdout, 'ANSWER').map((l) => l.replace(/\s+/g, ' ')), raw: r.stdout + r.stderr };
};

before(async () => {
  t = await startTestAppliance();
  const zone = await run('ldapadd', adminArgs(t), exampleOrgZone());
  assert.equal(zone.code, 0, zone.stderr);
  reader = openReader();
  forward = cloningWriter(t.app.writer);
  reader.directory.useWriter(forward);
  const c = t.config.ldap;
  ldap = await startLdapServer(reader.directory, {
    host: '127.0.0.1', port: 0, maxPdu: c.maxPdu, maxDepth: c.maxDepth, idleTimeout: c.idleTimeout, pduTimeout: c.pduTimeout,
    maxConnections: c.maxConnections, writer: forward, provisioning: true,
  }, silentLogger());
  dns = await startDnsServer(reader.zones, { host: '127.0.0.1', port: 0, axfrAllow: [] }, silentLogger());
});
after(async () => {
  await ldap?.close();
  await dns?.close();
  reader?.directory.store.close();
  await t?.close();
});

test('the reader is a read-only connection of its own, and opening it publishes nothing', () => {
  assert.notEqual(reader.directory.store.db, t.app.directory.store.db);
  assert.equal(reader.directory.readOnly, true);
  assert.equal(reader.directory.store.db.readonly, true);
  assert.equal(t.app.directory.readOnly, false);
  const before = t.app.clock.current();
  const another = openReader();
  try {
    assert.equal(t.app.clock.current(), before, 'a reader never publishes');
    assert.equal(another.directory.applied, before, 'it starts where the clock stands');
  } finally {
    another.directory.store.close();
  }
});

test('a write through the writer is seen by the reader as soon as its promise resolves: directory, DNS, LDAP', async () => {
  // Warm the reader's DNS answer cache with the negative answer first.
  assert.equal((await answer(readerDig, 'fresh.example.org', 'A')).status, 'NXDOMAIN');
  const r = await t.app.writer.execute({
    kind: 'add', who: t.app.directory.systemIdentity(), dn: `dc=fresh,dc=example,dc=org,${SUFFIX}`,
    attrs: attrs({ objectClass: 'dNSDomain2', dc: 'fresh', aRecord: '192.0.2.71' }),
  });
  assert.equal(t.app.clock.current(), t.app.directory.changeRange().last, 'published before the promise resolved');
  assert.ok(t.app.clock.current() > r.changeNumber, 'the zone\'s serial bump, after the add, is published too');
  // No wait of any kind: the next read on the reader follows the clock first.
  reader.directory.sync();
  assert.equal(reader.directory.applied, t.app.clock.current());
  assert.ok(reader.directory.get(reader.directory.systemIdentity(), `dc=fresh,dc=example,dc=org,${SUFFIX}`));
  assert.equal(reader.zones.version(), t.app.clock.current(), 'the zone view reflects the serial bump');
  const a = await answer(readerDig, 'fresh.example.org', 'A');
  assert.deepEqual(a.answer, ['fresh.example.org. 300 IN A 192.0.2.71'], a.raw);
  const s = await run('ldapsearch', [...asAdmin(readerUrl()), '-LLL', '-b', `dc=fresh,dc=example,dc=org,${SUFFIX}`, '-s', 'base', 'aRecord']);
  assert.match(s.stdout, /^aRecord: 192\.0\.2\.71$/m, s.stdout + s.stderr);
});

test('an LDAP write on the reader\'s endpoint goes to the writer as data; at its reply both DNS servers answer it', async () => {
  assert.equal((await answer(readerDig, 'via-reader.example.org', 'A')).status, 'NXDOMAIN');
  assert.equal((await answer(writerDig, 'via-reader.example.org', 'A')).status, 'NXDOMAIN');
  const sent = forward.sent.length;
  const add = await run('ldapadd', asAdmin(readerUrl()), `dn: dc=via-reader,dc=example,dc=org,${SUFFIX}\nobjectClass: dNSDomain2\ndc: via-reader\naRecord: 192.0.2.72\n`);
  assert.equal(add.code, 0, add.stderr);
  assert.deepEqual(forward.sent.slice(sent), ['add'], 'the add went to the writer as one command');
  for (const dig of [readerDig, writerDig]) {
    const a = await answer(dig, 'via-reader.example.org', 'A');
    assert.deepEqual(a.answer, ['via-reader.example.org. 300 IN A 192.0.2.72'], a.raw);
  }
  // And the other way: a write on the appliance's own endpoint, then the reader's cached answer.
  const mod = await run('ldapmodify', adminArgs(t), `dn: dc=via-reader,dc=example,dc=org,${SUFFIX}\nchangetype: modify\nreplace: aRecord\naRecord: 192.0.2.73\n`);
  assert.equal(mod.code, 0, mod.stderr);
  const a = await answer(readerDig, 'via-reader.example.org', 'A');
  assert.deepEqual(a.answer, ['via-reader.example.org. 300 IN A 192.0.2.73'], a.raw);
});

describe('errors come back from the writer as the same LDAP result', () => {
  const pw = crypto.randomBytes(6).toString('hex');
  const cases: { what: string; code: number; args?: string[]; tool?: string; input?: string; anonymous?: boolean }[] = [
    { what: 'no such parent (noSuchObject, matchedDN)', code: 32, input: `dn: cn=x,cn=nowhere,${SUFFIX}\nchangetype: add\nobjectClass: organizationalRole\ncn: x\n` },
    { what: 'an entry that exists (entryAlreadyExists)', code: 68, input: `dn: dc=org,${SUFFIX}\nchangetype: add\nobjectClass: domain\ndc: org\n` },
    { what: 'anonymous (insufficientAccessRights)', code: 50, anonymous: true, input: `dn: cn=anon,${SUFFIX}\nchangetype: add\nobjectClass: organizationalRole\ncn: anon\n` },
    { what: 'a non-leaf (notAllowedOnNonLeaf)', code: 66, input: `dn: dc=example,dc=org,${SUFFIX}\nchangetype: delete\n` },
    { what: 'the administrator (unwillingToPerform)', code: 53, input: `dn: cn=admin,${SUFFIX}\nchangetype: delete\n` },
    { what: 'a bad record (invalidAttributeSyntax)', code: 21, input: `dn: dc=www,dc=example,dc=org,${SUFFIX}\nchangetype: modify\nreplace: aRecord\naRecord: 300.1.2.3\n` },
    { what: 'no structural class (objectClassViolation)', code: 65, input: `dn: cn=noclass,${SUFFIX}\nchangetype: add\nobjectClass: simpleSecurityObject\ncn: noclass\nuserPassword: ${pw}\n` },
    { what: 'a renamed suffix (unwillingToPerform)', code: 53, input: `dn: ${SUFFIX}\nchangetype: modrdn\nnewrdn: o=elsewhere\ndeleteoldrdn: 1\n` },
    { what: 'a public suffix (ReservedDomainError)', code: 53, tool: 'ldapexop', args: ['1.3.6.1.4.1.32473.1.3.1:co.uk'] },
    { what: 'no domain name (InvalidDomainError)', code: 53, tool: 'ldapexop', args: ['1.3.6.1.4.1.32473.1.3.1:not a domain'] },
  ];
  for (const c of cases) {
    test(c.what, async () => {
      const at = async (url: string): Promise<RunResult> => {
        const auth = c.anonymous ? ['-x', '-H', url] : asAdmin(url);
        return run(c.tool ?? 'ldapmodify', [...auth, ...(c.args ?? [])], c.input);
      };
      const direct = await at(t.ldapUrl);
      const forwarded = await at(readerUrl());
      assert.equal(ldapResultCode(direct), c.code, direct.stderr);
      assert.equal(ldapResultCode(forwarded), c.code, forwarded.stderr);
      assert.equal(forwarded.stderr, direct.stderr, 'same result, matchedDN and diagnostic');
    });
  }
});

test('a bind on the reader rehashes an old scheme through the writer', async () => {
  const dn = `cn=oldhash,${SUFFIX}`;
  const salt = crypto.randomBytes(8);
  const ssha = `{SSHA}${Buffer.concat([crypto.createHash('sha1').update('old-secret').update(salt).digest(), salt]).toString('base64')}`;
  const add = await run('ldapadd', adminArgs(t), `dn: ${dn}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: oldhash\nuserPassword: ${ssha}\n`);
  assert.equal(add.code, 0, add.stderr);
  const sent = forward.sent.length;
  const who = await run('ldapwhoami', ['-x', '-H', readerUrl(), '-D', dn, '-w', 'old-secret']);
  assert.equal(who.code, 0, who.stderr);
  assert.deepEqual(forward.sent.slice(sent), ['rehash'], 'the bind read; its rehash was a command');
  const stored = t.app.directory.getByNdn(t.app.directory.normalize(dn))!.attrs.userPassword;
  assert.equal(stored.length, 1);
  assert.match(stored[0], /^\{CRYPT\}\$6\$/, 'rehashed in the configured scheme before the bind was answered');
  assert.equal((await run('ldapwhoami', ['-x', '-H', readerUrl(), '-D', dn, '-w', 'old-secret'])).code, 0, 'and the new hash binds');
});

test('a write of another process (dcmx) reaches the reader once the writer\'s watch publishes it', async () => {
  assert.equal((await answer(readerDig, 'cli.example.net', 'MX')).status, 'REFUSED', 'cached: no zone');
  const r = await runDcmx(testEnv(t.dataDir), ['domain', 'add', 'cli.example.net']);
  assert.equal(r.code, 0, r.stderr);
  // The event: the appliance's data_version watch publishes the CLI's last change on the clock.
  await caughtUp(t);
  const mx = await answer(readerDig, 'cli.example.net', 'MX');
  assert.deepEqual(mx.answer, ['cli.example.net. 3600 IN MX 10 mx.dcmx.test.'], mx.raw);
  assert.ok(reader.directory.applied >= t.app.directory.changeRange().last);
});

test('every write method of a reader throws, and nothing is written', async () => {
  const d = reader.directory;
  const admin = d.systemIdentity();
  const last = t.app.directory.changeRange().last;
  const count = t.app.directory.store.count();
  const entry = attrs({ objectClass: 'organizationalRole', cn: 'never' });
  const dn = `cn=never,${SUFFIX}`;
  const throwsReader = (f: () => unknown, what: string) => assert.throws(f, (e: unknown) => e instanceof ReaderWriteError && e.result === 'other' && /read-only directory reader/.test(e.message), what);
  throwsReader(() => d.addSync(admin, dn, entry), 'addSync');
  throwsReader(() => d.modifySync(admin, `dc=org,${SUFFIX}`, [{ op: 'add', type: 'description', values: ['x'] }]), 'modifySync');
  throwsReader(() => d.delete(admin, `dc=www,dc=example,dc=org,${SUFFIX}`), 'delete');
  throwsReader(() => d.modifyDN(admin, `dc=www,dc=example,dc=org,${SUFFIX}`, 'dc=w2', true), 'modifyDN');
  throwsReader(() => d.write(() => 1), 'write');
  throwsReader(() => d.replacePassword(admin, 'x', 'y'), 'replacePassword');
  throwsReader(() => d.publishCommitted(), 'publishCommitted');
  await assert.rejects(d.add(admin, dn, entry), ReaderWriteError);
  await assert.rejects(d.modify(admin, `dc=org,${SUFFIX}`, [{ op: 'add', type: 'description', values: ['x'] }]), ReaderWriteError);
  await assert.rejects(d.setPassword(admin, t.adminDN, 'new-password'), ReaderWriteError);
  await assert.rejects(d.bootstrap({ kind: 'configured', password: 'x' }), ReaderWriteError);
  // The writer's own code over a reader refuses too.
  const p = new Provisioner(d, reader.zones, { hostname: 'mx.dcmx.test', catchall: false, spf: '', dmarc: '' });
  throwsReader(() => p.provisionDomain('never.example.com'), 'provisionDomain');
  await assert.rejects(new LocalWriter(d, p).execute({ kind: 'delete', who: admin, dn: `dc=www,dc=example,dc=org,${SUFFIX}` }), ReaderWriteError);
  // And below it, the connection itself.
  assert.throws(() => d.store.transaction(() => 1), StorageError);
  assert.throws(() => d.store.db.prepare('DELETE FROM entries').run(), /readonly/i);
  assert.equal(t.app.directory.changeRange().last, last, 'no change');
  assert.equal(t.app.directory.store.count(), count, 'no entry');
});

test('a reader refuses a store the writer has not readied', () => {
  assert.throws(() => openReader({ extraIndexes: ['description'] }), (e: unknown) => e instanceof StorageError && /indexed for/.test(e.message));
  assert.throws(() => openReader({ file: path.join(newDir(), 'none.sqlite') }), /unable to open|does not exist|SQLITE_CANTOPEN/i);
  assert.throws(() => openReader({ file: ':memory:' }), StorageError);
});
