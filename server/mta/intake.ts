/**
 * SMTP intake: smtp-server owns the protocol (command order, limits, syntax
 * errors); dcmx gives it thin hooks that ask the directory cache and the
 * routing table and answer with a reply code and an enhanced status code
 * (STYLE.md). Never writes to the socket itself.
 *
 * RFC 5321 and Postfix behaviour: `<postmaster>` without a domain, and at an
 * address literal of ours, accepted (§4.5.1, postmaster.ts); '%', '!' and quoted '@' in local parts refused (no relay
 * tricks); a source route (`@a,@b:user@c`) is stripped by smtp-server and
 * ignored, as §4.1.2 and Appendix C require, so only `user@c` is judged;
 * unknown MAIL/RCPT parameters 555 (§4.1.1.11); relaying to
 * domains not hosted here only for authenticated clients or
 * DCMX_RELAY_NETWORKS (550 5.7.1 otherwise); unknown local users 550 5.1.1 at
 * RCPT, for `local` domains and for `hold` domains whose mail will be local
 * once released (no backscatter later); a non-ASCII mailbox without the
 * SMTPUTF8 parameter 553 5.6.7 (RFC 6531 §3.4). A message gets its 250 only
 * once it is on disk (MessageQueue: in the Maildirs here, or spool file and
 * queue row), with the SMTPUTF8 flag and the BODY type it was sent with (the
 * smtp channel needs both, RFC 6531 §3.2, RFC 6152 §3).
 */
import type { BlockList } from 'node:net';
import { cidrList, clientKey, inCidrList, isLoopback, ownAddressTest } from '../net';
import { SMTPServer, type SMTPServerAddress, type SMTPServerAuthentication, type SMTPServerSession } from 'smtp-server';
import type { Readable } from 'node:stream';
import { RepeatLimiter, type Logger } from '../log';
import { splitAddress } from '../directory/mail';
import type { MailSource } from '../directory/mail-source';
import { DirectoryUnavailableError, TooManyFailuresError } from '../directory/errors';
import type { RoutingTable } from '../directory/routing';
import type { DirectoryCache } from './cache';
import type { MailResolver } from './resolver';
import type { SelfIdentity } from './self';
import type { TlsPair } from '../tls';
import { newQueueId, type Spool } from './spool';
import { HopCounter } from './hops';
import { isOurPostmaster } from './postmaster';
import type { QueueMessageRow } from '../../storage/queue';
import { isStorageFull, StoreFileError } from '../../storage/db';
import { ConnectionCaps, type CapsMemory } from '../connection-caps';

/** An SMTP reply for a refused command. */
export class SmtpReply extends Error {
  constructor(readonly responseCode: number, readonly enhancedCode: string, message: string) {
    super(message);
  }
}

/** 550 5.7.1 for a recipient this client may not relay to (logged as a relay denial). */
class RelayDenied extends SmtpReply {
  constructor(rcpt: string) {
    super(550, '5.7.1', `<${rcpt}>: Relay access denied`);
  }
}

/**
 * What the provisioning policy says about a domain that is not hosted here:
 * `accept` once it is hosted (provisioned), `foreign` when it is served
 * elsewhere, so only a client allowed to relay may send to it (others get
 * 550 5.7.1). A policy that refuses outright throws its own SmtpReply.
 */
export type UnknownDomainDecision = { kind: 'accept' } | { kind: 'foreign' };

/**
 * Decides a domain that is not hosted here (the provisioning policy); throws
 * SmtpReply to refuse outright (a name that cannot take mail, or 4xx when it
 * cannot tell now). `relaying` tells whether the client may relay.
 */
export type UnknownDomainHook = (domain: string, session: SMTPServerSession, relaying: boolean) => Promise<UnknownDomainDecision>;

