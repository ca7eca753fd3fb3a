/**
 * Online signing end to end: a zone added over LDAP gets its key in the same
 * transaction (DCMX_DNSSEC on, the default), and its answers to DO queries
 * validate with delv (bind9-dnsutils) holding the zone's DNSKEY as its only
 * trust anchor: positive answers, a CNAME chain, a wildcard, compact denial
 * of existence for a name that does not exist and for a type that does not
 * (RFC 9824), an empty non-terminal, the DS a hosted child's parent serves
 * and the proof that an unsigned delegation has none, and an answer changed
 * by a write, asked right after the write's reply. Unbound, a private
 * instance with a stub zone to our port and the zone's key as trust anchor,
 * sets AD on them. Answers without DO carry nothing of DNSSEC; a signed
 * answer that does not fit sets TC.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { adminArgs, ldapaddAt, run, startTestAppliance, tempDir, type TestAppliance } from '../helpers';
import { digRunner, exampleOrgZone, flags, queryPacket, section, status, udpQuery } from './fixture';
import { decodeMessage } from '../../server/dns/wire';
import { delv, trustAnchor, type TrustAnchor } from './dnssec-tools';
import { startUnbound, type Unbound } from './unbound';

let t: TestAppliance;
let anchor: TrustAnchor;
const dig = digRunner(() => t.app.ports.dns);
const port = (): number => t.app.ports.dns;

const entry = (dc: string, lines: string[]): string =>
  `dn: dc=${dc},dc=example,dc=org,o=internet\nobjectClass: dNSDomain2\nobjectClass: domain\ndc: ${dc.split(',')[0]}\n${lines.join('\n')}\n`;

const ZONE = exampleOrgZone({
  extra: [
    entry('wild', []),
    entry('*,dc=wild', ['aRecord: 192.0.2.99', 'tXTRecord: "wild"']),
    entry('empty', []),
    entry('dangling', ['cNAMERecord: nothere.example.org.']),
    entry('host,dc=empty', ['aRecord: 192.0.2.9']),
    // An unsigned delegation, with glue.
    entry('sub', ['nSRecord: ns.sub.example.org.']),
    entry('ns,dc=sub', ['aRecord: 192.0.2.70']),
    // Many addresses: a signed answer over 512 octets.
    entry('many', Array.from({ length: 24 }, (_, i) => `aRecord: 192.0.2.${100 + i}`)),
    // A delegation to a signed zone elsewhere, with the DS its operator wrote.
    entry('secure', ['nSRecord: ns.elsewhere.net.', `dSRecord: 60485 13 2 ${'D4B7D520E7BB5F0F67674A0CCEB1E3E0614B93C4F9E99B8383F6A1E4469DA50A'}`]),
    // A child zone served here too: signed with a key of its own, its DS served by the parent.
    entry('child', ['sOARecord: ns1.child.example.org. hostmaster.child.example.org. 1 3600 900 604800 60', 'nSRecord: ns1.child.example.org.']),
    entry('ns1,dc=child', ['aRecord: 192.0.2.40']),
    entry('www,dc=child', ['aRecord: 192.0.2.41']),
  ],
});

before(async () => {
  t = await startTestAppliance();
  const r = await ldapaddAt(t.app.ports.ldap, ZONE);
  assert.equal(r.code, 0, r.stderr);
  anchor = await trustAnchor(tempDir('dcmx-dnssec-answers-'), 'example.org', dig);
});

after(async () => {
  await t?.close();
});

describe('signed answers, validated by delv', () => {
  for (const [name, type, expect] of [
    ['example.org', 'SOA', /example\.org\.\s+\d+\s+IN\s+SOA\s+ns1\.example\.org\./],
    ['example.org', 'MX', /IN\s+MX\s+10 mx\.example\.org\./],
    ['example.org', 'DNSKEY', /IN\s+DNSKEY\s+257 3 13 /],
    ['example.org', 'CDS', /IN\s+CDS\s+\d+ 13 2 /],
    ['example.org', 'CDNSKEY', /IN\s+CDNSKEY\s+257 3 13 /],
    ['mx.example.org', 'A', /mx\.example\.org\.\s+\d+\s+IN\s+A\s+192\.0\.2\.25/],
    ['www.example.org', 'A', /www\.example\.org\.\s+\d+\s+IN\s+CNAME\s+mx\.example\.org\./],
    ['x.wild.example.org', 'TXT', /x\.wild\.example\.org\.\s+\d+\s+IN\s+TXT\s+"wild"/],
    ['a.b.wild.example.org', 'A', /a\.b\.wild\.example\.org\.\s+\d+\s+IN\s+A\s+192\.0\.2\.99/],
  ] as const) {
    test(`${name} ${type}: fully validated`, async () => {
      const v = await delv(port(), anchor, name, type);
      assert.ok(v.validated && !v.negative, v.output);
      assert.match(v.records.join('\n'), expect, v.output);
      assert.ok(v.records.some((l) => / RRSIG /.test(l)), v.output);
    });
  }

  test('a name that does not exist: NOERROR with one NSEC to \\000.<name> (RRSIG NSEC NXNAME), validated', async () => {
    const v = await delv(port(), anchor, 'nope.example.org', 'A');
    assert.ok(v.validated && v.negative, v.output);
    const r = await dig('+dnssec', 'nope.example.org', 'A');
    assert.equal(status(r.stdout), 'NOERROR', r.stdout);
    const auth = section(r.stdout, 'AUTHORITY');
    assert.ok(auth.includes('nope.example.org. 60 IN NSEC \\000.nope.example.org. RRSIG NSEC TYPE128'), auth.join('\n'));
    assert.equal(auth.filter((l) => / IN RRSIG /.test(l)).length, 2, auth.join('\n')); // the SOA's and the NSEC's
  });

  test('with the CO flag (RFC 9824 §4) the same denial is NXDOMAIN, CO echoed', async () => {
    // dig cannot set CO (its +ednsflags leaves that bit out): the query is built by hand, OPT TTL flags DO | CO.
    const opt = Buffer.from('00 0029 04d0 0000 c000 0000'.replace(/ /g, ''), 'hex');
    const reply = await udpQuery(port(), queryPacket('nope.example.org', 1, { arcount: 1, extra: opt }));
    const m = decodeMessage(reply!)!;
    assert.equal(m.rcode, 3, m.authority.join('\n'));
    assert.deepEqual(m.additional, ['.\t49152\tCLASS1232\tTYPE41\t\\# 0'], 'OPT with DO and CO');
    assert.ok(m.authority.some((l) => /^nope\.example\.org\.\t60\tIN\tNSEC\t\\000\.nope\.example\.org\. RRSIG NSEC NXNAME$/.test(l)), m.authority.join('\n'));
  });

  test('a type the name lacks (NODATA): the NSEC lists what is there, validated', async () => {
    const v = await delv(port(), anchor, 'mx.example.org', 'TXT');
    assert.ok(v.validated && v.negative, v.output);
    const auth = section((await dig('+dnssec', 'mx.example.org', 'TXT')).stdout, 'AUTHORITY');
    assert.ok(auth.includes('mx.example.org. 60 IN NSEC \\000.mx.example.org. A RRSIG NSEC'), auth.join('\n'));
  });

  test('a CNAME into a name that does not exist: the signed CNAME, then the denial of its target, validated', async () => {
    const r = await dig('+dnssec', 'dangling.example.org', 'A');
    assert.equal(status(r.stdout), 'NOERROR', r.stdout);
    assert.ok(section(r.stdout, 'ANSWER').some((l) => /^dangling\.example\.org\. \d+ IN RRSIG CNAME 13 3 /.test(l)), r.stdout);
    assert.ok(section(r.stdout, 'AUTHORITY').some((l) => /^nothere\.example\.org\. \d+ IN NSEC \\000\.nothere\.example\.org\. RRSIG NSEC TYPE128$/.test(l)), r.stdout);
    const v = await delv(port(), anchor, 'dangling.example.org', 'A');
    assert.ok(v.validated, v.output);
  });

  test('an empty non-terminal and a wildcard\'s missing type: NODATA, validated', async () => {
    for (const [name, type] of [['empty.example.org', 'A'], ['x.wild.example.org', 'MX']]) {
      const v = await delv(port(), anchor, name, type);
      assert.ok(v.validated && v.negative, v.output);
    }
  });

  test('an unsigned delegation: referral with a signed NSEC (NS RRSIG NSEC) proving no DS; its DS question validated as none', async () => {
    const r = await dig('+dnssec', 'www.sub.example.org', 'A');
    assert.equal(status(r.stdout), 'NOERROR', r.stdout);
    assert.ok(!flags(r.stdout).includes('aa'), r.stdout);
    const auth = section(r.stdout, 'AUTHORITY');
    assert.ok(auth.includes('sub.example.org. 3600 IN NS ns.sub.example.org.') || auth.some((l) => /^sub\.example\.org\. \d+ IN NS ns\.sub\.example\.org\.$/.test(l)), auth.join('\n'));
    assert.ok(auth.some((l) => /^sub\.example\.org\. \d+ IN NSEC \\000\.sub\.example\.org\. NS RRSIG NSEC$/.test(l)), auth.join('\n'));
    assert.ok(auth.some((l) => /^sub\.example\.org\. \d+ IN RRSIG NSEC 13 3 /.test(l)), auth.join('\n'));
    assert.ok(!auth.some((l) => / RRSIG NS /.test(l)), 'the NS at a cut is not signed (RFC 4035 §2.2)');
    const v = await delv(port(), anchor, 'sub.example.org', 'DS');
    assert.ok(v.validated && v.negative, v.output);
  });

  test('a hosted child zone: the parent serves its DS, signed; the child\'s answers validate through it', async () => {
    const ds = await delv(port(), anchor, 'child.example.org', 'DS');
    assert.ok(ds.validated && !ds.negative, ds.output);
    assert.ok(ds.records.some((l) => /^child\.example\.org\. \d+ IN RRSIG DS 13 3 \d+ \d+ \d+ \d+ example\.org\. /.test(l)), ds.output);
    const www = await delv(port(), anchor, 'www.child.example.org', 'A');
    assert.ok(www.validated && !www.negative, www.output);
    assert.ok(www.records.some((l) => / IN RRSIG A 13 4 \d+ \d+ \d+ \d+ child\.example\.org\. /.test(l)), www.output);
  });

  test('a delegation with a DS: the referral carries the DS and its RRSIG', async () => {
    const r = await dig('+dnssec', 'www.secure.example.org', 'A');
    const auth = section(r.stdout, 'AUTHORITY');
    assert.ok(auth.some((l) => /^secure\.example\.org\. \d+ IN DS 60485 13 2 /.test(l)), r.stdout);
    assert.ok(auth.some((l) => /^secure\.example\.org\. \d+ IN RRSIG DS 13 3 /.test(l)), r.stdout);
    assert.ok(!auth.some((l) => / IN NSEC /.test(l)), r.stdout);
    const v = await delv(port(), anchor, 'secure.example.org', 'DS');
    assert.ok(v.validated && !v.negative, v.output);
  });

  test('a write changes the signed answer at once: delv right after the reply validates the new data', async () => {
    const r = await run('ldapmodify', adminArgs(t), `dn: dc=mx,dc=example,dc=org,o=internet
changetype: modify
replace: aRecord
aRecord: 192.0.2.26
`);
    assert.equal(r.code, 0, r.stderr);
    const v = await delv(port(), anchor, 'mx.example.org', 'A');
    assert.ok(v.validated && !v.negative, v.output);
    assert.ok(v.records.some((l) => /IN A 192\.0\.2\.26$/.test(l)), v.output);
    assert.ok(!v.records.some((l) => /IN A 192\.0\.2\.25$/.test(l)), v.output);
    // And a name that did not exist, added: its positive answer validates at once.
    const add = await ldapaddAt(t.app.ports.ldap, entry('fresh', ['aRecord: 192.0.2.77']));
    assert.equal(add.code, 0, add.stderr);
    const w = await delv(port(), anchor, 'fresh.example.org', 'A');
    assert.ok(w.validated && !w.negative && w.records.some((l) => /IN A 192\.0\.2\.77$/.test(l)), w.output);
  });
});

describe('signed answers, validated by Unbound through its own recursion', () => {
  let u: Unbound;
  before(async () => {
    const keys = (await dig('+short', 'example.org', 'DNSKEY')).stdout.trim().split('\n').filter((l) => l.startsWith('257 '));
    assert.ok(keys.length > 0);
    u = await startUnbound({ zone: 'example.org', dnskeys: keys, authority: port() });
  });
  after(async () => {
    await u?.stop();
  });

  for (const [name, type, rcode] of [
    ['example.org', 'MX', 'NOERROR'],
    ['www.example.org', 'A', 'NOERROR'],
    ['x.wild.example.org', 'TXT', 'NOERROR'],
    ['nope.example.org', 'A', 'NOERROR'],
    ['mx.example.org', 'TXT', 'NOERROR'],
    ['www.child.example.org', 'A', 'NOERROR'],
  ] as const) {
    test(`${name} ${type}: ${rcode} with AD`, async () => {
      const r = await u.dig(name, type);
      assert.equal(status(r.stdout), rcode, r.stdout + u.log);
      assert.ok(flags(r.stdout).includes('ad'), `no AD:\n${r.stdout}\n${u.log}`);
    });
  }

  test('a forged answer is not given AD: Unbound with another key as trust anchor answers SERVFAIL', async () => {
    const other = await startUnbound({
      zone: 'example.org', authority: port(),
      dnskeys: ['257 3 13 GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA=='],
    });
    try {
      const r = await other.dig('www.example.org', 'A');
      assert.equal(status(r.stdout), 'SERVFAIL', r.stdout);
    } finally {
      await other.stop();
    }
  });
});

describe('what DO does not ask for, and size', () => {
  test('without DO: no RRSIG, no NSEC, NXDOMAIN as before', async () => {
    for (const [name, type, rcode] of [['mx.example.org', 'A', 'NOERROR'], ['nope.example.org', 'A', 'NXDOMAIN'], ['mx.example.org', 'TXT', 'NOERROR']]) {
      const r = await dig(name, type);
      assert.equal(status(r.stdout), rcode, r.stdout);
      assert.doesNotMatch(r.stdout, /\bRRSIG\b|\bNSEC\b/, r.stdout);
    }
  });

  test('a signed answer over the UDP size sets TC; over TCP it comes whole and validates', async () => {
    const r = await dig('+dnssec', '+bufsize=512', '+ignore', 'many.example.org', 'A');
    assert.ok(flags(r.stdout).includes('tc'), r.stdout);
    assert.deepEqual(section(r.stdout, 'ANSWER'), []);
    const tcp = await dig('+dnssec', '+tcp', 'many.example.org', 'A');
    assert.equal(section(tcp.stdout, 'ANSWER').filter((l) => / IN A /.test(l)).length, 24, tcp.stdout);
    const v = await delv(port(), anchor, 'many.example.org', 'A');
    assert.ok(v.validated, v.output);
  });

  test('an explicit NXNAME question to a signed zone is FORMERR (RFC 9824 §3.5)', async () => {
    const r = await dig('+dnssec', 'nope.example.org', 'TYPE128');
    assert.equal(status(r.stdout), 'FORMERR', r.stdout);
  });
});
