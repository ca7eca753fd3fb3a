/**
 * An LDAP client connection (RFC 4511) to a directory: `ldap://` or
 * `ldaps://`, StartTLS when asked (RFC 4511 §4.14), simple bind, search,
 * extended operations, and the long-running searches Content Sync uses
 * (sync.ts). Responses are cut and validated by ldap-framing.ts, the
 * endpoint's own hardened framer, and decoded by protocol.ts over
 * server/ber.ts.
 *
 * Limits, so that a misbehaving directory cannot grow our memory or stall
 * us: a PDU larger than `maxPdu` or nested deeper than `maxDepth` closes
 * the connection; a search collects at most `maxEntries` entries; connect
 * and every operation but a streamed one have a timeout; TCP keep-alive
 * notices a directory that vanished while idle. Any failure of the
 * connection fails every operation on it with the same error and emits
 * 'close' once; the caller makes a new connection (sync.ts does, with
 * back-off).
 */
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { FramingError, PduFramer } from '../ldap-framing';
import {
  decodeEntry,
  decodeExtendedResponse,
  decodeResponse,
  decodeResult,
  encodeAbandon,
  encodeExtended,
  encodeMessage,
  encodeSearch,
  encodeSimpleBind,
  LdapResultError,
  NOTICE_OF_DISCONNECTION_OID,
  ProtocolError,
  RESULT,
  START_TLS_OID,
  UNBIND_REQUEST,
  type Entry,
  type LdapResult,
  type Response,
  type SearchRequest,
} from './protocol';

/** Where and how to reach the directory. */
export interface ClientOptions {
  /** `ldap://host[:port]` (389) or `ldaps://host[:port]` (636); a path or query is ignored. */
  url: string;
  /** Upgrade an `ldap://` connection with StartTLS before anything else is sent. */
  startTls?: boolean;
  /** TLS settings for ldaps:// and StartTLS (ca to trust a private CA; servername defaults to the URL's host). */
  tls?: tls.ConnectionOptions;
  /** Milliseconds to establish the connection (TCP, TLS, StartTLS). Default 5000. */
  connectTimeoutMs?: number;
  /** Milliseconds an operation may wait for its response. Default 10000. */
  operationTimeoutMs?: number;
  /** Largest response PDU accepted, in bytes. Default 16 MiB. */
  maxPdu?: number;
  /** Deepest BER nesting accepted. Default 32. */
  maxDepth?: number;
}

/** The parts of a directory URL (RFC 4516 §2, scheme host and port only). */
export interface DirectoryUrl {
  secure: boolean;
  host: string;
  port: number;
}

/** Parses `ldap://host[:port]` / `ldaps://host[:port]`; anything else is a TypeError naming what is wrong. */
export function parseDirectoryUrl(url: string): DirectoryUrl {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TypeError(`'${url}' is not a URL`);
  }
  if (u.protocol !== 'ldap:' && u.protocol !== 'ldaps:') throw new TypeError(`'${url}' is not an ldap:// or ldaps:// URL`);
  if (!u.hostname) throw new TypeError(`'${url}' names no host`);
  if (u.username || u.password) throw new TypeError(`'${url}' carries credentials; give the bind DN and password separately`);
  const secure = u.protocol === 'ldaps:';
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  return { secure, host, port: u.port ? Number(u.port) : secure ? 636 : 389 };
}

/**
 * Resolves with `s` once it emits `event` (connected, or the TLS handshake
 * done); rejects on its error, or after `timeoutMs` (`what` names it), the
 * socket then destroyed.
 */
function established<S extends net.Socket>(s: S, event: 'connect' | 'secureConnect', timeoutMs: number, what: string): Promise<S> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      s.destroy();
      reject(new TimeoutError(`${what} within ${timeoutMs} ms`));
    }, timeoutMs);
    s.once(event, () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** The connection is gone (closed by either side, or failed). */
export class ConnectionClosedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConnectionClosedError';
  }
}

/** An operation's answer did not come in time; the connection is closed with it. */
export class TimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TimeoutError';
  }
}

/** What a streamed operation receives, message by message. */
export interface Stream {
  /** A response other than the final one (entries, references, intermediate responses). */
  message(r: Response): void;
  /** The final response (SearchResultDone...): the operation is over. */
  done(r: Response): void;
  /** The connection failed before the final response. */
  error(e: Error): void;
}

interface Pending {
  stream: Stream;
  /** The final response's tag. */
  finalTag: number;
  timer?: NodeJS.Timeout;
}

/** Collected answer of a search. */
export interface SearchResult {
  entries: Entry[];
  result: LdapResult;
}

