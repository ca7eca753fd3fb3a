/** Search (RFC 4511 §4.5), with simple paged results (RFC 2696). */
import { PagedResultsControl } from 'ldapjs';
import type { Handler, LdapContext } from './context';
import { sessionOf } from './session';
import { endWithError, RESULT_CODES } from './results';
import { encodeSearchEntry } from './ber';
import { fromLdapjsFilter } from './filter';
import { pagedRequest } from './controls';
import { valueToBytes } from '../directory/entry';
import type { Scope } from '../../storage/store';

const SCOPES: Record<number | string, Scope> = { 0: 'base', 1: 'one', 2: 'sub', base: 'base', one: 'one', sub: 'sub' };

/** The paging cookie is the id of the last entry sent, as decimal text. */
function decodeCookie(c: Buffer): number | undefined {
  if (c.length === 0) return undefined;
  const s = c.toString('latin1');
  return /^\d{1,15}$/.test(s) ? Number(s) : NaN;
}

export function searchHandler(ctx: LdapContext): Handler {
  return (req, res) => {
    const session = sessionOf(req);
    const conn = req.connection;
    // The entries and the SearchResultDone leave in one write (one syscall, one segment for small results).
    conn.cork();
    try {
      const scope = SCOPES[req.scope];
      if (!scope) {
        res.diagnosticMessage = `bad scope ${req.scope}`;
        res.end(RESULT_CODES.protocolError);
        return;
      }
      const paged = pagedRequest(req);
      let page: { size: number; cursor?: number } | undefined;
      if (paged) {
        const cursor = decodeCookie(paged.cookie);
        if (Number.isNaN(cursor)) {
          res.diagnosticMessage = 'invalid paged results cookie';
          res.end(RESULT_CODES.unwillingToPerform);
          return;
        }
        if (paged.size === 0) {
          // RFC 2696 §3: size 0 abandons the paged search.
          res.addControl(new PagedResultsControl({ value: { size: 0, cookie: Buffer.alloc(0) } }));
          res.end(RESULT_CODES.success);
          return;
        }
        page = { size: paged.size, cursor };
      }
      const attributes = ((req.attributes ?? []) as string[]).map((a) => a.toLowerCase());
      const messageId: number = req.messageId;
      const outcome = ctx.directory.search(
        session.identity,
        {
          base: String(req.baseObject ?? ''),
          scope,
          filter: fromLdapjsFilter(req.filter),
          attributes,
          typesOnly: !!req.typesOnly,
          sizeLimit: req.sizeLimit ?? 0,
          timeLimit: req.timeLimit ?? 0,
          page,
        },
        (e) => {
          conn.write(encodeSearchEntry(messageId, e.dn, e.attrs.map(([n, vs]) => [n, vs.map(valueToBytes)] as const)));
        },
      );
      if (paged) {
        const cookie = outcome.nextCursor === undefined ? Buffer.alloc(0) : Buffer.from(String(outcome.nextCursor));
        res.addControl(new PagedResultsControl({ value: { size: 0, cookie } }));
      }
      res.end(RESULT_CODES.success);
    } catch (err) {
      endWithError(res, err, session.log);
    } finally {
      conn.uncork();
    }
  };
}
