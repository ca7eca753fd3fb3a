/**
 * The LDAP endpoint: ldapjs 3.0.7 behind our own framing.
 *
 * ldapjs is unmaintained and unsafe on hostile input, so each connection's
 * bytes pass through `PduFramer` (size and nesting limits, structural BER
 * validation) and only whole, valid LDAPMessages reach its parser. A framing
 * error ends the connection with a Notice of Disconnection (RFC 4511
 * §4.4.1). Searches, most of the traffic, are decoded and answered by our
 * own code (search-decode.ts, search.ts), and so are modify, add, delete,
 * modifyDN, compare and Password Modify (request-decode.ts), whose DNs ldapjs
 * misparses; the other operations (bind, Who am I?, abandon, unbind) go
 * through ldapjs. This folder is the only one that
 * knows ldapjs exists. At debug level the operation log (operation-log.ts)
 * sees every request as the flow hands it to `handle` and every response as
 * it is written, whichever of these paths answers it.
 */
import * as net from 'node:net';
import ldap from 'ldapjs';
import type { Directory } from '../directory/directory';
import type { Logger } from '../log';
import { FramingError, noticeOfDisconnection, PduFramer } from './framing';
import { attachSession, type LdapConnection } from './session';
import type { LdapContext, Reply } from './context';
import type { Session } from './session';
import { criticalControls, screenControls, SUPPORTED_CONTROLS, unsupportedCritical } from './controls';
import { bindHandler } from './bind';
import { answerSearch, searchHandler } from './search';
import { decodeSearchRequest, saslBindId } from './search-decode';
import { encodeExtendedResponse, encodeLdapResult, messageHead } from './ber';
import { DEFAULT_FLOW_LIMITS, RequestFlow, type FlowLimits } from './flow';
import { answerAdd } from './add';
import { answerModify } from './modify';
import { answerDelete } from './delete';
import { answerModifyDn } from './modifydn';
import { answerCompare } from './compare';
import { decodeUpdateRequest, OPERATIONS, START_TLS_OID, undecodedUpdate, type UpdateCall } from './request-decode';
import {
  answerPasswordModify, PASSWORD_MODIFY_OID, PROVISION_DOMAIN_OID, provisionHandler, WHOAMI_OID, whoAmIHandler,
} from './extended';
import type { Provisioner } from '../directory/provision';
import { RESULT_CODES } from './results';
import type { TlsPair } from '../tls';
import { startTlsVerdict, upgradeToTls } from './starttls';
import * as tls from 'node:tls';
import { ANONYMOUS } from '../directory/access';
import { ConnectionCaps } from '../connection-caps';
import { clientKey } from '../net';
import { RepeatLimiter } from '../log';
import { OperationLog, passwordAttributes } from './operation-log';

export interface LdapServerOptions {
  host: string;
  port: number;
  maxPdu: number;
  maxDepth: number;
  /** Seconds of inactivity before a connection is closed. */
  idleTimeout: number;
  /** Seconds a client has to complete a PDU once its first byte has arrived; then the connection is closed. */
  pduTimeout: number;
  /** Concurrent connections; a new one beyond this gets a Notice of Disconnection (unavailable) and is closed. */
  maxConnections: number;
  /** Concurrent connections of one client address (IPv6: one /64); beyond, refused the same way. Default: maxConnections. */
  clientConnections?: number;
  /** Seconds of inactivity before a connection is closed while more than 3/4 of maxConnections are open. Default: idleTimeout. */
  busyIdleTimeout?: number;
  /** Bounds of each connection's request queue (flow.ts); DEFAULT_FLOW_LIMITS otherwise. */
  flow?: Partial<FlowLimits>;
  /** Serves the provisioning extended operation when given. */
  provisioner?: Provisioner;
  /** The certificate for StartTLS (RFC 4513 §3); without it StartTLS is unavailable (52). */
  tls?: TlsPair;
}

