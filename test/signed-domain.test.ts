/**
 * Issue 13's proof, one door at a time: a domain born through the RCPT door
 * (mail to a domain the directory has never seen, under an allowlist
 * policy), the CLI (`dcmx domain add` in its own process) and the LDAP
 * extended operation is signed from its first answers. For each:
 * - delv, with nothing but the DS that `dcmx dnssec ds` prints for the
 *   registrar as its trust anchor, validates the first answers our DNS port
 *   gives after the door's reply (no waiting): SOA, MX, the DKIM key records
 *   at their dated selectors, the `_mta-sts` and `_smtp._tls` and `_dmarc`
 *   TXT, and the denial of a name that does not exist;
 * - mail from the domain leaves through a next hop signed with its keys, and
 *   dkimpy and OpenDKIM, resolving through our DNS port, verify it.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { adminArgs, run, runDcmx, startTestAppliance, tempDir, testEnv, type TestAppliance } from './helpers';
import { startNextHop, swaks, waitFor, type NextHop } from './mta/fixture';
import { dkimVerify, opendkimVerify, RELAYED_ORG, signatures } from './mta/dkim-fixture';
import { delv, type TrustAnchor } from './dns/dnssec-tools';

const SUFFIX = 'o=internet';
const PROVISION_OID = '1.3.6.1.4.1.32473.1.3.1';
const dn = (name: string): string => name.split('.').map((l) => `dc=${l}`).join(',') + `,${SUFFIX}`;
const ENV = {
  DCMX_NEW_DOMAIN_DKIM: 'rsa,ed25519',
  DCMX_PROVISIONING: 'allowlist',
  DCMX_PROVISION_ALLOW: 'rcpt.test',
  // 127.0.0.1 may relay: mail from there is our users' and is signed on its way out.
  DCMX_RELAY_NETWORKS: '127.0.0.1/32',
};

/** The three doors, each making one domain. */
const DOORS: { door: string; domain: string; make(t: TestAppliance, env: Record<string, string>): Promise<void> }[] = [
  {
    door: 'RCPT',
    domain: 'shop.rcpt.test',
    async make(t) {
      const sw = await swaks(t.app.ports.smtp, { to: 'someone@shop.rcpt.test', subject: 'to a domain never seen', body: 'hello' });
      assert.equal(sw.code, 0, sw.out);
    },
  },
  {
    door: 'CLI',
    domain: 'cli.example.net',
    async make(_t, env) {
      const add = await runDcmx(env, ['domain', 'add', 'cli.example.net'], 30_000);
      assert.equal(add.code, 0, add.stderr);
    },
  },
  {
    door: 'LDAP extended operation',
    domain: 'exop.example.net',
    async make(t) {
      const x = await run('ldapexop', [...adminArgs(t), `${PROVISION_OID}:exop.example.net`]);
      assert.equal(x.code, 0, x.stderr);
    },
  },
];

