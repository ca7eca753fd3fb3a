/** The admin HTTP endpoint answers JSON for health, routes, zones and stats. */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { startTestAppliance, type TestAppliance } from '../helpers';

let t: TestAppliance;
before(async () => {
  t = await startTestAppliance();
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
