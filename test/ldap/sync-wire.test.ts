/**
 * The Content Sync provider (RFC 4533) at the level of its messages, where
 * ldapsearch cannot reach: reloadHint after the change log was trimmed, the
 * encodings of the controls and Sync Info messages, Cancel (RFC 3909) and
 * Abandon of a persistent search, a consumer that does not read, a
 * persistent search outliving the idle timeout, and a replication identity
 * (DCMX_REPLICATOR_DNS).
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import type * as net from 'node:net';
import { adminArgs, ADMIN_PASSWORD, run, startTestAppliance, type TestAppliance } from '../helpers';
import { bindPdu, bool, control, enumerated, extendedRequest, int, message, octets, present, searchPdu, searchRequest, seq, tlv } from '../fixtures/ber';
import { connect, Responses, type Response } from '../fixtures/ldap';
import { waitFor } from '../fixtures/wait';
import { children, readInt, readTlv } from '../../server/ber';
import { decodeSyncRequestValue, parseSyncCookie, syncInfo, syncStateControl } from '../../server/ldap/sync';

const O = 'o=internet';
const PEOPLE = `ou=people,${O}`;
const REPL = `uid=repl,${PEOPLE}`;
const SYNC = '1.3.6.1.4.1.4203.1.9.1.1';
const STATE = '1.3.6.1.4.1.4203.1.9.1.2';
const DONE = '1.3.6.1.4.1.4203.1.9.1.3';
const INFO = '1.3.6.1.4.1.4203.1.9.1.4';
const KEEP = 10;
const BACKLOG = 64 * 1024;
/** Below the 7 entries of ou=people: a replica is held to no size limit, a user is. */
const SIZE_LIMIT = 5;

/** syncRequestValue (RFC 4533 §2.2), built by the test's own BER. */
const syncRequest = (mode: 1 | 3, cookie?: string, reloadHint?: boolean): Buffer =>
  control(SYNC, true, seq(enumerated(mode), ...(cookie !== undefined ? [octets(cookie)] : []), ...(reloadHint ? [bool(true)] : [])));

/** The controls of a message: OID and value. */
function controlsOf(raw: Buffer): { oid: string; value?: Buffer }[] {
  const msg = readTlv(raw, 0);
  const ctl = children(raw, msg)[2];
  if (!ctl || ctl.tag !== 0xa0) return [];
  return children(raw, ctl).map((c) => {
    const parts = children(raw, c);
    const v = parts.find((p, i) => i > 0 && p.tag === 0x04);
    return { oid: raw.toString('latin1', parts[0].start, parts[0].end), value: v && raw.subarray(v.start, v.end) };
  });
}

/** An entry's Sync State control (§2.3): state, UUID (hex), cookie. */
function stateOf(r: Response): { state: number; uuid: string; cookie?: string } {
  const v = controlsOf(r.raw).find((c) => c.oid === STATE)!.value!;
  const [state, uuid, cookie] = children(v, readTlv(v, 0));
  return { state: readInt(v, state), uuid: v.toString('hex', uuid.start, uuid.end), cookie: cookie && v.toString('latin1', cookie.start, cookie.end) };
}

/** The DN of a SearchResultEntry. */
function dnOf(r: Response): string {
  const op = children(r.raw, readTlv(r.raw, 0))[1];
  const dn = children(r.raw, op)[0];
  return r.raw.toString('utf8', dn.start, dn.end);
}

/** The attribute types of a SearchResultEntry, lower-cased. */
function typesOf(r: Response): string[] {
  const op = children(r.raw, readTlv(r.raw, 0))[1];
  const attrs = children(r.raw, op)[1];
  return children(r.raw, attrs).map((a) => {
    const t = children(r.raw, a)[0];
    return r.raw.toString('utf8', t.start, t.end).toLowerCase();
  });
}

