/**
 * A signed zone leaves dcmx whole: AXFR and IXFR carry it with its classic
 * NSEC chain and RRSIGs; `dcmx zone export` prints it so that BIND's
 * dnssec-verify and Knot's kzonecheck accept it (and refuse it once one
 * signature is altered or one NSEC dropped); a real Knot secondary that
 * checks every version it transfers (`dnssec-validation: on`) serves it, and
 * delv, with our DNSKEY as its only trust anchor, validates Knot's positive,
 * wildcard, NXDOMAIN and NODATA answers, before and after a write that
 * reaches Knot by NOTIFY. A zone whose signing is being withdrawn
 * (DCMX_DNSSEC=off, RFC 8078 §4) still leaves signed, with the delete CDS
 * and CDNSKEY, and the checkers accept that too.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { adminArgs, run, runDcmx, startTestAppliance, tempDir, testEnv, type TestAppliance } from '../helpers';
import { exampleOrgZone, flags, kdigRunner, queryPacket, section, soaSerial, status, tcpFrame, tcpMessages } from './fixture';
import { decodeMessage } from '../../server/dns/wire';
import { freeDualPort, startKnot, type Knot } from './knot';
import { delv, dnssecVerify, kzonecheck, trustAnchor, type TrustAnchor } from './dnssec-tools';
import { startUnbound } from './unbound';
import { waitForAsync } from '../fixtures/wait';

const ZONE = 'example.org';

/**
 * Beyond exampleOrgZone: a delegation (sub) with glue below it, empty
 * non-terminals (wild, b) above a wildcard and a deeper name, and a child
 * zone hosted here (kid, signed as it is born), whose DS the parent holds.
 */
const EXTRA = [
  'dn: dc=kid,dc=example,dc=org,o=internet\nobjectClass: dNSDomain2\nobjectClass: domain\ndc: kid\n'
    + 'sOARecord: ns1.example.org. hostmaster.example.org. 1 3600 900 604800 60\nnSRecord: ns1.example.org.\naRecord: 192.0.2.60\n',
  'dn: dc=sub,dc=example,dc=org,o=internet\nobjectClass: dNSDomain2\ndc: sub\nnSRecord: ns.sub.example.org.\n',
  'dn: dc=ns,dc=sub,dc=example,dc=org,o=internet\nobjectClass: dNSDomain2\ndc: ns\naRecord: 192.0.2.54\n',
  'dn: dc=wild,dc=example,dc=org,o=internet\nobjectClass: domain\ndc: wild\n',
  'dn: dc=*,dc=wild,dc=example,dc=org,o=internet\nobjectClass: dNSDomain2\ndc: *\ntXTRecord: "any wild name"\n',
  'dn: dc=b,dc=example,dc=org,o=internet\nobjectClass: domain\ndc: b\n',
  'dn: dc=a,dc=b,dc=example,dc=org,o=internet\nobjectClass: dNSDomain2\ndc: a\naAAARecord: 2001:db8::a\n',
];

let t: TestAppliance;
let knot: Knot | undefined;
let knotPort = 0;
let work = '';
let anchor: TrustAnchor;

const kdigDcmx = kdigRunner(() => t.app.ports.dns);
const kdigKnot = kdigRunner(() => knotPort);

async function serialOf(dig: typeof kdigDcmx): Promise<number> {
  const r = await dig(ZONE, 'SOA');
  return status(r.stdout) === 'NOERROR' ? soaSerial(section(r.stdout, 'ANSWER').join('\n')) : -1;
}

/** The records of a transfer from dcmx (`kdig +tcp <args>`), white space folded; fails on an empty or refused one. */
async function transfer(...args: string[]): Promise<string[]> {
  const r = await kdigDcmx('+tcp', ...args);
  const lines = r.stdout.split('\n').filter((l) => l && !l.startsWith(';')).map((l) => l.replace(/\s+/g, ' ').trim());
  assert.ok(lines.length > 2, `transfer ${args.join(' ')} returned nothing:\n${r.stdout}${r.stderr}`);
  return lines;
}

/**
 * One TCP connection to dcmx's DNS port (one connection is served by one
 * thread): `axfr()` transfers the zone over it and gives its RRSIGs by
 * `owner covered-type`.
 */
