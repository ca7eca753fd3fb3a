/**
 * The load of the backup proof (proof.test.ts): the domains it runs on, SMTP
 * senders (nodemailer) and LDAP writers (ldapjs) that run against a spawned
 * appliance until stopped, each recording what the server acknowledged and
 * when (performance.now(), the clock the test compares with the backup's
 * start and end), and readers of what a data dir holds afterwards: the
 * Maildirs by Message-ID and file name, the change log by change number.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import ldap from 'ldapjs';
import nodemailer from 'nodemailer';
import { ADMIN_PASSWORD } from '../helpers';

/* eslint-disable @typescript-eslint/no-explicit-any */
type LdapClient = any;

/** The appliance's host name (testEnv's DCMX_HOSTNAME): the MX of the local domains. */
const HOST = 'mx.dcmx.test';
/** A zone and mail domain delivered into Maildirs here; the LDAP writers add and change its names. */
export const ZONE = 'proof.test';
/** A zone and mail domain on hold: its mail stays queued until it is made active. */
export const HELD = 'held.test';
/** A domain hosted elsewhere (its MX, at the stub upstream, is the loopback next hop). */
export const FAR = 'far.test';
/** The mailboxes of ZONE. */
export const LOCAL_USERS = ['u0', 'u1', 'u2'].map((u) => `${u}@${ZONE}`);
/** The mailbox of HELD. */
export const HELD_USER = `h0@${HELD}`;
/** The name whose A record the modifier rewrites. */
export const MOD_NAME = `mod.${ZONE}`;
export const MOD_DN = `dc=mod,dc=proof,dc=test,o=internet`;
/** The zones the setup makes (with trailing dots, as a manifest names them). */
export const ZONES = [`${ZONE}.`, `${HELD}.`];

function zoneLdif(label: string, users: string[], extra: string[] = []): string {
  const dn = `dc=${label},dc=test,o=internet`;
  return [
    [`dn: ${dn}`, 'objectClass: dNSDomain2', 'objectClass: mailDomain', `dc: ${label}`, 'dNSTTL: 300',
      `sOARecord: ns1.${label}.test. hostmaster.${label}.test. 1 3600 900 604800 60`, `nSRecord: ns1.${label}.test.`,
      `mXRecord: 10 ${HOST}.`, ...extra, ''].join('\n'),
    [`dn: dc=ns1,${dn}`, 'objectClass: dNSDomain2', 'dc: ns1', 'aRecord: 192.0.2.53', ''].join('\n'),
    [`dn: ou=people,${dn}`, 'objectClass: organizationalUnit', 'ou: people', ''].join('\n'),
    ...users.map((u) => [`dn: uid=${u},ou=people,${dn}`, 'objectClass: inetOrgPerson', 'objectClass: inetMailUser',
      `uid: ${u}`, `cn: ${u}`, `sn: ${u}`, `mail: ${u}@${label}.test`, ''].join('\n')),
  ].join('\n');
}

/** The setup, as LDIF for ldapadd: dc=test, the zones ZONE (with MOD_NAME) and HELD (on hold), their users. */
export function setupLdif(): string {
  return [
    'dn: dc=test,o=internet\nobjectClass: domain\ndc: test\n',
    zoneLdif('proof', ['u0', 'u1', 'u2']),
    `dn: ${MOD_DN}\nobjectClass: dNSDomain2\ndc: mod\naRecord: 10.1.0.0\n`,
    zoneLdif('held', ['h0'], ['mailDomainStatus: hold']),
  ].join('\n');
}

/** A failed request is followed by a pause: a loop whose server is gone does not spin. */
const pause = () => new Promise((r) => setTimeout(r, 100));

/**
 * Request loops that run until stop(), one request at a time each. A request
 * that fails is recorded in `failures`; its loop ends when `stopOnFailure`,
 * else it pauses and goes on.
 */
abstract class Loops {
  readonly failures: string[] = [];
  private stopping = false;
  private readonly running: Promise<void>[] = [];
  private stopped: Promise<void> | undefined;

  constructor(private readonly stopOnFailure = false) {}

