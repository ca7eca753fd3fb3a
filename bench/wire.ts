/**
 * A lean raw-BER LDAP client for the load generator.
 *
 * It encodes only what the benchmarks send (BindRequest, AddRequest,
 * ModifyRequest, DelRequest, an equality SearchRequest, UnbindRequest) and parses responses only enough to
 * find each LDAPMessage, its messageID, its protocolOp tag and, for LDAPResult
 * responses, the resultCode (RFC 4511 §4.1.9). Nothing is decoded into
 * objects; the search path writes one small buffer per request and reads
 * responses in place, so the generator costs a few microseconds per search.
 */
import * as net from 'node:net';
import { integerContent, tlv as berTlv } from '../server/ber';

/** protocolOp tags of the responses we look at (RFC 4511 §4.2-§4.12). */
export const OP = {
  bindResponse: 0x61,
  searchResultEntry: 0x64,
  searchResultDone: 0x65,
  searchResultReference: 0x73,
  modifyResponse: 0x67,
  addResponse: 0x69,
  delResponse: 0x6b,
  extendedResponse: 0x78,
} as const;

const RESULT_OPS = new Set([0x61, 0x65, 0x67, 0x69, 0x6b, 0x6d, 0x6f, 0x78]);

// ------------------------------------------------------------------ encoding

/** One TLV with definite length (X.690 §8.1.3): the server's encoder, with the content given in parts. */
export function tlv(tag: number, ...content: Buffer[]): Buffer {
  return berTlv(tag, content.length === 1 ? content[0] : Buffer.concat(content));
}

export const int = (n: number, tag = 0x02): Buffer => tlv(tag, integerContent(n));
export const octets = (s: string | Buffer, tag = 0x04): Buffer => tlv(tag, typeof s === 'string' ? Buffer.from(s, 'utf8') : s);

/** LDAPMessage envelope (RFC 4511 §4.1.1). */
export function message(msgId: number, op: Buffer): Buffer {
  return tlv(0x30, int(msgId), op);
}

/** Simple BindRequest, LDAP v3 (RFC 4511 §4.2). */
export function bindRequest(msgId: number, dn: string, password: string): Buffer {
  return message(msgId, tlv(0x60, int(3), octets(dn), octets(password, 0x80)));
}

/** UnbindRequest (RFC 4511 §4.3). */
export function unbindRequest(msgId: number): Buffer {
  return message(msgId, Buffer.from([0x42, 0x00]));
}

/** An entry to add: DN and (type, values) pairs. */
export interface AddEntry {
  dn: string;
  attrs: [string, string[]][];
}

/** The AddRequest protocolOp (RFC 4511 §4.7); wrap with {@link message}. */
export function addRequestOp(e: AddEntry): Buffer {
  const attrs = e.attrs.map(([t, vs]) => tlv(0x30, octets(t), tlv(0x31, ...vs.map((v) => octets(v)))));
  return tlv(0x68, octets(e.dn), tlv(0x30, ...attrs));
}

/** One modification of a ModifyRequest (RFC 4511 §4.6): operation, attribute type, values. */
export interface Modification {
  op: 'add' | 'delete' | 'replace';
  type: string;
  values: string[];
}

const MOD_OPS = { add: 0, delete: 1, replace: 2 } as const;

/** The ModifyRequest protocolOp (RFC 4511 §4.6); wrap with {@link message}. */
export function modifyRequestOp(dn: string, changes: Modification[]): Buffer {
  const items = changes.map((c) =>
    tlv(0x30, tlv(0x0a, Buffer.from([MOD_OPS[c.op]])), tlv(0x30, octets(c.type), tlv(0x31, ...c.values.map((v) => octets(v))))),
  );
  return tlv(0x66, octets(dn), tlv(0x30, ...items));
}

/** The DelRequest protocolOp (RFC 4511 §4.8): the DN as the primitive [APPLICATION 10]; wrap with {@link message}. */
export function delRequestOp(dn: string): Buffer {
  return octets(dn, 0x4a);
}

