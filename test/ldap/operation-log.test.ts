/**
 * The operation log (DCMX_LOG_LEVEL=debug): the real OpenLDAP clients drive
 * an appliance whose logger is captured; each connection's lines are one
 * accept, one line per operation with its fields, one close. Nothing in the
 * whole log is a password or a hash; at info level there are no such lines.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { createHash } from 'node:crypto';
import pino from 'pino';
import { ADMIN_PASSWORD, adminArgs, ldapResultCode, run, startTestAppliance, type RunResult, type TestAppliance } from '../helpers';
import { waitFor, waitForAsync } from '../fixtures/wait';
import { filterString, passwordAttributes } from '../../server/ldap/operation-log';
import type { FilterInput } from '../../server/directory/filter';
import { int, message, octets, str, tlv, unbindRequest } from '../fixtures/ber';
import { track } from '../fixtures/children';
import { spawn } from 'node:child_process';

// The generated certificate names the appliance, not 127.0.0.1: the clients are told not to verify it.
process.env.LDAPTLS_REQCERT = 'never';

type Rec = Record<string, unknown>;

/** A pino logger at `level` whose lines are kept, raw and parsed. */
function capturingLogger(level: string): { log: pino.Logger; raw: string[]; records: Rec[] } {
  const raw: string[] = [];
  const records: Rec[] = [];
  const log = pino({ level }, {
    write: (s: string) => {
      raw.push(s);
      records.push(JSON.parse(s) as Rec);
    },
  });
  return { log, raw, records };
}

const SUFFIX = 'o=internet';
const USER_A = `uid=oplog-a,${SUFFIX}`;
const USER_B = `uid=oplog-b,${SUFFIX}`;
const USER_C = `uid=oplog-c,${SUFFIX}`;
/** Every password the tests send, none of which may appear in the log. */
const PW = {
  addClear: 'oplog-clear-pw-1',
  addHashed: 'oplog-hashed-pw-2',
  modify: 'oplog-modify-pw-3',
  passwd: 'oplog-passwd-pw-4',
  wrong: 'oplog-wrong-pw-5',
  sasl: 'oplog-sasl-pw-6',
  compare: 'oplog-compare-pw-7',
};
const PAGED_RESULTS_OID = '1.2.840.113556.1.4.319';
const PASSWORD_MODIFY_OID = '1.3.6.1.4.1.4203.1.11.1';

/** RFC 2307 practice: {SSHA} is base64(SHA-1(password + salt) + salt). */
function ssha(password: string): string {
  const salt = Buffer.from('0p1o2g3s');
  return `{SSHA}${Buffer.concat([createHash('sha1').update(password).update(salt).digest(), salt]).toString('base64')}`;
}
const HASHED = ssha(PW.addHashed);

/** Hash schemes a stored userPassword value may start with (schemes.ts). */
const SCHEME_PREFIX = /\{(S?SHA\d*|S?MD5|LDAP-MD5|PLAIN-MD5|CRYPT|[A-Z0-9]+-CRYPT|ARGON2\w*|PBKDF2[\w-]*|CLEARTEXT|CLEAR|PLAIN)\}/i;

const cap = capturingLogger('debug');
let t: TestAppliance;
before(async () => {
  t = await startTestAppliance({}, undefined, cap.log);
});
after(async () => t.close());

const as = (dn: string, pw: string) => ['-x', '-H', t.ldapUrl, '-D', dn, '-w', pw];

/** The log lines of the one connection `client` makes, once it has closed, with what the client returned. */
async function connectionOf<T>(client: () => Promise<T>): Promise<{ result: T; lines: Rec[]; ops: Rec[] }> {
  const from = cap.records.length;
  const result = await client();
  const accepted = await waitFor('a connection accepted', () => cap.records.slice(from).find((r) => r.msg === 'ldap connection accepted'));
  await waitFor('that connection closed', () => cap.records.slice(from).some((r) => r.sid === accepted.sid && r.msg === 'ldap connection closed'), 30_000);
  const lines = cap.records.slice(from).filter((r) => r.sid === accepted.sid);
  return { result, lines, ops: lines.filter((r) => r.msg === 'ldap operation') };
}

/** `rec` has these fields with these values. */
function assertFields(rec: Rec | undefined, want: Rec): void {
  assert.ok(rec, `no line for ${JSON.stringify(want)}`);
  const got = Object.fromEntries(Object.keys(want).map((k) => [k, rec[k]]));
  assert.deepEqual(got, want, JSON.stringify(rec));
}