/** A running LDAP endpoint. */
export interface LdapEndpoint {
  /** The bound port (useful with port 0). */
  port: number;
  /** Stops accepting, closes every connection. */
  close(): Promise<void>;
  /** Counters for tests and monitoring. */
  stats(): LdapStats;
}

/** A snapshot of the endpoint's connections. */
export interface LdapStats {
  /** Open connections (refused ones are not counted). */
  connections: number;
  /** Connections refused because `maxConnections` were open. */
  refused: number;
  /** Connections refused because their client had `clientConnections` open. */
  refusedPerClient: number;
  /** Connections closed because a PDU was not completed within `pduTimeout`. */
  pduTimeouts: number;
  /** Requests queued on all connections, not yet being handled. */
  queuedRequests: number;
  /** Bytes of those requests. */
  queuedBytes: number;
  /** Connections whose reading is paused by their full queue. */
  pausedConnections: number;
  /** Response bytes written but not yet taken by the kernel, on all connections. */
  bufferedOutput: number;
}

/** True when `b` is one whole LDAPMessage answering `id` and ending the operation (not an entry, reference or intermediate response). */
function isFinalResponse(b: Buffer, id: number): boolean {
  try {
    const h = messageHead(b);
    return h.id === id && h.op.tag !== 0x64 && h.op.tag !== 0x73 && h.op.tag !== 0x79;
  } catch {
    return false;
  }
}

/**
 * RFC 4512 §5.1 supportedFeatures: RFC 3673 all operational attributes, RFC 4526
 * absolute true/false, RFC 4529 objectClass lists, RFC 4525 §5 Modify-Increment,
 * and the subordinate ("children") search scope under the OID OpenLDAP
 * announces it with (LDAP_FEATURE_SUBORDINATE_SCOPE; the draft assigns none).
 */
export const SUPPORTED_FEATURES = [
  '1.3.6.1.4.1.4203.1.5.1', '1.3.6.1.4.1.4203.1.5.3', '1.3.6.1.4.1.4203.1.5.2', '1.3.6.1.1.14', '1.3.6.1.4.1.4203.666.8.1',
];

/** Dispatches a request decoded by request-decode.ts, after the critical-control check (RFC 4511 §4.1.11). */
function answerUpdate(ctx: LdapContext, session: Session, call: UpdateCall, reply: Reply): void {
  const bad = unsupportedCritical(OPERATIONS[call.op].name, call.controls);
  if (bad) {
    reply(encodeLdapResult(call.messageId, OPERATIONS[call.op].responseTag, RESULT_CODES.unavailableCriticalExtension, '', `critical control ${bad} is not supported`));
    return;
  }
  switch (call.op) {
    case 'modify':
      return answerModify(ctx, session, call, reply);
    case 'add':
      return answerAdd(ctx, session, call, reply);
    case 'delete':
      return answerDelete(ctx, session, call, reply);
    case 'modifyDN':
      return answerModifyDn(ctx, session, call, reply);
    case 'compare':
      return answerCompare(ctx, session, call, reply);
    case 'passwordModify':
      return answerPasswordModify(ctx, session, call, reply);
    case 'startTLS':
      throw new Error('StartTLS is answered by the connection (starttls.ts)');
  }
}

/** Adapts pino to the printf-style logger ldapjs expects; ldapjs's own chatter goes to trace. */
function ldapjsLogger(log: Logger): unknown {
  const l = {
    // Read by our ldapjs patch: ldapjs builds a message's pojo for its debug line only when this says so.
    isDebug: () => false,
    trace: () => undefined,
    debug: () => undefined,
    info: () => undefined,
    warn: (...args: unknown[]) => log.debug({ ldapjs: args.map(String) }, 'ldapjs warning'),
    error: (...args: unknown[]) => log.warn({ ldapjs: args.map(String) }, 'ldapjs error'),
    fatal: (...args: unknown[]) => log.error({ ldapjs: args.map(String) }, 'ldapjs fatal'),
    child: () => l,
  };
  return l;
}

