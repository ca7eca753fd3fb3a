/**
 * DNSSEC keys born with the zone, end to end with real clients: a zone
 * made through each door (RCPT-triggered provisioning, `dcmx domain add` in
 * its own process, the LDAP extended operation, a plain ldapadd of an entry
 * with an sOARecord) has its key at once; kdig reads DNSKEY, CDS and
 * CDNSKEY on our DNS port; `dcmx dnssec ds` prints the DS that BIND's
 * dnssec-dsfromkey makes from the served DNSKEY, and a hosted parent serves
 * it; ldapsearch shows the private key to the administrator only. Then
 * DCMX_DNSSEC=off withdraws the signing (RFC 8078 §4): delete CDS/CDNSKEY,
 * the DS gone at the parent, and after the grace the key and the DNSKEY gone;
 * on again, the zones are signed with new keys.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { adminArgs, caughtUp, run, runDcmx, startTestAppliance, tempDir, testEnv, type TestAppliance } from '../helpers';
import { kdigRunner, section, status } from './fixture';
import { swaks } from '../mta/fixture';
import { waitForAsync } from '../fixtures/wait';
import { dnskeyOf, generateZoneKey } from '../../server/directory/dnssec-keys';
import { formatRData } from '../../server/directory/records';
import * as fs from 'node:fs';

const SUFFIX = 'o=internet';
const PROVISION_OID = '1.3.6.1.4.1.32473.1.3.1';
const dn = (name: string): string => name.split('.').map((l) => `dc=${l}`).join(',') + `,${SUFFIX}`;
/** Settings of every appliance here: no DKIM keys (not the subject, and RSA keys cost), RCPT provisioning for rcpt.test. */
const ENV = { DCMX_NEW_DOMAIN_DKIM: 'off', DCMX_PROVISIONING: 'allowlist', DCMX_PROVISION_ALLOW: 'rcpt.test' };

/** Values of `attr` in `ldapsearch -LLL -o ldif-wrap=no` output (base64 values decoded). */
function values(out: string, attr: string): string[] {
  const re = new RegExp(`^${attr}(::?) ?(.*)$`, 'gim');
  return [...out.matchAll(re)].map((m) => (m[1] === '::' ? Buffer.from(m[2], 'base64').toString('utf8') : m[2]));
}

/** The RDATA of `name`/`type` answered on `port` (kdig), white space folded; [] for none. */
async function rdata(port: number, name: string, type: string): Promise<string[]> {
  const r = await kdigRunner(port)(name, type);
  assert.equal(status(r.stdout), 'NOERROR', `${name} ${type}: ${r.stdout}${r.stderr}`);
  return section(r.stdout, 'ANSWER').map((l) => l.replace(/^\S+ \d+ IN \S+ /, ''));
}

/** dnssec-dsfromkey's DS line (SHA-256) for the DNSKEY RDATA `dnskey` of `zone`. */
async function dsFromKey(zone: string, dnskey: string): Promise<string> {
  const r = await run('dnssec-dsfromkey', ['-a', 'SHA-256', '-f', '-', zone], `${zone}. 3600 IN DNSKEY ${dnskey}\n`);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim().replace(/\s+/g, ' ');
}

/** `ldapadd` as the administrator. */
async function ldapadd(t: TestAppliance, ldif: string): Promise<void> {
  const r = await run('ldapadd', adminArgs(t), ldif);
  assert.equal(r.code, 0, r.stderr);
}

/** A zone apex entry in LDIF, with SOA and NS naming this appliance. */
const zoneLdif = (name: string) => [
  `dn: ${dn(name)}`, 'objectClass: domain', 'objectClass: dNSDomain2', `dc: ${name.split('.')[0]}`,
  `sOARecord: mx.dcmx.test. hostmaster.${name}. 1 3600 900 604800 60`, 'nSRecord: mx.dcmx.test.', '',
].join('\n');

