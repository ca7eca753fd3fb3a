/**
 * A parent and a child zone both served here, end to end: the child is
 * provisioned first and the parent after it (`dcmx domain add`), and the
 * parent's AXFR and `dcmx zone export` hold the cut — the child's NS RRset
 * and the glue at or below it (RFC 1034 §4.2.1/§4.2.2) — so that a secondary
 * of the parent alone refers to the child instead of answering NXDOMAIN.
 * named-checkzone reads the export. Queries to dcmx itself are answered by
 * the closest apex, the child.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { adminArgs, caughtUp, run, runDcmx, startTestAppliance, tempDir, testEnv, type RunResult, type TestAppliance } from '../helpers';
import { digRunner, flags, section, soaSerial, status } from './fixture';

let t: TestAppliance;
let work: string;
const dig = digRunner(() => t.app.ports.dns);

/** The dcmx command line against the running appliance's data folder. */
const dcmx = (...args: string[]): Promise<RunResult> => runDcmx(testEnv(t.dataDir), args);

/** The records of a dig AXFR, white space folded. */
const records = (out: string) => out.split('\n').filter((l) => l && !l.startsWith(';')).map((l) => l.replace(/\s+/g, ' ').trim());

const ldapmodify = async (ldif: string) => {
  const r = await run('ldapmodify', adminArgs(t), ldif);
  assert.equal(r.code, 0, r.stderr);
};

/** What the parent must hold at the cut: the child's NS RRset, and the address of its in-bailiwick name server. */
const CUT = [
  'new.example.org. 3600 IN NS mx.dcmx.test.',
  'new.example.org. 3600 IN NS ns1.new.example.org.',
  'ns1.new.example.org. 3600 IN A 192.0.2.61',
];

before(async () => {
  t = await startTestAppliance({ DCMX_AXFR_ALLOW: '127.0.0.1/32' });
  work = tempDir('dcmx-child-zones-');
  // The child first: with no zone above it, new.example.org becomes an apex of its own.
  let r = await dcmx('domain', 'add', 'new.example.org');
  assert.equal(r.code, 0, r.stderr);
  await ldapmodify(`dn: dc=new,dc=example,dc=org,o=internet
changetype: modify
add: nSRecord
nSRecord: ns1.new.example.org.

dn: dc=ns1,dc=new,dc=example,dc=org,o=internet
changetype: add
objectClass: dNSDomain2
dc: ns1
aRecord: 192.0.2.61

dn: dc=www,dc=new,dc=example,dc=org,o=internet
changetype: add
objectClass: dNSDomain2
dc: www
aRecord: 192.0.2.62
`);
  // Then the parent, above a zone that exists already.
  // A new zone above a zone hosted here is the operator's decision: --force (server/directory/provision.ts).
  r = await dcmx('domain', 'add', '--force', 'example.org');
  assert.equal(r.code, 0, r.stderr);
  await caughtUp(t); // the CLI is another process: its writes are published within 100 ms
});
after(async () => {
  await t?.close();
  fs.rmSync(work, { recursive: true, force: true });
});

