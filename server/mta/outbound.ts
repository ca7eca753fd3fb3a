/**
 * The smtp/relay channel: delivers a queued message over SMTP to the MX hosts
 * of a domain (RFC 5321 §5.1) or to configured relay hosts, with nodemailer's
 * pooled SMTP transport as the client (one pool per next hop), opportunistic
 * STARTTLS without certificate checks (RFC 7435), and a per-recipient result
 * in the terms the queue and the DSN writer need (RFC 3463/3464).
 *
 * What the client declared on MAIL FROM travels with the message: a message
 * that needs SMTPUTF8 (a non-ASCII local part in the envelope, or UTF-8
 * header fields of a message sent with SMTPUTF8) goes only to a next hop
 * that offers SMTPUTF8, else those recipients fail with 5.6.7 (RFC 6531
 * §3.2); 8-bit content declared BODY=8BITMIME goes only to a next hop that
 * offers 8BITMIME, else they fail with 5.6.3 (RFC 6152 §3: we do not
 * convert to 7bit). Such messages go over a connection of their own, whose
 * EHLO reply is read before MAIL FROM; the rest share the pooled ones.
 * Undeclared 8-bit content is passed on as received (as Postfix does).
 *
 * A next hop that is this appliance (server/mta/self.ts) is a loop: in an MX
 * list, we and every less preferred host are left out (RFC 5321 §5.1); a
 * relay host that is us is skipped. When nothing else is left, the
 * recipients fail at once with 5.4.6 "mail for <domain> loops back to
 * myself", as Postfix says, instead of being retried until they expire.
 *
 * MTA-STS (RFC 8461, mta-sts.ts): before mail goes to a domain's MX hosts,
 * its policy is looked up (beside the MX lookup). Under `enforce`, only MX
 * hosts that match the policy's mx patterns are tried, and only over
 * STARTTLS whose certificate verifies (chain to the system's CAs or
 * DCMX_MTA_STS_CA, name = the MX host); otherwise the recipients are
 * deferred (4.7.5, the reason in the Diagnostic-Code the queue keeps), never
 * sent in clear. Under `testing`, the same checks are made and a failure is
 * logged, and the mail goes as it would without a policy. Relay hosts are
 * the operator's choice and get no policy.
 *
 * A job may carry DKIM-Signature fields (made once per attempt by
 * dkim-sign.ts): they are sent in front of the message.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { domainToASCII } from 'node:url';
import { parseHostPort } from '../net';
import type * as Nodemailer from 'nodemailer';
import type Mail from 'nodemailer/lib/mailer';
import type SMTPPool from 'nodemailer/lib/smtp-pool';
import type SMTPConnection = require('nodemailer/lib/smtp-connection');
import { Readable } from 'node:stream';
import type { Logger } from '../log';
import { mxMatches, type StsLookup, type StsPolicies, type StsPolicy } from './mta-sts';
import { MailResolveError, type MailResolver } from './resolver';
import type { SelfIdentity } from './self';
import type { DeliveryResult, QueuedMessage } from './types';
import { lazily } from '../lazy';

/** nodemailer's SMTP client and pool, loaded at the first delivery over SMTP (lazy.ts). */
const nodemailer = lazily(() => require('nodemailer') as typeof Nodemailer); // eslint-disable-line @typescript-eslint/no-require-imports
const smtpConnection = lazily(() => require('nodemailer/lib/smtp-connection') as typeof SMTPConnection); // eslint-disable-line @typescript-eslint/no-require-imports

/** How the channel connects and what it says. */
export interface OutboundOptions {
  /** Our EHLO name. */
  hostname: string;
  resolver: MailResolver;
  /** TCP connect timeout per address (default 30 s). */
  connectTimeoutMs?: number;
  /** Simultaneous connections per next hop (default 2). */
  maxConnectionsPerHost?: number;
  /** Messages per connection before it is replaced (default 100). */
  maxMessagesPerConnection?: number;
  /** Port of every next hop that does not name one (default 25; tests point it elsewhere). */
  portOverride?: number;
  /** Who we are, to refuse next hops that loop back to us (none: no loop detection). */
  self?: SelfIdentity;
  /** MTA-STS policies of recipient domains (none: no policy is looked up). */
  sts?: StsPolicies;
  /** Where MTA-STS failures under `testing`, and failed policy lookups, are logged. */
  log?: Logger;
}

/** How a connection uses STARTTLS: not at all, opportunistically (RFC 7435), or required with a verified certificate (RFC 8461 §4.2). */
type TlsUse = 'none' | 'opportunistic' | 'verify';

/** The MTA-STS policy a delivery is under, for one domain. */
interface StsApplied {
  domain: string;
  policy: StsPolicy;
}