export interface IntakeOptions {
  host: string;
  port: number;
  hostname: string;
  maxSize: number;
  maxRecipients: number;
  maxClients: number;
  /** Connections of one client address (IPv6: /64); relayNetworks are exempt. */
  clientConnections: number;
  socketTimeoutMs: number;
  /** Idle timeout while more than 3/4 of maxClients are connected. */
  busyTimeoutMs: number;
  greetingDelayMs: number;
  relayNetworks: readonly string[];
  /** Addresses that are ours besides loopback and the host's interfaces (DCMX_LISTEN, DCMX_SELF_ADDRESSES): postmaster@[them] is accepted. */
  ownAddresses: readonly string[];
  tls: TlsPair;
  /** AUTH failures in one session after which it is closed with 421 (as Postfix's smtpd_hard_error_limit). */
  authFailureLimit: number;
  /** Received: fields at which a message is refused as looping (as Postfix's hopcount_limit). */
  hopLimit: number;
  /** Listen with SO_REUSEPORT (every serving thread of the process on the port). Default false. */
  reusePort?: boolean;
  /** The process's connection counts when several threads serve SMTP (connection-caps.ts). */
  caps?: CapsMemory;
}

/**
 * Where intake puts an accepted message: the queue side's Delivery (which
 * delivers into the Maildirs here at once and queues the rest), or a
 * forwarder to the thread that has it. Resolves once every recipient's copy
 * is on disk (fsynced), in its Maildir or in the queue; only then is the
 * message answered 250.
 */
export interface MessageQueue {
  accept(message: QueueMessageRow, rcpts: { rcpt: string; held: boolean }[], now: number): Promise<void>;
}

export interface IntakeDeps {
  /** The directory, for AUTH; domains and recipients are read through `cache`. */
  source: MailSource;
  cache: DirectoryCache;
  routing: RoutingTable;
  /** The queue side, or a forwarder to the thread that has it. */
  queue: MessageQueue;
  spool: Spool;
  resolver: MailResolver;
  log: Logger;
  /** Catches the cache and routing table up with the change clock (Directory.sync: writes by other threads and processes included). */
  sync: () => void;
  /** Decides domains that are not hosted (default: only relaying clients). */
  unknownDomain?: UnknownDomainHook;
  /** Tells whether a domain's own mail hosts are this appliance (then its recipients are local). */
  self: SelfIdentity;
  /** False while the store takes no writes (its file was removed or replaced): recipients get 451 4.3.0. */
  storeWritable: () => boolean;
  /**
   * A remote unit's view of its directory (DCMX_ROLE=mta): false while it
   * cannot be reached. Then a recipient or domain the unit cannot confirm
   * gets 451 4.4.3, never a 5xx (an outage must not bounce mail); what the
   * cache holds is still accepted. Absent: the directory is this process.
   */
  directoryReachable?: () => boolean;
}

/** MAIL FROM parameters we support (RFC 1870 SIZE, RFC 6152 BODY, RFC 6531 SMTPUTF8, RFC 4954 §5 AUTH). */
/** How long a close lets the sessions open finish by themselves before 421 (the appliance exits within 10 s). */
const DRAIN_MS = 5000;

const MAIL_PARAMS = new Set(['SIZE', 'BODY', 'SMTPUTF8', 'AUTH']);
/** RCPT TO parameters we support: none (DSN is not offered). */
const RCPT_PARAMS = new Set<string>();

/** RFC 5322 date-time for Received: headers. */
function rfc5322Date(d: Date): string {
  return d.toUTCString().replace(/GMT$/, '+0000');
}

/** RFC 3463 X.4.3 "directory server failure": the directory cannot be asked now; the sender retries. */
function directoryDown(): SmtpReply {
  return new SmtpReply(451, '4.4.3', 'Directory temporarily unavailable, please try again later');
}

export class Intake {
  readonly server: SMTPServer;
  private readonly relay: BlockList;
  private readonly ours: (ip: string, localAddress?: string) => boolean;
  /**
   * Counters for tests and the admin API (GET /stats, /metrics): recipients
   * accepted, refused (5xx; `relayDenied` of them for relaying) and deferred
   * (4xx) at RCPT; messages queued and their bytes, messages refused at
   * DATA; sessions admitted and refused; failed AUTH.
   */
  readonly stats = {
    accepted: 0, rejectedRcpt: 0, deferredRcpt: 0, relayDenied: 0, messages: 0, bytes: 0, refusedMessages: 0,
    sessionsAccepted: 0, refusedConnections: 0, authFailures: 0,
  };
  /** Open sessions, in all and per client (connection-caps.ts). */
  private readonly caps: ConnectionCaps;
  /** Remote address of each admitted session, by session id, released when it closes. */
  private readonly admitted = new Map<string, string>();
  /** Connections whose idle timeout was shortened while busy. */
  private readonly hurried = new WeakSet<object>();
  private readonly refusalLog = new RepeatLimiter();
  /** A full disk fails every message the same way: logged once a minute. */
  private readonly storageFullLog = new RepeatLimiter();
  /** RCPT commands seen per transaction (smtp-server gives each transaction a new envelope object). */
  private readonly rcptCommands = new WeakMap<object, number>();

