/**
 * placeMailbox, as a table: where a mailbox is for the appliance (no
 * directory host) and for a remote transfer unit (the directory held by
 * appliance.dcmx.test), with this unit told apart by a real SelfIdentity
 * whose lookups go to a stub upstream DNS.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { placeMailbox, type Placement } from '../../server/mta/placement';
import { SelfIdentity } from '../../server/mta/self';
import { MailResolver } from '../../server/mta/resolver';
import { StubDns } from './stub-dns';

const UNIT = 'unit1.dcmx.test';
const APPLIANCE = 'appliance.dcmx.test';
let dns: StubDns;
let self: SelfIdentity;

before(async () => {
  dns = await StubDns.start();
  dns.a(APPLIANCE, '192.0.2.1').a('store.dcmx.test', '192.0.2.20');
  dns.silent.add('slow.dcmx.test');
  const resolver = new MailResolver({ upstream: [{ host: '127.0.0.1', port: dns.port }], timeoutMs: 300 });
  self = new SelfIdentity({ hostname: UNIT, selfAddresses: ['192.0.2.20'], listen: '127.0.0.1', smtpPort: 2525, relayPort: 25 }, resolver);
});
after(() => dns?.close());

const CASES: [string, string | undefined, string | undefined, Placement][] = [
  ['appliance, no mailHost: here (it holds the directory)', undefined, undefined, { kind: 'here' }],
  ['appliance, mailHost elsewhere: that host', 'store9.dcmx.test', undefined, { kind: 'host', host: 'store9.dcmx.test' }],
  ['remote unit, no mailHost: the directory\'s appliance', undefined, APPLIANCE, { kind: 'host', host: APPLIANCE }],
  ['remote unit, mailHost its own name: here', UNIT, APPLIANCE, { kind: 'here' }],
  ['remote unit, mailHost resolving to its address: here', 'store.dcmx.test', APPLIANCE, { kind: 'here' }],
  ['remote unit, mailHost the appliance: the appliance', APPLIANCE, APPLIANCE, { kind: 'host', host: APPLIANCE }],
  ['a mailHost whose address cannot be learnt now: unknown (retried later)', 'slow.dcmx.test', undefined, { kind: 'unknown', host: 'slow.dcmx.test' }],
];

for (const [name, mailHost, directoryHost, want] of CASES) {
  test(name, async () => assert.deepEqual(await placeMailbox(mailHost, directoryHost, (hosts) => self.holder(hosts)), want));
}