/** The outcome of one SMTP transaction: per recipient, and whether (why) the TLS handshake failed. */
interface TransactionOutcome {
  results: Map<string, DeliveryResult>;
  tlsFailed: boolean;
  tlsError?: string;
}

/** One message for recipients that share a route. */
export interface OutboundJob {
  message: QueuedMessage;
  /** Same domain, or same relay host. */
  recipients: string[];
  route:
    | { kind: 'smtp'; domain: string }
    /** Tried in order; `host`, `host:port`, `[host]`, `[host]:port`, IP literals. Names are looked up as hosts (A/AAAA), not as mail domains. */
    | { kind: 'relay'; hosts: string[] };
  /** DKIM-Signature header fields (CRLF line ends) sent in front of the message (dkim-sign.ts); none: sent as spooled. */
  signature?: Buffer;
}

/** A next hop: the name we know it by (Remote-MTA, TLS SNI) and where to connect. */
interface Hop {
  name: string;
  address: string;
  port: number;
}

/** A nodemailer error as its SMTP client builds them. */
interface SmtpError extends Error {
  code?: string;
  command?: string;
  response?: string;
  responseCode?: number;
  recipient?: string;
  rejectedErrors?: SmtpError[];
}

interface PoolEntry {
  transport: Mail<SMTPPool.SentMessageInfo>;
  busy: number;
  timer?: NodeJS.Timeout;
}

/** Pools idle this long are closed (their connections with them). */
const POOL_IDLE_MS = 30_000;
/** After a failed TLS handshake with an address, talk to it in plain text this long (RFC 7435 §4). */
const NO_TLS_MS = 3600_000;
/** At most this many addresses are tried per delivery (Postfix smtp_mx_address_limit has 5). */
const MAX_ADDRESSES = 10;
/** RFC 5321 §4.5.3.2.1: wait up to 5 minutes for the greeting. */
const GREETING_TIMEOUT_MS = 300_000;
/** RFC 5321 §4.5.3.2.6: up to 10 minutes for the reply to the final dot; also idle socket limit. */
const SOCKET_TIMEOUT_MS = 600_000;

/** The SMTP channel. Holds one pooled transport per next hop until idle or `close()`. */
export class Outbound {
  private readonly pools = new Map<string, PoolEntry>();
  private readonly noTls = new Map<string, number>();

  constructor(private readonly opts: OutboundOptions) {}

  /**
   * Delivers one message to several recipients over SMTP: resolves the next
   * hops (MX for 'smtp', the given hosts for 'relay') and tries them in order
   * until every recipient is accepted or refused permanently; recipients that
   * got a temporary answer are offered to the next hop. Returns a result per
   * recipient: ok, or temporary/permanent with an enhanced status, a
   * Diagnostic-Code ('smtp; <code> <text>' when a server replied, 'X-dcmx; ...'
   * for network and lookup failures) and Remote-MTA. Never throws.
   */
  async deliver(job: OutboundJob): Promise<Map<string, DeliveryResult>> {
    const results = new Map<string, DeliveryResult>();
    try {
      await this.deliverInto(job, results);
    } catch (err) {
      const r = fail(false, '4.3.0', `X-dcmx; internal error: ${(err as Error).message}`);
      for (const rcpt of job.recipients) if (!results.has(rcpt)) results.set(rcpt, r);
    }
    return results;
  }

  /** Closes all pooled connections. */
  close(): void {
    for (const p of this.pools.values()) {
      clearTimeout(p.timer);
      p.transport.close();
    }
    this.pools.clear();
  }

  // ---------------------------------------------------------------- delivery