/** A connection's lines: accept first, close last, both with the client's address; operation lines well-formed. */
function assertConnection(lines: Rec[], operations: number): void {
  assertFields(lines[0], { msg: 'ldap connection accepted', remote: '127.0.0.1', ep: 'ldap', level: 20 });
  assert.equal(typeof lines[0].remotePort, 'number');
  assertFields(lines.at(-1), { msg: 'ldap connection closed', remote: '127.0.0.1', operations });
  const ops = lines.filter((r) => r.msg === 'ldap operation');
  assert.equal(ops.length, operations, JSON.stringify(lines));
  for (const o of ops) {
    assertFields(o, { msg: 'ldap operation', level: 20, ep: 'ldap' });
    assert.equal(typeof o.msgid, 'number');
    assert.equal(typeof o.who, 'string');
    assert.ok(typeof o.ms === 'number' && o.ms >= 0, `time taken: ${JSON.stringify(o)}`);
    if (o.op !== 'unbind' && o.op !== 'abandon') assert.equal(typeof o.result, 'number', JSON.stringify(o));
    assert.equal(o.aborted, undefined);
  }
}

const ok = (r: RunResult) => assert.equal(r.code, 0, r.stderr);

test('filters in RFC 4515 form: values escaped (§3), every item type, password assertions hidden', () => {
  const secret = passwordAttributes(t.app.directory.schema);
  const cases: [FilterInput, string][] = [
    [{ type: 'equal', attr: 'cn', value: 'a*b(c)d\\e\0f' }, '(cn=a\\2ab\\28c\\29d\\5ce\\00f)'],
    [{ type: 'equal', attr: 'cn', value: 'Ünïcode' }, '(cn=Ünïcode)'],
    [{ type: 'approx', attr: 'sn', value: 'smith' }, '(sn~=smith)'],
    [{ type: 'ge', attr: 'uidNumber', value: '10' }, '(uidNumber>=10)'],
    [{ type: 'le', attr: 'uidNumber', value: '20' }, '(uidNumber<=20)'],
    [{ type: 'present', attr: 'mail' }, '(mail=*)'],
    [{ type: 'substrings', attr: 'cn', initial: 'a', any: [], final: undefined }, '(cn=a*)'],
    [{ type: 'substrings', attr: 'cn', initial: undefined, any: ['b', 'c*'], final: 'd' }, '(cn=*b*c\\2a*d)'],
    [{ type: 'substrings', attr: 'cn', any: [], final: 'z' }, '(cn=*z)'],
    [{ type: 'extensible', attr: 'cn', dnAttributes: true, rule: 'caseExactMatch', value: 'X' }, '(cn:dn:caseExactMatch:=X)'],
    [{ type: 'extensible', dnAttributes: false, rule: '2.5.13.5', value: 'x' }, '(:2.5.13.5:=x)'],
    [{ type: 'and', filters: [] }, '(&)'],
    [{ type: 'or', filters: [{ type: 'not', filter: { type: 'present', attr: 'a' } }, { type: 'and', filters: [{ type: 'present', attr: 'b' }] }] }, '(|(!(a=*))(&(b=*)))'],
    [{ type: 'equal', attr: 'userPassword', value: 'pw' }, '(userPassword=<hidden>)'],
    [{ type: 'equal', attr: 'USERPASSWORD;x-opt', value: 'pw' }, '(USERPASSWORD;x-opt=<hidden>)'],
    [{ type: 'ge', attr: '2.5.4.35', value: 'pw' }, '(2.5.4.35>=<hidden>)'],
    [{ type: 'substrings', attr: 'userPassword', initial: 'p', any: ['w'], final: undefined }, '(userPassword=<hidden>)'],
    [{ type: 'extensible', attr: 'authPassword', dnAttributes: false, value: 'pw' }, '(authPassword:=<hidden>)'],
    [{ type: 'present', attr: 'userPassword' }, '(userPassword=*)'],
    [{ type: 'equal', attr: 'dnssecPrivateKey', value: '-----BEGIN PRIVATE KEY-----' }, '(dnssecPrivateKey=<hidden>)'],
    [{ type: 'substrings', attr: 'DKIMPRIVATEKEY', initial: '-----BEGIN', any: [], final: undefined }, '(DKIMPRIVATEKEY=<hidden>)'],
  ];
  for (const [f, want] of cases) assert.equal(filterString(f, secret), want, JSON.stringify(f));
});

