/**
 * The LDAP endpoint's listener: with `reusePort` several endpoints (the
 * serving threads to come) listen on one port and the kernel spreads the
 * connections among them, on a runtime that has SO_REUSEPORT for net
 * servers (Node.js 22.12 / 23.1 and later, Linux); Node.js 20 has no such
 * option and the second listen fails as it always did. Without the option,
 * a port in use is refused whatever the runtime.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { startLdapServer, type LdapEndpoint, type LdapServerOptions } from '../../server/ldap/server';
import { silentLogger } from '../../server/log';
import type { Directory } from '../../server/directory/directory';
import { memoryDirectory } from '../directory/fixture';
import { LocalWriter } from '../../server/directory/writes';
import { extendedRequest, message } from '../fixtures/ber';
import { connect, Responses } from '../fixtures/ldap';

const [major, minor] = process.versions.node.split('.').map(Number);
/** Whether this runtime passes `reusePort` on to the socket (net.Server.listen, Node.js 22.12 and 23.1). */
const RUNTIME_REUSES_PORT = process.platform === 'linux' && (major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12));

let dir: Directory;
const endpoints: LdapEndpoint[] = [];
before(async () => {
  dir = (await memoryDirectory()).dir;
});
after(async () => {
  for (const e of endpoints) await e.close();
  dir.store.close();
});

const options = (port: number, reusePort?: boolean): LdapServerOptions => ({
  host: '127.0.0.1', port, maxPdu: 65536, maxDepth: 32, idleTimeout: 60, pduTimeout: 30, maxConnections: 256, reusePort, writer: new LocalWriter(dir),
});

async function start(port: number, reusePort?: boolean): Promise<LdapEndpoint> {
  const e = await startLdapServer(dir, options(port, reusePort), silentLogger());
  endpoints.push(e);
  return e;
}

test('without reusePort a second endpoint on the port is refused (EADDRINUSE)', async () => {
  const a = await start(0);
  await assert.rejects(start(a.port), { code: 'EADDRINUSE' });
});

test(RUNTIME_REUSES_PORT
  ? 'with reusePort two endpoints listen on one port and both are given connections'
  : `with reusePort on Node.js ${process.versions.node} (no SO_REUSEPORT for net servers) a second endpoint is refused as before`, async () => {
  const a = await start(0, true);
  if (!RUNTIME_REUSES_PORT) {
    await assert.rejects(start(a.port, true), { code: 'EADDRINUSE' });
    return;
  }
  const b = await start(a.port, true);
  assert.equal(b.port, a.port);
  // Each connection answers a Who am I?, so both endpoints have accepted every one of them.
  const conns: Responses[] = [];
  try {
    for (let i = 0; i < 64; i++) {
      const r = new Responses(await connect(a.port));
      conns.push(r);
      r.sock.write(message(1, extendedRequest('1.3.6.1.4.1.4203.1.11.3')));
      assert.equal((await r.result(1)).code, 0);
    }
    const counts = [a.stats().connections, b.stats().connections];
    assert.equal(counts[0] + counts[1], 64);
    assert.ok(counts[0] > 0 && counts[1] > 0, `the kernel gave connections to both: ${counts.join(' + ')}`);
  } finally {
    for (const r of conns) r.sock.destroy();
  }
});
