/** The admin HTTP endpoint answers JSON for health, routes, zones and stats. */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { startTestAppliance, type TestAppliance } from '../helpers';

let t: TestAppliance;
before(async () => {
  t = await startTestAppliance({ DCMX_HTTP_ALLOW: '127.0.0.1/32', DCMX_HTTP_HOSTS: 'admin.proxy.test', DCMX_SELF_ADDRESSES: '192.0.2.25' });
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

/** The status code of a raw HTTP/1.1 GET carrying exactly `host` as its Host header. */
function statusWithHost(host: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(t.app.ports.http, '127.0.0.1');
    let got = '';
    sock.setEncoding('latin1');
    sock.on('connect', () => sock.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
    sock.on('data', (d: string) => (got += d));
    sock.on('error', reject);
    sock.on('close', () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(got);
      if (m) resolve(Number(m[1]));
      else reject(new Error(`no status line: ${JSON.stringify(got)}`));
    });
  });
}

test('a Host that is not ours gets 421 (DNS rebinding); our names and addresses, with or without a port, are served', async () => {
  const port = t.app.ports.http;
  for (const p of ['/routes', '/zones', '/stats']) {
    for (const evil of ['evil.example', `evil.example:${port}`, 'mx.dcmx.test.evil.example', 'localhost.evil.example', '203.0.113.9']) {
      assert.equal(await statusWithHost(evil, p), 421, `${p} with Host: ${evil}`);
    }
    for (const ours of ['mx.dcmx.test', `MX.dcmx.test.:${port}`, 'localhost', `localhost:${port}`, `127.0.0.1:${port}`, '[::1]', 'admin.proxy.test', '192.0.2.25']) {
      assert.equal(await statusWithHost(ours, p), 200, `${p} with Host: ${ours}`);
    }
  }
  // /health answers probes whatever name they use.
  assert.equal(await statusWithHost('evil.example', '/health'), 200);
});