  private async deliverInto(job: OutboundJob, results: Map<string, DeliveryResult>): Promise<void> {
    const sender = job.message.sender;
    let pending: string[] = [];
    for (const r of new Set(job.recipients)) {
      if (!validMailbox(r)) results.set(r, fail(true, '5.1.3', `X-dcmx; bad recipient address syntax: ${JSON.stringify(r)}`));
      else pending.push(r);
    }
    if (!pending.length) return;
    if (sender !== '' && !validMailbox(sender)) {
      for (const r of pending) results.set(r, fail(true, '5.1.7', `X-dcmx; bad sender address syntax: ${JSON.stringify(sender)}`));
      return;
    }

    // Looked up beside the spool and MX lookups; awaited at the first hop.
    const sts = this.stsLookup(job);
    let body: SpoolInfo;
    try {
      body = await inspectSpool(job.message, job.signature);
    } catch (err) {
      for (const r of pending) results.set(r, fail(false, '4.3.0', `X-dcmx; cannot read spool file: ${(err as Error).message}`));
      return;
    }

    const last = new Map<string, DeliveryResult>();
    const tried = new Set<string>();
    let loopsVia: string | undefined;
    for await (const hop of this.hops(job)) {
      if ('self' in hop) {
        loopsVia ??= hop.self;
        continue;
      }
      if ('failure' in hop) {
        for (const r of pending) last.set(r, hop.failure);
        if (hop.failure.ok === false && hop.failure.permanent) break;
        continue;
      }
      const applied = await this.stsFor(sts, job);
      if (applied && !mxMatches(applied.policy, hop.name)) {
        const why = `MTA-STS policy of ${applied.domain} (${applied.policy.mode}, id ${applied.policy.id}): MX host ${hop.name} matches none of its mx patterns (RFC 8461 §4.1)`;
        if (applied.policy.mode === 'enforce') {
          for (const r of pending) last.set(r, fail(false, '4.7.5', `X-dcmx; ${why}`));
          continue;
        }
        this.opts.log?.warn({ domain: applied.domain, mx: hop.name, policy: applied.policy.id }, `${why}; delivering as without a policy`);
      }
      const key = `${hop.address}|${hop.port}`;
      if (tried.has(key)) continue;
      if (tried.size >= MAX_ADDRESSES) break;
      tried.add(key);
      const got = await this.attempt(hop, sender, pending, body, applied && mxMatches(applied.policy, hop.name) ? applied : undefined);
      const still: string[] = [];
      for (const r of pending) {
        const res = got.get(r)!;
        if (res.ok || res.permanent) results.set(r, res);
        else {
          last.set(r, res);
          still.push(r);
        }
      }
      pending = still;
      if (!pending.length) break;
    }
    for (const r of pending) {
      const looped = loopsVia === undefined ? undefined : fail(true, '5.4.6', `X-dcmx; mail for ${r.slice(r.lastIndexOf('@') + 1)} loops back to myself (next hop ${loopsVia} is this host)`);
      results.set(r, last.get(r) ?? looped ?? fail(false, '4.4.4', 'X-dcmx; no next hop to try'));
    }
  }

  /** The MTA-STS lookup of an MX route's domain (none for relay routes, address literals, or without `sts`). */
  private stsLookup(job: OutboundJob): Promise<StsLookup> | undefined {
    if (!this.opts.sts || job.route.kind !== 'smtp' || addressLiteral(job.route.domain)) return undefined;
    return this.opts.sts.lookup(job.route.domain);
  }

  /** The policy that applies (enforce or testing), once the lookup is done; a lookup problem is logged. */
  private async stsFor(lookup: Promise<StsLookup> | undefined, job: OutboundJob): Promise<StsApplied | undefined> {
    if (!lookup || job.route.kind !== 'smtp') return undefined;
    const got = await lookup;
    const domain = job.route.domain;
    if (got.problem) this.opts.log?.info({ domain, cached: got.policy?.id }, `MTA-STS: ${got.problem}`);
    return got.policy && got.policy.mode !== 'none' ? { domain, policy: got.policy } : undefined;
  }

  /**
   * The next hops of a job, in order; a lookup failure comes as `{failure}`
   * in their place, and a relay host that is this appliance as `{self}`.
   */
  private async *hops(job: OutboundJob): AsyncGenerator<Hop | { failure: DeliveryResult } | { self: string }> {
    const defaultPort = this.opts.portOverride ?? 25;
    const self = this.opts.self;
    if (job.route.kind === 'smtp') {
      const domain = job.route.domain;
      const literal = addressLiteral(domain);
      if (literal) {
        if (self?.isSelfHop(literal, defaultPort)) yield { self: `[${literal}]` };
        else yield { name: `[${literal}]`, address: literal, port: defaultPort };
        return;
      }
      try {
        const targets = await this.opts.resolver.resolveMx(domain, self);
        for (const t of targets) for (const a of t.addresses) yield { name: t.host, address: a, port: defaultPort };
      } catch (err) {
        yield { failure: resolveFailure(err, domain, 'MX') };
      }
      return;
    }
    for (const spec of job.route.hosts) {
      const hp = parseHostPort(spec, defaultPort);
      if (!hp) {
        yield { failure: fail(false, '4.4.4', `X-dcmx; bad relay host ${JSON.stringify(spec)}`) };
        continue;
      }
      if (net.isIP(hp.host)) {
        const name = net.isIPv6(hp.host) ? `[IPv6:${hp.host}]` : `[${hp.host}]`;
        yield self?.isSelfHop(hp.host, hp.port) ? { self: `${name}:${hp.port}` } : { name, address: hp.host, port: hp.port };
        continue;
      }
      if (self?.isSelfNamedHop(hp.host, hp.port)) {
        yield { self: `${hp.host}:${hp.port}` };
        continue;
      }
      try {
        for (const a of await this.opts.resolver.lookupHost(hp.host)) {
          yield self?.isSelfHop(a, hp.port) ? { self: `${hp.host}[${a}]:${hp.port}` } : { name: hp.host, address: a, port: hp.port };
        }
      } catch (err) {
        // A relay host is the operator's configuration: a lookup failure defers rather than bounces.
        const f = resolveFailure(err, hp.host, 'A/AAAA');
        yield { failure: f.ok ? f : { ...f, permanent: false, status: '4.4.4' } };
      }
    }
  }

