/**
 * Every serving thread listens with reusePort, which would also let a
 * second dcmx (same user) bind the same ports and quietly share the
 * traffic. So a second appliance started on the ports of a running one is
 * refused, naming the setting, as with one thread; the first keeps serving.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { ADMIN_PASSWORD, run, startSpawned, spawnAppliance, stopChild, tempDirs, testEnv, type SpawnedAppliance } from '../helpers';

const tempDir = tempDirs('dcmx-threads-ports-');
let first: SpawnedAppliance | undefined;
after(async () => {
  if (first) await stopChild(first.child);
});

test('a second appliance on the ports of a running one is refused, whichever port it shares; the first keeps serving', { timeout: 120_000 }, async () => {
  // The subject of this file: appliances with two serving threads.
  first = await startSpawned(tempDir(), { DCMX_THREADS: '2' });
  const { ldap, dns, smtp } = first.ports;
  for (const [name, port] of [['DCMX_LDAP_PORT', ldap], ['DCMX_DNS_PORT', dns], ['DCMX_SMTP_PORT', smtp]] as const) {
    const env = testEnv(tempDir(), { DCMX_THREADS: '2', [name]: String(port) });
    await assert.rejects(spawnAppliance(env), (e: Error) => {
      assert.match(e.message, /exited with 2 before it was ready/, `${name}: ${e.message}`);
      assert.match(e.message, new RegExp(`dcmx: bad configuration: ${name}: 127\\.0\\.0\\.1:${port} is already in use`), e.message);
      return true;
    });
  }
  const who = await run('ldapwhoami', ['-x', '-H', `ldap://127.0.0.1:${ldap}`, '-D', 'cn=admin,o=internet', '-w', ADMIN_PASSWORD]);
  assert.equal(who.code, 0, who.stderr);
  const soa = await run('dig', ['@127.0.0.1', '-p', String(dns), '+norec', '+time=2', '+tries=1', 'o.internet', 'SOA']);
  assert.match(soa.stdout, /status: \w+/, 'DNS still answers');
  assert.equal(await stopChild(first.child), 0);
  first = undefined;
});