describe('a parent zone provisioned after its child holds the cut', () => {
  test('dig AXFR of the parent: the child NS and the glue, nothing else of the child', async () => {
    const r = await dig('example.org', 'AXFR');
    const rrs = records(r.stdout);
    assert.match(rrs[0], /^example\.org\. \d+ IN SOA /, r.stdout + r.stderr);
    assert.match(rrs[rrs.length - 1], /^example\.org\. \d+ IN SOA /);
    for (const rr of CUT) assert.ok(rrs.includes(rr), `${rr} in\n${rrs.join('\n')}`);
    assert.ok(!rrs.some((l) => /^(www\.)?new\.example\.org\. \d+ IN (SOA|MX|TXT|A) /.test(l)), `only NS and glue of the child:\n${rrs.join('\n')}`);
  });

  test('dcmx zone export of the parent holds the cut; named-checkzone loads it', async () => {
    const exp = await dcmx('zone', 'export', 'example.org');
    assert.equal(exp.code, 0, exp.stderr);
    const file = path.join(work, 'example.org.zone');
    fs.writeFileSync(file, exp.stdout);
    const folded = records(exp.stdout);
    for (const rr of CUT) assert.ok(folded.includes(rr), `${rr} in\n${exp.stdout}`);
    // -i local: integrity checks of in-zone names only, so named-checkzone never asks a resolver off this host.
    const chk = await run('named-checkzone', ['-k', 'fail', '-n', 'fail', '-i', 'local', 'example.org', file]);
    assert.equal(chk.code, 0, chk.stdout + chk.stderr + exp.stdout);
    assert.doesNotMatch(chk.stdout + chk.stderr, /GLUE|has no address/i);
    // The check has teeth: without the glue line, named-checkzone names the server the cut cannot reach.
    const noGlue = path.join(work, 'no-glue.zone');
    fs.writeFileSync(noGlue, exp.stdout.split('\n').filter((l) => !l.startsWith('ns1.new.example.org.')).join('\n'));
    const bad = await run('named-checkzone', ['-i', 'local', 'example.org', noGlue]);
    assert.match(bad.stdout + bad.stderr, /'ns1\.new\.example\.org' has no REQUIRED GLUE/);
  });

  test('queries to dcmx are answered by the closest apex, the child, with AA; DS at the cut by the parent', async () => {
    for (const [name, type, want] of [
      ['www.new.example.org', 'A', 'www.new.example.org. 3600 IN A 192.0.2.62'],
      ['new.example.org', 'MX', 'new.example.org. 3600 IN MX 10 mx.dcmx.test.'],
    ]) {
      const r = await dig(name, type);
      assert.equal(status(r.stdout), 'NOERROR', r.stdout);
      assert.ok(flags(r.stdout).includes('aa'), r.stdout);
      assert.deepEqual(section(r.stdout, 'ANSWER'), [want]);
    }
    const soa = await dig('nothere.new.example.org', 'A');
    assert.equal(status(soa.stdout), 'NXDOMAIN');
    assert.match(section(soa.stdout, 'AUTHORITY')[0], /^new\.example\.org\. \d+ IN SOA /, 'the child\'s SOA (RFC 2308 §3)');
    // RFC 4035 §3.1.4.1: DS is parent-side data; serving both zones, dcmx answers it from the parent, as its secondaries do:
    // the DS of the child's key (DCMX_DNSSEC is on by default: the child was born with one), which the child does not hold.
    const ds = await dig('new.example.org', 'DS');
    assert.equal(status(ds.stdout), 'NOERROR', ds.stdout);
    assert.ok(flags(ds.stdout).includes('aa'), ds.stdout);
    const dnskey = section((await dig('new.example.org', 'DNSKEY')).stdout, 'ANSWER');
    assert.equal(dnskey.length, 1, dnskey.join('\n'));
    const fromKey = await run('dnssec-dsfromkey', ['-a', 'SHA-256', '-T', '3600', '-f', '-', 'new.example.org'], dnskey[0] + '\n');
    assert.equal(fromKey.code, 0, fromKey.stderr);
    const norm = (l: string) => l.replace(/\s+/g, ' ').replace(/ ([0-9A-F]{8,}) ([0-9A-F]{8,})$/, ' $1$2');
    assert.deepEqual(section(ds.stdout, 'ANSWER').map(norm), [norm(fromKey.stdout.trim())]);
    assert.ok(!records((await dig('new.example.org', 'AXFR')).stdout).some((l) => / IN DS /.test(l)), 'the child zone holds no DS');
  });

  test('a change of the child NS bumps the parent serial too and shows in its AXFR', async () => {
    const parent = soaSerial((await dig('example.org', 'SOA')).stdout);
    const child = soaSerial((await dig('new.example.org', 'SOA')).stdout);
    await ldapmodify(`dn: dc=new,dc=example,dc=org,o=internet
changetype: modify
add: nSRecord
nSRecord: ns2.example.net.
`);
    assert.ok(soaSerial((await dig('example.org', 'SOA')).stdout) > parent, 'the parent has a new version');
    assert.ok(soaSerial((await dig('new.example.org', 'SOA')).stdout) > child, 'so has the child');
    const rrs = records((await dig('example.org', 'AXFR')).stdout);
    assert.ok(rrs.includes('new.example.org. 3600 IN NS ns2.example.net.'), rrs.join('\n'));
    // The parent's journal was dropped: an IXFR from the old serial gets the whole zone (RFC 1995 §4).
    const ixfr = records((await dig('example.org', `IXFR=${parent}`)).stdout);
    assert.ok(ixfr.includes('new.example.org. 3600 IN NS ns2.example.net.') && ixfr.includes(CUT[2]), ixfr.join('\n'));
  });
});
