/**
 * StartTLS (RFC 4511 §4.14, RFC 4513 §3): the connection's transport becomes
 * TLS after a successful StartTLS response, on the same socket.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { LdapContext, LdapRequest } from './context';
import { encodeExtendedResponse } from '../ber';
import { RESULT_CODES } from './results';
import { START_TLS_OID } from './request-decode';
import type { Logger } from '../log';

/** What a StartTLS request gets (RFC 4511 §4.14.2). */
export type StartTlsVerdict =
  | { ok: true }
  | { ok: false; code: 'protocolError' | 'operationsError' | 'unavailable'; message: string };

/**
 * Whether a connection may start TLS now: not twice (operationsError), not
 * with a request value (protocolError), not with more requests already
 * sent behind it on the clear connection (operationsError: §4.14.1 asks the
 * client to wait for the response), not while an operation is outstanding
 * (a persistent search, sync.ts: operationsError, §4.14.1), and only when a
 * certificate is loaded.
 */
export function startTlsVerdict(s: {
  secure: boolean; malformed: boolean; pipelined: boolean; outstanding?: boolean; context?: tls.SecureContext;
}): StartTlsVerdict {
  if (s.malformed) return { ok: false, code: 'protocolError', message: 'StartTLS takes no request value' };
  if (!s.context) return { ok: false, code: 'unavailable', message: 'TLS is not configured' };
  if (s.secure) return { ok: false, code: 'operationsError', message: 'TLS is already established' };
  if (s.pipelined) return { ok: false, code: 'operationsError', message: 'requests were sent behind StartTLS before its response' };
  if (s.outstanding) return { ok: false, code: 'operationsError', message: 'an operation is outstanding (a persistent search)' };
  return { ok: true };
}

/**
 * Answers a StartTLS request (`withValue`: it carried a request value):
 * refused as startTlsVerdict says, or answered with success in the clear
 * (RFC 4511 §4.14.2: the response carries the request name), after which
 * TLS begins on the connection.
 */
export function answerStartTls(ctx: LdapContext, req: LdapRequest, withValue: boolean): void {
  const verdict = startTlsVerdict({
    secure: req.conn.secure, malformed: withValue, pipelined: req.conn.pipelined, outstanding: req.conn.longOperations.size > 0, context: ctx.tls,
  });
  if (!verdict.ok) {
    req.reply(encodeExtendedResponse(req.messageId, { code: RESULT_CODES[verdict.code], diagnostic: verdict.message }, START_TLS_OID));
    return;
  }
  req.conn.startTls(encodeExtendedResponse(req.messageId, { code: RESULT_CODES.success }, START_TLS_OID), ctx.tls!, req.done);
}

/**
 * Wraps `sock` in server-side TLS with the idle timeout `idleMs` (the raw
 * socket's is cleared: it no longer sees the traffic). `onData` receives the
 * decrypted bytes; a TLS error closes the connection. The raw socket's handle
 * belongs to TLS from then on.
 */
export function upgradeToTls(
  sock: net.Socket, context: tls.SecureContext, idleMs: number, onData: (chunk: Buffer) => void, log: Logger,
): tls.TLSSocket {
  sock.removeAllListeners('data');
  sock.setTimeout(0);
  const secure = new tls.TLSSocket(sock, { isServer: true, secureContext: context });
  secure.setTimeout(idleMs);
  secure.on('timeout', () => secure.destroy());
  secure.on('data', onData);
  secure.on('error', (err) => {
    log.info({ err: err.message, remote: sock.remoteAddress }, 'ldap tls error');
    secure.destroy();
  });
  secure.on('close', () => sock.destroy());
  return secure;
}
