/**
 * RRset signing (server/dns/dnssec-sign.ts): canonical form and labels by
 * the RFC's own examples, and every signature checked by an independent
 * validator, dnspython's dns.dnssec (Debian python3-dnspython), against the
 * zone's DNSKEY; a changed RRset must fail it.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { canonicalRRset, labelCount, RESIGN_AFTER, SignCache, signRRset, validity } from '../../server/dns/dnssec-sign';
import { dnskeyOf, generateZoneKey, keyTag, signingKeyOf, type SigningKey } from '../../server/directory/dnssec-keys';
import { formatRR, parseRData, RRTYPE, RRTYPE_NAME, type RR } from '../../server/directory/records';
import { run } from '../helpers';

/** test/dns/dnssec-validate.py (tests run from dist/test/dns). */
const VALIDATE = path.resolve(__dirname, '..', '..', '..', 'test', 'dns', 'dnssec-validate.py');

/** A fresh zone key as the directory makes it (dnssec-keys.ts): private key, DNSKEY and key tag. */
function testKey(): SigningKey {
  return signingKeyOf(generateZoneKey());
}

const rr = (name: string, ttl: number, type: number, text: string): RR => ({ name, ttl, rdata: parseRData(type, text) });

/** dnspython's verdict on every RRSIG among `rrs`: `ok owner. TYPE` or `bad owner. TYPE: why`. */
async function validate(rrs: RR[], now: number): Promise<string[]> {
  const r = await run('/usr/bin/python3', [VALIDATE, String(now)], rrs.map(formatRR).join('\n') + '\n');
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim().split('\n').sort();
}