  /**
   * One SMTP transaction with one next hop; a result for every recipient
   * given. Under an MTA-STS policy (`sts`), over TLS that verifies first: when
   * it does not, `enforce` defers every recipient (RFC 8461 §5) and `testing`
   * logs it and goes on as without a policy.
   */
  private async attempt(hop: Hop, sender: string, recipients: string[], body: SpoolInfo, sts?: StsApplied): Promise<Map<string, DeliveryResult>> {
    if (sts) {
      const verified = await this.transaction(hop, sender, recipients, body, 'verify');
      if (!verified.tlsFailed) return verified.results;
      const why = `MTA-STS policy of ${sts.domain} (${sts.policy.mode}, id ${sts.policy.id}): TLS with ${hop.name}[${hop.address}]:${hop.port} did not verify: ${verified.tlsError}`;
      if (sts.policy.mode === 'enforce') {
        const deferred = fail(false, '4.7.5', `X-dcmx; ${why} (RFC 8461 §4.2)`, `dns; ${hop.name}`);
        return new Map(recipients.map((r) => [r, deferred]));
      }
      this.opts.log?.warn({ domain: sts.domain, mx: hop.name, policy: sts.policy.id }, `${why}; delivering as without a policy`);
    }
    const tlsKey = `${hop.address}|${hop.port}`;
    const until = this.noTls.get(tlsKey);
    const useTls = until === undefined || until < Date.now();
    if (until !== undefined && useTls) this.noTls.delete(tlsKey);
    let out = await this.transaction(hop, sender, recipients, body, useTls ? 'opportunistic' : 'none');
    if (out.tlsFailed && useTls) {
      // RFC 7435: opportunistic security falls back to cleartext when the handshake fails.
      this.noTls.set(tlsKey, Date.now() + NO_TLS_MS);
      out = await this.transaction(hop, sender, recipients, body, 'none');
    }
    return out.results;
  }

  private async transaction(
    hop: Hop,
    sender: string,
    recipients: string[],
    body: SpoolInfo,
    tls: TlsUse,
  ): Promise<TransactionOutcome> {
    // nodemailer lower-cases and punycodes the domain of each address; send that form and map back.
    const sent = new Map<string, string[]>();
    for (const r of recipients) {
      const s = clientForm(r);
      const l = sent.get(s);
      if (l) l.push(r);
      else sent.set(s, [r]);
    }
    const remoteMta = `dns; ${hop.name}`;
    const where = `${hop.name}[${hop.address}]:${hop.port}`;
    const results = new Map<string, DeliveryResult>();
    const setFor = (addr: string, res: DeliveryResult) => {
      for (const r of sent.get(addr) ?? []) results.set(r, res);
    };
    const setAll = (res: DeliveryResult) => {
      for (const r of recipients) if (!results.has(r)) results.set(r, res);
    };
    const envelope = (to: string[]) => ({
      // An empty `from` makes nodemailer send MAIL FROM:<> (RFC 5321 §4.5.5); objects skip its address parser.
      from: sender === '' ? '' : { name: '', address: clientForm(sender) },
      to: to.map((address) => ({ name: '', address })),
      // RFC 6152: BODY=8BITMIME when the peer offers it and the content needs it; SIZE= (RFC 1870) when offered.
      use8BitMime: body.eightBit,
      size: body.size,
    });
    const record = (info: SMTPConnection.SentMessageInfo) => {
      const okDetail = `${where}: smtp; ${oneLine(info.response)}`;
      for (const e of (info.rejectedErrors ?? []) as SmtpError[]) {
        if (e.recipient !== undefined) setFor(e.recipient, replyFailure(e, remoteMta, where));
      }
      for (const a of (info.accepted ?? []) as (string | { address: string })[]) setFor(typeof a === 'string' ? a : a.address, { ok: true, detail: okDetail });
      // Anything not reported either way was taken with the message (nodemailer reported no rejection for it).
      if (!(info.rejected ?? []).length) setAll({ ok: true, detail: okDetail });
      setAll(fail(false, '4.0.0', `X-dcmx; ${where}: no reply reported for this recipient`, remoteMta));
      return { results, tlsFailed: false };
    };
    const recordError = (e: unknown): TransactionOutcome => {
      const err = e as SmtpError;
      // Node's advice to its own users ("try running Node.js with --use-system-ca") is no reason for the queue.
      if (tls !== 'none' && isTlsFailure(err, tls === 'verify')) return { results, tlsFailed: true, tlsError: oneLine(err.message).replace(/; if the root CA is installed locally.*$/, '') };
      if (err.rejectedErrors?.length) {
        // All recipients refused at RCPT (nodemailer fails the whole send): each gets its own reply.
        for (const r of err.rejectedErrors) if (r.recipient !== undefined) setFor(r.recipient, replyFailure(r, remoteMta, where));
      }
      setAll(errorResult(err, remoteMta, where));
      return { results, tlsFailed: false };
    };

    const needs = new Map<string, 'SMTPUTF8' | '8BITMIME'>();
    for (const addr of sent.keys()) {
      const need = extensionNeeded(sender === '' ? '' : clientForm(sender), addr, body);
      if (need) needs.set(addr, need);
    }
    if (needs.size) return this.ownConnection(hop, tls, body, [...sent.keys()], needs, { envelope, record, recordError, setFor, results, remoteMta, where });

    const pool = this.acquire(hop, tls);
    // Unsigned, `raw` with a path: the spool file is streamed as is (nodemailer only dot-stuffs and ends it with CRLF).
    const raw = body.signature && !body.inline ? messageStream(body) : body.inline ?? { path: body.spoolPath };
    try {
      const info = await pool.transport.sendMail({ envelope: envelope([...sent.keys()]) as unknown as Mail.Envelope, raw });
      return record(info);
    } catch (e) {
      return recordError(e);
    } finally {
      if (raw instanceof Readable) raw.destroy(); // a send that failed early leaves the file open otherwise
      this.release(hop, tls);
    }
  }

