/** What every LDAP operation handler is given. */
import type * as tls from 'node:tls';
import type { Directory } from '../directory/directory';
import type { DirectoryWriter } from '../directory/writes';
import type { Logger } from '../log';
import type { RequestControl } from './search-decode';
import type { Session } from './session';

/** The endpoint's services, shared by every connection. */
export interface LdapContext {
  /** Reads (search, compare, bind): this thread's directory, a reader or the writer's. */
  directory: Directory;
  /** Every write goes to the one writer as a command (writes.ts). */
  writer: DirectoryWriter;
  log: Logger;
  /** Serves the provisioning extended operation (a `provisionDomain` command) when true. */
  provisioning?: boolean;
  /** The certificate for StartTLS (RFC 4513 §3); without it StartTLS is unavailable (52). */
  tls?: tls.SecureContext;
  /**
   * Bytes of Content Sync messages (RFC 4533 persist phase) a connection may
   * have waiting to be sent: a consumer that falls further behind is
   * disconnected (sync.ts). Default DEFAULT_SYNC_BACKLOG.
   */
  syncBacklog?: number;
  /** The Content Sync consumers in their persist phase on this endpoint (sync.ts), for their lag (GET /metrics). */
  followers: Set<SyncFollower>;
}

/** A Content Sync consumer in its persist phase (RFC 4533 §3.4). */
export interface SyncFollower {
  /** Who it is bound as: a transfer unit identity (DCMX_UNIT_DNS), a replication identity (DCMX_REPLICATOR_DNS), or another. */
  readonly kind: 'unit' | 'replica' | 'consumer';
  /** When it began (ms since the epoch). */
  readonly since: number;
  /** The last change number sent to it. */
  position(): number;
  /** Bytes sent to it that it has not taken yet. */
  backlog(): number;
}

/**
 * An operation that goes on after its request is done (a Content Sync
 * persistent search, RFC 4533 refreshAndPersist), so that the connection
 * goes on reading requests: Abandon (RFC 4511 §4.11) and Cancel (RFC 3909)
 * stop it by its message ID, and so does the connection's end.
 */
export interface LongOperation {
  /** Ends it: 'cancel' answers it with canceled (118), 'abandon' and 'closed' with nothing. */
  stop(how: 'abandon' | 'cancel' | 'closed'): void;
}

/** Writes one response PDU to the requesting connection (dropped if it has closed). */
export type Reply = (pdu: Buffer) => void;

/** The connection a request came on, as its handler may use it (connection.ts). */
export interface RequestConnection {
  /** Writes one or more whole response messages; dropped once the connection is gone. */
  write(pdu: Buffer): void;
  /** Batches the writes until uncork (a search slice goes out in one write). */
  cork(): void;
  uncork(): void;
  /** True once the connection is gone: a long operation stops. */
  readonly destroyed: boolean;
  /** True once TLS is established on it (StartTLS). */
  readonly secure: boolean;
  /** True when the client has sent more than the request being handled. */
  readonly pipelined: boolean;
  /** Writes `response` in the clear, then begins TLS on the connection (RFC 4511 §4.14.2); `done` once TLS is set up. */
  startTls(response: Buffer, context: tls.SecureContext, done: () => void): void;
  /** Ends the connection: nothing more is read or answered (RFC 4511 §4.3). */
  end(): void;
  /** Bytes written but not yet handed to the kernel (a reader that does not keep up makes it grow). */
  readonly backlog: number;
  /** The operations still running after their request was done, by message ID (see LongOperation). */
  readonly longOperations: Map<number, LongOperation>;
  /** Suspends the idle timeout while an operation outlives its request (a quiet persistent search is not idle); returns the release. */
  hold(): () => void;
}

/** One request, as the connection hands it to the handler of its operation. */
export interface LdapRequest {
  /** The whole LDAPMessage, validated by ldap-framing.ts. */
  readonly pdu: Buffer;
  readonly messageId: number;
  /** Its controls; a critical one the operation does not support has already been refused (controls.ts). */
  readonly controls: RequestControl[];
  readonly session: Session;
  readonly conn: RequestConnection;
  /** Writes the operation's (last) response and completes the operation. */
  reply(pdu: Buffer): void;
  /** Completes the operation once its responses are written, or when none is due; the next request may start. */
  done(): void;
}

/** Answers one operation (one per module of this folder: bind.ts, search.ts, ...). Never throws on a client's input. */
export type OperationHandler = (ctx: LdapContext, req: LdapRequest) => void;
