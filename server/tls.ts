/**
 * The appliance's certificate, for SMTP STARTTLS (RFC 3207), LDAP StartTLS
 * (RFC 4513 §3) and the admin HTTPS port (admin/http.ts, DCMX_HTTPS_PORT): the configured PEM pair (DCMX_TLS_CERT/DCMX_TLS_KEY), or a
 * self-signed one generated once on first boot into the data dir (key mode
 * 0600; the file names say smtp- for the data dirs that already hold one).
 * Never smtp-server's built-in key, whose private half is public.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { lazily } from './lazy';

/** Needed on first boot only (lazy.ts). */
const selfsigned = lazily(() => require('selfsigned') as typeof import('selfsigned')); // eslint-disable-line @typescript-eslint/no-require-imports

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
  const now = new Date();
  const pems = await selfsigned().generate([{ name: 'commonName', value: opts.hostname }], {
    notBeforeDate: now,
    notAfterDate: new Date(now.getTime() + 10 * 365 * 86400_000),
    keySize: 2048,
    algorithm: 'sha256',
  });
  fs.writeFileSync(keyFile, pems.private, { mode: 0o600 });
  fs.writeFileSync(certFile, pems.cert, { mode: 0o644 });
  return { cert: Buffer.from(pems.cert), key: Buffer.from(pems.private) };
}