describe('a domain born through each door is signed from its first answer, and its mail verifies', () => {
  let t: TestAppliance;
  let hop: NextHop;
  let env: Record<string, string>;
  let dir: string;
  before(async () => {
    hop = await startNextHop();
    t = await startTestAppliance({ ...ENV, DCMX_SMTP_RELAY_PORT: String(hop.port) });
    env = testEnv(t.dataDir, { ...ENV, DCMX_SMTP_RELAY_PORT: String(hop.port) });
    dir = tempDir('dcmx-proof-');
    // relayed.org: a hosted domain whose mail goes to the next hop, so that mail to it leaves through the relay channel.
    const r = await run('ldapadd', adminArgs(t), [`dn: dc=org,${SUFFIX}`, 'objectClass: domain', 'dc: org', '', ...RELAYED_ORG].join('\n'));
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await t?.close();
    await hop?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const { door, domain, make } of DOORS) {
    test(`${door}: ${domain}`, { timeout: 120_000 }, async () => {
      await make(t, env);

      // The anchor the registrar would get: the DS line of `dcmx dnssec ds`, read from the store by another process.
      const ds = await runDcmx(env, ['dnssec', 'ds', domain]);
      assert.equal(ds.code, 0, ds.stderr);
      const m = /^(\S+)\s+(?:\d+\s+)?IN\s+DS\s+(\d+)\s+(\d+)\s+(\d+)\s+([0-9A-Fa-f ]+)$/.exec(ds.stdout.trim());
      assert.ok(m, `a DS line: ${ds.stdout}`);
      assert.equal(m[1], `${domain}.`);
      assert.equal(m[3], '13', 'ECDSA P-256 (RFC 8624 §3.1: algorithm 13)');
      const anchor: TrustAnchor = { zone: domain, file: path.join(dir, `${domain}.anchor`) };
      fs.writeFileSync(anchor.file, `trust-anchors {\n  "${domain}." static-ds ${m[2]} ${m[3]} ${m[4]} "${m[5].replace(/\s+/g, '')}";\n};\n`);

      // The DKIM selectors the domain got, as the administrator reads them.
      const keys = await run('ldapsearch', [...adminArgs(t), '-LLL', '-b', `dc=_domainkey,${dn(domain)}`, '-s', 'one', '(objectClass=dkimKey)', 'dc']);
      assert.equal(keys.code, 0, keys.stderr);
      const selectors = [...keys.stdout.matchAll(/^dc: (\S+)$/gm)].map((x) => x[1]).sort();
      assert.deepEqual(selectors.map((s) => s.replace(/^d\d{8}-/, '')), ['ed25519', 'rsa'], keys.stdout);

      const port = t.app.ports.dns;
      const expect: [string, string, RegExp][] = [
        [domain, 'SOA', / SOA /],
        [domain, 'MX', / MX \d+ /],
        ...selectors.map((s): [string, string, RegExp] => [`${s}._domainkey.${domain}`, 'TXT', /"v=DKIM1; k=(rsa|ed25519); p=/]),
        [`_mta-sts.${domain}`, 'TXT', /"v=STSv1; id=/],
        [`_smtp._tls.${domain}`, 'TXT', /"v=TLSRPTv1; rua=/],
        [`_dmarc.${domain}`, 'TXT', /"v=DMARC1; p=quarantine/],
      ];
      for (const [name, type, want] of expect) {
        const v = await delv(port, anchor, name, type);
        assert.ok(v.validated, `${door}: ${name} ${type} validates from the registrar's DS:\n${v.output}`);
        assert.ok(v.records.some((r) => want.test(r)), `${name} ${type}: ${v.records.join('\n')}`);
        assert.ok(v.records.some((r) => / RRSIG /.test(r)), `${name} ${type} comes signed`);
      }
      const none = await delv(port, anchor, `no-such-name.${domain}`, 'A');
      assert.ok(none.validated && none.negative, `${door}: the denial of a name that does not exist validates:\n${none.output}`);

      // Mail from the domain: signed with both keys on its way out; both verifiers pass it through our DNS.
      const from = `alice@${domain}`;
      const sw = await swaks(t.app.ports.smtp, { to: 'x@relayed.org', from, subject: `from ${door}`, body: 'a body to hash' });
      assert.equal(sw.code, 0, sw.out);
      const msg = (await waitFor('the next hop receives the message', () => hop.received.find((r) => r.mailFrom === from), 30_000)).body;
      assert.deepEqual(signatures(msg).map((x) => `${x.d} ${x.s}`).sort(), selectors.map((s) => `${domain} ${s}`).sort(), msg.slice(0, 2000));
      const py = await dkimVerify(port, msg);
      assert.equal(py.last, 'pass', `dkimpy: ${py.out}`);
      const od = await opendkimVerify(port, msg);
      assert.equal(od.code, 0, `opendkim-testmsg: ${od.out}`);
    });
  }
});