describe('DNSSEC keys born with the zone, through every door', () => {
  let t: TestAppliance;
  let env: Record<string, string>;
  before(async () => {
    t = await startTestAppliance(ENV);
    env = testEnv(t.dataDir, ENV);
    await ldapadd(t, `dn: dc=org,${SUFFIX}\nobjectClass: domain\ndc: org\n\n${zoneLdif('plain.org')}`);
  });
  after(async () => {
    await t?.close();
  });

  const ZONES = ['shop.rcpt.test', 'cli.example.net', 'exop.example.net', 'plain.org'];

  test('RCPT-triggered provisioning, dcmx domain add and the LDAP extended operation make signed zones (a plain ldapadd did too)', async () => {
    const sw = await swaks(t.app.ports.smtp, { to: 'someone@shop.rcpt.test', subject: 'a new domain', body: 'hello' });
    assert.equal(sw.code, 0, sw.out);
    const add = await runDcmx(env, ['domain', 'add', 'cli.example.net']);
    assert.equal(add.code, 0, add.stderr);
    const x = await run('ldapexop', [...adminArgs(t), `${PROVISION_OID}:exop.example.net`]);
    assert.equal(x.code, 0, x.stderr);
    await caughtUp(t);
    for (const zone of ZONES) {
      const keys = await rdata(t.app.ports.dns, zone, 'DNSKEY');
      assert.equal(keys.length, 1, `${zone}: one DNSKEY: ${keys.join('\n')}`);
      assert.match(keys[0], /^257 3 13 [A-Za-z0-9+/]{86}==$/, `${zone}: a CSK, ECDSA P-256 (RFC 6605 §4: 64 octets)`);
      const ds = await dsFromKey(zone, keys[0]);
      // RFC 7344 §4: CDS and CDNSKEY for the parent, the same key.
      assert.deepEqual(await rdata(t.app.ports.dns, zone, 'CDNSKEY'), keys);
      assert.deepEqual((await rdata(t.app.ports.dns, zone, 'CDS')).map((c) => `${zone}. IN DS ${c.replace(/ ([0-9A-F]{8,}) ([0-9A-F]{8,})$/, ' $1$2')}`), [ds]);
      const cli = await runDcmx(env, ['dnssec', 'ds', `${zone}.`]);
      assert.equal(cli.code, 0, cli.stderr);
      assert.equal(cli.stdout.trim(), ds, `${zone}: dcmx dnssec ds gives the DS of the served DNSKEY`);
    }
  });

  test('a child zone added below a signed zone: the parent serves its DS at the cut, and dcmx dnssec lists every zone', async () => {
    await ldapadd(t, zoneLdif('child.plain.org'));
    const [key] = await rdata(t.app.ports.dns, 'child.plain.org', 'DNSKEY');
    const ds = await rdata(t.app.ports.dns, 'child.plain.org', 'DS');
    assert.deepEqual(ds.map((d) => `child.plain.org. IN DS ${d.replace(/ ([0-9A-F]{8,}) ([0-9A-F]{8,})$/, ' $1$2')}`), [await dsFromKey('child.plain.org', key)]);
    const list = await runDcmx(env, ['dnssec']);
    assert.equal(list.code, 0, list.stderr);
    const lines = list.stdout.trim().split('\n');
    for (const zone of [...ZONES, 'child.plain.org']) {
      const line = lines.find((l) => l.startsWith(`${zone}.\t`));
      assert.match(line ?? '', /^\S+\tsigned\tkey \d+ alg ECDSAP256SHA256$/, list.stdout);
    }
  });

  test('a new key written over LDAP is served by the next query: the zone\'s serial moves, caches drop', async () => {
    const port = t.app.ports.dns;
    const [old] = await rdata(port, 'plain.org', 'DNSKEY');
    const [soa] = await rdata(port, 'plain.org', 'SOA');
    const pem = generateZoneKey();
    const r = await run('ldapmodify', adminArgs(t), `dn: ${dn('plain.org')}\nchangetype: modify\nreplace: dnssecPrivateKey\ndnssecPrivateKey:: ${Buffer.from(pem).toString('base64')}\n`);
    assert.equal(r.code, 0, r.stderr);
    const [now] = await rdata(port, 'plain.org', 'DNSKEY');
    assert.notEqual(now, old);
    assert.equal(now, formatRData(dnskeyOf(createPublicKey(pem))));
    const serialOf = (soaRdata: string) => Number(soaRdata.split(' ')[2]);
    assert.ok(serialOf((await rdata(port, 'plain.org', 'SOA'))[0]) > serialOf(soa), 'a new version of the zone');
    const bad = await run('ldapmodify', adminArgs(t), `dn: ${dn('plain.org')}\nchangetype: modify\nreplace: dnssecPrivateKey\ndnssecPrivateKey: not a key\n`);
    assert.match(bad.stderr, /Invalid syntax \(21\)/, 'a value that is no P-256 key is refused');
  });

  test('the private key: the administrator reads it; anonymous and the domain\'s manager neither read it nor test it', async () => {
    const manager = `uid=boss,ou=people,${dn('cli.example.net')}`;
    await ldapadd(t, [`dn: ${manager}`, 'objectClass: inetOrgPerson', 'uid: boss', 'cn: boss', 'sn: boss', 'userPassword: boss-secret-1', ''].join('\n'));
    const own = await run('ldapmodify', adminArgs(t), `dn: ${dn('cli.example.net')}\nchangetype: modify\nadd: owner\nowner: ${manager}\n`);
    assert.equal(own.code, 0, own.stderr);
    const search = (args: string[], filter = '(objectClass=*)') =>
      run('ldapsearch', [...args, '-LLL', '-o', 'ldif-wrap=no', '-b', dn('cli.example.net'), '-s', 'base', filter, '*', 'dnssecPrivateKey']);
    const admin = await search(adminArgs(t));
    assert.equal(admin.code, 0, admin.stderr);
    const [pem] = values(admin.stdout, 'dnssecPrivateKey');
    assert.ok(pem, admin.stdout);
    const [served] = await rdata(t.app.ports.dns, 'cli.example.net', 'DNSKEY');
    assert.equal(formatRData(dnskeyOf(createPublicKey(pem))), served, 'the stored key is the served DNSKEY\'s');
    for (const [who, args] of [['anonymous', ['-x', '-H', t.ldapUrl]], ['the manager', ['-x', '-H', t.ldapUrl, '-D', manager, '-w', 'boss-secret-1']]] as const) {
      const s = await search([...args]);
      assert.equal(s.code, 0, `${who}: ${s.stderr}`);
      assert.deepEqual(values(s.stdout, 'dc'), ['cli'], `${who} reads the entry`);
      assert.deepEqual(values(s.stdout, 'dnssecPrivateKey'), [], `${who} reads no private key`);
      const f = await search([...args], '(dnssecPrivateKey=*)');
      assert.equal(f.stdout.trim(), '', `${who} cannot test the private key in a filter`);
    }
  });
});