  constructor(private readonly opts: IntakeOptions, private readonly deps: IntakeDeps) {
    this.relay = cidrList(opts.relayNetworks);
    this.ours = ownAddressTest(opts.ownAddresses);
    // Postfix's smtpd_client_event_limit_exceptions default to $mynetworks: relaying networks are trusted.
    // Busy (more than 3/4 of the slots, in the whole process): every session's idle timeout becomes busyTimeoutMs.
    this.caps = new ConnectionCaps({
      max: opts.maxClients, perClient: opts.clientConnections, exempt: this.relay, shared: opts.caps, onBusy: () => this.hurryIdle(),
    });
    this.server = new SMTPServer({
      name: opts.hostname,
      banner: 'dcmx', // smtp-server writes '<name> ESMTP <banner>'
      size: opts.maxSize,
      maxClients: opts.maxClients,
      socketTimeout: opts.socketTimeoutMs,
      closeTimeout: 5000,
      authMethods: ['PLAIN', 'LOGIN'],
      authOptional: true,
      allowInsecureAuth: false, // AUTH only after STARTTLS (RFC 4954 §4)
      key: opts.tls.key,
      cert: opts.tls.cert,
      hideDSN: true,
      hideENHANCEDSTATUSCODES: false, // RFC 2034
      // Reverse lookups go through the configured upstream, never the machine's resolver;
      // loopback clients are not looked up at all.
      resolver: {
        reverse: (ip: string, cb: (err: Error | null, hostnames?: string[]) => void) =>
          isLoopback(ip) ? cb(null, ['localhost']) : deps.resolver.reverse(ip, cb),
      },
      logger: false,
      // @ts-expect-error greetingDelay comes from our smtp-server patch (patches/smtp-server+3.21.6.patch)
      greetingDelay: (ip: string) => (isLoopback(ip) ? 0 : opts.greetingDelayMs),
      maxRecipients: opts.maxRecipients,
      onConnect: (session, cb) => this.onConnect(session, cb),
      onClose: (session) => this.onClose(session),
      onAuth: (auth, session, cb) => this.onAuth(auth, session, cb),
      onMailFrom: (address, session, cb) => this.guard(cb, () => this.onMailFrom(address, session)),
      onRcptTo: (address, session, cb) => this.guard(cb, async () => {
        try {
          this.countRcpt(session);
          await this.onRcptTo(address, session);
        } catch (err) {
          this.refused(address, session, err);
          throw err;
        }
        this.stats.accepted++;
      }),
      onData: (stream, session, cb) => this.onData(stream, session, cb),
    });
    this.server.on('error', (err) => deps.log.debug({ err: err.message }, 'smtp session error'));
  }

  /**
   * Counts and logs a refused recipient: one line with the client, the
   * envelope and the reply (`relay denied` for relaying, else `recipient
   * refused`), for the operator and for tools that watch the log.
   */
  private refused(address: SMTPServerAddress, session: SMTPServerSession, err: unknown): void {
    const reply = err instanceof SmtpReply ? err : err instanceof DirectoryUnavailableError ? directoryDown() : undefined;
    const code = reply?.responseCode ?? 451;
    if (code >= 500) this.stats.rejectedRcpt++;
    else this.stats.deferredRcpt++;
    const relay = err instanceof RelayDenied;
    if (relay) this.stats.relayDenied++;
    this.deps.log.info({
      event: relay ? 'relay_denied' : 'recipient_refused', remote: session.remoteAddress, from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
      to: address.address, code, status: reply?.enhancedCode ?? '4.3.0', reply: reply?.message ?? 'Temporary local problem, please try again',
    }, relay ? 'relay denied' : 'recipient refused');
  }

  /** Runs a hook body, turning SmtpReply/unexpected errors into smtp-server callbacks (451 4.3.0 for the unexpected). */
  private guard(cb: (err?: Error | null) => void, body: () => Promise<void> | void): void {
    Promise.resolve()
      .then(body)
      .then(
        () => cb(),
        (err) => {
          if (err instanceof SmtpReply) return cb(err);
          if (err instanceof DirectoryUnavailableError) return cb(directoryDown());
          this.deps.log.error({ err }, 'smtp hook failed');
          cb(new SmtpReply(451, '4.3.0', 'Temporary local problem, please try again'));
        },
      );
  }

