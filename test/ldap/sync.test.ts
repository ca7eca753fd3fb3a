/**
 * The Content Sync provider (RFC 4533) end to end with OpenLDAP's ldapsearch
 * (`-E sync=ro[/cookie]`, `-E sync=rp[/cookie]`): full and incremental
 * refreshes, e-syncRefreshRequired after the change log was trimmed, the
 * persist phase, access control, bad cookies.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { adminArgs, run, startTestAppliance, type TestAppliance } from '../helpers';
import { track } from '../fixtures/children';
import { waitFor } from '../fixtures/wait';

const O = 'o=internet';
const PEOPLE = `ou=people,${O}`;
const ALICE = `uid=alice,${PEOPLE}`;
const BOB = `uid=bob,${PEOPLE}`;

let t: TestAppliance;
before(async () => {
  t = await startTestAppliance();
  const r = await run('ldapadd', adminArgs(t), [
    `dn: ${PEOPLE}\nobjectClass: organizationalUnit\nou: people\n`,
    `dn: ${ALICE}\nobjectClass: inetOrgPerson\nuid: alice\ncn: Alice\nsn: A\nuserPassword: alice-pw\n`,
    `dn: ${BOB}\nobjectClass: inetOrgPerson\nuid: bob\ncn: Bob\nsn: B\nuserPassword: bob-pw\n`,
  ].join('\n'));
  assert.equal(r.code, 0, r.stderr);
});
after(async () => {
  await t.close();
});

/** One entry of ldapsearch's output (extended LDIF): its DN, its sync state and UUID, its attribute lines. */
interface SyncedEntry {
  dn: string;
  state: string;
  uuid: string;
  lines: string[];
}

