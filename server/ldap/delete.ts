/** Delete (RFC 4511 §4.8). */
import type { Handler, LdapContext } from './context';
import { sessionOf } from './session';
import { endWithError, RESULT_CODES } from './results';

export function deleteHandler(ctx: LdapContext): Handler {
  return (req, res) => {
    const session = sessionOf(req);
    try {
      ctx.directory.delete(session.identity, String(req.entry));
      res.end(RESULT_CODES.success);
    } catch (err) {
      endWithError(res, err, session.log);
    }
  };
}
