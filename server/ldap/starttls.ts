/**
 * StartTLS (RFC 4511 §4.14, RFC 4513 §3): the connection's transport becomes
 * TLS after a successful StartTLS response, on the same socket.
 *
 * ldapjs and our own answerers write to the connection object ldapjs was
 * given (the raw socket). After the upgrade that object forwards writes,
 * ends and destroys to the TLS socket, whose decrypted data feeds the same
 * framing; the raw socket's handle belongs to TLS from then on.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Logger } from '../log';

/** What a StartTLS request gets (RFC 4511 §4.14.2). */
export type StartTlsVerdict =
  | { ok: true }
  | { ok: false; code: 'protocolError' | 'operationsError' | 'unavailable'; message: string };

/**
 * Whether a connection may start TLS now: not twice (operationsError), not
 * with a request value (protocolError), not with more requests already
 * sent behind it on the clear connection (operationsError: §4.14.1 asks the
 * client to wait for the response), and only when a certificate is loaded.
 */
export function startTlsVerdict(s: { secure: boolean; malformed: boolean; pipelined: boolean; context?: tls.SecureContext }): StartTlsVerdict {
  if (s.malformed) return { ok: false, code: 'protocolError', message: 'StartTLS takes no request value' };
  if (!s.context) return { ok: false, code: 'unavailable', message: 'TLS is not configured' };
  if (s.secure) return { ok: false, code: 'operationsError', message: 'TLS is already established' };
  if (s.pipelined) return { ok: false, code: 'operationsError', message: 'requests were sent behind StartTLS before its response' };
  return { ok: true };
}

/**
 * Wraps `sock` in server-side TLS and redirects the connection object's
 * write/end/destroy to it. `onData` receives the decrypted bytes.
 */
export function upgradeToTls(
  sock: net.Socket, context: tls.SecureContext, idleMs: number, onData: (chunk: Buffer) => void, log: Logger,
): tls.TLSSocket {
  sock.removeAllListeners('data');
  sock.setTimeout(0); // the TLS socket keeps the idle timer now: the raw one no longer sees the traffic
  const rawDestroy = sock.destroy.bind(sock);
  const secure = new tls.TLSSocket(sock, { isServer: true, secureContext: context });
  secure.setTimeout(idleMs);
  secure.on('timeout', () => secure.destroy());
  secure.on('data', onData);
  secure.on('error', (err) => {
    log.info({ err: err.message, remote: sock.remoteAddress }, 'ldap tls error');
    secure.destroy();
  });
  secure.on('close', () => rawDestroy());
  sock.write = secure.write.bind(secure) as typeof sock.write;
  sock.end = secure.end.bind(secure) as typeof sock.end;
  // TLS destroys its parent socket through this same method: end with the real one, or the
  // handle is never closed and the peer never sees the connection go.
  sock.destroy = (err?: Error) => {
    secure.destroy(err);
    return rawDestroy(err);
  };
  Object.defineProperty(sock, 'destroyed', { get: () => secure.destroyed, configurable: true });
  return secure;
}
