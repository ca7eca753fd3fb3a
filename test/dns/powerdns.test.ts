/**
 * PowerDNS with its LDAP backend in tree mode (`ldap-method=tree`) reading
 * dcmx's directory over our LDAP port: it looks a name up at the DN its dc
 * chain spells, filtered on `associatedDomain=<name>`. The entries dcmx
 * provisions carry their own name there, so PowerDNS answers a provisioned
 * domain as dcmx does; an entry made by hand without it is not seen until
 * the README's fix is applied.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { adminArgs, run, runDcmx, startTestAppliance, testEnv, type TestAppliance } from '../helpers';
import { digRunner, flags, section, sortedAnswer, status } from './fixture';
import { freeDualPort } from './knot';
import { startPowerDns, type PowerDns } from './powerdns';
import { waitForAsync } from '../fixtures/wait';

let t: TestAppliance;
let pdns: PowerDns | undefined;
const digDcmx = digRunner(() => t.app.ports.dns);
const digPdns = digRunner(() => pdns!.port);

const ldapmodify = async (ldif: string) => {
  const r = await run('ldapmodify', adminArgs(t), ldif);
  assert.equal(r.code, 0, `ldapmodify failed:\n${r.stderr}`);
};

/** The whole of an answer that both must agree on: status, AA, and the three sections sorted. */
async function full(dig: typeof digDcmx, name: string, type: string): Promise<string> {
  const r = await dig(name, type);
  const aa = flags(r.stdout).includes('aa') ? 'aa' : 'not aa';
  return [status(r.stdout), aa, ...(['ANSWER', 'AUTHORITY'] as const).map((s) => `${s}: ${section(r.stdout, s).sort().join(' | ')}`)].join('\n');
}

before(async () => {
  t = await startTestAppliance();
  const r = await runDcmx(testEnv(t.dataDir), ['domain', 'add', 'example.org']);
  assert.equal(r.code, 0, r.stderr);
  // Hand-made data beside what dcmx provisioned: an address at the apex (a modify keeps its associatedDomain),
  // and a host made the README's way (domainRelatedObject, associatedDomain: its own name).
  await ldapmodify(`dn: dc=example,dc=org,o=internet
changetype: modify
add: aRecord
aRecord: 192.0.2.10
-

dn: dc=www,dc=example,dc=org,o=internet
changetype: add
objectClass: dNSDomain2
objectClass: domainRelatedObject
dc: www
associatedDomain: www.example.org
aRecord: 192.0.2.80
`);
  pdns = await startPowerDns({ port: await freeDualPort(), ldapPort: t.app.ports.ldap, basedn: 'o=internet' });
  let last = '';
  await waitForAsync('pdns_server to answer', async () => {
    if (pdns!.exited) throw new Error(`pdns_server exited (${JSON.stringify(pdns!.exited)}):\n${pdns!.log}`);
    last = (await digPdns('example.org', 'SOA')).stdout;
    return status(last) !== 'none';
  }, 15_000, 200).catch((e: Error) => assert.fail(`${e.message}; last answer:\n${last}\npdns log:\n${pdns!.log}`));
});

after(async () => {
  await pdns?.stop();
  await t?.close();
});

describe('PowerDNS (LDAP backend, tree mode) over the dcmx directory', () => {
  const QUESTIONS: [string, string][] = [
    ['example.org', 'SOA'], ['example.org', 'NS'], ['example.org', 'MX'], ['example.org', 'A'], ['example.org', 'TXT'],
    ['_dmarc.example.org', 'TXT'], ['www.example.org', 'A'], ['example.org', 'AAAA'], ['nothere.example.org', 'A'],
  ];

  for (const [name, type] of QUESTIONS) {
    test(`${name} ${type}: PowerDNS answers as dcmx does`, async () => {
      const ours = await full(digDcmx, name, type);
      assert.equal(await full(digPdns, name, type), ours, `pdns log:\n${pdns!.log.slice(-2000)}`);
    });
  }

  test('what the provisioned domain publishes is there, with the records dcmx gave it', async () => {
    assert.equal(await sortedAnswer(digPdns, 'example.org', 'MX'), 'NOERROR\nexample.org. 3600 IN MX 10 mx.dcmx.test.');
    assert.equal(await sortedAnswer(digPdns, 'example.org', 'TXT'), 'NOERROR\nexample.org. 3600 IN TXT "v=spf1 mx -all"');
    assert.equal(await sortedAnswer(digPdns, '_dmarc.example.org', 'TXT'), 'NOERROR\n_dmarc.example.org. 3600 IN TXT "v=DMARC1; p=quarantine"');
  });

  test('an entry made by hand without associatedDomain is invisible to PowerDNS until the README fix', async () => {
    await ldapmodify(`dn: dc=old,dc=example,dc=org,o=internet
changetype: add
objectClass: dNSDomain2
dc: old
aRecord: 192.0.2.81
`);
    assert.equal(await sortedAnswer(digDcmx, 'old.example.org', 'A'), 'NOERROR\nold.example.org. 3600 IN A 192.0.2.81');
    assert.equal(status((await digPdns('old.example.org', 'A')).stdout), 'NXDOMAIN', 'tree mode filters on associatedDomain');
    await ldapmodify(`dn: dc=old,dc=example,dc=org,o=internet
changetype: modify
add: objectClass
objectClass: domainRelatedObject
-
add: associatedDomain
associatedDomain: old.example.org
-
`);
    assert.equal(await full(digPdns, 'old.example.org', 'A'), await full(digDcmx, 'old.example.org', 'A'));
  });
});
