/** routeOf: the route a mail domain's entry calls for, as a table. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { routeOf, describeRoute } from '../../server/directory/routing';
import type { MailDomain } from '../../server/directory/mail';

const SELF = 'mx.dcmx.test';
const base: MailDomain = {
  name: 'example.org', dn: 'dc=example,dc=org,o=internet', ndn: 'dc=example,dc=org,o=internet', status: 'active',
  routingHosts: [], smartHost: undefined, catchall: undefined, mx: [], aliases: [],
};

const CASES: [string, Partial<MailDomain>, string][] = [
  ['no MX record: local', {}, 'local'],
  ['MX points here (the provisioned record identifies the domain): local', { mx: [SELF] }, 'local'],
  ['MX elsewhere: relayed to it (backup MX)', { mx: ['mx1.example.org', 'mx2.example.org'] }, 'relay:mx1.example.org,mx2.example.org'],
  ['MX here among others: local', { mx: ['mx1.example.org', SELF] }, 'local'],
  ['smart host: relay', { smartHost: 'relay.example.net', mx: [SELF] }, 'relay:relay.example.net'],
  ['routing hosts naming us: local', { routingHosts: [SELF, 'other.example'], mx: ['elsewhere.example'] }, 'local'],
  ['routing hosts elsewhere: relay', { routingHosts: ['store1.example'] }, 'relay:store1.example'],
  ['hold', { status: 'hold', smartHost: 'relay.example.net' }, 'hold'],
  ['disabled: reject', { status: 'disabled' }, 'reject'],
];

for (const [name, patch, want] of CASES) {
  test(name, () => assert.equal(describeRoute(routeOf({ ...base, ...patch }, SELF)), want));
}
