/**
 * signAnswer (server/dns/dnssec-answer.ts) as a table over lookup() and a
 * store on :memory: (STYLE.md): the NSEC a negative answer carries and what
 * is signed, for the cases the end-to-end test does not reach — a hosted
 * child that signs and one that does not, seen from the parent and from
 * themselves. Every RRSIG is checked with dnspython against the DNSKEY of
 * its signer.
 */
import { before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { memoryDirectory, attrs } from '../directory/fixture';
import { lookup } from '../../server/dns/lookup';
import { signAnswer } from '../../server/dns/dnssec-answer';
import { SignCache } from '../../server/dns/dnssec-sign';
import { generateZoneKey, KEY_ATTRIBUTE, ZONE_KEY_CLASS } from '../../server/directory/dnssec-keys';
import { formatRR, RRTYPE, type RR } from '../../server/directory/records';
import type { Zones } from '../../server/directory/zones';
import { run } from '../helpers';

const VALIDATE = path.resolve(__dirname, '..', '..', '..', 'test', 'dns', 'dnssec-validate.py');
const NOW = Math.floor(Date.now() / 1000);
let zones: Zones;
const cache = new SignCache();

before(async () => {
  const m = await memoryDirectory();
  zones = m.zones;
  const add = (dn: string, a: Record<string, string | string[]>) => m.dir.addSync(m.admin, `${dn},o=internet`, attrs(a));
  const apex = (dc: string, soa: string, signed: boolean, extra: Record<string, string | string[]> = {}) => add(dc, {
    objectClass: ['dNSDomain2', 'domain', ...(signed ? [ZONE_KEY_CLASS] : [])], dc: dc.split(',')[0].slice(3), dNSTTL: '300', sOARecord: soa,
    ...(signed ? { [KEY_ATTRIBUTE]: generateZoneKey() } : {}), ...extra,
  });
  add('dc=org', { objectClass: 'domain', dc: 'org' });
  apex('dc=example,dc=org', 'ns1.example.org. hostmaster.example.org. 1 3600 900 604800 60', true, { nSRecord: 'ns1.example.org.', aRecord: '192.0.2.1' });
  add('dc=ns1,dc=example,dc=org', { objectClass: ['dNSDomain2', 'domain'], dc: 'ns1', aRecord: '192.0.2.53' });
  add('dc=wild,dc=example,dc=org', { objectClass: ['domain'], dc: 'wild' });
  add('dc=*,dc=wild,dc=example,dc=org', { objectClass: ['dNSDomain2', 'domain'], dc: '*', aRecord: '192.0.2.99' });
  apex('dc=signed,dc=example,dc=org', 'ns1.example.org. hostmaster.example.org. 1 3600 900 604800 60', true, { nSRecord: 'ns1.example.org.', mXRecord: '10 ns1.example.org.' });
  apex('dc=plain,dc=example,dc=org', 'ns1.example.org. hostmaster.example.org. 1 3600 900 604800 60', false, { nSRecord: 'ns1.example.org.' });
});

/** lookup() then signAnswer() as the Answerer does for a DO query; undefined when the answering zone does not sign. */
function signed(name: string, type: number, co = false) {
  const a = lookup(zones, { name, type, class: 1 });
  const s = a.zone === undefined ? undefined : zones.signingOf(a.zone);
  if (!s) return undefined;
  return { zone: a.zone!, ...signAnswer(a, zones.zoneOf(a.zone!)!, { keys: s.keys, cache, now: NOW }, co) };
}

/** The DNSKEYs of the zones, for the validator. */
const dnskeys = (): RR[] => ['example.org', 'signed.example.org'].flatMap((z) => zones.node(z)!.rrsets.get(RRTYPE.DNSKEY) ?? []);

async function validate(rrs: RR[]): Promise<string[]> {
  const r = await run('/usr/bin/python3', [VALIDATE, String(NOW)], [...dnskeys(), ...rrs].map(formatRR).join('\n') + '\n');
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim().split('\n').filter((l) => !/ DNSKEY$/.test(l));
}

const texts = (rrs: RR[]) => rrs.filter((r) => r.rdata.type !== RRTYPE.RRSIG).map((r) => formatRR(r).replace(/\t/g, ' '));
const sigs = (rrs: RR[]) => rrs.filter((r) => r.rdata.type === RRTYPE.RRSIG).map((r) => `${r.name} ${r.rdata.type === RRTYPE.RRSIG ? `${r.rdata.typeCovered} ${r.rdata.signer}` : ''}`);

describe('signAnswer', () => {
  test('an unsigned zone is not signed', () => {
    assert.equal(signed('plain.example.org', RRTYPE.SOA), undefined);
  });

  for (const c of [
    {
      q: ['nope.example.org', RRTYPE.A], zone: 'example.org', nxdomain: false,
      nsec: 'nope.example.org. 60 IN NSEC \\000.nope.example.org. RRSIG NSEC NXNAME',
    },
    {
      q: ['nope.example.org', RRTYPE.A, true], zone: 'example.org', nxdomain: true,
      nsec: 'nope.example.org. 60 IN NSEC \\000.nope.example.org. RRSIG NSEC NXNAME',
    },
    // DS of an unsigned child hosted here: the parent proves there is none, with the types of its side of the cut only.
    { q: ['plain.example.org', RRTYPE.DS], zone: 'example.org', nxdomain: false, nsec: 'plain.example.org. 60 IN NSEC \\000.plain.example.org. NS RRSIG NSEC' },
    // The signed child's own apex: its NODATA lists its types, not the DS its node holds for the parent.
    {
      q: ['signed.example.org', RRTYPE.TXT], zone: 'signed.example.org', nxdomain: false,
      nsec: 'signed.example.org. 60 IN NSEC \\000.signed.example.org. NS SOA MX RRSIG NSEC DNSKEY CDS CDNSKEY',
    },
  ] as const) {
    test(`${c.q[0]} ${c.q[1]}${c.q[2] ? ' with CO' : ''}: denied by ${c.nsec}`, async () => {
      const s = signed(c.q[0], c.q[1], c.q[2] ?? false)!;
      assert.equal(s.zone, c.zone);
      assert.equal(s.nxdomain, c.nxdomain);
      assert.deepEqual(s.answer, []);
      const auth = texts(s.authority);
      assert.equal(auth.length, 2, auth.join('\n'));
      assert.match(auth[0], new RegExp(`^${c.zone.replace(/\./g, '\\.')}\\. 60 IN SOA `));
      assert.equal(auth[1], c.nsec);
      assert.deepEqual(sigs(s.authority), [`${c.zone} 6 ${c.zone}`, `${c.q[0]} 47 ${c.zone}`]);
      assert.deepEqual(await validate(s.authority), [`ok ${c.zone}. SOA`, `ok ${c.q[0]}. NSEC`]);
    });
  }

  test('the DS of a signed child hosted here: answered by the parent, signed by the parent', async () => {
    const s = signed('signed.example.org', RRTYPE.DS)!;
    assert.equal(s.zone, 'example.org');
    assert.deepEqual(sigs(s.answer), ['signed.example.org 43 example.org']);
    assert.deepEqual(await validate(s.answer), ['ok signed.example.org. DS']);
  });

  test('an answer with additional addresses: every RRset signed, the additional ones too', async () => {
    const s = signed('signed.example.org', RRTYPE.MX)!;
    assert.deepEqual(sigs(s.answer), ['signed.example.org 15 signed.example.org']);
    // ns1.example.org lies outside the child zone: not its to serve, so no additional address.
    assert.deepEqual(s.additional, []);
    const apex = signed('example.org', RRTYPE.NS)!;
    assert.deepEqual(sigs(apex.additional), ['ns1.example.org 1 example.org']);
    assert.deepEqual(await validate([...apex.answer, ...apex.additional]), ['ok example.org. NS', 'ok ns1.example.org. A']);
  });

  test('names a wildcard synthesizes (as many as clients invent) are signed per answer, never kept in the sign cache', async () => {
    const own = new SignCache();
    const ask = (name: string, type: number) => {
      const a = lookup(zones, { name, type, class: 1 });
      return signAnswer(a, zones.zoneOf(a.zone!)!, { keys: zones.signingOf(a.zone!)!.keys, cache: own, now: NOW }, false);
    };
    ask('ns1.example.org', RRTYPE.MX); // the zone's SOA and a real name's NSEC enter the cache
    const made = own.stats.signed;
    for (let i = 0; i < 50; i++) {
      ask(`r${i}.wild.example.org`, RRTYPE.A);
      ask(`r${i}.wild.example.org`, RRTYPE.MX);
    }
    assert.deepEqual(own.stats, { signed: made, hits: 50 }, 'only the negative SOA came from the cache');
    const s = ask('r1.wild.example.org', RRTYPE.A);
    assert.deepEqual(sigs(s.answer), ['r1.wild.example.org 1 example.org']);
    assert.deepEqual(await validate(s.answer), ['ok r1.wild.example.org. A']);
    const n = ask('r1.wild.example.org', RRTYPE.MX);
    assert.equal(texts(n.authority)[1], 'r1.wild.example.org. 60 IN NSEC \\000.r1.wild.example.org. A RRSIG NSEC');
    assert.deepEqual(await validate(n.authority), ['ok example.org. SOA', 'ok r1.wild.example.org. NSEC']);
  });
});