/**
 * One connection. Make it with {@link connectClient}; it is established
 * (and upgraded, when StartTLS is asked) by then. Events: 'close' (error?:
 * Error) once, when the connection ends for any reason.
 */
export class LdapClient extends EventEmitter {
  private socket: net.Socket;
  private readonly framer: PduFramer;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closedWith: Error | undefined;
  private readonly operationTimeoutMs: number;

  private constructor(socket: net.Socket, private readonly opts: ClientOptions) {
    super();
    this.socket = socket;
    this.framer = new PduFramer({ maxPdu: opts.maxPdu ?? 16 * 1024 * 1024, maxDepth: opts.maxDepth ?? 32 });
    this.operationTimeoutMs = opts.operationTimeoutMs ?? 10_000;
    this.attach(socket);
  }

  /** Opens a connection as `opts` says (see {@link connectClient}). */
  static async open(opts: ClientOptions): Promise<LdapClient> {
    const url = parseDirectoryUrl(opts.url);
    const timeoutMs = opts.connectTimeoutMs ?? 5000;
    const tlsOptions = { servername: net.isIP(url.host) ? undefined : url.host, ...opts.tls };
    const socket = await established(
      url.secure ? tls.connect({ host: url.host, port: url.port, ...tlsOptions }) : net.connect({ host: url.host, port: url.port }),
      url.secure ? 'secureConnect' : 'connect', timeoutMs, `no connection to ${opts.url}`);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    const client = new LdapClient(socket, opts);
    if (opts.startTls && !url.secure) {
      try {
        await client.startTls(tlsOptions, timeoutMs);
      } catch (e) {
        client.destroy(e as Error);
        throw e;
      }
    }
    return client;
  }

  /** Whether the connection is still usable. */
  get open(): boolean {
    return this.closedWith === undefined;
  }

  /** Whether the connection is protected by TLS (ldaps:// or StartTLS). */
  get secure(): boolean {
    return this.socket instanceof tls.TLSSocket;
  }

