/**
 * The appliance's certificate, for SMTP STARTTLS (RFC 3207), LDAP StartTLS
 * (RFC 4513 §3) and the admin HTTPS port (admin/http.ts, DCMX_HTTPS_PORT): the configured PEM pair (DCMX_TLS_CERT/DCMX_TLS_KEY), or a
 * self-signed one generated once on first boot into the data dir (key mode
 * 0600; the file names say smtp- for the data dirs that already hold one).
 * Never smtp-server's built-in key, whose private half is public.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';

export interface TlsPair {
  cert: Buffer;
  key: Buffer;
}

/** Loads or creates the certificate for `hostname`. */
export async function loadTls(opts: { dataDir: string; hostname: string; cert?: string; key?: string }): Promise<TlsPair> {
  if (opts.cert && opts.key) return { cert: fs.readFileSync(opts.cert), key: fs.readFileSync(opts.key) };
  const dir = path.join(opts.dataDir, 'tls');
  const certFile = path.join(dir, 'smtp-cert.pem');
  const keyFile = path.join(dir, 'smtp-key.pem');
  if (fs.existsSync(certFile) && fs.existsSync(keyFile)) return { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) };
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pems = await makeCertificate(opts.hostname);
  fs.writeFileSync(keyFile, pems.private, { mode: 0o600 });
  fs.writeFileSync(certFile, pems.cert, { mode: 0o644 });
  return { cert: Buffer.from(pems.cert), key: Buffer.from(pems.private) };
}

/**
 * A self-signed certificate for `hostname` (cert-maker.ts), made in a
 * worker thread so that its libraries leave the process with it.
 */
function makeCertificate(hostname: string): Promise<{ cert: string; private: string }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(path.join(__dirname, 'cert-maker.js'), { workerData: { hostname } });
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the certificate maker stopped (exit code ${code}) before it answered`)));
  });
}