  /**
   * A transaction for a message that needs SMTPUTF8 or 8BITMIME, on a
   * connection of its own (nodemailer's SMTPConnection): its EHLO reply
   * (`lastServerResponse` once connected) says what the next hop offers
   * before MAIL FROM is sent. Recipients whose need is not offered fail
   * permanently here (5.6.7 / 5.6.3); the others get the message.
   */
  private async ownConnection(
    hop: Hop,
    tls: TlsUse,
    body: SpoolInfo,
    to: string[],
    needs: Map<string, 'SMTPUTF8' | '8BITMIME'>,
    h: {
      envelope: (to: string[]) => object;
      record: (info: SMTPConnection.SentMessageInfo) => TransactionOutcome;
      recordError: (e: unknown) => TransactionOutcome;
      setFor: (addr: string, res: DeliveryResult) => void;
      results: Map<string, DeliveryResult>;
      remoteMta: string;
      where: string;
    },
  ): Promise<TransactionOutcome> {
    const conn = new (smtpConnection())(this.connectionOptions(hop, tls));
    // nodemailer reports socket errors, timeouts and an early close as 'error' events, not through callbacks.
    const broken = new Promise<never>((_, reject) => {
      conn.on('error', reject);
      conn.once('end', () => reject(Object.assign(new Error('Connection closed unexpectedly'), { code: 'ECONNECTION' })));
    });
    broken.catch(() => undefined);
    let connected = false;
    try {
      await Promise.race([new Promise<void>((resolve) => conn.connect(() => resolve())), broken]);
      connected = true;
      const ehlo = conn.lastServerResponse || '';
      // The keyword test nodemailer applies to the same reply.
      const offered = (ext: string) => new RegExp(`[ -]${ext}\\b`, 'im').test(ehlo);
      const go: string[] = [];
      for (const addr of to) {
        const need = needs.get(addr);
        if (need === 'SMTPUTF8' && !offered('SMTPUTF8')) {
          h.setFor(addr, fail(true, '5.6.7', `X-dcmx; ${h.where} does not offer SMTPUTF8, which this message needs (RFC 6531 §3.2)`, h.remoteMta));
        } else if ((need === 'SMTPUTF8' && body.eightBit && !offered('8BITMIME')) || (need === '8BITMIME' && !offered('8BITMIME'))) {
          h.setFor(addr, fail(true, '5.6.3', `X-dcmx; ${h.where} does not offer 8BITMIME and the message has 8-bit content (RFC 6152 §3)`, h.remoteMta));
        } else {
          go.push(addr);
        }
      }
      if (!go.length) return { results: h.results, tlsFailed: false };
      const message = body.inline ?? messageStream(body);
      const info = await Promise.race([
        new Promise<SMTPConnection.SentMessageInfo>((resolve, reject) =>
          conn.send(h.envelope(go) as unknown as SMTPConnection.Envelope, message, (err, got) => (err ? reject(err) : resolve(got)))),
        broken,
      ]);
      return h.record(info);
    } catch (e) {
      return h.recordError(e);
    } finally {
      if (connected) {
        conn.quit();
        setTimeout(() => conn.close(), 5000).unref(); // in case the QUIT reply never comes
      } else {
        conn.close();
      }
    }
  }

  // ---------------------------------------------------------------- pools