/** The Sync Done control of a SearchResultDone (§2.4). */
function doneOf(r: Response): { cookie?: string; refreshDeletes: boolean } | undefined {
  const v = controlsOf(r.raw).find((c) => c.oid === DONE)?.value;
  if (!v) return undefined;
  let cookie: string | undefined;
  let refreshDeletes = false;
  for (const c of children(v, readTlv(v, 0))) {
    if (c.tag === 0x04) cookie = v.toString('latin1', c.start, c.end);
    if (c.tag === 0x01) refreshDeletes = v[c.start] !== 0;
  }
  return { cookie, refreshDeletes };
}

/** A Sync Info message's value (§2.5): its CHOICE tag and content. */
function infoOf(r: Response): { tag: number; value: Buffer } {
  const op = children(r.raw, readTlv(r.raw, 0))[1];
  const [name, value] = children(r.raw, op);
  assert.equal(r.raw.toString('latin1', name.start, name.end), INFO);
  const v = r.raw.subarray(value.start, value.end);
  const choice = readTlv(v, 0);
  return { tag: choice.tag, value: v.subarray(choice.start, choice.end) };
}

/** A connection bound as `dn`. */
async function bound(t: TestAppliance, dn = t.adminDN, password = ADMIN_PASSWORD): Promise<{ sock: net.Socket; res: Responses }> {
  const sock = await connect(t.app.ports.ldap);
  const res = new Responses(sock);
  sock.write(bindPdu(1, dn, password));
  assert.equal((await res.result(1)).code, 0);
  return { sock, res };
}

const entriesOf = (res: Responses, id: number) => res.all.filter((r) => r.id === id && r.tag === 0x64);

let t: TestAppliance;
before(async () => {
  t = await startTestAppliance({
    DCMX_THREADS: '1', DCMX_CHANGELOG_KEEP: String(KEEP), DCMX_LDAP_SYNC_BACKLOG: String(BACKLOG),
    DCMX_REPLICATOR_DNS: REPL, DCMX_LDAP_IDLE_TIMEOUT: '1', DCMX_LDAP_SIZE_LIMIT: String(SIZE_LIMIT),
  });
  let ldif = `dn: ${PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n`;
  ldif += `dn: ${REPL}\nobjectClass: inetOrgPerson\nuid: repl\ncn: R\nsn: R\nuserPassword: repl-pw\n\n`;
  for (let i = 0; i < 5; i++) ldif += `dn: uid=u${i},${PEOPLE}\nobjectClass: inetOrgPerson\nuid: u${i}\ncn: U${i}\nsn: U\nuserPassword: pw-${i}\n\n`;
  const r = await run('ldapadd', adminArgs(t), ldif);
  assert.equal(r.code, 0, r.stderr);
});
after(async () => {
  await t.close();
});

/** Modifies u0's description `n` times through the one writer. */
async function churn(n: number, size = 10): Promise<void> {
  for (let i = 0; i < n; i++) {
    await t.app.directory.modify(t.app.directory.systemIdentity(), `uid=u0,${PEOPLE}`, [
      { op: 'replace', type: 'description', values: [`${i} ${'x'.repeat(size)}`] },
    ]);
  }
}