/** What ldapsearch -E sync=... printed: the entries, the cookies seen (done / info / per entry), the sync info lines, the result. */
function parse(out: string): { entries: SyncedEntry[]; cookie?: string; info: string[]; result?: number } {
  const entries: SyncedEntry[] = [];
  const info: string[] = [];
  let cookie: string | undefined;
  for (const block of out.split(/\n\n+/)) {
    const dn = /^dn: (.*)$/m.exec(block)?.[1];
    const state = /# SyncState control, UUID (\S+) (\w+)/.exec(block);
    if (dn !== undefined && state) {
      entries.push({ dn, uuid: state[1], state: state[2], lines: block.split('\n').filter((l) => /^\w+::? /.test(l) && !l.startsWith('dn: ')) });
    }
    if (block.includes('# SyncInfo')) info.push(block);
    for (const m of block.matchAll(/^# cookie: (\S+)/gm)) cookie = m[1];
  }
  const result = /^result: (\d+)/m.exec(out);
  return { entries, cookie, info, result: result ? Number(result[1]) : undefined };
}

async function syncRo(cookie?: string, extra: string[] = [], auth = adminArgs(t)): Promise<ReturnType<typeof parse> & { out: string }> {
  const r = await run('ldapsearch', [...auth, '-o', 'ldif-wrap=no', '-b', O, '-E', cookie ? `sync=ro/${cookie}` : 'sync=ro', ...extra]);
  return { ...parse(r.stdout), out: r.stdout + r.stderr };
}

async function contextCsn(): Promise<string> {
  const r = await run('ldapsearch', [...adminArgs(t), '-LLL', '-b', '', '-s', 'base', '(objectClass=*)', 'contextCSN']);
  return /^contextCSN: (\S+)$/m.exec(r.stdout)![1];
}

async function modify(ldif: string): Promise<void> {
  const r = await run('ldapmodify', adminArgs(t), ldif);
  assert.equal(r.code, 0, r.stderr);
}

describe('refreshOnly (RFC 4533 §3.3)', () => {
  test('without a cookie: every entry of the search with state add and its entryUUID, then Sync Done with a slapd-style cookie', async () => {
    const r = await syncRo(undefined, ['(objectClass=*)', '*', 'entryUUID', 'entryCSN']);
    assert.equal(r.result, 0, r.out);
    const dns = r.entries.map((e) => e.dn);
    for (const dn of [O, PEOPLE, ALICE, BOB]) assert.ok(dns.includes(dn), `${dn} in ${dns.join(' | ')}`);
    for (const e of r.entries) {
      assert.equal(e.state, 'added');
      assert.ok(e.lines.includes(`entryUUID: ${e.uuid}`), `the state control names the entry's entryUUID: ${e.lines.join(' ')}`);
      assert.match(e.lines.find((l) => l.startsWith('entryCSN: '))!, /^entryCSN: \d{14}\.\d{6}Z#[0-9a-f]{6}#000#[0-9a-f]{6}$/);
    }
    assert.match(r.out, /SyncDone control refreshDeletes=0/);
    assert.equal(r.cookie, `rid=000,csn=${await contextCsn()}`);
    // The administrator reads passwords, as in any search.
    assert.ok(r.entries.find((e) => e.dn === ALICE)!.lines.some((l) => l.startsWith('userPassword')), 'the admin gets userPassword');
  });

  test('from a cookie: only what changed since: adds, modifies and renamed subtrees as entries, deletes as UUIDs', async () => {
    const start = await syncRo(undefined, ['(objectClass=*)', '1.1']);
    const uuidOf = (dn: string) => start.entries.find((e) => e.dn === dn)!.uuid;
    await modify([
      `dn: uid=carol,${PEOPLE}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: carol\ncn: Carol\nsn: C\n`,
      `dn: ${BOB}\nchangetype: modify\nreplace: cn\ncn: Robert\n`,
      `dn: ${PEOPLE}\nchangetype: modrdn\nnewrdn: ou=staff\ndeleteoldrdn: 1\n`,
      `dn: uid=alice,ou=staff,${O}\nchangetype: delete\n`,
    ].join('\n'));
    const r = await syncRo(start.cookie, ['(objectClass=*)', 'cn']);
    assert.equal(r.result, 0, r.out);
    const byDn = new Map(r.entries.map((e) => [e.dn, e]));
    assert.deepEqual([...byDn.keys()].sort(), [`ou=staff,${O}`, `uid=bob,ou=staff,${O}`, `uid=carol,ou=staff,${O}`].sort(), r.out);
    assert.equal(byDn.get(`ou=staff,${O}`)!.uuid, uuidOf(PEOPLE), 'a renamed entry keeps its entryUUID');
    assert.equal(byDn.get(`uid=bob,ou=staff,${O}`)!.uuid, uuidOf(BOB));
    assert.ok(byDn.get(`uid=bob,ou=staff,${O}`)!.lines.includes('cn: Robert'));
    // A syncIdSet with refreshDeletes (ldapsearch: "no longer match the search") names the deleted entry by its UUID.
    const idSet = r.info.find((b) => b.includes('ID Set'));
    assert.match(idSet ?? '', /no longer match the search/, r.out);
    assert.ok(idSet!.includes(uuidOf(ALICE)), r.out);
    assert.match(r.out, /SyncDone control refreshDeletes=1/);
    assert.equal(r.cookie, `rid=000,csn=${await contextCsn()}`);
    // The renamed entry is found by its entryUUID (searchable, RFC 4530).
    const found = await run('ldapsearch', [...adminArgs(t), '-LLL', '-b', O, `(entryUUID=${uuidOf(PEOPLE)})`, '1.1']);
    assert.equal(found.stdout.trim(), `dn: ou=staff,${O}`);
    // Nothing more since: nothing sent, the rid echoed.
    const again = await syncRo(r.cookie!.replace('rid=000', 'rid=042'), ['(objectClass=*)', '1.1']);
    assert.equal(again.entries.length, 0, again.out);
    assert.equal(again.cookie, r.cookie!.replace('rid=000', 'rid=042'));
    // Put things back for the other tests.
    await modify(`dn: ou=staff,${O}\nchangetype: modrdn\nnewrdn: ou=people\ndeleteoldrdn: 1\n\n` +
      `dn: ${ALICE}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: alice\ncn: Alice\nsn: A\nuserPassword: alice-pw\n`);
  });

  test('a CSN the change log does not hold gets e-syncRefreshRequired (4096); a cookie that is not one gets protocolError', async () => {
    const old = await syncRo('rid=001,csn=20000101000000.000000Z#000000#000#000000', ['(objectClass=*)', '1.1']);
    assert.equal(old.result, 4096, old.out);
    assert.equal(old.entries.length, 0);
    for (const bad of ['garbage', 'rid=1,csn=yesterday', 'rid=abcd', 'csn=20000101000000.000000Z#000000#000#000000,evil=1']) {
      const r = await syncRo(bad, ['(objectClass=*)', '1.1']);
      assert.equal(r.result, 2, `${bad}: ${r.out}`);
      assert.match(r.out, /invalid sync cookie/);
    }
    // A cookie with a rid and no CSN yet (slapd's first request) is a full refresh.
    const first = await syncRo('rid=007', ['(objectClass=*)', '1.1']);
    assert.equal(first.result, 0, first.out);
    assert.ok(first.entries.length >= 4);
    assert.match(first.cookie!, /^rid=007,csn=/);
  });

  test('a full refresh sends a parent before its children, also when an entry moved below a newer parent', async () => {
    await modify([
      `dn: cn=mover,${O}\nchangetype: add\nobjectClass: organizationalRole\ncn: mover\n`,
      `dn: ou=newer,${O}\nchangetype: add\nobjectClass: organizationalUnit\nou: newer\n`,
      `dn: cn=mover,${O}\nchangetype: modrdn\nnewrdn: cn=mover\ndeleteoldrdn: 1\nnewsuperior: ou=newer,${O}\n`,
    ].join('\n'));
    try {
      const r = await syncRo(undefined, ['(objectClass=*)', '1.1']);
      const dns = r.entries.map((e) => e.dn);
      const parent = dns.indexOf(`ou=newer,${O}`);
      const child = dns.indexOf(`cn=mover,ou=newer,${O}`);
      assert.ok(parent >= 0 && child > parent, dns.join(' | '));
      for (const [i, dn] of dns.entries()) {
        const up = dn.slice(dn.indexOf(',') + 1);
        if (dn.includes(',') && dns.includes(up)) assert.ok(dns.indexOf(up) < i, `${up} before ${dn}`);
      }
    } finally {
      await modify(`dn: cn=mover,ou=newer,${O}\nchangetype: delete\n\ndn: ou=newer,${O}\nchangetype: delete\n`);
    }
  });

  test("a user's sync is a user's search: no one else's userPassword; anonymous gets the entries anonymous may read", async () => {
    const asAlice = ['-x', '-H', t.ldapUrl, '-D', ALICE, '-w', 'alice-pw'];
    const r = await syncRo(undefined, ['(objectClass=*)', '*'], asAlice);
    assert.equal(r.result, 0, r.out);
    assert.ok(r.entries.some((e) => e.dn === BOB), r.out);
    assert.ok(!r.entries.find((e) => e.dn === BOB)!.lines.some((l) => l.startsWith('userPassword')), 'no userPassword of bob for alice');
    assert.ok(r.entries.find((e) => e.dn === ALICE)!.lines.some((l) => l.startsWith('userPassword')), 'her own, as a search gives it');
    // Filters cannot test what the identity cannot read.
    const probe = await syncRo(undefined, ['(userPassword=*)', '1.1'], asAlice);
    assert.deepEqual(probe.entries.map((e) => e.dn), [ALICE]);
    const anon = await syncRo(undefined, ['(objectClass=*)', '1.1'], ['-x', '-H', t.ldapUrl]);
    assert.equal(anon.result, 0, anon.out);
    const dns = anon.entries.map((e) => e.dn);
    assert.ok(dns.includes(O));
    assert.ok(!dns.includes(ALICE) && !dns.includes(PEOPLE), `anonymous reads no people: ${dns.join(' | ')}`);
  });
});

describe('refreshAndPersist (RFC 4533 §3.4)', () => {
  /** ldapsearch -E sync=rp running in the background, its output so far. */
  function persist(cookie?: string, args: string[] = ['(objectClass=*)', 'cn', 'description'], auth = adminArgs(t)): { child: ChildProcess; out: () => string } {
    // stdbuf: ldapsearch's stdout is a pipe here, which C's stdio would buffer until exit.
    const child = track(spawn('stdbuf', ['-oL', 'ldapsearch', ...auth, '-o', 'ldif-wrap=no', '-b', O, '-E', cookie ? `sync=rp/${cookie}` : 'sync=rp', ...args]));
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    return { child, out: () => out };
  }

  test('after the refresh, each change is delivered in commit order, promptly, each with a cookie', async () => {
    const p = persist();
    try {
      await waitFor('the refresh to end', () => /SyncInfo Received: refresh present/.test(p.out()), 10_000);
      const refreshed = parse(p.out()).entries.length;
      assert.ok(refreshed >= 4, p.out());
      const started = Date.now();
      const N = 20;
      let ldif = '';
      for (let i = 0; i < N; i++) ldif += `dn: ${BOB}\nchangetype: modify\nreplace: description\ndescription: step ${i}\n\n`;
      ldif += `dn: cn=role,${O}\nchangetype: add\nobjectClass: organizationalRole\ncn: role\n\ndn: cn=role,${O}\nchangetype: delete\n`;
      await modify(ldif);
      const got = await waitFor('every change', () => {
        const e = parse(p.out()).entries.slice(refreshed);
        return e.some((x) => x.state === 'deleted') && e;
      }, 10_000);
      const latency = Date.now() - started;
      assert.ok(latency < 5000, `delivered in ${latency} ms`);
      const steps = got.slice(0, N);
      assert.ok(steps.every((e) => e.dn === BOB && e.state === 'modified'), p.out());
      assert.ok(steps.at(-1)!.lines.includes(`description: step ${N - 1}`), p.out());
      // The role's add is sent when the role still exists as the change is followed (not when its delete is already committed too).
      const role = got.slice(N).map((e) => [e.dn, e.state]);
      assert.ok([1, 2].includes(role.length) && role.at(-1)![1] === 'deleted' && role.every(([dn]) => dn === `cn=role,${O}`), p.out());
      // Each carries a cookie; their CSNs increase in commit order; the last is the contextCSN.
      const cookies = [...p.out().matchAll(/# cookie: rid=000,csn=(\S+)/g)].map((m) => m[1]).slice(-(N + role.length));
      assert.equal(cookies.length, N + role.length, p.out());
      for (let i = 1; i < cookies.length; i++) assert.ok(cookies[i] > cookies[i - 1], `${cookies[i]} after ${cookies[i - 1]}`);
      assert.equal(cookies[cookies.length - 1], await contextCsn());
    } finally {
      p.child.kill();
    }
  });

  test('anonymous hears of no entry it may not read: not its change, not its delete; from a cookie it gets a present phase', async () => {
    const anon = ['-x', '-H', t.ldapUrl];
    const start = await syncRo(undefined, ['(objectClass=*)', '1.1'], anon);
    const again = await syncRo(start.cookie, ['(objectClass=*)', '1.1'], anon);
    assert.equal(again.result, 0, again.out);
    assert.match(again.out, /SyncDone control refreshDeletes=0/, 'a present phase, no deletes to judge');
    assert.deepEqual(again.entries.map((e) => e.dn).sort(), start.entries.map((e) => e.dn).sort());
    const p = persist(undefined, ['(objectClass=*)', '1.1'], anon);
    try {
      await waitFor('the refresh to end', () => /SyncInfo Received: refresh present/.test(p.out()), 10_000);
      await modify([
        `dn: uid=secret,${PEOPLE}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: secret\ncn: S\nsn: S\n`,
        `dn: uid=secret,${PEOPLE}\nchangetype: delete\n`,
        `dn: dc=gone,${O}\nchangetype: add\nobjectClass: domain\ndc: gone\n`,
      ].join('\n'));
      await waitFor('the domain entry added', () => parse(p.out()).entries.some((e) => e.dn === `dc=gone,${O}` && e.state === 'added'), 10_000);
      await modify(`dn: dc=gone,${O}\nchangetype: delete\n`);
      await waitFor('the domain entry deleted', () => parse(p.out()).entries.some((e) => e.dn === `dc=gone,${O}` && e.state === 'deleted'), 10_000);
      assert.doesNotMatch(p.out(), /secret/, p.out());
    } finally {
      p.child.kill();
    }
  });

  test('from a cookie: the refresh is a delete phase, then changes follow', async () => {
    const start = await syncRo(undefined, ['(objectClass=*)', '1.1']);
    await modify(`dn: ${ALICE}\nchangetype: modify\nreplace: cn\ncn: Alice Two\n`);
    const p = persist(start.cookie);
    try {
      await waitFor('the refresh to end', () => /SyncInfo Received: refresh delete/.test(p.out()), 10_000);
      assert.deepEqual(parse(p.out()).entries.map((e) => e.dn), [ALICE], p.out());
      await modify(`dn: ${BOB}\nchangetype: modify\nreplace: cn\ncn: Bob Two\n`);
      await waitFor('the change', () => parse(p.out()).entries.some((e) => e.dn === BOB && e.lines.includes('cn: Bob Two')), 10_000);
    } finally {
      p.child.kill();
    }
  });
});
