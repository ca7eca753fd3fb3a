/**
 * What the DKIM tests share: dkimpy's and OpenDKIM's verdicts on a message
 * (both resolving on our DNS port), the tags of a
 * message's DKIM-Signature fields, and the TXT answers of our DNS port.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as assert from 'node:assert/strict';
import { adminArgs, caughtUp, run, tempDir, type TestAppliance } from '../helpers';
import { digRunner, section } from '../dns/fixture';

/**
 * LDIF of `relayed.org` (below `dc=org`, which must exist), a hosted domain
 * whose mail goes to the smart host 127.0.0.1: with DCMX_SMTP_RELAY_PORT at
 * a test's next hop, mail to it leaves through the relay channel, signed.
 */
export const RELAYED_ORG = ['dn: dc=relayed,dc=org,o=internet', 'objectClass: domain', 'objectClass: mailDomain', 'dc: relayed', 'mailRoutingSmartHost: 127.0.0.1', ''];

/** ldapadd of the LDIF `lines` as the administrator; resolves once the appliance has caught up with it. */
export async function adminAdd(t: TestAppliance, lines: string[]): Promise<void> {
  const r = await run('ldapadd', adminArgs(t), lines.join('\n'));
  assert.equal(r.code, 0, r.stderr);
  await caughtUp(t);
}

/** dkimpy's verdict on `message`: one line per signature (`a d s pass|fail`), then `pass` or `fail` (code 0 or 1). */
export async function dkimVerify(port: number, message: string): Promise<{ code: number; out: string; last: string }> {
  // The Python script lives beside this test's source, which tsc does not copy to dist.
  const script = path.join(__dirname, '..', '..', '..', 'test', 'mta', 'dkim-verify.py');
  const r = await run('/usr/bin/python3', [script, String(port)], message);
  const out = `${r.stdout}${r.stderr}`.trim();
  return { code: r.code, out, last: r.stdout.trim().split('\n').pop() ?? '' };
}

/** The tags of each DKIM-Signature field of `message` (folding whitespace removed), in order. */
export function signatures(message: string): Record<string, string>[] {
  return [...message.matchAll(/^DKIM-Signature:(.*(?:\r?\n[ \t].*)*)/gim)].map((m) =>
    Object.fromEntries(m[1].replace(/\s+/g, '').split(';').filter(Boolean).map((t) => [t.slice(0, t.indexOf('=')), t.slice(t.indexOf('=') + 1)])));
}

/**
 * OpenDKIM's verdict on `message` (CRLF line ends): code 0 when
 * `opendkim-testmsg` verifies it, its output otherwise. libopendkim resolves
 * through the C library's resolver, which reads /etc/resolv.conf and asks
 * port 53 only; so the verifier runs in a user, mount and network namespace
 * of its own (`unshare`, util-linux: no root needed) where /etc/resolv.conf
 * is a bind-mounted file naming 127.0.0.1 over TCP, and opendkim-ns.ts
 * carries its queries over a Unix socket (a file, seen from both network
 * namespaces) to this process, which carries them on to our DNS port.
 * Nothing of the machine's resolver is asked; nothing changes outside.
 */
export async function opendkimVerify(dnsPort: number, message: string): Promise<{ code: number; out: string }> {
  const dir = tempDir('dcmx-opendkim-');
  const sock = path.join(dir, 'dns.sock');
  const resolv = path.join(dir, 'resolv.conf');
  const msg = path.join(dir, 'message');
  fs.writeFileSync(resolv, 'nameserver 127.0.0.1\noptions use-vc attempts:1 timeout:5\n');
  fs.writeFileSync(msg, message);
  const conns = new Set<net.Socket>();
  const bridge = net.createServer((inner) => {
    const outer = net.connect(dnsPort, '127.0.0.1');
    for (const s of [inner, outer]) {
      conns.add(s);
      s.on('error', () => undefined).on('close', () => conns.delete(s));
    }
    inner.pipe(outer).pipe(inner);
  });
  await new Promise<void>((resolve) => bridge.listen(sock, resolve));
  try {
    const setup = 'ip link set lo up && mount --bind "$1" /etc/resolv.conf && shift && exec "$@"';
    const r = await run('unshare', ['--user', '--map-root-user', '--net', '--mount', '--propagation', 'private', '--',
      'sh', '-c', setup, 'sh', resolv, process.execPath, path.join(__dirname, 'opendkim-ns.js'), sock, msg], undefined, 30_000);
    return { code: r.code, out: `${r.stdout}${r.stderr}`.trim() };
  } finally {
    for (const s of conns) s.destroy();
    await new Promise<void>((resolve) => bridge.close(() => resolve()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The TXT strings of `name` on our DNS port, each answer's strings joined (RFC 6376 §3.6.2.2). */
export async function txt(port: number, name: string): Promise<{ status: string; records: string[] }> {
  const r = await digRunner(port)(name, 'TXT');
  const status = /status: (\w+)/.exec(r.stdout)?.[1] ?? `none: ${r.stderr}`;
  const records = section(r.stdout, 'ANSWER')
    .map((l) => [...l.replace(/^\S+\s+\d+\s+IN\s+TXT\s+/, '').matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]).join(''));
  return { status, records };
}

/** A Maildir file as sent on the wire: LF line ends made CRLF (the Maildir convention writes LF). */
export function crlf(maildirFile: string): string {
  return maildirFile.replace(/\r?\n/g, '\r\n');
}