describe('encodings (RFC 4533 §2)', () => {
  test('the Sync Request value decodes; anything else is refused', () => {
    const value = (b: Buffer) => children(b, readTlv(b, 0)).map((c) => b.subarray(c.start, c.end))[2];
    assert.deepEqual(decodeSyncRequestValue(value(syncRequest(3, 'rid=001', true))), { mode: 3, cookie: Buffer.from('rid=001'), reloadHint: true });
    assert.deepEqual(decodeSyncRequestValue(value(syncRequest(1))), { mode: 1, reloadHint: false });
    for (const bad of [seq(enumerated(2)), seq(int(1)), seq(enumerated(1), bool(true), octets('late cookie')), octets('x'), Buffer.alloc(0)]) {
      assert.equal(decodeSyncRequestValue(bad), undefined, bad.toString('hex'));
    }
    assert.equal(decodeSyncRequestValue(undefined), undefined);
  });

  test('cookies: slapd forms parse, our server id is preferred, anything else is refused', () => {
    assert.deepEqual(parseSyncCookie('rid=1'), { rid: '001' });
    assert.deepEqual(parseSyncCookie('rid=002,sid=001,csn=20240101000000.000000Z#000000#001#000000;20240102000000.000000Z#000000#000#000000'),
      { rid: '002', csn: '20240102000000.000000Z#000000#000#000000' });
    for (const bad of ['rid=1234', 'csn=2024', 'rid=1,,', 'x=1', 'rid=1,csn=20240101000000.000000Z#000000#000#000000\n']) {
      assert.equal(parseSyncCookie(bad), undefined, bad);
    }
  });

  test('state control, syncIdSet and refreshPresent are the BER of §2.3 and §2.5', () => {
    const uuid = '0123456789abcdef0123456789abcdef';
    const dashed = '01234567-89ab-cdef-0123-456789abcdef';
    assert.deepEqual(syncStateControl('modify', dashed, Buffer.from('c')),
      control(STATE, undefined, seq(enumerated(2), octets(Buffer.from(uuid, 'hex')), octets('c'))));
    const msg = syncInfo(7, { kind: 'syncIdSet', uuids: [dashed], refreshDeletes: true });
    assert.deepEqual(msg, message(7, tlv(0x79, tlv(0x80, Buffer.from(INFO)), tlv(0x81, tlv(0xa3, bool(true), tlv(0x31, octets(Buffer.from(uuid, 'hex'))))))));
    assert.deepEqual(syncInfo(7, { kind: 'refreshPresent', cookie: Buffer.from('k') }),
      message(7, tlv(0x79, tlv(0x80, Buffer.from(INFO)), tlv(0x81, tlv(0xa2, octets('k'))))));
  });
});

describe('refresh over the wire', () => {
  test('a trimmed cookie: e-syncRefreshRequired without reloadHint, a full present phase with it', async () => {
    const { sock, res } = await bound(t);
    try {
      sock.write(message(2, searchRequest(O, present('objectClass'), ['1.1']), [syncRequest(1)]));
      const first = doneOf(await res.result(2))!;
      assert.match(first.cookie!, /^rid=000,csn=\S+$/);
      const all = entriesOf(res, 2).length;
      const position = t.app.directory.changeRange().last;
      await churn(3 * KEEP);
      await t.app.retention.run();
      await waitFor('the log to be trimmed past the cookie', () => t.app.directory.changeRange().first > position + 1, 10_000);

      sock.write(message(3, searchRequest(O, present('objectClass'), ['1.1']), [syncRequest(1, first.cookie)]));
      const required = await res.result(3);
      assert.equal(required.code, 4096);
      assert.equal(entriesOf(res, 3).length, 0);

      sock.write(message(4, searchRequest(O, present('objectClass'), ['1.1']), [syncRequest(1, first.cookie, true)]));
      const reloaded = await res.result(4);
      assert.equal(reloaded.code, 0);
      const entries = entriesOf(res, 4);
      assert.equal(entries.length, all, 'every entry again');
      assert.ok(entries.every((e) => stateOf(e).state === 1), 'state add');
      const done = doneOf(reloaded)!;
      assert.equal(done.refreshDeletes, false, 'a present phase: what was not sent is to be deleted');
      assert.ok(done.cookie! > first.cookie!);
    } finally {
      sock.destroy();
    }
  });

  test('a malformed Sync Request value is protocolError and the connection goes on', async () => {
    const { sock, res } = await bound(t);
    try {
      sock.write(message(2, searchRequest(O, present('objectClass'), ['1.1']), [control(SYNC, true, seq(enumerated(9)))]));
      assert.equal((await res.result(2)).code, 2);
      sock.write(message(3, searchRequest(O, present('objectClass'), ['1.1']), [control(SYNC, true, octets('not BER'))]));
      assert.equal((await res.result(3)).code, 2);
      sock.write(searchPdu(4, O, 0));
      assert.equal((await res.result(4)).code, 0);
      // A sync of a virtual entry is refused.
      sock.write(message(5, searchRequest('cn=changelog', present('objectClass'), ['1.1'], 0), [syncRequest(1)]));
      assert.equal((await res.result(5)).code, 53);
    } finally {
      sock.destroy();
    }
  });
});