  /**
   * Admits a session within the caps (connection-caps.ts): beyond its
   * client's share, or all slots, 421 and the connection is closed, as
   * Postfix answers. While busy, every connection's idle timeout becomes
   * busyTimeoutMs; smtp-server's own timeout closes it (421, and never while
   * a hook of ours is still deciding).
   */
  private onConnect(session: SMTPServerSession, cb: (err?: Error | null) => void): void {
    const refused = this.caps.admit(session.remoteAddress);
    if (refused) {
      this.stats.refusedConnections++;
      const key = clientKey(session.remoteAddress);
      const admitted = this.refusalLog.admit(`${refused}:${refused === 'client' ? key : ''}`);
      if (admitted) {
        this.deps.log.warn({ remote: session.remoteAddress, client: key, open: refused === 'client' ? this.caps.of(session.remoteAddress) : this.caps.total, suppressed: admitted.suppressed },
          refused === 'client' ? 'smtp connection refused: too many connections from this client' : 'smtp connection refused: too many connections');
      }
      // smtp-server sends a connection refusal without an enhanced code: it is part of the text (RFC 3463 X.7.0).
      return cb(new SmtpReply(421, '4.7.0', refused === 'client'
        ? `4.7.0 ${this.opts.hostname} Error: too many connections from ${session.remoteAddress}`
        : `4.7.0 ${this.opts.hostname} Error: too many connected clients, try again in a moment`));
    }
    this.admitted.set(session.id, session.remoteAddress);
    this.stats.sessionsAccepted++;
    if (this.caps.busy) this.hurryIdle();
    cb();
  }

  /** Sessions open now on this thread (admitted by the caps, not yet closed). */
  get openSessions(): number {
    return this.caps.here;
  }

  private onClose(session: SMTPServerSession): void {
    const address = this.admitted.get(session.id);
    if (address === undefined) return;
    this.admitted.delete(session.id);
    this.caps.release(address);
  }

  /** Shortens the idle timeout of every connection not shortened yet (the timer restarts: at most busyTimeoutMs from now). */
  private hurryIdle(): void {
    const ms = Math.min(this.opts.busyTimeoutMs, this.opts.socketTimeoutMs);
    for (const c of this.server.connections) {
      if (this.hurried.has(c)) continue;
      this.hurried.add(c);
      // Only the timer's length changes: its listener stays smtp-server's own (_onTimeout).
      c._socket.setTimeout(ms);
    }
  }

  /** AUTH failures of each session so far. */
  private readonly authFailures = new WeakMap<SMTPServerSession, number>();

  /**
   * AUTH (RFC 4954) against the directory, throttled by the client's address
   * (auth-throttle.ts: 454 4.7.0 while refused). The session's
   * authFailureLimit-th failure is answered 421 and smtp-server closes the
   * connection, as Postfix does past smtpd_hard_error_limit.
   */
  private onAuth(auth: SMTPServerAuthentication, session: SMTPServerSession, cb: (err: Error | null | undefined, res?: { user: unknown }) => void): void {
    /** A failed AUTH: `guess` when the client's credentials were refused (logged as `auth_failed`, see the README's fail2ban filter), not our failure. */
    const failed = (reply: SmtpReply, guess: boolean) => {
      const n = (this.authFailures.get(session) ?? 0) + 1;
      this.authFailures.set(session, n);
      if (guess) {
        this.stats.authFailures++;
        // Never the password: the name it was tried for, and who tried.
        this.deps.log.info({ event: 'auth_failed', proto: 'smtp', remote: session.remoteAddress, user: auth.username, code: reply.responseCode }, 'smtp AUTH failed');
      } else {
        this.deps.log.warn({ remote: session.remoteAddress, user: auth.username, code: reply.responseCode }, 'smtp AUTH could not be checked');
      }
      cb(n >= this.opts.authFailureLimit ? new SmtpReply(421, '4.7.0', 'Too many failed authentications, closing connection') : reply);
    };
    this.deps.source.authenticate(auth.username ?? '', auth.password ?? '', session.remoteAddress).then(
      (id) => (id ? cb(null, { user: id.dn }) : failed(new SmtpReply(535, '5.7.8', 'Authentication credentials invalid'), true)),
      (err) => (err instanceof TooManyFailuresError
        ? failed(new SmtpReply(454, '4.7.0', 'Too many failed authentications, try again later'), true)
        : failed(new SmtpReply(454, '4.7.0', 'Temporary authentication failure'), false)),
    );
  }

