/**
 * Fixtures for the transfer unit end to end: the one mail domain and user
 * most tests deliver to, a raw SMTP client for the commands real clients
 * will not send, a swaks runner that returns the transcript, a next-hop SMTP
 * server on loopback that records what it is given, and Maildir readers.
 * Everything stays on 127.0.0.1.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { ADMIN_PASSWORD, ldapaddAt, run } from '../helpers';

// ------------------------------------------------------------------ one mail domain, one user

/** The one local user of USER_LDIF. */
export const USER = 'user@example.org';

/** The mail domain example.org (MX mx.dcmx.test) with one user, USER, as LDIF for ldapadd. */
export const USER_LDIF = `dn: dc=org,o=internet
objectClass: domain
dc: org

dn: dc=example,dc=org,o=internet
objectClass: dNSDomain2
objectClass: mailDomain
dc: example
mXRecord: 10 mx.dcmx.test.

dn: ou=people,dc=example,dc=org,o=internet
objectClass: organizationalUnit
ou: people

dn: uid=user,ou=people,dc=example,dc=org,o=internet
objectClass: inetOrgPerson
objectClass: inetMailUser
uid: user
cn: Test User
sn: User
mail: user@example.org
`;

/** Adds USER_LDIF as the administrator over the LDAP port of a spawned appliance; ldapadd must succeed. */
export async function addUser(ldapPort: number): Promise<void> {
  const r = await ldapaddAt(ldapPort, USER_LDIF);
  assert.equal(r.code, 0, r.stderr);
}

/** Sets example.org's mailDomainStatus as the administrator over LDAP (hold: mail is accepted and kept queued). */
export async function domainStatus(ldapPort: number, status: 'hold' | 'active'): Promise<void> {
  const r = await run('ldapmodify', ['-x', '-H', `ldap://127.0.0.1:${ldapPort}`, '-D', 'cn=admin,o=internet', '-w', ADMIN_PASSWORD],
    `dn: dc=example,dc=org,o=internet\nchangetype: modify\nreplace: mailDomainStatus\nmailDomainStatus: ${status}\n`);
  assert.equal(r.code, 0, r.stderr);
}