  private attach(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (e) => this.destroy(e));
    socket.on('close', () => this.destroy(new ConnectionClosedError('the directory closed the connection')));
  }

  private onData(chunk: Buffer): void {
    let pdus: Buffer[];
    try {
      pdus = this.framer.push(chunk);
    } catch (e) {
      return this.destroy(e instanceof FramingError ? new ProtocolError(`bad PDU from the directory: ${e.message}`) : (e as Error));
    }
    for (const pdu of pdus) {
      if (!this.open) return;
      try {
        this.dispatch(decodeResponse(pdu));
      } catch (e) {
        // A decoder met a shape it cannot read, or a handler threw: the stream can no longer be trusted.
        return this.destroy(e instanceof ProtocolError ? e : new ProtocolError(`cannot read a response: ${(e as Error).message}`));
      }
    }
  }

  private dispatch(r: Response): void {
    if (r.id === 0) {
      // RFC 4511 §4.4: an unsolicited notification; the only one defined (§4.4.1) ends the connection.
      const x = r.tag === 0x78 ? decodeExtendedResponse(r) : undefined;
      const why = x?.name === NOTICE_OF_DISCONNECTION_OID ? `notice of disconnection (${x.code}${x.diagnostic ? `: ${x.diagnostic}` : ''})` : 'unsolicited notification';
      return this.destroy(new ConnectionClosedError(`the directory sent a ${why}`));
    }
    const p = this.pending.get(r.id);
    if (!p) return; // an answer to an abandoned operation (RFC 4511 §4.11: may still arrive)
    if (r.tag === p.finalTag) {
      this.pending.delete(r.id);
      if (p.timer) clearTimeout(p.timer);
      p.stream.done(r);
    } else {
      p.stream.message(r);
    }
  }

  /**
   * Sends `op` (with request `controls`) and streams its responses until the
   * one tagged `finalTag`. `timeoutMs` 0 means none (a persistent search);
   * past a timeout the connection is closed. Returns the messageID.
   */
  stream(op: Buffer, finalTag: number, stream: Stream, controls: Buffer[] = [], timeoutMs = this.operationTimeoutMs): number {
    if (this.closedWith) {
      const e = this.closedWith;
      queueMicrotask(() => stream.error(e));
      return 0;
    }
    const id = this.messageId();
    const p: Pending = { stream, finalTag };
    if (timeoutMs > 0) {
      p.timer = setTimeout(() => this.destroy(new TimeoutError(`no answer from the directory within ${timeoutMs} ms`)), timeoutMs);
    }
    this.pending.set(id, p);
    this.socket.write(encodeMessage(id, op, controls));
    return id;
  }

  /** The next messageID (RFC 4511 §4.1.1.1: 1..2^31-1, 0 is the server's unsolicited notifications). */
  private messageId(): number {
    const id = this.nextId;
    this.nextId = id >= 0x7fffffff ? 1 : id + 1;
    return id;
  }

  /** Sends `op` and resolves with its one response (tag `finalTag`). */
  private request(op: Buffer, finalTag: number): Promise<Response> {
    return new Promise((resolve, reject) => {
      this.stream(op, finalTag, { message: () => undefined, done: resolve, error: reject });
    });
  }

  /** Simple bind (RFC 4511 §4.2); rejects with LdapResultError (49 for bad credentials). */
  async bind(dn: string, password: string): Promise<void> {
    const r = decodeResult(await this.request(encodeSimpleBind(dn, password), 0x61));
    if (r.code !== RESULT.success) throw new LdapResultError(r.code, r.diagnostic, r.matchedDN);
  }

  /**
   * A search (RFC 4511 §4.5), collecting at most `maxEntries` entries (more
   * abandon it and reject). noSuchObject resolves with no entries; another
   * non-success result rejects with LdapResultError.
   */
  search(req: SearchRequest, maxEntries = 1000): Promise<SearchResult> {
    return new Promise((resolve, reject) => {
      const entries: Entry[] = [];
      let failed = false;
      const id = this.stream(encodeSearch({ ...req, sizeLimit: req.sizeLimit ?? maxEntries + 1 }), 0x65, {
        message: (r) => {
          if (r.tag !== 0x64 || failed) return; // references (§4.5.3) are not followed
          if (entries.length >= maxEntries) {
            failed = true;
            this.abandon(id);
            reject(new LdapResultError(RESULT.sizeLimitExceeded, `more than ${maxEntries} entries`));
            return;
          }
          entries.push(decodeEntry(r));
        },
        done: (r) => {
          if (failed) return;
          const result = decodeResult(r);
          if (result.code === RESULT.success || result.code === RESULT.noSuchObject) resolve({ entries, result });
          else reject(new LdapResultError(result.code, result.diagnostic, result.matchedDN));
        },
        error: (e) => !failed && reject(e),
      });
    });
  }

  /** An extended operation (RFC 4511 §4.12); a non-success result rejects with LdapResultError. */
  async extended(oid: string, value?: Buffer): Promise<{ name?: string; value?: Buffer }> {
    const r = decodeExtendedResponse(await this.request(encodeExtended(oid, value), 0x78));
    if (r.code !== RESULT.success) throw new LdapResultError(r.code, r.diagnostic, r.matchedDN);
    return { name: r.name, value: r.value };
  }

  /** Abandons operation `id` (RFC 4511 §4.11): no response; later answers to it are dropped. */
  abandon(id: number): void {
    const p = this.pending.get(id);
    if (!p || !this.open) return;
    this.pending.delete(id);
    if (p.timer) clearTimeout(p.timer);
    this.socket.write(encodeMessage(this.messageId(), encodeAbandon(id)));
  }

  /**
   * StartTLS (RFC 4511 §4.14): the extended operation, then the TLS
   * handshake over the same socket; nothing else may be outstanding.
   */
  private async startTls(options: tls.ConnectionOptions, timeoutMs: number): Promise<void> {
    await this.extended(START_TLS_OID);
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('error');
    plain.removeAllListeners('close');
    const secure = await established(tls.connect({ ...options, socket: plain }), 'secureConnect', timeoutMs, 'no TLS handshake').catch((e: Error) => {
      plain.destroy();
      throw e;
    });
    this.socket = secure;
    this.attach(secure);
  }

  /** Ends the connection politely (UnbindRequest, RFC 4511 §4.3); pending operations fail. */
  close(): void {
    if (!this.open) return;
    this.socket.end(encodeMessage(this.messageId(), UNBIND_REQUEST));
    this.destroy(new ConnectionClosedError('the connection was closed'));
  }

  /** Ends the connection at once, failing every pending operation with `err`; emits 'close' once. */
  destroy(err: Error): void {
    if (this.closedWith) return;
    this.closedWith = err;
    this.socket.destroy();
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) {
      if (p.timer) clearTimeout(p.timer);
      p.stream.error(err);
    }
    this.emit('close', err);
  }
}

/** Opens a client connection: TCP or TLS, then StartTLS when `opts.startTls`. Rejects on failure or after the connect timeout. */
export function connectClient(opts: ClientOptions): Promise<LdapClient> {
  return LdapClient.open(opts);
}
