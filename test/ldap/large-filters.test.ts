/**
 * Large valid filters end to end with ldapsearch: an OR of 2,000 equality
 * assertions (about 26 KB of BER, far below the PDU limit) and an AND/OR mix
 * with thousands of terms are answered with their entries and result 0, not
 * with "other" from SQLite's expression-depth limit.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { adminArgs, ldapResultCode, run, startTestAppliance, type TestAppliance } from '../helpers';

const PEOPLE = 'ou=people,o=internet';
const USERS = 30;

let t: TestAppliance;
before(async () => {
  t = await startTestAppliance();
  let ldif = `dn: ${PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n`;
  for (let i = 0; i < USERS; i++) {
    ldif += `dn: uid=u${i},${PEOPLE}\nobjectClass: inetOrgPerson\nuid: u${i}\ncn: User ${i}\nsn: S${i % 3}\nmail: u${i}@example.org\n\n`;
  }
  const r = await run('ldapadd', adminArgs(t), ldif);
  assert.equal(r.code, 0, r.stderr);
});
after(async () => {
  await t.close();
});

const range = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i);
const dns = (ids: number[]): string[] => ids.map((i) => `uid=u${i},${PEOPLE}`).sort();

/**
 * The AND/OR mix costs the server seconds of CPU (SQLite prepares and runs the
 * statement its thousands of terms make): twice that and more on a loaded
 * machine, so ldapsearch gets a bound far above it (a hang guard; no timing is asserted).
 */
const SEARCH_BOUND_MS = 120_000;

async function search(filter: string): Promise<{ dns: string[]; code: number; out: string }> {
  const r = await run('ldapsearch', [...adminArgs(t), '-LLL', '-o', 'ldif-wrap=no', '-b', 'o=internet', filter, '1.1'], undefined, SEARCH_BOUND_MS);
  return { dns: [...r.stdout.matchAll(/^dn: (.*)$/gm)].map((m) => m[1]).sort(), code: ldapResultCode(r), out: r.stderr.slice(0, 500) };
}

describe('large filters over LDAP', () => {
  test('an OR of 2,000 uid equalities returns its entries', async () => {
    const all = await search(`(|${range(2000).map((i) => `(uid=u${i})`).join('')})`);
    assert.equal(all.code, 0, all.out);
    assert.deepEqual(all.dns, dns(range(USERS)));
    // Listing only the odd uids (still 2,000 of them) finds only the odd users.
    const odd = await search(`(|${range(2000).map((i) => `(uid=u${2 * i + 1})`).join('')})`);
    assert.equal(odd.code, 0, odd.out);
    assert.deepEqual(odd.dns, dns(range(USERS).filter((i) => i % 2 === 1)));
  });

  test('an AND/OR mix with thousands of terms returns exactly the matching entries', async () => {
    // (&(objectClass=inetOrgPerson)
    //   (|(uid=u0)..(uid=u9) (&(mail=u{i}@example.org)(|(sn=S{i%3})(cn=nobody)))*1500 (cn=*ser 2*))
    //   (!(|(sn=S2)(uid=u20)..(uid=u519))))
    const f = '(&(objectClass=inetOrgPerson)(|' +
      range(10).map((i) => `(uid=u${i})`).join('') +
      range(1500).map((i) => `(&(mail=u${i}@example.org)(|(sn=S${i % 3})(cn=nobody)))`).join('') +
      '(cn=*ser 2*))(!(|(sn=S2)' + range(500, 20).map((i) => `(uid=u${i})`).join('') + ')))';
    assert.ok(f.length > 60_000, `filter is ${f.length} characters`);
    const r = await search(f);
    assert.equal(r.code, 0, r.out);
    // Every user is in the OR; the NOT removes the S2 ones and u20..u29.
    assert.deepEqual(r.dns, dns(range(20).filter((i) => i % 3 !== 2)));
  });
});
