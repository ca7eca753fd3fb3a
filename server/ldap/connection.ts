/**
 * One LDAP connection, from its accepted socket to its close.
 *
 * Bytes are cut into PDUs by the framing (ldap-framing.ts: size and nesting
 * limits, the RFC 4511 structure checked at the level of tags), queued and
 * answered in order by the flow (flow.ts), and each request is dispatched by
 * its protocolOp tag (request-decode.ts's REQUESTS) to the handler of its
 * operation, one module each: bind.ts, unbind.ts, search.ts, modify.ts,
 * add.ts, delete.ts, modifydn.ts, compare.ts, abandon.ts, extended.ts
 * (StartTLS in starttls.ts). Before a handler runs, a critical control the
 * operation does not support is refused (controls.ts).
 *
 * An operation may outlive its request (a Content Sync persistent search,
 * sync.ts): it is kept in `longOperations` by message ID, where Abandon and
 * Cancel find it, it holds the idle timeout off (`hold`), and the
 * connection's close stops it.
 *
 * A framing error, or a protocolOp that is not a request, ends the
 * connection with a Notice of Disconnection (RFC 4511 §4.1.1, §4.4.1).
 * Every response goes through `write`, and every request through the
 * flow's handler: the operation log (operation-log.ts, debug level only)
 * hooks on those two points, and the operation counts of GET /metrics
 * (op-counts.ts) on the dispatch and on each response written.
 */
import type * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import type * as tls from 'node:tls';
import type { LdapContext, LdapRequest, LongOperation, OperationHandler, RequestConnection } from './context';
import { FramingError, noticeOfDisconnection, PduFramer, type FramingLimits } from '../ldap-framing';
import { RequestFlow, type FlowLimits } from './flow';
import { newSession, type Session } from './session';
import { OperationLog, type SecretTest } from './operation-log';
import type { LdapOperationCounts } from './op-counts';
import { envelope, requestKind, type RequestTag } from './request-decode';
import { unsupportedCritical } from './controls';
import { encodeLdapResult } from '../ber';
import { replyMalformed, RESULT_CODES } from './results';
import { upgradeToTls } from './starttls';
import { answerBind } from './bind';
import { answerUnbind } from './unbind';
import { answerSearch } from './search';
import { answerModify } from './modify';
import { answerAdd } from './add';
import { answerDelete } from './delete';
import { answerModifyDn } from './modifydn';
import { answerCompare } from './compare';
import { answerAbandon } from './abandon';
import { answerExtended } from './extended';

/** The handler of each request, by protocolOp tag. */
const HANDLERS: Record<RequestTag, OperationHandler> = {
  0x60: answerBind,
  0x42: answerUnbind,
  0x63: answerSearch,
  0x66: answerModify,
  0x68: answerAdd,
  0x4a: answerDelete,
  0x6c: answerModifyDn,
  0x6e: answerCompare,
  0x50: answerAbandon,
  0x77: answerExtended,
};

/** What every connection of an endpoint shares. */
export interface ConnectionSettings {
  ctx: LdapContext;
  framing: FramingLimits;
  flow: FlowLimits;
  /** Milliseconds a client has to complete a PDU once its first byte has arrived; then the connection is closed. */
  pduTimeoutMs: number;
  /** Milliseconds of inactivity before the connection is closed (setIdleTimeout changes it). */
  idleMs: number;
  /** The password attributes, for the operation log. */
  secret: SecretTest;
  /** Told when the connection is closed for a PDU not completed in time. */
  onPduTimeout(): void;
  /** The endpoint's operation counts (op-counts.ts): every response written is shown to it. */
  counts: LdapOperationCounts;
}

/** How long a connection being closed may take to flush its last words before it is destroyed. */
const CLOSE_GRACE_MS = 1000;

