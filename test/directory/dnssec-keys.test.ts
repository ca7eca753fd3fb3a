/**
 * DNSSEC keys (server/directory/dnssec-keys.ts) against published vectors
 * and BIND's dnssec-dsfromkey, and the zone state that lives with them
 * (dnssec-state.ts, zones.ts): a key born in the transaction that makes a
 * zone, DNSKEY/CDS/CDNSKEY at the apex, the DS at a hosted parent's cut,
 * and the RFC 8078 withdrawal when DCMX_DNSSEC is off.
 */
import { before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { attrs, memoryDirectory, SUFFIX } from './fixture';
import { run } from '../helpers';
import {
  CDNSKEY_DELETE, CDS_DELETE, dnskeyOf, dsOf, generateZoneKey, keyTag, signingKeyOf, type DnskeyRData,
} from '../../server/directory/dnssec-keys';
import { reconcile, SERIAL_REFRESH_MS, startDnssecDuty } from '../../server/directory/dnssec-state';
import { silentLogger } from '../../server/log';
import { formatRData, formatRR, RRTYPE, type RR } from '../../server/directory/records';
import type { Directory } from '../../server/directory/directory';
import type { Identity } from '../../server/directory/access';
import type { Zones } from '../../server/directory/zones';
import { DirectoryError } from '../../server/directory/errors';

/** RFC 6605 §6.1: the P-256 example key of example.net, its DNSKEY and its DS. */
const RFC6605 = {
  privateKey: 'GU6SnQ/Ou+xC5RumuIUIuJZteXT2z0O/ok1s38Et6mQ=',
  dnskey: 'GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA==',
  keyTag: 55648,
  ds: 'b4c8c1fe2e7477127b27115656ad6256f424625bf5c1e2770ce6d6e37df61d17',
};

describe('keys and their records', () => {
  test('RFC 6605 §6.1: DNSKEY, key tag and SHA-256 DS of the example key', () => {
    const pub = Buffer.from(RFC6605.dnskey, 'base64');
    const key = createPrivateKey({
      format: 'jwk',
      key: {
        kty: 'EC', crv: 'P-256', x: pub.subarray(0, 32).toString('base64url'), y: pub.subarray(32).toString('base64url'),
        d: Buffer.from(RFC6605.privateKey, 'base64').toString('base64url'),
      },
    });
    const k = dnskeyOf(key);
    assert.equal(formatRData(k), `257 3 13 ${RFC6605.dnskey}`);
    assert.equal(keyTag(k), RFC6605.keyTag);
    const ds = dsOf('example.net', k);
    assert.equal(formatRData(ds), `${RFC6605.keyTag} 13 2 ${RFC6605.ds.toUpperCase()}`);
    // The owner name is hashed in canonical (lower-case) form, RFC 4034 §6.2.
    assert.equal(dsOf('Example.NET', k).digest.toString('hex'), RFC6605.ds);
    const pem = key.export({ type: 'pkcs8', format: 'pem' }) as string;
    assert.equal(signingKeyOf(pem).keyTag, RFC6605.keyTag);
  });

  test('a new key is P-256; its DS (SHA-256 and SHA-384) is the one dnssec-dsfromkey makes from its DNSKEY', async () => {
    const k = signingKeyOf(generateZoneKey());
    assert.equal(k.dnskey.publicKey.length, 64, 'RFC 6605 §4: x | y, 32 octets each');
    assert.equal(k.dnskey.flags, 257);
    const zoneFile = `signed.example. 3600 IN DNSKEY ${formatRData(k.dnskey)}\n`;
    for (const digest of [2, 4]) {
      const r = await run('dnssec-dsfromkey', ['-a', digest === 2 ? 'SHA-256' : 'SHA-384', '-f', '-', 'signed.example'], zoneFile);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim().replace(/\s+/g, ' '), `signed.example. IN DS ${formatRData(dsOf('signed.example', k.dnskey, digest))}`);
    }
  });

  test('other key types and digest types are refused', () => {
    assert.throws(() => signingKeyOf('not a key'));
    assert.throws(() => dnskeyOf(generateKeyPairSync('ed25519').privateKey), /P-256/);
    const k: DnskeyRData = signingKeyOf(generateZoneKey()).dnskey;
    assert.throws(() => dsOf('x.example', k, 3), /digest type 3/);
  });

  test('the RFC 8078 §4 delete forms', () => {
    assert.equal(formatRData(CDS_DELETE), '0 0 0 00');
    assert.equal(formatRData(CDNSKEY_DELETE), '0 3 0 AA==');
  });
});