function connection(): { axfr: () => Promise<Map<string, string>>; close: () => void } {
  const sock = net.connect(t.app.ports.dns, '127.0.0.1');
  let waiting: ((m: Buffer) => void) | undefined;
  const got: Buffer[] = [];
  sock.on('data', tcpMessages((m) => {
    got.push(Buffer.from(m));
    waiting?.(m);
  }));
  const axfr = async (): Promise<Map<string, string>> => {
    got.length = 0;
    sock.write(tcpFrame(queryPacket(ZONE, 252, { id: 77 })));
    const rrs: string[] = [];
    // Messages until the closing SOA: the second SOA of the answer sections.
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('AXFR over the kept connection timed out')), 10_000);
      const take = () => {
        for (const m of got.splice(0)) rrs.push(...(decodeMessage(m)?.answer ?? []));
        if (rrs.filter((l) => l.split('\t')[3] === 'SOA').length >= 2) {
          clearTimeout(timer);
          resolve();
        }
      };
      waiting = take;
      take();
    });
    const sigs = new Map<string, string>();
    for (const l of rrs) {
      const f = l.split('\t');
      if (f[3] === 'RRSIG') sigs.set(`${f[0]} ${f[4].split(' ')[0]}`, f[4]);
    }
    return sigs;
  };
  return { axfr, close: () => sock.destroy() };
}

/** Records of one type in transfer lines. */
const ofType = (lines: string[], type: string) => lines.filter((l) => l.split(' ')[3] === type);

/** Knot's log lines about our zone from offset `from`. */
const knotZoneLog = (from = 0) => (knot?.log ?? '').slice(from).split('\n').filter((l) => l.includes(`[${ZONE}.]`));

/**
 * Waits until knot serves dcmx's current serial, having validated it
 * (knot publishes a version only once `dnssec-validation` passed, and logs it).
 */
async function knotCaughtUp(from: number): Promise<number> {
  const want = await serialOf(kdigDcmx);
  await waitForAsync(`knot to validate and serve serial ${want}`, async () => {
    if (knot?.exited) throw new Error(`knotd exited:\n${knot.log}`);
    return (await serialOf(kdigKnot)) === want && knotZoneLog(from).some((l) => /DNSSEC, validation successful/.test(l));
  }, 30_000, 200).catch((e: Error) => {
    throw new Error(`${e.message}\nknot log:\n${knotZoneLog(from).join('\n')}`);
  });
  return want;
}

before(async () => {
  work = tempDir('dcmx-signed-');
  knotPort = await freeDualPort();
  t = await startTestAppliance({ DCMX_AXFR_ALLOW: '127.0.0.1/32', DCMX_NOTIFY: `127.0.0.1:${knotPort}` });
  const r = await run('ldapadd', adminArgs(t), exampleOrgZone({ extra: EXTRA }));
  assert.equal(r.code, 0, r.stderr);
  anchor = await trustAnchor(work, ZONE, kdigDcmx);
  knot = await startKnot({ port: knotPort, primaryPort: t.app.ports.dns, zone: ZONE, dnssecValidation: true, dirPrefix: 'dcmx-knot-signed-' });
  await knot.waitReady(15_000, async () => (/status: \w+/.test((await kdigKnot(ZONE, 'SOA')).stdout) ? undefined : `no answer on 127.0.0.1@${knotPort}`));
});

