/** The admin HTTP endpoint answers JSON for health, routes, zones and stats. */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as http from 'node:http';
import { startTestAppliance, type TestAppliance } from '../helpers';

let t: TestAppliance;
before(async () => {
  t = await startTestAppliance({ DCMX_HTTP_ALLOW: '127.0.0.1/32' });
  t.app.provisioner.provisionDomain('routed.example');
});
after(async () => t.close());

async function get(path: string): Promise<{ status: number; body: unknown }> {
  const r = await fetch(`http://127.0.0.1:${t.app.ports.http}${path}`);
  return { status: r.status, body: await r.json() };
}

test('health, routes, zones, stats; 404 and 405', async () => {
  const h = await get('/health');
  assert.equal(h.status, 200);
  assert.equal((h.body as { status: string }).status, 'ok');
  const r = (await get('/routes')).body as { version: number; routes: { domain: string; route: string }[] };
  assert.ok(r.routes.some((x) => x.domain === 'routed.example' && x.route === 'local'));
  assert.equal(r.version, t.app.directory.changeRange().last);
  const z = (await get('/zones')).body as { name: string; serial: number }[];
  assert.ok(z.some((x) => x.name === 'routed.example' && x.serial > 0));
  const s = (await get('/stats')).body as Record<string, unknown>;
  for (const k of ['cache', 'queue', 'delivery', 'intake', 'routing', 'dns']) assert.ok(k in s, k);
  assert.equal((await get('/nope')).status, 404);
  const post = await fetch(`http://127.0.0.1:${t.app.ports.http}/health`, { method: 'POST' });
  assert.equal(post.status, 405);
});

/** GET from a chosen loopback source address. */
function getFrom(localAddress: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: t.app.ports.http, path, localAddress }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });
}

test('outside DCMX_HTTP_ALLOW only /health answers; the rest is 403', async () => {
  assert.equal(await getFrom('127.0.0.2', '/health'), 200);
  for (const p of ['/routes', '/zones', '/stats']) {
    assert.equal(await getFrom('127.0.0.2', p), 403, p);
    assert.equal(await getFrom('127.0.0.1', p), 200, p);
  }
});