const dn = (name: string) => name.split('.').map((l) => `dc=${l}`).join(',') + `,${SUFFIX}`;
const soa = (zone: string) => `ns1.${zone}. hostmaster.${zone}. 1 3600 900 604800 60`;
const types = (rrs: RR[] | undefined) => (rrs ?? []).map((r) => r.rdata.type);

describe('zone keys in the directory (DCMX_DNSSEC on)', () => {
  let dir: Directory;
  let admin: Identity;
  let zones: Zones;
  const serial = (zone: string) => zones.zoneOf(zone)!.soa.rdata.serial;

  before(async () => {
    ({ dir, admin, zones } = await memoryDirectory({ dnssec: true }));
    dir.addSync(admin, dn('org'), attrs({ objectClass: 'domain', dc: 'org' }));
  });

  test('a zone added with its sOARecord gets a key in the same transaction; DNSKEY, CDS, CDNSKEY at its apex', () => {
    dir.addSync(admin, dn('parent.org'), attrs({
      objectClass: ['dNSDomain2', 'domain'], dc: 'parent', sOARecord: soa('parent.org'), nSRecord: 'ns1.parent.org.',
    }));
    const e = dir.getByNdn(dn('parent.org'))!;
    assert.equal(e.attrs.dnssecPrivateKey?.length, 1);
    assert.ok(e.attrs.objectClass.includes('dnssecZone'));
    // One transaction, one serial bump (RFC 1982 +1): a key written in a second one would have bumped it again.
    assert.equal(serial('parent.org'), 2);
    const s = zones.signingOf('parent.org');
    assert.ok(s && !s.withdrawing && s.keys.length === 1);
    const apex = zones.node('parent.org')!;
    const [dnskey] = apex.rrsets.get(RRTYPE.DNSKEY)!;
    assert.deepEqual(dnskey.rdata, s.keys[0].dnskey);
    assert.equal(dnskey.ttl, 3600);
    const [cds] = apex.rrsets.get(RRTYPE.CDS)!;
    assert.deepEqual(cds.rdata, { ...dsOf('parent.org', s.keys[0].dnskey), type: RRTYPE.CDS });
    const [cdnskey] = apex.rrsets.get(RRTYPE.CDNSKEY)!;
    assert.deepEqual(cdnskey.rdata, { ...s.keys[0].dnskey, type: RRTYPE.CDNSKEY });
    assert.ok(!apex.rrsets.has(RRTYPE.DS), 'no DS at a zone whose parent is not served here');
    assert.equal(zones.signingOf('parent.org'), s, 'parsed once per version of the view');
    const records = zones.zoneRecords('parent.org')!.map(formatRR);
    for (const t of ['DNSKEY', 'CDS', 'CDNSKEY']) assert.equal(records.filter((l) => l.includes(`\tIN\t${t}\t`)).length, 1, t);
  });

  test('a plain modify that makes an entry a zone apex gives it a key; the hosted parent serves its DS at the cut', () => {
    dir.addSync(admin, dn('child.parent.org'), attrs({ objectClass: ['dNSDomain2', 'domain'], dc: 'child', aRecord: '192.0.2.7' }));
    assert.equal(zones.signingOf('child.parent.org'), undefined);
    const parentSerial = serial('parent.org');
    dir.modifySync(admin, dn('child.parent.org'), [
      { op: 'add', type: 'sOARecord', values: [soa('child.parent.org')] }, { op: 'add', type: 'nSRecord', values: ['ns1.parent.org.'] },
    ]);
    const s = zones.signingOf('child.parent.org')!;
    assert.ok(s);
    const ds = zones.node('child.parent.org')!.rrsets.get(RRTYPE.DS)!;
    assert.deepEqual(ds.map((r) => r.rdata), [dsOf('child.parent.org', s.keys[0].dnskey)]);
    const parentRecords = zones.zoneRecords('parent.org')!.map(formatRR);
    assert.ok(parentRecords.includes(formatRR(ds[0])), 'the DS is in the parent zone, next to the cut NS');
    assert.ok(!zones.zoneRecords('child.parent.org')!.map(formatRR).includes(formatRR(ds[0])), 'the child zone holds no DS of its own');
    assert.notEqual(serial('parent.org'), parentSerial, 'the parent zone changed with the DS');
  });

  test('a key given with the zone (an import) is kept; a value that is no P-256 key is refused', () => {
    const pem = generateZoneKey();
    dir.addSync(admin, dn('imported.org'), attrs({
      objectClass: ['dNSDomain2', 'domain', 'dnssecZone'], dc: 'imported', sOARecord: soa('imported.org'), dnssecPrivateKey: pem,
    }));
    assert.deepEqual(dir.getByNdn(dn('imported.org'))!.attrs.dnssecPrivateKey, [pem]);
    // A zone withdrawn by deleting its SOA and given one again signs with the same key (a DS at its parent still holds).
    dir.modifySync(admin, dn('imported.org'), [{ op: 'delete', type: 'sOARecord', values: [] }]);
    assert.equal(zones.signingOf('imported.org'), undefined);
    dir.modifySync(admin, dn('imported.org'), [{ op: 'add', type: 'sOARecord', values: [soa('imported.org')] }]);
    assert.deepEqual(dir.getByNdn(dn('imported.org'))!.attrs.dnssecPrivateKey, [pem]);
    assert.equal(zones.signingOf('imported.org')?.keys[0].keyTag, signingKeyOf(pem).keyTag);
    assert.throws(() => dir.modifySync(admin, dn('imported.org'), [{ op: 'replace', type: 'dnssecPrivateKey', values: ['-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----'] }]),
      (e: unknown) => e instanceof DirectoryError && e.result === 'invalidAttributeSyntax');
  });

  test('a re-key changes the zone: serial up, journal dropped (the next IXFR is the whole zone)', () => {
    dir.modifySync(admin, dn('parent.org'), [{ op: 'add', type: 'mXRecord', values: ['10 mx.parent.org.'] }]);
    assert.ok(dir.store.journal('parent.org').length > 0);
    const before = serial('parent.org');
    dir.modifySync(admin, dn('parent.org'), [{ op: 'replace', type: 'dnssecPrivateKey', values: [generateZoneKey()] }]);
    assert.notEqual(serial('parent.org'), before);
    assert.deepEqual(dir.store.journal('parent.org'), []);
  });

  test('DCMX_DNSSEC off: withdrawal (delete CDS/CDNSKEY, DS gone at the parent), then after the grace the key goes', () => {
    const grace = 60_000;
    const t0 = Math.floor(Date.now() / 1000) * 1000; // GeneralizedTime keeps seconds
    const childSerial = serial('child.parent.org');
    const parentSerial = serial('parent.org');
    const r = reconcile(dir, zones, { enabled: false, withdrawGraceMs: grace }, t0);
    assert.deepEqual(r.withdrawn.sort(), ['child.parent.org', 'imported.org', 'parent.org']);
    assert.equal(r.nextDueMs, t0 + grace);
    const s = zones.signingOf('child.parent.org')!;
    assert.ok(s.withdrawing, 'still signing while withdrawing');
    const apex = zones.node('child.parent.org')!;
    assert.equal(apex.rrsets.get(RRTYPE.DNSKEY)?.length, 1);
    assert.deepEqual(apex.rrsets.get(RRTYPE.CDS)!.map((x) => formatRData(x.rdata)), ['0 0 0 00']);
    assert.deepEqual(apex.rrsets.get(RRTYPE.CDNSKEY)!.map((x) => formatRData(x.rdata)), ['0 3 0 AA==']);
    assert.ok(!apex.rrsets.has(RRTYPE.DS), 'the hosted parent drops the DS at once');
    assert.ok(!zones.zoneRecords('parent.org')!.some((x) => x.rdata.type === RRTYPE.DS));
    assert.notEqual(serial('child.parent.org'), childSerial);
    assert.notEqual(serial('parent.org'), parentSerial);
    // Before the grace has passed: nothing more.
    assert.deepEqual(reconcile(dir, zones, { enabled: false, withdrawGraceMs: grace }, t0 + grace - 5000), { signed: [], resumed: [], withdrawn: [], unsigned: [], refreshed: [], nextDueMs: t0 + grace });
    const done = reconcile(dir, zones, { enabled: false, withdrawGraceMs: grace }, t0 + grace + 1000);
    assert.deepEqual(done.unsigned.sort(), ['child.parent.org', 'imported.org', 'parent.org']);
    assert.equal(zones.signingOf('child.parent.org'), undefined);
    const e = dir.getByNdn(dn('child.parent.org'))!;
    assert.equal(e.attrs.dnssecPrivateKey, undefined);
    assert.equal(e.attrs.dnssecWithdrawal, undefined);
    assert.ok(!e.attrs.objectClass.includes('dnssecZone'));
    assert.deepEqual(types([...zones.node('child.parent.org')!.rrsets.values()].flat()).filter((t) => t === RRTYPE.DNSKEY || t === RRTYPE.CDS), []);
  });

  test('DCMX_DNSSEC on again: every unsigned zone is signed with a new key', () => {
    const r = reconcile(dir, zones, { enabled: true, withdrawGraceMs: 1000 });
    assert.deepEqual(r.signed.sort(), ['child.parent.org', 'imported.org', 'parent.org']);
    assert.ok(zones.node('child.parent.org')!.rrsets.has(RRTYPE.DS));
    const again = reconcile(dir, zones, { enabled: true, withdrawGraceMs: 1000 });
    assert.deepEqual({ ...again, nextDueMs: undefined }, { signed: [], resumed: [], withdrawn: [], unsigned: [], refreshed: [], nextDueMs: undefined });
    assert.ok(again.nextDueMs! > Date.now() + SERIAL_REFRESH_MS - 60_000, 'the next pass is when a serial gets a week old');
  });

  test('DCMX_DNSSEC on again during a withdrawal: the zone keeps its key (a DS at the parent may still name it)', () => {
    const pem = dir.getByNdn(dn('child.parent.org'))!.attrs.dnssecPrivateKey;
    const t0 = Math.floor(Date.now() / 1000) * 1000;
    assert.ok(reconcile(dir, zones, { enabled: false, withdrawGraceMs: 60_000 }, t0).withdrawn.includes('child.parent.org'));
    assert.ok(zones.signingOf('child.parent.org')!.withdrawing);
    const r = reconcile(dir, zones, { enabled: true, withdrawGraceMs: 60_000 }, t0 + 1000);
    assert.deepEqual(r.signed, []);
    assert.deepEqual(r.resumed.sort(), ['child.parent.org', 'imported.org', 'parent.org']);
    const e = dir.getByNdn(dn('child.parent.org'))!;
    assert.deepEqual(e.attrs.dnssecPrivateKey, pem, 'the same key');
    assert.equal(e.attrs.dnssecWithdrawal, undefined);
    const s = zones.signingOf('child.parent.org')!;
    assert.ok(!s.withdrawing);
    assert.deepEqual(zones.node('child.parent.org')!.rrsets.get(RRTYPE.DS)!.map((x) => x.rdata), [dsOf('child.parent.org', s.keys[0].dnskey)],
      'the hosted parent serves the DS of that key again');
    assert.deepEqual(zones.node('child.parent.org')!.rrsets.get(RRTYPE.CDS)!.map((x) => x.rdata), [{ ...dsOf('child.parent.org', s.keys[0].dnskey), type: RRTYPE.CDS }]);
  });

  test('a signed zone whose serial has not moved for a week gets a new one (secondaries renew their signatures)', () => {
    const before = serial('parent.org');
    const later = Date.now() + SERIAL_REFRESH_MS + 60_000;
    const r = reconcile(dir, zones, { enabled: true, withdrawGraceMs: 1000 }, later);
    assert.deepEqual(r.refreshed.sort(), ['child.parent.org', 'imported.org', 'parent.org']);
    assert.equal(serial('parent.org'), before + 1);
    assert.ok(zones.signingOf('parent.org'), 'same key, still signed');
    assert.deepEqual(reconcile(dir, zones, { enabled: true, withdrawGraceMs: 1000 }).refreshed, [], 'a serial moved just now is not due');
  });
});