/** Writes a definite length at `off`; returns the new offset. */
function putLen(b: Buffer, off: number, n: number): number {
  if (n < 0x80) {
    b[off] = n;
    return off + 1;
  }
  if (n < 0x100) {
    b[off] = 0x81;
    b[off + 1] = n;
    return off + 2;
  }
  b[off] = 0x82;
  b[off + 1] = n >> 8;
  b[off + 2] = n & 0xff;
  return off + 3;
}

const lenLen = (n: number): number => (n < 0x80 ? 1 : n < 0x100 ? 2 : 3);
const intLen = (n: number): number => (n < 0x80 ? 1 : n < 0x8000 ? 2 : n < 0x800000 ? 3 : 4);

/**
 * Encoder for `(attr=value)` searches: everything but the messageID and the
 * assertion value is encoded once; `encode` patches those two in one buffer.
 * Requests all user attributes (empty attribute list), no limits, no aliases.
 */
export class EqualitySearchEncoder {
  private readonly head: Buffer; // baseObject .. typesOnly
  private readonly filterAttr: Buffer; // 04 len attr
  private static readonly TAIL = Buffer.from([0x30, 0x00]); // attributes: none = all user attributes

  constructor(base: string, attr: string, scope: 0 | 1 | 2 = 2) {
    this.head = Buffer.concat([
      octets(base),
      Buffer.from([0x0a, 0x01, scope]), // scope
      Buffer.from([0x0a, 0x01, 0x00]), // derefAliases: never
      Buffer.from([0x02, 0x01, 0x00]), // sizeLimit 0
      Buffer.from([0x02, 0x01, 0x00]), // timeLimit 0
      Buffer.from([0x01, 0x01, 0x00]), // typesOnly FALSE
    ]);
    this.filterAttr = octets(attr);
  }

  /** One SearchRequest LDAPMessage for `value` (value under 64 KiB). */
  encode(msgId: number, value: Buffer): Buffer {
    const vlen = value.length;
    const avaLen = this.filterAttr.length + 1 + lenLen(vlen) + vlen;
    const filterLen = 1 + lenLen(avaLen) + avaLen; // [3] equalityMatch, constructed 0xa3
    const opLen = this.head.length + filterLen + 2;
    const idLen = intLen(msgId);
    const msgLen = 2 + idLen + 1 + lenLen(opLen) + opLen;
    const b = Buffer.allocUnsafe(1 + lenLen(msgLen) + msgLen);
    let o = 0;
    b[o++] = 0x30;
    o = putLen(b, o, msgLen);
    b[o++] = 0x02;
    b[o++] = idLen;
    for (let i = idLen - 1; i >= 0; i--) b[o++] = (msgId >>> (8 * i)) & 0xff;
    b[o++] = 0x63;
    o = putLen(b, o, opLen);
    o += this.head.copy(b, o);
    b[o++] = 0xa3;
    o = putLen(b, o, avaLen);
    o += this.filterAttr.copy(b, o);
    b[o++] = 0x04;
    o = putLen(b, o, vlen);
    o += value.copy(b, o);
    b[o++] = 0x30;
    b[o++] = 0x00;
    return b;
  }
}

// ------------------------------------------------------------------ decoding

/** Called once per response LDAPMessage; `code` is -1 for non-LDAPResult ops. */
export type PduHandler = (msgId: number, op: number, code: number, pdu: Buffer, opOff: number, end: number) => void;

/** Reads a definite length at `p`: [length, offset after it], or undefined when incomplete. */
function readLen(b: Buffer, p: number, n: number): [number, number] | undefined {
  if (p >= n) return undefined;
  const first = b[p];
  if (first < 0x80) return [first, p + 1];
  const k = first & 0x7f;
  if (k === 0 || k > 4) throw new Error(`bad BER length octet 0x${first.toString(16)}`);
  if (p + 1 + k > n) return undefined;
  let len = 0;
  for (let i = 0; i < k; i++) len = len * 256 + b[p + 1 + i];
  return [len, p + 1 + k];
}