describe('DCMX_DNSSEC=off withdraws the signing (RFC 8078 §4); on again signs anew', () => {
  const dataDir = tempDir();
  let t: TestAppliance | undefined;
  const start = async (extra: Record<string, string>) => {
    t = await startTestAppliance({ ...ENV, ...extra }, dataDir);
    return t;
  };
  const stop = async () => {
    await t?.app.close(); // the data dir stays for the next start
    t = undefined;
  };
  after(async () => {
    await stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('signed, withdrawn, unsigned after the grace, signed again with a new key', { timeout: 120_000 }, async () => {
    let a = await start({});
    await ldapadd(a, `dn: dc=org,${SUFFIX}\nobjectClass: domain\ndc: org\n\n${zoneLdif('parent.org')}\n${zoneLdif('kid.parent.org')}`);
    const [kidKey] = await rdata(a.app.ports.dns, 'kid.parent.org', 'DNSKEY');
    assert.equal((await rdata(a.app.ports.dns, 'kid.parent.org', 'DS')).length, 1, 'the parent serves the DS');
    await stop();

    a = await start({ DCMX_DNSSEC: 'off', DCMX_DNSSEC_WITHDRAW_GRACE: '4' });
    const port = a.app.ports.dns;
    // At once: still signing (DNSKEY served), the delete CDS/CDNSKEY published, no DS at the hosted parent.
    assert.deepEqual(await rdata(port, 'kid.parent.org', 'DNSKEY'), [kidKey]);
    assert.deepEqual(await rdata(port, 'kid.parent.org', 'CDS'), ['0 0 0 00']);
    assert.deepEqual(await rdata(port, 'kid.parent.org', 'CDNSKEY'), ['0 3 0 AA==']);
    assert.deepEqual(await rdata(port, 'parent.org', 'CDS'), ['0 0 0 00']);
    const ds = await kdigRunner(port)('kid.parent.org', 'DS');
    assert.equal(status(ds.stdout), 'NOERROR', ds.stdout);
    assert.deepEqual(section(ds.stdout, 'ANSWER'), [], 'the hosted parent drops the DS at once');
    assert.match(section(ds.stdout, 'AUTHORITY')[0] ?? '', /^parent\.org\. \d+ IN SOA /, 'NODATA from the parent');
    const status1 = await runDcmx(testEnv(dataDir, { ...ENV, DCMX_DNSSEC: 'off', DCMX_DNSSEC_WITHDRAW_GRACE: '4' }), ['dnssec', 'kid.parent.org']);
    assert.match(status1.stdout, /^kid\.parent\.org\.\twithdrawing\tkey \d+ alg ECDSAP256SHA256\tsince \S+, unsigned from \S+$/m, status1.stdout + status1.stderr);
    // A zone born now gets no key.
    await ldapadd(a, zoneLdif('late.org'));
    assert.deepEqual(await rdata(port, 'late.org', 'DNSKEY'), []);
    // After the grace (4 s): the key is gone, nothing of DNSSEC is served.
    await waitForAsync('the withdrawn key is removed after the grace', async () => (await rdata(port, 'kid.parent.org', 'DNSKEY')).length === 0 || undefined, 20_000);
    for (const zone of ['kid.parent.org', 'parent.org']) {
      for (const type of ['DNSKEY', 'CDS', 'CDNSKEY']) assert.deepEqual(await rdata(port, zone, type), [], `${zone} ${type}`);
    }
    const s = await run('ldapsearch', [...adminArgs(a), '-LLL', '-b', dn('parent.org'), '(dnssecPrivateKey=*)', 'dn']);
    assert.equal(s.code, 0, s.stderr);
    assert.equal(s.stdout.trim(), '', 'no key left in the store');
    await stop();

    a = await start({});
    const [newKey] = await rdata(a.app.ports.dns, 'kid.parent.org', 'DNSKEY');
    assert.ok(newKey && newKey !== kidKey, `a new key: ${newKey}`);
    assert.equal((await rdata(a.app.ports.dns, 'late.org', 'DNSKEY')).length, 1, 'a zone born unsigned is signed too');
    assert.deepEqual((await rdata(a.app.ports.dns, 'kid.parent.org', 'DS')).length, 1, 'the parent serves the new DS');
  });
});