describe('the persist phase over the wire', () => {
  test('Cancel (RFC 3909) ends it with canceled (118), then succeeds; an unknown ID is noSuchOperation (119); no StartTLS meanwhile', async () => {
    const { sock, res } = await bound(t);
    try {
      sock.write(message(2, searchRequest(O, present('objectClass'), ['cn']), [syncRequest(3)]));
      await res.until(() => res.all.some((r) => r.id === 2 && r.tag === 0x79), 'the refresh to end');
      const info = infoOf(res.all.find((r) => r.id === 2 && r.tag === 0x79)!);
      assert.equal(info.tag, 0xa2, 'refreshPresent');
      // RFC 4511 §4.14.1: no StartTLS while an operation is outstanding.
      sock.write(message(6, extendedRequest('1.3.6.1.4.1.1466.20037')));
      assert.equal((await res.result(6)).code, 1);
      const cancel = (id: number, target: number) => message(id, extendedRequest('1.3.6.1.1.8', seq(int(target))));
      sock.write(cancel(3, 99));
      assert.equal((await res.result(3)).code, 119);
      sock.write(cancel(4, 2));
      const ended = await res.result(2);
      assert.equal(ended.code, 118);
      assert.equal((await res.result(4)).code, 0);
      assert.ok(res.all.indexOf(ended) < res.all.indexOf(res.all.find((r) => r.id === 4)!), 'the canceled search ends before the Cancel is answered');
      const before = res.all.length;
      await churn(2);
      sock.write(searchPdu(7, O, 0));
      await res.result(7);
      assert.equal(res.all.slice(before).filter((r) => r.id === 2).length, 0, 'nothing more after the cancel');
    } finally {
      sock.destroy();
    }
  });

  test('Abandon stops it silently, and so does a bind; it outlives the idle timeout meanwhile; the connection serves other requests', async () => {
    const { sock, res } = await bound(t);
    try {
      sock.write(message(2, searchRequest(PEOPLE, present('objectClass'), ['description']), [syncRequest(3)]));
      await res.until(() => res.all.some((r) => r.id === 2 && r.tag === 0x79), 'the refresh to end');
      const refreshed = entriesOf(res, 2).length;
      // DCMX_LDAP_IDLE_TIMEOUT is 1 s: a quiet persistent search keeps its connection.
      await new Promise((r) => setTimeout(r, 2500));
      assert.equal(res.closed, false, 'not closed as idle');
      await churn(1);
      await res.until(() => entriesOf(res, 2).length > refreshed, 'the change');
      const change = entriesOf(res, 2)[refreshed];
      assert.equal(dnOf(change), `uid=u0,${PEOPLE}`);
      const s = stateOf(change);
      assert.equal(s.state, 2, 'modify');
      assert.match(s.cookie!, /^rid=000,csn=/);
      sock.write(message(3, tlv(0x50, [2])));
      sock.write(searchPdu(4, O, 0));
      assert.equal((await res.result(4)).code, 0);
      const count = res.all.length;
      await churn(2);
      sock.write(searchPdu(5, O, 0));
      await res.result(5);
      assert.deepEqual(res.all.slice(count).map((r) => r.id), [5, 5], 'nothing more for the abandoned search');
      assert.equal(res.all.some((r) => r.id === 2 && r.tag === 0x65), false, 'Abandon answers nothing');

      // A bind abandons a persistent search (RFC 4511 §4.2.1): it does not go on with the rights it began with.
      sock.write(message(6, searchRequest(PEOPLE, present('objectClass'), ['userPassword']), [syncRequest(3)]));
      await res.until(() => res.all.some((r) => r.id === 6 && r.tag === 0x79), 'the second refresh to end');
      sock.write(message(7, tlv(0x60, int(3), octets(''), tlv(0x80, []))));
      assert.equal((await res.result(7)).code, 0);
      const after = res.all.length;
      await churn(1);
      sock.write(searchPdu(8, O, 0));
      await res.result(8);
      assert.deepEqual(res.all.slice(after).map((r) => r.id), [8, 8], 'nothing more for the search the bind abandoned');
    } finally {
      sock.destroy();
    }
  });

  test('changes the search does not see move the cookie on with a Sync Info newcookie', async () => {
    const { sock, res } = await bound(t);
    try {
      sock.write(message(2, searchRequest(PEOPLE, tlv(0xa3, octets('uid'), octets('u1')), ['1.1']), [syncRequest(3)]));
      await res.until(() => res.all.some((r) => r.id === 2 && r.tag === 0x79), 'the refresh to end');
      const seen = res.all.length;
      await churn(1);
      await res.until(() => res.all.length > seen, 'a message');
      const [msg] = res.all.slice(seen);
      assert.equal(msg.tag, 0x79, 'no entry: u0 is not in the search');
      const info = infoOf(msg);
      assert.equal(info.tag, 0x80, 'newcookie');
      assert.equal(info.value.toString('latin1'), `rid=000,csn=${t.app.directory.contextCsn()}`);
    } finally {
      sock.destroy();
    }
  });

  test('a consumer that does not read is disconnected past DCMX_LDAP_SYNC_BACKLOG; the server goes on', async () => {
    const { sock, res } = await bound(t);
    try {
      sock.write(message(2, searchRequest(PEOPLE, present('objectClass'), ['*']), [syncRequest(3)]));
      await res.until(() => res.all.some((r) => r.id === 2 && r.tag === 0x79), 'the refresh to end');
      const open = t.app.ldap.stats().connections;
      sock.pause();
      // Not reading is not what closes it (nor the 1 s idle timeout: a persistent search holds it off) ...
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(t.app.ldap.stats().connections, open);
      // ... falling behind is.
      // Far more than the bound and the sockets' buffers: each change sends u0 with a 256 KiB description.
      // The server ends the connection at once, and closes it a second later (the client reads nothing).
      let n = 0;
      while (t.app.ldap.stats().connections >= open && n < 200) {
        await churn(2, 256 * 1024);
        n += 2;
        await new Promise((r) => setTimeout(r, 100));
      }
      await waitFor('the consumer to be disconnected', () => t.app.ldap.stats().connections < open, 10_000);
      assert.ok(n * 256 * 1024 > BACKLOG);
      // Everything else still works.
      const r = await run('ldapsearch', [...adminArgs(t), '-LLL', '-b', PEOPLE, '-s', 'base', '1.1']);
      assert.equal(r.code, 0, r.stderr);
    } finally {
      sock.destroy();
    }
  });
});

