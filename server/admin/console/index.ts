/**
 * The web console, served by the admin HTTP endpoint (admin/http.ts) at `/`:
 * a static front end (static/: HTML, one script, one style sheet, uPlot
 * from node_modules for the charts) over a JSON API under `/api/`.
 *
 *   GET  /, /domains, /queue  the console's page; without a session, a 303 to /login
 *   GET  /login               the login page (the only page without a session)
 *   GET  /assets/...          its script, styles and uPlot (no data)
 *   POST /api/login           {user, password}: a DN, or a mail address / uid (as SMTP AUTH)
 *   POST /api/logout
 *   GET  /api/session         who is logged in, the domains they manage, the CSRF token
 *   ...                       the dashboard's (dashboard.ts), domains' and mailboxes' (domains.ts), the queue's (queue.ts)
 *
 * Every /api/ request but the login needs a live session (401 without);
 * every change carries the session's CSRF token and a same-origin Origin
 * (csrf.ts; 403 without). Who may log in: the administrator and the users
 * who manage a mail domain (an `owner` of its entry, access.ts). Every
 * action is checked against the session's identity by the directory's own
 * access policy: writes go to the one writer as that identity (writes.ts),
 * as an LDAP client's would, so the change log, routing and NOTIFY follow.
 * Passwords are checked by the directory (Directory.bind /
 * MailDirectory.authenticate), throttled like LDAP binds and SMTP AUTH.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Identity } from '../../directory/access';
import type { Directory } from '../../directory/directory';
import { InvalidCredentialsError } from '../../directory/errors';
import type { MailDirectory } from '../../directory/mail';
import type { Logger } from '../../log';
import { csrfRefusal, isChange } from './csrf';
import { errorReply, field, HttpError, readJson, SECURITY_HEADERS, sendJson } from './http-io';
import { sessionCookie, sessionIdOf, Sessions, type Session, type SessionLimits } from './sessions';

/** What a request handler of the API gets. */
export interface ApiRequest {
  req: IncomingMessage;
  /** The path's parts after /api/, decoded (`/api/domains/a.org` -> ['domains', 'a.org']). */
  parts: string[];
  query: URLSearchParams;
  session: Session;
  /** The request's JSON body (changes only). */
  body(): Promise<Record<string, unknown>>;
}

/** An API handler: resolves with the JSON to answer 200 with; throws HttpError or a DirectoryError. */
export type ApiHandler = (r: ApiRequest) => Promise<unknown>;

/** A group of API routes (dashboard.ts, domains.ts, queue.ts): the handler for a method and path, if it has one. */
export interface ApiRoutes {
  route(method: string, parts: readonly string[]): ApiHandler | undefined;
  /** Stops what the group runs in the background (the dashboard's sampling). */
  close?(): void;
}

/** The console's dependencies. */
export interface ConsoleOptions {
  /** The writable directory (main thread): binds and the access policy. */
  directory: Directory;
  mail: MailDirectory;
  sessions: SessionLimits;
  /** The API's route groups. */
  routes: readonly ApiRoutes[];
}

/** The pages (server-side paths to static files). */
const STATIC_DIR = path.resolve(__dirname, '..', '..', '..', '..', 'server', 'admin', 'console', 'static');

interface Asset {
  type: string;
  body: Buffer;
}

/** The static files, read once: the pages, the script, the styles, uPlot. */
function loadAssets(): Map<string, Asset> {
  const file = (f: string) => fs.readFileSync(path.join(STATIC_DIR, f));
  const uplot = (f: string) => fs.readFileSync(require.resolve(`uplot/dist/${f}`));
  return new Map<string, Asset>([
    ['page', { type: 'text/html; charset=utf-8', body: file('index.html') }],
    ['/login', { type: 'text/html; charset=utf-8', body: file('login.html') }],
    ['/assets/console.js', { type: 'text/javascript; charset=utf-8', body: file('console.js') }],
    ['/assets/login.js', { type: 'text/javascript; charset=utf-8', body: file('login.js') }],
    ['/assets/console.css', { type: 'text/css; charset=utf-8', body: file('console.css') }],
    ['/assets/uplot.js', { type: 'text/javascript; charset=utf-8', body: uplot('uPlot.iife.min.js') }],
    ['/assets/uplot.css', { type: 'text/css; charset=utf-8', body: uplot('uPlot.min.css') }],
  ]);
}

/** Paths of the console's page (the front end shows the part the path names). */
const PAGES = new Set(['/', '/domains', '/queue']);

/** The web console (see the module comment). */
export class Console {
  readonly sessions: Sessions;
  private readonly assets = loadAssets();

  constructor(private readonly opts: ConsoleOptions, private readonly log: Logger) {
    this.sessions = new Sessions(opts.sessions);
  }

  /** Stops the route groups' background work. */
  close(): void {
    for (const g of this.opts.routes) g.close?.();
  }

  /** Is `url` (a path) the console's? */
  owns(url: string): boolean {
    return PAGES.has(url) || url === '/login' || url.startsWith('/assets/') || url === '/api' || url.startsWith('/api/');
  }