  private poolKey(hop: Hop, tls: TlsUse): string {
    return `${tls}|${hop.name}|${hop.address}|${hop.port}`;
  }

  /**
   * How every connection to `hop` is made, RFC 5321 §4.5.3.2 timeouts, and
   * STARTTLS as `tls` says: none; opportunistic, certificate unchecked; or
   * required, with a certificate that verifies for the MX host's name
   * (RFC 8461 §4.2: no cleartext fallback, TLS 1.2 at least).
   */
  private connectionOptions(hop: Hop, tls: TlsUse): SMTPConnection.Options {
    return {
      host: hop.address,
      port: hop.port,
      secure: false,
      name: this.opts.hostname,
      ignoreTLS: tls === 'none',
      requireTLS: tls === 'verify',
      opportunisticTLS: tls === 'opportunistic',
      ...(net.isIP(hop.name.replace(/^\[(?:IPv6:)?|\]$/g, '')) ? {} : { servername: hop.name }),
      // RFC 7435: otherwise MX certificates are not checked; any TLS beats none.
      tls: tls === 'verify' ? { rejectUnauthorized: true, ca: this.opts.sts?.trust, minVersion: 'TLSv1.2' } : { rejectUnauthorized: false },
      connectionTimeout: this.opts.connectTimeoutMs ?? 30_000,
      greetingTimeout: GREETING_TIMEOUT_MS,
      socketTimeout: SOCKET_TIMEOUT_MS,
      logger: false,
      debug: false,
    };
  }

  private acquire(hop: Hop, tls: TlsUse): PoolEntry {
    const key = this.poolKey(hop, tls);
    let p = this.pools.get(key);
    if (!p) {
      const options: SMTPPool.Options & { maxRequeues: number } = {
        ...this.connectionOptions(hop, tls),
        pool: true,
        maxConnections: this.opts.maxConnectionsPerHost ?? 2,
        maxMessages: this.opts.maxMessagesPerConnection ?? 100,
        // The pool re-queues a message whose connection closed mid-send, forever by default.
        maxRequeues: 1,
        disableUrlAccess: true,
      };
      const transport = nodemailer().createTransport(options);
      transport.on('error', () => undefined);
      p = { transport, busy: 0 };
      this.pools.set(key, p);
    }
    clearTimeout(p.timer);
    p.timer = undefined;
    p.busy++;
    return p;
  }

  private release(hop: Hop, tls: TlsUse): void {
    const key = this.poolKey(hop, tls);
    const p = this.pools.get(key);
    if (!p) return;
    p.busy--;
    if (p.busy > 0) return;
    p.timer = setTimeout(() => {
      if (this.pools.get(key) === p && p.busy === 0) {
        this.pools.delete(key);
        p.transport.close();
      }
    }, POOL_IDLE_MS);
    p.timer.unref();
  }
}

// ---------------------------------------------------------------- helpers

/** The message as the channel sends it. */
interface SpoolInfo {
  spoolPath: string;
  /** The bytes, when the message is inline in its queue row (with the signature in front, if any). */
  inline?: Buffer;
  /** DKIM-Signature fields sent in front of the spool file's bytes. */
  signature?: Buffer;
  size: number;
  /** Any octet over 127 (RFC 6152: needs BODY=8BITMIME). */
  eightBit: boolean;
  /** An octet over 127 in the header section (RFC 6532 UTF-8 header fields). */
  eightBitHeaders: boolean;
  /** Received with SMTPUTF8 (RFC 6531). */
  smtpUtf8: boolean;
  /** Received with BODY=8BITMIME (RFC 6152). */
  eightBitMime: boolean;
}

/** Finds 8-bit octets, and whether one is in the header section (ended by the first empty line, CRLF or LF). */
class EightBitScan {
  eightBit = false;
  eightBitHeaders = false;
  private inHeaders = true;
  private lineLength = 0;

  /** Scans a chunk; false once nothing more can be learned. */
  feed(chunk: Buffer): boolean {
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (b > 0x7f) {
        this.eightBit = true;
        if (this.inHeaders) this.eightBitHeaders = true;
      }
      if (this.inHeaders) {
        if (b === 0x0a) {
          if (this.lineLength === 0) this.inHeaders = false;
          this.lineLength = 0;
        } else if (b !== 0x0d) {
          this.lineLength++;
        }
      }
      if (this.eightBit && (this.eightBitHeaders || !this.inHeaders)) return false;
    }
    return true;
  }
}

/**
 * Size and 8-bit content of a message as sent: `signature` (ASCII fields)
 * then its spool file or inline bytes (read once; stops as soon as the
 * answer is known).
 */