/** matchedDN and diagnosticMessage of an LDAPResult, for error reports. */
export function resultText(pdu: Buffer, opOff: number, end: number): string {
  try {
    let [, p] = readLen(pdu, opOff + 1, end)!;
    p += 3; // resultCode ENUMERATED, one octet
    const [mLen, mp] = readLen(pdu, p + 1, end)!;
    const matched = pdu.toString('utf8', mp, mp + mLen);
    const [dLen, dp] = readLen(pdu, mp + mLen + 1, end)!;
    const diag = pdu.toString('utf8', dp, dp + dLen);
    return `${diag}${matched ? ` (matched ${matched})` : ''}`;
  } catch {
    return '';
  }
}

/** A connection that cuts the response stream into LDAPMessages and hands them to `handler`. */
export class WireConn {
  handler: PduHandler = () => undefined;
  private rest: Buffer | null = null;
  private closed = false;
  private failure: ((e: Error) => void) | undefined;
  /** The last messageID {@link request} used (bind uses 1). */
  private msgId = 1;

  private constructor(readonly sock: net.Socket) {
    sock.on('data', (chunk: Buffer) => this.onData(chunk));
    sock.on('error', (e) => this.fail(e));
    sock.on('close', () => {
      if (!this.closed) this.fail(new Error('connection closed by the server'));
    });
  }

  /** Connects to host:port with Nagle off. */
  static connect(port: number, host = '127.0.0.1'): Promise<WireConn> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ port, host, noDelay: true });
      sock.once('connect', () => {
        sock.off('error', reject);
        resolve(new WireConn(sock));
      });
      sock.once('error', reject);
    });
  }

  /** Registers the callback for a transport or protocol failure (one at most). */
  onFailure(f: (e: Error) => void): void {
    this.failure = f;
  }

  private fail(e: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.sock.destroy();
    if (this.failure) this.failure(e);
  }

  private onData(chunk: Buffer): void {
    const b = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    const n = b.length;
    let off = 0;
    try {
      while (off < n) {
        if (b[off] !== 0x30) throw new Error(`response does not start with SEQUENCE (0x${b[off].toString(16)})`);
        const l = readLen(b, off + 1, n);
        if (!l) break;
        const end = l[1] + l[0];
        if (end > n) break;
        let p = l[1];
        if (b[p] !== 0x02) throw new Error('response without messageID');
        const idLen = b[p + 1];
        let id = 0;
        for (let i = 0; i < idLen; i++) id = id * 256 + b[p + 2 + i];
        p += 2 + idLen;
        const op = b[p];
        let code = -1;
        if (RESULT_OPS.has(op)) {
          const ol = readLen(b, p + 1, end)!;
          if (b[ol[1]] === 0x0a) code = b[ol[1] + 2];
        }
        this.handler(id, op, code, b, p, end);
        off = end;
      }
    } catch (e) {
      this.fail(e as Error);
      return;
    }
    this.rest = off < n ? b.subarray(off) : null;
  }

  /** Sends a request (already encoded). */
  write(b: Buffer): void {
    this.sock.write(b);
  }

  /** Simple bind; rejects unless the server answers success. */
  bind(dn: string, password: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.onFailure(reject);
      this.handler = (id, op, code, pdu, opOff, end) => {
        if (op !== OP.bindResponse) return reject(new Error(`unexpected response 0x${op.toString(16)} to bind`));
        if (code !== 0) return reject(new Error(`bind as ${dn} failed: resultCode ${code} ${resultText(pdu, opOff, end)}`));
        resolve();
      };
      this.write(bindRequest(1, dn, password));
    });
  }

  /**
   * Sends one request `op` (a protocolOp: addRequestOp, modifyRequestOp,
   * delRequestOp) and resolves when its `response` (an OP tag) says success;
   * rejects with `what` and the server's resultCode and diagnostic otherwise.
   * One request at a time on the connection.
   */
  request(op: Buffer, response: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.onFailure(reject);
      this.handler = (_id, tag, code, pdu, opOff, end) => {
        if (tag !== response) return reject(new Error(`${what}: unexpected response 0x${tag.toString(16)}`));
        if (code !== 0) return reject(new Error(`${what}: resultCode ${code} ${resultText(pdu, opOff, end)}`));
        resolve();
      };
      this.write(message(++this.msgId, op));
    });
  }

  /** Unbinds and closes. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sock.end(unbindRequest(0x7fffffff));
    setTimeout(() => this.sock.destroy(), 1000).unref();
  }
}
