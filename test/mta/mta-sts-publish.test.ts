/**
 * MTA-STS (RFC 8461) and TLSRPT (RFC 8460) records born with the domain, and
 * the policy served, end to end with real clients: a domain provisioned at
 * RCPT, by `dcmx domain add` in its own process and by the LDAP extended
 * operation (ldapexop) publishes `_mta-sts` TXT, `mta-sts` CNAME to the
 * appliance and `_smtp._tls` TXT (dig and kdig on our DNS port); curl fetches
 * `https://mta-sts.<domain>/.well-known/mta-sts.txt` from the admin HTTPS
 * port, verifying the appliance's certificate for that name, from a client
 * outside DCMX_HTTP_ALLOW; nothing else is served at that name, nor over
 * plain HTTP, nor for a domain we do not host. A new MX over LDAP and a
 * restart with DCMX_MTA_STS=enforce each change the policy and its id;
 * removing the domain withdraws it.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import selfsigned from 'selfsigned';
import { adminArgs, caughtUp, run, runDcmx, startTestAppliance, tempDirs, testEnv, type TestAppliance } from '../helpers';
import { digRunner, kdigRunner, section } from '../dns/fixture';
import { rcptTo } from '../fixtures/smtp';
import { ConfigError, loadConfig } from '../../server/config';
import { StubDns } from './stub-dns';

const SUFFIX = 'o=internet';
const PROVISION_OID = '1.3.6.1.4.1.32473.1.3.1';
const DOMAINS = { rcpt: 'rcpt.sts.example', cli: 'cli.sts.example', exop: 'exop.sts.example' };
const dn = (name: string): string => name.split('.').map((l) => `dc=${l}`).join(',') + `,${SUFFIX}`;
const tmp = tempDirs('dcmx-mta-sts-');

/** The answers of `name` `type` on our DNS port (dig or kdig): status and the record data, TXT strings joined. */
async function ask(port: number, name: string, type: string, prog: 'dig' | 'kdig' = 'dig'): Promise<{ status: string; data: string[] }> {
  const r = await (prog === 'dig' ? digRunner(port) : kdigRunner(port))(name, type);
  const status = /status: (\w+)/.exec(r.stdout)?.[1] ?? `none: ${r.stderr}`;
  const data = section(r.stdout, 'ANSWER').filter((l) => new RegExp(`\\sIN\\s+${type}\\s`).test(l)).map((l) => {
    const rdata = l.replace(new RegExp(`^\\S+\\s+\\d+\\s+IN\\s+${type}\\s+`), '');
    return type === 'TXT' ? [...rdata.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]).join('') : rdata.trim();
  });
  return { status, data };
}

/** The policy id in an `_mta-sts` TXT value. */
function idOf(record: string): string {
  const m = /^v=STSv1; id=([A-Za-z0-9]{1,32})$/.exec(record);
  assert.ok(m, `an MTA-STS record (RFC 8461 §3.1): ${record}`);
  return m[1];
}