  private checkParams(args: unknown, allowed: Set<string>): void {
    if (!args || typeof args !== 'object') return;
    for (const k of Object.keys(args as object)) {
      if (!allowed.has(k.toUpperCase())) throw new SmtpReply(555, '5.5.4', `Unsupported parameter ${k}`);
    }
  }

  private onMailFrom(address: SMTPServerAddress, session: SMTPServerSession): void {
    this.checkParams(address.args, MAIL_PARAMS);
    const args = (address.args || {}) as Record<string, string | boolean>;
    // RFC 4954 §5: a server that offers AUTH accepts AUTH=<mailbox> (xtext, decoded by
    // smtp-server) or AUTH=<>. We do not pass it on, which §5 allows; a value is required.
    if ('AUTH' in args && (typeof args.AUTH !== 'string' || !(args.AUTH === '<>' || /^[^\s<>]+@[^\s<>]+$/.test(args.AUTH)))) {
      throw new SmtpReply(501, '5.5.4', 'Bad AUTH parameter syntax');
    }
    this.checkUtf8(address, session);
  }

  /**
   * RFC 6531 §3.4: a mailbox with non-ASCII characters needs SMTPUTF8 on MAIL
   * FROM; without it, 553 5.6.7 (as Postfix answers). smtp-server hands the
   * domain over in U-labels whether the client sent U-labels or A-labels
   * (which need no SMTPUTF8); our patch of it (patches/smtp-server+*.patch)
   * says whether the address arrived with raw UTF-8.
   */
  private checkUtf8(address: SMTPServerAddress, session: SMTPServerSession): void {
    if (session.envelope.smtpUtf8) return;
    if ((address as SMTPServerAddress & { rawUtf8?: boolean }).rawUtf8) {
      throw new SmtpReply(553, '5.6.7', `<${address.address}>: Must declare SMTPUTF8 to send a non-ASCII address`);
    }
  }

  private mayRelay(session: SMTPServerSession): boolean {
    return !!session.user || inCidrList(this.relay, session.remoteAddress);
  }

  /**
   * RFC 5321 §4.5.3.1.8: past maxRecipients RCPT commands in one transaction,
   * 452 4.5.3. Every RCPT counts, a repeated address too (smtp-server merges
   * repeats and counts distinct addresses only), as Postfix's
   * smtpd_recipient_limit counts every recipient it is given.
   */
  private countRcpt(session: SMTPServerSession): void {
    const n = (this.rcptCommands.get(session.envelope) ?? 0) + 1;
    this.rcptCommands.set(session.envelope, n);
    if (n > this.opts.maxRecipients) throw new SmtpReply(452, '4.5.3', 'Too many recipients');
  }

