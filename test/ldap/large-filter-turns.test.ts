/**
 * A search with a huge filter does not hold the event loop: while the
 * appliance works through 2,000 entries against an OR of 20,000 substring
 * terms (a 371 KB filter), a small search on another connection and a DNS
 * query are answered before the big search completes. Only the order of
 * events is asserted, never a duration: the big search starts (its first
 * entry, u0, arrives) before the others are sent, and ends after they are
 * answered.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { ADMIN_PASSWORD, startTestAppliance, type TestAppliance } from '../helpers';
import { attrs } from '../directory/fixture';
import { bindPdu, eq, or, searchPdu, substr } from '../fixtures/ber';
import { connect, Responses } from '../fixtures/ldap';
import { queryPacket, udpQuery } from '../dns/fixture';

const USERS = 2000;
const TERMS = 20_000;

let t: TestAppliance;
before(async () => {
  t = await startTestAppliance();
  const d = t.app.directory;
  const me = d.systemIdentity();
  d.addSync(me, 'ou=people,o=internet', attrs({ objectClass: 'organizationalUnit', ou: 'people' }));
  for (let i = 0; i < USERS; i++) {
    d.addSync(me, `uid=u${i},ou=people,o=internet`, attrs({ objectClass: 'inetOrgPerson', uid: `u${i}`, cn: `User Number ${i}`, sn: `S${i}` }));
  }
});
after(async () => t.close());

test('a small search and a DNS query are answered while a search with a 20,000-term filter runs', { timeout: 180_000 }, async () => {
  const port = t.app.ports.ldap;
  const [a, b] = [await connect(port), await connect(port)];
  const [ra, rb] = [new Responses(a), new Responses(b)];
  for (const [s, r] of [[a, ra], [b, rb]] as const) {
    s.write(bindPdu(1, 'cn=admin,o=internet', ADMIN_PASSWORD));
    assert.equal((await r.result(1)).code, 0);
  }
  // (|(uid=u0)(cn=*q0zzzzzzz*)(cn=*q1zzzzzzz*)...): only u0, the first user, matches; every entry is tried against every term.
  const filter = or(eq('uid', 'u0'), ...Array.from({ length: TERMS }, (_, i) => substr('cn', undefined, [`q${i.toString(36)}`.padEnd(9, 'z')])));
  const big = searchPdu(2, 'ou=people,o=internet', 2, ['uid'], filter);
  assert.ok(big.length > 350_000, `${big.length} octets`);

  const events: string[] = [];
  a.write(big);
  // Its first entry is out: the big search is under way. Now the others ask.
  await ra.until(() => ra.all.some((x) => x.id === 2 && x.tag === 0x64), 'the first entry of the big search');
  const bigDone = ra.result(2).then((x) => {
    events.push('big search done');
    return x;
  });
  b.write(searchPdu(2, 'uid=u1,ou=people,o=internet', 0, ['cn']));
  const small = rb.result(2).then((x) => {
    events.push('small search done');
    return x;
  });
  const dns = udpQuery(t.app.ports.dns, queryPacket('example.org', 1), 120_000).then((x) => {
    events.push('DNS answered');
    return x;
  });
  const [bigResult, smallResult, dnsReply] = await Promise.all([bigDone, small, dns]);
  assert.equal(bigResult.code, 0);
  assert.equal(smallResult.code, 0);
  assert.ok(dnsReply, 'a DNS reply');
  assert.deepEqual(events.slice(-1), ['big search done'], `the others were answered first: ${events.join(', ')}`);
  assert.deepEqual(ra.all.filter((x) => x.id === 2 && x.tag === 0x64).length, 1, 'u0, and only u0, matched');
  a.destroy();
  b.destroy();
});