test('a replication identity (DCMX_REPLICATOR_DNS) syncs everything, every userPassword, past the size limit; another user its own password, within the limit', async () => {
  const ALL = 7;
  const u1 = `uid=u1,${PEOPLE}`;
  const repl = await bound(t, REPL, 'repl-pw');
  const user = await bound(t, u1, 'pw-1');
  try {
    repl.sock.write(message(2, searchRequest(PEOPLE, present('objectClass'), ['*']), [syncRequest(1)]));
    assert.equal((await repl.res.result(2)).code, 0);
    const all = entriesOf(repl.res, 2);
    assert.equal(all.length, ALL, 'past DCMX_LDAP_SIZE_LIMIT');
    assert.equal(all.filter((e) => typesOf(e).includes('userpassword')).length, 6, 'every password');

    user.sock.write(message(2, searchRequest(PEOPLE, present('objectClass'), ['*']), [syncRequest(1)]));
    assert.equal((await user.res.result(2)).code, 4, 'sizeLimitExceeded: a user is held to the limit');
    const some = tlv(0xa1, tlv(0xa3, octets('uid'), octets('u1')), tlv(0xa3, octets('uid'), octets('u2')), tlv(0xa3, octets('uid'), octets('repl')));
    user.sock.write(message(3, searchRequest(PEOPLE, some, ['*']), [syncRequest(1)]));
    assert.equal((await user.res.result(3)).code, 0);
    const three = entriesOf(user.res, 3);
    assert.equal(three.length, 3);
    assert.deepEqual(three.filter((e) => typesOf(e).includes('userpassword')).map(dnOf), [u1], 'its own password only');
  } finally {
    repl.sock.destroy();
    user.sock.destroy();
  }
});