  private async onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, provisioned = false): Promise<void> {
    this.checkParams(address.args, RCPT_PARAMS);
    // Nothing accepted now could be queued: the store takes no writes (its file is gone, appliance.ts logs it).
    if (!this.deps.storeWritable()) throw new SmtpReply(451, '4.3.0', 'Temporary local problem: the mail store is unavailable, please try again later');
    const rcpt = address.address;
    if (!provisioned) this.checkUtf8(address, session);
    // RFC 5321 §4.5.1: "postmaster" without a domain, or at our address literal, must be accepted.
    if (isOurPostmaster(rcpt, (ip) => this.ours(ip, session.localAddress))) return;
    const parts = splitAddress(rcpt);
    if (!parts) throw new SmtpReply(501, '5.1.3', 'Bad recipient address syntax');
    // Relay tricks: user%host@us, host!user@us, "user@host"@us, @route:user@host.
    if (/[%!@:,]/.test(parts.local)) {
      throw new RelayDenied(rcpt);
    }
    this.deps.sync();
    const routed = this.deps.routing.resolve(parts.domain);
    if (!routed) {
      if (provisioned) throw new SmtpReply(451, '4.3.0', 'The new domain is not routable yet, try again');
      const relaying = this.mayRelay(session);
      // The domain may have been added while the directory is out of reach.
      if (!relaying && this.directoryDown()) throw directoryDown();
      const decision: UnknownDomainDecision = this.deps.unknownDomain ? await this.deps.unknownDomain(parts.domain, session, relaying) : { kind: 'foreign' };
      if (decision.kind === 'accept') return this.onRcptTo(address, session, true); // now hosted: check the recipient like any other
      if (relaying) return;
      throw new RelayDenied(rcpt);
    }
    switch (routed.route.kind) {
      case 'reject':
          throw new SmtpReply(550, '5.7.1', `<${rcpt}>: Mail for ${parts.domain} is not accepted`);
      case 'relay':
        // Its own mail hosts are us by address: the domain is local (server/mta/self.ts).
        if (routed.route.ownHosts && (await this.deps.self.holder(routed.route.hosts)) === 'self') return this.checkLocalRecipient(rcpt, parts.local, routed.domain);
        // The next hop knows the users: the directory need not list a relayed
        // domain's mailboxes (like Postfix relay_domains without relay_recipient_maps).
        return;
      case 'hold': {
        // Held mail is delivered by the route the domain has once released:
        // judge the recipient by that route now, so an unknown user is refused
        // here rather than bounced (backscatter) when the hold ends.
        const domain = await this.deps.cache.domain(routed.domain);
        if (!domain) throw new SmtpReply(451, '4.3.0', 'Temporary lookup failure');
        if (this.deps.routing.routeFor({ ...domain, status: 'active' }).kind !== 'local') return;
        return this.checkLocalRecipient(rcpt, parts.local, routed.domain);
      }
      case 'local':
        return this.checkLocalRecipient(rcpt, parts.local, routed.domain);
      default:
        return;
    }
  }

  /** A recipient of a domain delivered here: a directory user, the catch-all, or an RFC 2142 role address; else 550 5.1.1. */
  private async checkLocalRecipient(rcpt: string, local: string, domainName: string): Promise<void> {
    const domain = await this.deps.cache.domain(domainName);
    if (!domain) throw new SmtpReply(451, '4.3.0', 'Temporary lookup failure');
    if (await this.deps.cache.recipient(domain, `${local}@${domainName}`)) return;
    const lp = local.toLowerCase();
    if (domain.catchall || lp === 'postmaster' || lp === 'abuse') return; // RFC 2142 role addresses always reach someone
    // A "no" from before the outage (a negative answer cached) may be stale: the user may exist now.
    if (this.directoryDown()) throw directoryDown();
    throw new SmtpReply(550, '5.1.1', `<${rcpt}>: Recipient address rejected: User unknown`);
  }

  /** True while a remote unit cannot reach its directory. */
  private directoryDown(): boolean {
    return this.deps.directoryReachable !== undefined && !this.deps.directoryReachable();
  }

  private receivedHeader(session: SMTPServerSession, id: string, now: Date): string {
    const helo = (session.hostNameAppearsAs || 'unknown').replace(/[^\x21-\x7e]/g, '');
    const rdns = session.clientHostname && session.clientHostname !== `[${session.remoteAddress}]` ? session.clientHostname : 'unknown';
    // RFC 3848: ESMTP with S for TLS, A for AUTH; RFC 6531 §3.7.3: UTF8SMTP for a session that used SMTPUTF8.
    const proto = `${session.envelope.smtpUtf8 ? 'UTF8SMTP' : 'ESMTP'}${session.secure ? 'S' : ''}${session.user ? 'A' : ''}`;
    const rcpts = session.envelope.rcptTo;
    const forClause = rcpts.length === 1 ? `\r\n\tfor <${rcpts[0].address}>` : '';
    return `Received: from ${helo} (${rdns} [${session.remoteAddress}])\r\n\tby ${this.opts.hostname} (dcmx) with ${proto} id ${id}${forClause};\r\n\t${rfc5322Date(now)}\r\n`;
  }

  private onData(stream: Readable & { sizeExceeded?: boolean }, session: SMTPServerSession, cb: (err?: Error | null, message?: string) => void): void {
    const id = newQueueId();
    const now = new Date();
    const sender = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
    (async () => {
      const hops = new HopCounter();
      const got = await this.deps.spool.receive(id, this.receivedHeader(session, id, now), stream, this.opts.maxSize, (c) => hops.push(c));
      if (got.exceeded || stream.sizeExceeded) {
        if (got.file) await this.deps.spool.remove(got.file);
        throw new SmtpReply(552, '5.3.4', `Message size exceeds fixed limit of ${this.opts.maxSize} bytes`);
      }
      // RFC 5321 §6.3: this many Received: fields is a loop; refused now, so no bounce goes round it.
      if (hops.count >= this.opts.hopLimit) {
        if (got.file) await this.deps.spool.remove(got.file);
        this.deps.log.info({ remote: session.remoteAddress, hops: hops.count, sender }, 'message refused: too many hops');
        throw new SmtpReply(554, '5.4.6', `Too many hops (${hops.count} Received: header fields): mail forwarding loop`);
      }
      const size = got.size;
      const rcpts = session.envelope.rcptTo;
      await this.deps.queue.accept(
        {
          id, receivedAt: now.getTime(), sender, size, spool: got.file ?? '', body: got.inline,
          smtpUtf8: session.envelope.smtpUtf8 === true, eightBitMime: session.envelope.bodyType === '8bitmime',
          submitted: this.mayRelay(session), submitter: session.user ? String(session.user) : undefined,
        },
        rcpts.map((r) => ({ rcpt: r.address, held: false })),
        now.getTime(),
      );
      this.stats.messages++;
      this.stats.bytes += size;
      // One line per message queued, as Postfix's qmgr "from=<...>, size=..., nrcpt=..." line.
      this.deps.log.info({ event: 'message_received', id, from: sender, size, nrcpt: rcpts.length, remote: session.remoteAddress, user: session.user ? String(session.user) : undefined }, 'message received');
    })().then(
      () => cb(null, `Ok: queued as ${id}`),
      (err) => {
        this.stats.refusedMessages++;
        // The spool read the stream to its end (spool.ts), so smtp-server sends this reply now.
        if (err instanceof SmtpReply) return cb(err);
        if ((err as { code?: string }).code === 'ECONNECTION' || (err as { code?: string }).code === 'ECONNRESET') {
          this.deps.log.debug({ err: (err as Error).message }, 'client left during DATA');
          return cb(new SmtpReply(451, '4.3.0', 'Message incomplete'));
        }
        if (err instanceof StoreFileError) {
          this.deps.log.debug({ err: err.message }, 'could not queue a message: the store takes no writes');
          return cb(new SmtpReply(451, '4.3.0', 'Temporary local problem: the mail store is unavailable, please try again later'));
        }
        // RFC 3463 §3.5 X.3.1: mail system full (the spool file or the queue row found no room).
        if (isStorageFull(err)) {
          const admitted = this.storageFullLog.admit('full');
          if (admitted) this.deps.log.error({ err, suppressed: admitted.suppressed }, 'could not queue a message: no room left on the data dir');
          return cb(new SmtpReply(452, '4.3.1', 'Insufficient system storage, please try again later'));
        }
        this.deps.log.error({ err }, 'could not queue a message');
        cb(new SmtpReply(451, '4.3.0', 'Could not queue the message, please try again'));
      },
    );
  }

  /** Starts listening. Resolves with the bound port. */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ port: this.opts.port, host: this.opts.host, reusePort: this.opts.reusePort === true }, () => {
        this.server.off('error', reject);
        this.server.on('error', (err) => this.deps.log.debug({ err: err.message }, 'smtp server error'));
        const addr = this.server.server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : this.opts.port);
      });
    });
  }

  /**
   * Stops accepting, lets the sessions open now run to their end (QUIT) for
   * up to `drainMs`, and then closes those left, as smtp-server's close
   * does: 421 (RFC 5321 §3.8). smtp-server's own close answers every command
   * after it with 421, which would fail a session that had just begun.
   */
  close(drainMs = DRAIN_MS): Promise<void> {
    const server = this.server as SMTPServer & { connections: Set<{ send(code: number, text: string): void; close(): void }> };
    return new Promise((resolve) => {
      // Resolves once every connection has ended (net.Server's close).
      server.server.close(() => {
        clearTimeout(timer);
        resolve();
      });
      const timer = setTimeout(() => {
        for (const c of server.connections) {
          c.send(421, 'Server shutting down');
          c.close();
        }
      }, drainMs);
      timer.unref();
    });
  }
}
