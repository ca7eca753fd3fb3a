/**
 * The console's HTTP plumbing: JSON replies, JSON request bodies, the
 * security headers of every answer, and the one place where the
 * directory's typed errors become HTTP status codes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { DirectoryError, TooManyFailuresError, type ResultName } from '../../directory/errors';

/** Largest request body accepted, bytes. */
const MAX_BODY = 64 * 1024;

/**
 * Headers on every console answer: no framing (clickjacking), scripts and
 * styles from this origin only, nothing sniffed, no Referer sent out,
 * nothing cached (the pages and the API show live, private data).
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
});

/** An error the console answers with its own status and message. */
export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'HttpError';
  }
}

/** Sends `payload` as JSON with `status` (and extra headers). */
export function sendJson(res: ServerResponse, status: number, payload: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(payload) + '\n');
}

/**
 * The request's JSON body as an object. Changes must say
 * `Content-Type: application/json` (a cross-site HTML form cannot), and
 * send at most MAX_BODY bytes; anything else is a 400 / 413 / 415.
 */
export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json') throw new HttpError(415, 'send the body as application/json');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, `request body larger than ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  let v: unknown;
  try {
    v = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
  } catch {
    throw new HttpError(400, 'the body is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HttpError(400, 'the body must be a JSON object');
  return v as Record<string, unknown>;
}

/** The string field `name` of a body; a 400 naming it when absent (unless optional) or not a string. */
export function field(body: Record<string, unknown>, name: string): string;
export function field(body: Record<string, unknown>, name: string, optional: true): string | undefined;
export function field(body: Record<string, unknown>, name: string, optional = false): string | undefined {
  const v = body[name];
  if (v === undefined || v === null || v === '') {
    if (optional) return undefined;
    throw new HttpError(400, `${name} is required`);
  }
  if (typeof v !== 'string') throw new HttpError(400, `${name} must be a string`);
  return v;
}

/** HTTP status for each directory result (RFC 4511 result names): the console's one conversion. */
const STATUS: Partial<Record<ResultName, number>> = {
  insufficientAccessRights: 403,
  invalidCredentials: 401,
  noSuchObject: 404,
  entryAlreadyExists: 409,
  attributeOrValueExists: 409,
  notAllowedOnNonLeaf: 409,
  unavailable: 503,
  constraintViolation: 400,
  invalidAttributeSyntax: 400,
  invalidDNSyntax: 400,
  namingViolation: 400,
  objectClassViolation: 400,
  undefinedAttributeType: 400,
  noSuchAttribute: 400,
  notAllowedOnRDN: 400,
  unwillingToPerform: 400,
};

/** The status and message to answer an error with; undefined for an unexpected one (a 500, logged). */
export function errorReply(e: unknown): { status: number; message: string } | undefined {
  if (e instanceof HttpError) return { status: e.status, message: e.message };
  if (e instanceof TooManyFailuresError) return { status: 429, message: e.message };
  if (e instanceof DirectoryError) {
    const status = e.name === 'InvalidDomainError' || e.name === 'ReservedDomainError' ? 400 : STATUS[e.result];
    if (status !== undefined) return { status, message: e.message };
  }
  return undefined;
}
