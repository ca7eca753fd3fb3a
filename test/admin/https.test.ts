/**
 * The admin endpoint over HTTPS (DCMX_HTTPS_PORT): the same handler as plain HTTP, served with
 * the appliance's certificate — the configured one (DCMX_TLS_CERT, which the clients here trust
 * as their CA) or, unset, the one generated into the data dir. Over real sockets: curl
 * --cacert for /health and /stats and the Host check (421), node's https from another loopback
 * source for DCMX_HTTP_ALLOW (403), a console login whose Secure cookie now travels over TLS,
 * openssl s_client for the certificate served (a port in use: test/main.test.ts).
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import selfsigned from 'selfsigned';
import { ADMIN_PASSWORD, run, startTestAppliance, tempDirs, type TestAppliance } from '../helpers';

const tmp = tempDirs('dcmx-https-');
let t: TestAppliance;
let tls: { cert: string; key: string };
let base: string;

before(async () => {
  // The appliance's certificate, for 127.0.0.1 and localhost; the clients trust it as their CA.
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'mx.dcmx.test' }], {
    keySize: 2048, algorithm: 'sha256',
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }, { type: 2, value: 'localhost' }] }],
  });
  const dir = tmp();
  tls = { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') };
  fs.writeFileSync(tls.cert, pems.cert);
  fs.writeFileSync(tls.key, pems.private);
  t = await startTestAppliance({ DCMX_HTTPS_PORT: '0', DCMX_TLS_CERT: tls.cert, DCMX_TLS_KEY: tls.key, DCMX_HTTP_ALLOW: '127.0.0.1/32' });
  assert.ok(t.app.ports.https !== undefined && t.app.ports.https > 0);
  assert.notEqual(t.app.ports.https, t.app.ports.http);
  base = `https://127.0.0.1:${t.app.ports.https}`;
});
after(async () => t.close());

/** curl over TLS trusting only the appliance's certificate: the status code and the body. */
async function curl(url: string, extra: string[] = []): Promise<{ status: number; body: string }> {
  const r = await run('curl', ['-sS', '--cacert', tls.cert, '-w', '\n%{http_code}', ...extra, url]);
  assert.equal(r.code, 0, r.stderr);
  const at = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(at + 1)), body: r.stdout.slice(0, at) };
}

/** The SHA-256 fingerprint of the first certificate in a PEM text. */
const fingerprint = (pem: string) => new crypto.X509Certificate(pem).fingerprint256;

/** The certificate openssl s_client is served at 127.0.0.1:port. */
async function servedCertificate(port: number): Promise<string> {
  const r = await run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost'], '');
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(r.stdout);
  assert.ok(pem, `no certificate from openssl s_client: ${r.stderr}`);
  return pem[0];
}

test('over HTTPS with the appliance certificate: /health and /stats; plain HTTP still served', async () => {
  const health = await curl(`${base}/health`);
  assert.equal(health.status, 200);
  assert.equal((JSON.parse(health.body) as { status: string }).status, 'ok');
  const stats = await curl(`${base}/stats`);
  assert.equal(stats.status, 200);
  const s = JSON.parse(stats.body) as Record<string, unknown>;
  for (const k of ['cache', 'queue', 'delivery', 'dns']) assert.ok(k in s, k);
  // By name too (the certificate's DNS name), and the plain listener beside it.
  assert.equal((await curl(`https://localhost:${t.app.ports.https}/health`)).status, 200);
  assert.equal((await fetch(`http://127.0.0.1:${t.app.ports.http}/health`)).status, 200);
  // Plain HTTP on the HTTPS port gets no answer from the handler (TLS is required there).
  const plain = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${t.app.ports.https}/health`]);
  assert.notEqual(plain.stdout, '200');
});

test('openssl s_client is served the configured certificate', async () => {
  assert.equal(fingerprint(await servedCertificate(t.app.ports.https!)), fingerprint(fs.readFileSync(tls.cert, 'utf8')));
  // And a client that does not trust it is refused by its own check, not served in clear.
  const r = await run('curl', ['-sS', `${base}/health`]);
  assert.notEqual(r.code, 0);
});

test('the same checks as plain HTTP: a Host not ours gets 421, a source outside DCMX_HTTP_ALLOW 403', async () => {
  const rebound = await curl(`${base}/stats`, ['-H', 'Host: evil.example']);
  assert.equal(rebound.status, 421);
  assert.equal((await curl(`${base}/health`, ['-H', 'Host: evil.example'])).status, 200);
  const from = (localAddress: string, p: string) => new Promise<number>((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port: t.app.ports.https, path: p, localAddress, ca: fs.readFileSync(tls.cert) }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
  });
  assert.equal(await from('127.0.0.2', '/stats'), 403);
  assert.equal(await from('127.0.0.2', '/health'), 200);
  assert.equal(await from('127.0.0.1', '/stats'), 200);
});

test('console login over HTTPS sets the Secure session cookie, which then opens the API', async () => {
  const login = await curl(`${base}/api/login`, [
    '-D', '-', '-X', 'POST', '-H', 'content-type: application/json', '-H', `origin: ${base}`,
    '--data', JSON.stringify({ user: t.adminDN, password: ADMIN_PASSWORD }),
  ]);
  assert.match(login.body, /^HTTP\/1\.1 200/);
  const cookie = /^set-cookie: ([^\r\n]+)/im.exec(login.body)?.[1] ?? '';
  assert.match(cookie, /;\s*Secure\b/);
  assert.match(cookie, /HttpOnly/);
  const session = await curl(`${base}/api/session`, ['-H', `cookie: ${cookie.split(';')[0]}`]);
  assert.equal(session.status, 200, session.body);
  assert.equal((JSON.parse(session.body) as { user?: string; admin?: boolean }).admin, true);
  assert.equal((await curl(`${base}/api/session`)).status, 401);
});

test('unset, there is no HTTPS listener; set without DCMX_TLS_CERT, the generated certificate is served', async () => {
  assert.equal(t.config.http.httpsPort, 0);
  const generated = await startTestAppliance({ DCMX_HTTPS_PORT: '0' });
  try {
    const file = path.join(generated.dataDir, 'tls', 'smtp-cert.pem');
    assert.equal(fingerprint(await servedCertificate(generated.app.ports.https!)), fingerprint(fs.readFileSync(file, 'utf8')));
  } finally {
    await generated.close();
  }
  const off = await startTestAppliance();
  try {
    assert.equal(off.app.ports.https, undefined);
  } finally {
    await off.close();
  }
});