describe('dnssec-sign', () => {
  test('labels (RFC 4034 §3.1.3): the root and a leading wildcard do not count', () => {
    assert.equal(labelCount(''), 0);
    assert.equal(labelCount('org'), 1);
    assert.equal(labelCount('www.example.org'), 3);
    assert.equal(labelCount('*.example.org'), 2);
    assert.equal(labelCount('a.*.example.org'), 4);
    assert.equal(labelCount('\\000.x.example.org'), 4);
    assert.equal(labelCount('a\\.b.example.org'), 3);
  });

  test('validity: one hour back, 14 days ahead, rounded down to the hour', () => {
    const now = Date.UTC(2026, 11, 7, 17, 42, 13) / 1000;
    assert.deepEqual(validity(now), { inception: Date.UTC(2026, 11, 7, 16) / 1000, expiration: Date.UTC(2026, 11, 21, 17) / 1000 });
  });

  test('canonical form (RFC 4034 §6.2-6.3): lower case, uncompressed, RDATA order, duplicates once, the original TTL', () => {
    const set = [rr('mx.example.org', 300, RRTYPE.MX, '20 B.example.org.'), rr('mx.example.org', 300, RRTYPE.MX, '10 a.example.org.'),
      rr('mx.example.org', 300, RRTYPE.MX, '10 a.example.org.')];
    const got = canonicalRRset(set, 3600).toString('hex');
    const owner = '026d78076578616d706c65036f726700';
    const head = (len: number) => `000f0001${(3600).toString(16).padStart(8, '0')}${len.toString(16).padStart(4, '0')}`;
    const a = `000a01610765${Buffer.from('xample').toString('hex')}036f726700`;
    const b = `001401620765${Buffer.from('xample').toString('hex')}036f726700`;
    assert.equal(got, `${owner}${head(a.length / 2)}${a}${owner}${head(b.length / 2)}${b}`);
    assert.throws(() => canonicalRRset([]), TypeError);
    assert.throws(() => canonicalRRset([set[0], rr('other.example.org', 300, RRTYPE.MX, '1 x.org.')]), TypeError);
  });

  test('signatures validate with dnspython; a changed RRset, a foreign key or a time outside the window fail', async () => {
    const key = testKey();
    const other = testKey();
    const now = Math.floor(Date.now() / 1000);
    const zone = 'example.org';
    const dnskey: RR = { name: zone, ttl: 3600, rdata: key.dnskey };
    const sets: RR[][] = [
      [dnskey],
      [rr(zone, 3600, RRTYPE.SOA, 'ns1.example.org. hostmaster.example.org. 2026120701 3600 900 604800 60')],
      [rr(zone, 300, RRTYPE.MX, '20 mx2.example.org.'), rr(zone, 300, RRTYPE.MX, '10 mx.example.org.')],
      [rr('www.example.org', 300, RRTYPE.A, '192.0.2.81'), rr('www.example.org', 300, RRTYPE.A, '192.0.2.80')],
      [rr(zone, 300, RRTYPE.TXT, '"v=spf1 mx -all"'), rr(zone, 300, RRTYPE.TXT, '"a" "b"')],
      [rr('_sip._tcp.example.org', 300, RRTYPE.SRV, '10 5 5060 sip.example.org.')],
      [rr('*.wild.example.org', 300, RRTYPE.A, '192.0.2.99')],
      [rr('x.wild.example.org', 300, RRTYPE.A, '192.0.2.99')], // a wildcard answer signed as the name (compact answers)
      [rr('nope.example.org', 60, RRTYPE.NSEC, '\\000.nope.example.org. RRSIG NSEC')],
      [rr('deep.sub.example.org', 60, RRTYPE.NSEC, '\\000.deep.sub.example.org. A RRSIG NSEC')],
      [rr('child.example.org', 300, RRTYPE.DS, '55648 13 2 B4C8C1FE2E7477127B27115656AD6256F424625BF5C1E2770CE6D6E37DF61D17')],
    ];
    const signed = sets.flatMap((s) => [...s, signRRset(s, key, zone, now)]);
    const ok = await validate(signed, now);
    assert.deepEqual(ok, sets.map((s) => `ok ${s[0].name}. ${RRTYPE_NAME[s[0].rdata.type]}`).sort());

    // The wildcard owner's RRSIG counts 2 labels below the root: the validator rebuilds `*.wild.example.org`.
    const wild = signed.find((r) => r.name === '*.wild.example.org' && r.rdata.type === RRTYPE.RRSIG)!;
    assert.equal(wild.rdata.type === RRTYPE.RRSIG && wild.rdata.labels, 3);

    // Each signature made over one RRset and shown with another fails.
    const www = sets[3];
    const sig = signRRset(www, key, zone, now);
    const changed = [rr('www.example.org', 300, RRTYPE.A, '192.0.2.81'), rr('www.example.org', 300, RRTYPE.A, '192.0.2.82')];
    const bad = await validate([dnskey, ...changed, sig], now);
    assert.equal(bad.length, 1);
    assert.match(bad[0], /^bad www\.example\.org\. A/);
    // Signed by a key the DNSKEY RRset does not hold.
    const foreign = await validate([dnskey, ...www, signRRset(www, other, zone, now)], now);
    assert.match(foreign[0], /^bad www\.example\.org\. A/);
    // Checked after the window (15 days on) and before it (2 hours back).
    assert.match((await validate([dnskey, ...www, sig], now + 15 * 86400))[0], /^bad /);
    assert.match((await validate([dnskey, ...www, sig], now - 7200))[0], /^bad /);
  });

  test('the sign cache: same RRset → same RRSIG; a changed RRset, a TTL or a day later → a new one', async () => {
    const key = testKey();
    const cache = new SignCache(100);
    const now = 1_800_000_000;
    const a = [rr('www.example.org', 300, RRTYPE.A, '192.0.2.80')];
    const s1 = cache.sign(a, key, 'example.org', now);
    assert.equal(cache.sign([rr('www.example.org', 300, RRTYPE.A, '192.0.2.80')], key, 'example.org', now + 60), s1);
    assert.deepEqual(cache.stats, { signed: 1, hits: 1 });
    const s2 = cache.sign([rr('www.example.org', 300, RRTYPE.A, '192.0.2.81')], key, 'example.org', now + 60);
    assert.notEqual(s2, s1);
    assert.equal(cache.stats.signed, 2);
    const s3 = cache.sign([rr('www.example.org', 600, RRTYPE.A, '192.0.2.81')], key, 'example.org', now + 60);
    assert.notEqual(s3, s2);
    const s4 = cache.sign([rr('www.example.org', 600, RRTYPE.A, '192.0.2.81')], key, 'example.org', now + 60 + RESIGN_AFTER);
    assert.notEqual(s4, s3);
    assert.equal(s4.rdata.type === RRTYPE.RRSIG && s4.rdata.inception > (s3.rdata.type === RRTYPE.RRSIG ? s3.rdata.inception : 0), true);
    // A negative answer's SOA: signed with the zone's TTL, served with the lower one.
    const soa = rr('example.org', 60, RRTYPE.SOA, 'ns1.example.org. hostmaster.example.org. 1 3600 900 604800 60');
    const sig = cache.sign([soa], key, 'example.org', now, 3600);
    assert.equal(sig.ttl, 60);
    assert.equal(sig.rdata.type === RRTYPE.RRSIG && sig.rdata.originalTtl, 3600);
    const dnskey: RR = { name: 'example.org', ttl: 3600, rdata: key.dnskey };
    assert.deepEqual(await validate([dnskey, soa, sig], now), ['ok example.org. SOA']);
  });

  test('the sign cache tells keys apart, not key tags: a key whose tag collides with an old one gets its own signature', async () => {
    // RFC 4034 Appendix B: a key tag is 16 bits; among 2000 keys two share one (birthday bound, p > 1 - 1e-13).
    const byTag = new Map<number, SigningKey>();
    let pair: [SigningKey, SigningKey] | undefined;
    for (let i = 0; i < 2000 && !pair; i++) {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const dnskey = dnskeyOf(privateKey);
      const k: SigningKey = { privateKey, dnskey, keyTag: keyTag(dnskey) };
      const old = byTag.get(k.keyTag);
      if (old) pair = [old, k];
      else byTag.set(k.keyTag, k);
    }
    assert.ok(pair, 'two keys with one tag');
    const [oldKey, newKey] = pair;
    const cache = new SignCache(100);
    const now = 1_800_000_000;
    const a = [rr('www.example.org', 300, RRTYPE.A, '192.0.2.80')];
    cache.sign(a, oldKey, 'example.org', now);
    const sig = cache.sign(a, newKey, 'example.org', now + 60);
    const dnskey: RR = { name: 'example.org', ttl: 3600, rdata: newKey.dnskey };
    assert.deepEqual(await validate([dnskey, ...a, sig], now + 60), ['ok www.example.org. A']);
    assert.equal(cache.stats.signed, 2);
  });
});
