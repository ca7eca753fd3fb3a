/** Compare (RFC 4511 §4.10): compareTrue (6) or compareFalse (5). */
import type { Handler, LdapContext } from './context';
import { sessionOf } from './session';
import { endWithError, RESULT_CODES } from './results';

export function compareHandler(ctx: LdapContext): Handler {
  return (req, res) => {
    const session = sessionOf(req);
    try {
      const ok = ctx.directory.compare(session.identity, String(req.entry), String(req.attribute), String(req.value ?? ''));
      res.end(ok ? RESULT_CODES.compareTrue : RESULT_CODES.compareFalse);
    } catch (err) {
      endWithError(res, err, session.log);
    }
  };
}