/** Starts the LDAP endpoint on `opts.host:opts.port`. */
export async function startLdapServer(directory: Directory, opts: LdapServerOptions, log: Logger): Promise<LdapEndpoint> {
  const ctx: LdapContext = { directory, log };
  const sockets = new Set<net.Socket>();
  const limits = { maxPdu: opts.maxPdu, maxDepth: opts.maxDepth };
  const secureContext = opts.tls ? tls.createSecureContext({ cert: opts.tls.cert, key: opts.tls.key, minVersion: 'TLSv1.2' }) : undefined;
  const counters = { refused: 0, refusedPerClient: 0, pduTimeouts: 0 };
  const caps = new ConnectionCaps({ max: opts.maxConnections, perClient: opts.clientConnections ?? opts.maxConnections });
  const refusalLog = new RepeatLimiter();
  const idleMs = opts.idleTimeout * 1000;
  const busyIdleMs = Math.min(opts.busyIdleTimeout ?? opts.idleTimeout, opts.idleTimeout) * 1000;
  /** How to set each open connection's idle timeout (on the TLS socket after StartTLS). */
  const idleTimers = new Map<net.Socket, (ms: number) => void>();
  /** Connections whose idle timeout was shortened while busy. */
  const hurried = new WeakSet<net.Socket>();
  /** Busy: every connection's idle timeout becomes busyIdleMs (restarting it: at most that long from now). */
  const hurryIdle = () => {
    for (const [s, set] of idleTimers) {
      if (hurried.has(s)) continue;
      hurried.add(s);
      set(busyIdleMs);
    }
  };
  const flows = new Set<RequestFlow>();
  const flowLimits: FlowLimits = { ...DEFAULT_FLOW_LIMITS, ...opts.flow };
  const secret = passwordAttributes(directory.schema);

  // eslint-disable-next-line prefer-const
  let server: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  const connectionRouter = (sock: net.Socket & LdapConnection & { parser?: { write(b: Buffer): void } }) => {
    const remote = sock.remoteAddress ?? '';
    const refused = caps.admit(remote);
    if (refused) {
      // RFC 4511 §4.4.1: unavailable, then close; never handed to ldapjs.
      if (refused === 'total') counters.refused++;
      else counters.refusedPerClient++;
      const admitted = refusalLog.admit(refused === 'client' ? `client:${clientKey(remote)}` : 'total');
      if (admitted) {
        log.warn({ remote, max: refused === 'client' ? opts.clientConnections : opts.maxConnections, suppressed: admitted.suppressed },
          refused === 'client' ? 'ldap connection refused: too many connections from this client' : 'ldap connection refused: too many connections');
      }
      sock.on('error', () => undefined);
      sock.end(noticeOfDisconnection(RESULT_CODES.unavailable, refused === 'client' ? 'too many connections from your address' : 'too many connections'));
      setTimeout(() => sock.destroy(), 1000).unref();
      return;
    }
    sock.setNoDelay(true); // without it every search waits for the peer's delayed ACK (~40 ms)
    sock.setTimeout(idleMs);
    sockets.add(sock);
    idleTimers.set(sock, (ms) => sock.setTimeout(ms));
    sock.once('close', () => {
      sockets.delete(sock);
      idleTimers.delete(sock);
      caps.release(remote);
    });
    if (caps.busy) hurryIdle();
    const session = attachSession(sock, log);
    // The operation log (operation-log.ts) exists only at debug level: otherwise a connection pays nothing for it.
    const oplog = session.log.isLevelEnabled('debug') ? new OperationLog(session, secret, sock) : undefined;
    server.newConnection(sock);
    // ldapjs answers an anonymous bind itself, without calling our bind
    // handler; every BindRequest must first reset the session (RFC 4511 §4.2.1).
    (sock.parser as unknown as NodeJS.EventEmitter).prependListener('message', (req: { protocolOp: number }) => {
      if (req.protocolOp === 0x60) session.identity = ANONYMOUS;
    });
    // Replace ldapjs's raw 'data' listener by our framing.
    sock.removeAllListeners('data');
    const framer = new PduFramer(limits);
    const disconnect = (reason: string) => {
      session.log.info({ reason, remote: sock.remoteAddress }, 'ldap connection dropped');
      flow.close();
      sock.removeAllListeners('data');
      if (!sock.destroyed) sock.end(noticeOfDisconnection(RESULT_CODES.protocolError, reason));
      setTimeout(() => sock.destroy(), 1000).unref();
    };
    // A PDU must be complete within pduTimeout of its first byte, or the
    // connection is closed: a client may not hold a half-sent request (up to
    // maxPdu bytes buffered) for the whole idle timeout.
    let pduTimer: NodeJS.Timeout | undefined;
    const clearPduTimer = () => {
      if (pduTimer) clearTimeout(pduTimer);
      pduTimer = undefined;
    };
    const armPduTimer = (completed: boolean) => {
      if (completed || framer.pending === 0) clearPduTimer(); // a partial PDU now began in this chunk
      if (framer.pending === 0 || pduTimer) return;
      pduTimer = setTimeout(() => {
        counters.pduTimeouts++;
        session.log.info({ remote: sock.remoteAddress, pending: framer.pending }, 'ldap connection dropped: request not completed in time');
        sock.destroy();
      }, opts.pduTimeout * 1000);
    };
    sock.once('close', clearPduTimer);
    let secure = false;

    // Requests handed to ldapjs complete when it writes their final response:
    // the socket's write is watched for it while one is outstanding.
    let awaiting: { id: number; done: () => void } | undefined;
    const watchWrites = () => {
      const inner = sock.write;
      sock.write = function (this: net.Socket, ...args: unknown[]) {
        const ret = (inner as (...a: unknown[]) => boolean).apply(this, args);
        if (oplog && Buffer.isBuffer(args[0])) oplog.sent(args[0]);
        if (awaiting && Buffer.isBuffer(args[0]) && isFinalResponse(args[0], awaiting.id)) {
          const done = awaiting.done;
          awaiting = undefined;
          done();
        }
        return ret;
      } as typeof sock.write;
    };
    watchWrites();
    const send = (b: Buffer) => {
      if (!sock.destroyed) sock.write(b);
    };

    /** Answers one framed request; `done` once its response is written (see flow.ts). */
    const handle = (pdu: Buffer, done: () => void) => {
      // The search fast path (search-decode.ts): most traffic, decoded and answered without ldapjs.
      const call = decodeSearchRequest(pdu);
      if (call) return answerSearch(ctx, session, call, sock, done);
      // Modify, add, delete, modifyDN and compare: decoded here so that their DNs
      // reach the directory as sent (request-decode.ts says what ldapjs gets wrong).
      const update = decodeUpdateRequest(pdu);
      if (update?.op === 'startTLS') {
        // RFC 4511 §4.14: answered in the clear, then TLS begins on this socket.
        const pipelined = flow.queued > 0 || framer.pending > 0;
        const verdict = startTlsVerdict({ secure, malformed: update.malformed, pipelined, context: secureContext });
        if (!verdict.ok) {
          send(encodeExtendedResponse(update.messageId, RESULT_CODES[verdict.code], verdict.message, START_TLS_OID));
          return done();
        }
        // Nothing is queued behind it: read no more in the clear (what arrives
        // now is the client's TLS handshake, read by TLS) and begin TLS once
        // the response, and all before it, has gone out.
        sock.pause();
        sock.removeListener('data', onData);
        sock.write(encodeExtendedResponse(update.messageId, RESULT_CODES.success, '', START_TLS_OID), (err) => {
          if (err || sock.destroyed) return;
          const tlsSock = upgradeToTls(sock, secureContext!, hurried.has(sock) ? busyIdleMs : idleMs, onData, session.log);
          idleTimers.set(sock, (ms) => tlsSock.setTimeout(ms));
          watchWrites(); // upgradeToTls redirected sock.write to the TLS socket
          flow.setStreams(tlsSock, tlsSock);
          secure = true;
          done();
        });
        return;
      }
      if (update) {
        let answered = false;
        return answerUpdate(ctx, session, update, (b) => {
          send(b);
          if (!answered) {
            answered = true;
            done();
          }
        });
      }
      const odd = undecodedUpdate(pdu);
      if (odd) {
        send(encodeLdapResult(odd.messageId, OPERATIONS[odd.op].responseTag, RESULT_CODES.protocolError, '', 'malformed request'));
        return done();
      }
      const sasl = saslBindId(pdu);
      if (sasl !== undefined) {
        session.identity = ANONYMOUS; // RFC 4511 §4.2.1: a bind, even a failed one, resets the session
        send(encodeLdapResult(sasl, 0x61, RESULT_CODES.authMethodNotSupported, '', 'SASL is not offered; use a simple bind'));
        return done();
      }
      // Controls ldapjs would choke on, or answer wrongly, are settled first (controls.ts).
      const screened = screenControls(pdu);
      if ('reply' in screened) {
        send(screened.reply);
        return done();
      }
      // Everything else goes to ldapjs. Unbind and Abandon get no response (RFC 4511 §4.3, §4.11).
      const head = messageHead(screened.pdu);
      const silent = head.op.tag === 0x42 || head.op.tag === 0x50;
      if (!silent) awaiting = { id: head.id, done };
      try {
        sock.parser!.write(screened.pdu);
      } catch (e) {
        awaiting = undefined;
        session.log.warn({ err: e }, 'ldapjs parser threw');
        disconnect('malformed request');
        return;
      }
      if (silent) done();
    };

    const flow = new RequestFlow(sock, sock, flowLimits, oplog ? oplog.handler(handle) : handle, (err) => {
      session.log.error({ err }, 'ldap request handling failed');
      disconnect('internal error');
    }, (paused) => {
      // The client cannot send while we do not read: its PDU deadline waits too.
      if (paused) clearPduTimer();
      else armPduTimer(true);
    });
    flows.add(flow);
    sock.once('close', () => {
      flows.delete(flow);
      flow.close();
      awaiting = undefined;
      oplog?.closed();
    });

    const onData = (chunk: Buffer) => {
      let pdus: Buffer[];
      try {
        pdus = framer.push(chunk);
      } catch (e) {
        clearPduTimer();
        disconnect(e instanceof FramingError ? e.message : 'framing failure');
        return;
      }
      armPduTimer(pdus.length > 0);
      if (pdus.length) flow.push(pdus);
    };
    sock.on('data', onData);
  };

  server = ldap.createServer({ log: ldapjsLogger(log), connectionRouter });
  // ldapjs re-emits parser errors on the server; without a listener they would crash the process.
  server.on('error', (err: Error) => log.debug({ err: err.message }, 'ldap protocol error'));
  server.on('clientError', (err: Error) => log.debug({ err: err.message }, 'ldap client error'));

  directory.announce({
    supportedControl: SUPPORTED_CONTROLS,
    supportedExtension: [WHOAMI_OID, PASSWORD_MODIFY_OID, ...(secureContext ? [START_TLS_OID] : []), ...(opts.provisioner ? [PROVISION_DOMAIN_OID] : [])],
    supportedFeatures: SUPPORTED_FEATURES,
  });

  // Middleware first: _mount copies the chain at mount time.
  server.use(criticalControls);
  server.bind('', bindHandler(ctx));
  server.search('', searchHandler(ctx));
  server.exop(WHOAMI_OID, whoAmIHandler());
  if (opts.provisioner) server.exop(PROVISION_DOMAIN_OID, provisionHandler(opts.provisioner));

  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  log.info({ port }, 'ldap listening');

  return {
    port,
    stats: () => {
      const st: LdapStats = { connections: sockets.size, ...counters, queuedRequests: 0, queuedBytes: 0, pausedConnections: 0, bufferedOutput: 0 };
      for (const f of flows) {
        st.queuedRequests += f.queued;
        st.queuedBytes += f.queuedBytes;
        st.pausedConnections += f.paused ? 1 : 0;
        st.bufferedOutput += f.bufferedOutput;
      }
      return st;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}
