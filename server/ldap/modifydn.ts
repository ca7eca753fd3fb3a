/** Modify DN (RFC 4511 §4.9), with newSuperior. */
import type { Handler, LdapContext } from './context';
import { sessionOf } from './session';
import { endWithError, RESULT_CODES } from './results';

export function modifyDnHandler(ctx: LdapContext): Handler {
  return (req, res) => {
    const session = sessionOf(req);
    try {
      const sup = req.newSuperior;
      ctx.directory.modifyDN(
        session.identity, String(req.entry), String(req.newRdn), !!req.deleteOldRdn,
        sup === undefined || sup === null ? undefined : String(sup),
      );
      res.end(RESULT_CODES.success);
    } catch (err) {
      endWithError(res, err, session.log);
    }
  };
}