describe('at debug level, one line per operation', () => {
  test('ldapadd: bind, each add with its attribute types, unbind', async () => {
    const ldif = `dn: ${USER_A}\nobjectClass: inetOrgPerson\nuid: oplog-a\ncn: Oplog A\nsn: A\nuserPassword: ${PW.addClear}\n\n`
      + `dn: ${USER_B}\nobjectClass: inetOrgPerson\nuid: oplog-b\ncn: Oplog B\nsn: B\nuserPassword: ${HASHED}\n`;
    const { result, lines, ops } = await connectionOf(() => run('ldapadd', adminArgs(t), ldif));
    ok(result);
    assertConnection(lines, 4);
    assertFields(ops[0], { op: 'bind', msgid: 1, dn: t.adminDN, method: 'simple', who: t.adminDN, result: 0 });
    assertFields(ops[1], { op: 'add', msgid: 2, dn: USER_A, attrs: ['objectClass', 'uid', 'cn', 'sn', 'userPassword'], who: t.adminDN, result: 0 });
    assertFields(ops[2], { op: 'add', msgid: 3, dn: USER_B, result: 0 });
    assertFields(ops[3], { op: 'unbind', msgid: 4, who: t.adminDN });
    assert.equal((await run('ldapwhoami', as(USER_B, PW.addHashed))).code, 0, 'the pre-hashed password binds');
  });

  test('ldapmodify with userPassword: the changes by operation and type', async () => {
    const ldif = `dn: ${USER_A}\nchangetype: modify\nreplace: userPassword\nuserPassword: ${PW.modify}\n-\nadd: description\ndescription: oplog\n`;
    const { result, lines, ops } = await connectionOf(() => run('ldapmodify', adminArgs(t), ldif));
    ok(result);
    assertConnection(lines, 3);
    assertFields(ops[1], { op: 'modify', dn: USER_A, mods: ['replace:userPassword', 'add:description'], who: t.adminDN, result: 0 });
  });

  test('ldappasswd: Password Modify with its OID and the user it names', async () => {
    const { result, lines, ops } = await connectionOf(() => run('ldappasswd', [...as(USER_A, PW.modify), '-a', PW.modify, '-s', PW.passwd, USER_A]));
    ok(result);
    assertConnection(lines, 3);
    assertFields(ops[0], { op: 'bind', dn: USER_A, who: USER_A, result: 0 });
    assertFields(ops[1], { op: 'extended', oid: PASSWORD_MODIFY_OID, ext: 'passwordModify', dn: USER_A, who: USER_A, result: 0 });
  });

  test('ldapwhoami: bound identity on every line; a failed bind leaves it anonymous', async () => {
    const good = await connectionOf(() => run('ldapwhoami', as(USER_A, PW.passwd)));
    ok(good.result);
    assertConnection(good.lines, 3);
    assertFields(good.ops[1], { op: 'extended', oid: '1.3.6.1.4.1.4203.1.11.3', ext: 'whoAmI', who: USER_A, result: 0 });
    const bad = await connectionOf(() => run('ldapwhoami', as(USER_A, PW.wrong)));
    assert.equal(ldapResultCode(bad.result), 49);
    assertConnection(bad.lines, 2);
    assertFields(bad.ops[0], { op: 'bind', dn: USER_A, method: 'simple', who: '', result: 49 });
  });

  test('ldapsearch: base, scope, filter as RFC 4515 (password assertions hidden), attributes, entries', async () => {
    const filter = `(&(uid=oplog*)(!(cn=a\\2ab))(|(objectClass=inetOrgPerson)(userPassword=${PW.passwd})(userPassword=*${PW.passwd}*)(dnssecPrivateKey=MIGHAgEA*)))`;
    const { result, lines, ops } = await connectionOf(() => run('ldapsearch', [...adminArgs(t), '-LLL', '-b', SUFFIX, '-s', 'one', filter, 'cn', 'mail']));
    ok(result);
    assert.equal(result.stdout.match(/^dn: /gm)?.length, 2, result.stdout);
    assertConnection(lines, 3);
    assertFields(ops[1], {
      op: 'search', base: SUFFIX, scope: 'one', attrs: ['cn', 'mail'], who: t.adminDN, result: 0, entries: 2,
      filter: '(&(uid=oplog*)(!(cn=a\\2ab))(|(objectClass=inetOrgPerson)(userPassword=<hidden>)(userPassword=<hidden>)(dnssecPrivateKey=<hidden>)))',
    });
  });

  test('paged search: one line per page, with its controls; entries add up', async () => {
    const { result, lines, ops } = await connectionOf(() => run('ldapsearch', [...adminArgs(t), '-LLL', '-E', 'pr=1/noprompt', '-b', SUFFIX, '-s', 'one', '(uid=oplog*)', '1.1']));
    ok(result);
    const searches = ops.filter((o) => o.op === 'search');
    assertConnection(lines, ops.length);
    assert.ok(searches.length >= 2, JSON.stringify(searches));
    for (const s of searches) assertFields(s, { base: SUFFIX, scope: 'one', filter: '(uid=oplog*)', attrs: ['1.1'], controls: [PAGED_RESULTS_OID], result: 0 });
    assert.equal(searches.reduce((n, s) => n + (s.entries as number), 0), 2);
  });

  test('Content Sync: refreshOnly is a search with its result; a refreshAndPersist is logged at the end of its refresh, persisting', async () => {
    const SYNC_OID = '1.3.6.1.4.1.4203.1.9.1.1';
    const ro = await connectionOf(() => run('ldapsearch', [...adminArgs(t), '-LLL', '-E', 'sync=ro', '-b', SUFFIX, '-s', 'one', '(uid=oplog*)', '1.1']));
    ok(ro.result);
    assertConnection(ro.lines, 3);
    assertFields(ro.ops[1], { op: 'search', controls: [SYNC_OID], result: 0, entries: 2 });
    const rp = await connectionOf(async () => {
      // stdbuf: ldapsearch's stdout is a pipe here, which C's stdio would buffer until exit.
      const child = track(spawn('stdbuf', ['-oL', 'ldapsearch', ...adminArgs(t), '-E', 'sync=rp', '-b', SUFFIX, '-s', 'one', '(uid=oplog*)', '1.1']));
      let out = '';
      child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
      await waitFor('the refresh to end', () => out.includes('refresh done'), 10_000);
      child.kill();
    });
    assertFields(rp.ops.find((o) => o.op === 'search'), { controls: [SYNC_OID], entries: 2, persist: true, aborted: undefined, result: undefined });
  });

  test('ldapcompare: the DN and attribute type, never the value', async () => {
    const cn = await connectionOf(() => run('ldapcompare', [...adminArgs(t), USER_A, 'cn:Oplog A']));
    assertConnection(cn.lines, 3);
    assertFields(cn.ops[1], { op: 'compare', dn: USER_A, attr: 'cn', result: 6 });
    assert.equal(cn.ops[1].value, undefined);
    const pw = await connectionOf(() => run('ldapcompare', [...adminArgs(t), USER_A, `userPassword:${PW.compare}`]));
    assertConnection(pw.lines, 3);
    assertFields(pw.ops[1], { op: 'compare', dn: USER_A, attr: 'userPassword' });
  });

  test('ldapmodrdn and ldapdelete: the DNs', async () => {
    const mod = await connectionOf(() => run('ldapmodrdn', [...adminArgs(t), '-r', USER_B, 'uid=oplog-c']));
    ok(mod.result);
    assertConnection(mod.lines, 3);
    assertFields(mod.ops[1], { op: 'modDN', dn: USER_B, newrdn: 'uid=oplog-c', deleteoldrdn: true, result: 0 });
    const del = await connectionOf(() => run('ldapdelete', [...adminArgs(t), USER_C]));
    ok(del.result);
    assertConnection(del.lines, 3);
    assertFields(del.ops[1], { op: 'delete', dn: USER_C, result: 0 });
    const again = await connectionOf(() => run('ldapdelete', [...adminArgs(t), USER_C]));
    assertFields(again.ops[1], { op: 'delete', dn: USER_C, result: 32 });
  });

  test('StartTLS (-ZZ): the extended operation, then the operations over TLS, entries counted once', async () => {
    const { result, lines, ops } = await connectionOf(() => run('ldapsearch', ['-ZZ', ...adminArgs(t), '-LLL', '-b', SUFFIX, '-s', 'one', '(uid=oplog*)', 'cn']));
    ok(result);
    assertConnection(lines, 4);
    assert.deepEqual(ops.map((o) => o.op), ['extended', 'bind', 'search', 'unbind']);
    assertFields(ops[0], { oid: '1.3.6.1.4.1.1466.20037', ext: 'startTLS', who: '', result: 0 });
    assertFields(ops[2], { filter: '(uid=oplog*)', result: 0, entries: 1 });
  });

  test('an unknown extended operation: its OID and protocolError', async () => {
    const { lines, ops } = await connectionOf(() => run('ldapexop', [...adminArgs(t), '1.2.3.4']));
    assertConnection(lines, 3);
    assertFields(ops[1], { op: 'extended', oid: '1.2.3.4', result: 2 });
  });

  test('a raw client: SASL bind (the mechanism, not the credentials), abandon, unbind', async () => {
    const { lines, ops } = await connectionOf(async () => {
      const s = net.connect(t.app.ports.ldap, '127.0.0.1');
      const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
      s.on('error', () => undefined);
      const answered = new Promise<void>((resolve) => s.once('data', () => resolve()));
      // BindRequest with sasl [3] SaslCredentials { mechanism PLAIN, credentials "\0user\0password" }.
      s.write(message(1, tlv(0x60, int(3), octets(''), tlv(0xa3, octets('PLAIN'), octets(`\0oplog-a\0${PW.sasl}`)))));
      await answered;
      s.write(Buffer.concat([message(2, str(0x50, Buffer.from([5]))), message(3, unbindRequest())]));
      await closed;
    });
    assertConnection(lines, 3);
    assertFields(ops[0], { op: 'bind', method: 'sasl', mech: 'PLAIN', dn: '', who: '', result: 7 });
    assertFields(ops[1], { op: 'abandon', msgid: 2, abandoned: 5 });
    assertFields(ops[2], { op: 'unbind', msgid: 3 });
  });

  test('no password and no hash anywhere in the log', async () => {
    // The hashes as stored, to look for them too.
    const r = await run('ldapsearch', [...adminArgs(t), '-LLL', '-o', 'ldif-wrap=no', '-b', SUFFIX, '-s', 'one', '(uid=oplog*)', 'userPassword']);
    ok(r);
    const stored = [...r.stdout.matchAll(/^userPassword:: (.*)$/gm)].map((m) => Buffer.from(m[1], 'base64').toString());
    assert.ok(stored.length >= 1, r.stdout);
    const text = cap.raw.join('');
    assert.ok(cap.records.filter((x) => x.msg === 'ldap operation').length >= 30, 'the log was captured');
    for (const secret of [...Object.values(PW), ADMIN_PASSWORD, HASHED, ...stored]) {
      assert.ok(!text.includes(secret), `the log contains ${secret}`);
      const body = secret.replace(SCHEME_PREFIX, '');
      if (body !== secret) assert.ok(!text.includes(body), `the log contains the hash of ${secret}`);
    }
    assert.doesNotMatch(text, SCHEME_PREFIX);
    assert.doesNotMatch(text, /\$(1|5|6|2[aby]|y|argon2i?d?)\$/, 'no crypt(3) or PHC hash');
  });
});