after(async () => {
  if (process.env.DCMX_KNOT_LOG && knot) fs.writeFileSync(process.env.DCMX_KNOT_LOG, knot.log);
  await knot?.stop();
  await t?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('transfers of a signed zone', () => {
  test('AXFR carries DNSKEY, the NSEC chain over authoritative names and cuts, and RRSIGs over authoritative RRsets only', async () => {
    const lines = await transfer(ZONE, 'AXFR');
    assert.equal(ofType(lines, 'DNSKEY').length, 1, lines.join('\n'));
    const nsec = ofType(lines, 'NSEC').map((l) => l.split(' ').slice(0, 1).concat(l.split(' ').slice(4)).join(' '));
    assert.deepEqual(nsec, [
      'example.org. a.b.example.org. A NS SOA MX TXT RRSIG NSEC DNSKEY CDS CDNSKEY',
      'a.b.example.org. kid.example.org. AAAA RRSIG NSEC',
      'kid.example.org. mx.example.org. NS DS RRSIG NSEC',
      'mx.example.org. ns1.example.org. A RRSIG NSEC',
      'ns1.example.org. sub.example.org. A RRSIG NSEC',
      'sub.example.org. *.wild.example.org. NS RRSIG NSEC',
      '*.wild.example.org. www.example.org. TXT RRSIG NSEC',
      'www.example.org. example.org. CNAME RRSIG NSEC',
    ], 'canonical order; the glue below sub and the empty non-terminals have none');
    const signed = new Set(ofType(lines, 'RRSIG').map((l) => `${l.split(' ')[0]} ${l.split(' ')[4]}`));
    for (const want of ['example.org. SOA', 'example.org. NS', 'example.org. DNSKEY', 'example.org. CDS', 'example.org. NSEC', '*.wild.example.org. TXT', 'sub.example.org. NSEC', 'kid.example.org. DS', 'www.example.org. CNAME']) {
      assert.ok(signed.has(want), `RRSIG over ${want}`);
    }
    assert.ok(!signed.has('sub.example.org. NS') && !signed.has('kid.example.org. NS'), 'the delegation NS is the child\'s: not signed (RFC 4035 §2.2)');
    assert.ok(![...signed].some((s) => s.startsWith('kid.example.org.') && !/ (DS|NSEC)$/.test(s)), 'nothing of the child zone is signed by the parent but DS and NSEC');
    assert.ok(![...signed].some((s) => s.startsWith('ns.sub.example.org.')), 'glue is not signed');
    assert.equal(ofType(lines, 'A').filter((l) => l.startsWith('ns.sub.example.org.')).length, 1, 'glue is transferred');
    assert.match(lines[lines.length - 1], / SOA /);
  });

  test('the signed zone is built once per version: two AXFRs on one connection carry the same signatures', async () => {
    // ECDSA signs with a new random nonce each time: signing the zone again would give other signatures.
    // One TCP connection is served by one thread (each thread keeps its own snapshots).
    const sigs = ofType(await transfer('+keepopen', ZONE, 'AXFR', ZONE, 'AXFR'), 'RRSIG');
    const distinct = new Set(sigs);
    assert.ok(distinct.size > 10, sigs.join('\n'));
    assert.equal(sigs.length, 2 * distinct.size, `every signature twice:\n${sigs.join('\n')}`);
  });

  test('a write re-signs only what it changed (the SOA and the changed RRset), on a connection kept across it', async () => {
    const c = connection();
    try {
      const before = await c.axfr();
      const r = await run('ldapmodify', adminArgs(t), 'dn: dc=mx,dc=example,dc=org,o=internet\nchangetype: modify\nreplace: aRecord\naRecord: 192.0.2.26\n');
      assert.equal(r.code, 0, r.stderr);
      const after = await c.axfr();
      const remade = [...after].filter(([k, v]) => before.get(k) !== v).map(([k]) => k).sort();
      assert.deepEqual(remade, ['example.org. SOA', 'mx.example.org. A']);
      assert.equal(after.size, before.size);
    } finally {
      c.close();
    }
  });

  test('an IXFR from an older serial gets the whole signed zone (RFC 1995 §4); an up-to-date one the single SOA', async () => {
    const serial = await serialOf(kdigDcmx);
    const lines = await transfer(ZONE, `IXFR=${serial - 1}`);
    assert.equal(soaSerial(lines[0]), serial);
    assert.equal(ofType(lines, 'SOA').length, 2, 'AXFR form: SOA first and last, no deltas');
    assert.ok(ofType(lines, 'NSEC').length >= 7 && ofType(lines, 'RRSIG').length > 10, lines.join('\n'));
    const current = await kdigDcmx('+tcp', ZONE, `IXFR=${serial}`);
    assert.equal(current.stdout.split('\n').filter((l) => l && !l.startsWith(';')).length, 1, current.stdout);
  });
});

describe('dcmx zone export of a signed zone', () => {
  let file = '';

  test('dnssec-verify and kzonecheck accept it, and the hosted child zone\'s', async () => {
    for (const zone of [ZONE, 'kid.example.org']) {
      const r = await runDcmx(testEnv(t.dataDir), ['zone', 'export', zone]);
      assert.equal(r.code, 0, r.stderr);
      const f = path.join(work, `${zone}.zone`);
      fs.writeFileSync(f, r.stdout);
      assert.match(r.stdout, /\tRRSIG\t/);
      const v = await dnssecVerify(zone, f);
      assert.ok(v.ok, `${zone}: ${v.output}`);
      assert.match(v.output, /Zone fully signed/);
      const k = await kzonecheck(zone, f);
      assert.ok(k.ok, `${zone}: ${k.output}`);
      if (zone === ZONE) file = f;
      else assert.doesNotMatch(r.stdout, /^kid\.example\.org\.\t\d+\tIN\tDS\t/m, 'the DS is the parent\'s, not in the child zone');
    }
  });

  test('one altered signature, or one NSEC left out, and both refuse it', async () => {
    const text = fs.readFileSync(file, 'utf8');
    const lines = text.split('\n');
    const rrsig = lines.findIndex((l) => /^www\.example\.org\.\t\d+\tIN\tRRSIG\tCNAME /.test(l));
    assert.ok(rrsig >= 0, text);
    // Flip one base64 character of the signature (the last field).
    const sig = lines[rrsig];
    const at = sig.length - 6;
    const tampered = [...lines];
    tampered[rrsig] = sig.slice(0, at) + (sig[at] === 'A' ? 'B' : 'A') + sig.slice(at + 1);
    const noNsec = lines.filter((l) => !/^mx\.example\.org\.\t\d+\tIN\tNSEC\t/.test(l));
    assert.equal(noNsec.length, lines.length - 1, 'one NSEC dropped');
    for (const [what, content] of [['altered RRSIG', tampered], ['dropped NSEC', noNsec]] as const) {
      const f = path.join(work, `bad-${what.replace(/ /g, '-')}.zone`);
      fs.writeFileSync(f, content.join('\n'));
      const v = await dnssecVerify(ZONE, f);
      assert.ok(!v.ok, `dnssec-verify accepted the zone with an ${what}:\n${v.output}`);
      const k = await kzonecheck(ZONE, f);
      assert.ok(!k.ok, `kzonecheck accepted the zone with an ${what}:\n${k.output}`);
    }
  });
});

describe('Knot as a validating secondary of the signed zone', () => {
  test('knot transfers and validates the zone; delv validates its positive, wildcard, NXDOMAIN and NODATA answers', async () => {
    await knotCaughtUp(0);
    assert.ok(!knotZoneLog().some((l) => /DNSSEC.*(invalid|failed|missing)|validation failed/i.test(l)), knotZoneLog().join('\n'));
    const pos = await delv(knotPort, anchor, 'ns1.example.org', 'A');
    assert.ok(pos.validated && !pos.negative, pos.output);
    assert.ok(pos.records.includes('ns1.example.org. 300 IN A 192.0.2.53'), pos.output);
    const wild = await delv(knotPort, anchor, 'any.wild.example.org', 'TXT');
    assert.ok(wild.validated && !wild.negative, wild.output);
    // A validator caps a wildcard answer's TTL at the TTL of the NSEC that proves it (here the SOA minimum).
    assert.ok(wild.records.some((r) => /^any\.wild\.example\.org\. \d+ IN TXT "any wild name"$/.test(r)), wild.output);
    const nx = await delv(knotPort, anchor, 'nothere.example.org', 'A');
    assert.equal(nx.validated && nx.negative, 'NXDOMAIN', nx.output);
    const nodata = await delv(knotPort, anchor, 'ns1.example.org', 'MX');
    assert.equal(nodata.validated && nodata.negative, 'NXRRSET', nodata.output);
    const ent = await delv(knotPort, anchor, 'b.example.org', 'A');
    assert.equal(ent.validated && ent.negative, 'NXRRSET', `an empty non-terminal is NODATA:\n${ent.output}`);
    const ds = await delv(knotPort, anchor, 'kid.example.org', 'DS');
    assert.ok(ds.validated && !ds.negative && ds.records.some((r) => / IN DS \d+ 13 2 /.test(r)), `the hosted signed child's DS:\n${ds.output}`);
    const noDs = await delv(knotPort, anchor, 'sub.example.org', 'DS');
    assert.equal(noDs.validated && noDs.negative, 'NXRRSET', `no DS at the unsigned delegation:\n${noDs.output}`);
  });

  test('Unbound, validating with our DNSKEY and asking knot alone, sets AD on its positive, NXDOMAIN and NODATA answers', async () => {
    const dnskeys = (await kdigDcmx('+short', ZONE, 'DNSKEY')).stdout.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('257 '));
    const u = await startUnbound({ zone: ZONE, dnskeys, authority: knotPort });
    try {
      for (const [name, type, rcode] of [['ns1.example.org', 'A', 'NOERROR'], ['nothere.example.org', 'A', 'NXDOMAIN'], ['ns1.example.org', 'MX', 'NOERROR']]) {
        const r = await u.dig(name, type);
        assert.equal(status(r.stdout), rcode, `${name} ${type}:\n${r.stdout}\n${u.log}`);
        assert.ok(flags(r.stdout).includes('ad'), `${name} ${type} not validated (no AD):\n${r.stdout}\n${u.log}`);
      }
    } finally {
      await u.stop();
    }
  });

  test('after a write, NOTIFY brings the new signed version to knot and delv validates the changed names', async (ctx) => {
    const from = knot!.log.length;
    const r = await run('ldapmodify', adminArgs(t), `dn: dc=ns1,dc=example,dc=org,o=internet
changetype: modify
replace: aRecord
aRecord: 198.51.100.53

dn: dc=new,dc=example,dc=org,o=internet
changetype: add
objectClass: dNSDomain2
dc: new
aRecord: 192.0.2.99
`);
    assert.equal(r.code, 0, r.stderr);
    await knotCaughtUp(from);
    const changed = await delv(knotPort, anchor, 'ns1.example.org', 'A');
    assert.ok(changed.validated && changed.records.includes('ns1.example.org. 300 IN A 198.51.100.53'), changed.output);
    const added = await delv(knotPort, anchor, 'new.example.org', 'A');
    assert.ok(added.validated && added.records.includes('new.example.org. 300 IN A 192.0.2.99'), added.output);
    // The name next to it in the chain now proves NXDOMAIN for a name between them.
    const nx = await delv(knotPort, anchor, 'nz.example.org', 'A');
    assert.equal(nx.validated && nx.negative, 'NXDOMAIN', nx.output);
    // Knot asks for IXFR and takes the whole zone we answer with (RFC 1995 §4), checking it as it did the first version.
    const transfers = knotZoneLog(from).filter((l) => /IXFR|AXFR/.test(l));
    for (const l of transfers) ctx.diagnostic(`knot: ${l.replace(/^\S+\s+/, '')}`);
    assert.ok(transfers.some((l) => /AXFR-style IXFR/i.test(l)), `knot took no AXFR-style IXFR:\n${knotZoneLog(from).join('\n')}`);
    assert.ok(!knotZoneLog(from).some((l) => /\berror:/.test(l)), knotZoneLog(from).join('\n'));
  });
});

describe('a zone whose signing is being withdrawn (DCMX_DNSSEC=off) is still exported and transferred signed', () => {
  const dataDir = tempDir('dcmx-withdraw-');
  let w: TestAppliance | undefined;
  after(async () => {
    await w?.app.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('with the delete CDS and CDNSKEY (RFC 8078 §4) among the signed RRsets; dnssec-verify and kzonecheck accept it', async () => {
    w = await startTestAppliance({ DCMX_AXFR_ALLOW: '127.0.0.1/32' }, dataDir);
    const r = await run('ldapadd', adminArgs(w), exampleOrgZone());
    assert.equal(r.code, 0, r.stderr);
    await w.app.close(); // the data dir stays for the next start
    // A grace far longer than the test: the zone stays in its withdrawing state throughout.
    const env = { DCMX_AXFR_ALLOW: '127.0.0.1/32', DCMX_DNSSEC: 'off', DCMX_DNSSEC_WITHDRAW_GRACE: '3600' };
    w = await startTestAppliance(env, dataDir);
    const lines = (await kdigRunner(w.app.ports.dns)('+tcp', ZONE, 'AXFR')).stdout.split('\n').map((l) => l.replace(/\s+/g, ' ').trim());
    assert.ok(lines.includes('example.org. 300 IN CDS 0 0 0 00') && lines.includes('example.org. 300 IN CDNSKEY 0 3 0 AA=='), lines.join('\n'));
    assert.ok(lines.some((l) => / IN RRSIG CDS 13 2 /.test(l)), lines.join('\n'));
    const exported = await runDcmx(testEnv(dataDir, env), ['zone', 'export', ZONE]);
    assert.equal(exported.code, 0, exported.stderr);
    const f = path.join(dataDir, 'withdrawing.zone');
    fs.writeFileSync(f, exported.stdout);
    assert.match(exported.stdout, /\tCDS\t0 0 0 00$/m);
    const v = await dnssecVerify(ZONE, f);
    assert.ok(v.ok, v.output);
    const k = await kzonecheck(ZONE, f);
    assert.ok(k.ok, k.output);
  });
});