/** One accepted connection (see the module comment). Closes itself; the endpoint watches the socket's 'close'. */
export class LdapConnection implements RequestConnection {
  readonly session: Session;
  /** The connection's request queue. */
  readonly flow: RequestFlow;
  /** What responses are written to and requests read from: the socket, or its TLS socket after StartTLS. */
  private stream: net.Socket | tls.TLSSocket;
  private readonly framer: PduFramer;
  private readonly oplog: OperationLog | undefined;
  private pduTimer: NodeJS.Timeout | undefined;
  private idleMs: number;
  private tlsUp = false;
  /** Holders of the connection's idle timeout (hold): while any, there is none. */
  private holds = 0;
  /** Chunks received so far: drain's measure of a quiet client. */
  private received = 0;
  /** The message ID of the request being timed (-1: none) and when it was dispatched (op-counts.ts). */
  private timedId = -1;
  private timedSince = 0;
  readonly longOperations = new Map<number, LongOperation>();
  /** Depth of cork(); while above 0, responses wait in `pending` (and their bytes in `pendingBytes`). */
  private corks = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly sock: net.Socket, private readonly settings: ConnectionSettings) {
    this.stream = sock;
    this.idleMs = settings.idleMs;
    this.session = newSession(sock.remoteAddress ?? '', settings.ctx.log);
    sock.setNoDelay(true); // without it every search waits for the peer's delayed ACK (~40 ms)
    sock.setTimeout(this.idleMs);
    sock.on('timeout', () => sock.destroy());
    sock.on('error', (err) => {
      this.session.log.debug({ err: err.message, remote: sock.remoteAddress }, 'ldap connection error');
      sock.destroy();
    });
    // The operation log (operation-log.ts) exists only at debug level: otherwise a connection pays nothing for it.
    this.oplog = this.session.log.isLevelEnabled('debug') ? new OperationLog(this.session, settings.secret, sock) : undefined;
    this.framer = new PduFramer(settings.framing);
    this.flow = new RequestFlow(sock, sock, settings.flow, this.oplog ? this.oplog.handler(this.handle) : this.handle, (err) => {
      this.session.log.error({ err }, 'ldap request handling failed');
      this.disconnect('internal error');
    }, (paused) => {
      // The client cannot send while we do not read: its PDU deadline waits too.
      if (paused) this.clearPduTimer();
      else this.armPduTimer(true);
    });
    sock.once('close', () => {
      for (const op of [...this.longOperations.values()]) op.stop('closed');
      this.longOperations.clear();
      this.clearPduTimer();
      this.flow.close();
      this.oplog?.closed();
    });
    sock.on('data', this.onData);
  }

  // ------------------------------------------------------------ RequestConnection

  write(pdu: Buffer): void {
    const s = this.stream;
    if (s.destroyed || !s.writable) return;
    if (this.corks > 0) {
      this.pending.push(pdu);
      this.pendingBytes += pdu.length;
    } else {
      s.write(pdu);
    }
    this.counted(pdu);
    this.oplog?.sent(pdu);
  }

  /** Shows a response to the endpoint's operation counts. */
  private counted(pdu: Buffer): void {
    if (!this.settings.counts.response(pdu, this.timedId, this.timedSince)) this.timedId = -1;
  }

  /**
   * The responses written until the matching uncork go out as one buffer in
   * one write (a search's entries and its SearchResultDone): not the
   * stream's own cork, whose write of several chunks costs more per search
   * than the copy.
   */
  cork(): void {
    this.corks++;
  }

  uncork(): void {
    if (this.corks > 0 && --this.corks === 0) this.flush();
  }

  /** Writes what cork held back (before anything else is written to the stream, or it ends). */
  private flush(): void {
    const list = this.pending;
    if (list.length === 0) return;
    const bytes = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    const s = this.stream;
    if (s.destroyed || !s.writable) return;
    s.write(list.length === 1 ? list[0] : Buffer.concat(list, bytes));
  }

  get destroyed(): boolean {
    return this.stream.destroyed;
  }

  get backlog(): number {
    return this.stream.writableLength + this.pendingBytes;
  }

  hold(): () => void {
    if (this.holds++ === 0) this.stream.setTimeout(0);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.holds === 0 && !this.stream.destroyed) this.stream.setTimeout(this.idleMs);
    };
  }

  get secure(): boolean {
    return this.tlsUp;
  }

  get pipelined(): boolean {
    return this.flow.queued > 0 || this.framer.pending > 0;
  }

  startTls(response: Buffer, context: tls.SecureContext, done: () => void): void {
    const sock = this.sock;
    // Nothing is queued behind it (startTlsVerdict): read no more in the clear (what
    // arrives now is the client's TLS handshake, read by TLS) and begin TLS once the
    // response, and all before it, has gone out.
    sock.pause();
    sock.removeListener('data', this.onData);
    this.flush();
    sock.write(response, (err) => {
      if (err || sock.destroyed) return;
      const secure = upgradeToTls(sock, context, this.idleMs, this.onData, this.session.log);
      this.stream = secure;
      this.tlsUp = true;
      this.flow.setStreams(secure, secure);
      done();
    });
    this.counted(response);
    this.oplog?.sent(response);
  }

  end(): void {
    this.flow.close();
    this.stream.removeListener('data', this.onData);
    this.flush();
    this.stream.end();
    this.destroySoon();
  }

  // ------------------------------------------------------------ for the endpoint

  /** Sets the idle timeout (on the TLS socket after StartTLS). */
  setIdleTimeout(ms: number): void {
    this.idleMs = ms;
    if (this.holds === 0) this.stream.setTimeout(ms);
  }

  /** Closes the connection at once. */
  destroy(): void {
    this.stream.destroy();
  }

  /**
   * Drain (a stop or a reload, when the listener no longer accepts): keeps
   * serving the client until it closes, or until it has sent nothing for
   * `quietMs` with no request in progress, and only then shuts down. So a
   * client that has just connected, or is between the bind and the search
   * of its exchange, is answered rather than cut off. A connection holding
   * a long operation (a Content Sync persistent search) shuts down at once:
   * it never goes quiet. The caller bounds the whole (LdapEndpoint.close).
   */
  async drain(quietMs: number): Promise<void> {
    const stream = this.stream;
    const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()));
    while (!this.stream.destroyed && this.holds === 0) {
      await this.flow.whenIdle();
      const seen = this.received;
      await Promise.race([closed, new Promise<void>((resolve) => setTimeout(resolve, quietMs).unref())]);
      if (this.received === seen && !this.pipelined) break;
    }
    if (!this.stream.destroyed) await this.shutdown();
  }

  /**
   * Shutdown: reads no more requests, answers those already received, then
   * sends a Notice of Disconnection (RFC 4511 §4.4.1, unavailable) and closes.
   * Resolves once the connection is ending.
   */
  async shutdown(): Promise<void> {
    this.stream.removeListener('data', this.onData);
    this.clearPduTimer();
    await this.flow.whenIdle();
    this.flow.close();
    this.flush();
    if (!this.stream.destroyed) this.stream.end(noticeOfDisconnection(RESULT_CODES.unavailable, 'the server is shutting down'));
    this.destroySoon();
  }

  // ------------------------------------------------------------ inside

  /** Answers one framed request; `done` once its response is written (see flow.ts). */
  private readonly handle = (pdu: Buffer, done: () => void): void => {
    const { messageId, op, controls } = envelope(pdu);
    const kind = requestKind(op.tag);
    if (!kind) {
      // RFC 4511 §4.1.1: the tag of the protocolOp is not recognised as a request.
      this.disconnect(`protocolOp 0x${op.tag.toString(16)} is not a request`);
      return;
    }
    if (kind.responseTag === undefined) this.settings.counts.unanswered(op.tag);
    this.timedId = messageId;
    this.timedSince = performance.now();
    const req: LdapRequest = {
      pdu, messageId, controls: controls ?? [], session: this.session, conn: this, done,
      reply: (b) => {
        this.write(b);
        done();
      },
    };
    if (kind.responseTag !== undefined) {
      if (!controls) return replyMalformed(req, kind.responseTag);
      const bad = unsupportedCritical(kind.name, controls);
      if (bad) {
        return req.reply(encodeLdapResult(messageId, kind.responseTag, RESULT_CODES.unavailableCriticalExtension, '', `critical control ${bad} is not supported`));
      }
    }
    // This thread's views follow the change clock before any operation is answered.
    this.settings.ctx.directory.sync();
    HANDLERS[op.tag as RequestTag](this.settings.ctx, req);
  };

  private readonly onData = (chunk: Buffer): void => {
    this.received++;
    let pdus: Buffer[];
    try {
      pdus = this.framer.push(chunk);
    } catch (e) {
      this.clearPduTimer();
      this.disconnect(e instanceof FramingError ? e.message : 'framing failure');
      return;
    }
    this.armPduTimer(pdus.length > 0);
    if (pdus.length) this.flow.push(pdus);
  };

  /**
   * A PDU must be complete within pduTimeout of its first byte, or the
   * connection is closed: a client may not hold a half-sent request (up to
   * maxPdu bytes buffered) for the whole idle timeout.
   */
  private armPduTimer(completed: boolean): void {
    if (completed || this.framer.pending === 0) this.clearPduTimer(); // a partial PDU now began in this chunk
    if (this.framer.pending === 0 || this.pduTimer) return;
    this.pduTimer = setTimeout(() => {
      this.settings.onPduTimeout();
      this.session.log.info({ remote: this.sock.remoteAddress, pending: this.framer.pending }, 'ldap connection dropped: request not completed in time');
      this.destroy();
    }, this.settings.pduTimeoutMs);
  }

  private clearPduTimer(): void {
    if (this.pduTimer) clearTimeout(this.pduTimer);
    this.pduTimer = undefined;
  }

  /** RFC 4511 §4.4.1: a Notice of Disconnection (protocolError) with `reason`, then the connection is closed (§5.3). */
  private disconnect(reason: string): void {
    this.session.log.info({ reason, remote: this.sock.remoteAddress }, 'ldap connection dropped');
    this.flow.close();
    this.stream.removeListener('data', this.onData);
    this.flush();
    if (!this.stream.destroyed) this.stream.end(noticeOfDisconnection(RESULT_CODES.protocolError, reason));
    this.destroySoon();
  }

  /** Destroys the connection if it is still open after CLOSE_GRACE_MS (a peer that does not close its side). */
  private destroySoon(): void {
    setTimeout(() => this.destroy(), CLOSE_GRACE_MS).unref();
  }
}