describe('the DNSSEC duty belongs to the owner of the data dir', () => {
  test('nothing before the data dir is owned; then a pass at once', async () => {
    const { dir, admin, zones } = await memoryDirectory();
    dir.addSync(admin, dn('org'), attrs({ objectClass: ['dNSDomain2', 'domain'], dc: 'org', sOARecord: soa('org') }));
    let own!: () => void;
    const owned = new Promise<void>((resolve) => (own = resolve));
    const duty = startDnssecDuty(dir, zones, { enabled: true, withdrawGraceMs: 1000 }, silentLogger(), owned);
    try {
      assert.equal(duty.run(), undefined, 'a successor does nothing yet');
      assert.equal(zones.signingOf('org'), undefined);
      own();
      await owned;
      await new Promise((r) => setImmediate(r));
      assert.ok(zones.signingOf('org'), 'signed once owned');
    } finally {
      duty.stop();
    }
  });
});

describe('zone keys with DCMX_DNSSEC off', () => {
  test('a zone born gets no key, and is served unsigned', async () => {
    const { dir, admin, zones } = await memoryDirectory();
    dir.addSync(admin, dn('org'), attrs({ objectClass: ['dNSDomain2', 'domain'], dc: 'org', sOARecord: soa('org') }));
    assert.equal(dir.getByNdn(dn('org'))!.attrs.dnssecPrivateKey, undefined);
    assert.equal(zones.signingOf('org'), undefined);
    assert.ok(!zones.node('org')!.rrsets.has(RRTYPE.DNSKEY));
  });
});