async function inspectSpool(message: QueuedMessage, signature: Buffer | undefined): Promise<SpoolInfo> {
  const spoolPath = message.spoolPath;
  const flags = { smtpUtf8: message.smtpUtf8 === true, eightBitMime: message.eightBitMime === true, signature };
  const scan = new EightBitScan();
  if (message.body) {
    const b = signature ? Buffer.concat([signature, message.body]) : message.body;
    scan.feed(b);
    return { spoolPath, inline: b, size: b.length, eightBit: scan.eightBit, eightBitHeaders: scan.eightBitHeaders, ...flags };
  }
  const size = (await fs.promises.stat(spoolPath)).size + (signature?.length ?? 0);
  const stream = fs.createReadStream(spoolPath);
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (!scan.feed(chunk)) break;
    }
  } finally {
    stream.destroy();
  }
  return { spoolPath, size, eightBit: scan.eightBit, eightBitHeaders: scan.eightBitHeaders, ...flags };
}

/** The spool file's bytes as a stream, the signature fields in front. */
function messageStream(body: SpoolInfo): Readable {
  const file = fs.createReadStream(body.spoolPath);
  if (!body.signature) return file;
  const signature = body.signature;
  return Readable.from((async function* () {
    yield signature;
    try {
      yield* file;
    } finally {
      file.destroy();
    }
  })());
}

/**
 * The extension one recipient's copy needs from the next hop, if any:
 * SMTPUTF8 for a non-ASCII local part in MAIL FROM or this RCPT TO (domains
 * go in A-labels), or for UTF-8 header fields of a message received with
 * SMTPUTF8 (RFC 6531 §3.2); 8BITMIME for 8-bit content received with
 * BODY=8BITMIME or SMTPUTF8 (RFC 6152 §3). `sender` and `rcpt` are in the
 * form sent (clientForm).
 */
function extensionNeeded(sender: string, rcpt: string, body: SpoolInfo): 'SMTPUTF8' | '8BITMIME' | undefined {
  const nonAscii = (a: string) => /[^\x00-\x7f]/.test(a);
  if (nonAscii(sender) || nonAscii(rcpt) || (body.smtpUtf8 && body.eightBitHeaders)) return 'SMTPUTF8';
  if (body.eightBit && (body.eightBitMime || body.smtpUtf8)) return '8BITMIME';
  return undefined;
}

function fail(permanent: boolean, status: string, diagnostic: string, remoteMta?: string): DeliveryResult {
  return remoteMta === undefined ? { ok: false, permanent, status, diagnostic } : { ok: false, permanent, status, diagnostic, remoteMta };
}

/** An address we can put in MAIL FROM/RCPT TO: local@domain, no CR, LF, angle brackets or controls. */
function validMailbox(s: string): boolean {
  // eslint-disable-next-line no-control-regex
  if (s.length > 512 || /[\x00-\x1f\x7f<>]/.test(s)) return false;
  const at = s.lastIndexOf('@');
  return at > 0 && at < s.length - 1;
}

/**
 * The form nodemailer sends an address in: its domain lower-cased and in
 * A-labels (nodemailer's `_normalizeAddress`), a local part with spaces quoted.
 * Sending this form keeps its accepted/rejected lists equal to ours.
 */
function clientForm(addr: string): string {
  const at = addr.lastIndexOf('@');
  let user = addr.slice(0, at);
  const domain = addr.slice(at + 1).toLowerCase();
  const ascii = /^[\x21-\x7e]*$/.test(domain) ? domain : domainToASCII(domain) || domain;
  if (user.includes(' ')) {
    if (!user.startsWith('"')) user = '"' + user;
    if (!user.endsWith('"')) user += '"';
  }
  return `${user}@${ascii}`;
}

/** An SMTP reply on one line for a Diagnostic-Code: continuation lines joined, their codes dropped. */
function oneLine(reply: string | undefined): string {
  return (reply ?? '').trim().replace(/\r?\n(?:\d{3}[ -])?/g, ' ');
}

/** The reply code of an SMTP error, if the server answered. */
function replyCode(err: SmtpError): number | undefined {
  if (typeof err.responseCode === 'number' && err.responseCode >= 200 && err.responseCode <= 599) return err.responseCode;
  const m = /^([2-5]\d\d)(?:[ -]|$)/.exec(err.response ?? '');
  return m ? Number(m[1]) : undefined;
}

/**
 * The enhanced status for a reply (RFC 3463): the server's own when it gave
 * one (its class forced to `cls`), else `cls`.0.0 (RFC 3463 §3.1 "other").
 */
function enhancedStatus(reply: string | undefined, cls: 4 | 5): string {
  const m = /^\d{3}[ -]([245])\.(\d{1,3})\.(\d{1,3})(?=\s|$)/.exec(reply ?? '');
  return m ? `${cls}.${m[2]}.${m[3]}` : `${cls}.0.0`;
}