  /** Answers a request for one of the console's paths (owns). Never rejects. */
  async handle(req: IncomingMessage, res: ServerResponse, url: string): Promise<void> {
    try {
      let session = this.sessions.get(sessionIdOf(req.headers.cookie));
      // A user deleted meanwhile has no session left.
      if (session && !session.identity.admin && !this.opts.directory.getByNdn(session.identity.ndn)) {
        this.sessions.end(session.id);
        session = undefined;
      }
      if (url === '/api' || url.startsWith('/api/')) return await this.api(req, res, url, session);
      if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: 'method not allowed' });
      if (PAGES.has(url)) {
        if (!session) return this.redirect(res, '/login');
        return this.asset(res, 'page');
      }
      if (url === '/login' && session) return this.redirect(res, '/');
      if (!this.assets.has(url)) return sendJson(res, 404, { error: 'not found' });
      this.asset(res, url);
    } catch (err) {
      this.fail(res, err);
    }
  }

  private asset(res: ServerResponse, key: string): void {
    const a = this.assets.get(key)!;
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': a.type, 'content-length': a.body.length });
    res.end(a.body);
  }

  private redirect(res: ServerResponse, to: string): void {
    res.writeHead(303, { ...SECURITY_HEADERS, location: to });
    res.end();
  }

  private fail(res: ServerResponse, err: unknown): void {
    const reply = errorReply(err);
    if (!reply) this.log.error({ err }, 'console request failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    sendJson(res, reply?.status ?? 500, { error: reply?.message ?? 'internal error' });
  }

  private async api(req: IncomingMessage, res: ServerResponse, url: string, session: Session | undefined): Promise<void> {
    const parsed = new URL(req.url ?? url, 'http://console.invalid');
    let parts: string[];
    try {
      parts = url.split('/').slice(2).filter((p) => p !== '').map((p) => decodeURIComponent(p));
    } catch {
      return sendJson(res, 400, { error: 'bad path' });
    }
    const method = req.method ?? 'GET';
    if (parts.length === 1 && parts[0] === 'login') {
      if (method !== 'POST') return sendJson(res, 405, { error: 'method not allowed' });
      return this.login(req, res);
    }
    if (!session) return sendJson(res, 401, { error: 'log in first' });
    if (isChange(method)) {
      const refusal = csrfRefusal(req, session);
      if (refusal) return sendJson(res, 403, { error: refusal });
    }
    if (parts.length === 1 && parts[0] === 'logout' && method === 'POST') {
      this.sessions.end(session.id);
      return sendJson(res, 200, { ok: true }, { 'set-cookie': sessionCookie(undefined) });
    }
    if (parts.length === 1 && parts[0] === 'session' && method === 'GET') {
      return sendJson(res, 200, { user: session.identity.dn, admin: session.identity.admin, domains: this.managedDomains(session.identity), csrf: session.csrf });
    }
    for (const group of this.opts.routes) {
      const handler = group.route(method, parts);
      if (!handler) continue;
      let body: Promise<Record<string, unknown>> | undefined;
      const payload = await handler({ req, parts, query: parsed.searchParams, session, body: () => (body ??= readJson(req)) });
      return sendJson(res, 200, payload);
    }
    sendJson(res, 404, { error: 'not found' });
  }

  /**
   * POST /api/login: checks the password through the directory (throttled
   * per account and client, as LDAP binds are), then opens a session for
   * the administrator or a domain manager. Checked by Origin (csrf.ts):
   * another site cannot log a browser in under its own account.
   */
  private async login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const refusal = csrfRefusal(req, undefined);
    if (refusal) return sendJson(res, 403, { error: refusal });
    const body = await readJson(req);
    const user = field(body, 'user').trim();
    const password = field(body, 'password');
    const client = req.socket.remoteAddress ?? '';
    const { directory, mail } = this.opts;
    let who: Identity | undefined;
    try {
      who = user.includes('=') ? await directory.bind(user, password, client) : await mail.authenticate(user, password, client);
    } catch (e) {
      if (!(e instanceof InvalidCredentialsError)) throw e;
    }
    if (!who || who.anonymous) {
      this.log.warn({ client, user }, 'console login failed: invalid credentials');
      throw new HttpError(401, 'wrong user name or password');
    }
    if (!who.admin && this.managedDomains(who).length === 0) {
      throw new HttpError(403, 'this account manages no mail domain: only the administrator and domain managers use the console');
    }
    const session = this.sessions.create(who);
    this.log.info({ client, user: who.dn }, 'console login');
    sendJson(res, 200, { user: who.dn, admin: who.admin, csrf: session.csrf }, { 'set-cookie': sessionCookie(session.id) });
  }

  /** Names of the mail domains `who` manages (access.ts: an `owner` of the domain's entry); the administrator's: none listed, all managed. */
  managedDomains(who: Identity): string[] {
    return this.opts.mail.managedBy(who);
  }
}