  /** Starts a loop: `open` its connection (a failure ends the loop), then `turn(connection, i)` for i = 0, 1, ... until stop(). */
  protected loop<C>(open: () => Promise<C>, turn: (c: C, i: number) => Promise<void>): void {
    this.running.push((async () => {
      let c: C;
      try {
        c = await open();
      } catch (e) {
        this.failures.push(`connect: ${(e as Error).message}`);
        return;
      }
      for (let i = 0; !this.stopping; i++) {
        try {
          await turn(c, i);
        } catch (e) {
          this.failures.push((e as Error).message);
          if (this.stopOnFailure) return;
          await pause();
        }
      }
    })());
  }

  /** Closes the connections, once every loop has ended. */
  protected abstract close(): void;

  /** Stops the loops once their request in flight is answered (or failed), then closes the connections. The same promise every call. */
  stop(): Promise<void> {
    this.stopping = true;
    this.stopped ??= Promise.all(this.running).then(() => this.close());
    return this.stopped;
  }
}

// ------------------------------------------------------------------ SMTP

/**
 * How a message travels: `inbound` from outside to a local mailbox (written
 * into the Maildir before the 250), `queued` from a relaying client to a local
 * mailbox (through the queue), `held` to HELD's mailbox (queued until the
 * domain is active), `far` to the next hop, `mixed` to all three channels.
 */
export type Kind = 'inbound' | 'queued' | 'held' | 'far' | 'mixed';
const KINDS: Kind[] = ['inbound', 'queued', 'held', 'far', 'mixed'];

/** A message the appliance acknowledged (250 after its DATA). */
export interface SentMessage {
  messageId: string;
  kind: Kind;
  /** Recipients with a Maildir here (LOCAL_USERS, HELD_USER). */
  local: string[];
  /** Recipients at the next hop. */
  far: string[];
  /** performance.now() when the 250 arrived. */
  ackAt: number;
  /** Its queue id (the 250's "queued as"). */
  queueId: string;
  bytes: number;
}

/** Above INLINE_MAX (256 KiB, server/mta/spool.ts): such a message's bytes are in a spool file. */
const LARGE = 300 * 1024;

function envelope(kind: Kind, n: number): { local: string[]; far: string[] } {
  const user = LOCAL_USERS[n % LOCAL_USERS.length];
  const far = `r${n}@${FAR}`;
  switch (kind) {
    case 'inbound':
    case 'queued':
      return { local: [user], far: [] };
    case 'held':
      return { local: [HELD_USER], far: [] };
    case 'far':
      return { local: [], far: [far] };
    case 'mixed':
      return { local: [user, HELD_USER], far: [far] };
  }
}

/**
 * SMTP senders against 127.0.0.1:port until stop(): `sessions` loops, each
 * sending the kinds in turn (every 7th message above the inline size); a
 * relaying client (every kind but `inbound`) connects from `relayFrom`. A
 * message is recorded in `sent` once its 250 arrives; a failure as Loops
 * says.
 */
export class SmtpLoad extends Loops {
  readonly sent: SentMessage[] = [];
  private n = 0;
  private readonly transports: nodemailer.Transporter[] = [];

  constructor(port: number, o: { sessions: number; relayFrom: string; tag: string; stopOnFailure?: boolean }) {
    super(o.stopOnFailure);
    const make = (localAddress?: string) => {
      const t = nodemailer.createTransport({
        host: '127.0.0.1', port, secure: false, ignoreTLS: true, localAddress, name: 'client.test',
        connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 20_000,
      });
      this.transports.push(t);
      return t;
    };
    for (let s = 0; s < o.sessions; s++) {
      this.loop(async () => ({ outside: make(), relaying: make(o.relayFrom) }), async ({ outside, relaying }) => {
        const n = this.n++;
        const kind = KINDS[n % KINDS.length];
        const env = envelope(kind, n);
        const messageId = `<${o.tag}-${n}@client.test>`;
        const text = n % 7 === 6 ? `${messageId}\n${'x'.repeat(76)}\n`.repeat(Math.ceil(LARGE / 78)) : `message ${n} (${kind})\n`;
        try {
          const info = await (kind === 'inbound' ? outside : relaying).sendMail({
            envelope: { from: 'sender@client.test', to: [...env.local, ...env.far] },
            from: 'sender@client.test', to: [...env.local, ...env.far].join(', '), subject: `${o.tag} ${n} ${kind}`, messageId, text,
          });
          const ackAt = performance.now();
          const queueId = /queued as (\w+)/.exec(String(info.response))?.[1] ?? '';
          this.sent.push({ messageId, kind, ...env, ackAt, queueId, bytes: text.length });
        } catch (e) {
          throw new Error(`${messageId}: ${(e as Error).message}`);
        }
      });
    }
  }