test('at info level: no connection or operation lines, and still no password', async () => {
  const info = capturingLogger('info');
  const a = await startTestAppliance({}, undefined, info.log);
  try {
    ok(await run('ldapadd', adminArgs(a), `dn: ${USER_A}\nobjectClass: inetOrgPerson\nuid: oplog-a\ncn: A\nsn: A\nuserPassword: ${PW.addClear}\n`));
    ok(await run('ldapmodify', adminArgs(a), `dn: ${USER_A}\nchangetype: modify\nreplace: userPassword\nuserPassword: ${PW.modify}\n`));
    ok(await run('ldapsearch', [...adminArgs(a), '-LLL', '-b', SUFFIX, '(uid=oplog-a)', 'cn']));
    assert.equal(ldapResultCode(await run('ldapwhoami', ['-x', '-H', a.ldapUrl, '-D', USER_A, '-w', PW.wrong])), 49);
    // Every connection has closed: whatever they would log has been logged.
    await waitForAsync('every connection closed', async () => (await a.app.stats()).ldap.connections === 0);
    assert.ok(info.records.some((r) => r.msg === 'ldap bind failed: invalid credentials'), 'the info lines are captured');
    const debug = info.records.filter((r) => (r.level as number) < 30 || /^ldap (operation|connection (accepted|closed))$/.test(String(r.msg)));
    assert.deepEqual(debug, []);
    const text = info.raw.join('');
    for (const secret of Object.values(PW)) assert.ok(!text.includes(secret), `the log contains ${secret}`);
    assert.doesNotMatch(text, SCHEME_PREFIX);
  } finally {
    await a.close();
  }
});