describe('MTA-STS and TLSRPT published with the domain, the policy served over HTTPS', () => {
  let t: TestAppliance;
  let dns: StubDns;
  let cert: string;
  let key: string;

  /** curl over HTTPS to `name` (resolved to 127.0.0.1), trusting only the appliance's certificate: status, content type, body. */
  async function fetchPolicy(name: string, urlPath = '/.well-known/mta-sts.txt', port = t.app.ports.https!): Promise<{ status: number; type: string; body: string }> {
    const r = await run('curl', ['-sS', '--cacert', cert, '--resolve', `${name}:${port}:127.0.0.1`, '-w', '\n%{http_code} %{content_type}', `https://${name}:${port}${urlPath}`]);
    assert.equal(r.code, 0, r.stderr);
    const at = r.stdout.lastIndexOf('\n');
    const [status, type] = r.stdout.slice(at + 1).split(' ');
    return { status: Number(status), type: type ?? '', body: r.stdout.slice(0, at) };
  }

  const env = (extra: Record<string, string> = {}) => ({
    DCMX_PROVISIONING: 'allowlist', DCMX_PROVISION_ALLOW: 'sts.example', DCMX_UPSTREAM_DNS: dns.address,
    DCMX_HTTPS_PORT: '0', DCMX_TLS_CERT: cert, DCMX_TLS_KEY: key,
    // Only 192.0.2.0/24 reads the admin API: the policy is for everyone all the same.
    DCMX_HTTP_ALLOW: '192.0.2.0/24', ...extra,
  });

  before(async () => {
    dns = await StubDns.start();
    // The appliance's certificate names its policy hosts (the operator's certificate would, for enforce).
    const pems = await selfsigned.generate([{ name: 'commonName', value: 'mx.dcmx.test' }], {
      keySize: 2048, algorithm: 'sha256',
      extensions: [{ name: 'subjectAltName', altNames: ['mx.dcmx.test', ...Object.values(DOMAINS).map((d) => `mta-sts.${d}`), 'mta-sts.elsewhere.example'].map((value) => ({ type: 2, value })) }],
    });
    const dir = tmp();
    cert = path.join(dir, 'cert.pem');
    key = path.join(dir, 'key.pem');
    fs.writeFileSync(cert, pems.cert);
    fs.writeFileSync(key, pems.private);
    t = await startTestAppliance(env());
  });
  after(async () => {
    await t?.close();
    await dns?.close();
  });

  const ids = new Map<string, string>();

  test('every door publishes _mta-sts TXT, mta-sts CNAME and _smtp._tls TXT in the domain\'s transaction; the policy is served for the name', async () => {
    const reply = await rcptTo(t.app.ports.smtp, `someone@${DOMAINS.rcpt}`, { timeoutMs: 15_000 });
    assert.equal(reply.code, 250, reply.raw);
    const cli = await runDcmx(testEnv(t.dataDir, env()), ['domain', 'add', DOMAINS.cli], 30_000);
    assert.equal(cli.code, 0, cli.stderr);
    const x = await run('ldapexop', [...adminArgs(t), `${PROVISION_OID}:${DOMAINS.exop}`]);
    assert.equal(x.code, 0, x.stderr);
    await caughtUp(t);
    const port = t.app.ports.dns;
    for (const domain of Object.values(DOMAINS)) {
      const sts = await ask(port, `_mta-sts.${domain}`, 'TXT');
      assert.equal(sts.status, 'NOERROR', domain);
      assert.equal(sts.data.length, 1, sts.data.join('\n'));
      ids.set(domain, idOf(sts.data[0]));
      const rpt = await ask(port, `_smtp._tls.${domain}`, 'TXT', 'kdig');
      assert.deepEqual(rpt.data, [`v=TLSRPTv1; rua=mailto:postmaster@${domain}`]);
      const host = await ask(port, `mta-sts.${domain}`, 'CNAME', 'kdig');
      assert.deepEqual(host.data, ['mx.dcmx.test.'], 'the policy host is the appliance, as the MX is');
      const policy = await fetchPolicy(`mta-sts.${domain}`);
      assert.equal(policy.status, 200, policy.body);
      assert.match(policy.type, /^text\/plain/);
      assert.equal(policy.body, 'version: STSv1\nmode: testing\nmx: mx.dcmx.test\nmax_age: 604800\n');
    }
    assert.equal(new Set(ids.values()).size, 1, 'the same policy, the same id');
  });

  test('nothing else at the policy host, nothing over plain HTTP, 404 for a domain not hosted here', async () => {
    assert.equal((await fetchPolicy('mta-sts.elsewhere.example')).status, 404);
    const other = await fetchPolicy(`mta-sts.${DOMAINS.cli}`, '/stats');
    assert.ok(other.status === 403 || other.status === 421, `no admin data at the policy host: ${other.status} ${other.body}`);
    assert.doesNotMatch(other.body, /routes|zones|queue/);
    const plain = await run('curl', ['-sS', '-H', `Host: mta-sts.${DOMAINS.cli}`, '-w', '\n%{http_code}', `http://127.0.0.1:${t.app.ports.http}/.well-known/mta-sts.txt`]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.notEqual(plain.stdout.slice(plain.stdout.lastIndexOf('\n') + 1), '200', 'RFC 8461 §3.3: HTTPS only');
    assert.doesNotMatch(plain.stdout, /STSv1/);
  });

  test('a new MX over LDAP changes the policy and, in the same write, its id', async () => {
    const domain = DOMAINS.exop;
    const soa = async () => Number((await ask(t.app.ports.dns, domain, 'SOA')).data[0]?.split(/\s+/)[2]);
    const serial = await soa();
    const r = await run('ldapmodify', adminArgs(t), `dn: ${dn(domain)}\nchangetype: modify\nadd: mXRecord\nmXRecord: 20 backup.example.net.\n`);
    assert.equal(r.code, 0, r.stderr);
    const sts = await ask(t.app.ports.dns, `_mta-sts.${domain}`, 'TXT');
    const id = idOf(sts.data[0]);
    assert.notEqual(id, ids.get(domain), 'a new id for the new policy');
    assert.equal((await fetchPolicy(`mta-sts.${domain}`)).body, 'version: STSv1\nmode: testing\nmx: backup.example.net\nmx: mx.dcmx.test\nmax_age: 604800\n');
    assert.ok((await soa()) > serial, 'the serial moved');
    // Back to the old MX set: back to the old policy, and to its id.
    const back = await run('ldapmodify', adminArgs(t), `dn: ${dn(domain)}\nchangetype: modify\ndelete: mXRecord\nmXRecord: 20 backup.example.net.\n`);
    assert.equal(back.code, 0, back.stderr);
    assert.equal(idOf((await ask(t.app.ports.dns, `_mta-sts.${domain}`, 'TXT')).data[0]), ids.get(domain));
  });

  test('a restart with DCMX_MTA_STS=enforce serves mode enforce under new ids', async () => {
    await t.app.close();
    t = await startTestAppliance(env({ DCMX_MTA_STS: 'enforce', DCMX_MTA_STS_MAX_AGE: '86400' }), t.dataDir);
    for (const domain of Object.values(DOMAINS)) {
      const id = idOf((await ask(t.app.ports.dns, `_mta-sts.${domain}`, 'TXT')).data[0]);
      assert.notEqual(id, ids.get(domain), `${domain}: a new id`);
      assert.equal((await fetchPolicy(`mta-sts.${domain}`)).body, 'version: STSv1\nmode: enforce\nmx: mx.dcmx.test\nmax_age: 86400\n');
    }
  });

  test('domain remove withdraws the policy and the report record', async () => {
    const r = await runDcmx(testEnv(t.dataDir, env({ DCMX_MTA_STS: 'enforce', DCMX_MTA_STS_MAX_AGE: '86400' })), ['domain', 'remove', DOMAINS.cli], 30_000);
    assert.equal(r.code, 0, r.stderr);
    await caughtUp(t);
    assert.deepEqual((await ask(t.app.ports.dns, `_mta-sts.${DOMAINS.cli}`, 'TXT')).data, []);
    assert.deepEqual((await ask(t.app.ports.dns, `_smtp._tls.${DOMAINS.cli}`, 'TXT')).data, []);
    assert.equal((await fetchPolicy(`mta-sts.${DOMAINS.cli}`)).status, 404);
  });

  test('DCMX_MTA_STS=off: a new domain publishes nothing', async () => {
    const r = await runDcmx(testEnv(t.dataDir, env({ DCMX_MTA_STS: 'off' })), ['domain', 'add', 'off.sts.example'], 30_000);
    assert.equal(r.code, 0, r.stderr);
    await caughtUp(t);
    assert.equal((await ask(t.app.ports.dns, '_mta-sts.off.sts.example', 'TXT')).status, 'NXDOMAIN');
    assert.equal((await ask(t.app.ports.dns, '_smtp._tls.off.sts.example', 'TXT')).status, 'NXDOMAIN');
  });
});

test('configuration: DCMX_MTA_STS, DCMX_MTA_STS_MAX_AGE and DCMX_TLSRPT_RUA are checked, naming the variable', () => {
  const base = testEnv('/nonexistent-data-dir');
  const refused = (extra: Record<string, string>, variable: string, why: RegExp) => {
    assert.throws(() => loadConfig({ ...base, ...extra }), (e: unknown) => e instanceof ConfigError && e.variable === variable && why.test(e.message), JSON.stringify(extra));
  };
  refused({ DCMX_MTA_STS: 'strict' }, 'DCMX_MTA_STS', /not one of testing, enforce, off/);
  refused({ DCMX_MTA_STS: 'enforce' }, 'DCMX_MTA_STS', /DCMX_TLS_CERT/);
  refused({ DCMX_MTA_STS_MAX_AGE: '40000000' }, 'DCMX_MTA_STS_MAX_AGE', /between/);
  refused({ DCMX_TLSRPT_RUA: 'postmaster@example.org' }, 'DCMX_TLSRPT_RUA', /mailto: or https:/);
  refused({ DCMX_MTA_STS_CA: '/nonexistent/ca.pem' }, 'DCMX_MTA_STS_CA', /./);
  const c = loadConfig({ ...base, DCMX_TLSRPT_RUA: 'mailto:tls@{domain}, https://reports.example.net/tlsrpt' });
  assert.equal(c.newDomain.mtaSts.rua, 'mailto:tls@{domain},https://reports.example.net/tlsrpt');
  assert.equal(c.newDomain.mtaSts.mode, 'testing');
  assert.equal(loadConfig({ ...base, DCMX_TLSRPT_RUA: 'off' }).newDomain.mtaSts.rua, '');
});