  protected close(): void {
    for (const t of this.transports) t.close();
  }
}

// ------------------------------------------------------------------ LDAP

/** An LDAP write the appliance acknowledged (result code 0). */
export interface LdapWrite {
  kind: 'add' | 'modify' | 'delete';
  dn: string;
  /** The DNS name the write gives an A record, and that record. */
  name: string;
  address: string;
  ackAt: number;
}

function call<T = any>(c: LdapClient, method: string, ...args: unknown[]): Promise<T> {
  return new Promise((resolve, reject) => c[method](...args, (err: unknown, v: T) => (err ? reject(err) : resolve(v))));
}

/** An ldapjs client bound as the administrator to 127.0.0.1:port. */
export async function ldapAdmin(port: number): Promise<LdapClient> {
  const c = ldap.createClient({ url: `ldap://127.0.0.1:${port}`, reconnect: false, connectTimeout: 5000, timeout: 15_000 });
  c.on('error', () => undefined);
  try {
    await call(c, 'bind', 'cn=admin,o=internet', ADMIN_PASSWORD);
  } catch (e) {
    c.destroy();
    throw e;
  }
  return c;
}

/**
 * LDAP writers against 127.0.0.1:port until stop(), each on its own
 * connection, one write at a time: the adder adds `h<i>.<ZONE>` with an A
 * record (a new name in the zone, its serial bumped), the modifier replaces
 * MOD_NAME's A record with the next address, the deleter deletes every third
 * name the adder added (once its add is acknowledged). Each acknowledged write
 * is recorded in `writes`, in the order of its acknowledgement.
 */
export class LdapLoad extends Loops {
  readonly writes: LdapWrite[] = [];
  /** The DNs the deleter has tried to delete, acknowledged or not. */
  readonly deleting = new Set<string>();
  private readonly clients: LdapClient[] = [];

  constructor(port: number, o: { tag: string; stopOnFailure?: boolean }) {
    super(o.stopOnFailure);
    const writer = (write: (c: LdapClient, i: number) => Promise<Omit<LdapWrite, 'ackAt'> | undefined>) =>
      this.loop(async () => {
        const c = await ldapAdmin(port);
        this.clients.push(c);
        return c;
      }, async (c, i) => {
        try {
          const w = await write(c, i);
          if (w) this.writes.push({ ...w, ackAt: performance.now() });
        } catch (e) {
          throw new Error(`${o.tag} write ${i}: ${(e as Error).message}`);
        }
      });
    const address = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    writer(async (c, i) => {
      const label = `${o.tag}h${i}`;
      const dn = `dc=${label},dc=proof,dc=test,o=internet`;
      const a = address(i);
      await call(c, 'add', dn, { objectClass: 'dNSDomain2', dc: label, aRecord: a });
      return { kind: 'add', dn, name: `${label}.${ZONE}`, address: a };
    });
    let deleted = 0;
    writer(async (c) => {
      // The next third name whose add is acknowledged; none yet: a short wait, no write.
      const added = this.writes.filter((w) => w.kind === 'add');
      const victim = added[deleted * 3];
      if (!victim) {
        await new Promise((r) => setTimeout(r, 10));
        return undefined;
      }
      deleted++;
      this.deleting.add(victim.dn);
      await call(c, 'del', victim.dn);
      return { kind: 'delete', dn: victim.dn, name: victim.name, address: victim.address };
    });
    writer(async (c, i) => {
      const a = `10.200.${(i >> 8) & 255}.${i & 255}`;
      await call(c, 'modify', MOD_DN, new ldap.Change({ operation: 'replace', modification: new ldap.Attribute({ type: 'aRecord', values: [a] }) }));
      return { kind: 'modify', dn: MOD_DN, name: MOD_NAME, address: a };
    });
  }

  protected close(): void {
    for (const c of this.clients) c.destroy();
  }
}

/** One row of cn=changelog (draft-good-ldap-changelog). */
export interface ChangeRow {
  changeNumber: number;
  targetDN: string;
  changeType: string;
  changes: string;
}