/** The names in `dir`; none when it does not exist. */
export function ls(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

/** The raw SMTP client is shared with every test folder (fixtures/smtp.ts). */
export { RawSmtp, type SmtpReply } from '../fixtures/smtp';

/** What swaks printed, and the reply the server gave to a command. */
export interface SwaksResult {
  code: number;
  out: string;
  /** The first line of the server's reply to the first command starting with `verb`, e.g. 'RCPT TO' → '550 5.1.1 ...'. */
  replyTo(verb: string): string | undefined;
}

export interface SwaksOptions {
  to: string;
  /** Envelope sender; '' for the null sender (swaks spells it '<>'). Default sender@client.test. */
  from?: string;
  subject?: string;
  body?: string;
  /** swaks --quit-after (e.g. 'RCPT'). */
  quitAfter?: string;
  extra?: string[];
  /** The server's address (default 127.0.0.1). */
  server?: string;
}

/** Runs swaks against 127.0.0.1:port (or o.server) with an explicit EHLO name (so swaks never asks a resolver). */
export async function swaks(port: number, o: SwaksOptions): Promise<SwaksResult> {
  const args = [
    '--server', o.server ?? '127.0.0.1', '--port', String(port), '--ehlo', 'client.test', '--timeout', '15',
    '--to', o.to, '--from', o.from === '' ? '<>' : o.from ?? 'sender@client.test',
  ];
  if (o.quitAfter) args.push('--quit-after', o.quitAfter);
  if (o.subject !== undefined) args.push('--header', `Subject: ${o.subject}`);
  if (o.body !== undefined) args.push('--body', o.body);
  args.push(...(o.extra ?? []));
  // stdin closed: swaks never waits at a prompt.
  const r = await run('swaks', args, '', 30_000);
  const out = r.stdout + r.stderr;
  const transcript = out.split('\n');
  return {
    code: r.code,
    out,
    replyTo(verb: string) {
      const i = transcript.findIndex((l) => /^ *-> /.test(l) && l.replace(/^ *-> /, '').toUpperCase().startsWith(verb.toUpperCase()));
      if (i < 0) return undefined;
      for (let j = i + 1; j < transcript.length; j++) {
        const m = /^ *<(?:-|~|\*\*) +(\d{3}.*)$/.exec(transcript[j]);
        if (m) return m[1];
      }
      return undefined;
    },
  };
}

/** A message as the next hop received it. */
export interface HopMessage {
  mailFrom: string;
  /** MAIL FROM parameters (e.g. {BODY: '8BITMIME', SMTPUTF8: true}). */
  mailArgs: Record<string, unknown>;
  rcptTo: string[];
  body: string;
}

/** A next hop's reply to RCPT TO: undefined accepts. */
export type HopReply = { code: number; text: string } | undefined;

/** A next-hop SMTP server on 127.0.0.1 that records envelopes and bodies. */
export interface NextHop {
  port: number;
  received: HopMessage[];
  /** RCPT TO attempts per address (lower case). */
  rcptAttempts: Map<string, number>;
  /** Decides a recipient's reply: undefined accepts; `attempt` counts from 1. A promise keeps the client waiting until it settles. */
  rcpt: (address: string, attempt: number) => HopReply | Promise<HopReply>;
  close(): Promise<void>;
}

/** Starts the next hop (authOptional, no reverse lookups); `options` change what it offers (e.g. hide8BITMIME). */
export async function startNextHop(options: Partial<SMTPServerOptions> = {}): Promise<NextHop> {
  const hop: NextHop = {
    port: 0,
    received: [],
    rcptAttempts: new Map(),
    rcpt: () => undefined,
    close: async () => undefined,
  };
  const server = new SMTPServer({
    authOptional: true,
    disableReverseLookup: true,
    logger: false,
    onRcptTo(address, _session, cb) {
      const a = address.address.toLowerCase();
      const n = (hop.rcptAttempts.get(a) ?? 0) + 1;
      hop.rcptAttempts.set(a, n);
      void Promise.resolve(hop.rcpt(a, n)).then((r) => {
        if (!r) return cb();
        const e = new Error(r.text) as Error & { responseCode: number };
        e.responseCode = r.code;
        cb(e);
      });
    },
    onData(stream, session: SMTPServerSession, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        hop.received.push({
          mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          mailArgs: (session.envelope.mailFrom ? (session.envelope.mailFrom.args as Record<string, unknown>) : {}) || {},
          rcptTo: session.envelope.rcptTo.map((r) => r.address),
          body: Buffer.concat(chunks).toString('utf8'),
        });
        cb(null);
      });
    },
    ...options,
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  hop.port = (server.server.address() as AddressInfo).port;
  hop.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return hop;
}

/** `<dataDir>/mail/<domain>/<localpart>`, the Maildir of an address (lower case, as the contract says). */
export function maildir(dataDir: string, address: string): string {
  const at = address.lastIndexOf('@');
  return path.join(dataDir, 'mail', address.slice(at + 1).toLowerCase(), address.slice(0, at).toLowerCase());
}

/** `<dataDir>/mail/<domain>/<localpart>/new` of an address. */
export function newDir(dataDir: string, address: string): string {
  return path.join(maildir(dataDir, address), 'new');
}

/** The messages in an address's new/ (empty when the Maildir does not exist). */
export function mailbox(dataDir: string, address: string): string[] {
  const dir = newDir(dataDir, address);
  let names: string[];
  try {
    names = fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
  return names.map((n) => fs.readFileSync(path.join(dir, n), 'utf8'));
}

/** Every message file under <dataDir>/mail (tmp/ excluded). */
export function allMail(dataDir: string): { file: string; text: string }[] {
  const root = path.join(dataDir, 'mail');
  const out: { file: string; text: string }[] = [];
  const walk = (dir: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'tmp') walk(p);
      } else out.push({ file: p, text: fs.readFileSync(p, 'utf8') });
    }
  };
  walk(root);
  return out;
}

/** Shared with every test folder (fixtures/wait.ts). */
export { waitFor, within } from '../fixtures/wait';