/** A reply to one recipient (RCPT): 5xx permanent, anything else temporary. */
function replyFailure(err: SmtpError, remoteMta: string, where: string): DeliveryResult {
  const code = replyCode(err);
  if (code === undefined) return errorResult(err, remoteMta, where);
  const permanent = code >= 500;
  return fail(permanent, enhancedStatus(err.response, permanent ? 5 : 4), `smtp; ${oneLine(err.response)}`, remoteMta);
}

/** Commands where a 5xx refuses the message itself (RFC 5321 §4.2.1); 5xx elsewhere (greeting, EHLO) only refuses the session. */
const MESSAGE_COMMANDS = new Set(['MAIL FROM', 'RCPT TO', 'DATA']);

/** Messages of nodemailer errors raised before a session was established. */
const CONNECT_FAILURE = /ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|EADDRNOTAVAIL|EADDRINUSE|Connection timeout|Greeting never received/i;

/** Maps a failed nodemailer send to the result of every recipient it concerned. */
function errorResult(err: SmtpError, remoteMta: string, where: string): DeliveryResult {
  const code = replyCode(err);
  if (code !== undefined && err.response) {
    const permanent = code >= 500 && MESSAGE_COMMANDS.has(err.command ?? '');
    return fail(permanent, enhancedStatus(err.response, permanent ? 5 : 4), `smtp; ${oneLine(err.response)}`, remoteMta);
  }
  const msg = (err.message || String(err)).replace(/\s+/g, ' ');
  switch (err.code) {
    case 'EMESSAGE':
      // nodemailer refuses locally when SIZE= exceeds the peer's advertised limit (RFC 1870 §6.2).
      if (err.command === 'MAIL FROM') return fail(true, '5.3.4', `X-dcmx; ${where}: ${msg}`, remoteMta);
      break;
    case 'EENVELOPE':
      if (err.command === 'API') return fail(true, '5.1.3', `X-dcmx; ${msg}`, remoteMta);
      break;
    case 'ESTREAM':
      return fail(false, '4.3.0', `X-dcmx; cannot read spool file: ${msg}`);
    case 'ETLS':
      return fail(false, '4.7.0', `X-dcmx; TLS with ${where} failed: ${msg}`, remoteMta);
  }
  if (CONNECT_FAILURE.test(msg)) return fail(false, '4.4.1', `X-dcmx; connect to ${where}: ${msg}`, remoteMta);
  return fail(false, '4.4.2', `X-dcmx; lost connection with ${where}: ${msg}`, remoteMta);
}

/**
 * A failed STARTTLS handshake. nodemailer says ETLS when it sees the failure
 * itself, but an alert from the peer arrives as a socket error (code
 * overwritten to ESOCKET): OpenSSL errors carry `library`/`reason`. When
 * `verifying`, a certificate that does not verify counts too.
 */
function isTlsFailure(err: SmtpError & { library?: unknown; reason?: unknown }, verifying: boolean): boolean {
  if (err.code === 'ETLS') return true;
  if (err.response) return false;
  // A certificate that does not verify (chain or name) is a socket error too, without an OpenSSL library.
  if (verifying && /certificate|altnames|self[- ]signed|issuer/i.test(err.message ?? '')) return true;
  return typeof err.library === 'string' || /\b(?:SSL|TLS)\b|ssl3?_|tlsv1/i.test(err.message ?? '');
}

/** The address inside a domain literal (`[192.0.2.1]`, `[IPv6:2001:db8::1]`, RFC 5321 §4.1.3), if `domain` is one. */
function addressLiteral(domain: string): string | undefined {
  const m = /^\[(?:IPv6:)?([^\]]+)\]$/i.exec(domain.trim());
  return m && net.isIP(m[1]) ? m[1] : undefined;
}

/** The result for every recipient when the route could not be looked up. */
function resolveFailure(err: unknown, name: string, type: string): DeliveryResult {
  if (err instanceof MailResolveError) {
    switch (err.kind) {
      case 'nullmx':
        // RFC 7505 §4.2: 5.1.10 "Recipient address has null MX".
        return fail(true, '5.1.10', `X-dcmx; ${name} does not accept mail (null MX, RFC 7505)`);
      case 'loop':
        // Postfix's words for it; RFC 3463 §3.5: X.4.6 "routing loop detected".
        return fail(true, '5.4.6', `X-dcmx; ${err.message}`);
      case 'nxdomain':
        return fail(true, '5.1.2', `X-dcmx; Host or domain name not found. Name service error for name=${name} type=${type}: ${err.message}`);
      case 'temporary':
        return fail(false, '4.4.3', `X-dcmx; Host or domain name lookup failed for name=${name} type=${type}: ${err.message}`);
    }
  }
  return fail(false, '4.4.3', `X-dcmx; lookup of ${name} failed: ${(err as Error)?.message ?? String(err)}`);
}