/** The change log rows after `after`, read over LDAP as the administrator. */
export async function changeLog(port: number, after: number): Promise<ChangeRow[]> {
  const c = await ldapAdmin(port);
  try {
    return await new Promise<ChangeRow[]>((resolve, reject) => {
      const rows: ChangeRow[] = [];
      c.search('cn=changelog', { scope: 'one', filter: `(changeNumber>=${after + 1})`, attributes: ['changeNumber', 'targetDN', 'changeType', 'changes'] },
        (err: unknown, res: any) => {
          if (err) return reject(err);
          res.on('searchEntry', (e: any) => {
            const a: Record<string, string> = {};
            for (const at of e.attributes) a[String(at.type).toLowerCase()] = String(at.values[0] ?? '');
            rows.push({ changeNumber: Number(a.changenumber), targetDN: a.targetdn, changeType: a.changetype, changes: a.changes ?? '' });
          });
          res.on('error', reject);
          res.on('end', () => resolve(rows.sort((x, y) => x.changeNumber - y.changeNumber)));
        });
    });
  } finally {
    c.destroy();
  }
}

/**
 * The change number of each acknowledged write, from the change log of the
 * appliance that acknowledged it: an add or a delete by its target DN, a
 * modify by the address it wrote (each modify writes a new one). Undefined where the log
 * has no such row (the test fails on it).
 */
export function changeNumbers(writes: LdapWrite[], rows: ChangeRow[]): Map<LdapWrite, number | undefined> {
  const adds = new Map<string, number>();
  const deletes = new Map<string, number>();
  const mods = new Map<string, number>();
  for (const r of rows) {
    if (r.changeType === 'add') adds.set(r.targetDN.toLowerCase(), r.changeNumber);
    else if (r.changeType === 'delete') deletes.set(r.targetDN.toLowerCase(), r.changeNumber);
    else if (r.changeType === 'modify' && r.targetDN.toLowerCase() === MOD_DN) {
      const m = /^aRecord: (.*)$/im.exec(r.changes);
      if (m) mods.set(m[1].trim(), r.changeNumber);
    }
  }
  return new Map(writes.map((w) => [w, w.kind === 'modify' ? mods.get(w.address) : (w.kind === 'add' ? adds : deletes).get(w.dn.toLowerCase())]));
}

// ------------------------------------------------------------------ Maildirs

/** A message file in a Maildir. */
export interface MailFile {
  /** The mailbox's address (<domain>/<local> under mail/). */
  mailbox: string;
  /** new/ or cur/, and the file name. */
  file: string;
  messageId: string;
}

/** Every message file under `<dataDir>/mail` (new/ and cur/; tmp/ is not delivered mail), with its Message-ID. */
export function mailFiles(dataDir: string): MailFile[] {
  const root = path.join(dataDir, 'mail');
  const out: MailFile[] = [];
  const list = (d: string) => {
    try {
      return fs.readdirSync(d);
    } catch {
      return [];
    }
  };
  for (const domain of list(root)) {
    for (const local of list(path.join(root, domain))) {
      for (const sub of ['new', 'cur']) {
        const dir = path.join(root, domain, local, sub);
        for (const name of list(dir)) {
          // The header is at the front: the first 8 KiB hold the Message-ID (a DKIM-Signature may precede it).
          const fd = fs.openSync(path.join(dir, name), 'r');
          const head = Buffer.alloc(8192);
          const got = fs.readSync(fd, head, 0, head.length, 0);
          fs.closeSync(fd);
          const id = /^Message-ID:\s*(<[^>]*>)/im.exec(head.subarray(0, got).toString('latin1'))?.[1] ?? '?';
          out.push({ mailbox: `${local}@${domain}`, file: `${sub}/${name}`, messageId: id });
        }
      }
    }
  }
  return out;
}

/** Sends `n` messages of about `bytes` each from outside to LOCAL_USERS (into their Maildirs before each 250); each must be accepted. */
export async function sendLarge(port: number, n: number, bytes: number): Promise<void> {
  const t = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, name: 'client.test' });
  try {
    const text = `${'y'.repeat(76)}\n`.repeat(Math.ceil(bytes / 77));
    for (let i = 0; i < n; i++) {
      const to = LOCAL_USERS[i % LOCAL_USERS.length];
      await t.sendMail({ envelope: { from: 'sender@client.test', to: [to] }, from: 'sender@client.test', to, subject: `large ${i}`, messageId: `<large-${i}@client.test>`, text });
    }
  } finally {
    t.close();
  }
}
